package awsddb_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda"

	"github.com/vaxpass/vaxpass/shared/domain/match"
	"github.com/vaxpass/vaxpass/shared/edge/dosestream"
	"github.com/vaxpass/vaxpass/shared/stage/matching"
	"github.com/vaxpass/vaxpass/shared/store/doseitem"
	"github.com/vaxpass/vaxpass/shared/vaxpass"
)

// recordingMatcher is the stream handler's matcher: it keeps what it was given.
type recordingMatcher struct{ got []vaxpass.Dose }

func (m *recordingMatcher) MatchDoses(_ context.Context, doses []vaxpass.Dose) ([]matching.Outcome, []error) {
	m.got = append(m.got, doses...)
	outcomes := make([]matching.Outcome, len(doses))
	for i := range outcomes {
		outcomes[i] = matching.Matched
	}
	return outcomes, make([]error, len(doses))
}

// TestCapturedStreamEvents pushes real stream events, as ministack's event source mapping
// delivered them for items the store wrote (testdata/README.md), through the stream
// handler's Lambda JSON path: the doseitem layout needs nothing beyond doseitem.FromImage.
func TestCapturedStreamEvents(t *testing.T) {
	for _, tc := range []struct {
		file         string
		event        string
		status       match.Status
		person       string
		signPending  bool
		wantOldImage bool
	}{
		{"ministack-stream-insert.json", "INSERT", match.Pending, "", false, false},
		{"ministack-stream-modify.json", "MODIFY", match.Verified, "079185000001", true, true},
	} {
		t.Run(tc.event, func(t *testing.T) {
			payload, err := os.ReadFile(filepath.Join("testdata", tc.file))
			if err != nil {
				t.Fatal(err)
			}
			m := &recordingMatcher{}
			h := &dosestream.Handler{Matcher: m}
			out, err := lambda.NewHandler(h.Handle).Invoke(t.Context(), payload)
			if err != nil {
				t.Fatalf("invoke: %v", err)
			}
			// No failures, as [] not null (ministack's event source mappings reject null).
			if string(out) != `{"batchItemFailures":[]}` {
				t.Errorf("response %s", out)
			}
			if len(m.got) != 1 {
				t.Fatalf("matcher called with %d doses, want 1", len(m.got))
			}
			d := m.got[0]
			if d.FacilityID != "79-HCM-0001" || d.SourceID != "capture-0001" || d.Match.Status != tc.status || d.PersonID != tc.person {
				t.Errorf("dose %s/%s status %s person %q", d.FacilityID, d.SourceID, d.Match.Status, d.PersonID)
			}
			if d.SignPending() != tc.signPending {
				t.Errorf("SignPending %v, want %v", d.SignPending(), tc.signPending)
			}

			// The images are exactly the doseitem layout of the doses they carry.
			var ev events.DynamoDBEvent
			if err := json.Unmarshal(payload, &ev); err != nil {
				t.Fatal(err)
			}
			rec := ev.Records[0]
			if rec.EventName != tc.event || rec.Change.StreamViewType != "NEW_AND_OLD_IMAGES" {
				t.Errorf("event %s, view %s", rec.EventName, rec.Change.StreamViewType)
			}
			checkLayout(t, "NewImage", rec.Change.NewImage)
			if tc.wantOldImage != (rec.Change.OldImage != nil) {
				t.Errorf("OldImage present %v, want %v", rec.Change.OldImage != nil, tc.wantOldImage)
			}
			if rec.Change.OldImage != nil {
				checkLayout(t, "OldImage", rec.Change.OldImage)
			}
		})
	}
}

// checkLayout decodes an image and compares every attribute with doseitem's rendering of
// the decoded dose.
func checkLayout(t *testing.T, what string, img map[string]events.DynamoDBAttributeValue) {
	t.Helper()
	d, err := doseitem.FromImage(img)
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	want, err := doseitem.Image(&d)
	if err != nil {
		t.Fatal(err)
	}
	// The captures predate needs_match (testdata/README.md); the storetest contract
	// checks it in every image both stores write.
	delete(want, doseitem.AttrNeedsMatch)
	if len(img) != len(want) {
		t.Errorf("%s: %d attributes, want %d", what, len(img), len(want))
	}
	for name, w := range want {
		got, ok := img[name]
		switch {
		case !ok:
			t.Errorf("%s: attribute %s missing", what, name)
		case got.DataType() != w.DataType():
			t.Errorf("%s: %s has type %v, want %v", what, name, got.DataType(), w.DataType())
		case name == doseitem.AttrDoc:
			var a, b any
			if json.Unmarshal([]byte(got.String()), &a) != nil || json.Unmarshal([]byte(w.String()), &b) != nil {
				t.Errorf("%s: doc is not JSON", what)
			}
			ga, _ := json.Marshal(a)
			gb, _ := json.Marshal(b)
			if string(ga) != string(gb) {
				t.Errorf("%s: doc\n got %s\nwant %s", what, ga, gb)
			}
		case w.DataType() == events.DataTypeNumber && got.Number() != w.Number(),
			w.DataType() == events.DataTypeString && got.String() != w.String():
			t.Errorf("%s: %s differs", what, name)
		}
	}
}
