package storetest

import (
	"context"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/vaxpass/vaxpass/shared/domain/dose"
	"github.com/vaxpass/vaxpass/shared/domain/match"
	"github.com/vaxpass/vaxpass/shared/stage/stats"
	"github.com/vaxpass/vaxpass/shared/vaxpass"
)

// CommuneStatsStore is what CheckCommuneStats writes and reads.
type CommuneStatsStore interface {
	PutNew(ctx context.Context, doses []vaxpass.Dose) ([]bool, error)
	SaveMatch(ctx context.Context, d vaxpass.Dose) error
	UpdateDose(ctx context.Context, d vaxpass.Dose) error
	GetDose(ctx context.Context, key vaxpass.DoseKey) (vaxpass.Dose, error)
	stats.Counters
	stats.CommuneCounters
}

// CheckCommuneStats writes doses with commune codes in two provinces, matches one and
// moves one to another commune, and checks that each province's commune rows count the
// doses of their records (by match status: what the rows gained), and that StatCounters
// leaves them out. The facility IDs are prefixed with tag, so that a store can be
// checked again.
func CheckCommuneStats(t *testing.T, s CommuneStatsStore, tag string) {
	t.Helper()
	ctx := context.Background()
	read := func(prov string) map[string]map[match.Status]int64 {
		tl, err := s.StatCommunes(ctx, prov)
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]map[match.Status]int64{}
		for id, r := range tl.Communes {
			p, c, ok := stats.SplitCommuneScopeID(id)
			if !ok || p != prov {
				t.Errorf("province %s: commune row %q of another province", prov, id)
				continue
			}
			out[c] = map[match.Status]int64{}
			for st, n := range r.Doses {
				out[c][st] = n
			}
		}
		return out
	}
	before := map[string]map[string]map[match.Status]int64{"001": read("001"), "079": read("079")}
	at := time.Date(2021, 9, 1, 8, 0, 0, 0, time.UTC)
	mk := func(fac, src, id, commune string) vaxpass.Dose {
		return vaxpass.Dose{
			FacilityID: tag + fac,
			Record: dose.Record{SourceID: src, FullName: "Lê Văn Minh", DOB: "1990-01-02", Gender: dose.Male, IDNumber: id,
				Nationality: "VN", CommuneCode: commune, Vaccine: "PFIZER", DoseNumber: 1, VaccinatedOn: "2021-08-01"},
			Match:      match.Result{Status: match.Pending, Reasons: []string{}},
			ReceivedAt: at, UpdatedAt: at, Version: 1,
		}
	}
	doses := []vaxpass.Dose{
		mk("f1", "a", "001090000001", "9910001"),
		mk("f1", "b", "001090000002", "9910001"),
		mk("f2", "c", "001090000003", "9910002"),
		mk("f2", "d", "001090000004", ""),
		mk("f2", "e", "079090000005", "9970001"),
	}
	if _, err := s.PutNew(ctx, doses); err != nil {
		t.Fatal(err)
	}
	get := func(d vaxpass.Dose) vaxpass.Dose {
		got, err := s.GetDose(ctx, vaxpass.DoseKey{FacilityID: d.FacilityID, SourceID: d.SourceID})
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	a := get(doses[0])
	a.Match = match.Result{Status: match.Verified, Reasons: []string{}}
	if err := s.SaveMatch(ctx, a); err != nil {
		t.Fatal(err)
	}
	b := get(doses[1])
	b.CommuneCode = "9910002"
	if err := s.UpdateDose(ctx, b); err != nil {
		t.Fatal(err)
	}

	want := map[string]map[string]map[match.Status]int64{
		"001": {"9910001": {match.Verified: 1}, "9910002": {match.Pending: 2}},
		"079": {"9970001": {match.Pending: 1}},
	}
	for prov, communes := range want {
		now := read(prov)
		for _, c := range slices.Sorted(maps.Keys(communes)) {
			got := map[match.Status]int64{}
			for st, n := range now[c] {
				if d := n - before[prov][c][st]; d != 0 {
					got[st] = d
				}
			}
			if !maps.Equal(got, communes[c]) {
				t.Errorf("province %s commune %s gained %v, want %v", prov, c, got, communes[c])
			}
		}
	}
	tl, err := s.StatCounters(ctx, AllDaysFrom, AllDaysTo)
	if err != nil {
		t.Fatal(err)
	}
	if len(tl.Communes) != 0 {
		t.Errorf("StatCounters read %d commune rows", len(tl.Communes))
	}
}
