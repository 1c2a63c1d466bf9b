package storetest

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vaxpass/vaxpass/shared/domain/match"
	"github.com/vaxpass/vaxpass/shared/vaxpass"
)

// CommuneLister lists doses by commune (a commune clerk's worklists); every store
// implements it.
type CommuneLister interface {
	// ListByCommune lists the doses whose record's commune_code is commune and whose
	// stored match status is status, of every facility, in (facility_id, source_id) byte
	// order, strictly after after (the zero DoseKey to start), at most limit.
	ListByCommune(ctx context.Context, commune string, status match.Status, after vaxpass.DoseKey, limit int) ([]vaxpass.Dose, error)
}

// communeModel is what the suite expects the store to hold: the commune and status of
// every dose written.
type communeModel map[vaxpass.DoseKey]vaxpass.Dose

func (m communeModel) want(commune string, status match.Status) []vaxpass.DoseKey {
	var out []vaxpass.DoseKey
	for k, d := range m {
		if d.CommuneCode == commune && d.Match.Status == status {
			out = append(out, k)
		}
	}
	slices.SortFunc(out, compareDoseKeys)
	return out
}

func compareDoseKeys(a, b vaxpass.DoseKey) int {
	if c := strings.Compare(a.FacilityID, b.FacilityID); c != 0 {
		return c
	}
	return strings.Compare(a.SourceID, b.SourceID)
}

func doseKeys(ds []vaxpass.Dose) []vaxpass.DoseKey {
	out := make([]vaxpass.DoseKey, len(ds))
	for i := range ds {
		out[i] = ds[i].Key()
	}
	return out
}

// checkCommuneList compares one whole list (one page of 1,000) with the model, and the
// doses listed with the stored ones.
func checkCommuneList(t *testing.T, s Store, l CommuneLister, m communeModel, commune string, status match.Status) {
	t.Helper()
	ds, err := l.ListByCommune(ctxOf(t), commune, status, vaxpass.DoseKey{}, 1000)
	if err != nil {
		t.Fatalf("ListByCommune %s %s: %v", commune, status, err)
	}
	want := m.want(commune, status)
	if got := doseKeys(ds); !slices.Equal(got, want) {
		t.Errorf("ListByCommune %s %s = %v, want %v", commune, status, got, want)
		return
	}
	for _, d := range ds {
		sameJSON(t, fmt.Sprintf("ListByCommune %s %s: %s/%s", commune, status, d.FacilityID, d.SourceID), d, m[d.Key()])
	}
}

func testListByCommune(t *testing.T, s Store) {
	l, ok := s.(CommuneLister)
	if !ok {
		t.Fatalf("%T does not implement ListByCommune", s)
	}
	ctx := ctxOf(t)
	m := communeModel{}
	// Facilities one a prefix of another ("f", "f1", "f10") and with every kind of ID
	// character; source IDs with bytes sorting before and after "#".
	var doses []vaxpass.Dose
	add := func(facility, source, commune string) {
		d := newDose(facility, source)
		d.CommuneCode = commune
		doses = append(doses, d)
	}
	for _, f := range []string{"f10", "f", "g", "f1", "f-1", "f_1", "F1"} {
		for _, src := range []string{"b", "a b", "a#1", "a", "é", "Z"} {
			add(f, src, "00001")
		}
		add(f, "other", "00002")
		add(f, "prefix", "0000") // a commune code that is a prefix of another
		add(f, "none", "")       // no commune: never listed
	}
	mustPut(t, s, doses...)
	for _, d := range doses {
		m[d.Key()] = d
	}
	for _, c := range []string{"00001", "00002", "0000"} {
		checkCommuneList(t, s, l, m, c, match.Pending)
		checkCommuneList(t, s, l, m, c, match.Mismatch)
	}

	// Paging: every limit, the cursor the last key of a page, crossing facilities.
	want := m.want("00001", match.Pending)
	for _, limit := range []int{1, 2, 5, 6, 7, 100} {
		var got []vaxpass.DoseKey
		var after vaxpass.DoseKey
		for page := 0; ; page++ {
			if page > len(want)+1 {
				t.Fatalf("limit %d: paging does not end", limit)
			}
			ds, err := l.ListByCommune(ctx, "00001", match.Pending, after, limit)
			if err != nil {
				t.Fatal(err)
			}
			if len(ds) > limit {
				t.Fatalf("limit %d: page of %d", limit, len(ds))
			}
			got = append(got, doseKeys(ds)...)
			if len(ds) < limit {
				break
			}
			after = ds[len(ds)-1].Key()
		}
		if !slices.Equal(got, want) {
			t.Errorf("limit %d: paged %v, want %v", limit, got, want)
		}
	}
	// A cursor need not be a stored dose: past every source of f1, its facility with no
	// source yet, a facility between stored ones.
	for _, after := range []vaxpass.DoseKey{
		{FacilityID: "f1", SourceID: "zz"},
		{FacilityID: "f1", SourceID: ""},
		{FacilityID: "f0", SourceID: "a"},
		{FacilityID: "f10", SourceID: "a "},
		{FacilityID: "h", SourceID: "a"},
	} {
		ds, err := l.ListByCommune(ctx, "00001", match.Pending, after, 3)
		if err != nil {
			t.Fatal(err)
		}
		var exp []vaxpass.DoseKey
		for _, k := range want {
			if compareDoseKeys(k, after) > 0 && len(exp) < 3 {
				exp = append(exp, k)
			}
		}
		if got := doseKeys(ds); !slices.Equal(got, exp) {
			t.Errorf("after %v: %v, want %v", after, got, exp)
		}
	}

	// A status change moves a dose between the lists; a correction of the commune code
	// moves it between communes, and removing it takes it off every list.
	save := func(d vaxpass.Dose, how string) {
		t.Helper()
		var err error
		switch how {
		case "match":
			err = s.SaveMatch(ctx, d)
		case "update":
			err = s.UpdateDose(ctx, d)
		}
		if err != nil {
			t.Fatalf("%s %s/%s: %v", how, d.FacilityID, d.SourceID, err)
		}
		m[d.Key()] = bumped(d)
	}
	get := func(f, src string) vaxpass.Dose { return m[vaxpass.DoseKey{FacilityID: f, SourceID: src}] }
	save(matched(get("f1", "a"), match.Mismatch, ""), "match")
	save(matched(get("g", "b"), match.Verified, "001090012345"), "match")
	save(matched(get("f", "Z"), match.NotFound, ""), "match")
	save(matched(get("f10", "none"), match.Mismatch, ""), "match") // no commune: still unlisted
	moved := get("f-1", "a b")
	moved.CommuneCode = "00002"
	save(moved, "update")
	gone := get("F1", "a#1")
	gone.CommuneCode = ""
	save(gone, "update")
	added := get("f_1", "none")
	added.CommuneCode = "00001"
	save(added, "update")
	for _, c := range []string{"00001", "00002", "0000"} {
		for _, st := range []match.Status{match.Pending, match.Mismatch, match.Verified, match.NotFound} {
			checkCommuneList(t, s, l, m, c, st)
		}
	}
	// Mismatch back to pending (a corrected record waiting for the matcher), and a
	// verified dose signed: it stays on the verified list, as stored.
	back := get("f1", "a")
	back.Match = match.Result{Status: match.Pending, Reasons: []string{}}
	save(back, "update")
	signed := get("g", "b")
	if err := s.MarkSigned(ctx, []vaxpass.Dose{signed}, base.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	signed.SignedAt = base.Add(time.Hour)
	m[signed.Key()] = bumped(signed)
	checkCommuneList(t, s, l, m, "00001", match.Pending)
	checkCommuneList(t, s, l, m, "00001", match.Mismatch)
	checkCommuneList(t, s, l, m, "00001", match.Verified)

	// Doses without a commune code are on no list: every listed dose has one.
	listed := 0
	for _, c := range []string{"00001", "00002", "0000"} {
		for _, st := range []match.Status{match.Pending, match.Mismatch, match.Verified, match.NotFound} {
			ds, err := l.ListByCommune(ctx, c, st, vaxpass.DoseKey{}, 1000)
			if err != nil {
				t.Fatal(err)
			}
			listed += len(ds)
		}
	}
	withCommune := 0
	for _, d := range m {
		if d.CommuneCode != "" {
			withCommune++
		}
	}
	if listed != withCommune {
		t.Errorf("%d doses listed over every commune and status, %d have a commune code", listed, withCommune)
	}

	for _, tc := range []struct {
		commune string
		status  match.Status
		limit   int
	}{{"", match.Pending, 10}, {"00001", "", 10}, {"00001", match.Pending, 0}, {"00001", match.Pending, -1}, {"0\x000001", match.Pending, 10}} {
		if _, err := l.ListByCommune(ctx, tc.commune, tc.status, vaxpass.DoseKey{}, tc.limit); !isErr(err, vaxpass.ErrInvalid) {
			t.Errorf("ListByCommune(%q, %q, limit %d) = %v, want ErrInvalid", tc.commune, tc.status, tc.limit, err)
		}
	}
}
