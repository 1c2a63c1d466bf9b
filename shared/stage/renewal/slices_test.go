package renewal_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/vaxpass/vaxpass/shared/stage/audit"
	"github.com/vaxpass/vaxpass/shared/stage/renewal"
	"github.com/vaxpass/vaxpass/shared/vaxpass"
)

func TestCut(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	// Equal ranges over [lo, hi].
	cuts := renewal.Cut(t0, t0.Add(4*time.Hour), t0.Add(-time.Hour), 4)
	if len(cuts) != 3 || !cuts[0].Equal(t0.Add(time.Hour)) || !cuts[2].Equal(t0.Add(3*time.Hour)) {
		t.Errorf("cuts %v", cuts)
	}
	// Expired certificates (before start) fall into the first slice: the window is cut.
	start := t0.Add(10 * 24 * time.Hour)
	cuts = renewal.Cut(t0, start.Add(3*time.Hour), start, 3)
	if len(cuts) != 2 || !cuts[0].Equal(start.Add(time.Hour)) {
		t.Errorf("cuts with expired ones %v", cuts)
	}
	// Everything expired already: the expired range is cut.
	cuts = renewal.Cut(t0, t0.Add(2*time.Hour), start, 2)
	if len(cuts) != 1 || !cuts[0].Equal(t0.Add(time.Hour)) {
		t.Errorf("cuts of expired ones %v", cuts)
	}
	// One expiry, or a range too short to cut: fewer slices, bounds increasing.
	if cuts := renewal.Cut(t0, t0, start, 8); len(cuts) != 0 {
		t.Errorf("one expiry: cuts %v", cuts)
	}
	cuts = renewal.Cut(t0, t0.Add(2), time.Time{}, 8)
	for i := 1; i < len(cuts); i++ {
		if !cuts[i].After(cuts[i-1]) {
			t.Errorf("cuts not increasing: %v", cuts)
		}
	}
	if len(cuts) == 0 || len(cuts) > 2 {
		t.Errorf("3 ns cut in 8: %v", cuts)
	}
}

// sliceCounts reads the run's slices.
func (f *fixture) slices(t *testing.T, runID string) []renewal.Slice {
	t.Helper()
	sl, err := f.runs.RenewalSlices(context.Background(), runID)
	if err != nil {
		t.Fatal(err)
	}
	return sl
}

// checkAuditedOnce checks that every certificate's renewal is audited once, and the run
// once.
func (f *fixture) checkAuditedOnce(t *testing.T) {
	t.Helper()
	seen := map[string]int{}
	for _, e := range f.audit(t, audit.ActionRenewal) {
		for _, u := range e.UVCIs {
			seen[u]++
		}
	}
	for _, c := range f.certs {
		if seen[c.UVCI] != 1 {
			t.Errorf("%s audited as renewed %d times", c.UVCI, seen[c.UVCI])
		}
	}
	if runs := f.audit(t, audit.ActionRenewalRun); len(runs) != 1 || runs[0].Counts["renewed"] != int64(len(f.certs)) {
		t.Errorf("run entries %+v", runs)
	}
}

func TestRenewRunIsCutIntoSlicesThatAddUp(t *testing.T) {
	f := newFixture(t, 12)
	svc := f.service(nil, nil)
	svc.Slices, svc.Workers = 4, 2
	sum, err := svc.Run(context.Background(), "x", 400*24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if sum.Slices != 4 || sum.SlicesDone != 4 || sum.Counts.Renewed != 12 || sum.FinishedAt.IsZero() {
		t.Fatalf("summary %+v", sum)
	}
	var total int64
	for _, sl := range f.slices(t, sum.RunID) {
		if !sl.Done || sl.Pending != nil || sl.Counts.Renewed == 0 {
			t.Errorf("slice %+v: want done, having renewed some (the expiries are spread)", sl)
		}
		total += sl.Counts.Renewed
	}
	if total != 12 {
		t.Errorf("slices renewed %d in all, want 12", total)
	}
	f.checkRenewedOnce(t)
	f.checkAuditedOnce(t)
}

// TestWorkSliceFanOut works a run as the queue does: each slice by its own worker, some
// slices by two workers at once (a message delivered twice, or queued again while its
// worker lived), at once. Each certificate is renewed, counted and audited once, and the
// run is finished once.
func TestWorkSliceFanOut(t *testing.T) {
	f := newFixture(t, 20)
	ctx := context.Background()
	svc := f.service(nil, nil)
	svc.Slices = 5
	run, err := svc.Start(ctx, "queue", 400*24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if run.SliceCount() != 5 {
		t.Fatalf("%d slices", run.SliceCount())
	}
	var wg sync.WaitGroup
	errs := make(chan error, 10)
	for i := range run.SliceCount() {
		for dup := range 2 {
			if dup == 1 && i%2 == 1 {
				continue
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				w := f.service(nil, nil) // another process
				for {
					done, err := w.WorkSlice(ctx, run.ID, i, time.Time{})
					if errors.Is(err, renewal.ErrSliceTaken) {
						return // the other worker goes on
					}
					if err != nil || done {
						errs <- err
						return
					}
				}
			}()
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	// A slice whose both workers let it go would be left: queue again what is not done.
	left, err := svc.UnfinishedSlices(ctx, run, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	for _, i := range left {
		if _, err := svc.WorkSlice(ctx, run.ID, i, time.Time{}); err != nil {
			t.Fatal(err)
		}
	}
	sum, err := svc.Status(ctx, run.ID)
	if err != nil {
		t.Fatal(err)
	}
	if sum.FinishedAt.IsZero() || sum.Counts.Renewed != 20 || sum.Counts.Total() != 20 || sum.SlicesDone != 5 {
		t.Fatalf("status %+v", sum)
	}
	if _, found, _ := f.runs.UnfinishedRenewalRun(ctx); found {
		t.Error("the run is still unfinished")
	}
	f.checkRenewedOnce(t)
	f.checkAuditedOnce(t)
	// A message of a finished run has nothing to do.
	if done, err := svc.WorkSlice(ctx, run.ID, 0, time.Time{}); !done || err != nil {
		t.Errorf("slice of a finished run: %v %v", done, err)
	}
	if _, err := svc.WorkSlice(ctx, "renew-unknown", 0, time.Time{}); err != nil {
		t.Errorf("slice of an unknown run: %v", err)
	}
}

// TestWorkSliceKilledMidBatchResumes: a worker dies mid-batch (its message comes back);
// the next worker finishes the pending batch and the slice, each certificate once.
func TestWorkSliceKilledMidBatchResumes(t *testing.T) {
	for _, dieAfter := range []int{1, 2, 3} { // slice 0 holds 4 or 5
		f := newFixture(t, 9)
		ctx := context.Background()
		svc := f.service(nil, nil)
		svc.Slices = 2
		run, err := svc.Start(ctx, "queue", 400*24*time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		dying := f.service(nil, newFailAfter(f.store, dieAfter))
		if _, err := dying.WorkSlice(ctx, run.ID, 0, time.Time{}); !errors.Is(err, errDie) {
			t.Fatalf("dying worker: %v", err)
		}
		sl, err := f.runs.RenewalSlice(ctx, run.ID, 0)
		if err != nil || sl.Pending == nil {
			t.Fatalf("slice after the kill: %+v %v (want its batch pending)", sl, err)
		}
		for i := range run.SliceCount() {
			if done, err := svc.WorkSlice(ctx, run.ID, i, time.Time{}); !done || err != nil {
				t.Fatalf("slice %d: %v %v", i, done, err)
			}
		}
		sum, err := svc.Status(ctx, run.ID)
		if err != nil || sum.FinishedAt.IsZero() || sum.Counts.Renewed != 9 || sum.Counts.Total() != 9 {
			t.Fatalf("status %+v %v", sum, err)
		}
		f.checkRenewedOnce(t)
		f.checkAuditedOnce(t)
	}
}

// TestWorkSliceStopsAtTheEndOfABatch: a worker whose invocation is about to end stores
// its place and answers not done; the next goes on from there.
func TestWorkSliceStopsAtTheEndOfABatch(t *testing.T) {
	f := newFixture(t, 10)
	ctx := context.Background()
	svc := f.service(nil, nil)
	svc.Slices = 1
	run, err := svc.Start(ctx, "queue", 400*24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	svc.Progress = func(int64) {
		if n++; n == 1 {
			f.clock.Add(time.Minute) // the batch ends after the stop time
		}
	}
	stop := f.clock.Now().Add(time.Second)
	done, err := svc.WorkSlice(ctx, run.ID, 0, stop)
	if err != nil || done {
		t.Fatalf("WorkSlice = %v, %v; want stopped", done, err)
	}
	sl, err := f.runs.RenewalSlice(ctx, run.ID, 0)
	if err != nil || sl.Pending != nil || sl.Counts.Total() != 4 || sl.Cursor == "" {
		t.Fatalf("stored slice %+v %v: want one batch of 4 done", sl, err)
	}
	if done, err := svc.WorkSlice(ctx, run.ID, 0, time.Time{}); !done || err != nil {
		t.Fatal(done, err)
	}
	f.checkRenewedOnce(t)
	f.checkAuditedOnce(t)
}

// A slice saved with a stale version is refused: the second worker of a slice lets it go.
func TestSliceSaveIsConditional(t *testing.T) {
	f := newFixture(t, 0)
	ctx := context.Background()
	a := renewal.Slice{RunID: "run-x", Index: 3}
	if err := f.runs.SaveRenewalSlice(ctx, &a); err != nil || a.Version != 1 {
		t.Fatal(a.Version, err)
	}
	b := renewal.Slice{RunID: "run-x", Index: 3}
	if err := f.runs.SaveRenewalSlice(ctx, &b); !errors.Is(err, vaxpass.ErrConflict) {
		t.Fatalf("second create: %v", err)
	}
	stale := a
	a.Cursor = "c"
	if err := f.runs.SaveRenewalSlice(ctx, &a); err != nil || a.Version != 2 {
		t.Fatal(err)
	}
	if err := f.runs.SaveRenewalSlice(ctx, &stale); !errors.Is(err, vaxpass.ErrConflict) {
		t.Fatalf("stale save: %v", err)
	}
}
