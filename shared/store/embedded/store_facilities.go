package embedded

import (
	"context"
	"encoding/json"
	"fmt"

	bolt "go.etcd.io/bbolt"

	"github.com/vaxpass/vaxpass/shared/vaxpass"
)

// AddFacility registers a facility: vaxpass.ErrConflict when its ID, or its API key hash,
// is already registered.
func (s *Store) AddFacility(ctx context.Context, f vaxpass.Facility) error {
	if err := storeCheckPart("id", f.ID, true); err != nil {
		return fmt.Errorf("embedded: add facility: %w", err)
	}
	v, err := json.Marshal(f)
	if err != nil {
		return fmt.Errorf("embedded: add facility %s: %w", f.ID, err)
	}
	err = s.storeUpdate(ctx, func(tx *bolt.Tx) error {
		facilities := tx.Bucket(storeBucketFacilities)
		if facilities.Get([]byte(f.ID)) != nil {
			return fmt.Errorf("%w: facility ID already registered", vaxpass.ErrConflict)
		}
		if len(f.APIKeyHash) > 0 {
			keys := tx.Bucket(storeBucketFacilityKeys)
			if keys.Get(f.APIKeyHash) != nil {
				return fmt.Errorf("%w: API key already registered", vaxpass.ErrConflict)
			}
			if err := keys.Put(append([]byte(nil), f.APIKeyHash...), []byte(f.ID)); err != nil {
				return err
			}
		}
		return facilities.Put([]byte(f.ID), v)
	})
	if err != nil {
		return fmt.Errorf("embedded: add facility %s: %w", f.ID, err)
	}
	return nil
}

// FacilityByKeyHash implements api.Facilities: the facility whose APIKeyHash is hash, or
// vaxpass.ErrNotFound.
func (s *Store) FacilityByKeyHash(ctx context.Context, hash []byte) (vaxpass.Facility, error) {
	var f vaxpass.Facility
	err := s.storeView(ctx, func(tx *bolt.Tx) error {
		if len(hash) == 0 {
			return vaxpass.ErrNotFound
		}
		id := tx.Bucket(storeBucketFacilityKeys).Get(hash)
		if id == nil {
			return vaxpass.ErrNotFound
		}
		var err error
		if f, err = storeGetFacility(tx, id); err == vaxpass.ErrNotFound {
			err = fmt.Errorf("%w: API key index points to a missing facility", storeErrCorrupt)
		}
		return err
	})
	if err != nil {
		return vaxpass.Facility{}, fmt.Errorf("embedded: facility by API key: %w", err)
	}
	return f, nil
}

// GetFacility returns the facility with ID id, or vaxpass.ErrNotFound.
func (s *Store) GetFacility(ctx context.Context, id string) (vaxpass.Facility, error) {
	var f vaxpass.Facility
	err := s.storeView(ctx, func(tx *bolt.Tx) error {
		var err error
		f, err = storeGetFacility(tx, []byte(id))
		return err
	})
	if err != nil {
		return vaxpass.Facility{}, fmt.Errorf("embedded: get facility %s: %w", id, err)
	}
	return f, nil
}

// ListFacilities returns every facility in ID order.
func (s *Store) ListFacilities(ctx context.Context) ([]vaxpass.Facility, error) {
	out := []vaxpass.Facility{}
	err := s.storeView(ctx, func(tx *bolt.Tx) error {
		return tx.Bucket(storeBucketFacilities).ForEach(func(_, v []byte) error {
			var f vaxpass.Facility
			if err := json.Unmarshal(v, &f); err != nil {
				return fmt.Errorf("%w: facility: %w", storeErrCorrupt, err)
			}
			out = append(out, f)
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("embedded: list facilities: %w", err)
	}
	return out, nil
}

func storeGetFacility(tx *bolt.Tx, id []byte) (vaxpass.Facility, error) {
	var f vaxpass.Facility
	if len(id) == 0 {
		return f, vaxpass.ErrNotFound
	}
	v := tx.Bucket(storeBucketFacilities).Get(id)
	if v == nil {
		return f, vaxpass.ErrNotFound
	}
	if err := json.Unmarshal(v, &f); err != nil {
		return f, fmt.Errorf("%w: facility: %w", storeErrCorrupt, err)
	}
	return f, nil
}
