package queue

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	berrors "go.etcd.io/bbolt/errors"
)

// failBodies is a handler failing the messages whose body starts with "bad".
func failBodies(calls *[]events.SQSEvent) Handler {
	return func(ctx context.Context, ev events.SQSEvent) (events.SQSEventResponse, error) {
		*calls = append(*calls, ev)
		var resp events.SQSEventResponse
		for _, r := range ev.Records {
			if strings.HasPrefix(r.Body, "bad") {
				resp.BatchItemFailures = append(resp.BatchItemFailures, events.SQSBatchItemFailure{ItemIdentifier: r.MessageId})
			}
		}
		return resp, nil
	}
}

func newPump(t *testing.T, q *Queue, h Handler, cfg PumpConfig) *Pump {
	t.Helper()
	p, err := NewPump(q, h, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func runOnce(t *testing.T, p *Pump) BatchResult {
	t.Helper()
	res, err := p.RunOnce(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func TestPumpEventShape(t *testing.T) {
	clock := newClock()
	q := openQueue(t, openDB(t, t.TempDir()), "central-signing", Config{Now: clock.Now})
	if _, err := q.Send(context.Background(), []byte(`{"person":"p1"}`), SendOptions{DedupID: "p1"}); err != nil {
		t.Fatal(err)
	}
	var calls []events.SQSEvent
	p := newPump(t, q, failBodies(&calls), PumpConfig{})
	clock.Advance(2 * time.Second)
	if res := runOnce(t, p); res != (BatchResult{Received: 1, Deleted: 1}) {
		t.Fatalf("result = %+v", res)
	}
	r := calls[0].Records[0]
	sum := md5.Sum([]byte(`{"person":"p1"}`))
	sent := clock.Now().Add(-2 * time.Second).UnixMilli()
	want := map[string]string{
		"MessageId":                        "0000000000000001",
		"Body":                             `{"person":"p1"}`,
		"Md5OfBody":                        hex.EncodeToString(sum[:]),
		"EventSourceARN":                   "arn:aws:sqs:local:000000000000:central-signing",
		"EventSource":                      "aws:sqs",
		"AWSRegion":                        "local",
		"ApproximateReceiveCount":          "1",
		"SentTimestamp":                    fmt.Sprint(sent),
		"ApproximateFirstReceiveTimestamp": fmt.Sprint(sent + 2000),
		"MessageDeduplicationId":           "p1",
	}
	got := map[string]string{
		"MessageId": r.MessageId, "Body": r.Body, "Md5OfBody": r.Md5OfBody, "EventSourceARN": r.EventSourceARN,
		"EventSource": r.EventSource, "AWSRegion": r.AWSRegion,
	}
	for k, v := range r.Attributes {
		got[k] = v
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %q, want %q", k, got[k], v)
		}
	}
	if r.ReceiptHandle == "" {
		t.Error("no receipt handle")
	}
}

func TestPumpPartialBatchFailures(t *testing.T) {
	clock := newClock()
	q := openQueue(t, openDB(t, t.TempDir()), "q", Config{Now: clock.Now})
	mustSend(t, q, "ok1", "bad1", "ok2")
	var calls []events.SQSEvent
	p := newPump(t, q, failBodies(&calls), PumpConfig{VisibilityTimeout: time.Minute})

	if res := runOnce(t, p); res != (BatchResult{Received: 3, Deleted: 2, Failed: 1}) {
		t.Fatalf("result = %+v", res)
	}
	if c := mustCounts(t, q); c != (Counts{InFlight: 1}) {
		t.Fatalf("counts = %+v", c)
	}
	if res := runOnce(t, p); res.Received != 0 {
		t.Fatal("failed message retried before its visibility timeout")
	}
	clock.Advance(time.Minute)
	if res := runOnce(t, p); res != (BatchResult{Received: 1, Failed: 1}) {
		t.Fatalf("retry result = %+v", res)
	}
	retry := calls[len(calls)-1].Records[0]
	if retry.Body != "bad1" || retry.Attributes["ApproximateReceiveCount"] != "2" {
		t.Fatalf("retry = %+v", retry)
	}
}

func TestPumpWholeBatchFailures(t *testing.T) {
	for _, tc := range []struct {
		name    string
		handler Handler
		wantErr error
	}{
		{"error", func(context.Context, events.SQSEvent) (events.SQSEventResponse, error) {
			return events.SQSEventResponse{}, errors.New("registry unavailable")
		}, ErrHandler},
		{"panic", func(context.Context, events.SQSEvent) (events.SQSEventResponse, error) {
			panic("nil map")
		}, ErrHandler},
		{"unknown item identifier", func(context.Context, events.SQSEvent) (events.SQSEventResponse, error) {
			return events.SQSEventResponse{BatchItemFailures: []events.SQSBatchItemFailure{{ItemIdentifier: "not-in-batch"}}}, nil
		}, ErrBadBatchItemFailure},
		{"empty item identifier", func(context.Context, events.SQSEvent) (events.SQSEventResponse, error) {
			return events.SQSEventResponse{BatchItemFailures: []events.SQSBatchItemFailure{{}}}, nil
		}, ErrBadBatchItemFailure},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clock := newClock()
			q := openQueue(t, openDB(t, t.TempDir()), "q", Config{Now: clock.Now})
			mustSend(t, q, "a", "b")
			var reported []error
			p := newPump(t, q, tc.handler, PumpConfig{OnError: func(err error) { reported = append(reported, err) }})
			if res := runOnce(t, p); res != (BatchResult{Received: 2, Failed: 2}) {
				t.Fatalf("result = %+v", res)
			}
			if len(reported) != 1 || !errors.Is(reported[0], tc.wantErr) {
				t.Fatalf("reported %v, want %v", reported, tc.wantErr)
			}
			if c := mustCounts(t, q); c != (Counts{InFlight: 2}) {
				t.Fatalf("counts = %+v", c)
			}
		})
	}
}

func TestPumpPoisonMessageReachesDeadLetters(t *testing.T) {
	clock := newClock()
	q := openQueue(t, openDB(t, t.TempDir()), "q", Config{Now: clock.Now, MaxReceiveCount: 3})
	mustSend(t, q, "bad-poison", "ok")
	var calls []events.SQSEvent
	p := newPump(t, q, failBodies(&calls), PumpConfig{VisibilityTimeout: time.Second})
	for range 5 {
		runOnce(t, p)
		clock.Advance(time.Second)
	}
	if len(calls) != 3 {
		t.Fatalf("handler called %d times, want 3 (then the redrive policy)", len(calls))
	}
	if c := mustCounts(t, q); c != (Counts{Dead: 1}) {
		t.Fatalf("counts = %+v", c)
	}
}

func TestPumpStaleDeleteReported(t *testing.T) {
	// A handler slower than the visibility timeout: the message was handed out again,
	// so the late delete must not remove the new delivery.
	clock := newClock()
	q := openQueue(t, openDB(t, t.TempDir()), "q", Config{Now: clock.Now})
	mustSend(t, q, "slow")
	var reported []error
	var second []Message
	p := newPump(t, q, func(ctx context.Context, ev events.SQSEvent) (events.SQSEventResponse, error) {
		clock.Advance(time.Minute)
		second = mustReceive(t, q, 1, time.Hour)
		return events.SQSEventResponse{}, nil
	}, PumpConfig{VisibilityTimeout: 30 * time.Second, OnError: func(err error) { reported = append(reported, err) }})
	if res := runOnce(t, p); res != (BatchResult{Received: 1}) {
		t.Fatalf("result = %+v", res)
	}
	if len(reported) != 1 || !errors.Is(reported[0], ErrStaleReceipt) {
		t.Fatalf("reported = %v", reported)
	}
	if len(second) != 1 {
		t.Fatal("message not redelivered")
	}
	if c := mustCounts(t, q); c.InFlight != 1 {
		t.Fatalf("the redelivery was deleted: %+v", c)
	}
}

func TestPumpRunConcurrentlyUntilCancelled(t *testing.T) {
	q := openQueue(t, openDB(t, t.TempDir()), "q", Config{})
	const total = 300
	var (
		mu      sync.Mutex
		handled = map[string]int{}
		active  int
		maxSeen int
	)
	allDone := make(chan struct{})
	h := func(ctx context.Context, ev events.SQSEvent) (events.SQSEventResponse, error) {
		mu.Lock()
		active++
		maxSeen = max(maxSeen, active)
		mu.Unlock()
		time.Sleep(time.Millisecond) // let batches overlap
		mu.Lock()
		defer mu.Unlock()
		active--
		for _, r := range ev.Records {
			handled[r.Body]++
		}
		if len(handled) == total {
			select {
			case <-allDone:
			default:
				close(allDone)
			}
		}
		return events.SQSEventResponse{}, nil
	}
	var errs []error
	var errMu sync.Mutex
	p := newPump(t, q, h, PumpConfig{BatchSize: 5, Concurrency: 4, PollInterval: 10 * time.Millisecond,
		OnError: func(err error) { errMu.Lock(); errs = append(errs, err); errMu.Unlock() }})
	ctx, cancel := context.WithCancel(context.Background())
	runErr := make(chan error, 1)
	go func() { runErr <- p.Run(ctx) }()

	for i := 0; i < total; i += 30 {
		batch := make([]Outgoing, 30)
		for j := range batch {
			batch[j] = Outgoing{Body: []byte(fmt.Sprint(i + j))}
		}
		if _, err := q.SendBatch(ctx, batch); err != nil {
			t.Fatal(err)
		}
	}
	<-allDone
	cancel()
	if err := <-runErr; err != nil {
		t.Fatalf("Run = %v", err)
	}
	for body, n := range handled {
		if n != 1 {
			t.Errorf("%s handled %d times", body, n)
		}
	}
	if c := mustCounts(t, q); c != (Counts{}) {
		t.Fatalf("counts after run = %+v", c)
	}
	if maxSeen < 2 {
		t.Logf("batches never overlapped (max %d at once)", maxSeen)
	}
	if len(errs) != 0 {
		t.Fatalf("errors: %v", errs)
	}
}

func TestPumpRunStopsWhenDatabaseCloses(t *testing.T) {
	db := openDB(t, t.TempDir())
	q := openQueue(t, db, "q", Config{})
	p := newPump(t, q, failBodies(new([]events.SQSEvent)), PumpConfig{PollInterval: time.Millisecond})
	runErr := make(chan error, 1)
	go func() { runErr <- p.Run(context.Background()) }()
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-runErr; !errors.Is(err, berrors.ErrDatabaseNotOpen) {
		t.Fatalf("Run = %v, want ErrDatabaseNotOpen", err)
	}
}

func TestNewPumpValidation(t *testing.T) {
	q := openQueue(t, openDB(t, t.TempDir()), "q", Config{})
	h := failBodies(new([]events.SQSEvent))
	for _, tc := range []struct {
		cfg   PumpConfig
		field string
	}{
		{PumpConfig{BatchSize: -1}, "BatchSize"},
		{PumpConfig{BatchSize: MaxReceiveBatch + 1}, "BatchSize"},
		{PumpConfig{VisibilityTimeout: -time.Second}, "VisibilityTimeout"},
		{PumpConfig{Concurrency: -2}, "Concurrency"},
		{PumpConfig{PollInterval: -time.Second}, "PollInterval"},
		{PumpConfig{HandlerTimeout: -time.Second}, "HandlerTimeout"},
	} {
		if _, err := NewPump(q, h, tc.cfg); !errors.Is(err, ErrInvalidArgument) || !strings.Contains(err.Error(), tc.field) {
			t.Errorf("%+v: err = %v, want one naming %s", tc.cfg, err, tc.field)
		}
	}
	if _, err := NewPump(q, nil, PumpConfig{}); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("nil handler: %v", err)
	}
}

func TestPumpRunDeletesFinishedWorkWhenStopped(t *testing.T) {
	clock := newClock()
	q := openQueue(t, openDB(t, t.TempDir()), "q", Config{Now: clock.Now})
	mustSend(t, q, "a", "b")
	ctx, cancel := context.WithCancel(context.Background())
	p := newPump(t, q, func(context.Context, events.SQSEvent) (events.SQSEventResponse, error) {
		cancel() // the process is told to stop while this batch is handled
		return events.SQSEventResponse{}, nil
	}, PumpConfig{})
	if err := p.Run(ctx); err != nil {
		t.Fatal(err)
	}
	clock.Advance(time.Hour)
	if c := mustCounts(t, q); c != (Counts{}) {
		t.Fatalf("handled messages not deleted on stop: %+v", c)
	}
}
