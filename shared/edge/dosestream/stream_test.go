package dosestream_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"testing"

	"github.com/aws/aws-lambda-go/events"

	"github.com/vaxpass/vaxpass/shared/edge/dosestream"
	"github.com/vaxpass/vaxpass/shared/stage/matching"
	"github.com/vaxpass/vaxpass/shared/vaxpass"
)

// fakeMatcher records what it was asked to match and fails for chosen source IDs.
type fakeMatcher struct {
	seen []string
	fail map[string]error
}

func (f *fakeMatcher) MatchDoses(_ context.Context, ds []vaxpass.Dose) ([]matching.Outcome, []error) {
	outs := make([]matching.Outcome, len(ds))
	errs := make([]error, len(ds))
	for i, d := range ds {
		f.seen = append(f.seen, d.SourceID+"/"+d.FullName)
		errs[i] = f.fail[d.SourceID]
	}
	return outs, errs
}

func loadEvent(t *testing.T) events.DynamoDBEvent {
	t.Helper()
	b, err := os.ReadFile("../../../events/dynamodb-stream-doses.json")
	if err != nil {
		t.Fatal(err)
	}
	var ev events.DynamoDBEvent
	if err := json.Unmarshal(b, &ev); err != nil {
		t.Fatal(err)
	}
	return ev
}

func TestMatchesInsertAndModifyImages(t *testing.T) {
	m := &fakeMatcher{}
	h := &dosestream.Handler{Matcher: m}
	resp, err := h.Handle(context.Background(), loadEvent(t))
	if err != nil || len(resp.BatchItemFailures) != 0 {
		t.Fatalf("Handle = %+v, %v", resp, err)
	}
	want := []string{"src-0001/Nguyen Van An", "src-0002/Trần Thị Bình"} // REMOVE is not matched
	if len(m.seen) != len(want) || m.seen[0] != want[0] || m.seen[1] != want[1] {
		t.Fatalf("matched %q, want %q (new images, no REMOVE)", m.seen, want)
	}
}

func TestTransientFailureStopsAtThatRecord(t *testing.T) {
	ev := loadEvent(t)
	// Put a second INSERT after the failing one: a stream is ordered, so it must wait.
	ev.Records = append(ev.Records, ev.Records[0])
	ev.Records[3].Change.SequenceNumber = "111100000000000000004"
	m := &fakeMatcher{fail: map[string]error{"src-0002": errors.New("registry unavailable")}}
	resp, err := (&dosestream.Handler{Matcher: m}).Handle(context.Background(), ev)
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.BatchItemFailures) != 1 || resp.BatchItemFailures[0].ItemIdentifier != "111100000000000000002" {
		t.Fatalf("failures = %+v, want the failing record's sequence number", resp.BatchItemFailures)
	}
	if len(resp.BatchItemFailures) != 1 {
		t.Fatalf("records after the failure must be retried with it, not reported apart")
	}
}

func TestUnreadableImageIsSkippedNotRetried(t *testing.T) {
	ev := loadEvent(t)
	ev.Records[0].Change.NewImage = map[string]events.DynamoDBAttributeValue{"doc": events.NewStringAttribute("{not json")}
	m := &fakeMatcher{}
	resp, err := (&dosestream.Handler{Matcher: m}).Handle(context.Background(), ev)
	if err != nil || len(resp.BatchItemFailures) != 0 {
		t.Fatalf("Handle = %+v, %v; a poison image must not block the shard", resp, err)
	}
	if len(m.seen) != 1 {
		t.Fatalf("matched %q, want only the readable record", m.seen)
	}
}

func TestResponseMarshalsEmptyFailureList(t *testing.T) {
	resp, err := (&dosestream.Handler{Matcher: &fakeMatcher{}}).Handle(context.Background(), loadEvent(t))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(resp)
	if string(b) != `{"batchItemFailures":[]}` {
		t.Fatalf("response JSON %s: an empty list, never null (emulators choke on null)", b)
	}
}
