package storetest

import (
	"crypto/sha256"
	"testing"

	"github.com/vaxpass/vaxpass/shared/vaxpass"
)

func newFacility(id, apiKey string) vaxpass.Facility {
	h := sha256.Sum256([]byte(apiKey))
	return vaxpass.Facility{ID: id, Name: "Trạm Y tế " + id, APIKeyHash: h[:], KeyID: "facility-" + id + ".pem", CreatedAt: base}
}

func testFacilities(t *testing.T, s Store) {
	ctx := ctxOf(t)
	list, err := s.ListFacilities(ctx)
	if err != nil || len(list) != 0 {
		t.Fatalf("ListFacilities of an empty store: %v, %v", list, err)
	}
	f2, f1, f10 := newFacility("f2", "key-2"), newFacility("f1", "key-1"), newFacility("f10", "key-10")
	for _, f := range []vaxpass.Facility{f2, f1, f10} {
		if err := s.AddFacility(ctx, f); err != nil {
			t.Fatalf("AddFacility %s: %v", f.ID, err)
		}
	}
	sameID := newFacility("f1", "another key")
	wantErr(t, "AddFacility with a taken ID", s.AddFacility(ctx, sameID), vaxpass.ErrConflict)
	sameKey := newFacility("f3", "key-1")
	wantErr(t, "AddFacility with a taken API key", s.AddFacility(ctx, sameKey), vaxpass.ErrConflict)
	_, err = s.GetFacility(ctx, "f3")
	wantErr(t, "GetFacility of a refused facility", err, vaxpass.ErrNotFound)
	wantErr(t, "AddFacility without ID", s.AddFacility(ctx, newFacility("", "key-x")), vaxpass.ErrInvalid)

	for _, f := range []vaxpass.Facility{f1, f2, f10} {
		got, err := s.GetFacility(ctx, f.ID)
		if err != nil {
			t.Fatalf("GetFacility %s: %v", f.ID, err)
		}
		sameJSON(t, "GetFacility "+f.ID, got, f)
		got, err = s.FacilityByKeyHash(ctx, f.APIKeyHash)
		if err != nil {
			t.Fatalf("FacilityByKeyHash of %s: %v", f.ID, err)
		}
		sameJSON(t, "FacilityByKeyHash of "+f.ID, got, f)
	}
	// The first registration of f1 keeps its key; the refused one's key is not known.
	for _, key := range []string{"another key", "unknown"} {
		h := sha256.Sum256([]byte(key))
		_, err := s.FacilityByKeyHash(ctx, h[:])
		wantErr(t, "FacilityByKeyHash of "+key, err, vaxpass.ErrNotFound)
	}
	_, err = s.FacilityByKeyHash(ctx, nil)
	wantErr(t, "FacilityByKeyHash of no hash", err, vaxpass.ErrNotFound)
	_, err = s.GetFacility(ctx, "f")
	wantErr(t, "GetFacility of an unknown ID", err, vaxpass.ErrNotFound)

	list, err = s.ListFacilities(ctx)
	if err != nil {
		t.Fatal(err)
	}
	sameJSON(t, "ListFacilities", list, []vaxpass.Facility{f1, f10, f2})
}
