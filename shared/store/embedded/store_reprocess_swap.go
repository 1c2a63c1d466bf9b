package embedded

import (
	"bytes"
	"context"
	"fmt"

	bolt "go.etcd.io/bbolt"

	"github.com/vaxpass/vaxpass/shared/vaxpass"
)

// SwapRun implements reprocess.RunStore: doc replaces the run's state if the stored state
// is prev (vaxpass.ErrConflict otherwise, also when no state is stored).
func (s *Store) SwapRun(ctx context.Context, runID string, prev, doc []byte) error {
	if err := storeCheckPart("run_id", runID, true); err != nil {
		return fmt.Errorf("embedded: swap run: %w", err)
	}
	err := s.storeUpdate(ctx, func(tx *bolt.Tx) error {
		runs, err := tx.CreateBucketIfNotExists(reprocessBucketRuns)
		if err != nil {
			return err
		}
		cur := runs.Get([]byte(runID))
		if cur == nil || !bytes.Equal(cur, prev) {
			return fmt.Errorf("%w: the run's state changed", vaxpass.ErrConflict)
		}
		return runs.Put([]byte(runID), bytes.Clone(doc))
	})
	if err != nil {
		return fmt.Errorf("embedded: swap run %s: %w", runID, err)
	}
	return nil
}
