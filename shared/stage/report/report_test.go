package report_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vaxpass/vaxpass/shared/stage/lookup"
	"github.com/vaxpass/vaxpass/shared/stage/report"
	"github.com/vaxpass/vaxpass/shared/stage/worklist"
	"github.com/vaxpass/vaxpass/shared/vaxpass"
)

type memStore struct{ rs []report.Report }

func (m *memStore) PutReport(_ context.Context, r report.Report) error {
	for _, o := range m.rs {
		if o.Reference == r.Reference {
			return vaxpass.ErrConflict
		}
	}
	m.rs = append(m.rs, r)
	return nil
}

func (m *memStore) GetReport(_ context.Context, ref string) (report.Report, error) {
	for _, o := range m.rs {
		if o.Reference == ref {
			return o, nil
		}
	}
	return report.Report{}, vaxpass.ErrNotFound
}

func (m *memStore) ListReports(_ context.Context, sc report.Scope, after string, limit int) ([]report.Report, error) {
	var out []report.Report
	for _, o := range m.rs {
		if (o.FacilityID == sc.FacilityID || o.CommuneCode == sc.CommuneCode) && report.Cursor(o) > after && len(out) < limit {
			out = append(out, o)
		}
	}
	return out, nil
}

type facilities map[string]bool

func (f facilities) GetFacility(_ context.Context, id string) (vaxpass.Facility, error) {
	if !f[id] {
		return vaxpass.Facility{}, vaxpass.ErrNotFound
	}
	return vaxpass.Facility{ID: id}, nil
}

// finder finds the passport of the people in it (ID number -> name and date of birth).
type finder map[string][2]string

func (f finder) Find(_ context.Context, q lookup.Query) (vaxpass.Certificate, error) {
	if p, ok := f[q.IDNumber]; ok && p == [2]string{q.FullName, q.DOB} {
		return vaxpass.Certificate{UVCI: "URN:UVCI:01:VN:X"}, nil
	}
	return vaxpass.Certificate{}, vaxpass.ErrNotFound
}

var good = report.Input{
	IDNumber: " 0010 8801 2345 ", FullName: "Nguyễn Thị Lan", DOB: "15/03/1988", Gender: "Nữ",
	FacilityID: "site-1", CommuneCode: "00001", Phone: "0912 345 678", Note: "Tôi tiêm ở trạm y tế xã",
}

func service(now *time.Time) (*report.Service, *memStore, finder) {
	st := &memStore{}
	f := finder{}
	clock := func() time.Time { return *now }
	return &report.Service{
		Store: st, Facilities: facilities{"site-1": true}, Lookup: f,
		Limit: report.NewLimiter(lookup.NewMemoryAttempts(100, clock), []byte("secret"), clock), Now: clock,
	}, st, f
}

func TestSubmitStoresNormalized(t *testing.T) {
	now := time.Date(2026, 12, 4, 9, 0, 0, 0, time.UTC)
	svc, st, _ := service(&now)
	r, err := svc.Submit(context.Background(), good)
	if err != nil {
		t.Fatal(err)
	}
	if !report.ValidReference(r.Reference) || len(r.Reference) != report.ReferenceLen {
		t.Fatalf("reference %q is not 26 base32 characters", r.Reference)
	}
	got, _ := st.GetReport(context.Background(), r.Reference)
	if got.IDNumber != "001088012345" || got.DOB != "1988-03-15" || got.Gender != "female" || got.Status != report.Received || !got.ReceivedAt.Equal(now) {
		t.Fatalf("stored %+v", got)
	}
	r2, err := svc.Submit(context.Background(), good)
	if err != nil || r2.Reference == r.Reference {
		t.Fatalf("a second report: %v, reference %q (first %q)", err, r2.Reference, r.Reference)
	}
}

func TestSubmitNamesTheField(t *testing.T) {
	now := time.Date(2026, 12, 4, 9, 0, 0, 0, time.UTC)
	svc, st, _ := service(&now)
	cases := []struct {
		field, code string
		edit        func(*report.Input)
	}{
		{"id_number", "required", func(in *report.Input) { in.IDNumber = " " }},
		{"id_number", "invalid_format", func(in *report.Input) { in.IDNumber = "12345" }},
		{"full_name", "required", func(in *report.Input) { in.FullName = "" }},
		{"full_name", "too_long", func(in *report.Input) { in.FullName = strings.Repeat("a", 201) }},
		{"dob", "required", func(in *report.Input) { in.DOB = "" }},
		{"dob", "invalid_format", func(in *report.Input) { in.DOB = "1988" }},
		{"dob", "invalid_format", func(in *report.Input) { in.DOB = "31/02/1988" }},
		{"dob", "out_of_range", func(in *report.Input) { in.DOB = "01/01/2027" }},
		{"gender", "required", func(in *report.Input) { in.Gender = "" }},
		{"gender", "invalid_value", func(in *report.Input) { in.Gender = "x" }},
		{"facility_id", "required", func(in *report.Input) { in.FacilityID = "" }},
		{"facility_id", "invalid_format", func(in *report.Input) { in.FacilityID = "a/b" }},
		{"facility_id", "invalid_value", func(in *report.Input) { in.FacilityID = "site-9" }},
		{"commune_code", "required", func(in *report.Input) { in.CommuneCode = "" }},
		{"commune_code", "invalid_format", func(in *report.Input) { in.CommuneCode = "12a45" }},
		{"phone", "invalid_format", func(in *report.Input) { in.Phone = "call me" }},
		{"note", "too_long", func(in *report.Input) { in.Note = strings.Repeat("ư", report.MaxNote+1) }},
	}
	for _, c := range cases {
		in := good
		c.edit(&in)
		_, err := svc.Submit(context.Background(), in)
		var fe *report.FieldError
		if !errors.As(err, &fe) || fe.Field != c.field || fe.Code != c.code || !errors.Is(err, vaxpass.ErrInvalid) {
			t.Errorf("%s %s: got %v", c.field, c.code, err)
		}
	}
	if len(st.rs) != 0 {
		t.Fatalf("refused reports stored: %d", len(st.rs))
	}
	// Optional fields may be left out.
	in := good
	in.Phone, in.Note = "", ""
	if _, err := svc.Submit(context.Background(), in); err != nil {
		t.Fatalf("without phone and note: %v", err)
	}
}

// Five reports of one ID number an hour, whoever's details they carry; other ID numbers
// are not affected, and failed lookups of the number do not count.
func TestSubmitLimitedPerID(t *testing.T) {
	now := time.Date(2026, 12, 4, 9, 0, 0, 0, time.UTC)
	svc, st, _ := service(&now)
	for i := range report.DefaultMaxPerID {
		in := good
		in.FullName = strings.Repeat("A", i+1)
		if _, err := svc.Submit(context.Background(), in); err != nil {
			t.Fatalf("report %d: %v", i+1, err)
		}
	}
	_, err := svc.Submit(context.Background(), good)
	var locked *lookup.LockedError
	if !errors.As(err, &locked) || locked.RetryAfter <= 0 || locked.RetryAfter > time.Hour+lookup.BucketWidth {
		t.Fatalf("sixth report: %v, want a LockedError", err)
	}
	other := good
	other.IDNumber = "001088012346"
	if _, err := svc.Submit(context.Background(), other); err != nil {
		t.Fatalf("another ID number: %v", err)
	}
	if len(st.rs) != report.DefaultMaxPerID+1 {
		t.Fatalf("stored %d reports", len(st.rs))
	}
	now = now.Add(time.Hour + lookup.BucketWidth)
	if _, err := svc.Submit(context.Background(), good); err != nil {
		t.Fatalf("an hour later: %v", err)
	}
}

// The reports' counts and the lookup's are kept apart even in one store.
func TestLimiterKeysApart(t *testing.T) {
	l := &lookup.Limiter{Secret: []byte("secret")}
	r := report.NewLimiter(nil, []byte("secret"), nil)
	u := report.NewLimiter(nil, nil, nil)
	if l.Key("001088012345") == r.Key("001088012345") || (&lookup.Limiter{}).Key("001088012345") == u.Key("001088012345") {
		t.Fatal("report and lookup limits share keys")
	}
}

func TestStatusAndList(t *testing.T) {
	now := time.Date(2026, 12, 4, 9, 0, 0, 0, time.UTC)
	svc, _, f := service(&now)
	ctx := context.Background()
	r, err := svc.Submit(ctx, good)
	if err != nil {
		t.Fatal(err)
	}
	if st, err := svc.Status(ctx, r.Reference); err != nil || st != report.Received {
		t.Fatalf("status %q, %v", st, err)
	}
	for _, ref := range []string{"", "abc", strings.Repeat("A", 26), strings.ToLower(r.Reference)} {
		if _, err := svc.Status(ctx, ref); !errors.Is(err, vaxpass.ErrNotFound) {
			t.Errorf("status of %q: %v, want ErrNotFound", ref, err)
		}
	}
	// Another person's certificate under the ID number (other details): not resolved.
	f["001088012345"] = [2]string{"Trần Văn B", "1988-03-15"}
	if st, _ := svc.Status(ctx, r.Reference); st != report.Received {
		t.Fatalf("status with another person's passport: %q", st)
	}
	f["001088012345"] = [2]string{"Nguyễn Thị Lan", "1988-03-15"}
	if st, _ := svc.Status(ctx, r.Reference); st != report.Resolved {
		t.Fatalf("status once the lookup finds the passport: %q", st)
	}
	for _, sc := range []report.Scope{{FacilityID: "site-1"}, {CommuneCode: "00001"}} {
		rs, next, err := svc.List(ctx, sc, "", 0)
		if err != nil || len(rs) != 1 || rs[0].Status != report.Resolved || next != "" {
			t.Fatalf("list %+v: %+v %q %v", sc, rs, next, err)
		}
	}
	if _, _, err := svc.List(ctx, report.Scope{}, "", 1); !errors.Is(err, vaxpass.ErrInvalid) {
		t.Fatalf("list without a scope: %v", err)
	}
	row := worklist.Row{Facility: r.FacilityID, Record: r.Record(), Result: r.Result()}
	if row.Result.Status != report.StatusReported || row.Facility != "site-1" || row.Record.IDNumber != "001088012345" ||
		row.Record.SourceID != "report:"+r.Reference || !slices.Equal(row.Result.Reasons, []string{"CITIZEN_REPORT"}) {
		t.Fatalf("worklist row %+v", row)
	}
	// The row reads as the worklist writes rows (no dose: nothing to import).
	if !(worklist.Filter{Status: report.StatusReported, CommuneCode: "00001"}).Keep(row) {
		t.Fatal("the commune's REPORTED filter does not keep the report's row")
	}
}
