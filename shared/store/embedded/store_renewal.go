package embedded

import (
	"bytes"
	"context"
	"encoding/binary"
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
	// renewalSliceBucket: run ID, 0x00, slice index (4 bytes big-endian) -> JSON of
	// renewal.Slice.
	renewalSliceBucket = []byte("renewal_slices")
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
		for _, name := range [][]byte{renewalRunBucket, renewalMetaBucket, renewalSliceBucket, auditBucket} {
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

func renewalSliceKey(runID string, index int) []byte {
	return binary.BigEndian.AppendUint32(append([]byte(runID), 0), uint32(index))
}

// RenewalSlice implements renewal.Runs.
func (r *RenewalRuns) RenewalSlice(ctx context.Context, runID string, index int) (renewal.Slice, error) {
	var sl renewal.Slice
	if err := ctx.Err(); err != nil {
		return sl, err
	}
	err := r.db.bolt.View(func(tx *bolt.Tx) error {
		v := tx.Bucket(renewalSliceBucket).Get(renewalSliceKey(runID, index))
		if v == nil {
			return vaxpass.ErrNotFound
		}
		return renewalDecodeSlice(v, &sl)
	})
	if err != nil {
		return renewal.Slice{}, fmt.Errorf("embedded: renewal slice %s/%d: %w", runID, index, err)
	}
	return sl, nil
}

// RenewalSlices implements renewal.Runs.
func (r *RenewalRuns) RenewalSlices(ctx context.Context, runID string) ([]renewal.Slice, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var out []renewal.Slice
	prefix := append([]byte(runID), 0)
	err := r.db.bolt.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(renewalSliceBucket).Cursor()
		for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
			var sl renewal.Slice
			if err := renewalDecodeSlice(v, &sl); err != nil {
				return err
			}
			out = append(out, sl)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("embedded: renewal slices of %s: %w", runID, err)
	}
	return out, nil
}

// SaveRenewalSlice implements renewal.Runs.
func (r *RenewalRuns) SaveRenewalSlice(ctx context.Context, sl *renewal.Slice, notes ...audit.Entry) error {
	if err := storeCheckPart("slice.run_id", sl.RunID, true); err != nil {
		return fmt.Errorf("embedded: save renewal slice: %w", err)
	}
	if sl.Index < 0 || sl.Index >= renewal.MaxSlices {
		return fmt.Errorf("embedded: save renewal slice: %w: index %d", vaxpass.ErrInvalid, sl.Index)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	next := *sl
	next.Version = sl.Version + 1
	v, err := json.Marshal(next)
	if err != nil {
		return fmt.Errorf("embedded: save renewal slice: %w", err)
	}
	k := renewalSliceKey(sl.RunID, sl.Index)
	err = r.db.bolt.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(renewalSliceBucket)
		var stored renewal.Slice
		if old := b.Get(k); old != nil {
			if err := renewalDecodeSlice(old, &stored); err != nil {
				return err
			}
		}
		if stored.Version != sl.Version {
			return fmt.Errorf("%w: renewal slice %s/%d is at version %d, not %d", vaxpass.ErrConflict, sl.RunID, sl.Index, stored.Version, sl.Version)
		}
		for i := range notes {
			if err := auditAppendTx(tx, &notes[i]); err != nil {
				return err
			}
		}
		return b.Put(k, v)
	})
	if err != nil {
		return fmt.Errorf("embedded: save renewal slice: %w", err)
	}
	sl.Version = next.Version
	return nil
}

func renewalDecodeSlice(v []byte, sl *renewal.Slice) error {
	if err := json.Unmarshal(v, sl); err != nil {
		return fmt.Errorf("%w: renewal slice: %w", storeErrCorrupt, err)
	}
	return nil
}
