package embedded

import (
	"context"
	"encoding/json"
	"fmt"

	bolt "go.etcd.io/bbolt"

	"github.com/vaxpass/vaxpass/shared/vaxpass"
)

// UpdateFacilityKey stores f's signing key fields (KeyID, PublicKey, FormerKeys) in the
// facility's record, the other fields left as stored, conditional on the stored KeyID
// still being prevKeyID: vaxpass.ErrConflict when another rotation came first,
// vaxpass.ErrNotFound for an unknown facility.
func (s *Store) UpdateFacilityKey(ctx context.Context, f vaxpass.Facility, prevKeyID string) error {
	err := s.storeUpdate(ctx, func(tx *bolt.Tx) error {
		cur, err := storeGetFacility(tx, []byte(f.ID))
		if err != nil {
			return err
		}
		if cur.KeyID != prevKeyID {
			return fmt.Errorf("%w: the facility's signing key changed meanwhile", vaxpass.ErrConflict)
		}
		cur.KeyID, cur.PublicKey, cur.FormerKeys = f.KeyID, f.PublicKey, f.FormerKeys
		v, err := json.Marshal(cur)
		if err != nil {
			return err
		}
		return tx.Bucket(storeBucketFacilities).Put([]byte(f.ID), v)
	})
	if err != nil {
		return fmt.Errorf("embedded: update key of facility %s: %w", f.ID, err)
	}
	return nil
}
