package feed

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// recorder is a handler that remembers what it saw and fails the sequence numbers in
// fail (each for failTimes[seq] calls; forever when absent from failTimes).
type recorder struct {
	mu        sync.Mutex
	batches   [][]uint64
	fail      map[uint64]bool
	failTimes map[uint64]int
	err       error
}

func (r *recorder) handle(t testing.TB) Handler {
	return func(ctx context.Context, ev events.DynamoDBEvent) (events.DynamoDBEventResponse, error) {
		r.mu.Lock()
		defer r.mu.Unlock()
		var seqs []uint64
		var resp events.DynamoDBEventResponse
		for _, rec := range ev.Records {
			s := seqOf(t, rec)
			seqs = append(seqs, s)
			if r.fail[s] {
				if n, limited := r.failTimes[s]; !limited || n > 0 {
					if limited {
						r.failTimes[s] = n - 1
					}
					resp.BatchItemFailures = append(resp.BatchItemFailures, events.DynamoDBBatchItemFailure{ItemIdentifier: rec.Change.SequenceNumber})
				}
			}
		}
		r.batches = append(r.batches, seqs)
		return resp, r.err
	}
}

func newRecorder() *recorder {
	return &recorder{fail: map[uint64]bool{}, failTimes: map[uint64]int{}}
}

func newPump(t testing.TB, f *Feed, consumer string, h Handler, cfg PumpConfig) *Pump {
	t.Helper()
	p, err := NewPump(f, consumer, h, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func runOnce(t testing.TB, p *Pump) BatchResult {
	t.Helper()
	res, err := p.RunOnce(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func span(from, to uint64) []uint64 {
	var s []uint64
	for i := from; i <= to; i++ {
		s = append(s, i)
	}
	return s
}

func sameSeqs(a, b []uint64) bool {
	return fmt.Sprint(a) == fmt.Sprint(b)
}

func TestPumpDeliversInOrderAndTrims(t *testing.T) {
	db := openDB(t, t.TempDir())
	f := openFeed(t, db, Config{})
	putDoses(t, db, f, 250)
	rec := newRecorder()
	p := newPump(t, f, "matcher", rec.handle(t), PumpConfig{BatchSize: 100})
	for i, want := range []BatchResult{
		{Received: 100, Succeeded: 100, Checkpoint: 100},
		{Received: 100, Succeeded: 100, Checkpoint: 200},
		{Received: 50, Succeeded: 50, Checkpoint: 250},
		{Checkpoint: 250},
	} {
		if got := runOnce(t, p); got != want {
			t.Fatalf("batch %d = %+v, want %+v", i, got, want)
		}
	}
	if !sameSeqs(rec.batches[2], span(201, 250)) {
		t.Fatalf("third batch = %v", rec.batches[2])
	}
	st := stats(t, f)
	if st.LastSeq != 250 || st.Retained != 0 || st.Consumers["matcher"] != (ConsumerStats{Checkpoint: 250}) {
		t.Fatalf("stats = %+v", st)
	}
}

func TestPumpPartialFailureRetriesFromFirstFailed(t *testing.T) {
	db := openDB(t, t.TempDir())
	f := openFeed(t, db, Config{})
	putDoses(t, db, f, 10)
	rec := newRecorder()
	rec.fail[4], rec.fail[7] = true, true
	rec.failTimes[4], rec.failTimes[7] = 1, 1
	var reported []error
	p := newPump(t, f, "matcher", rec.handle(t), PumpConfig{OnError: func(err error) { reported = append(reported, err) }})

	if got := runOnce(t, p); got != (BatchResult{Received: 10, Succeeded: 3, Failed: 2, Attempt: 1, Checkpoint: 3}) {
		t.Fatalf("first batch = %+v", got)
	}
	if len(reported) != 1 || !errors.Is(reported[0], ErrRecordsFailed) {
		t.Fatalf("reported %v", reported)
	}
	if st := stats(t, f).Consumers["matcher"]; st != (ConsumerStats{Checkpoint: 3, Lag: 7, FailingSeq: 4, Attempts: 1}) {
		t.Fatalf("consumer = %+v", st)
	}
	// The retry starts at the first failed record: 5 and 6 come again (at-least-once).
	if got := runOnce(t, p); got != (BatchResult{Received: 7, Succeeded: 7, Checkpoint: 10}) {
		t.Fatalf("retry = %+v", got)
	}
	if !sameSeqs(rec.batches[1], span(4, 10)) {
		t.Fatalf("retry batch = %v", rec.batches[1])
	}
	if st := stats(t, f).Consumers["matcher"]; st != (ConsumerStats{Checkpoint: 10}) {
		t.Fatalf("consumer after retry = %+v", st)
	}
}

func TestPumpWholeBatchFailures(t *testing.T) {
	for _, tc := range []struct {
		name    string
		h       Handler
		wantErr error
	}{
		{"error", func(context.Context, events.DynamoDBEvent) (events.DynamoDBEventResponse, error) {
			return events.DynamoDBEventResponse{}, errors.New("registry unavailable")
		}, ErrHandler},
		{"panic", func(context.Context, events.DynamoDBEvent) (events.DynamoDBEventResponse, error) {
			panic("index out of range")
		}, ErrHandler},
		{"unknown identifier", func(context.Context, events.DynamoDBEvent) (events.DynamoDBEventResponse, error) {
			return events.DynamoDBEventResponse{BatchItemFailures: []events.DynamoDBBatchItemFailure{{ItemIdentifier: "999"}}}, nil
		}, ErrBadBatchItemFailure},
		{"empty identifier", func(context.Context, events.DynamoDBEvent) (events.DynamoDBEventResponse, error) {
			return events.DynamoDBEventResponse{BatchItemFailures: []events.DynamoDBBatchItemFailure{{}}}, nil
		}, ErrBadBatchItemFailure},
	} {
		t.Run(tc.name, func(t *testing.T) {
			db := openDB(t, t.TempDir())
			f := openFeed(t, db, Config{})
			putDoses(t, db, f, 3)
			var reported []error
			p := newPump(t, f, "matcher", tc.h, PumpConfig{OnError: func(err error) { reported = append(reported, err) }})
			if got := runOnce(t, p); got != (BatchResult{Received: 3, Failed: 3, Attempt: 1}) {
				t.Fatalf("result = %+v", got)
			}
			if len(reported) != 1 || !errors.Is(reported[0], tc.wantErr) {
				t.Fatalf("reported %v, want %v", reported, tc.wantErr)
			}
			if got := runOnce(t, p); got.Attempt != 2 || got.Checkpoint != 0 {
				t.Fatalf("second try = %+v", got)
			}
		})
	}
}

func TestPumpRetryLimitDeadLettersOnlyWhatFailed(t *testing.T) {
	clock := newClock()
	db := openDB(t, t.TempDir())
	f := openFeed(t, db, Config{Now: clock.Now})
	putDoses(t, db, f, 6)
	rec := newRecorder()
	rec.fail[3], rec.fail[5] = true, true // poison: fail forever
	var reported []error
	p := newPump(t, f, "matcher", rec.handle(t), PumpConfig{MaxRetries: 2, OnError: func(err error) { reported = append(reported, err) }})

	runOnce(t, p) // attempt 1: checkpoint 2
	for attempt := 2; attempt <= 3; attempt++ {
		got := runOnce(t, p)
		want := BatchResult{Received: 4, Failed: 2, Attempt: attempt, Checkpoint: 2}
		if attempt == 3 { // the retries are used up: 3 and 5 are parked, 4 and 6 done
			want = BatchResult{Received: 4, Succeeded: 2, Failed: 2, DeadLettered: 2, Attempt: 3, Checkpoint: 6}
		}
		if got != want {
			t.Fatalf("attempt %d = %+v, want %+v", attempt, got, want)
		}
	}
	if !errors.Is(reported[len(reported)-1], ErrDeadLettered) {
		t.Fatalf("dead-lettering not reported: %v", reported)
	}
	// The feed is not blocked.
	putDoses(t, db, f, 1)
	if got := runOnce(t, p); got != (BatchResult{Received: 1, Succeeded: 1, Checkpoint: 7}) {
		t.Fatalf("after the poison = %+v", got)
	}
	dead, err := f.ListDead(context.Background(), "matcher", 0, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(dead) != 2 || seqOf(t, dead[0].Record) != 3 || seqOf(t, dead[1].Record) != 5 ||
		dead[0].Reason != ReasonItemFailure || !dead[0].FailedAt.Equal(clock.Now()) || dead[0].Record.Change.NewImage["source_id"].String() != "s00002" {
		t.Fatalf("dead letters = %+v", dead)
	}
	if page, _ := f.ListDead(context.Background(), "matcher", 3, 10); len(page) != 1 || seqOf(t, page[0].Record) != 5 {
		t.Fatalf("second page = %+v", page)
	}
	if st := stats(t, f).Consumers["matcher"]; st.Dead != 2 || st.Attempts != 0 || st.FailingSeq != 0 {
		t.Fatalf("consumer = %+v", st)
	}

	// Once the cause is fixed, the consumer's own handler takes them again.
	rec.fail[5] = false
	res, err := f.Replay(context.Background(), "matcher", rec.handle(t), 10)
	if err != nil || res != (ReplayResult{Handled: 1, Failed: 1}) {
		t.Fatalf("replay = %+v, %v", res, err)
	}
	if n, err := f.DeleteDead(context.Background(), "matcher", []uint64{3, 99}); err != nil || n != 1 {
		t.Fatalf("delete dead = %d, %v", n, err)
	}
	if st := stats(t, f).Consumers["matcher"]; st.Dead != 0 {
		t.Fatalf("dead letters left: %+v", st)
	}
}

func TestPumpWholeBatchDeadLettered(t *testing.T) {
	db := openDB(t, t.TempDir())
	f := openFeed(t, db, Config{})
	putDoses(t, db, f, 3)
	p := newPump(t, f, "matcher", func(context.Context, events.DynamoDBEvent) (events.DynamoDBEventResponse, error) {
		return events.DynamoDBEventResponse{}, errors.New("always down" + strings.Repeat(" and out", 1000))
	}, PumpConfig{MaxRetries: NoRetries})
	if got := runOnce(t, p); got != (BatchResult{Received: 3, Failed: 3, DeadLettered: 3, Attempt: 1, Checkpoint: 3}) {
		t.Fatalf("result = %+v", got)
	}
	dead, err := f.ListDead(context.Background(), "matcher", 0, 10)
	if err != nil || len(dead) != 3 || !strings.Contains(dead[0].Reason, "always down") || len(dead[0].Reason) != maxReasonBytes {
		t.Fatalf("dead letters = %+v, %v", dead, err)
	}
}

func TestPumpUnlimitedRetries(t *testing.T) {
	db := openDB(t, t.TempDir())
	f := openFeed(t, db, Config{})
	putDoses(t, db, f, 2)
	rec := newRecorder()
	rec.fail[1] = true
	p := newPump(t, f, "matcher", rec.handle(t), PumpConfig{MaxRetries: RetryForever})
	for range 30 {
		if got := runOnce(t, p); got.Checkpoint != 0 || got.DeadLettered != 0 {
			t.Fatalf("gave up: %+v", got)
		}
	}
}

func TestRestartResumesCheckpointAndRetryCount(t *testing.T) {
	dir := t.TempDir()
	db := openDB(t, dir)
	f := openFeed(t, db, Config{})
	putDoses(t, db, f, 50)
	rec := newRecorder()
	rec.fail[30] = true
	cfg := PumpConfig{BatchSize: 20, MaxRetries: 1}
	p := newPump(t, f, "matcher", rec.handle(t), cfg)
	runOnce(t, p)                               // 1..20
	if got := runOnce(t, p); got.Attempt != 1 { // 21..40 fails at 30
		t.Fatalf("second batch = %+v", got)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	db = openDB(t, dir)
	f = openFeed(t, db, Config{})
	rec2 := newRecorder()
	rec2.fail[30] = true
	p = newPump(t, f, "matcher", rec2.handle(t), cfg)
	// The retry count survived: this is attempt 2, the last one.
	if got := runOnce(t, p); got != (BatchResult{Received: 20, Succeeded: 19, Failed: 1, DeadLettered: 1, Attempt: 2, Checkpoint: 49}) {
		t.Fatalf("after restart = %+v", got)
	}
	if !sameSeqs(rec2.batches[0], span(30, 49)) {
		t.Fatalf("resumed at %v", rec2.batches[0])
	}
	runOnce(t, p)
	if st := stats(t, f); st.Consumers["matcher"].Checkpoint != 50 || st.Retained != 0 {
		t.Fatalf("stats = %+v", st)
	}
}

func TestTrimWaitsForTheSlowestConsumer(t *testing.T) {
	db := openDB(t, t.TempDir())
	f := openFeed(t, db, Config{})
	// Changes written before any consumer exists are kept for the first one.
	putDoses(t, db, f, 30)
	fast := newPump(t, f, "matcher", newRecorder().handle(t), PumpConfig{})
	slowRec := newRecorder()
	slow := newPump(t, f, "audit", slowRec.handle(t), PumpConfig{BatchSize: 10})
	runOnce(t, fast)
	if st := stats(t, f); st.Retained != 30 {
		t.Fatalf("trimmed past a consumer that has not read: %+v", st)
	}
	runOnce(t, slow)
	if st := stats(t, f); st.Retained != 20 || st.Consumers["audit"].Lag != 20 {
		t.Fatalf("after the slow consumer's first batch: %+v", st)
	}
	if n, err := f.Trim(context.Background()); err != nil || n != 0 {
		t.Fatalf("Trim = %d, %v", n, err)
	}
	if err := f.RemoveConsumer(context.Background(), "audit"); err != nil {
		t.Fatal(err)
	}
	if n, err := f.Trim(context.Background()); err != nil || n != 20 {
		t.Fatalf("Trim after retiring = %d, %v", n, err)
	}
	if err := f.RemoveConsumer(context.Background(), "audit"); !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("second removal: %v", err)
	}
	if _, err := f.ListDead(context.Background(), "audit", 0, 1); !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("dead letters of a retired consumer: %v", err)
	}
}

func TestConcurrentPumpsOfOneConsumer(t *testing.T) {
	db := openDB(t, t.TempDir())
	f := openFeed(t, db, Config{})
	putDoses(t, db, f, 5)
	other := newPump(t, f, "matcher", newRecorder().handle(t), PumpConfig{})
	p := newPump(t, f, "matcher", func(ctx context.Context, ev events.DynamoDBEvent) (events.DynamoDBEventResponse, error) {
		if _, err := other.RunOnce(ctx); err != nil { // overtakes this one
			t.Error(err)
		}
		return events.DynamoDBEventResponse{BatchItemFailures: []events.DynamoDBBatchItemFailure{{ItemIdentifier: ev.Records[0].Change.SequenceNumber}}}, nil
	}, PumpConfig{})
	if _, err := p.RunOnce(context.Background()); !errors.Is(err, ErrConcurrentConsumer) {
		t.Fatalf("RunOnce = %v, want ErrConcurrentConsumer", err)
	}
	if st := stats(t, f).Consumers["matcher"]; st.Checkpoint != 5 || st.Attempts != 0 {
		t.Fatalf("the overtaken pump rewound the checkpoint: %+v", st)
	}
}

func TestPumpRunWithConcurrentWriters(t *testing.T) {
	db := openDB(t, t.TempDir())
	f := openFeed(t, db, Config{})
	const writers, perWriter = 4, 50
	total := writers * perWriter
	var (
		mu   sync.Mutex
		seen []uint64
	)
	done := make(chan struct{})
	h := func(ctx context.Context, ev events.DynamoDBEvent) (events.DynamoDBEventResponse, error) {
		mu.Lock()
		defer mu.Unlock()
		for _, r := range ev.Records {
			seen = append(seen, seqOf(t, r))
		}
		if len(seen) == total {
			close(done)
		}
		return events.DynamoDBEventResponse{}, nil
	}
	var errs []error
	var errMu sync.Mutex
	p := newPump(t, f, "matcher", h, PumpConfig{BatchSize: 16, PollInterval: 10 * time.Millisecond,
		OnError: func(err error) { errMu.Lock(); errs = append(errs, err); errMu.Unlock() }})
	ctx, cancel := context.WithCancel(context.Background())
	runErr := make(chan error, 1)
	go func() { runErr <- p.Run(ctx) }()

	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range perWriter {
				putDose(t, db, f, fmt.Sprintf("w%d-%d", w, i), "PENDING")
			}
		}()
	}
	wg.Wait()
	<-done
	cancel()
	if err := <-runErr; err != nil {
		t.Fatalf("Run = %v", err)
	}
	// Every change exactly once, in sequence order, without gaps.
	if !sameSeqs(seen, span(1, uint64(total))) {
		t.Fatalf("delivered %d changes out of order or with gaps", len(seen))
	}
	if len(errs) != 0 {
		t.Fatalf("errors: %v", errs)
	}
	if st := stats(t, f); st.Retained != 0 {
		t.Fatalf("not trimmed: %+v", st)
	}
}

func TestPumpRunRetriesWithBackoffThenMovesOn(t *testing.T) {
	db := openDB(t, t.TempDir())
	f := openFeed(t, db, Config{})
	putDoses(t, db, f, 3)
	rec := newRecorder()
	rec.fail[2] = true
	p := newPump(t, f, "matcher", rec.handle(t), PumpConfig{MaxRetries: 3, RetryBaseDelay: time.Millisecond, RetryMaxDelay: 2 * time.Millisecond, PollInterval: time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	runErr := make(chan error, 1)
	go func() { runErr <- p.Run(ctx) }()
	for {
		st := stats(t, f).Consumers["matcher"]
		if st.Checkpoint == 3 {
			if st.Dead != 1 {
				t.Fatalf("consumer = %+v", st)
			}
			break
		}
		time.Sleep(time.Millisecond)
	}
	cancel()
	if err := <-runErr; err != nil {
		t.Fatal(err)
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if len(rec.batches) != 4 { // 1 try + 3 retries
		t.Fatalf("handler called %d times: %v", len(rec.batches), rec.batches)
	}
}

func TestPumpRunStopsWhenDatabaseCloses(t *testing.T) {
	db := openDB(t, t.TempDir())
	f := openFeed(t, db, Config{})
	p := newPump(t, f, "matcher", newRecorder().handle(t), PumpConfig{PollInterval: time.Millisecond})
	runErr := make(chan error, 1)
	go func() { runErr <- p.Run(context.Background()) }()
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-runErr; !errors.Is(err, berrors.ErrDatabaseNotOpen) {
		t.Fatalf("Run = %v", err)
	}
}

func TestNewPumpValidation(t *testing.T) {
	db := openDB(t, t.TempDir())
	f := openFeed(t, db, Config{})
	h := newRecorder().handle(t)
	for _, tc := range []struct {
		consumer string
		cfg      PumpConfig
		field    string
	}{
		{"", PumpConfig{}, "consumer"},
		{"a b", PumpConfig{}, "consumer"},
		{"c", PumpConfig{BatchSize: MaxBatchSize + 1}, "BatchSize"},
		{"c", PumpConfig{MaxRetries: -3}, "MaxRetries"},
		{"c", PumpConfig{RetryBaseDelay: -1}, "RetryBaseDelay"},
		{"c", PumpConfig{RetryBaseDelay: time.Minute, RetryMaxDelay: time.Second}, "RetryMaxDelay"},
		{"c", PumpConfig{PollInterval: -1}, "PollInterval"},
		{"c", PumpConfig{HandlerTimeout: -1}, "HandlerTimeout"},
	} {
		if _, err := NewPump(f, tc.consumer, h, tc.cfg); err == nil || !strings.Contains(err.Error(), tc.field) {
			t.Errorf("%q %+v: err = %v, want one naming %s", tc.consumer, tc.cfg, err, tc.field)
		}
	}
	if st := stats(t, f); len(st.Consumers) != 0 {
		t.Fatalf("invalid pumps registered consumers: %+v", st.Consumers)
	}
	// Appends to a feed opened in another file fail cleanly.
	other := openDB(t, t.TempDir())
	err := other.Update(func(tx *bolt.Tx) error {
		_, err := f.Append(tx, Change{EventName: Insert, Keys: map[string]events.DynamoDBAttributeValue{"k": str("v")}, NewImage: map[string]events.DynamoDBAttributeValue{"k": str("v")}})
		return err
	})
	if !errors.Is(err, ErrNotOpen) {
		t.Fatalf("append in another file: %v", err)
	}
}

func TestBackoff(t *testing.T) {
	p := &Pump{cfg: PumpConfig{RetryBaseDelay: time.Second, RetryMaxDelay: 10 * time.Second}}
	for attempt, want := range map[int]time.Duration{1: time.Second, 2: 2 * time.Second, 4: 8 * time.Second, 5: 10 * time.Second, 100: 10 * time.Second} {
		if got := p.backoff(attempt); got != want {
			t.Errorf("backoff(%d) = %v, want %v", attempt, got, want)
		}
	}
}

func TestAdvance(t *testing.T) {
	seqs := []uint64{11, 12, 13, 14}
	fail := func(s ...uint64) map[uint64]bool {
		m := map[uint64]bool{}
		for _, x := range s {
			m[x] = true
		}
		return m
	}
	for _, tc := range []struct {
		desc       string
		state      cursorState
		failed     map[uint64]bool
		stopping   bool
		maxRetries int
		next       cursorState
		dead       []uint64
		attempt    int
	}{
		{"all succeeded", cursorState{checkpoint: 10}, nil, false, 2, cursorState{checkpoint: 14}, nil, 0},
		{"success clears a retry", cursorState{checkpoint: 10, failingSeq: 11, attempts: 2}, nil, false, 2, cursorState{checkpoint: 14}, nil, 0},
		{"first failure", cursorState{checkpoint: 10}, fail(13, 14), false, 2, cursorState{checkpoint: 12, failingSeq: 13, attempts: 1}, nil, 1},
		{"first record fails", cursorState{checkpoint: 10}, fail(11), false, 2, cursorState{checkpoint: 10, failingSeq: 11, attempts: 1}, nil, 1},
		{"same record fails again", cursorState{checkpoint: 10, failingSeq: 11, attempts: 1}, fail(11), false, 2, cursorState{checkpoint: 10, failingSeq: 11, attempts: 2}, nil, 2},
		{"progress resets the count", cursorState{checkpoint: 10, failingSeq: 11, attempts: 2}, fail(12), false, 2, cursorState{checkpoint: 11, failingSeq: 12, attempts: 1}, nil, 1},
		{"retries used up", cursorState{checkpoint: 10, failingSeq: 11, attempts: 2}, fail(11, 13), false, 2, cursorState{checkpoint: 14}, []uint64{11, 13}, 3},
		{"no retries at all", cursorState{checkpoint: 10}, fail(12), false, 0, cursorState{checkpoint: 14}, []uint64{12}, 1},
		{"unlimited retries", cursorState{checkpoint: 10, failingSeq: 11, attempts: 1000}, fail(11), false, -1, cursorState{checkpoint: 10, failingSeq: 11, attempts: 1001}, nil, 1001},
		{"stopping uses up no attempt", cursorState{checkpoint: 10, failingSeq: 11, attempts: 2}, fail(12, 13), true, 2, cursorState{checkpoint: 11, failingSeq: 11, attempts: 2}, nil, 3},
	} {
		next, dead, attempt := advance(tc.state, seqs, tc.failed, tc.stopping, tc.maxRetries)
		if next != tc.next || !sameSeqs(dead, tc.dead) || attempt != tc.attempt {
			t.Errorf("%s: advance = %+v, %v, %d; want %+v, %v, %d", tc.desc, next, dead, attempt, tc.next, tc.dead, tc.attempt)
		}
	}
}

func TestPumpStoppedMidBatchKeepsItsRetries(t *testing.T) {
	db := openDB(t, t.TempDir())
	f := openFeed(t, db, Config{})
	putDoses(t, db, f, 3)
	ctx, cancel := context.WithCancel(context.Background())
	p := newPump(t, f, "matcher", func(ctx context.Context, ev events.DynamoDBEvent) (events.DynamoDBEventResponse, error) {
		cancel() // shutdown arrives; the handler gives up on the batch
		return events.DynamoDBEventResponse{}, ctx.Err()
	}, PumpConfig{MaxRetries: 1})
	if err := p.Run(ctx); err != nil {
		t.Fatal(err)
	}
	if st := stats(t, f).Consumers["matcher"]; st != (ConsumerStats{Lag: 3}) {
		t.Fatalf("a shutdown counted as a failed attempt: %+v", st)
	}
}

func TestPumpFilterDropsAndMovesPast(t *testing.T) {
	db := openDB(t, t.TempDir())
	f := openFeed(t, db, Config{})
	// 1..5 kept (PENDING), 6..205 dropped (a run longer than a filtered read scans),
	// 206 kept, 207 dropped: its status is only in a string, escaped, never as a key.
	putDoses(t, db, f, 5)
	for i := range 200 {
		putDose(t, db, f, fmt.Sprintf("v%03d", i), "VERIFIED")
	}
	putDose(t, db, f, "late", "PENDING")
	putDose(t, db, f, "sly", `{"status":{"S":"PENDING"}}`)
	rec := newRecorder()
	p := newPump(t, f, "matcher", rec.handle(t), PumpConfig{BatchSize: 10, Filter: &Filter{Attr: "status", S: "PENDING"}})
	var got []uint64
	for i := 0; i < 100; i++ {
		res := runOnce(t, p)
		if res.Received == 0 && res.Checkpoint == 207 {
			break
		}
	}
	for _, b := range rec.batches {
		got = append(got, b...)
	}
	if want := append(span(1, 5), 206); !sameSeqs(got, want) {
		t.Fatalf("delivered %v, want %v", got, want)
	}
	if st := stats(t, f); st.Consumers["matcher"].Checkpoint != 207 {
		t.Fatalf("checkpoint %+v, want past every dropped record", st.Consumers["matcher"])
	}
	if want := `{"dynamodb":{"NewImage":{"status":{"S":["PENDING"]}}}}`; (Filter{Attr: "status", S: "PENDING"}).Pattern() != want {
		t.Fatalf("Pattern() = %s, want %s", (Filter{Attr: "status", S: "PENDING"}).Pattern(), want)
	}
}
