package feed

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/vaxpass/vaxpass/shared/vaxpass"
)

// errDiskFull is the error the embedded store returns for a write on a full disk.
var errDiskFull = fmt.Errorf("%w: write vaxpass.db: %w", vaxpass.ErrUnavailable, syscall.ENOSPC)

// refuseStorage does what the embedded store does when a write meets a full disk: it
// tells the watch the pump put in the handler's context.
func refuseStorage(t testing.TB, ctx context.Context) {
	w, ok := vaxpass.StorageWatcherFrom(ctx)
	if !ok {
		t.Error("the handler's context carries no storage watch")
		return
	}
	w.StorageUnavailable(errDiskFull)
}

// flaky is a handler that fails record seq fails times, the way how says, then succeeds.
type flaky struct {
	t     testing.TB
	seq   uint64
	fails int
	how   string // "store": a write refused as unavailable; "batch": the whole batch fails with errDiskFull; "poison": an item failure of another cause

	mu    sync.Mutex
	calls []time.Time // handler calls that saw seq
	done  int         // successful handlings of seq
}

func (h *flaky) handle(ctx context.Context, ev events.DynamoDBEvent) (events.DynamoDBEventResponse, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	var resp events.DynamoDBEventResponse
	for _, r := range ev.Records {
		if seqOf(h.t, r) != h.seq {
			continue
		}
		h.calls = append(h.calls, time.Now())
		if len(h.calls) > h.fails {
			h.done++
			continue
		}
		switch h.how {
		case "batch":
			return resp, errDiskFull
		case "store":
			refuseStorage(h.t, ctx)
		}
		resp.BatchItemFailures = append(resp.BatchItemFailures, events.DynamoDBBatchItemFailure{ItemIdentifier: r.Change.SequenceNumber})
	}
	return resp, nil
}

// A record whose handling the storage refused (full disk) uses up no retry: it is
// retried as long as that lasts, and handled once the storage takes writes again;
// nothing is dead-lettered. Another failure is dead-lettered at the limit, as before.
func TestPumpUnavailableStorageIsNotARetry(t *testing.T) {
	const maxRetries = 2
	for _, how := range []string{"store", "batch"} {
		t.Run(how, func(t *testing.T) {
			db := openDB(t, t.TempDir())
			f := openFeed(t, db, Config{})
			putDoses(t, db, f, 5)
			h := &flaky{t: t, seq: 3, fails: maxRetries + 1 + 5, how: how}
			var reported []error
			p := newPump(t, f, "matcher", h.handle, PumpConfig{MaxRetries: maxRetries, OnError: func(err error) { reported = append(reported, err) }})
			wantCheckpoint := uint64(2) // just before record 3
			if how == "batch" {
				wantCheckpoint = 0 // the whole batch failed
			}
			for i := 0; i < h.fails; i++ {
				got := runOnce(t, p)
				if !got.Unavailable || got.DeadLettered != 0 || got.Checkpoint != wantCheckpoint || got.Failed == 0 {
					t.Fatalf("try %d = %+v; want the failure retried, from record 3, uncounted", i+1, got)
				}
				if st := stats(t, f).Consumers["matcher"]; st.Attempts != 0 || st.Dead != 0 {
					t.Fatalf("try %d: consumer %+v; want no attempt used up", i+1, st)
				}
				if last := reported[len(reported)-1]; !errors.Is(last, vaxpass.ErrUnavailable) {
					t.Fatalf("try %d reported %v; want it to say the storage is unavailable", i+1, last)
				}
			}
			if got := runOnce(t, p); got.Unavailable || got.Failed != 0 || got.Checkpoint != 5 {
				t.Fatalf("after the storage came back = %+v", got)
			}
			if h.done != 1 || len(h.calls) != h.fails+1 {
				t.Fatalf("record 3 handled %d times in %d calls; want once, after %d refusals", h.done, len(h.calls), h.fails)
			}
			if st := stats(t, f).Consumers["matcher"]; st != (ConsumerStats{Checkpoint: 5}) {
				t.Fatalf("consumer = %+v; want no dead letters", st)
			}
		})
	}

	t.Run("other failure", func(t *testing.T) {
		db := openDB(t, t.TempDir())
		f := openFeed(t, db, Config{})
		putDoses(t, db, f, 5)
		h := &flaky{t: t, seq: 3, fails: maxRetries + 1 + 5, how: "poison"}
		p := newPump(t, f, "matcher", h.handle, PumpConfig{MaxRetries: maxRetries})
		for attempt := 1; attempt <= maxRetries; attempt++ {
			if got := runOnce(t, p); got.Unavailable || got.Attempt != attempt || got.DeadLettered != 0 {
				t.Fatalf("attempt %d = %+v", attempt, got)
			}
		}
		if got := runOnce(t, p); got.Unavailable || got.DeadLettered != 1 || got.Checkpoint != 5 {
			t.Fatalf("last attempt = %+v; want record 3 dead-lettered", got)
		}
		if st := stats(t, f).Consumers["matcher"]; st != (ConsumerStats{Checkpoint: 5, Dead: 1}) {
			t.Fatalf("consumer = %+v", st)
		}
	})
}

// Run waits between refused tries, longer each time up to RetryMaxDelay, and goes on
// as soon as the storage takes writes again.
func TestPumpRunBacksOffWhileStorageUnavailable(t *testing.T) {
	db := openDB(t, t.TempDir())
	f := openFeed(t, db, Config{})
	putDoses(t, db, f, 4)
	const base, maxDelay = 2 * time.Millisecond, 8 * time.Millisecond
	h := &flaky{t: t, seq: 2, fails: 6, how: "store"}
	var mu sync.Mutex
	var reported []error
	p := newPump(t, f, "matcher", h.handle, PumpConfig{
		MaxRetries: 1, RetryBaseDelay: base, RetryMaxDelay: maxDelay, PollInterval: time.Millisecond,
		OnError: func(err error) { mu.Lock(); reported = append(reported, err); mu.Unlock() },
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	for stats(t, f).Consumers["matcher"].Checkpoint != 4 && ctx.Err() == nil {
		time.Sleep(time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.done != 1 || len(h.calls) != h.fails+1 {
		t.Fatalf("record 2 handled %d times in %d calls; want once after %d refusals", h.done, len(h.calls), h.fails)
	}
	for i := 1; i < len(h.calls); i++ {
		want := min(base<<(i-1), maxDelay)
		if gap := h.calls[i].Sub(h.calls[i-1]); gap < want {
			t.Errorf("retry %d came %v after the refusal; want at least %v", i, gap, want)
		}
	}
	if st := stats(t, f).Consumers["matcher"]; st != (ConsumerStats{Checkpoint: 4}) {
		t.Fatalf("consumer = %+v; want no dead letters", st)
	}
	mu.Lock()
	defer mu.Unlock()
	for _, err := range reported {
		if errors.Is(err, ErrDeadLettered) || !errors.Is(err, vaxpass.ErrUnavailable) {
			t.Errorf("reported %v", err)
		}
	}
}
