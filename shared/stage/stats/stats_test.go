package stats

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/vaxpass/vaxpass/shared/domain/dose"
	"github.com/vaxpass/vaxpass/shared/domain/identity"
	"github.com/vaxpass/vaxpass/shared/domain/match"
	"github.com/vaxpass/vaxpass/shared/vaxpass"
)

// fakeStore keeps counters as a store would: every write adds its Delta, people's
// metrics and signatures are kept to add a facility's first signature.
type fakeStore struct {
	counters Delta
	people   map[string]PersonMetrics
	sigs     map[string][]string
	facs     []vaxpass.Facility
	err      error
	reads    []string // from..to of every read
}

func newFakeStore() *fakeStore {
	return &fakeStore{counters: Delta{}, people: map[string]PersonMetrics{}, sigs: map[string][]string{}}
}

func (f *fakeStore) putDose(old, next *vaxpass.Dose) { f.counters.AddDose(old, next) }

func (f *fakeStore) putCert(old, next *vaxpass.Certificate) {
	c := CertificateChange(old, next)
	person := next.PersonID
	f.counters.AddCertificate(c, f.sigs[person])
	if f.people[person] == nil {
		f.people[person] = PersonMetrics{}
	}
	f.people[person].Apply(c)
}

func (f *fakeStore) sign(person, facility string) {
	for _, s := range f.sigs[person] {
		if s == facility {
			return
		}
	}
	f.sigs[person] = append(f.sigs[person], facility)
	f.counters.AddFacility(facility, f.people[person])
}

func (f *fakeStore) StatCounters(_ context.Context, from, to string) (*Tally, error) {
	f.reads = append(f.reads, from+".."+to)
	if f.err != nil {
		return nil, f.err
	}
	t := NewTally()
	for k, n := range f.counters {
		if err := t.Add(k, n, from, to); err != nil {
			return nil, err
		}
	}
	return t, nil
}

func (f *fakeStore) ListFacilities(context.Context) ([]vaxpass.Facility, error) { return f.facs, nil }

func TestProvinceOf(t *testing.T) {
	tests := []struct{ id, want string }{
		{"001090012345", "001"},
		{"079 090 012 345", "079"},
		{"096.190.000.001", "096"},
		{"", UnknownProvince},
		{"012345678", UnknownProvince}, // a 9-digit CMND encodes no province
		{"003090012345", UnknownProvince},
		{"00109001234", UnknownProvince},
		{"0O1090012345", UnknownProvince},
	}
	for _, tt := range tests {
		if got := ProvinceOf(tt.id); got != tt.want {
			t.Errorf("ProvinceOf(%q) = %q, want %q", tt.id, got, tt.want)
		}
	}
}

// now is 10:00 in Viet Nam on 1 July 2022.
var now = time.Date(2022, 7, 1, 3, 0, 0, 0, time.UTC)

const day = 24 * time.Hour

func doseAt(facility, source string, status match.Status, id string) *vaxpass.Dose {
	return &vaxpass.Dose{FacilityID: facility, Record: dose.Record{SourceID: source, IDNumber: id}, Match: match.Result{Status: status}}
}

func cert(uvci, person, status string, issued, expires time.Time) *vaxpass.Certificate {
	return &vaxpass.Certificate{UVCI: uvci, PersonID: person, Status: status, IssuedAt: issued, ExpiresAt: expires}
}

func TestSnapshotCounts(t *testing.T) {
	f := newFakeStore()
	f.facs = []vaxpass.Facility{{ID: "F1", Name: "Trạm Y tế 1"}, {ID: "F2", Name: "Bệnh viện 2"}, {ID: "F3", Name: "Idle"}}
	for _, d := range []*vaxpass.Dose{
		doseAt("F1", "a", match.Verified, "001090012345"),
		doseAt("F1", "b", match.Verified, "001090012345"),
		doseAt("F1", "c", match.NotFound, "079190000001"),
		doseAt("F2", "d", match.NoID, ""),
		doseAt("F2", "e", match.InvalidID, "12AB"),
		doseAt("F2", "f", match.Mismatch, "012345678"),
		doseAt("F2", "g", "", "001090012345"), // no status yet: pending
	} {
		f.putDose(nil, d)
	}
	f.sign("001090012345", "F1")
	f.sign("001090012345", "F2")
	f.sign("079190000001", "F1")
	f.sign("079190000002", "F2")
	f.sign("001090012346", "F2")
	f.sign("012345678", "F1")
	for _, c := range []*vaxpass.Certificate{
		// Valid, expiring in 29 days; signed at 18:00 UTC = the next day in Viet Nam.
		cert("U1", "001090012345", vaxpass.CertIssued, time.Date(2021, 7, 30, 18, 0, 0, 0, time.UTC), now.Add(29*day)),
		// Expiring on the window's last day.
		cert("U2", "079190000001", vaxpass.CertIssued, time.Date(2021, 7, 31, 1, 0, 0, 0, time.UTC), now.Add(30*day+10*time.Hour)),
		// Valid, expiring the day after the window.
		cert("U3", "079190000002", vaxpass.CertIssued, time.Date(2021, 7, 31, 2, 0, 0, 0, time.UTC), now.Add(31*day)),
		// Expired yesterday (Viet Nam day).
		cert("U4", "001090012346", vaxpass.CertIssued, time.Date(2021, 6, 1, 0, 0, 0, 0, time.UTC), now.Add(-11*time.Hour)),
		// Revoked (its expiry does not matter).
		cert("U5", "001090012347", vaxpass.CertRevoked, time.Date(2021, 6, 1, 5, 0, 0, 0, time.UTC), now.Add(-day)),
		// A person whose ID names no province.
		cert("U6", "012345678", vaxpass.CertIssued, time.Date(2021, 6, 1, 5, 0, 0, 0, time.UTC), now.Add(100*day)),
	} {
		f.putCert(nil, c)
	}
	svc := &Service{Counters: f, Now: func() time.Time { return now }}
	snap, err := svc.Snapshot(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(f.reads) != 1 || f.reads[0] != "2022-07-01..2022-07-31" {
		t.Errorf("reads %v, want the days of today's month to the window's end", f.reads)
	}
	if snap.Total.Doses != 7 || snap.Total.ByStatus[match.Verified] != 2 || snap.Total.ByStatus[match.Pending] != 1 {
		t.Errorf("total doses: %+v", snap.Total)
	}
	for _, st := range Statuses {
		if _, ok := snap.Total.ByStatus[st]; !ok {
			t.Errorf("status %s missing (zeros are shown)", st)
		}
	}
	if want := (Certificates{Valid: 4, Expiring: 2, Expired: 1, Revoked: 1}); snap.Total.Certificates != want {
		t.Errorf("total certificates %+v, want %+v", snap.Total.Certificates, want)
	}
	if len(snap.Provinces) != identity.ProvinceCount()+1 || snap.Provinces[len(snap.Provinces)-1].Code != UnknownProvince {
		t.Fatalf("%d province rows, last %q: want every province and unknown last", len(snap.Provinces), snap.Provinces[len(snap.Provinces)-1].Code)
	}
	for i := 1; i < len(snap.Provinces)-1; i++ {
		if snap.Provinces[i-1].Code >= snap.Provinces[i].Code {
			t.Fatalf("provinces out of order at %d", i)
		}
	}
	rows := map[string]Province{}
	for _, p := range snap.Provinces {
		rows[p.Code] = p
	}
	if p := rows["001"]; p.Name != "Hà Nội" || p.Doses != 3 || p.ByStatus[match.Verified] != 2 ||
		p.Certificates != (Certificates{Valid: 1, Expiring: 1, Expired: 1, Revoked: 1}) {
		t.Errorf("province 001: %+v", p)
	}
	if p := rows["079"]; p.Doses != 1 || p.Certificates != (Certificates{Valid: 2, Expiring: 1}) {
		t.Errorf("province 079: %+v", p)
	}
	if p := rows[UnknownProvince]; p.Doses != 3 || p.Certificates.Valid != 1 {
		t.Errorf("unknown province: %+v", p)
	}
	if p := rows["002"]; p.Doses != 0 || p.Certificates != (Certificates{}) || len(p.ByStatus) != len(Statuses) {
		t.Errorf("an untouched province: %+v", p)
	}
	facs := map[string]Facility{}
	for _, f := range snap.Facilities {
		facs[f.ID] = f
	}
	if len(snap.Facilities) != 3 || snap.Facilities[0].ID != "F1" {
		t.Errorf("facility rows %v", snap.Facilities)
	}
	if f := facs["F1"]; f.Name != "Trạm Y tế 1" || f.Doses != 3 || f.Certificates != (Certificates{Valid: 3, Expiring: 2}) {
		t.Errorf("F1: %+v", f)
	}
	if f := facs["F2"]; f.Doses != 4 || f.Certificates != (Certificates{Valid: 2, Expiring: 1, Expired: 1}) {
		t.Errorf("F2: %+v", f)
	}
	if f := facs["F3"]; f.Doses != 0 || f.Name != "Idle" {
		t.Errorf("F3: %+v", f)
	}
	// 18:00 UTC on 30 July is 31 July in Viet Nam.
	wantDays := []Day{{"2021-06-01", 3}, {"2021-07-31", 3}}
	if len(snap.Issuance) != 2 || snap.Issuance[0] != wantDays[0] || snap.Issuance[1] != wantDays[1] {
		t.Errorf("issuance %v, want %v", snap.Issuance, wantDays)
	}
	if snap.ExpiringWithinDays != 30 || !snap.GeneratedAt.Equal(now) {
		t.Errorf("window %d, generated %v", snap.ExpiringWithinDays, snap.GeneratedAt)
	}

	f.err = errors.New("disk gone")
	if _, err := svc.Snapshot(context.Background()); !errors.Is(err, f.err) {
		t.Errorf("a failing read: %v", err)
	}
}

// The split of issued certificates is by Vietnam day: expired from the day after the
// expiry day, expiring to the day of now+window; months before today's count whole.
func TestExpiryDays(t *testing.T) {
	// 23:30 on 31 March 2022 in Viet Nam; the window ends on 30 April.
	at := time.Date(2022, 3, 31, 16, 30, 0, 0, time.UTC)
	ict := func(y int, m time.Month, d, h int) time.Time { return time.Date(y, m, d, h, 0, 0, 0, VietnamTime) }
	tests := []struct {
		name    string
		expires time.Time
		want    Certificates
	}{
		{"an earlier year", ict(2021, 12, 31, 23), Certificates{Expired: 1}},
		{"last month", ict(2022, 2, 28, 23), Certificates{Expired: 1}},
		{"yesterday", ict(2022, 3, 30, 23), Certificates{Expired: 1}},
		{"earlier today", ict(2022, 3, 31, 1), Certificates{Valid: 1, Expiring: 1}},
		{"tomorrow", ict(2022, 4, 1, 0), Certificates{Valid: 1, Expiring: 1}},
		{"the window's last day", ict(2022, 4, 30, 23), Certificates{Valid: 1, Expiring: 1}},
		{"after the window", ict(2022, 5, 1, 0), Certificates{Valid: 1}},
		{"next year", ict(2023, 4, 1, 0), Certificates{Valid: 1}},
	}
	for _, tt := range tests {
		f := newFakeStore()
		f.putCert(nil, cert("U", "001090012345", vaxpass.CertIssued, at.Add(-300*day), tt.expires))
		snap, err := (&Service{Counters: f, Now: func() time.Time { return at }}).Snapshot(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if snap.Total.Certificates != tt.want {
			t.Errorf("%s: %+v, want %+v", tt.name, snap.Total.Certificates, tt.want)
		}
	}
}

// Every write moves its record between counters; a write that changes nothing counted
// changes no counter.
func TestDoseDelta(t *testing.T) {
	d := Delta{}
	a := doseAt("F1", "a", match.Pending, "001090012345")
	d.AddDose(nil, a)
	b := *a
	b.Match.Status = match.Verified
	d.AddDose(a, &b)
	c := b
	c.SignedAt = now
	c.Version = 9
	unchanged := Delta{}
	unchanged.AddDose(&b, &c)
	if len(unchanged) != 0 {
		t.Errorf("signing a dose changed counters: %v", unchanged)
	}
	e := c
	e.IDNumber = "079190000001" // corrected: another province
	d.AddDose(&c, &e)
	want := Delta{
		{Scope{InProvince, "079"}, Metric{DoseStatus, "VERIFIED"}}: 1,
		{Scope{AtFacility, "F1"}, Metric{DoseStatus, "VERIFIED"}}:  1,
	}
	if !equalDelta(d, want) {
		t.Errorf("delta %v, want %v", d, want)
	}
}

func TestCertificateChange(t *testing.T) {
	issued := time.Date(2022, 1, 10, 3, 0, 0, 0, time.UTC)
	old := cert("U1", "001090012345", vaxpass.CertIssued, issued, issued.Add(270*day))
	c := CertificateChange(nil, old)
	if c.Province != "001" || c.Rows[Metric{ExpiresOn, DayOf(old.ExpiresAt)}] != 1 || c.Issuance["2022-01-10"] != 1 || len(c.Rows) != 1 {
		t.Errorf("a new certificate: %+v", c)
	}
	revoked := *old
	revoked.Status = vaxpass.CertRevoked
	c = CertificateChange(old, &revoked)
	if len(c.Issuance) != 0 || c.Rows[Metric{Kind: Revoked}] != 1 || c.Rows[Metric{ExpiresOn, DayOf(old.ExpiresAt)}] != -1 {
		t.Errorf("a revocation: %+v", c)
	}
	renewed := *old
	renewed.IssuedAt = issued.Add(250 * day)
	renewed.ExpiresAt = renewed.IssuedAt.Add(270 * day)
	c = CertificateChange(old, &renewed)
	if c.Issuance["2022-01-10"] != -1 || c.Issuance[DayOf(renewed.IssuedAt)] != 1 || len(c.Rows) != 2 {
		t.Errorf("a renewal: %+v", c)
	}
	if c := CertificateChange(old, old); !c.Empty() {
		t.Errorf("an unchanged certificate: %+v", c)
	}
}

// A facility signing for a person after their certificates were stored gains them.
func TestLateFacilityGainsThePersonsCertificates(t *testing.T) {
	f := newFakeStore()
	f.sign("001090012345", "F1")
	old := cert("U1", "001090012345", vaxpass.CertIssued, now.Add(-10*day), now.Add(200*day))
	f.putCert(nil, old)
	revoked := *old
	revoked.Status = vaxpass.CertRevoked
	f.putCert(old, &revoked)
	next := cert("U2", "001090012345", vaxpass.CertIssued, now, now.Add(20*day))
	f.putCert(nil, next)
	f.sign("001090012345", "F2")
	f.sign("001090012345", "F2") // again: nothing more
	snap, err := (&Service{Counters: f, Now: func() time.Time { return now }}).Snapshot(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	want := Certificates{Valid: 1, Expiring: 1, Revoked: 1}
	for _, fac := range snap.Facilities {
		if fac.Certificates != want {
			t.Errorf("%s: %+v, want %+v", fac.ID, fac.Certificates, want)
		}
	}
	if len(snap.Facilities) != 2 || snap.Total.Certificates != want {
		t.Errorf("facilities %v, total %+v", snap.Facilities, snap.Total.Certificates)
	}
}

func TestMetricEncoding(t *testing.T) {
	for _, m := range []Metric{{DoseStatus, "VERIFIED"}, {Kind: Revoked}, {ExpiresOn, "2022-07-01"}, {IssuedOn, "2021-12-31"}} {
		back, err := DecodeMetric(EncodeMetric(m))
		if err != nil || back != m {
			t.Errorf("%v: decoded %v, %v", m, back, err)
		}
	}
	for _, bad := range []string{"", "rX", "x2022-13-01", "i", "z1"} {
		if _, err := DecodeMetric(bad); err == nil {
			t.Errorf("DecodeMetric(%q) accepted", bad)
		}
	}
	tally := NewTally()
	if err := tally.Add(Key{Scope{InProvince, "001"}, Metric{IssuedOn, "2022-01-01"}}, 1, "", ""); err == nil {
		t.Errorf("issuance of a province accepted")
	}
	if err := tally.Add(Key{Scope{Kind: Country}, Metric{Kind: Revoked}}, 1, "", ""); err == nil {
		t.Errorf("revocations of the country row accepted")
	}
}

func TestSnapshotJSONShape(t *testing.T) {
	svc := &Service{Counters: newFakeStore(), Now: func() time.Time { return now }}
	snap, err := svc.Snapshot(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(snap)
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	if issuance, ok := doc["issuance"].([]any); !ok || len(issuance) != 0 {
		t.Errorf("issuance of an empty store is %v, want []", doc["issuance"])
	}
	for _, k := range []string{"generated_at", "expiring_within_days", "time_zone", "statuses", "total", "provinces", "facilities", "issuance"} {
		if _, ok := doc[k]; !ok {
			t.Errorf("snapshot has no %q", k)
		}
	}
	total := doc["total"].(map[string]any)
	for _, k := range []string{"doses", "by_status", "certificates"} {
		if _, ok := total[k]; !ok {
			t.Errorf("total has no %q: %v", k, total)
		}
	}
	certs := total["certificates"].(map[string]any)
	for _, k := range []string{"valid", "expiring", "expired", "revoked"} {
		if _, ok := certs[k]; !ok {
			t.Errorf("certificates have no %q: %v", k, certs)
		}
	}
	p := doc["provinces"].([]any)[0].(map[string]any)
	for _, k := range []string{"code", "name", "doses", "by_status", "certificates"} {
		if _, ok := p[k]; !ok {
			t.Errorf("a province has no %q: %v", k, p)
		}
	}
	if facs, ok := doc["facilities"]; !ok || facs != nil && len(facs.([]any)) != 0 {
		t.Errorf("facilities of an empty store: %v", facs)
	}
}

func equalDelta(a, b Delta) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}
