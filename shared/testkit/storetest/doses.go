package storetest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/vaxpass/vaxpass/shared/domain/match"
	"github.com/vaxpass/vaxpass/shared/vaxpass"
)

func testPutNewCreates(t *testing.T, s Store) {
	ev := watchEvents(t, s)
	a, b := newDose("f1", "a1"), newDose("f1", "a2")
	b.FullName, b.DoseNumber, b.Phone, b.CommuneCode = "Trần Thị Bích", 2, "0912345678", "00001"
	other := newDose("f2", "a1") // same source_id, other facility: another dose
	created, err := s.PutNew(ctxOf(t), []vaxpass.Dose{a, b, other})
	if err != nil {
		t.Fatal(err)
	}
	if !equalBools(created, []bool{true, true, true}) {
		t.Fatalf("created %v, want all", created)
	}
	for _, d := range []vaxpass.Dose{a, b, other} {
		checkDose(t, s, d)
	}
	ev.expect(t, "PutNew", change{want: a}, change{want: b}, change{want: other})

	pending, err := s.ListByStatus(ctxOf(t), "f1", match.Pending, "", 10)
	if err != nil {
		t.Fatal(err)
	}
	if got := sourceIDs(pending); !equalStrings(got, []string{"a1", "a2"}) {
		t.Errorf("ListByStatus PENDING of f1: %v", got)
	}

	zero := newDose("f1", "v0")
	zero.Version = 0
	mustPut(t, s, zero)
	zero.Version = 1
	checkDose(t, s, zero)
	ev.expect(t, "PutNew without version", change{want: zero})
}

func testPutNewIdempotent(t *testing.T, s Store) {
	ev := watchEvents(t, s)
	a := newDose("f1", "a1")
	mustPut(t, s, a)
	ev.expect(t, "first PutNew", change{want: a})

	resent := a
	resent.FullName, resent.ReceivedAt = "Someone Else", base.Add(time.Hour)
	fresh := newDose("f1", "a2")
	created, err := s.PutNew(ctxOf(t), []vaxpass.Dose{resent, fresh, fresh})
	if err != nil {
		t.Fatal(err)
	}
	if !equalBools(created, []bool{false, true, false}) {
		t.Errorf("created %v, want [false true false] (stored duplicate, new, repeat within the batch)", created)
	}
	checkDose(t, s, a) // the duplicate changed nothing
	checkDose(t, s, fresh)
	ev.expect(t, "PutNew with duplicates", change{want: fresh})

	created, err = s.PutNew(ctxOf(t), []vaxpass.Dose{a, fresh})
	if err != nil {
		t.Fatal(err)
	}
	if !equalBools(created, []bool{false, false}) {
		t.Errorf("re-sent batch: created %v", created)
	}
	ev.expect(t, "re-sent batch")
}

func testPutNewConcurrent(t *testing.T, s Store) {
	ev := watchEvents(t, s)
	const workers = 16
	shared := newDose("f1", "shared")
	var wg sync.WaitGroup
	results := make([][]bool, workers)
	errs := make([]error, workers)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			own := newDose("f1", fmt.Sprintf("own-%02d", w))
			results[w], errs[w] = s.PutNew(context.Background(), []vaxpass.Dose{own, shared})
		}()
	}
	wg.Wait()
	createdShared := 0
	for w := range workers {
		if errs[w] != nil {
			t.Fatalf("worker %d: %v", w, errs[w])
		}
		if !results[w][0] {
			t.Errorf("worker %d: its own dose was not created", w)
		}
		if results[w][1] {
			createdShared++
		}
	}
	if createdShared != 1 {
		t.Errorf("the shared dose was created %d times, want exactly once", createdShared)
	}
	all, err := s.ListByStatus(ctxOf(t), "f1", match.Pending, "", 100)
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != workers+1 {
		t.Errorf("%d doses stored, want %d", len(all), workers+1)
	}
	if evs, ok := ev.next(t); ok {
		inserts := map[string]int{}
		for _, e := range evs {
			if e.EventName != "INSERT" {
				t.Errorf("event %s, want INSERT", e.EventName)
			}
			inserts[e.Change.Keys["source_id"].String()]++
		}
		if len(evs) != workers+1 || inserts["shared"] != 1 {
			t.Errorf("%d events, %d INSERTs of the shared dose; want %d and 1", len(evs), inserts["shared"], workers+1)
		}
	}
}

func testPutNewInvalid(t *testing.T, s Store) {
	ev := watchEvents(t, s)
	good := newDose("f1", "ok")
	for _, tc := range []struct {
		name string
		edit func(*vaxpass.Dose)
	}{
		{"empty facility", func(d *vaxpass.Dose) { d.FacilityID = "" }},
		{"empty source_id", func(d *vaxpass.Dose) { d.SourceID = "" }},
		{"NUL in facility", func(d *vaxpass.Dose) { d.FacilityID = "f\x001" }},
	} {
		bad := newDose("f1", "bad")
		tc.edit(&bad)
		_, err := s.PutNew(ctxOf(t), []vaxpass.Dose{good, bad})
		wantErr(t, "PutNew with "+tc.name, err, vaxpass.ErrInvalid)
	}
	_, err := s.GetDose(ctxOf(t), good.Key())
	wantErr(t, "GetDose of a dose of a rejected batch", err, vaxpass.ErrNotFound)
	ev.expect(t, "rejected batches")
}

func testPutNewCanceled(t *testing.T, s Store) {
	ctx, cancel := context.WithCancel(ctxOf(t))
	cancel()
	d := newDose("f1", "a1")
	if _, err := s.PutNew(ctx, []vaxpass.Dose{d}); err == nil {
		t.Error("PutNew with a canceled context succeeded")
	}
	_, err := s.GetDose(ctxOf(t), d.Key())
	wantErr(t, "GetDose after a canceled PutNew", err, vaxpass.ErrNotFound)
}

func testGetDoseNotFound(t *testing.T, s Store) {
	mustPut(t, s, newDose("f1", "a1"))
	for _, k := range []vaxpass.DoseKey{{FacilityID: "f1", SourceID: "a2"}, {FacilityID: "f2", SourceID: "a1"}, {FacilityID: "f", SourceID: "1"}} {
		_, err := s.GetDose(ctxOf(t), k)
		wantErr(t, fmt.Sprintf("GetDose %v", k), err, vaxpass.ErrNotFound)
	}
}

func testSaveMatchConditional(t *testing.T, s Store) {
	ev := watchEvents(t, s)
	d := newDose("f1", "a1")
	mustPut(t, s, d)
	ev.next(t)

	stale := matched(d, match.Verified, "001090012345")
	stale.Version = 7
	wantErr(t, "SaveMatch with a version never stored", s.SaveMatch(ctxOf(t), stale), vaxpass.ErrConflict)
	checkDose(t, s, d)
	ev.expect(t, "conflicting SaveMatch")

	m := matched(d, match.Verified, "001090012345")
	stored := mustSave(t, s, m)
	if stored.Version != 2 {
		t.Fatalf("version %d", stored.Version)
	}
	checkDose(t, s, stored)
	ev.expect(t, "SaveMatch", change{old: &d, want: stored})

	// The same image handled again (a re-delivery): the version moved on.
	wantErr(t, "SaveMatch of the same read twice", s.SaveMatch(ctxOf(t), m), vaxpass.ErrConflict)
	checkDose(t, s, stored)
	ev.expect(t, "repeated SaveMatch")

	missing := matched(newDose("f1", "nope"), match.NoID, "")
	wantErr(t, "SaveMatch of a dose never stored", s.SaveMatch(ctxOf(t), missing), vaxpass.ErrNotFound)
	ev.expect(t, "SaveMatch of a missing dose")
}

func testSaveMatchReindex(t *testing.T, s Store) {
	ctx := ctxOf(t)
	d := newDose("f1", "a1")
	mustPut(t, s, d)
	v := mustSave(t, s, matched(d, match.Verified, "P1"))
	checkLists(t, s, "after VERIFIED", "f1", map[match.Status][]string{match.Verified: {"a1"}, match.Pending: nil})
	checkPerson(t, s, "P1", []string{"f1/a1"})
	checkPending(t, s, "f1", []string{"P1"})

	// Re-matched to another person (the ID number was corrected), then to MISMATCH.
	v.IDNumber = "002090012345"
	v2 := mustSave(t, s, matched(v, match.Verified, "P2"))
	checkPerson(t, s, "P1", nil)
	checkPerson(t, s, "P2", []string{"f1/a1"})
	checkPending(t, s, "f1", []string{"P2"})

	mm := mustSave(t, s, matched(v2, match.Mismatch, ""))
	checkLists(t, s, "after MISMATCH", "f1", map[match.Status][]string{match.Verified: nil, match.Mismatch: {"a1"}})
	checkPerson(t, s, "P2", nil)
	checkPending(t, s, "f1", nil)
	got, err := s.ListByStatus(ctx, "f1", match.Mismatch, "", 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) == 1 {
		sameJSON(t, "MISMATCH listing", got[0], mm)
	}
}

func testSaveMatchBatch(t *testing.T, s Store) {
	ev := watchEvents(t, s)
	a, b, c := newDose("f1", "a"), newDose("f1", "b"), newDose("f1", "c")
	mustPut(t, s, a, b, c)
	ev.next(t)

	ma := matched(a, match.Verified, "P1")
	mb := matched(b, match.NotFound, "")
	mb.Version = 5 // stale
	mc := matched(c, match.NoID, "")
	missing := matched(newDose("f1", "zz"), match.NoID, "")
	again := bumped(ma) // a second change of a within the batch, from the first's result
	again.UpdatedAt = again.UpdatedAt.Add(time.Second)
	twice := ma // the same read of a again: stale after the first
	errs, err := s.SaveMatchBatch(ctxOf(t), []vaxpass.Dose{ma, mb, mc, missing, again, twice})
	if err != nil {
		t.Fatal(err)
	}
	if len(errs) != 6 {
		t.Fatalf("%d errors for 6 doses", len(errs))
	}
	for i, want := range []error{nil, vaxpass.ErrConflict, nil, vaxpass.ErrNotFound, nil, vaxpass.ErrConflict} {
		if want == nil && errs[i] != nil || want != nil && !isErr(errs[i], want) {
			t.Errorf("dose %d: error %v, want %v", i, errs[i], want)
		}
	}
	storedA, storedC := bumped(again), bumped(mc)
	checkDose(t, s, storedA)
	checkDose(t, s, b)
	checkDose(t, s, storedC)
	firstA := bumped(ma)
	ev.expect(t, "SaveMatchBatch", change{old: &a, want: firstA}, change{old: &c, want: storedC}, change{old: &firstA, want: storedA})
	checkLists(t, s, "after the batch", "f1", map[match.Status][]string{
		match.Pending: {"b"}, match.Verified: {"a"}, match.NoID: {"c"}, match.NotFound: nil,
	})

	errs, err = s.SaveMatchBatch(ctxOf(t), nil)
	if err != nil || len(errs) != 0 {
		t.Errorf("empty batch: %v, %v", errs, err)
	}
}

func testUpdateDose(t *testing.T, s Store) {
	ev := watchEvents(t, s)
	d := newDose("f1", "a1")
	mustPut(t, s, d)
	v := mustSave(t, s, matched(d, match.Verified, "P1"))
	ev.next(t)
	checkPending(t, s, "f1", []string{"P1"})

	corr := v
	corr.FullName, corr.UpdatedAt = "Nguyễn Văn Ân", v.UpdatedAt.Add(time.Hour)
	if !corr.NeedsMatch() {
		t.Fatal("fixture: a corrected name must need a match")
	}
	stale := corr
	stale.Version = v.Version - 1
	wantErr(t, "UpdateDose with a stale version", s.UpdateDose(ctxOf(t), stale), vaxpass.ErrConflict)
	ev.expect(t, "conflicting UpdateDose")

	if err := s.UpdateDose(ctxOf(t), corr); err != nil {
		t.Fatal(err)
	}
	stored := bumped(corr)
	checkDose(t, s, stored)
	ev.expect(t, "UpdateDose", change{old: &v, want: stored})
	// Still VERIFIED as stored, but its details are no longer the ones matched: not
	// pending signature until the matcher has seen them.
	checkPending(t, s, "f1", nil)
	checkLists(t, s, "after a correction", "f1", map[match.Status][]string{match.Verified: {"a1"}})
	checkPerson(t, s, "P1", []string{"f1/a1"})

	wantErr(t, "UpdateDose of a missing dose", s.UpdateDose(ctxOf(t), newDose("f1", "nope")), vaxpass.ErrNotFound)
}

func testListByStatus(t *testing.T, s Store) {
	ctx := ctxOf(t)
	// Byte order of source_id, not insertion order; "f1" must not see "f10".
	ids := []string{"z2", "a", "B", "z10", "é", "z1", "b", "a-1", "Z"}
	var doses []vaxpass.Dose
	for _, id := range ids {
		doses = append(doses, newDose("f1", id))
	}
	doses = append(doses, newDose("f10", "a0"), newDose("f", "1"))
	mustPut(t, s, doses...)
	for _, id := range []string{"b", "z1"} {
		d, err := s.GetDose(ctx, vaxpass.DoseKey{FacilityID: "f1", SourceID: id})
		if err != nil {
			t.Fatal(err)
		}
		mustSave(t, s, matched(d, match.Mismatch, ""))
	}
	wantPending := []string{}
	for _, id := range sortedCopy(ids) {
		if id != "b" && id != "z1" {
			wantPending = append(wantPending, id)
		}
	}
	checkLists(t, s, "f1", "f1", map[match.Status][]string{match.Pending: wantPending, match.Mismatch: {"b", "z1"}, match.Verified: nil})
	checkLists(t, s, "f10", "f10", map[match.Status][]string{match.Pending: {"a0"}})

	for _, limit := range []int{1, 2, 3, 100} {
		var got []string
		after := ""
		for page := 0; ; page++ {
			if page > len(ids)+1 {
				t.Fatalf("limit %d: paging does not end", limit)
			}
			ds, err := s.ListByStatus(ctx, "f1", match.Pending, after, limit)
			if err != nil {
				t.Fatal(err)
			}
			if len(ds) > limit {
				t.Fatalf("limit %d: page of %d", limit, len(ds))
			}
			got = append(got, sourceIDs(ds)...)
			if len(ds) < limit {
				break
			}
			after = ds[len(ds)-1].SourceID
		}
		if !equalStrings(got, wantPending) {
			t.Errorf("limit %d: paged %v, want %v", limit, got, wantPending)
		}
	}
	// A cursor need not be a stored source_id.
	ds, err := s.ListByStatus(ctx, "f1", match.Pending, "a0", 2)
	if err != nil {
		t.Fatal(err)
	}
	if got := sourceIDs(ds); !equalStrings(got, firstAfter(wantPending, "a0", 2)) {
		t.Errorf("after a0: %v, want %v", got, firstAfter(wantPending, "a0", 2))
	}
	if _, err := s.ListByStatus(ctx, "f1", match.Pending, "", 0); err == nil {
		t.Error("ListByStatus with limit 0 succeeded")
	}
}

func firstAfter(sorted []string, after string, n int) []string {
	var out []string
	for _, s := range sorted {
		if s > after && len(out) < n {
			out = append(out, s)
		}
	}
	return out
}

func testSignPendingPersons(t *testing.T, s Store) {
	ctx := ctxOf(t)
	put := func(fac, sid string, st match.Status, person string) vaxpass.Dose {
		d := newDose(fac, sid)
		mustPut(t, s, d)
		return mustSave(t, s, matched(d, st, person))
	}
	put("f1", "a1", match.Verified, "P3")
	put("f1", "a2", match.Verified, "P3")
	put("f1", "a3", match.Verified, "P1")
	signed := put("f1", "a4", match.Verified, "P2")
	if err := s.MarkSigned(ctx, []vaxpass.Dose{signed}, base.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	stale := put("f1", "a5", match.Verified, "P4")
	stale.FullName = "Lê Văn Tám" // corrected after the match: needs a new match first
	if err := s.UpdateDose(ctx, stale); err != nil {
		t.Fatal(err)
	}
	put("f1", "a6", match.Mismatch, "")
	put("f1", "a7", match.Verified, "P0")
	put("f10", "b1", match.Verified, "P5")
	put("f", "1", match.Verified, "P6")

	checkPending(t, s, "f1", []string{"P0", "P1", "P3"})
	checkPending(t, s, "f10", []string{"P5"})
	checkPending(t, s, "f", []string{"P6"})
	checkPending(t, s, "nobody", nil)

	for _, tc := range []struct {
		after string
		limit int
		want  []string
	}{
		{"", 1, []string{"P0"}},
		{"P0", 1, []string{"P1"}},
		{"P1", 1, []string{"P3"}}, // distinct: P3's two doses are one person
		{"P1", 5, []string{"P3"}},
		{"P2", 5, []string{"P3"}}, // a cursor that is not pending
		{"P3", 5, nil},
		{"", 2, []string{"P0", "P1"}},
	} {
		got, err := s.SignPendingPersons(ctx, "f1", tc.after, tc.limit)
		if err != nil {
			t.Fatal(err)
		}
		if !equalStrings(got, tc.want) {
			t.Errorf("SignPendingPersons(f1, after %q, limit %d) = %v, want %v", tc.after, tc.limit, got, tc.want)
		}
	}
}

func testPersonDoses(t *testing.T, s Store) {
	ctx := ctxOf(t)
	for _, k := range []vaxpass.DoseKey{{FacilityID: "f2", SourceID: "x"}, {FacilityID: "f1", SourceID: "b"}, {FacilityID: "f1", SourceID: "a"}, {FacilityID: "f3", SourceID: "c"}} {
		d := newDose(k.FacilityID, k.SourceID)
		mustPut(t, s, d)
		person := "P1"
		if k.FacilityID == "f3" {
			person = "P10" // a person whose ID extends P1's
		}
		mustSave(t, s, matched(d, match.Verified, person))
	}
	checkPerson(t, s, "P1", []string{"f1/a", "f1/b", "f2/x"})
	checkPerson(t, s, "P10", []string{"f3/c"})
	checkPerson(t, s, "P", nil)
	ds, err := s.PersonDoses(ctx, "P1")
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range ds {
		checkDose(t, s, d) // what PersonDoses returns is the stored dose
	}
}

func testMarkSigned(t *testing.T, s Store) {
	ctx := ctxOf(t)
	ev := watchEvents(t, s)
	var ds []vaxpass.Dose
	for _, sid := range []string{"a1", "a2", "a3"} {
		d := newDose("f1", sid)
		mustPut(t, s, d)
		ds = append(ds, mustSave(t, s, matched(d, match.Verified, "P1")))
	}
	ev.next(t)
	at := base.Add(2 * time.Hour)
	if err := s.MarkSigned(ctx, ds[:2], at); err != nil {
		t.Fatal(err)
	}
	var changes []change
	for i := range ds[:2] {
		old := ds[i]
		want := bumped(old)
		want.SignedAt = at
		checkDose(t, s, want)
		changes = append(changes, change{old: &old, want: want})
		ds[i] = want
	}
	ev.expect(t, "MarkSigned", changes...)
	checkPending(t, s, "f1", []string{"P1"}) // a3 is still unsigned

	if err := s.MarkSigned(ctx, ds[2:], at); err != nil {
		t.Fatal(err)
	}
	ds[2] = bumped(ds[2])
	ds[2].SignedAt = at
	checkPending(t, s, "f1", nil)
	checkPerson(t, s, "P1", []string{"f1/a1", "f1/a2", "f1/a3"})
	ev.next(t)

	// A re-match (matching.Apply clears the signature) makes the person pending again.
	rematched := matched(ds[0], match.Verified, "P1")
	if !rematched.SignedAt.IsZero() {
		t.Fatal("fixture: a re-match must clear SignedAt")
	}
	mustSave(t, s, rematched)
	checkPending(t, s, "f1", []string{"P1"})

	if err := s.MarkSigned(ctx, nil, at); err != nil {
		t.Errorf("MarkSigned of nothing: %v", err)
	}
	ev.next(t)
	wantErr(t, "MarkSigned of a missing dose", s.MarkSigned(ctx, []vaxpass.Dose{newDose("f1", "nope")}, at), vaxpass.ErrNotFound)
	ev.expect(t, "failed MarkSigned")
}

func testMarkSignedConflict(t *testing.T, s Store) {
	ctx := ctxOf(t)
	ev := watchEvents(t, s)
	a, b := newDose("f1", "a1"), newDose("f1", "a2")
	mustPut(t, s, a, b)
	va := mustSave(t, s, matched(a, match.Verified, "P1"))
	vb := mustSave(t, s, matched(b, match.Verified, "P1"))
	// b is corrected between the signing run's read and its write.
	corr := vb
	corr.Lot = "NEW"
	if err := s.UpdateDose(ctx, corr); err != nil {
		t.Fatal(err)
	}
	ev.next(t)
	wantErr(t, "MarkSigned with a changed dose", s.MarkSigned(ctx, []vaxpass.Dose{va, vb}, base.Add(time.Hour)), vaxpass.ErrConflict)
	checkDose(t, s, va) // untouched: all or nothing
	checkDose(t, s, bumped(corr))
	ev.expect(t, "conflicting MarkSigned")
	checkPending(t, s, "f1", []string{"P1"})
}

func testMarkSignedGroups(t *testing.T, s Store) {
	ctx := ctxOf(t)
	ev := watchEvents(t, s)
	a1, a2, b1, c1 := newDose("f1", "a1"), newDose("f1", "a2"), newDose("f1", "b1"), newDose("f1", "c1")
	mustPut(t, s, a1, a2, b1, c1)
	va1 := mustSave(t, s, matched(a1, match.Verified, "P1"))
	va2 := mustSave(t, s, matched(a2, match.Verified, "P1"))
	vb1 := mustSave(t, s, matched(b1, match.Verified, "P2"))
	vc1 := mustSave(t, s, matched(c1, match.Verified, "P3"))
	// P2's dose is corrected between the signing run's read and its write.
	corr := vb1
	corr.Lot = "NEW"
	if err := s.UpdateDose(ctx, corr); err != nil {
		t.Fatal(err)
	}
	ev.next(t)
	at := base.Add(time.Hour)
	missing := newDose("f1", "nope")
	errs, err := s.MarkSignedGroups(ctx, [][]vaxpass.Dose{{va1, va2}, {vb1}, {vc1}, {missing}}, at)
	if err != nil {
		t.Fatal(err)
	}
	if len(errs) != 4 || errs[0] != nil || !errors.Is(errs[1], vaxpass.ErrConflict) || errs[2] != nil || !errors.Is(errs[3], vaxpass.ErrNotFound) {
		t.Fatalf("MarkSignedGroups errs = %v; want nil, conflict, nil, not found", errs)
	}
	var changes []change
	for _, old := range []vaxpass.Dose{va1, va2, vc1} {
		want := bumped(old)
		want.SignedAt = at
		checkDose(t, s, want)
		changes = append(changes, change{old: &old, want: want})
	}
	checkDose(t, s, bumped(corr)) // the conflicting group is untouched
	ev.expect(t, "MarkSignedGroups", changes...)
	checkPending(t, s, "f1", []string{"P2"})

	if errs, err := s.MarkSignedGroups(ctx, nil, at); err != nil || len(errs) != 0 {
		t.Errorf("MarkSignedGroups of nothing: %v, %v", errs, err)
	}
}

// checkLists checks ListByStatus of a facility for each given status.
func checkLists(t *testing.T, s Store, what, facilityID string, want map[match.Status][]string) {
	t.Helper()
	for st, ids := range want {
		ds, err := s.ListByStatus(ctxOf(t), facilityID, st, "", 1000)
		if err != nil {
			t.Fatalf("%s: ListByStatus %s: %v", what, st, err)
		}
		if got := sourceIDs(ds); !equalStrings(got, ids) {
			t.Errorf("%s: ListByStatus(%s, %s) = %v, want %v", what, facilityID, st, got, ids)
		}
		for _, d := range ds {
			if d.Match.Status != st || d.FacilityID != facilityID {
				t.Errorf("%s: ListByStatus(%s, %s) returned %s/%s in %s", what, facilityID, st, d.FacilityID, d.SourceID, d.Match.Status)
			}
		}
	}
}

// checkPerson checks PersonDoses as facility/source_id in facility, source_id order.
func checkPerson(t *testing.T, s Store, person string, want []string) {
	t.Helper()
	ds, err := s.PersonDoses(ctxOf(t), person)
	if err != nil {
		t.Fatalf("PersonDoses: %v", err)
	}
	got := make([]string, len(ds))
	for i, d := range ds {
		got[i] = d.FacilityID + "/" + d.SourceID
		if d.PersonID != person {
			t.Errorf("PersonDoses(%s) returned a dose of %q", person, d.PersonID)
		}
	}
	if !equalStrings(got, want) {
		t.Errorf("PersonDoses(%s) = %v, want %v", person, got, want)
	}
}

// checkPending checks the whole SignPendingPersons list of a facility.
func checkPending(t *testing.T, s Store, facilityID string, want []string) {
	t.Helper()
	got, err := s.SignPendingPersons(ctxOf(t), facilityID, "", 1000)
	if err != nil {
		t.Fatalf("SignPendingPersons: %v", err)
	}
	if !equalStrings(got, want) {
		t.Errorf("SignPendingPersons(%s) = %v, want %v", facilityID, got, want)
	}
}

func equalBools(a, b []bool) bool {
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

func isErr(err, target error) bool { return err != nil && errors.Is(err, target) }
