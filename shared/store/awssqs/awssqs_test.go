package awssqs_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/vaxpass/vaxpass/shared/edge/centralqueue"
	"github.com/vaxpass/vaxpass/shared/stage/signing"
	"github.com/vaxpass/vaxpass/shared/store/awssqs"
	"github.com/vaxpass/vaxpass/shared/testkit/awstest"
	"github.com/vaxpass/vaxpass/shared/vaxpass"
)

var _ signing.CentralQueue = (*awssqs.CentralQueue)(nil)

// receiveAll receives until n messages arrived (or the deadline), deleting them.
func receiveAll(t *testing.T, client *sqs.Client, url string, n int) []types.Message {
	t.Helper()
	var got []types.Message
	deadline := time.Now().Add(30 * time.Second)
	for len(got) < n && time.Now().Before(deadline) {
		out, err := client.ReceiveMessage(t.Context(), &sqs.ReceiveMessageInput{
			QueueUrl: aws.String(url), MaxNumberOfMessages: 10, WaitTimeSeconds: 1,
		})
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range out.Messages {
			got = append(got, m)
			if _, err := client.DeleteMessage(t.Context(), &sqs.DeleteMessageInput{QueueUrl: aws.String(url), ReceiptHandle: m.ReceiptHandle}); err != nil {
				t.Fatal(err)
			}
		}
	}
	return got
}

func TestCentralQueueOnSQS(t *testing.T) {
	cfg := awstest.Config(t)
	client := sqs.NewFromConfig(cfg)
	url := awstest.Queue(t, client, nil)
	q, err := awssqs.NewCentralQueue(client, url)
	if err != nil {
		t.Fatal(err)
	}
	sig := vaxpass.FacilitySignature{
		PersonID: "001090012345", FacilityID: "79-HCM-0001",
		Payload: []byte{0xa8, 0x63, 'd', 'o', 'b', 0x00, 0xff}, Signature: make([]byte, 64),
		SignedAt: time.Date(2021, 9, 1, 8, 0, 0, 123, time.UTC),
	}
	sig.Signature[0], sig.Signature[63] = 0x80, 0x01
	if err := q.SendSignature(t.Context(), sig); err != nil {
		t.Fatal(err)
	}
	bodies := receiveDistinct(t, client, url, 1)
	if len(bodies) != 1 {
		t.Fatalf("received %d distinct messages, want 1", len(bodies))
	}
	got, err := centralqueue.Decode(bodies[0])
	if err != nil {
		t.Fatal(err)
	}
	g, _ := json.Marshal(got)
	w, _ := json.Marshal(sig)
	if string(g) != string(w) || !got.SignedAt.Equal(sig.SignedAt) {
		t.Errorf("decoded %s, want %s", g, w)
	}
}

func TestSendBatchOnSQS(t *testing.T) {
	cfg := awstest.Config(t)
	client := sqs.NewFromConfig(cfg)
	url := awstest.Queue(t, client, nil)
	s, err := awssqs.NewSender(client, url)
	if err != nil {
		t.Fatal(err)
	}
	const n = 23 // three batches, the last one short
	var bodies [][]byte
	for i := range n {
		bodies = append(bodies, []byte(fmt.Sprintf(`{"renew":%d}`, i)))
	}
	failed, err := s.SendBatch(t.Context(), bodies)
	if err != nil || len(failed) != 0 {
		t.Fatalf("SendBatch: failed %v, %v", failed, err)
	}
	id, err := s.Send(t.Context(), []byte(`{"renew":"single"}`))
	if err != nil || id == "" {
		t.Fatalf("Send: %q, %v", id, err)
	}
	want := []string{`{"renew":"single"}`}
	for _, b := range bodies {
		want = append(want, string(b))
	}
	got := receiveDistinct(t, client, url, len(want))
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("received %v\nwant %v", got, want)
	}
}

// receiveDistinct receives until n distinct bodies came (or 90 s passed) and returns them
// sorted. SQS delivers at least once, and a send or receive whose response was lost is
// retried by the SDK (the emulator loses about one in a few hundred): a body may come
// twice, and a lost receive hides its messages for the visibility timeout (30 s). What
// the sender owes is every body, none other.
func receiveDistinct(t *testing.T, client *sqs.Client, url string, n int) []string {
	t.Helper()
	seen := map[string]bool{}
	deadline := time.Now().Add(90 * time.Second)
	for len(seen) < n && time.Now().Before(deadline) {
		for _, m := range receiveAll(t, client, url, 1) {
			seen[aws.ToString(m.Body)] = true
		}
	}
	return slices.Sorted(maps.Keys(seen))
}

// fakeSQS refuses the entries whose index is in refuse and fails requests from call
// failAt on (SQS partial failures cannot be provoked on an emulator).
type fakeSQS struct {
	refuse map[int]bool
	failAt int
	calls  int
	sent   []string
}

func (f *fakeSQS) SendMessage(_ context.Context, in *sqs.SendMessageInput, _ ...func(*sqs.Options)) (*sqs.SendMessageOutput, error) {
	f.sent = append(f.sent, aws.ToString(in.MessageBody))
	return &sqs.SendMessageOutput{MessageId: aws.String("m" + strconv.Itoa(len(f.sent)))}, nil
}

func (f *fakeSQS) SendMessageBatch(_ context.Context, in *sqs.SendMessageBatchInput, _ ...func(*sqs.Options)) (*sqs.SendMessageBatchOutput, error) {
	f.calls++
	if f.failAt > 0 && f.calls >= f.failAt {
		return nil, errors.New("connection reset")
	}
	if len(in.Entries) > awssqs.MaxBatch {
		return nil, fmt.Errorf("%d entries", len(in.Entries))
	}
	out := &sqs.SendMessageBatchOutput{}
	for _, e := range in.Entries {
		i, _ := strconv.Atoi(aws.ToString(e.Id))
		if f.refuse[i] {
			out.Failed = append(out.Failed, types.BatchResultErrorEntry{Id: e.Id, Code: aws.String("InternalError"), SenderFault: false})
			continue
		}
		f.sent = append(f.sent, aws.ToString(e.MessageBody))
	}
	return out, nil
}

func TestSendBatchFailures(t *testing.T) {
	bodies := make([][]byte, 25)
	for i := range bodies {
		bodies[i] = []byte(strconv.Itoa(i))
	}
	for _, tc := range []struct {
		name    string
		fake    *fakeSQS
		failed  []int
		wantErr bool
		sent    int
	}{
		{"all sent", &fakeSQS{}, nil, false, 25},
		{"entries refused", &fakeSQS{refuse: map[int]bool{3: true, 12: true, 24: true}}, []int{3, 12, 24}, false, 22},
		{"second request fails", &fakeSQS{refuse: map[int]bool{2: true}, failAt: 2}, append([]int{2}, seq(10, 25)...), true, 9},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := awssqs.NewSender(tc.fake, "https://sqs.example/q")
			if err != nil {
				t.Fatal(err)
			}
			failed, err := s.SendBatch(t.Context(), bodies)
			if (err != nil) != tc.wantErr {
				t.Errorf("error %v, want error %v", err, tc.wantErr)
			}
			if !slices.Equal(failed, tc.failed) {
				t.Errorf("failed %v, want %v", failed, tc.failed)
			}
			if len(tc.fake.sent) != tc.sent {
				t.Errorf("%d sent, want %d", len(tc.fake.sent), tc.sent)
			}
		})
	}
}

func seq(from, to int) []int {
	var out []int
	for i := from; i < to; i++ {
		out = append(out, i)
	}
	return out
}

func TestSendRejectsBadBodies(t *testing.T) {
	f := &fakeSQS{}
	s, err := awssqs.NewSender(f, "https://sqs.example/q")
	if err != nil {
		t.Fatal(err)
	}
	for name, body := range map[string][]byte{"empty": nil, "too large": make([]byte, awssqs.MaxBodyBytes+1)} {
		if _, err := s.Send(t.Context(), body); !errors.Is(err, vaxpass.ErrInvalid) {
			t.Errorf("Send %s: %v, want ErrInvalid", name, err)
		}
		if _, err := s.SendBatch(t.Context(), [][]byte{[]byte("ok"), body}); !errors.Is(err, vaxpass.ErrInvalid) {
			t.Errorf("SendBatch %s: %v, want ErrInvalid", name, err)
		}
	}
	if len(f.sent) != 0 {
		t.Errorf("%d messages sent from rejected calls", len(f.sent))
	}
	if _, err := awssqs.NewSender(f, ""); !errors.Is(err, awssqs.ErrConfig) {
		t.Errorf("NewSender without URL: %v", err)
	}
}
