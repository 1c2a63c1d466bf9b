package stats

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/vaxpass/vaxpass/shared/domain/identity"
	"github.com/vaxpass/vaxpass/shared/domain/match"
	"github.com/vaxpass/vaxpass/shared/vaxpass"
)

type fakeDose struct {
	facility string
	status   match.Status
	id       string
}

type fakeCert struct {
	person, status  string
	issued, expires time.Time
	facilities      []string
}

type fakeSource struct {
	doses []fakeDose
	certs []fakeCert
	facs  []vaxpass.Facility
	scans int
	err   error
	// failScans makes the first scans fail.
	failScans int
}

func (f *fakeSource) EachDoseStat(_ context.Context, fn func(string, match.Status, string) error) error {
	f.scans++
	if f.failScans > 0 {
		f.failScans--
		return errors.New("scan failed")
	}
	if f.err != nil {
		return f.err
	}
	for _, d := range f.doses {
		if err := fn(d.facility, d.status, d.id); err != nil {
			return err
		}
	}
	return nil
}

func (f *fakeSource) EachCertificateStat(_ context.Context, fn func(string, string, time.Time, time.Time, []string) error) error {
	for _, c := range f.certs {
		if err := fn(c.person, c.status, c.issued, c.expires, c.facilities); err != nil {
			return err
		}
	}
	return nil
}

func (f *fakeSource) ListFacilities(context.Context) ([]vaxpass.Facility, error) { return f.facs, nil }

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

var now = time.Date(2022, 7, 1, 3, 0, 0, 0, time.UTC)

func TestComputeCounts(t *testing.T) {
	day := 24 * time.Hour
	src := &fakeSource{
		facs: []vaxpass.Facility{{ID: "F1", Name: "Trạm Y tế 1"}, {ID: "F2", Name: "Bệnh viện 2"}, {ID: "F3", Name: "Idle"}},
		doses: []fakeDose{
			{"F1", match.Verified, "001090012345"},
			{"F1", match.Verified, "001090012345"},
			{"F1", match.NotFound, "079190000001"},
			{"F2", match.NoID, ""},
			{"F2", match.InvalidID, "12AB"},
			{"F2", match.Mismatch, "012345678"},
			{"F2", "", "001090012345"}, // no status yet: pending
		},
		certs: []fakeCert{
			// Valid, expiring in 29 days; issued at 18:00 UTC = next day in Viet Nam.
			{"001090012345", vaxpass.CertIssued, time.Date(2021, 7, 30, 18, 0, 0, 0, time.UTC), now.Add(29 * day), []string{"F1", "F2"}},
			// Valid, expiring exactly at the window's end: expiring.
			{"079190000001", vaxpass.CertIssued, time.Date(2021, 7, 31, 1, 0, 0, 0, time.UTC), now.Add(30 * day), []string{"F1"}},
			// Valid, expiring after the window.
			{"079190000002", vaxpass.CertIssued, time.Date(2021, 7, 31, 2, 0, 0, 0, time.UTC), now.Add(30*day + time.Second), []string{"F2", "F2"}},
			// Expired exactly now.
			{"001090012346", vaxpass.CertIssued, time.Date(2021, 6, 1, 0, 0, 0, 0, time.UTC), now, []string{"F2"}},
			// Revoked (its expiry does not matter).
			{"001090012347", vaxpass.CertRevoked, time.Date(2021, 6, 1, 5, 0, 0, 0, time.UTC), now.Add(-day), nil},
			// A person whose ID names no province.
			{"012345678", vaxpass.CertIssued, time.Date(2021, 6, 1, 5, 0, 0, 0, time.UTC), now.Add(100 * day), []string{"F1"}},
		},
	}
	svc := &Service{Source: src, Now: func() time.Time { return now }}
	snap, err := svc.Compute(context.Background())
	if err != nil {
		t.Fatal(err)
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
	if p := rows["002"]; p.Doses != 0 || p.Certificates != (Certificates{}) {
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
	// F2 is named twice for one certificate: counted once.
	if f := facs["F2"]; f.Doses != 4 || f.Certificates != (Certificates{Valid: 2, Expiring: 1, Expired: 1}) {
		t.Errorf("F2: %+v", f)
	}
	if f := facs["F3"]; f.Doses != 0 {
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
}

func TestSnapshotJSONShape(t *testing.T) {
	svc := &Service{Source: &fakeSource{}, Now: func() time.Time { return now }}
	snap, err := svc.Compute(context.Background())
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
	total := doc["total"].(map[string]any)
	for _, k := range []string{"doses", "by_status", "certificates"} {
		if _, ok := total[k]; !ok {
			t.Errorf("total has no %q: %v", k, total)
		}
	}
	p := doc["provinces"].([]any)[0].(map[string]any)
	for _, k := range []string{"code", "name", "doses", "by_status", "certificates"} {
		if _, ok := p[k]; !ok {
			t.Errorf("a province has no %q: %v", k, p)
		}
	}
}

func TestSnapshotIsCached(t *testing.T) {
	src := &fakeSource{}
	clock := now
	svc := &Service{Source: src, Now: func() time.Time { return clock }, MaxAge: time.Minute}
	ctx := context.Background()
	for range 3 {
		if _, err := svc.Snapshot(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if src.scans != 1 {
		t.Errorf("%d scans for three requests within a minute", src.scans)
	}
	clock = clock.Add(time.Minute)
	if _, err := svc.Snapshot(ctx); err != nil || src.scans != 2 {
		t.Errorf("after a minute: %d scans, %v", src.scans, err)
	}
	src.err = errors.New("disk gone")
	clock = clock.Add(time.Minute)
	if _, err := svc.Snapshot(ctx); err == nil {
		t.Errorf("a failing scan gave no error")
	}
	svc.MaxAge = -1
	src.err = nil
	before := src.scans
	svc.Snapshot(ctx)
	svc.Snapshot(ctx)
	if src.scans != before+2 {
		t.Errorf("MaxAge < 0 should compute every time: %d scans", src.scans-before)
	}
}

func BenchmarkCompute(b *testing.B) {
	src := &fakeSource{}
	for i := range 100_000 {
		src.doses = append(src.doses, fakeDose{"F" + string(rune('A'+i%20)), Statuses[i%len(Statuses)], "001090012345"})
	}
	svc := &Service{Source: src, Now: func() time.Time { return now }}
	b.ResetTimer()
	for b.Loop() {
		if _, err := svc.Compute(context.Background()); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/100_000, "ns/dose")
}

func TestRunRefreshKeepsTheSnapshotWarm(t *testing.T) {
	src := &fakeSource{}
	svc := &Service{Source: src, Now: time.Now, MaxAge: time.Hour}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	var failures int
	src.failScans = 1
	if err := svc.RunRefresh(ctx, 20*time.Millisecond, func(error) { failures++ }); err != nil {
		t.Fatal(err)
	}
	if failures == 0 || src.scans < 3 {
		t.Errorf("%d scans, %d failures reported", src.scans, failures)
	}
	// The refreshed snapshot is served from the cache.
	before := src.scans
	if _, err := svc.Snapshot(context.Background()); err != nil || src.scans != before {
		t.Errorf("Snapshot after refreshes: %d new scans, %v", src.scans-before, err)
	}
	if err := svc.RunRefresh(ctx, 0, nil); err == nil {
		t.Errorf("a zero period was accepted")
	}
}

// While the background refresh runs, a request never waits for a scan: it gets the last
// snapshot however old.
func TestSnapshotDuringBackgroundRefresh(t *testing.T) {
	src := &fakeSource{}
	clock := now
	svc := &Service{Source: src, Now: func() time.Time { return clock }, MaxAge: time.Minute}
	if err := svc.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	svc.background.Store(true)
	clock = clock.Add(time.Hour)
	snap, err := svc.Snapshot(context.Background())
	if err != nil || src.scans != 1 || !snap.GeneratedAt.Equal(now) {
		t.Errorf("%d scans, snapshot of %v, %v", src.scans, snap.GeneratedAt, err)
	}
	svc.background.Store(false)
	if _, err := svc.Snapshot(context.Background()); err != nil || src.scans != 2 {
		t.Errorf("without the refresher an old snapshot is computed again: %d scans", src.scans)
	}
}
