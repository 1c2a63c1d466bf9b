package signing_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/vaxpass/vaxpass/shared/domain/facilitysig"
	"github.com/vaxpass/vaxpass/shared/stage/signing"
	"github.com/vaxpass/vaxpass/shared/store/embedded"
	"github.com/vaxpass/vaxpass/shared/vaxpass"
)

// queuedRuns is a RunQueue that keeps what it is given.
type queuedRuns struct {
	mu  sync.Mutex
	ids []string
}

func (q *queuedRuns) ContinueSigningRun(_ context.Context, id string) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.ids = append(q.ids, id)
	return nil
}

// slowKeys moves the rig's clock by step on every page (the facility key is asked for
// once a page), so a run's time budget is spent in pages.
type slowKeys struct {
	signing.FacilityKeys
	r    *rig
	step time.Duration
}

func (k slowKeys) FacilitySigner(ctx context.Context, id string) (facilitysig.Signer, error) {
	k.r.now = k.r.now.Add(k.step)
	return k.FacilityKeys.FacilitySigner(ctx, id)
}

func newRuns(t *testing.T, r *rig, step time.Duration) (*signing.Runs, *queuedRuns) {
	t.Helper()
	db, err := embedded.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	store, err := embedded.OpenSigningRuns(db)
	if err != nil {
		t.Fatal(err)
	}
	fs := *r.facility
	fs.Keys = slowKeys{FacilityKeys: r.keys, r: r, step: step}
	q := &queuedRuns{}
	return &signing.Runs{Signer: &fs, Store: store, Queue: q, Now: func() time.Time { return r.now }}, q
}

func TestRunSignsInCallWhileTimeLasts(t *testing.T) {
	ctx := context.Background()
	r := newRig(t)
	const people = 9 // pages of 2: 5 pages
	for i := range people {
		r.addVerifiedOf(t, fmt.Sprintf("0010880%05d", i), "site-a", fmt.Sprintf("j%d", i), "JANSSEN", "2021-08-01")
	}
	runs, q := newRuns(t, r, time.Second)

	// 2.5 s in the call at 1 s a page: two pages (the third would end past the limit).
	run, err := runs.Start(ctx, "site-a", signing.Interactive, 2500*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if run.Status != signing.RunRunning || run.Signed != 4 || run.Pages != 2 || len(q.ids) != 1 || q.ids[0] != run.ID {
		t.Fatalf("after the call: %+v, queued %v; want running with 4 signed and the run queued", run, q.ids)
	}
	// A repeated message of the same run, worked at once by two workers: one saves first,
	// the other's save conflicts and it stops.
	other, _ := runs.Continue(ctx, run.ID, r.now.Add(1500*time.Millisecond))
	if other.Status != signing.RunRunning || other.Signed != 6 {
		t.Fatalf("one more page: %+v", other)
	}
	stale := run
	stale.Signed = 99
	if err := runs.Store.SaveSigningRun(ctx, &stale); !errors.Is(err, vaxpass.ErrConflict) {
		t.Fatalf("saving a stale copy: %v, want ErrConflict", err)
	}
	done, err := runs.Continue(ctx, run.ID, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if done.Status != signing.RunDone || done.Signed != people || done.FinishedAt.IsZero() {
		t.Fatalf("finished run: %+v, want done with %d signed", done, people)
	}
	if _, err := runs.Continue(ctx, run.ID, time.Time{}); !errors.Is(err, signing.ErrRunOver) {
		t.Fatalf("a finished run continued: %v, want ErrRunOver", err)
	}
	got, err := runs.Get(ctx, run.ID)
	if err != nil || got.Signed != people || got.Status != signing.RunDone {
		t.Fatalf("Get: %+v, %v", got, err)
	}
	if outs := r.drain(t); len(outs) != people {
		t.Fatalf("%d signatures reached central signing, want %d (each person once)", len(outs), people)
	}
}

func TestRunWithoutTimeQueuesEverything(t *testing.T) {
	ctx := context.Background()
	r := newRig(t)
	r.addVerifiedOf(t, "001088000001", "site-a", "j1", "JANSSEN", "2021-08-01")
	runs, q := newRuns(t, r, 0)
	run, err := runs.Start(ctx, "site-a", signing.Bulk, 0)
	if err != nil || run.Status != signing.RunRunning || run.Signed != 0 || len(q.ids) != 1 {
		t.Fatalf("Start(0): %+v, %v, queued %v", run, err, q.ids)
	}
	done, err := runs.Continue(ctx, run.ID, time.Time{})
	if err != nil || done.Status != signing.RunDone || done.Signed != 1 || done.Priority != signing.Bulk {
		t.Fatalf("Continue: %+v, %v", done, err)
	}
	if len(q.ids) != 1 {
		t.Fatalf("a finished run was queued again: %v", q.ids)
	}
}

func TestRunOfFacilityWithoutKeyFails(t *testing.T) {
	ctx := context.Background()
	r := newRig(t)
	runs, _ := newRuns(t, r, 0)
	run, err := runs.Start(ctx, "site-unknown", signing.Interactive, time.Minute)
	if err != nil || run.Status != signing.RunFailed || run.Error == "" {
		t.Fatalf("run of a facility without a key: %+v, %v; want failed", run, err)
	}
}

func TestBulkSignaturesGoToTheBulkQueue(t *testing.T) {
	ctx := context.Background()
	r := newRig(t)
	r.addVerifiedOf(t, "001088000001", "site-a", "j1", "JANSSEN", "2021-08-01")
	r.addVerifiedOf(t, "001088000002", "site-b", "j2", "JANSSEN", "2021-08-01")
	bulk := &sentSignatures{}
	fs := *r.facility
	fs.BulkQueue = bulk
	if _, err := fs.SignPage(ctx, "site-a", "", signing.Bulk); err != nil {
		t.Fatal(err)
	}
	if _, err := fs.SignPage(ctx, "site-b", "", signing.Interactive); err != nil {
		t.Fatal(err)
	}
	if len(*bulk) != 1 || (*bulk)[0].FacilityID != "site-a" || len(*r.queue) != 1 || (*r.queue)[0].FacilityID != "site-b" {
		t.Fatalf("bulk queue %v, interactive queue %v", *bulk, *r.queue)
	}
}

func TestOneRunAtATimePerFacility(t *testing.T) {
	ctx := context.Background()
	r := newRig(t)
	r.addVerifiedOf(t, "001088000001", "site-a", "j1", "JANSSEN", "2021-08-01")
	runs, q := newRuns(t, r, 0)
	first, err := runs.Start(ctx, "site-a", signing.Bulk, 0)
	if err != nil {
		t.Fatal(err)
	}
	// The daily run and a facility's call while the first is still queued: the same run.
	second, err := runs.Start(ctx, "site-a", signing.Interactive, time.Minute)
	if err != nil || second.ID != first.ID || len(q.ids) != 1 {
		t.Fatalf("second start: %+v, %v, queued %v; want run %s again", second, err, q.ids, first.ID)
	}
	// A run that saved nothing for longer than a worker can take is not counted on.
	r.now = r.now.Add(time.Hour)
	third, err := runs.Start(ctx, "site-a", signing.Interactive, time.Minute)
	if err != nil || third.ID == first.ID || third.Status != signing.RunDone || third.Signed != 1 {
		t.Fatalf("start after a lost run: %+v, %v; want a new run that signs", third, err)
	}
}
