package ingest_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/vaxpass/vaxpass/shared/domain/dose"
	"github.com/vaxpass/vaxpass/shared/stage/ingest"
	"github.com/vaxpass/vaxpass/shared/store/embedded"
	"github.com/vaxpass/vaxpass/shared/vaxpass"
)

var now = time.Date(2026, 11, 1, 9, 0, 0, 0, time.UTC)

func newService(t *testing.T) (*ingest.Service, *embedded.Store) {
	t.Helper()
	db, err := embedded.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	st, err := embedded.OpenStore(db, embedded.StoreOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return &ingest.Service{Doses: st, Now: func() time.Time { return now }}, st
}

func good(id string) dose.Record {
	return dose.Record{SourceID: id, FullName: "Nguyễn Văn An", DOB: "1988-03-14", Gender: "male",
		IDNumber: "001088012345", Vaccine: "PFIZER", DoseNumber: 1, VaccinatedOn: "2021-06-01"}
}

func items(recs ...dose.Record) []ingest.Item {
	out := make([]ingest.Item, len(recs))
	for i, r := range recs {
		out[i] = ingest.Item{Record: r}
	}
	return out
}

func TestBatchJudgedRecordByRecord(t *testing.T) {
	svc, _ := newService(t)
	bad := good("b1")
	bad.Vaccine = "SINOVAC"
	bad.VaccinatedOn = "2030-01-01"
	rep, err := svc.Submit(context.Background(), "site", items(good("g1"), bad, good("g1"), good("g2")))
	if err != nil {
		t.Fatal(err)
	}
	if rep.Accepted != 2 || rep.Rejected != 1 || rep.Duplicates != 1 {
		t.Fatalf("report %+v, want 2 accepted, 1 rejected, 1 duplicate", rep)
	}
	r := rep.Results[1]
	if r.Status != ingest.Rejected || len(r.Errors) != 2 || r.Errors[0].Field != "vaccine" || r.Errors[1].Field != "vaccinated_on" {
		t.Fatalf("bad record result %+v, want vaccine and vaccinated_on named", r)
	}
	if rep.Results[2].Status != ingest.Duplicate {
		t.Fatalf("repeat within the batch: %+v", rep.Results[2])
	}
}

func TestResendIsIdempotent(t *testing.T) {
	svc, st := newService(t)
	ctx := context.Background()
	if _, err := svc.Submit(ctx, "site", items(good("g1"))); err != nil {
		t.Fatal(err)
	}
	changed := good("g1")
	changed.FullName = "Someone Else"
	rep, err := svc.Submit(ctx, "site", items(changed))
	if err != nil || rep.Duplicates != 1 {
		t.Fatalf("re-send = %+v, %v; want a duplicate", rep, err)
	}
	d, err := st.GetDose(ctx, vaxpass.DoseKey{FacilityID: "site", SourceID: "g1"})
	if err != nil || d.FullName != "Nguyễn Văn An" {
		t.Fatalf("stored %q, %v: a plain re-send never overwrites", d.FullName, err)
	}
	// The same source_id at another facility is another dose.
	if rep, _ := svc.Submit(ctx, "other", items(good("g1"))); rep.Accepted != 1 {
		t.Fatalf("other facility: %+v", rep)
	}
}

func TestCorrectedRowUpdatesStoredRecord(t *testing.T) {
	svc, st := newService(t)
	ctx := context.Background()
	if _, err := svc.Submit(ctx, "site", items(good("g1"))); err != nil {
		t.Fatal(err)
	}
	fixed := good("g1")
	fixed.FullName = "Nguyễn Văn Anh"
	rep, err := svc.Submit(ctx, "site", []ingest.Item{{Row: 2, Record: fixed, Corrected: true}})
	if err != nil || rep.Accepted != 1 || rep.Results[0].Row != 2 {
		t.Fatalf("correction = %+v, %v", rep, err)
	}
	d, _ := st.GetDose(ctx, vaxpass.DoseKey{FacilityID: "site", SourceID: "g1"})
	if d.FullName != "Nguyễn Văn Anh" || d.Version != 2 || !d.NeedsMatch() {
		t.Fatalf("stored %+v: want the corrected name, version 2, awaiting a re-match", d.Record)
	}
	// The same correction again changes nothing.
	if rep, _ := svc.Submit(ctx, "site", []ingest.Item{{Record: fixed, Corrected: true}}); rep.Duplicates != 1 {
		t.Fatalf("same correction again: %+v", rep)
	}
	// A corrected row for a record never uploaded is a new record.
	if rep, _ := svc.Submit(ctx, "site", []ingest.Item{{Record: good("new"), Corrected: true}}); rep.Accepted != 1 {
		t.Fatalf("correction of an unknown record: %+v", rep)
	}
}

func TestReadErrorsReportedAlone(t *testing.T) {
	svc, _ := newService(t)
	it := ingest.Item{Row: 7, Record: dose.Record{SourceID: "x"}, Errors: []dose.FieldError{{Field: "dose_number", Code: "invalid_type", Message: "must be an integer"}}}
	rep, err := svc.Submit(context.Background(), "site", []ingest.Item{it})
	if err != nil || len(rep.Results[0].Errors) != 1 || rep.Results[0].Errors[0].Field != "dose_number" {
		t.Fatalf("result %+v, %v: the read error alone, not a list of missing fields", rep, err)
	}
}

func TestBatchLimit(t *testing.T) {
	svc, _ := newService(t)
	big := make([]ingest.Item, ingest.MaxBatch+1)
	if _, err := svc.Submit(context.Background(), "site", big); !errors.Is(err, vaxpass.ErrInvalid) {
		t.Fatalf("oversized batch: %v", err)
	}
}
