package awssqs_test

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/vaxpass/vaxpass/shared/edge/centralqueue"
	"github.com/vaxpass/vaxpass/shared/store/awssqs"
	"github.com/vaxpass/vaxpass/shared/testkit/awstest"
	"github.com/vaxpass/vaxpass/shared/vaxpass"
)

// flakySQS refuses each listed person's message the first refusals times it sees it, as
// SQS may refuse entries of a batch; it is safe for concurrent calls.
type flakySQS struct {
	mu       sync.Mutex
	refusals int
	refuse   map[string]int // person ID -> refusals so far
	sent     map[string]int // person ID -> times accepted
	calls    int
}

func (f *flakySQS) SendMessage(context.Context, *sqs.SendMessageInput, ...func(*sqs.Options)) (*sqs.SendMessageOutput, error) {
	return nil, fmt.Errorf("SendMessage called: a page must go in batches")
}

func (f *flakySQS) SendMessageBatch(_ context.Context, in *sqs.SendMessageBatchInput, _ ...func(*sqs.Options)) (*sqs.SendMessageBatchOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	if len(in.Entries) > awssqs.MaxBatch {
		return nil, fmt.Errorf("%d entries", len(in.Entries))
	}
	out := &sqs.SendMessageBatchOutput{}
	for _, e := range in.Entries {
		sig, err := centralqueue.Decode(aws.ToString(e.MessageBody))
		if err != nil {
			return nil, err
		}
		if n, listed := f.refuse[sig.PersonID]; listed && n < f.refusals {
			f.refuse[sig.PersonID] = n + 1
			out.Failed = append(out.Failed, types.BatchResultErrorEntry{Id: e.Id, Code: aws.String("InternalError")})
			continue
		}
		f.sent[sig.PersonID]++
	}
	return out, nil
}

func page(n int) []vaxpass.FacilitySignature {
	sigs := make([]vaxpass.FacilitySignature, n)
	for i := range sigs {
		sigs[i] = vaxpass.FacilitySignature{PersonID: fmt.Sprintf("0790850%05d", i), FacilityID: "79-HCM-0001", Payload: []byte{1}, Signature: []byte{2}}
	}
	return sigs
}

func TestSendSignaturesRetriesRefusedEntries(t *testing.T) {
	for _, tc := range []struct {
		refusals int
		wantErr  bool
	}{{1, false}, {2, false}, {3, true}} {
		t.Run(strconv.Itoa(tc.refusals), func(t *testing.T) {
			fake := &flakySQS{refusals: tc.refusals, refuse: map[string]int{"079085000007": 0, "079085000123": 0, "079085000499": 0}, sent: map[string]int{}}
			q, err := awssqs.NewCentralQueue(fake, "https://sqs.example/q")
			if err != nil {
				t.Fatal(err)
			}
			err = q.SendSignatures(t.Context(), page(500))
			if (err != nil) != tc.wantErr {
				t.Fatalf("refused %d times: %v, want error %v", tc.refusals, err, tc.wantErr)
			}
			if tc.wantErr {
				return
			}
			if len(fake.sent) != 500 {
				t.Fatalf("%d people sent, want 500", len(fake.sent))
			}
			for id, n := range fake.sent {
				if n != 1 {
					t.Fatalf("person %s sent %d times", id, n)
				}
			}
			if want := 50 + tc.refusals; fake.calls != want {
				t.Errorf("%d SendMessageBatch calls, want %d (50 batches and one per round of refusals)", fake.calls, want)
			}
		})
	}
}

func TestSendSignaturesOnSQS(t *testing.T) {
	cfg := awstest.Config(t)
	client := sqs.NewFromConfig(cfg)
	url := awstest.Queue(t, client, nil)
	q, err := awssqs.NewCentralQueue(client, url)
	if err != nil {
		t.Fatal(err)
	}
	if err := q.SendSignatures(t.Context(), page(45)); err != nil {
		t.Fatal(err)
	}
	bodies := receiveDistinct(t, client, url, 45)
	if len(bodies) != 45 {
		t.Fatalf("received %d distinct messages, want 45", len(bodies))
	}
	for _, b := range bodies {
		if _, err := centralqueue.Decode(b); err != nil {
			t.Fatal(err)
		}
	}
}
