package centralqueue_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/vaxpass/vaxpass/shared/edge/centralqueue"
	"github.com/vaxpass/vaxpass/shared/stage/signing"
	"github.com/vaxpass/vaxpass/shared/vaxpass"
)

type fakeIssuer struct {
	mu   sync.Mutex
	got  []string
	fail map[string]error
}

func (f *fakeIssuer) Process(_ context.Context, sig vaxpass.FacilitySignature) (signing.IssueOutcome, *vaxpass.Certificate, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.got = append(f.got, sig.PersonID)
	if err := f.fail[sig.PersonID]; err != nil {
		return "", nil, err
	}
	return signing.Issued, nil, nil
}

func loadEvent(t *testing.T) events.SQSEvent {
	t.Helper()
	b, err := os.ReadFile("../../../events/sqs-central-signing.json")
	if err != nil {
		t.Fatal(err)
	}
	var ev events.SQSEvent
	if err := json.Unmarshal(b, &ev); err != nil {
		t.Fatal(err)
	}
	return ev
}

func TestPartialBatchFailures(t *testing.T) {
	for _, concurrency := range []int{0, 1, 4} {
		t.Run(fmt.Sprintf("concurrency %d", concurrency), func(t *testing.T) { testPartialBatchFailures(t, concurrency) })
	}
}

func testPartialBatchFailures(t *testing.T, concurrency int) {
	iss := &fakeIssuer{fail: map[string]error{"079200000001": signing.ErrBadFacilitySignature}}
	resp, err := (&centralqueue.Handler{Issuer: iss, Concurrency: concurrency}).Handle(context.Background(), loadEvent(t))
	if err != nil {
		t.Fatal(err)
	}
	var failed []string
	for _, f := range resp.BatchItemFailures {
		failed = append(failed, f.ItemIdentifier)
	}
	want := []string{"3f1c1f7e-0d64-4c55-9a0b-6f1f0b0a0002", "3f1c1f7e-0d64-4c55-9a0b-6f1f0b0a0003"}
	if len(failed) != 2 || failed[0] != want[0] || failed[1] != want[1] {
		t.Fatalf("failed = %q, want the bad signature and the poison body: %q", failed, want)
	}
	if len(iss.got) != 2 {
		t.Fatalf("processed %q: every decodable message is processed, one failure never stops the batch", iss.got)
	}
}

func TestAllGoodMarshalsEmptyList(t *testing.T) {
	ev := loadEvent(t)
	ev.Records = ev.Records[:1]
	resp, err := (&centralqueue.Handler{Issuer: &fakeIssuer{}}).Handle(context.Background(), ev)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(resp)
	if string(b) != `{"batchItemFailures":[]}` {
		t.Fatalf("response JSON %s, want an empty list, never null", b)
	}
}

func TestCancelledContextFailsTheBatch(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	iss := &fakeIssuer{fail: map[string]error{"001088012345": context.Canceled}}
	if _, err := (&centralqueue.Handler{Issuer: iss}).Handle(ctx, loadEvent(t)); !errors.Is(err, context.Canceled) {
		t.Fatalf("Handle = %v, want the cancellation (the whole batch comes back)", err)
	}
}

func TestDecodeRejectsUnknownFieldsAndMissingIDs(t *testing.T) {
	for _, body := range []string{`{"signature":{"person_id":"1"}}`, `{"signature":{}}`, `{"sig":{}}`, `[]`} {
		if _, err := centralqueue.Decode(body); err == nil {
			t.Errorf("Decode(%s) accepted", body)
		}
	}
}

// orderIssuer records each person's signatures in the order processed and whether two of
// one person's ever ran at once.
type orderIssuer struct {
	mu       sync.Mutex
	inFlight map[string]bool
	order    map[string][]string
	overlap  bool
}

func (o *orderIssuer) Process(_ context.Context, sig vaxpass.FacilitySignature) (signing.IssueOutcome, *vaxpass.Certificate, error) {
	o.mu.Lock()
	if o.inFlight[sig.PersonID] {
		o.overlap = true
	}
	o.inFlight[sig.PersonID] = true
	o.order[sig.PersonID] = append(o.order[sig.PersonID], sig.FacilityID)
	o.mu.Unlock()
	time.Sleep(time.Millisecond) // give a concurrent one of the same person a chance to overlap
	o.mu.Lock()
	o.inFlight[sig.PersonID] = false
	o.mu.Unlock()
	return signing.Issued, nil, nil
}

func TestOnePersonsMessagesInBatchOrder(t *testing.T) {
	var ev events.SQSEvent
	for i, pf := range [][2]string{{"P1", "a"}, {"P2", "x"}, {"P1", "b"}, {"P3", "y"}, {"P1", "c"}, {"P2", "z"}} {
		body, err := centralqueue.Encode(vaxpass.FacilitySignature{PersonID: pf[0], FacilityID: pf[1]})
		if err != nil {
			t.Fatal(err)
		}
		ev.Records = append(ev.Records, events.SQSMessage{MessageId: fmt.Sprint(i), Body: string(body)})
	}
	iss := &orderIssuer{inFlight: map[string]bool{}, order: map[string][]string{}}
	resp, err := (&centralqueue.Handler{Issuer: iss, Concurrency: 4}).Handle(context.Background(), ev)
	if err != nil || len(resp.BatchItemFailures) != 0 {
		t.Fatalf("Handle = %+v, %v", resp, err)
	}
	if iss.overlap {
		t.Error("two messages of one person were processed at once")
	}
	if got := fmt.Sprint(iss.order["P1"], iss.order["P2"], iss.order["P3"]); got != "[a b c] [x z] [y]" {
		t.Errorf("order per person %s, want [a b c] [x z] [y]", got)
	}
}
