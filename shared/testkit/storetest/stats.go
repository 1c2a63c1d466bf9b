package storetest

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vaxpass/vaxpass/shared/domain/match"
	"github.com/vaxpass/vaxpass/shared/stage/stats"
	"github.com/vaxpass/vaxpass/shared/vaxpass"
)

// AllDays are the from and to of a counters read that returns every expiry day.
const (
	AllDaysFrom = "0001-01-01"
	AllDaysTo   = "9999-12-31"
)

// RecountSource is what RecountStats reads: the store's listing calls.
type RecountSource interface {
	ListByStatus(ctx context.Context, facilityID string, status match.Status, after string, limit int) ([]vaxpass.Dose, error)
	ListCertificates(ctx context.Context, cursor string, limit int) (certs []vaxpass.Certificate, next string, err error)
	FacilitySignatures(ctx context.Context, personID string) ([]vaxpass.FacilitySignature, error)
}

// RecountStats counts, from the records themselves, what the dashboard's counters must
// hold: the doses of the given facilities (every match status of stats.Statuses) and
// every certificate, at its person's province and at every facility holding a signature
// for the person; expiry days all (as read with AllDaysFrom, AllDaysTo).
func RecountStats(ctx context.Context, s RecountSource, facilities []string) (*stats.Tally, error) {
	t := stats.NewTally()
	add := func(k stats.Key) error { return t.Add(k, 1, AllDaysFrom, AllDaysTo) }
	for _, f := range facilities {
		for _, st := range stats.Statuses {
			after := ""
			for {
				page, err := s.ListByStatus(ctx, f, st, after, 500)
				if err != nil {
					return nil, err
				}
				for _, d := range page {
					m := stats.Metric{Kind: stats.DoseStatus, Arg: string(d.Match.Status)}
					if err := add(stats.Key{Scope: stats.Scope{Kind: stats.InProvince, ID: stats.ProvinceOf(d.IDNumber)}, Metric: m}); err != nil {
						return nil, err
					}
					if err := add(stats.Key{Scope: stats.Scope{Kind: stats.AtFacility, ID: d.FacilityID}, Metric: m}); err != nil {
						return nil, err
					}
				}
				if len(page) < 500 {
					break
				}
				after = page[len(page)-1].SourceID
			}
		}
	}
	cursor := ""
	for {
		page, next, err := s.ListCertificates(ctx, cursor, 500)
		if err != nil {
			return nil, err
		}
		for _, c := range page {
			scopes := []stats.Scope{{Kind: stats.InProvince, ID: stats.ProvinceOf(c.PersonID)}}
			sigs, err := s.FacilitySignatures(ctx, c.PersonID)
			if err != nil {
				return nil, err
			}
			for _, sg := range sigs {
				scopes = append(scopes, stats.Scope{Kind: stats.AtFacility, ID: sg.FacilityID})
			}
			var m stats.Metric
			switch c.Status {
			case vaxpass.CertRevoked:
				m = stats.Metric{Kind: stats.Revoked}
			case vaxpass.CertIssued:
				m = stats.Metric{Kind: stats.ExpiresOn, Arg: stats.DayOf(c.ExpiresAt)}
			default:
				return nil, fmt.Errorf("certificate status %q", c.Status)
			}
			for _, sc := range scopes {
				if err := add(stats.Key{Scope: sc, Metric: m}); err != nil {
					return nil, err
				}
			}
			if err := add(stats.Key{Scope: stats.Scope{Kind: stats.Country}, Metric: stats.Metric{Kind: stats.IssuedOn, Arg: stats.DayOf(c.IssuedAt)}}); err != nil {
				return nil, err
			}
		}
		if next == "" {
			return t, nil
		}
		cursor = next
	}
}

// DiffTallies describes how two tallies differ ("" when they hold the same non-zero
// counters).
func DiffTallies(want, got *stats.Tally) string {
	var out []string
	rows := func(kind string, w, g map[string]*stats.Row) {
		ids := map[string]bool{}
		for id := range w {
			ids[id] = true
		}
		for id := range g {
			ids[id] = true
		}
		for _, id := range slices.Sorted(maps.Keys(ids)) {
			if d := diffRow(w[id], g[id]); d != "" {
				out = append(out, fmt.Sprintf("%s %s: %s", kind, id, d))
			}
		}
	}
	rows("province", want.Provinces, got.Provinces)
	rows("facility", want.Facilities, got.Facilities)
	if d := diffCounts(want.Issuance, got.Issuance); d != "" {
		out = append(out, "issuance: "+d)
	}
	return strings.Join(out, "\n")
}

func diffRow(w, g *stats.Row) string {
	empty := &stats.Row{}
	if w == nil {
		w = empty
	}
	if g == nil {
		g = empty
	}
	var out []string
	doses := func(m map[match.Status]int64) map[string]int64 {
		o := map[string]int64{}
		for k, v := range m {
			o[string(k)] = v
		}
		return o
	}
	if d := diffCounts(doses(w.Doses), doses(g.Doses)); d != "" {
		out = append(out, "doses "+d)
	}
	if w.Revoked != g.Revoked {
		out = append(out, fmt.Sprintf("revoked: want %d, got %d", w.Revoked, g.Revoked))
	}
	if d := diffCounts(w.ExpiryMonths, g.ExpiryMonths); d != "" {
		out = append(out, "expiry months "+d)
	}
	if d := diffCounts(w.ExpiryDays, g.ExpiryDays); d != "" {
		out = append(out, "expiry days "+d)
	}
	return strings.Join(out, "; ")
}

func diffCounts(w, g map[string]int64) string {
	keys := map[string]bool{}
	for k := range w {
		keys[k] = true
	}
	for k := range g {
		keys[k] = true
	}
	var out []string
	for _, k := range slices.Sorted(maps.Keys(keys)) {
		if w[k] != g[k] {
			out = append(out, fmt.Sprintf("%s: want %d, got %d", k, w[k], g[k]))
		}
	}
	return strings.Join(out, ", ")
}

// CheckStats fails t unless the store's counters equal a recount of its records.
func CheckStats(t testing.TB, s interface {
	RecountSource
	stats.Counters
}, facilities []string) *stats.Tally {
	t.Helper()
	ctx := context.Background()
	want, err := RecountStats(ctx, s, facilities)
	if err != nil {
		t.Fatalf("recount: %v", err)
	}
	got, err := s.StatCounters(ctx, AllDaysFrom, AllDaysTo)
	if err != nil {
		t.Fatalf("StatCounters: %v", err)
	}
	if d := DiffTallies(want, got); d != "" {
		t.Errorf("counters differ from a recount of the records:\n%s", d)
	}
	return got
}

// StatsWorkload writes a mix of every kind of write the counters follow, including
// writes refused for a conflict (which must count nothing), at facilities sf1..sf3. It
// returns the facilities written to.
func StatsWorkload(t testing.TB, s Store) []string {
	t.Helper()
	ctx := context.Background()
	facs := []string{"sf1", "sf2", "sf3"}
	mk := func(fac, src, id string) vaxpass.Dose {
		d := newDose(fac, src)
		d.IDNumber = id
		return d
	}
	// People of two provinces, a CMND (no province), no ID; one repeated in the batch.
	batch := []vaxpass.Dose{
		mk("sf1", "s1", "001090012345"), mk("sf1", "s2", "079190000001"), mk("sf1", "s3", ""),
		mk("sf2", "s4", "012345678"), mk("sf2", "s5", "001090012345"), mk("sf1", "s1", "079190000001"),
	}
	created, err := s.PutNew(ctx, batch)
	if err != nil || !slices.Equal(created, []bool{true, true, true, true, true, false}) {
		t.Fatalf("PutNew: %v, %v", created, err)
	}
	if created, err := s.PutNew(ctx, batch[:2]); err != nil || created[0] || created[1] {
		t.Fatalf("PutNew of duplicates: %v, %v", created, err)
	}
	d1 := mustSaveTB(t, s, matched(batch[0], match.Verified, "001090012345"))
	d2 := mustSaveTB(t, s, matched(batch[1], match.NotFound, ""))
	// A stale write is refused and counts nothing.
	if err := s.SaveMatch(ctx, matched(batch[0], match.Mismatch, "")); err == nil {
		t.Fatalf("SaveMatch of a stale dose accepted")
	}
	errs, err := s.SaveMatchBatch(ctx, []vaxpass.Dose{
		matched(batch[2], match.NoID, ""),
		matched(batch[0], match.InvalidID, ""), // stale
		matched(batch[4], match.Verified, "001090012345"),
		matched(d2, match.Mismatch, ""),
	})
	if err != nil || errs[0] != nil || errs[1] == nil || errs[2] != nil || errs[3] != nil {
		t.Fatalf("SaveMatchBatch: %v, %v", errs, err)
	}
	// A correction moves the record to another province (and back to pending).
	fixed := batch[3]
	fixed.IDNumber = "079190000002"
	if err := s.UpdateDose(ctx, fixed); err != nil {
		t.Fatalf("UpdateDose: %v", err)
	}
	// Signing changes no status.
	if err := s.MarkSigned(ctx, []vaxpass.Dose{d1}, base.Add(time.Hour)); err != nil {
		t.Fatalf("MarkSigned: %v", err)
	}
	// Concurrent uploads and re-matches at one facility.
	var wg sync.WaitGroup
	for g := range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var ds []vaxpass.Dose
			for i := range 3 {
				ds = append(ds, mk("sf3", fmt.Sprintf("c%d-%d", g, i), fmt.Sprintf("0%02d190%06d", []int{1, 79, 96}[i], g)))
			}
			if _, err := s.PutNew(ctx, ds); err != nil {
				t.Errorf("concurrent PutNew: %v", err)
				return
			}
			if err := s.SaveMatch(ctx, matched(ds[g%3], match.Verified, ds[g%3].IDNumber)); err != nil {
				t.Errorf("concurrent SaveMatch: %v", err)
			}
		}()
	}
	wg.Wait()

	sig := func(person, fac string, at time.Time) {
		t.Helper()
		if err := s.PutFacilitySignature(ctx, vaxpass.FacilitySignature{PersonID: person, FacilityID: fac, Payload: []byte("p"), Signature: []byte(at.String()), SignedAt: at}); err != nil {
			t.Fatalf("PutFacilitySignature: %v", err)
		}
	}
	replace := func(next vaxpass.Certificate, prev *vaxpass.Certificate) {
		t.Helper()
		if err := s.ReplaceCertificate(ctx, next, prev); err != nil {
			t.Fatalf("ReplaceCertificate %s: %v", next.UVCI, err)
		}
	}
	a, b, c := "001090012345", "079190000001", "012345678"
	// A: a first certificate, then a second facility signs (it gains the certificate),
	// then a corrected certificate supersedes it, then renewal re-signs that in place.
	sig(a, "sf1", base)
	a1 := newCert(a, "URN:UVCI:01:VN:STATSA1", base.Add(time.Hour))
	replace(a1, nil)
	sig(a, "sf2", base.Add(2*time.Hour))
	sig(a, "sf2", base.Add(3*time.Hour)) // newer, same facility: nothing more counted
	sig(a, "sf2", base.Add(time.Hour))   // older: ignored
	a2 := successor(a1, "URN:UVCI:01:VN:STATSA2", base.Add(20*24*time.Hour))
	replace(a2, &a1)
	if err := s.ReplaceCertificate(ctx, newCert(a, "URN:UVCI:01:VN:STATSA3", base), &a1); err == nil {
		t.Fatalf("replacing a superseded certificate accepted")
	}
	renewed := a2
	renewed.IssuedAt = base.Add(300 * 24 * time.Hour)
	renewed.ExpiresAt = renewed.IssuedAt.AddDate(1, 0, 0)
	replace(renewed, &a2)
	// B: issued, then revoked by ops (a second revocation is refused).
	sig(b, "sf1", base)
	b1 := newCert(b, "URN:UVCI:01:VN:STATSB1", base.Add(17*time.Hour)) // the next day in Viet Nam
	replace(b1, nil)
	if err := s.RevokeCertificate(ctx, b1, "lost card", base.Add(48*time.Hour)); err != nil {
		t.Fatalf("RevokeCertificate: %v", err)
	}
	if err := s.RevokeCertificate(ctx, b1, "lost card", base.Add(48*time.Hour)); err == nil {
		t.Fatalf("a second revocation accepted")
	}
	// C: a certificate before any signature is stored; a facility signs afterwards.
	c1 := newCert(c, "URN:UVCI:01:VN:STATSC1", base.Add(-40*24*time.Hour))
	c1.ExpiresAt = base.Add(-time.Hour) // expired
	replace(c1, nil)
	sig(c, "sf3", base)
	// Concurrent first certificates.
	for i := range 5 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p := fmt.Sprintf("096190%06d", i)
			if err := s.PutFacilitySignature(ctx, vaxpass.FacilitySignature{PersonID: p, FacilityID: "sf3", Payload: []byte("p"), Signature: []byte("s"), SignedAt: base}); err != nil {
				t.Errorf("concurrent PutFacilitySignature: %v", err)
			}
			if err := s.ReplaceCertificate(ctx, newCert(p, fmt.Sprintf("URN:UVCI:01:VN:STATSP%d", i), base.Add(time.Duration(i)*24*time.Hour)), nil); err != nil {
				t.Errorf("concurrent ReplaceCertificate: %v", err)
			}
		}()
	}
	wg.Wait()
	return facs
}

func mustSaveTB(t testing.TB, s Store, d vaxpass.Dose) vaxpass.Dose {
	t.Helper()
	if err := s.SaveMatch(context.Background(), d); err != nil {
		t.Fatalf("SaveMatch %s: %v", d.SourceID, err)
	}
	return bumped(d)
}

// testStatsCounters: after a mix of writes the counters equal a recount of the records,
// and the dashboard's numbers read from them are the expected ones.
func testStatsCounters(t *testing.T, s Store) {
	ctx := ctxOf(t)
	empty, err := s.StatCounters(ctx, AllDaysFrom, AllDaysTo)
	if err != nil {
		t.Fatalf("StatCounters of an empty store: %v", err)
	}
	if d := DiffTallies(stats.NewTally(), empty); d != "" {
		t.Fatalf("an empty store has counters:\n%s", d)
	}
	facs := StatsWorkload(t, s)
	got := CheckStats(t, s, facs)

	// Spot checks, so that a recount and counters that agree on nothing cannot pass.
	if p := got.Provinces["001"]; p == nil || p.Doses[match.Verified] != 4 || p.Revoked != 1 {
		t.Errorf("province 001: %+v", p)
	}
	if f := got.Facilities["sf2"]; f == nil || f.Revoked != 1 || sum(f.ExpiryMonths) != 1 || f.Doses[match.Pending] != 1 || f.Doses[match.Verified] != 1 {
		t.Errorf("facility sf2 (signed for A after A's first certificate): %+v", f)
	}
	if f := got.Facilities["sf3"]; f == nil || sum(f.ExpiryMonths) != 6 || sum(f.Doses) != 18 || f.Doses[match.Verified] != 6 {
		t.Errorf("facility sf3: %+v", f)
	}
	if n := sum(got.Issuance); n != 9 {
		t.Errorf("issuance counts %d certificates, want 9", n)
	}

	// A read of a few days has every month and only those days.
	narrow, err := s.StatCounters(ctx, "2022-08-20", "2022-09-10")
	if err != nil {
		t.Fatalf("StatCounters of a few days: %v", err)
	}
	for id, r := range got.Facilities {
		n := narrow.Facilities[id]
		if n == nil {
			t.Errorf("facility %s missing from a read of a few days", id)
			continue
		}
		want := map[string]int64{}
		for d, v := range r.ExpiryDays {
			if d >= "2022-08-20" && d <= "2022-09-10" && v != 0 {
				want[d] = v
			}
		}
		if d := diffCounts(want, n.ExpiryDays); d != "" {
			t.Errorf("facility %s, expiry days 2022-08-20..2022-09-10: %s", id, d)
		}
		if d := diffCounts(r.ExpiryMonths, n.ExpiryMonths); d != "" {
			t.Errorf("facility %s, expiry months of a read of a few days: %s", id, d)
		}
	}
	if len(narrow.Facilities["sf3"].ExpiryDays) != 5 {
		t.Errorf("sf3's days 2022-08-20..2022-09-10: %v, want the 5 concurrent certificates' days", narrow.Facilities["sf3"].ExpiryDays)
	}

	// The service's numbers from these counters. At base+40 days: A's renewed certificate
	// and the concurrent ones are valid, C's expired, B's and A's first revoked.
	now := base.Add(40 * 24 * time.Hour)
	svc := &stats.Service{Counters: s, Now: func() time.Time { return now }, ExpiringWithin: 30 * 24 * time.Hour}
	snap, err := svc.Snapshot(ctx)
	if err != nil {
		t.Fatalf("Snapshot: %v", err)
	}
	// The 5 concurrent certificates expire a year after base..base+4 days: not expiring.
	if want := (stats.Certificates{Valid: 6, Expired: 1, Revoked: 2}); snap.Total.Certificates != want {
		t.Errorf("total certificates %+v, want %+v", snap.Total.Certificates, want)
	}
	if snap.Total.Doses != 23 || snap.Total.ByStatus[match.Verified] != 8 {
		t.Errorf("total doses %d, %v", snap.Total.Doses, snap.Total.ByStatus)
	}
	var days []string
	for _, d := range snap.Issuance {
		days = append(days, fmt.Sprintf("%s:%d", d.Date, d.Issued))
	}
	if !sort.StringsAreSorted(days) || len(days) == 0 {
		t.Errorf("issuance %v", days)
	}
}

func sum[K comparable](m map[K]int64) int64 {
	var n int64
	for _, v := range m {
		n += v
	}
	return n
}
