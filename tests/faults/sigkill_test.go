package faults

import (
	"context"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/vaxpass/vaxpass/shared/domain/match"
	"github.com/vaxpass/vaxpass/shared/store/embedded"
	"github.com/vaxpass/vaxpass/shared/store/embedded/queue"
	"github.com/vaxpass/vaxpass/shared/testkit/server"
	"github.com/vaxpass/vaxpass/shared/wire/local"
)

// faultSeed is VAXPASS_FAULT_SEED, or a fresh seed; the test logs it so that a failing
// run's kill points can be replayed.
func faultSeed(t *testing.T) uint64 {
	t.Helper()
	if s := os.Getenv("VAXPASS_FAULT_SEED"); s != "" {
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("VAXPASS_FAULT_SEED=%q: %v", s, err)
		}
		return n
	}
	return rand.Uint64()
}

// visibilityTimeout is what `serve` runs the central queue with (local.Options' default;
// serve has no flag for it).
const visibilityTimeout = 30 * time.Second

// bulkRun is one SIGKILL run in progress.
type bulkRun struct {
	t     *testing.T
	pop   *population
	data  string
	keys  []string
	led   *ledger
	srv   *faultServer
	rng   *rand.Rand
	start time.Time
	kills int
}

func (r *bulkRun) state() runState { return runState{pop: r.pop, sent: r.led.sent, acked: r.led.acked} }

// uploadAcked uploads a batch and requires an answer.
func (r *bulkRun) uploadAcked(b batch) {
	r.t.Helper()
	r.led.markSent(r.pop, b)
	rep, _, err := r.srv.upload(r.pop, b, r.keys[b.facility])
	if err != nil {
		r.t.Fatalf("upload: %v", err)
	}
	for _, bad := range r.led.record(r.pop, b, rep) {
		r.t.Error(bad)
	}
}

// killNow SIGKILLs the server, checks the safety half of the invariant on what it left,
// and restarts it on the same data directory. It returns the report of the check.
func (r *bulkRun) killNow(point string) invariantReport {
	r.t.Helper()
	r.srv.Kill()
	r.kills++
	rep := requireInvariant(r.t, r.data, r.state(), atCrash, time.Now())
	r.t.Logf("kill %d (%s) at %s", r.kills, point, time.Since(r.start).Round(time.Millisecond))
	r.srv = startServer(r.t, r.data)
	return rep
}

// killDuringUpload sends batch b and kills the server while the request may be in
// flight (the delay is random: before, during or after the commit). After the restart
// the client re-sends the batch it got no answer for, as a facility's retry does: every
// record must come back accepted or duplicate, and none accepted twice over the two
// answers.
func (r *bulkRun) killDuringUpload(b batch, point string) {
	r.t.Helper()
	r.led.markSent(r.pop, b)
	type answer struct {
		rep uploadReport
		err error
	}
	ans := make(chan answer, 1)
	go func() {
		rep, _, err := r.srv.upload(r.pop, b, r.keys[b.facility])
		ans <- answer{rep, err}
	}()
	time.Sleep(time.Duration(r.rng.IntN(40_000)) * time.Microsecond)
	rep := r.killNow(point)
	a := <-ans
	if a.err == nil {
		// The answer made it out before the kill: the records it accepted must be stored.
		for _, bad := range r.led.record(r.pop, b, a.rep) {
			r.t.Error(bad)
		}
		r.t.Logf("  the upload was answered before the kill (%d accepted); %d records were stored", a.rep.Accepted, rep.Stored)
	} else {
		r.t.Logf("  the upload got no answer (%v); %d records were stored, %d of them PENDING", a.err, rep.Stored, rep.ByStatus[match.Pending])
	}
	// The client's retry.
	again, _, err := r.srv.upload(r.pop, b, r.keys[b.facility])
	if err != nil {
		r.t.Fatalf("re-sent upload: %v", err)
	}
	for _, bad := range r.led.record(r.pop, b, again) {
		r.t.Error(bad)
	}
	if again.Rejected != 0 {
		r.t.Errorf("  %d records rejected on the retry; the answers must be accepted or duplicate", again.Rejected)
	}
	r.t.Logf("  re-sent: %d accepted, %d duplicates", again.Accepted, again.Duplicates)
}

// TestSIGKILLDuringBulkRun uploads a generated population in batches of 1,000 to the
// real server over three facilities and SIGKILLs it at random points: twice during the
// upload (a batch in flight), once while the matcher works through the backlog, once
// in the middle of a facility signing run, and once right after the facilities signed,
// while central signing drains its queue. Each kill is followed by the safety check
// and a restart on the same data directory; the run then finishes, drains, and must pass
// the whole invariant.
func TestSIGKILLDuringBulkRun(t *testing.T) {
	t.Parallel()
	seed := faultSeed(t)
	people := faultPeople(t)
	t.Logf("VAXPASS_FAULT_SEED=%d VAXPASS_FAULT_PEOPLE=%d", seed, people)
	r := &bulkRun{t: t, rng: rand.New(rand.NewPCG(seed, 0xfa17)), start: time.Now(), led: newLedger()}
	r.pop = generate(t, people, people*recordsPerPerson, seed)
	r.data = server.ScratchDir(t)
	r.keys = setUp(t, r.data, r.pop)
	batches := r.pop.batches()
	if len(batches) < 4 {
		t.Fatalf("%d batches: VAXPASS_FAULT_PEOPLE must give at least 4 uploads of %d", len(batches), batchSize)
	}
	t.Logf("%d records in %d uploads, set up in %s", len(r.pop.raw), len(batches), time.Since(r.start).Round(time.Millisecond))
	r.srv = startServer(t, r.data)

	// Kills 1 and 2: during the upload, at two random batches.
	k1 := 1 + r.rng.IntN(len(batches)/2)
	k2 := k1 + 1 + r.rng.IntN(len(batches)-k1-1)
	for i, b := range batches {
		switch i {
		case k1, k2:
			r.killDuringUpload(b, "upload "+strconv.Itoa(i+1)+" of "+strconv.Itoa(len(batches))+" in flight")
		default:
			r.uploadAcked(b)
		}
	}
	uploaded := time.Since(r.start)

	// Kill 3: while the matcher works through the backlog (a random moment after the
	// last upload was answered; the report says how many records it caught PENDING).
	time.Sleep(time.Duration(r.rng.IntN(int(max(uploaded/time.Duration(len(batches)), time.Millisecond)))))
	rep := r.killNow("after the last upload, the matcher at work")
	r.t.Logf("  %d records PENDING at the kill", rep.ByStatus[match.Pending])
	r.srv.waitMatched(r.keys, 5*time.Minute)
	t.Logf("every record matched at %s", time.Since(r.start).Round(time.Millisecond))

	// Kill 4: in the middle of a facility's signing run (POST /v1/signatures in flight).
	fac := r.rng.IntN(facilityCount)
	signAns := make(chan error, 1)
	signStart := time.Now()
	go func() {
		status, body, err := r.srv.request("POST", "/v1/signatures", r.keys[fac], nil)
		if err == nil && status != http.StatusOK && status != http.StatusAccepted {
			t.Errorf("POST /v1/signatures: status %d: %.300s", status, body)
		}
		signAns <- err
	}()
	time.Sleep(time.Duration(r.rng.IntN(int(50*time.Millisecond) + 1)))
	into := time.Since(signStart)
	rep = r.killNow("POST /v1/signatures of " + facilityID(fac) + " in flight")
	if err := <-signAns; err == nil {
		t.Logf("  the signing run was answered before the kill")
	}
	t.Logf("  killed %s into the signing run: %d certificates issued, central queue %+v", into.Round(time.Millisecond), rep.Issued, rep.Queue)

	// Kill 5: right after every facility's POST /v1/signatures was answered, while
	// central signing drains the queue.
	signed := r.srv.signAll(r.keys)
	time.Sleep(time.Duration(r.rng.IntN(int(30*time.Millisecond) + 1)))
	killedAt := time.Now()
	rep = r.killNow("central signing draining")
	t.Logf("  the facilities had signed %v people; %d certificates issued, central queue %+v", signed, rep.Issued, rep.Queue)
	caughtQueue := rep.Queue.Visible + rep.Queue.InFlight + rep.Queue.Delayed

	// Finish: the facilities retry their signing runs; the server drains what it can.
	again := r.srv.signAll(r.keys)
	t.Logf("after the last restart the facilities signed %v more people", again)
	// Messages in flight at the last kill come back after the visibility timeout.
	skew := max(0, time.Until(killedAt.Add(visibilityTimeout+time.Second)))
	if os.Getenv("VAXPASS_FAULT_REAL_TIME") == "1" {
		drainOnServer(t, r.srv, killedAt)
		skew = 0
	} else {
		r.srv.Stop()
		drain(t, r.data, skew)
	}
	final := requireInvariant(t, r.data, r.state(), finished, time.Now().Add(skew))
	if fi, err := os.Stat(filepath.Join(r.data, embedded.FileName)); err == nil {
		t.Logf("database file: %d MiB", fi.Size()>>20)
	}
	if caughtQueue == 0 {
		t.Logf("note: the drain kill found the central queue empty (signing had finished): seed %d", seed)
	}
	if final.Eligible == 0 {
		t.Error("no eligible person in the run: the check proved nothing")
	}
	t.Logf("%d kills, %d records, %d eligible people certified, in %s", r.kills, len(r.led.acked), final.Certified, time.Since(r.start).Round(time.Millisecond))
}

// drainOnServer lets the real server finish on its own: it waits out the visibility
// timeout of the messages in flight at the last kill, then stops the server now and then
// to look at the data directory (the server holds its lock) until the central queue and
// the change feed are empty. The server is stopped when it returns.
func drainOnServer(t *testing.T, srv *faultServer, killedAt time.Time) {
	t.Helper()
	time.Sleep(time.Until(killedAt.Add(visibilityTimeout + time.Second)))
	for attempt := 1; ; attempt++ {
		time.Sleep(time.Second)
		srv.Stop()
		c, lag := pendingWork(t, srv.Data)
		if c.Visible+c.InFlight+c.Delayed == 0 && lag == 0 {
			t.Logf("the server drained by itself (%d looks)", attempt)
			return
		}
		if attempt == 120 {
			t.Fatalf("the server did not drain: central queue %+v, feed lag %d", c, lag)
		}
		srv = startServer(t, srv.Data)
	}
}

// pendingWork reads a stopped server's central queue counts and the matcher's lag.
func pendingWork(t *testing.T, data string) (queue.Counts, uint64) {
	t.Helper()
	ctx := context.Background()
	db, err := embedded.Open(data)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	store, err := embedded.OpenStore(db, embedded.StoreOptions{})
	if err != nil {
		t.Fatal(err)
	}
	q, err := queue.Open(db.Bolt(), local.CentralQueueName, queue.Config{})
	if err != nil {
		t.Fatal(err)
	}
	c, err := q.Counts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.DoseFeed().Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	lag := st.LastSeq
	if cs, ok := st.Consumers[local.MatcherConsumer]; ok {
		lag = cs.Lag
	}
	return c, lag
}
