package queue

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

// flaky is a handler that fails the message with body "x" fails times, the way how
// says, then succeeds; other messages succeed.
type flaky struct {
	t     testing.TB
	fails int
	how   string // "store": a write refused as unavailable; "batch": the whole batch fails with errDiskFull; "poison": an item failure of another cause

	mu       sync.Mutex
	calls    []time.Time // deliveries of "x"
	receives []string    // their ApproximateReceiveCount
	done     int         // successful handlings of "x"
}

func (h *flaky) handle(ctx context.Context, ev events.SQSEvent) (events.SQSEventResponse, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	var resp events.SQSEventResponse
	for _, r := range ev.Records {
		if r.Body != "x" {
			continue
		}
		h.calls = append(h.calls, time.Now())
		h.receives = append(h.receives, r.Attributes["ApproximateReceiveCount"])
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
		resp.BatchItemFailures = append(resp.BatchItemFailures, events.SQSBatchItemFailure{ItemIdentifier: r.MessageId})
	}
	return resp, nil
}

// A message whose handling the storage refused (full disk) is released with its
// receive uncounted: it comes back after a backoff as long as that lasts, and is
// handled once the storage takes writes again; nothing is dead-lettered. Another
// failure is dead-lettered at MaxReceiveCount, as before.
func TestPumpUnavailableStorageIsNotAReceive(t *testing.T) {
	const maxReceives = 3
	for _, how := range []string{"store", "batch"} {
		t.Run(how, func(t *testing.T) {
			clock := newClock()
			q := openQueue(t, openDB(t, t.TempDir()), "q", Config{Now: clock.Now, MaxReceiveCount: maxReceives})
			mustSend(t, q, "x")
			h := &flaky{t: t, fails: maxReceives + 5, how: how}
			var reported []error
			p := newPump(t, q, h.handle, PumpConfig{VisibilityTimeout: time.Minute, RetryBaseDelay: time.Second, RetryMaxDelay: 4 * time.Second,
				OnError: func(err error) { reported = append(reported, err) }})
			for i := 0; i < h.fails; i++ {
				if got := runOnce(t, p); got != (BatchResult{Received: 1, Failed: 1, Unavailable: 1}) {
					t.Fatalf("try %d = %+v", i+1, got)
				}
				if last := reported[len(reported)-1]; !errors.Is(last, vaxpass.ErrUnavailable) {
					t.Fatalf("try %d reported %v; want it to say the storage is unavailable", i+1, last)
				}
				// Hidden for the backoff (1s, 2s, 4s, 4s, ...), not the visibility timeout.
				backoff := min(time.Second<<i, 4*time.Second)
				clock.Advance(backoff - time.Millisecond)
				if got := runOnce(t, p); got.Received != 0 {
					t.Fatalf("try %d: the message came back before its backoff of %v", i+1, backoff)
				}
				clock.Advance(time.Millisecond)
			}
			if got := runOnce(t, p); got != (BatchResult{Received: 1, Deleted: 1}) {
				t.Fatalf("after the storage came back = %+v", got)
			}
			if h.done != 1 || len(h.calls) != h.fails+1 {
				t.Fatalf("handled %d times in %d deliveries; want once, after %d refusals", h.done, len(h.calls), h.fails)
			}
			for i, n := range h.receives {
				if n != "1" {
					t.Fatalf("delivery %d had ApproximateReceiveCount %s; want 1: refused receives do not count", i+1, n)
				}
			}
			if c := mustCounts(t, q); c != (Counts{}) {
				t.Fatalf("counts = %+v; want the message deleted, none dead", c)
			}
		})
	}

	t.Run("other failure", func(t *testing.T) {
		clock := newClock()
		q := openQueue(t, openDB(t, t.TempDir()), "q", Config{Now: clock.Now, MaxReceiveCount: maxReceives})
		mustSend(t, q, "x")
		h := &flaky{t: t, fails: maxReceives + 5, how: "poison"}
		p := newPump(t, q, h.handle, PumpConfig{VisibilityTimeout: time.Second})
		for range maxReceives + 2 {
			if got := runOnce(t, p); got.Unavailable != 0 {
				t.Fatalf("result %+v", got)
			}
			clock.Advance(time.Second)
		}
		if len(h.calls) != maxReceives {
			t.Fatalf("handled %d times; want %d, then the redrive policy", len(h.calls), maxReceives)
		}
		if c := mustCounts(t, q); c != (Counts{Dead: 1}) {
			t.Fatalf("counts = %+v", c)
		}
	})
}

// Run's workers release refused messages, wait with backoff and go on once the
// storage takes writes again.
func TestPumpRunBacksOffWhileStorageUnavailable(t *testing.T) {
	q := openQueue(t, openDB(t, t.TempDir()), "q", Config{MaxReceiveCount: 2})
	mustSend(t, q, "x", "y")
	const base, maxDelay = 2 * time.Millisecond, 8 * time.Millisecond
	h := &flaky{t: t, fails: 6, how: "store"}
	var mu sync.Mutex
	var reported []error
	p := newPump(t, q, h.handle, PumpConfig{
		VisibilityTimeout: time.Minute, PollInterval: time.Millisecond, RetryBaseDelay: base, RetryMaxDelay: maxDelay,
		OnError: func(err error) { mu.Lock(); reported = append(reported, err); mu.Unlock() },
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	for c := mustCounts(t, q); c != (Counts{}) && ctx.Err() == nil; c = mustCounts(t, q) {
		time.Sleep(time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.done != 1 || len(h.calls) != h.fails+1 {
		t.Fatalf("handled %d times in %d deliveries; want once after %d refusals", h.done, len(h.calls), h.fails)
	}
	for i := 1; i < len(h.calls); i++ {
		want := min(base<<(i-1), maxDelay)
		if gap := h.calls[i].Sub(h.calls[i-1]); gap < want {
			t.Errorf("delivery %d came %v after the refusal; want at least %v", i+1, gap, want)
		}
	}
	if c := mustCounts(t, q); c != (Counts{}) {
		t.Fatalf("counts = %+v; want both messages deleted, none dead", c)
	}
	mu.Lock()
	defer mu.Unlock()
	for _, err := range reported {
		if !errors.Is(err, vaxpass.ErrUnavailable) {
			t.Errorf("reported %v", err)
		}
	}
}

func TestRelease(t *testing.T) {
	clock := newClock()
	q := openQueue(t, openDB(t, t.TempDir()), "q", Config{Now: clock.Now, MaxReceiveCount: 1})
	mustSend(t, q, "a", "b")
	msgs := mustReceive(t, q, 2, time.Minute)
	errs, err := q.Release(context.Background(), []string{msgs[0].ReceiptHandle, msgs[0].ReceiptHandle, "bogus"}, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if errs[0] != nil || errs[1] != nil || !errors.Is(errs[2], ErrBadReceipt) {
		t.Fatalf("errs = %v", errs)
	}
	clock.Advance(5*time.Second - time.Millisecond)
	if got := mustReceive(t, q, 2, time.Minute); len(got) != 0 {
		t.Fatalf("released message visible before its delay: %s", bodies(got))
	}
	clock.Advance(time.Millisecond)
	// Received once already, with MaxReceiveCount 1: only the release keeps it from
	// the dead letters.
	got := mustReceive(t, q, 2, time.Minute)
	if len(got) != 1 || got[0].Body[0] != 'a' || got[0].ReceiveCount != 1 {
		t.Fatalf("after the delay: %+v", got)
	}
	// The old handle names an earlier delivery now.
	if errs, err := q.Release(context.Background(), []string{msgs[0].ReceiptHandle}, 0); err != nil || !errors.Is(errs[0], ErrStaleReceipt) {
		t.Fatalf("stale release = %v, %v", errs, err)
	}
	if _, err := q.Release(context.Background(), nil, -time.Second); !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("negative delay: %v", err)
	}
	if c := mustCounts(t, q); c != (Counts{InFlight: 2}) {
		t.Fatalf("counts = %+v", c)
	}
}
