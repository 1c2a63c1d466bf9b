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
	a.Cursor, a.Pending = "abc", []string{"U1", "U2"}
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
	if err != nil || !found || got.ID != "run-a" || got.Version != 2 || got.Cursor != "abc" || len(got.Pending) != 2 || !got.StartedAt.Equal(t0) {
		t.Fatalf("unfinished run after reopen: %+v %v %v", got, found, err)
	}
	got.FinishedAt = t0.Add(time.Minute)
	got.Pending = nil
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
