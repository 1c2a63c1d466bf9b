package embedded

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"

	bolt "go.etcd.io/bbolt"

	"github.com/vaxpass/vaxpass/shared/stage/signing"
	"github.com/vaxpass/vaxpass/shared/vaxpass"
)

var (
	// signingRunBucket: run ID -> JSON of signing.Run.
	signingRunBucket = []byte("signing_runs")
	// signingLatestBucket: facility ID -> ID of its most recently started run.
	signingLatestBucket = []byte("signing_runs_latest")
)

// SigningRuns keeps facility signing runs (signing.RunStore).
type SigningRuns struct {
	db *DB
}

// OpenSigningRuns opens the signing runs of db.
func OpenSigningRuns(db *DB) (*SigningRuns, error) {
	if err := db.bolt.Update(func(tx *bolt.Tx) error {
		for _, name := range [][]byte{signingRunBucket, signingLatestBucket} {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		return nil, fmt.Errorf("embedded: open signing runs: %w", classify(err))
	}
	return &SigningRuns{db: db}, nil
}

// SaveSigningRun implements signing.RunStore.
func (r *SigningRuns) SaveSigningRun(ctx context.Context, run *signing.Run) error {
	if err := storeCheckPart("run.id", run.ID, true); err != nil {
		return fmt.Errorf("embedded: save signing run: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	next := *run
	next.Version = run.Version + 1
	v, err := json.Marshal(next)
	if err != nil {
		return fmt.Errorf("embedded: save signing run: %w", err)
	}
	err = r.db.bolt.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(signingRunBucket)
		var stored signing.Run
		if old := b.Get([]byte(run.ID)); old != nil {
			if err := json.Unmarshal(old, &stored); err != nil {
				return fmt.Errorf("signing run %s: %w", run.ID, err)
			}
		}
		if stored.Version != run.Version {
			return fmt.Errorf("%w: signing run %s is at version %d, not %d", vaxpass.ErrConflict, run.ID, stored.Version, run.Version)
		}
		if run.Version == 0 {
			if err := tx.Bucket(signingLatestBucket).Put([]byte(run.FacilityID), []byte(run.ID)); err != nil {
				return err
			}
		}
		return b.Put([]byte(run.ID), v)
	})
	if err != nil {
		return fmt.Errorf("embedded: save signing run: %w", classify(err))
	}
	run.Version = next.Version
	return nil
}

// SigningRun implements signing.RunStore.
func (r *SigningRuns) SigningRun(ctx context.Context, id string) (signing.Run, error) {
	var run signing.Run
	if err := ctx.Err(); err != nil {
		return run, err
	}
	err := r.db.bolt.View(func(tx *bolt.Tx) error {
		v := tx.Bucket(signingRunBucket).Get([]byte(id))
		if v == nil {
			return fmt.Errorf("signing run %q: %w", id, vaxpass.ErrNotFound)
		}
		return json.Unmarshal(v, &run)
	})
	if err != nil {
		return run, fmt.Errorf("embedded: signing run: %w", classify(err))
	}
	return run, nil
}

// LatestSigningRun implements signing.RunStore.
func (r *SigningRuns) LatestSigningRun(ctx context.Context, facilityID string) (signing.Run, bool, error) {
	var id []byte
	if err := ctx.Err(); err != nil {
		return signing.Run{}, false, err
	}
	if err := r.db.bolt.View(func(tx *bolt.Tx) error {
		id = bytes.Clone(tx.Bucket(signingLatestBucket).Get([]byte(facilityID)))
		return nil
	}); err != nil {
		return signing.Run{}, false, fmt.Errorf("embedded: latest signing run: %w", classify(err))
	}
	if id == nil {
		return signing.Run{}, false, nil
	}
	run, err := r.SigningRun(ctx, string(id))
	return run, err == nil, err
}

// UnfinishedSigningRuns lists the runs still running (a restarted server resumes them).
func (r *SigningRuns) UnfinishedSigningRuns(ctx context.Context) ([]signing.Run, error) {
	var out []signing.Run
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	err := r.db.bolt.View(func(tx *bolt.Tx) error {
		return tx.Bucket(signingRunBucket).ForEach(func(_, v []byte) error {
			var run signing.Run
			if err := json.Unmarshal(v, &run); err != nil {
				return err
			}
			if run.Status == signing.RunRunning {
				out = append(out, run)
			}
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("embedded: unfinished signing runs: %w", classify(err))
	}
	return out, nil
}
