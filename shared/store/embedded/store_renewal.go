package embedded

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"

	bolt "go.etcd.io/bbolt"

	"github.com/vaxpass/vaxpass/shared/stage/audit"
	"github.com/vaxpass/vaxpass/shared/stage/renewal"
	"github.com/vaxpass/vaxpass/shared/vaxpass"
)

var (
	// renewalRunBucket: run ID -> JSON of renewal.Run.
	renewalRunBucket = []byte("renewal_runs")
	// renewalMetaBucket: "unfinished" -> ID of the run not finished yet (absent: none).
	renewalMetaBucket = []byte("renewal_meta")
)

var renewalUnfinishedKey = []byte("unfinished")

// RenewalRuns stores renewal runs (renewal.Runs); a run's progress and its audit entries
// are written in one transaction.
type RenewalRuns struct {
	db *DB
}

// OpenRenewalRuns opens the run store in db, creating its buckets (and the audit trail's)
// on first use.
func OpenRenewalRuns(db *DB) (*RenewalRuns, error) {
	if err := db.bolt.Update(func(tx *bolt.Tx) error {
		for _, name := range [][]byte{renewalRunBucket, renewalMetaBucket, auditBucket} {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		return nil, fmt.Errorf("embedded: open renewal runs: %w", classify(err))
	}
	return &RenewalRuns{db: db}, nil
}

// UnfinishedRenewalRun implements renewal.Runs.
func (r *RenewalRuns) UnfinishedRenewalRun(ctx context.Context) (renewal.Run, bool, error) {
	var run renewal.Run
	found := false
	if err := ctx.Err(); err != nil {
		return run, false, err
	}
	err := r.db.bolt.View(func(tx *bolt.Tx) error {
		id := tx.Bucket(renewalMetaBucket).Get(renewalUnfinishedKey)
		if id == nil {
			return nil
		}
		v := tx.Bucket(renewalRunBucket).Get(id)
		if v == nil {
			return fmt.Errorf("%w: unfinished renewal run %q is missing", storeErrCorrupt, id)
		}
		found = true
		return renewalDecode(v, &run)
	})
	if err != nil {
		return renewal.Run{}, false, fmt.Errorf("embedded: unfinished renewal run: %w", err)
	}
	return run, found, nil
}

// SaveRenewalRun implements renewal.Runs. A new run (Version 0) is refused while another
// is unfinished.
func (r *RenewalRuns) SaveRenewalRun(ctx context.Context, run *renewal.Run, notes ...audit.Entry) error {
	if err := storeCheckPart("run.id", run.ID, true); err != nil {
		return fmt.Errorf("embedded: save renewal run: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	next := *run
	next.Version = run.Version + 1
	v, err := json.Marshal(next)
	if err != nil {
		return fmt.Errorf("embedded: save renewal run: %w", err)
	}
	id := []byte(run.ID)
	err = r.db.bolt.Update(func(tx *bolt.Tx) error {
		runs, meta := tx.Bucket(renewalRunBucket), tx.Bucket(renewalMetaBucket)
		unfinished := meta.Get(renewalUnfinishedKey)
		if old := runs.Get(id); old == nil {
			if run.Version != 0 {
				return fmt.Errorf("%w: renewal run %s is not stored", vaxpass.ErrConflict, run.ID)
			}
			if unfinished != nil {
				return fmt.Errorf("%w: renewal run %s is not finished yet", vaxpass.ErrConflict, unfinished)
			}
		} else {
			var stored renewal.Run
			if err := renewalDecode(old, &stored); err != nil {
				return err
			}
			if stored.Version != run.Version {
				return fmt.Errorf("%w: renewal run %s is at version %d, not %d", vaxpass.ErrConflict, run.ID, stored.Version, run.Version)
			}
		}
		for i := range notes {
			if err := auditAppendTx(tx, &notes[i]); err != nil {
				return err
			}
		}
		if err := runs.Put(id, v); err != nil {
			return err
		}
		switch {
		case next.FinishedAt.IsZero():
			return meta.Put(renewalUnfinishedKey, id)
		case bytes.Equal(unfinished, id):
			return meta.Delete(renewalUnfinishedKey)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("embedded: save renewal run: %w", err)
	}
	run.Version = next.Version
	return nil
}

// RenewalRun reads a run by ID (vaxpass.ErrNotFound if none).
func (r *RenewalRuns) RenewalRun(ctx context.Context, id string) (renewal.Run, error) {
	var run renewal.Run
	if err := ctx.Err(); err != nil {
		return run, err
	}
	err := r.db.bolt.View(func(tx *bolt.Tx) error {
		v := tx.Bucket(renewalRunBucket).Get([]byte(id))
		if v == nil {
			return vaxpass.ErrNotFound
		}
		return renewalDecode(v, &run)
	})
	if err != nil {
		return renewal.Run{}, fmt.Errorf("embedded: renewal run: %w", err)
	}
	return run, nil
}

func renewalDecode(v []byte, run *renewal.Run) error {
	if err := json.Unmarshal(v, run); err != nil {
		return fmt.Errorf("%w: renewal run: %w", storeErrCorrupt, err)
	}
	return nil
}
