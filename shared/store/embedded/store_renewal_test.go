package embedded_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/vaxpass/vaxpass/shared/stage/audit"
	"github.com/vaxpass/vaxpass/shared/stage/renewal"
	"github.com/vaxpass/vaxpass/shared/store/embedded"
	"github.com/vaxpass/vaxpass/shared/vaxpass"
)

func TestRenewalRunsConditionalSaves(t *testing.T) {
	dir := t.TempDir()
	db, err := embedded.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	runs, err := embedded.OpenRenewalRuns(db)
	if err != nil {
		t.Fatal(err)
	}
	log, _ := embedded.OpenAuditLog(db, time.Now)
	ctx := context.Background()
	t0 := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

	if _, found, err := runs.UnfinishedRenewalRun(ctx); err != nil || found {
		t.Fatalf("fresh store has an unfinished run: %v %v", found, err)
	}
	a := renewal.Run{ID: "run-a", Actor: "x", Window: time.Hour, StartedAt: t0, Cutoff: t0.Add(time.Hour)}
	if err := runs.SaveRenewalRun(ctx, &a); err != nil || a.Version != 1 {
		t.Fatalf("save new: %v (version %d)", err, a.Version)
	}
	b := renewal.Run{ID: "run-b", Actor: "x"}
	if err := runs.SaveRenewalRun(ctx, &b); !errors.Is(err, vaxpass.ErrConflict) {
		t.Errorf("second unfinished run: %v, want conflict", err)
	}
	stale := a
	stale.Version = 0
	if err := runs.SaveRenewalRun(ctx, &stale); !errors.Is(err, vaxpass.ErrConflict) {
		t.Errorf("stale save: %v, want conflict", err)
	}
	a.Cuts, a.Resumes = []time.Time{t0.Add(time.Minute), t0.Add(2 * time.Minute)}, 1
	note := audit.Entry{At: t0, Actor: "x", Action: audit.ActionRenewal, RunID: a.ID, UVCIs: []string{"U0"}}
	if err := runs.SaveRenewalRun(ctx, &a, note); err != nil || a.Version != 2 {
		t.Fatalf("save progress: %v", err)
	}
	// An invalid audit note fails the whole save.
	bad := a
	if err := runs.SaveRenewalRun(ctx, &bad, audit.Entry{}); !errors.Is(err, audit.ErrInvalid) || bad.Version != 2 {
		t.Errorf("save with a bad note: %v (version %d)", err, bad.Version)
	}
	db.Close()

	// Reopened (a restart after a kill): the unfinished run is there as last saved.
	db, err = embedded.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	runs, _ = embedded.OpenRenewalRuns(db)
	log, _ = embedded.OpenAuditLog(db, time.Now)
	got, found, err := runs.UnfinishedRenewalRun(ctx)
	if err != nil || !found || got.ID != "run-a" || got.Version != 2 || len(got.Cuts) != 2 || !got.Cuts[1].Equal(t0.Add(2*time.Minute)) || got.Resumes != 1 || !got.StartedAt.Equal(t0) {
		t.Fatalf("unfinished run after reopen: %+v %v %v", got, found, err)
	}
	got.FinishedAt = t0.Add(time.Minute)
	if err := runs.SaveRenewalRun(ctx, &got); err != nil {
		t.Fatal(err)
	}
	if _, found, _ := runs.UnfinishedRenewalRun(ctx); found {
		t.Error("a finished run is still unfinished")
	}
	if err := runs.SaveRenewalRun(ctx, &b); err != nil {
		t.Errorf("new run after the finished one: %v", err)
	}
	if r, err := runs.RenewalRun(ctx, "run-a"); err != nil || r.FinishedAt.IsZero() {
		t.Errorf("RenewalRun = %+v, %v", r, err)
	}
	if _, err := runs.RenewalRun(ctx, "nope"); !errors.Is(err, vaxpass.ErrNotFound) {
		t.Errorf("RenewalRun(unknown) = %v", err)
	}
	page, _, err := log.Entries(ctx, audit.Query{Limit: 10})
	if err != nil || len(page) != 1 || page[0].UVCIs[0] != "U0" {
		t.Errorf("audit after saves: %+v %v", page, err)
	}
}

// TestRenewalSlicesConditionalSaves: a run's slices are stored on their own, each
// conditional on its version, with their audit notes in the same transaction, and read
// back by run.
func TestRenewalSlicesConditionalSaves(t *testing.T) {
	db, err := embedded.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	runs, err := embedded.OpenRenewalRuns(db)
	if err != nil {
		t.Fatal(err)
	}
	log, _ := embedded.OpenAuditLog(db, time.Now)
	ctx := context.Background()
	t0 := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	if _, err := runs.RenewalSlice(ctx, "run-a", 0); !errors.Is(err, vaxpass.ErrNotFound) {
		t.Fatalf("unknown slice: %v", err)
	}
	for _, i := range []int{2, 0, 1} {
		sl := renewal.Slice{RunID: "run-a", Index: i, UpdatedAt: t0}
		if err := runs.SaveRenewalSlice(ctx, &sl); err != nil || sl.Version != 1 {
			t.Fatalf("create slice %d: %v", i, err)
		}
	}
	other := renewal.Slice{RunID: "run-ab", Index: 0}
	if err := runs.SaveRenewalSlice(ctx, &other); err != nil {
		t.Fatal(err)
	}
	dup := renewal.Slice{RunID: "run-a", Index: 1}
	if err := runs.SaveRenewalSlice(ctx, &dup); !errors.Is(err, vaxpass.ErrConflict) {
		t.Fatalf("second create: %v", err)
	}
	sl, err := runs.RenewalSlice(ctx, "run-a", 1)
	if err != nil || sl.Version != 1 {
		t.Fatal(sl, err)
	}
	stale := sl
	sl.Cursor, sl.Pending, sl.Counts.Renewed, sl.Done = "c1", []string{"U1"}, 3, true
	note := audit.Entry{At: t0, Actor: "x", Action: audit.ActionRenewal, RunID: "run-a", UVCIs: []string{"U0"}}
	if err := runs.SaveRenewalSlice(ctx, &sl, note); err != nil || sl.Version != 2 {
		t.Fatalf("save: %v", err)
	}
	if err := runs.SaveRenewalSlice(ctx, &stale); !errors.Is(err, vaxpass.ErrConflict) {
		t.Fatalf("stale save: %v", err)
	}
	bad := sl
	if err := runs.SaveRenewalSlice(ctx, &bad, audit.Entry{}); !errors.Is(err, audit.ErrInvalid) || bad.Version != 2 {
		t.Errorf("save with a bad note: %v", err)
	}
	all, err := runs.RenewalSlices(ctx, "run-a")
	if err != nil || len(all) != 3 {
		t.Fatalf("slices: %+v %v", all, err)
	}
	for i, s := range all {
		if s.Index != i || s.RunID != "run-a" {
			t.Errorf("slice %d: %+v", i, s)
		}
	}
	if all[1].Cursor != "c1" || all[1].Pending[0] != "U1" || all[1].Counts.Renewed != 3 || !all[1].Done || !all[1].UpdatedAt.Equal(t0) {
		t.Errorf("slice 1 read back: %+v", all[1])
	}
	page, _, err := log.Entries(ctx, audit.Query{Limit: 10})
	if err != nil || len(page) != 1 || page[0].UVCIs[0] != "U0" {
		t.Errorf("audit after saves: %+v %v", page, err)
	}
}
