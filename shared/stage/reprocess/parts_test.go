package reprocess_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vaxpass/vaxpass/shared/domain/match"
	"github.com/vaxpass/vaxpass/shared/stage/audit"
	"github.com/vaxpass/vaxpass/shared/stage/reprocess"
	"github.com/vaxpass/vaxpass/shared/vaxpass"
)

// partsService is a service that cuts runs of the test worlds into parts.
func (w *testWorld) partsService(batch, parts, workers int) *reprocess.Service {
	svc := w.service(batch)
	svc.Parts, svc.Workers, svc.MinPartDoses = parts, workers, 1
	svc.Facilities = w.sys.Store
	return svc
}

// overlapScan counts the scans in progress at once: a scan waits (a little) for another
// to start, so that workers that really run concurrently are seen doing so.
type overlapScan struct {
	reprocess.DoseStore
	now, max atomic.Int64
}

func (o *overlapScan) ScanDoses(ctx context.Context, st []match.Status, f []string, after vaxpass.DoseKey, limit int) ([]vaxpass.Dose, bool, error) {
	n := o.now.Add(1)
	defer o.now.Add(-1)
	for m := o.max.Load(); n > m && !o.max.CompareAndSwap(m, n); m = o.max.Load() {
	}
	for i := 0; i < 200 && o.max.Load() < 2; i++ {
		time.Sleep(time.Millisecond)
	}
	return o.DoseStore.ScanDoses(ctx, st, f, after, limit)
}

// doseStates renders every dose's match outcome, in key order.
func doseStates(t *testing.T, w *testWorld) []string {
	t.Helper()
	var out []string
	after := vaxpass.DoseKey{}
	for {
		page, done, err := w.sys.Store.ScanDoses(context.Background(), nil, nil, after, 1000)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range page {
			out = append(out, fmt.Sprintf("%s/%s %s %s %v", d.FacilityID, d.SourceID, d.Match.Status, d.PersonID, d.Match.Reasons))
		}
		if done || len(page) == 0 {
			return out
		}
		after = page[len(page)-1].Key()
	}
}

// auditedDoses returns the doses the audit trail names for a run and its entry count.
func auditedDoses(t *testing.T, w *testWorld, runID string) ([]string, int, map[string]int64) {
	t.Helper()
	var doses []string
	entries := 0
	var counts map[string]int64
	err := audit.All(context.Background(), w.ops.Audit, audit.Query{Action: audit.ActionReprocess}, func(e audit.Entry) error {
		if e.RunID == runID {
			entries++
			doses = append(doses, e.Doses...)
			if e.Counts != nil {
				counts = e.Counts
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return doses, entries, counts
}

// rematchEvery matches every record again after the registry update: it changes the
// records the update fixes (w.fixed), and scans them all.
var rematchEvery = reprocess.Selector{Stage: reprocess.StageMatch, Actor: "cli:test", Reason: "registry update, every record"}

func matched(t *testing.T, w *testWorld) {
	t.Helper()
	if _, err := w.service(50).Run(context.Background(), matchAll, reprocess.Options{}); err != nil {
		t.Fatal(err)
	}
	w.loadUpdate(t)
}

// TestPartsRunConcurrently: a run cut into parts works them at once (the scans overlap),
// and ends as a run of one cursor over the same records does.
func TestPartsRunConcurrently(t *testing.T) {
	ctx := context.Background()
	single, parted := newWorld(t, 600), newWorld(t, 600)
	matched(t, single)
	matched(t, parted)

	one, err := single.service(25).Run(ctx, rematchEvery, reprocess.Options{})
	if err != nil || !one.Done {
		t.Fatalf("one cursor: %+v %v", one, err)
	}
	svc := parted.partsService(25, 6, 3)
	scan := &overlapScan{DoseStore: svc.Doses}
	svc.Doses = scan
	var progress atomic.Int64
	var changes []string
	sum, err := svc.Run(ctx, rematchEvery, reprocess.Options{
		Progress: progressFunc(func(n int64) { progress.Add(n) }),
		OnChange: func(c reprocess.Change) { changes = append(changes, c.ID) }, // never concurrently
	})
	if err != nil || !sum.Done || sum.AuditEntries != 1 {
		t.Fatalf("parts: %+v %v", sum, err)
	}
	run, err := svc.GetRun(ctx, sum.RunID)
	if err != nil || run.Parts < 2 || run.Parts > 6 || run.State != reprocess.Done || !run.Audited || run.PartsDone != run.Parts {
		t.Fatalf("run %+v %v; want 2-6 parts, done and audited", run, err)
	}
	if scan.max.Load() < 2 {
		t.Errorf("at most %d scans at once: the parts were not worked concurrently", scan.max.Load())
	}
	if !equalCounts(sum.Counts, one.Counts) || run.Counts.Changed != one.Counts.Changed || progress.Load() != one.Counts.Scanned {
		t.Errorf("counts %+v (stored %+v, progress %d), one cursor %+v", sum.Counts, run.Counts, progress.Load(), one.Counts)
	}
	slices.Sort(changes)
	if !slices.Equal(changes, parted.fixed) {
		t.Errorf("%d changes heard, %d records fixed", len(changes), len(parted.fixed))
	}
	if a, b := doseStates(t, single), doseStates(t, parted); !slices.Equal(a, b) {
		t.Errorf("the doses differ after the two runs (%d, %d)", len(a), len(b))
	}
	got, _, _ := auditedDoses(t, parted, sum.RunID)
	want, _, _ := auditedDoses(t, single, one.RunID)
	if !slices.Equal(got, want) {
		t.Errorf("audited %d doses, one cursor %d", len(got), len(want))
	}
	// The journal reads as one, in unit ID order, page by page.
	var paged []string
	after := ""
	for {
		page, err := svc.Changes(ctx, sum.RunID, after, 7)
		if err != nil {
			t.Fatal(err)
		}
		if len(page) == 0 {
			break
		}
		for _, c := range page {
			paged = append(paged, c.ID)
		}
		after = page[len(page)-1].ID
	}
	if !slices.Equal(paged, want) {
		t.Errorf("Changes paged %d changes, want %d in unit ID order", len(paged), len(want))
	}
	runs, err := svc.ListRuns(ctx)
	if err != nil || len(runs) != 2 || runs[1].ID != sum.RunID || runs[1].Counts.Changed != one.Counts.Changed {
		t.Errorf("ListRuns lists %d runs (parts are not runs), %v", len(runs), err)
	}
}

type progressFunc func(int64)

func (f progressFunc) Add(n int64) { f(n) }

func equalCounts(a, b reprocess.Counts) bool {
	return a.Scanned == b.Scanned && a.Selected == b.Selected && a.Changed == b.Changed &&
		a.Unchanged == b.Unchanged && a.Failed == b.Failed && fmt.Sprint(a.Outcomes) == fmt.Sprint(b.Outcomes)
}

// TestPartsSurviveCrashes kills a run of several parts at every point (the process dies
// after 0-6 saves, workers in the middle of their batches) and starts it again until it
// ends: the same counts, the same doses, the same audit entry as an uninterrupted run.
func TestPartsSurviveCrashes(t *testing.T) {
	ctx := context.Background()
	clean, crashy := newWorld(t, 600), newWorld(t, 600)
	matched(t, clean)
	matched(t, crashy)
	want, err := clean.partsService(25, 5, 3).Run(ctx, rematchEvery, reprocess.Options{})
	if err != nil || !want.Done {
		t.Fatalf("uninterrupted: %+v %v", want, err)
	}

	crashes := 0
	var last reprocess.Summary
	for allow := 1; ; allow++ {
		svc := crashy.partsService(25, 5, 3)
		svc.Runs = &crashingRuns{RunStore: svc.Runs, allow: allow % 7}
		last, err = svc.Run(ctx, rematchEvery, reprocess.Options{})
		if err == nil {
			break
		}
		if !errors.Is(err, errCrash) {
			t.Fatal(err)
		}
		if crashes++; crashes > 2000 {
			t.Fatal("the run makes no progress across crashes")
		}
	}
	run, err := crashy.service(25).GetRun(ctx, last.RunID)
	if err != nil || run.Parts < 2 || run.Resumes == 0 {
		t.Fatalf("run %+v %v: want several parts, resumed", run, err)
	}
	if crashes < 5 || !equalCounts(last.Counts, want.Counts) || last.Counts.Changed != int64(len(crashy.fixed)) {
		t.Errorf("%d crashes: counts %+v, uninterrupted %+v", crashes, last.Counts, want.Counts)
	}
	if a, b := doseStates(t, clean), doseStates(t, crashy); !slices.Equal(a, b) {
		t.Errorf("the doses differ from an uninterrupted run's")
	}
	gotDoses, entries, counts := auditedDoses(t, crashy, last.RunID)
	wantDoses, _, wantCounts := auditedDoses(t, clean, want.RunID)
	if entries != 1 || !slices.Equal(gotDoses, wantDoses) || counts["changed"] != wantCounts["changed"] || counts["scanned"] != wantCounts["scanned"] {
		t.Errorf("audit: %d entries, %d doses (want 1 with %d), counts %v want %v", entries, len(gotDoses), len(wantDoses), counts, wantCounts)
	}
	t.Logf("%d records fixed by %d parts through %d crashes", len(crashy.fixed), run.Parts, crashes)
}

// TestPartsCancelledAndResumed: a run cancelled in the middle (ctx) stays resumable and
// ends as an uninterrupted one.
func TestPartsCancelledAndResumed(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t, 400)
	matched(t, w)
	svc := w.partsService(5, 4, 2)
	cctx, cancel := context.WithCancel(ctx)
	var seen atomic.Int64
	_, err := svc.Run(cctx, rematchEvery, reprocess.Options{Progress: progressFunc(func(n int64) {
		if seen.Add(n) > 30 {
			cancel()
		}
	})})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled run: %v", err)
	}
	runs, _ := svc.ListRuns(ctx)
	if len(runs) != 2 || runs[1].State != reprocess.Running || runs[1].Counts.Scanned == 0 || runs[1].Counts.Scanned >= runs[1].Total {
		t.Fatalf("after the cancel: %+v", runs)
	}
	total, done, err := svc.Plan(ctx, rematchEvery)
	if err != nil || total != runs[1].Total || done != runs[1].Counts.Scanned {
		t.Errorf("Plan = %d, %d, %v; want %d, %d", total, done, err, runs[1].Total, runs[1].Counts.Scanned)
	}
	sum, err := svc.Run(ctx, rematchEvery, reprocess.Options{})
	if err != nil || !sum.Done || !sum.Resumed || sum.Counts.Changed != int64(len(w.fixed)) || sum.Counts.Scanned != runs[1].Total {
		t.Fatalf("resumed: %+v %v; want %d changed", sum, err, len(w.fixed))
	}
}

// TestWorkPartFinishesOnce works each part in its own call, all at once, as the ops
// function's work queue does: the run is finished and audited once, by one of them.
func TestWorkPartFinishesOnce(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t, 400)
	matched(t, w)
	svc := w.partsService(10, 8, 1)
	run, err := svc.Begin(ctx, rematchEvery)
	if err != nil || run.Parts < 3 {
		t.Fatalf("begin: %+v %v", run, err)
	}
	if _, err := svc.WorkPart(ctx, run.ID, run.Parts, reprocess.Options{}); !errors.Is(err, vaxpass.ErrInvalid) {
		t.Errorf("part %d of %d: %v", run.Parts, run.Parts, err)
	}
	// A call whose time is up stops before a batch: its part is not done.
	short, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	sum, err := svc.WorkPart(short, run.ID, 0, reprocess.Options{StopBefore: time.Hour})
	if err != nil || sum.Done || sum.RunDone {
		t.Errorf("a call out of time: %+v %v", sum, err)
	}
	if todo, err := svc.UnfinishedParts(ctx, run); err != nil || len(todo) != run.Parts {
		t.Errorf("unfinished parts %v %v", todo, err)
	}
	// Part 1's worker dies after announcing its first batch: the next worker of part 1
	// redoes the batch, and counts the part resumed.
	dying := w.partsService(10, 8, 1)
	dying.Runs = &crashingRuns{RunStore: dying.Runs, allow: 1}
	if _, err := dying.WorkPart(ctx, run.ID, 1, reprocess.Options{}); !errors.Is(err, errCrash) {
		t.Fatalf("dying worker: %v", err)
	}
	var wg sync.WaitGroup
	var finished, entries atomic.Int64
	var changed atomic.Int64
	for i := range run.Parts {
		wg.Go(func() {
			sum, err := svc.WorkPart(ctx, run.ID, i, reprocess.Options{})
			if err != nil || !sum.Done {
				t.Errorf("part %d: %+v %v", i, sum, err)
			}
			changed.Add(sum.Counts.Changed)
			if sum.RunDone {
				finished.Add(1)
			}
			entries.Add(int64(sum.AuditEntries))
		})
	}
	wg.Wait()
	got, err := svc.GetRun(ctx, run.ID)
	if err != nil || got.State != reprocess.Done || !got.Audited || got.Resumes != 1 || got.Counts.Changed != int64(len(w.fixed)) || changed.Load() != got.Counts.Changed {
		t.Fatalf("run %+v %v; parts changed %d; want %d", got, err, changed.Load(), len(w.fixed))
	}
	doses, n, _ := auditedDoses(t, w, run.ID)
	if n != 1 || entries.Load() != 1 || len(doses) != len(w.fixed) || finished.Load() < 1 {
		t.Errorf("%d audit entries (%d told), %d doses; %d calls saw the run done", n, entries.Load(), len(doses), finished.Load())
	}
	if _, err := svc.WorkPart(ctx, run.ID, 0, reprocess.Options{}); !errors.Is(err, reprocess.ErrRunFinished) {
		t.Errorf("a part of a finished run: %v", err)
	}
	if todo, err := svc.UnfinishedParts(ctx, got); err != nil || len(todo) != 0 {
		t.Errorf("unfinished parts of a done run %v %v", todo, err)
	}
}

// TestOneCursorRunResumesAsOnePart: a run stored before runs had parts (one cursor in its
// own state) is resumed by a service that cuts new runs into parts, and stays one part.
func TestOneCursorRunResumesAsOnePart(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t, 400)
	matched(t, w)
	old := w.service(10)
	old.Parts = 1
	old.Runs = &crashingRuns{RunStore: old.Runs, allow: 6}
	if _, err := old.Run(ctx, rematchEvery, reprocess.Options{}); !errors.Is(err, errCrash) {
		t.Fatalf("first attempt: %v", err)
	}
	svc := w.partsService(10, 8, 4)
	runs, _ := svc.ListRuns(ctx)
	if len(runs) != 2 || runs[1].Parts != 0 || runs[1].Counts.Scanned == 0 {
		t.Fatalf("stored: %+v", runs)
	}
	sum, err := svc.Run(ctx, reprocess.Selector{RunID: runs[1].ID}, reprocess.Options{})
	if err != nil || !sum.Done || !sum.Resumed || sum.Counts.Changed != int64(len(w.fixed)) {
		t.Fatalf("resumed: %+v %v", sum, err)
	}
	run, _ := svc.GetRun(ctx, sum.RunID)
	if run.Parts != 0 || run.Resumes != 1 {
		t.Errorf("resumed run %+v", run)
	}
	_, entries, _ := auditedDoses(t, w, sum.RunID)
	if entries != 1 {
		t.Errorf("%d audit entries", entries)
	}
}

// TestRestartAbandonsParts: --restart of an interrupted run of parts settles the parts'
// interrupted batches, audits the run abandoned, and the new run finishes the rest.
func TestRestartAbandonsParts(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t, 400)
	matched(t, w)
	svc := w.partsService(2, 4, 2)
	svc.Runs = &crashingRuns{RunStore: svc.Runs, allow: 6}
	if _, err := svc.Run(ctx, rematch, reprocess.Options{}); !errors.Is(err, errCrash) {
		t.Fatalf("first attempt: %v", err)
	}
	restart := rematch
	restart.Restart = true
	sum, err := w.partsService(2, 4, 2).Run(ctx, restart, reprocess.Options{})
	if err != nil || sum.Resumed || !sum.Done {
		t.Fatalf("restart: %+v %v", sum, err)
	}
	runs, _ := w.service(5).ListRuns(ctx)
	if len(runs) != 3 || runs[1].State != reprocess.Abandoned || !runs[1].Audited || runs[1].Parts < 2 {
		t.Fatalf("runs %+v", runs)
	}
	a, _, _ := auditedDoses(t, w, runs[1].ID)
	b, _, _ := auditedDoses(t, w, sum.RunID)
	both := append(a, b...)
	slices.Sort(both)
	if len(a) == 0 || runs[1].Counts.Changed != int64(len(a)) || !slices.Equal(both, w.fixed) {
		t.Errorf("abandoned run changed %d (counted %d), new run %d; %d fixed in all", len(a), runs[1].Counts.Changed, len(b), len(w.fixed))
	}
	if !strings.HasPrefix(runs[1].ID, "rp-") {
		t.Errorf("run ID %q", runs[1].ID)
	}
}
