package storetest

import (
	"maps"
	"testing"
	"time"

	"github.com/vaxpass/vaxpass/shared/stage/stats"
	"github.com/vaxpass/vaxpass/shared/vaxpass"
)

// testStatsRenewalInPlace: renewals in place move the dashboard's counters from the old
// expiry to the new one (province, facilities, country issuance), also when the expiry
// stays on the same day and the row counters do not move at all (a store may then skip
// the person's metrics), and a facility that signs for the person afterwards gains the
// certificate at its latest expiry.
func testStatsRenewalInPlace(t *testing.T, s Store) {
	ctx := ctxOf(t)
	person := "079190000002"
	province := "079"
	if err := s.PutFacilitySignature(ctx, vaxpass.FacilitySignature{PersonID: person, FacilityID: "rf1",
		Payload: []byte("p"), Signature: []byte("s1"), SignedAt: base}); err != nil {
		t.Fatal(err)
	}
	c := newCert(person, "URN:UVCI:01:VN:RENEWSTATS1", base)
	mustReplace(t, s, c, nil)
	renew := func(prev vaxpass.Certificate, iat time.Time) vaxpass.Certificate {
		t.Helper()
		next := prev
		next.IssuedAt, next.ExpiresAt, next.HC1 = iat, iat.AddDate(1, 0, 0), "HC1:RENEWED"+iat.Format(time.RFC3339)
		mustReplace(t, s, next, &prev)
		next.Version = prev.Version + 1
		return next
	}
	check := func(when string, c vaxpass.Certificate, facilities []string, issuance map[string]int64) {
		t.Helper()
		got, err := s.StatCounters(ctx, AllDaysFrom, AllDaysTo)
		if err != nil {
			t.Fatal(err)
		}
		day := stats.DayOf(c.ExpiresAt)
		wantDays := map[string]int64{day: 1}
		wantMonths := map[string]int64{stats.MonthOf(day): 1}
		rows := map[string]*stats.Row{"province " + province: got.Provinces[province]}
		for _, f := range facilities {
			rows["facility "+f] = got.Facilities[f]
		}
		for name, r := range rows {
			if r == nil {
				t.Errorf("%s: no %s row", when, name)
				continue
			}
			// Counters summed over shards may leave a day at zero.
			maps.DeleteFunc(r.ExpiryDays, func(_ string, n int64) bool { return n == 0 })
			maps.DeleteFunc(r.ExpiryMonths, func(_ string, n int64) bool { return n == 0 })
			if !maps.Equal(r.ExpiryDays, wantDays) || !maps.Equal(r.ExpiryMonths, wantMonths) || r.Revoked != 0 {
				t.Errorf("%s: %s row expiries %v %v revoked %d, want %v %v", when, name, r.ExpiryDays, r.ExpiryMonths, r.Revoked, wantDays, wantMonths)
			}
		}
		maps.DeleteFunc(got.Issuance, func(_ string, n int64) bool { return n == 0 })
		if !maps.Equal(got.Issuance, issuance) {
			t.Errorf("%s: issuance %v, want %v", when, got.Issuance, issuance)
		}
	}
	check("issued", c, []string{"rf1"}, map[string]int64{stats.DayOf(base): 1})

	// A minute later: the expiry and the issuance stay on their days.
	c = renew(c, base.Add(time.Minute))
	check("renewed the same day", c, []string{"rf1"}, map[string]int64{stats.DayOf(base): 1})

	// A facility signs after that renewal: it gains the certificate where it is now.
	if err := s.PutFacilitySignature(ctx, vaxpass.FacilitySignature{PersonID: person, FacilityID: "rf2",
		Payload: []byte("p"), Signature: []byte("s2"), SignedAt: base.Add(2 * time.Minute)}); err != nil {
		t.Fatal(err)
	}
	check("a second facility", c, []string{"rf1", "rf2"}, map[string]int64{stats.DayOf(base): 1})

	// Three days later: both move.
	later := base.Add(3 * 24 * time.Hour)
	c = renew(c, later)
	check("renewed days later", c, []string{"rf1", "rf2"}, map[string]int64{stats.DayOf(later): 1})
	checkCert(t, s, c)
}
