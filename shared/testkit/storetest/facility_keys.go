package storetest

import (
	"context"
	"errors"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/vaxpass/vaxpass/shared/vaxpass"
)

// FacilityKeyStore is a store of facilities whose signing key can be replaced
// (wire.FacilityKeyUpdater with the facility reads; declared here again so that this
// package does not import the wiring).
type FacilityKeyStore interface {
	AddFacility(ctx context.Context, f vaxpass.Facility) error
	GetFacility(ctx context.Context, id string) (vaxpass.Facility, error)
	FacilityByKeyHash(ctx context.Context, hash []byte) (vaxpass.Facility, error)
	UpdateFacilityKey(ctx context.Context, f vaxpass.Facility, prevKeyID string) error
}

// RunFacilityKeys is the contract of UpdateFacilityKey: the key fields (KeyID, PublicKey,
// FormerKeys) are replaced and nothing else, conditional on the stored KeyID; of two
// concurrent rotations from the same key exactly one wins; an unknown facility is
// vaxpass.ErrNotFound; the facility read by its API key sees the new key too.
// newStore opens a fresh, empty store.
func RunFacilityKeys(t *testing.T, newStore func(t *testing.T) FacilityKeyStore) {
	ctx := context.Background()
	t0 := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	s := newStore(t)
	f := vaxpass.Facility{ID: "fk-01", Name: "Trạm Y tế Phường 1", APIKeyHash: []byte("0123456789abcdef0123456789abcdef"),
		KeyID: "key-1", PublicKey: []byte{1, 2, 3}, CreatedAt: t0}
	if err := s.AddFacility(ctx, f); err != nil {
		t.Fatal(err)
	}

	next := f
	next.Name = "ignored: only the key fields are written"
	next.KeyID, next.PublicKey = "key-2", []byte{4, 5, 6}
	next.FormerKeys = []vaxpass.FacilityKeyVersion{{KeyID: "key-1", PublicKey: []byte{1, 2, 3}, RetiredAt: t0.Add(time.Hour)}}
	if err := s.UpdateFacilityKey(ctx, next, "key-1"); err != nil {
		t.Fatal(err)
	}
	want := f
	want.KeyID, want.PublicKey, want.FormerKeys = next.KeyID, next.PublicKey, next.FormerKeys
	checkFacility := func(what string, got vaxpass.Facility, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if !sameFacility(got, want) {
			t.Errorf("%s:\n got %+v\nwant %+v", what, got, want)
		}
	}
	got, err := s.GetFacility(ctx, f.ID)
	checkFacility("after rotation", got, err)
	got, err = s.FacilityByKeyHash(ctx, f.APIKeyHash)
	checkFacility("by API key after rotation", got, err)

	// A rotation from a key that is no longer current is a conflict and changes nothing.
	stale := next
	stale.KeyID = "key-3"
	if err := s.UpdateFacilityKey(ctx, stale, "key-1"); !errors.Is(err, vaxpass.ErrConflict) {
		t.Errorf("rotation from a former key: %v, want ErrConflict", err)
	}
	got, err = s.GetFacility(ctx, f.ID)
	checkFacility("after a refused rotation", got, err)

	// Revocation: a former key gets RevokedAt.
	rev := want
	rev.KeyID, rev.PublicKey = "key-3", []byte{7, 8, 9}
	rev.FormerKeys = append(append([]vaxpass.FacilityKeyVersion(nil), want.FormerKeys...),
		vaxpass.FacilityKeyVersion{KeyID: "key-2", PublicKey: []byte{4, 5, 6}, RetiredAt: t0.Add(2 * time.Hour), RevokedAt: t0.Add(2 * time.Hour)})
	if err := s.UpdateFacilityKey(ctx, rev, "key-2"); err != nil {
		t.Fatal(err)
	}
	want = rev
	got, err = s.GetFacility(ctx, f.ID)
	checkFacility("after revocation", got, err)

	if err := s.UpdateFacilityKey(ctx, vaxpass.Facility{ID: "fk-none", KeyID: "k"}, ""); !errors.Is(err, vaxpass.ErrNotFound) {
		t.Errorf("unknown facility: %v, want ErrNotFound", err)
	}

	// Two rotations from the same key at once: exactly one wins.
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			n := want
			n.KeyID = "key-4-" + string(rune('a'+i))
			n.FormerKeys = append(append([]vaxpass.FacilityKeyVersion(nil), want.FormerKeys...),
				vaxpass.FacilityKeyVersion{KeyID: "key-3", PublicKey: []byte{7, 8, 9}, RetiredAt: t0.Add(3 * time.Hour)})
			errs[i] = s.UpdateFacilityKey(ctx, n, "key-3")
		}()
	}
	wg.Wait()
	won := 0
	for _, err := range errs {
		switch {
		case err == nil:
			won++
		case !errors.Is(err, vaxpass.ErrConflict):
			t.Errorf("concurrent rotation: %v, want nil or ErrConflict", err)
		}
	}
	if won != 1 {
		t.Errorf("%d concurrent rotations from one key succeeded, want 1", won)
	}
	got, err = s.GetFacility(ctx, f.ID)
	if err != nil || len(got.FormerKeys) != 3 || got.Name != f.Name {
		t.Errorf("after concurrent rotations: %d former keys, name %q, %v", len(got.FormerKeys), got.Name, err)
	}
}

func sameFacility(a, b vaxpass.Facility) bool {
	norm := func(f vaxpass.Facility) vaxpass.Facility {
		f.CreatedAt = f.CreatedAt.UTC()
		for i := range f.FormerKeys {
			f.FormerKeys[i].RetiredAt = f.FormerKeys[i].RetiredAt.UTC()
			f.FormerKeys[i].RevokedAt = f.FormerKeys[i].RevokedAt.UTC()
		}
		return f
	}
	a.FormerKeys = append([]vaxpass.FacilityKeyVersion(nil), a.FormerKeys...)
	b.FormerKeys = append([]vaxpass.FacilityKeyVersion(nil), b.FormerKeys...)
	return reflect.DeepEqual(norm(a), norm(b))
}
