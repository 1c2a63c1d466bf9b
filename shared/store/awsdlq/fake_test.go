package awsdlq_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/service/dynamodbstreams"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/vaxpass/vaxpass/shared/edge/centralqueue"
	"github.com/vaxpass/vaxpass/shared/store/awsdlq"
	"github.com/vaxpass/vaxpass/shared/vaxpass"
)

// fakeSQS keeps queues in memory: a receive hides messages until a visibility change or a
// delete (time never passes), so the tests see exactly what each call leaves hidden. It
// provokes what the emulator cannot: refused entries and failed requests.
type fakeSQS struct {
	mu       sync.Mutex
	queues   map[string][]*fakeMsg
	n        int
	refuse   map[string]bool // bodies SendMessageBatch refuses
	sendErr  error
	delErr   error
	received int
	// loseReceive makes the next receive lose its response: it hides messages, and the
	// SDK's retryer is told of a retry after a closed connection, as a real client would.
	loseReceive bool
}

type fakeMsg struct {
	id, body, handle string
	hidden           bool
	receives         int
}

func newFakeSQS() *fakeSQS {
	return &fakeSQS{queues: map[string][]*fakeMsg{}, refuse: map[string]bool{}}
}

func (f *fakeSQS) put(url, body string) string {
	f.n++
	id := fmt.Sprintf("00000000-0000-4000-8000-%012d", f.n)
	f.queues[url] = append(f.queues[url], &fakeMsg{id: id, body: body})
	return id
}

func (f *fakeSQS) ReceiveMessage(ctx context.Context, in *sqs.ReceiveMessageInput, opts ...func(*sqs.Options)) (*sqs.ReceiveMessageOutput, error) {
	f.mu.Lock()
	lose := f.loseReceive
	f.loseReceive = false
	f.mu.Unlock()
	if lose {
		f.receive(in) // applied; its response never arrives
		o := sqs.Options{Retryer: retry.NewStandard()}
		for _, opt := range opts {
			opt(&o)
		}
		if _, err := o.Retryer.RetryDelay(1, &net.OpError{Op: "read", Err: net.ErrClosed}); err != nil {
			return nil, err
		}
	}
	return f.receive(in), nil
}

func (f *fakeSQS) receive(in *sqs.ReceiveMessageInput) *sqs.ReceiveMessageOutput {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := &sqs.ReceiveMessageOutput{}
	for _, m := range f.queues[aws.ToString(in.QueueUrl)] {
		if m.hidden || len(out.Messages) == int(in.MaxNumberOfMessages) {
			continue
		}
		if in.VisibilityTimeout < 1 {
			panic("a receive that hides nothing")
		}
		f.n++
		m.hidden, m.handle = true, "h"+strconv.Itoa(f.n)
		m.receives++
		f.received++
		out.Messages = append(out.Messages, sqstypes.Message{
			MessageId: aws.String(m.id), ReceiptHandle: aws.String(m.handle), Body: aws.String(m.body),
			Attributes: map[string]string{"ApproximateReceiveCount": strconv.Itoa(m.receives), "SentTimestamp": "1630483200000"},
		})
	}
	return out
}

func (f *fakeSQS) find(url, handle string) (int, *fakeMsg) {
	for i, m := range f.queues[url] {
		if m.handle == handle {
			return i, m
		}
	}
	return -1, nil
}

func (f *fakeSQS) ChangeMessageVisibilityBatch(_ context.Context, in *sqs.ChangeMessageVisibilityBatchInput, _ ...func(*sqs.Options)) (*sqs.ChangeMessageVisibilityBatchOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := &sqs.ChangeMessageVisibilityBatchOutput{}
	for _, e := range in.Entries {
		if _, m := f.find(aws.ToString(in.QueueUrl), aws.ToString(e.ReceiptHandle)); m != nil {
			m.hidden = e.VisibilityTimeout > 0
			out.Successful = append(out.Successful, sqstypes.ChangeMessageVisibilityBatchResultEntry{Id: e.Id})
		} else {
			out.Failed = append(out.Failed, sqstypes.BatchResultErrorEntry{Id: e.Id, Code: aws.String("ReceiptHandleIsInvalid")})
		}
	}
	return out, nil
}

func (f *fakeSQS) DeleteMessageBatch(_ context.Context, in *sqs.DeleteMessageBatchInput, _ ...func(*sqs.Options)) (*sqs.DeleteMessageBatchOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.delErr != nil {
		return nil, f.delErr
	}
	url := aws.ToString(in.QueueUrl)
	out := &sqs.DeleteMessageBatchOutput{}
	for _, e := range in.Entries {
		if i, _ := f.find(url, aws.ToString(e.ReceiptHandle)); i >= 0 {
			f.queues[url] = slices.Delete(f.queues[url], i, i+1)
			out.Successful = append(out.Successful, sqstypes.DeleteMessageBatchResultEntry{Id: e.Id})
		} else {
			out.Failed = append(out.Failed, sqstypes.BatchResultErrorEntry{Id: e.Id, Code: aws.String("ReceiptHandleIsInvalid")})
		}
	}
	return out, nil
}

func (f *fakeSQS) SendMessageBatch(_ context.Context, in *sqs.SendMessageBatchInput, _ ...func(*sqs.Options)) (*sqs.SendMessageBatchOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.sendErr != nil {
		return nil, f.sendErr
	}
	if len(in.Entries) > 10 {
		return nil, fmt.Errorf("%d entries", len(in.Entries))
	}
	out := &sqs.SendMessageBatchOutput{}
	for _, e := range in.Entries {
		if f.refuse[aws.ToString(e.MessageBody)] {
			out.Failed = append(out.Failed, sqstypes.BatchResultErrorEntry{Id: e.Id, Code: aws.String("InternalError"), Message: aws.String("try again")})
			continue
		}
		f.put(aws.ToString(in.QueueUrl), aws.ToString(e.MessageBody))
		out.Successful = append(out.Successful, sqstypes.SendMessageBatchResultEntry{Id: e.Id})
	}
	return out, nil
}

// bodies lists a queue's bodies, and how many are hidden.
func (f *fakeSQS) bodies(url string) (bodies []string, hidden int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, m := range f.queues[url] {
		bodies = append(bodies, m.body)
		if m.hidden {
			hidden++
		}
	}
	slices.Sort(bodies)
	return bodies, hidden
}

const (
	centralURL = "https://sqs.example/1/central"
	deadURL    = "https://sqs.example/1/central-dlq"
	failureURL = "https://sqs.example/1/matcher-failures"
)

func newFake(t *testing.T, f *fakeSQS, opt awsdlq.Options) *awsdlq.DeadLetters {
	t.Helper()
	dl, err := awsdlq.New(f, dynamodbstreams.New(dynamodbstreams.Options{Region: "us-east-1"}), unusedDoses{t},
		awsdlq.Queues{Central: centralURL, CentralDead: deadURL, MatcherFailure: failureURL}, opt)
	if err != nil {
		t.Fatal(err)
	}
	return dl
}

func signature(t *testing.T, i int) string {
	t.Helper()
	b, err := centralqueue.Encode(vaxpass.FacilitySignature{PersonID: fmt.Sprintf("0010900%05d", i), FacilityID: "79-HCM-0001", Payload: []byte{1}, Signature: []byte{2}, SignedAt: time.Unix(int64(i), 0).UTC()})
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestArgumentsAreCheckedFirst(t *testing.T) {
	f := newFakeSQS()
	f.put(deadURL, signature(t, 1))
	dl := newFake(t, f, awsdlq.Options{})
	check := func(what string, err error, field string) {
		t.Helper()
		var fe *vaxpass.InvalidFieldError
		if !errors.Is(err, vaxpass.ErrInvalid) || !errors.As(err, &fe) || fe.Field != field {
			t.Errorf("%s: %v, want ErrInvalid naming %s", what, err, field)
		}
	}
	_, err := dl.ListDead(t.Context(), "signing", "", 10)
	check("list unknown queue", err, "queue")
	_, err = dl.ListDead(t.Context(), awsdlq.Central, "x y", 10)
	check("list after a malformed ID", err, "after")
	for _, limit := range []int{0, awsdlq.MaxPage + 1} {
		_, err = dl.ListDead(t.Context(), awsdlq.Central, "", limit)
		check(fmt.Sprintf("limit %d", limit), err, "limit")
	}
	_, _, err = dl.Redrive(t.Context(), "", nil)
	check("redrive unknown queue", err, "queue")
	_, _, err = dl.Redrive(t.Context(), awsdlq.Matcher, []string{"ok-id", "../etc"})
	check("redrive a malformed ID", err, "ids")
	if f.received != 0 {
		t.Errorf("%d messages received by refused calls", f.received)
	}
	for name, q := range map[string]awsdlq.Queues{
		"no central":  {CentralDead: deadURL, MatcherFailure: failureURL},
		"no dead":     {Central: centralURL, MatcherFailure: failureURL},
		"no failures": {Central: centralURL, CentralDead: deadURL},
	} {
		if _, err := awsdlq.New(f, dynamodbstreams.New(dynamodbstreams.Options{}), unusedDoses{t}, q, awsdlq.Options{}); !errors.Is(err, awsdlq.ErrConfig) {
			t.Errorf("New %s: %v, want ErrConfig", name, err)
		}
	}
	if _, err := awsdlq.New(nil, nil, nil, awsdlq.Queues{Central: centralURL, CentralDead: deadURL, MatcherFailure: failureURL}, awsdlq.Options{}); !errors.Is(err, awsdlq.ErrConfig) {
		t.Errorf("New without clients: %v, want ErrConfig", err)
	}
}

// A send SQS refuses leaves that message in the dead-letter queue, visible again.
func TestRefusedSendStays(t *testing.T) {
	f := newFakeSQS()
	for i := range 13 {
		f.put(deadURL, signature(t, i))
	}
	f.refuse[signature(t, 4)] = true
	f.refuse[signature(t, 11)] = true
	dl := newFake(t, f, awsdlq.Options{})
	moved, failed, err := dl.Redrive(t.Context(), awsdlq.Central, nil)
	if err != nil || moved != 11 || failed != 2 {
		t.Fatalf("Redrive = %d moved, %d failed, %v; want 11 and 2", moved, failed, err)
	}
	left, hidden := f.bodies(deadURL)
	if !slices.Equal(left, []string{signature(t, 11), signature(t, 4)}) && !slices.Equal(left, []string{signature(t, 4), signature(t, 11)}) {
		t.Fatalf("dead letters left: %d, want the 2 refused", len(left))
	}
	if hidden != 0 {
		t.Errorf("%d dead letters still hidden after the call", hidden)
	}
	if sent, _ := f.bodies(centralURL); len(sent) != 11 || slices.Contains(sent, signature(t, 4)) {
		t.Errorf("central queue got %d messages, want the 11 others", len(sent))
	}
	// Named, the refused one fails again and stays.
	ls := list(t, dl, awsdlq.Central, "", 10)
	if moved, failed, err := dl.Redrive(t.Context(), awsdlq.Central, []string{ls[0].ID}); err != nil || moved != 0 || failed != 1 {
		t.Fatalf("Redrive(refused) = %d, %d, %v", moved, failed, err)
	}
	if _, hidden := f.bodies(deadURL); hidden != 0 {
		t.Errorf("%d hidden after the named redrive", hidden)
	}
}

// A failed send request may have sent: nothing of it is deleted.
func TestFailedSendDeletesNothing(t *testing.T) {
	f := newFakeSQS()
	for i := range 3 {
		f.put(deadURL, signature(t, i))
	}
	f.sendErr = errors.New("connection reset")
	dl := newFake(t, f, awsdlq.Options{})
	if _, _, err := dl.Redrive(t.Context(), awsdlq.Central, nil); err == nil {
		t.Fatal("Redrive succeeded through a failed send")
	}
	if left, hidden := f.bodies(deadURL); len(left) != 3 || hidden != 0 {
		t.Fatalf("%d dead letters left (%d hidden), want all 3, visible", len(left), hidden)
	}
	ids := letterIDs(list(t, dl, awsdlq.Central, "", 10))
	if _, _, err := dl.Redrive(t.Context(), awsdlq.Central, ids[1:]); err == nil {
		t.Fatal("Redrive by ID succeeded through a failed send")
	}
	if left, hidden := f.bodies(deadURL); len(left) != 3 || hidden != 0 {
		t.Fatalf("%d dead letters left (%d hidden), want all 3, visible", len(left), hidden)
	}
}

// The documented crash case: sent, then not deleted. The letter stays and a later redrive
// sends it again: a duplicate on the central queue, never a loss.
func TestSentButNotDeletedIsRepeated(t *testing.T) {
	f := newFakeSQS()
	f.put(deadURL, signature(t, 1))
	f.delErr = errors.New("connection reset")
	dl := newFake(t, f, awsdlq.Options{})
	if moved, failed, err := dl.Redrive(t.Context(), awsdlq.Central, nil); err != nil || moved != 1 || failed != 0 {
		t.Fatalf("Redrive = %d, %d, %v", moved, failed, err)
	}
	if left, _ := f.bodies(deadURL); len(left) != 1 {
		t.Fatalf("%d dead letters, want the undeleted one", len(left))
	}
	f.delErr = nil
	f.mu.Lock()
	f.queues[deadURL][0].hidden = false // its visibility timeout ends
	f.mu.Unlock()
	if moved, _, err := dl.Redrive(t.Context(), awsdlq.Central, nil); err != nil || moved != 1 {
		t.Fatalf("second Redrive = %d, %v", moved, err)
	}
	sent, _ := f.bodies(centralURL)
	left, _ := f.bodies(deadURL)
	if len(sent) != 2 || sent[0] != sent[1] || len(left) != 0 {
		t.Fatalf("central %d, dead %d: want the message twice on the central queue and gone from the dead letters", len(sent), len(left))
	}
}

// A queue larger than MaxScan is not listed (a part would be in the wrong order), and
// every message it received is visible again.
func TestListRefusesTooMany(t *testing.T) {
	f := newFakeSQS()
	var last string
	for i := range 25 {
		last = f.put(deadURL, signature(t, i))
	}
	dl := newFake(t, f, awsdlq.Options{MaxScan: 20})
	if _, _, err := dl.Redrive(t.Context(), awsdlq.Central, []string{last}); !errors.Is(err, awsdlq.ErrTooMany) {
		t.Fatalf("Redrive of the 25th message with MaxScan 20: %v, want ErrTooMany", err)
	}
	if _, err := dl.ListDead(t.Context(), awsdlq.Central, "", 10); !errors.Is(err, awsdlq.ErrTooMany) {
		t.Fatalf("ListDead of 25 with MaxScan 20: %v, want ErrTooMany", err)
	}
	if _, hidden := f.bodies(deadURL); hidden != 0 {
		t.Fatalf("%d messages left hidden", hidden)
	}
	// Redrive of all goes on in steps of MaxScan.
	moved, _, err := dl.Redrive(t.Context(), awsdlq.Central, nil)
	if err != nil || moved != 20 {
		t.Fatalf("Redrive = %d, %v; want 20", moved, err)
	}
	if moved, _, err := dl.Redrive(t.Context(), awsdlq.Central, nil); err != nil || moved != 5 {
		t.Fatalf("second Redrive = %d, %v; want 5", moved, err)
	}
}

// An undecodable body is listed (with a reason) and never read out.
func TestListPoisonBody(t *testing.T) {
	f := newFakeSQS()
	f.put(deadURL, `{"signature":{"person_id":"001090000001"}}`)
	dl := newFake(t, f, awsdlq.Options{})
	ls := list(t, dl, awsdlq.Central, "", 10)
	if len(ls) != 1 || ls[0].FacilityID != "" || ls[0].Reason == "" || ls[0].ReceiveCount != 0 || ls[0].SentAt.IsZero() || !ls[0].DeadAt.Equal(ls[0].SentAt) {
		t.Fatalf("letters %+v", ls)
	}
}

// A receive whose response was lost hid messages nobody got: the listing says so
// (ErrUnavailable, try again) instead of answering a part; so does a redrive by ID that
// did not find its messages. Once their visibility timeout ended, both work.
func TestLostReceive(t *testing.T) {
	f := newFakeSQS()
	for i := range 15 {
		f.put(deadURL, signature(t, i))
	}
	dl := newFake(t, f, awsdlq.Options{})
	f.loseReceive = true
	if _, err := dl.ListDead(t.Context(), awsdlq.Central, "", 100); !errors.Is(err, vaxpass.ErrUnavailable) {
		t.Fatalf("ListDead after a lost receive: %v, want ErrUnavailable", err)
	}
	if _, hidden := f.bodies(deadURL); hidden != 10 {
		t.Fatalf("%d hidden, want the 10 of the lost receive only", hidden)
	}
	var lostIDs []string
	f.mu.Lock()
	for _, m := range f.queues[deadURL] {
		if m.hidden {
			lostIDs = append(lostIDs, m.id)
		}
	}
	f.mu.Unlock()
	if _, _, err := dl.Redrive(t.Context(), awsdlq.Central, lostIDs[:1]); !errors.Is(err, vaxpass.ErrNotFound) {
		t.Fatalf("Redrive of a message hidden by an earlier call: %v, want ErrNotFound", err)
	}
	f.loseReceive = true
	if _, _, err := dl.Redrive(t.Context(), awsdlq.Central, lostIDs[:1]); !errors.Is(err, vaxpass.ErrUnavailable) {
		t.Fatalf("Redrive by ID after a lost receive: %v, want ErrUnavailable", err)
	}
	if sent, _ := f.bodies(centralURL); len(sent) != 0 {
		t.Fatalf("%d messages moved by refused redrives", len(sent))
	}
	f.mu.Lock()
	for _, m := range f.queues[deadURL] {
		m.hidden = false // their visibility timeout ends
	}
	f.mu.Unlock()
	if ls := list(t, dl, awsdlq.Central, "", 100); len(ls) != 15 {
		t.Fatalf("%d letters, want 15", len(ls))
	}
}
