package storetest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/vaxpass/vaxpass/shared/stage/signing"
	"github.com/vaxpass/vaxpass/shared/vaxpass"
)

// RunSigningRuns checks a signing.RunStore: versioned saves, reads, and each facility's
// latest run.
func RunSigningRuns(t *testing.T, open func(t *testing.T) signing.RunStore) {
	ctx := context.Background()
	st := open(t)
	at := time.Date(2026, 12, 4, 9, 0, 0, 0, time.UTC)
	if _, found, err := st.LatestSigningRun(ctx, "site-a"); err != nil || found {
		t.Fatalf("latest run of a facility without runs: found %v, %v", found, err)
	}
	if _, err := st.SigningRun(ctx, "sr-none"); !errors.Is(err, vaxpass.ErrNotFound) {
		t.Fatalf("unknown run: %v, want ErrNotFound", err)
	}
	first := signing.Run{ID: "sr-1", FacilityID: "site-a", Priority: signing.Bulk, Status: signing.RunRunning, StartedAt: at, UpdatedAt: at}
	if err := st.SaveSigningRun(ctx, &first); err != nil || first.Version != 1 {
		t.Fatalf("save a new run: version %d, %v", first.Version, err)
	}
	again := signing.Run{ID: "sr-1", FacilityID: "site-a", Status: signing.RunRunning}
	if err := st.SaveSigningRun(ctx, &again); !errors.Is(err, vaxpass.ErrConflict) {
		t.Fatalf("a second new run of the same ID: %v, want ErrConflict", err)
	}
	first.Signed, first.Cursor, first.Pages = 500, "079085000500", 1
	if err := st.SaveSigningRun(ctx, &first); err != nil || first.Version != 2 {
		t.Fatalf("save a page: version %d, %v", first.Version, err)
	}
	stale := first
	stale.Version = 1
	if err := st.SaveSigningRun(ctx, &stale); !errors.Is(err, vaxpass.ErrConflict) {
		t.Fatalf("save over a newer version: %v, want ErrConflict", err)
	}
	got, err := st.SigningRun(ctx, "sr-1")
	if err != nil || got.Signed != 500 || got.Cursor != "079085000500" || got.Version != 2 || got.Priority != signing.Bulk || !got.StartedAt.Equal(at) {
		t.Fatalf("read back: %+v, %v", got, err)
	}
	second := signing.Run{ID: "sr-2", FacilityID: "site-a", Status: signing.RunRunning, StartedAt: at, UpdatedAt: at}
	other := signing.Run{ID: "sr-3", FacilityID: "site-b", Status: signing.RunRunning, StartedAt: at, UpdatedAt: at}
	for _, r := range []*signing.Run{&second, &other} {
		if err := st.SaveSigningRun(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	// A later save of an older run does not make it the latest again.
	first.Status = signing.RunDone
	if err := st.SaveSigningRun(ctx, &first); err != nil {
		t.Fatal(err)
	}
	for fac, want := range map[string]string{"site-a": "sr-2", "site-b": "sr-3"} {
		latest, found, err := st.LatestSigningRun(ctx, fac)
		if err != nil || !found || latest.ID != want {
			t.Errorf("latest run of %s: %s (found %v), %v; want %s", fac, latest.ID, found, err, want)
		}
	}
}
