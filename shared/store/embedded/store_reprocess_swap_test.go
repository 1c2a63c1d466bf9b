package embedded

import (
	"context"
	"errors"
	"testing"

	"github.com/vaxpass/vaxpass/shared/domain/match"
	"github.com/vaxpass/vaxpass/shared/vaxpass"
)

func TestSwapRun(t *testing.T) {
	ctx := context.Background()
	db, s := openTestStore(t, t.TempDir())
	defer db.Close()
	if err := s.SwapRun(ctx, "rp-1", []byte(`{}`), []byte(`{"n":1}`)); !errors.Is(err, vaxpass.ErrConflict) {
		t.Fatalf("swap of no run: %v, want ErrConflict", err)
	}
	if err := s.SaveRun(ctx, "rp-1", []byte(`{"n":0}`), nil); err != nil {
		t.Fatal(err)
	}
	if err := s.SwapRun(ctx, "rp-1", []byte(`{"n":9}`), []byte(`{"n":1}`)); !errors.Is(err, vaxpass.ErrConflict) {
		t.Fatalf("swap from a state not stored: %v", err)
	}
	if err := s.SwapRun(ctx, "rp-1", []byte(`{"n":0}`), []byte(`{"n":1}`)); err != nil {
		t.Fatal(err)
	}
	if err := s.SwapRun(ctx, "rp-1", []byte(`{"n":0}`), []byte(`{"n":2}`)); !errors.Is(err, vaxpass.ErrConflict) {
		t.Fatalf("second swap from the same state: %v", err)
	}
	if doc, err := s.LoadRun(ctx, "rp-1"); err != nil || string(doc) != `{"n":1}` {
		t.Fatalf("state %s %v", doc, err)
	}
}

// A cursor (facility, "") starts at that facility's first dose: where a part of a
// reprocessing run starts.
func TestScanDosesFromAFacility(t *testing.T) {
	ctx := context.Background()
	db, s := openTestStore(t, t.TempDir())
	defer db.Close()
	all := reprocessTestDoses(t, s)
	for _, statuses := range [][]match.Status{nil, {match.NotFound, match.Verified}} {
		want := sortedKeys(all, func(k vaxpass.DoseKey, st match.Status) bool {
			return k.FacilityID >= "site-ab" && (statuses == nil || st == match.NotFound || st == match.Verified)
		})
		page, _, err := s.ScanDoses(ctx, statuses, nil, vaxpass.DoseKey{FacilityID: "site-ab"}, 1000)
		if err != nil || len(page) != len(want) || page[0].Key() != want[0] {
			t.Fatalf("%v from site-ab: %d doses (want %d), %v", statuses, len(page), len(want), err)
		}
	}
}
