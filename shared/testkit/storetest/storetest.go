// Package storetest is the contract suite every store adapter (the embedded bbolt store,
// the DynamoDB one) must pass: the ports the use cases and handlers declare -- dose
// writes with idempotency and version-conditional updates, the indexes the pipeline reads
// (by status, by person, sign-pending people), certificates and their replacement,
// facility signatures, facilities, the dashboard's counters -- plus, for adapters that can read their own change
// stream, the DynamoDB-stream events each dose write emits.
//
// An adapter's tests call Run with a function that opens a fresh, empty store:
//
//	func TestStoreContract(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) storetest.Store { return openFresh(t) })
//	}
package storetest

import (
	"context"
	"encoding/json"
	"errors"
	"sort"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/vaxpass/vaxpass/shared/domain/dose"
	"github.com/vaxpass/vaxpass/shared/domain/match"
	"github.com/vaxpass/vaxpass/shared/edge/httpapi"
	"github.com/vaxpass/vaxpass/shared/stage/ingest"
	"github.com/vaxpass/vaxpass/shared/stage/lookup"
	"github.com/vaxpass/vaxpass/shared/stage/matching"
	"github.com/vaxpass/vaxpass/shared/stage/signing"
	"github.com/vaxpass/vaxpass/shared/stage/stats"
	"github.com/vaxpass/vaxpass/shared/store/doseitem"
	"github.com/vaxpass/vaxpass/shared/vaxpass"
)

// Store is everything a store adapter provides: the ports of the use cases and handlers,
// and the operations of facility registration, corrections, ops and renewal.
type Store interface {
	ingest.DoseWriter
	matching.MatchWriter
	signing.FacilityStore
	signing.CentralStore
	signing.BatchMarker
	lookup.CertReader
	httpapi.Facilities
	httpapi.DoseReader
	httpapi.CertReader

	// SaveMatchBatch is SaveMatch for many doses at once; errs[i] is doses[i]'s own
	// outcome (nil, or wrapping vaxpass.ErrConflict / vaxpass.ErrNotFound); err a store
	// failure.
	SaveMatchBatch(ctx context.Context, doses []vaxpass.Dose) (errs []error, err error)
	// UpdateDose stores a correction: conditional on d.Version, stored with Version+1.
	UpdateDose(ctx context.Context, d vaxpass.Dose) error

	// AddFacility registers a facility (vaxpass.ErrConflict: ID or API key hash taken).
	AddFacility(ctx context.Context, f vaxpass.Facility) error
	GetFacility(ctx context.Context, id string) (vaxpass.Facility, error)
	// ListFacilities lists every facility in ID order.
	ListFacilities(ctx context.Context) ([]vaxpass.Facility, error)

	// RevokeCertificate revokes an issued certificate, conditional on c.Version.
	RevokeCertificate(ctx context.Context, c vaxpass.Certificate, reason string, at time.Time) error
	// CertificatesExpiringBefore pages through the issued certificates whose ExpiresAt
	// is before t, by ExpiresAt then UVCI; cursor "" starts, next "" ends.
	CertificatesExpiringBefore(ctx context.Context, t time.Time, cursor string, limit int) (certs []vaxpass.Certificate, next string, err error)
	// CertificatesExpiringBetween is the same over from <= ExpiresAt < to (from zero: no
	// lower bound): a renewal run's slice.
	CertificatesExpiringBetween(ctx context.Context, from, to time.Time, cursor string, limit int) (certs []vaxpass.Certificate, next string, err error)
	// LatestExpiryBefore is the latest ExpiresAt of an issued certificate before t.
	LatestExpiryBefore(ctx context.Context, t time.Time) (time.Time, bool, error)
	// ListCertificates pages through every certificate, each once, in an order of the
	// adapter's choosing (a scan); cursor "" starts, next "" ends.
	ListCertificates(ctx context.Context, cursor string, limit int) (certs []vaxpass.Certificate, next string, err error)
	// CertificateCounts counts certificates by status as seen at now (issued, expired,
	// revoked).
	CertificateCounts(ctx context.Context, now time.Time) (map[string]int, error)

	// StatCounters reads the dashboard's counters, kept as the store writes.
	stats.Counters
}

// ChangeEventReader is implemented by adapters that can read their own doses change
// stream; the suite then checks the events each write emits. ChangeEvents returns every
// retained event, oldest first, including those of every write that has returned (an
// adapter over an asynchronous stream waits until the stream has caught up).
type ChangeEventReader interface {
	ChangeEvents(ctx context.Context) ([]events.DynamoDBEventRecord, error)
}

// Run runs the contract suite; open must return a fresh, empty store for each call (and
// close it with t.Cleanup).
func Run(t *testing.T, open func(t *testing.T) Store) {
	for _, tc := range []struct {
		name string
		fn   func(t *testing.T, s Store)
	}{
		{"PutNew/CreatesAndReadsBack", testPutNewCreates},
		{"PutNew/Idempotent", testPutNewIdempotent},
		{"PutNew/ConcurrentSameKey", testPutNewConcurrent},
		{"PutNew/Invalid", testPutNewInvalid},
		{"PutNew/CanceledContext", testPutNewCanceled},
		{"GetDose/NotFound", testGetDoseNotFound},
		{"SaveMatch/Conditional", testSaveMatchConditional},
		{"SaveMatch/ReindexesOnRematch", testSaveMatchReindex},
		{"SaveMatchBatch", testSaveMatchBatch},
		{"UpdateDose", testUpdateDose},
		{"ListByStatus/OrderAndCursor", testListByStatus},
		{"ListByCommune/OrderCursorAndMoves", testListByCommune},
		{"SignPendingPersons", testSignPendingPersons},
		{"PersonDoses", testPersonDoses},
		{"MarkSigned", testMarkSigned},
		{"MarkSigned/AllOrNothing", testMarkSignedConflict},
		{"MarkSignedGroups/EachGroupOnItsOwn", testMarkSignedGroups},
		{"FacilitySignatures/KeepNewest", testFacilitySignatures},
		{"ReplaceCertificate/First", testReplaceFirst},
		{"ReplaceCertificate/Supersede", testReplaceSupersede},
		{"ReplaceCertificate/Renewal", testReplaceRenewal},
		{"ReplaceCertificate/Invalid", testReplaceInvalid},
		{"ReplaceCertificate/Concurrent", testReplaceConcurrent},
		{"RevokeCertificate", testRevokeCertificate},
		{"CertificatesExpiringBefore", testExpiring},
		{"CertificatesExpiringBetween", testExpiringBetween},
		{"ListCertificatesAndCounts", testListCertificates},
		{"Facilities", testFacilities},
		{"Stats/CountersEqualRecount", testStatsCounters},
		{"Stats/RenewalInPlace", testStatsRenewalInPlace},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.fn(t, open(t))
		})
	}
}

// base is the suite's clock: fixed, so stored times compare exactly.
var base = time.Date(2021, 9, 1, 8, 0, 0, 0, time.UTC)

// newDose is a pending dose as ingest stores it.
func newDose(facilityID, sourceID string) vaxpass.Dose {
	return vaxpass.Dose{
		FacilityID: facilityID,
		Record: dose.Record{
			SourceID: sourceID, FullName: "Nguyễn Văn An", DOB: "1990-01-02", Gender: dose.Male,
			IDNumber: "001090012345", Nationality: "VN", Vaccine: "PFIZER", DoseNumber: 1,
			VaccinatedOn: "2021-08-01", Lot: "FF1234",
		},
		Match:      match.Result{Status: match.Pending, Reasons: []string{}},
		ReceivedAt: base,
		UpdatedAt:  base,
		Version:    1,
	}
}

// matched is d as the matcher writes it back with status st (and person when VERIFIED).
func matched(d vaxpass.Dose, st match.Status, person string) vaxpass.Dose {
	d.Match = match.Result{Status: st, Reasons: []string{}}
	if st == match.Mismatch {
		d.Match.Reasons = []string{match.ReasonDOB}
	}
	d.MatchedDetails = vaxpass.DetailsHash(&d.Record)
	d.PersonID = ""
	if st == match.Verified {
		d.PersonID = person
	}
	d.SignedAt = time.Time{}
	d.UpdatedAt = d.UpdatedAt.Add(time.Minute)
	return d
}

// bumped is d as stored after one conditional write.
func bumped(d vaxpass.Dose) vaxpass.Dose {
	d.Version++
	return d
}

func ctxOf(t *testing.T) context.Context { return t.Context() }

// mustPut stores new doses and fails unless all were created.
func mustPut(t *testing.T, s Store, doses ...vaxpass.Dose) {
	t.Helper()
	created, err := s.PutNew(ctxOf(t), doses)
	if err != nil {
		t.Fatalf("PutNew: %v", err)
	}
	for i, c := range created {
		if !c {
			t.Fatalf("PutNew: dose %d (%s) not created", i, doses[i].SourceID)
		}
	}
}

// mustSave stores d via SaveMatch and returns it as stored.
func mustSave(t *testing.T, s Store, d vaxpass.Dose) vaxpass.Dose {
	t.Helper()
	if err := s.SaveMatch(ctxOf(t), d); err != nil {
		t.Fatalf("SaveMatch %s: %v", d.SourceID, err)
	}
	return bumped(d)
}

// sameJSON compares values by their JSON encoding: what a store keeps is what its JSON
// round trip keeps.
func sameJSON(t *testing.T, what string, got, want any) {
	t.Helper()
	g, err := json.Marshal(got)
	if err != nil {
		t.Fatal(err)
	}
	w, err := json.Marshal(want)
	if err != nil {
		t.Fatal(err)
	}
	if string(g) != string(w) {
		t.Errorf("%s:\n got %s\nwant %s", what, g, w)
	}
}

// checkDose reads a dose back and compares it with want.
func checkDose(t *testing.T, s Store, want vaxpass.Dose) {
	t.Helper()
	got, err := s.GetDose(ctxOf(t), want.Key())
	if err != nil {
		t.Fatalf("GetDose %s: %v", want.SourceID, err)
	}
	sameJSON(t, "GetDose "+want.SourceID, got, want)
}

func wantErr(t *testing.T, what string, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Errorf("%s: error %v, want %v", what, err, target)
	}
}

func sourceIDs(ds []vaxpass.Dose) []string {
	out := make([]string, len(ds))
	for i, d := range ds {
		out[i] = d.SourceID
	}
	return out
}

func sortedCopy(s []string) []string {
	out := append([]string(nil), s...)
	sort.Strings(out)
	return out
}

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// eventWatch reads the change events emitted since its last call; ok is false for
// adapters without ChangeEventReader (the event checks are then skipped).
type eventWatch struct {
	r    ChangeEventReader
	seen int
}

func watchEvents(t *testing.T, s Store) *eventWatch {
	t.Helper()
	r, ok := s.(ChangeEventReader)
	if !ok {
		return &eventWatch{}
	}
	w := &eventWatch{r: r}
	w.next(t)
	return w
}

func (w *eventWatch) next(t *testing.T) (evs []events.DynamoDBEventRecord, ok bool) {
	t.Helper()
	if w.r == nil {
		return nil, false
	}
	all, err := w.r.ChangeEvents(ctxOf(t))
	if err != nil {
		t.Fatalf("ChangeEvents: %v", err)
	}
	if len(all) < w.seen {
		t.Fatalf("ChangeEvents: %d events, fewer than the %d seen before", len(all), w.seen)
	}
	evs = all[w.seen:]
	w.seen = len(all)
	for i := 1; i < len(all); i++ {
		if all[i].Change.SequenceNumber <= all[i-1].Change.SequenceNumber {
			t.Fatalf("ChangeEvents: sequence numbers out of order: %s after %s", all[i].Change.SequenceNumber, all[i-1].Change.SequenceNumber)
		}
	}
	return evs, true
}

// expectEvents checks that exactly the given changes were emitted, in order: an INSERT
// of want when old is nil, a MODIFY from old to want otherwise.
type change struct {
	old  *vaxpass.Dose
	want vaxpass.Dose
}

func (w *eventWatch) expect(t *testing.T, what string, changes ...change) {
	t.Helper()
	evs, ok := w.next(t)
	if !ok {
		return
	}
	if len(evs) != len(changes) {
		t.Errorf("%s: %d change events, want %d", what, len(evs), len(changes))
		return
	}
	for i, ev := range evs {
		c := changes[i]
		name := "INSERT"
		if c.old != nil {
			name = "MODIFY"
		}
		if ev.EventName != name {
			t.Errorf("%s: event %d is %s, want %s", what, i, ev.EventName, name)
		}
		if ev.Change.StreamViewType != string(events.DynamoDBStreamViewTypeNewImage) {
			t.Errorf("%s: event %d stream view type %q", what, i, ev.Change.StreamViewType)
		}
		if ev.EventSource != "aws:dynamodb" {
			t.Errorf("%s: event %d source %q", what, i, ev.EventSource)
		}
		checkKeys(t, what, ev.Change.Keys, c.want)
		checkImage(t, what+" NewImage", ev.Change.NewImage, c.want)
		// The doses stream is NEW_IMAGE (template.yaml): no event carries an old image.
		if len(ev.Change.OldImage) != 0 {
			t.Errorf("%s: %s event %d has an OldImage", what, name, i)
		}
	}
}

func checkKeys(t *testing.T, what string, keys map[string]events.DynamoDBAttributeValue, d vaxpass.Dose) {
	t.Helper()
	want := doseitem.Keys(&d)
	if len(keys) != len(want) {
		t.Errorf("%s: %d key attributes, want %d", what, len(keys), len(want))
	}
	for name, v := range want {
		if got, ok := keys[name]; !ok || got.DataType() != events.DataTypeString || got.String() != v.String() {
			t.Errorf("%s: key %s = %v, want %q", what, name, got, v.String())
		}
	}
}

// checkImage compares an image with the item layout of d: index attributes exactly, the
// doc by its content.
func checkImage(t *testing.T, what string, img map[string]events.DynamoDBAttributeValue, d vaxpass.Dose) {
	t.Helper()
	want, err := doseitem.Attributes(&d)
	if err != nil {
		t.Fatal(err)
	}
	for name := range img {
		if _, ok := want[name]; !ok {
			t.Errorf("%s: unexpected attribute %s", what, name)
		}
	}
	for name, v := range want {
		got, ok := img[name]
		switch {
		case !ok:
			t.Errorf("%s: attribute %s missing", what, name)
		case name == doseitem.AttrDoc:
		case name == doseitem.AttrVersion:
			if got.DataType() != events.DataTypeNumber || got.Number() != v {
				t.Errorf("%s: %s = %v, want number %s", what, name, got, v)
			}
		default:
			if got.DataType() != events.DataTypeString || got.String() != v {
				t.Errorf("%s: %s = %v, want %q", what, name, got, v)
			}
		}
	}
	back, err := doseitem.FromImage(img)
	if err != nil {
		t.Errorf("%s: %v", what, err)
		return
	}
	sameJSON(t, what+" doc", back, d)
}
