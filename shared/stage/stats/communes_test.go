package stats

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/vaxpass/vaxpass/shared/domain/match"
	"github.com/vaxpass/vaxpass/shared/vaxpass"
)

// communeStore is fakeStore with the commune rows read per province, as the stores read
// them: only the keys under that province.
type communeStore struct {
	*fakeStore
	communeReads []string
}

func (c *communeStore) StatCommunes(_ context.Context, province string) (*Tally, error) {
	c.communeReads = append(c.communeReads, province)
	t := NewTally()
	for k, n := range c.counters {
		if k.Scope.Kind == InCommune && strings.HasPrefix(k.Scope.ID, province+"/") {
			if err := t.Add(k, n, "", ""); err != nil {
				return nil, err
			}
		}
	}
	return t, nil
}

func communeDose(facility, source, id, commune string, st match.Status) *vaxpass.Dose {
	d := &vaxpass.Dose{FacilityID: facility}
	d.SourceID = source
	d.IDNumber, d.CommuneCode, d.Match.Status = id, commune, st
	return d
}

func TestProvinceDrillDown(t *testing.T) {
	f := &communeStore{fakeStore: newFakeStore()}
	// Hà Nội (001): two communes and a record without one; Hồ Chí Minh (079): one.
	a := communeDose("F1", "a", "001090000001", "0010001", match.Pending)
	f.putDose(nil, a)
	f.putDose(nil, communeDose("F1", "b", "001090000002", "0010001", match.Mismatch))
	f.putDose(nil, communeDose("F2", "c", "001090000003", "0010002", match.Verified))
	f.putDose(nil, communeDose("F2", "d", "001090000004", "", match.NotFound))
	f.putDose(nil, communeDose("F2", "e", "079090000005", "0790001", match.Verified))
	// The matcher verifies a; a clerk's correction moves b to another commune.
	f.putDose(a, communeDose("F1", "a", "001090000001", "0010001", match.Verified))
	f.putDose(communeDose("F1", "b", "001090000002", "0010001", match.Mismatch), communeDose("F1", "b", "001090000002", "0010002", match.Pending))

	now := time.Date(2026, 12, 5, 3, 0, 0, 0, time.UTC)
	svc := &Service{Counters: f, Now: func() time.Time { return now }}
	snap, err := svc.SnapshotOf(context.Background(), Query{Province: "001"})
	if err != nil {
		t.Fatal(err)
	}
	if !snap.AsOf.Equal(now) {
		t.Errorf("as_of %v, want %v", snap.AsOf, now)
	}
	pc := snap.Communes
	if pc == nil || pc.Province != "001" || pc.Name == "" {
		t.Fatalf("drill-down %+v", pc)
	}
	got := map[string]map[match.Status]int{}
	for _, c := range pc.Communes {
		got[c.Code] = map[match.Status]int{}
		sum := 0
		for st, n := range c.ByStatus {
			if n != 0 {
				got[c.Code][st] = n
			}
			sum += n
		}
		if sum != c.Doses {
			t.Errorf("commune %s: %d doses, statuses add to %d", c.Code, c.Doses, sum)
		}
	}
	want := map[string]map[match.Status]int{
		"0010001": {match.Verified: 1},
		"0010002": {match.Verified: 1, match.Pending: 1},
	}
	if g, w := mustJSON(t, got), mustJSON(t, want); g != w {
		t.Errorf("communes of 001: %s, want %s", g, w)
	}
	if len(pc.Communes) != 2 || pc.Communes[0].Code != "0010001" {
		t.Errorf("communes not in code order: %+v", pc.Communes)
	}
	if pc.WithoutCommune.Doses != 1 || pc.WithoutCommune.ByStatus[match.NotFound] != 1 {
		t.Errorf("without commune: %+v, want the one NOT_FOUND record", pc.WithoutCommune)
	}
	// The commune rows never enter the country's rows.
	if snap.Total.Doses != 5 {
		t.Errorf("total doses %d, want 5", snap.Total.Doses)
	}

	// A code that names no province: an empty drill-down, without a read.
	for _, code := range []string{"999", "x/y", "0010001"} {
		snap, err := svc.SnapshotOf(context.Background(), Query{Province: code})
		if err != nil || snap.Communes == nil || len(snap.Communes.Communes) != 0 || snap.Communes.Province != code {
			t.Errorf("province %q: %+v, %v", code, snap.Communes, err)
		}
	}
	if len(f.communeReads) != 1 {
		t.Errorf("commune reads %v, want the one of 001", f.communeReads)
	}
	// No province asked: no drill-down in the answer.
	if snap, err := svc.SnapshotOf(context.Background(), Query{}); err != nil || snap.Communes != nil {
		t.Errorf("no province: %+v, %v", snap.Communes, err)
	}
}

func TestDrillDownNeedsCommuneCounters(t *testing.T) {
	f := newFakeStore()
	f.putDose(nil, communeDose("F1", "a", "001090000001", "0010001", match.Pending))
	svc := &Service{Counters: f}
	if _, err := svc.SnapshotOf(context.Background(), Query{Province: "001"}); err == nil {
		t.Error("a store without commune counters gave a drill-down")
	}
}

func TestCommuneScopeID(t *testing.T) {
	p, c, ok := SplitCommuneScopeID(CommuneScopeID("079", "0790012"))
	if !ok || p != "079" || c != "0790012" {
		t.Errorf("split: %q %q %v", p, c, ok)
	}
	// A commune counter counts doses only.
	tl := NewTally()
	k := Key{Scope{InCommune, CommuneScopeID("079", "0790012")}, Metric{Kind: Revoked}}
	if err := tl.Add(k, 1, "", ""); err == nil {
		t.Error("a revoked counter of a commune was taken")
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
