package storetest

// The contract of the ops records: reprocessing runs (reprocess.RunStore), the revocation
// list (revocation.Store) and the audit trail (audit.Appender and audit.Reader), as the
// embedded backend keeps them and the DynamoDB ops table must too.

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/vaxpass/vaxpass/shared/stage/audit"
	"github.com/vaxpass/vaxpass/shared/stage/reprocess"
	"github.com/vaxpass/vaxpass/shared/stage/revocation"
	"github.com/vaxpass/vaxpass/shared/vaxpass"
)

// AuditTrail is both sides of the audit trail.
type AuditTrail interface {
	audit.Appender
	audit.Reader
}

// Ops is a backend's ops records: one object, or several over the same database (the
// revocation list's audit notes must show in Audit).
type Ops struct {
	Runs        reprocess.RunStore
	Revocations revocation.Store
	Audit       AuditTrail
}

// RunOps runs the ops contract suite; open must return fresh, empty ops records for each
// call (and close them with t.Cleanup).
func RunOps(t *testing.T, open func(t *testing.T) Ops) {
	for _, tc := range []struct {
		name string
		fn   func(t *testing.T, o Ops)
	}{
		{"Runs/StateAndJournal", testRunStateAndJournal},
		{"Runs/ChangesInByteOrder", testRunChangesOrder},
		{"Runs/LargeSave", testRunLargeSave},
		{"Runs/ConcurrentSaves", testRunConcurrentSaves},
		{"Runs/Invalid", testRunInvalid},
		{"Revocations/AddOnce", testRevocationAddOnce},
		{"Revocations/OrderAndPaging", testRevocationOrder},
		{"Revocations/Invalid", testRevocationInvalid},
		{"Revocations/Among", testRevocationsAmong},
		{"Audit/QueryAndPage", testAuditQuery},
		{"Audit/Invalid", testAuditInvalid},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.fn(t, open(t))
		})
	}
}

// allChanges pages through a run's changes, page entries at a time.
func allChanges(t *testing.T, r reprocess.RunStore, runID string, page int) (ids, outcomes []string) {
	t.Helper()
	after := ""
	for {
		pi, po, err := r.RunChanges(ctxOf(t), runID, after, page)
		if err != nil {
			t.Fatalf("RunChanges %s after %q: %v", runID, after, err)
		}
		if len(pi) != len(po) || len(pi) > page {
			t.Fatalf("RunChanges %s: %d ids, %d outcomes, limit %d", runID, len(pi), len(po), page)
		}
		if len(pi) > 0 && pi[0] <= after {
			t.Fatalf("RunChanges %s after %q starts at %q: paging does not advance", runID, after, pi[0])
		}
		ids, outcomes = append(ids, pi...), append(outcomes, po...)
		if len(pi) < page {
			return ids, outcomes
		}
		after = pi[len(pi)-1]
	}
}

func mustSaveRun(t *testing.T, r reprocess.RunStore, runID, doc string, changes map[string]string) {
	t.Helper()
	if err := r.SaveRun(ctxOf(t), runID, []byte(doc), changes); err != nil {
		t.Fatalf("SaveRun %s: %v", runID, err)
	}
}

func testRunStateAndJournal(t *testing.T, o Ops) {
	ctx, r := ctxOf(t), o.Runs
	if _, err := r.LoadRun(ctx, "rp-1"); !errors.Is(err, vaxpass.ErrNotFound) {
		t.Fatalf("LoadRun of nothing: %v, want ErrNotFound", err)
	}
	if runs, err := r.ListRuns(ctx); err != nil || len(runs) != 0 {
		t.Fatalf("ListRuns of nothing = %q, %v", runs, err)
	}
	if ids, outs, err := r.RunChanges(ctx, "rp-1", "", 10); err != nil || len(ids) != 0 || len(outs) != 0 {
		t.Fatalf("RunChanges of nothing = %v %v %v", ids, outs, err)
	}
	mustSaveRun(t, r, "rp-2", `{"n":1}`, map[string]string{"f/b": "verified", "f/a": "issued URN:UVCI:01:VN:X"})
	mustSaveRun(t, r, "rp-1", `{"n":0}`, nil)
	mustSaveRun(t, r, "rp-2", `{"n":2}`, map[string]string{"f/c": "mismatch"})
	// A run whose ID extends another's keeps its own journal.
	mustSaveRun(t, r, "rp-10", `{"n":10}`, map[string]string{"f/z": "verified"})
	mustSaveRun(t, r, "rp-1", `{"n":1}`, map[string]string{})

	doc, err := r.LoadRun(ctx, "rp-2")
	if err != nil || string(doc) != `{"n":2}` {
		t.Errorf("LoadRun = %s, %v", doc, err)
	}
	runs, err := r.ListRuns(ctx)
	var got []string
	for _, d := range runs {
		got = append(got, string(d))
	}
	if want := []string{`{"n":1}`, `{"n":10}`, `{"n":2}`}; err != nil || !slices.Equal(got, want) {
		t.Errorf("ListRuns = %q, %v; want %q (run ID byte order)", got, err, want)
	}
	ids, outs, err := r.RunChanges(ctx, "rp-2", "", 2)
	if err != nil || !slices.Equal(ids, []string{"f/a", "f/b"}) || !slices.Equal(outs, []string{"issued URN:UVCI:01:VN:X", "verified"}) {
		t.Errorf("RunChanges page 1 = %v %v %v", ids, outs, err)
	}
	ids, outs, err = r.RunChanges(ctx, "rp-2", "f/b", 2)
	if err != nil || !slices.Equal(ids, []string{"f/c"}) || !slices.Equal(outs, []string{"mismatch"}) {
		t.Errorf("RunChanges page 2 = %v %v %v", ids, outs, err)
	}
	if ids, _, err := r.RunChanges(ctx, "rp-2", "f/c", 2); err != nil || len(ids) != 0 {
		t.Errorf("RunChanges past the end = %v, %v", ids, err)
	}
	if ids, _, _ := r.RunChanges(ctx, "rp-1", "", 10); len(ids) != 0 {
		t.Errorf("rp-1 holds another run's changes: %v", ids)
	}
	// A unit's later change replaces its earlier one; saving the same again changes nothing.
	for range 2 {
		mustSaveRun(t, r, "rp-2", `{"n":3}`, map[string]string{"f/a": "verified"})
		ids, outs = allChanges(t, r, "rp-2", 10)
		if !slices.Equal(ids, []string{"f/a", "f/b", "f/c"}) || !slices.Equal(outs, []string{"verified", "verified", "mismatch"}) {
			t.Errorf("after replacing f/a: %v %v", ids, outs)
		}
	}
}

func testRunChangesOrder(t *testing.T, o Ops) {
	ctx, r := ctxOf(t), o.Runs
	// Prefixes, separators below and above "/", bytes above 0x7f, a control byte:
	// byte order throughout.
	ids := []string{"a", "a/b", "a/b/c", "a-1/x", "a0/x", "ab", "b", "\x01", "é/1", "e/1", "Z/1", "a/\xff", "a/b\x01"}
	changes := map[string]string{}
	for i, id := range ids {
		changes[id] = fmt.Sprintf("out %d", i)
	}
	mustSaveRun(t, r, "rp-order", `{}`, changes)
	sorted := sortedCopy(ids)
	for _, page := range []int{1, 3, 100} {
		got, outs := allChanges(t, r, "rp-order", page)
		if !slices.Equal(got, sorted) {
			t.Errorf("page %d: ids %q, want %q", page, got, sorted)
		}
		for i, id := range got {
			if i < len(outs) && outs[i] != changes[id] {
				t.Errorf("page %d: %q outcome %q, want %q", page, id, outs[i], changes[id])
			}
		}
	}
	// After an ID that is not stored: from the next one in byte order.
	for _, after := range []string{"a/", "a/a", "a/b/", "a.", "a1", "\x00", "\xff", "é"} {
		got, _, err := r.RunChanges(ctx, "rp-order", after, 4)
		if want := firstAfter(sorted, after, 4); err != nil || !equalStrings(got, want) {
			t.Errorf("after %q: %q, %v; want %q", after, got, err, want)
		}
	}
}

func testRunLargeSave(t *testing.T, o Ops) {
	ctx, r := ctxOf(t), o.Runs
	// A batch of 1,234 changes and a state of 1.2 MB (a large batch announced in flight)
	// are one save, kept whole.
	changes := map[string]string{}
	var want []string
	for i := range 1234 {
		id := fmt.Sprintf("fac-%02d/src-%05d", i%7, i)
		changes[id] = "issued URN:UVCI:01:VN:" + fmt.Sprint(i)
		want = append(want, id)
	}
	slices.Sort(want)
	big := make([]byte, 1_200_000)
	for i := range big {
		big[i] = byte(i * 7 % 251) // not UTF-8, not compressible to nothing
	}
	if err := r.SaveRun(ctx, "rp-big", big, changes); err != nil {
		t.Fatalf("SaveRun: %v", err)
	}
	ids, outs := allChanges(t, r, "rp-big", 500)
	if !slices.Equal(ids, want) {
		t.Fatalf("changes: %d ids, want %d in order", len(ids), len(want))
	}
	for i, id := range ids {
		if outs[i] != changes[id] {
			t.Fatalf("%s: outcome %q, want %q", id, outs[i], changes[id])
		}
	}
	checkRunDoc := func(want []byte) {
		t.Helper()
		doc, err := r.LoadRun(ctx, "rp-big")
		if err != nil || !bytes.Equal(doc, want) {
			t.Errorf("LoadRun: %d bytes (%v), want %d", len(doc), err, len(want))
		}
		runs, err := r.ListRuns(ctx)
		if err != nil || len(runs) != 1 || !bytes.Equal(runs[0], want) {
			t.Errorf("ListRuns: %d runs (%v)", len(runs), err)
		}
	}
	checkRunDoc(big)
	// Small again, then large again: each state replaces the last whole.
	mustSaveRun(t, r, "rp-big", `{"small":true}`, nil)
	checkRunDoc([]byte(`{"small":true}`))
	bigger := append(bytes.Repeat([]byte("x"), 800_000), big...)
	if err := r.SaveRun(ctx, "rp-big", bigger, nil); err != nil {
		t.Fatal(err)
	}
	checkRunDoc(bigger)
	if err := r.SaveRun(ctx, "rp-big", big, nil); err != nil {
		t.Fatal(err)
	}
	checkRunDoc(big)
}

func testRunConcurrentSaves(t *testing.T, o Ops) {
	ctx, r := ctxOf(t), o.Runs
	const n = 6
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			errs[i] = r.SaveRun(ctx, "rp-c", fmt.Appendf(nil, `{"w":%d}`, i), map[string]string{fmt.Sprintf("u/%d", i): fmt.Sprint(i)})
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("save %d: %v", i, err)
		}
	}
	ids, _ := allChanges(t, r, "rp-c", 100)
	if len(ids) != n {
		t.Errorf("changes after %d concurrent saves: %q", n, ids)
	}
	doc, err := r.LoadRun(ctx, "rp-c")
	if err != nil || !bytes.HasPrefix(doc, []byte(`{"w":`)) {
		t.Errorf("LoadRun = %s, %v", doc, err)
	}
}

func testRunInvalid(t *testing.T, o Ops) {
	ctx, r := ctxOf(t), o.Runs
	for name, call := range map[string]func() error{
		"empty run id":       func() error { return r.SaveRun(ctx, "", []byte("{}"), nil) },
		"NUL in run id":      func() error { return r.SaveRun(ctx, "r\x00", []byte("{}"), nil) },
		"NUL in change id":   func() error { return r.SaveRun(ctx, "r", []byte("{}"), map[string]string{"a\x00": "x"}) },
		"empty change id":    func() error { return r.SaveRun(ctx, "r", []byte("{}"), map[string]string{"": "x"}) },
		"load empty run id":  func() error { _, err := r.LoadRun(ctx, ""); return err },
		"changes limit 0":    func() error { _, _, err := r.RunChanges(ctx, "r", "", 0); return err },
		"changes empty run":  func() error { _, _, err := r.RunChanges(ctx, "", "", 5); return err },
		"changes limit < 0":  func() error { _, _, err := r.RunChanges(ctx, "r", "", -1); return err },
		"NUL in load run id": func() error { _, err := r.LoadRun(ctx, "a\x00b"); return err },
	} {
		wantErr(t, name, call(), vaxpass.ErrInvalid)
	}
	// A refused save wrote nothing.
	if _, err := r.LoadRun(ctx, "r"); !errors.Is(err, vaxpass.ErrNotFound) {
		t.Errorf("a refused save stored the run: %v", err)
	}
}

var opsT0 = time.Date(2025, 5, 1, 0, 0, 0, 0, time.UTC)

func revocationEntry(ci string, at time.Time) revocation.Entry {
	return revocation.Entry{UCI: revocation.UCI(ci), CountryCodeUCI: revocation.CountryCodeUCI("VN", ci), UVCI: ci,
		Reason: "test", RevokedAt: at, Actor: "ops-1"}
}

func revocationNote(ci string, at time.Time) *audit.Entry {
	return &audit.Entry{At: at, Actor: "ops-1", Action: audit.ActionRevocation, Reason: "test", UVCIs: []string{ci}}
}

// auditUVCIs lists the first UVCI of every entry of action, in order.
func auditUVCIs(t *testing.T, a audit.Reader, action string) []string {
	t.Helper()
	var out []string
	if err := audit.All(ctxOf(t), a, audit.Query{Action: action, Limit: 100}, func(e audit.Entry) error {
		out = append(out, e.UVCIs...)
		return nil
	}); err != nil {
		t.Fatalf("audit entries: %v", err)
	}
	return out
}

func testRevocationAddOnce(t *testing.T, o Ops) {
	ctx, l := ctxOf(t), o.Revocations
	const ci = "URN:UVCI:01:VN:AAAA1111BBBB2222#X"
	e := revocationEntry(ci, opsT0)
	if _, found, err := l.RevocationByUCI(ctx, e.UCI); found || err != nil {
		t.Fatalf("RevocationByUCI before: found %v, %v", found, err)
	}
	if n, err := l.RevocationCount(ctx); n != 0 || err != nil {
		t.Fatalf("RevocationCount of nothing = %d, %v", n, err)
	}
	added, err := l.AddRevocation(ctx, e, revocationNote(ci, opsT0))
	if err != nil || !added {
		t.Fatalf("AddRevocation = %v, %v", added, err)
	}
	// Again, as a retry or a second operator would: nothing is written, not even the note.
	again := e
	again.Reason, again.RevokedAt = "other", opsT0.Add(time.Hour)
	added, err = l.AddRevocation(ctx, again, revocationNote(ci, opsT0.Add(time.Hour)))
	if err != nil || added {
		t.Fatalf("AddRevocation of a listed UCI = %v, %v; want false, nil", added, err)
	}
	got, found, err := l.RevocationByUCI(ctx, e.UCI)
	if err != nil || !found {
		t.Fatalf("RevocationByUCI = found %v, %v", found, err)
	}
	sameJSON(t, "RevocationByUCI", got, e)
	if notes := auditUVCIs(t, o.Audit, audit.ActionRevocation); !slices.Equal(notes, []string{ci}) {
		t.Errorf("revocation notes in the audit trail: %q, want one", notes)
	}
	// Without a note.
	const ci2 = "URN:UVCI:01:VN:CCCC3333DDDD4444#Y"
	if added, err := l.AddRevocation(ctx, revocationEntry(ci2, opsT0), nil); err != nil || !added {
		t.Fatalf("AddRevocation without a note = %v, %v", added, err)
	}
	if n, err := l.RevocationCount(ctx); n != 2 || err != nil {
		t.Errorf("RevocationCount = %d, %v; want 2", n, err)
	}
	if _, found, err := l.RevocationByUCI(ctx, revocation.UCI("URN:UVCI:01:VN:NOTLISTED#Z")); found || err != nil {
		t.Errorf("RevocationByUCI of an unlisted UCI: found %v, %v", found, err)
	}
}

func testRevocationOrder(t *testing.T, o Ops) {
	ctx, l := ctxOf(t), o.Revocations
	var want []string
	for i := range 23 {
		e := revocationEntry(fmt.Sprintf("URN:UVCI:01:VN:ORDER%04d#K", i), opsT0.Add(time.Duration(i)*time.Minute))
		if added, err := l.AddRevocation(ctx, e, nil); err != nil || !added {
			t.Fatalf("AddRevocation %d = %v, %v", i, added, err)
		}
		want = append(want, e.UCI.String())
	}
	slices.Sort(want)
	list := func(after *revocation.Hash, limit int) []string {
		t.Helper()
		page, err := l.Revocations(ctx, after, limit)
		if err != nil {
			t.Fatalf("Revocations: %v", err)
		}
		var out []string
		for _, e := range page {
			out = append(out, e.UCI.String())
		}
		return out
	}
	var got []string
	var after *revocation.Hash
	for {
		page := list(after, 5)
		if after != nil && len(page) > 0 && page[0] <= after.String() {
			t.Fatalf("Revocations after %s starts at %s: paging does not advance", after, page[0])
		}
		got = append(got, page...)
		if len(page) < 5 {
			break
		}
		h, err := revocation.ParseHash(page[len(page)-1])
		if err != nil {
			t.Fatal(err)
		}
		after = &h
	}
	if !slices.Equal(got, want) {
		t.Errorf("paged revocations:\n got %q\nwant %q", got, want)
	}
	// After a hash that is not listed: from the next one in byte order.
	for _, mid := range []revocation.Hash{{0x80}, {0x00}, {0xff, 0xff}} {
		m := mid
		if got, want := list(&m, 4), firstAfter(want, m.String(), 4); !equalStrings(got, want) {
			t.Errorf("after %s: %q, want %q", m, got, want)
		}
	}
	if n, err := l.RevocationCount(ctx); n != len(want) || err != nil {
		t.Errorf("RevocationCount = %d, %v; want %d", n, err, len(want))
	}
}

func testRevocationInvalid(t *testing.T, o Ops) {
	ctx, l := ctxOf(t), o.Revocations
	if _, err := l.Revocations(ctx, nil, 0); !errors.Is(err, vaxpass.ErrInvalid) {
		t.Errorf("Revocations limit 0: %v, want ErrInvalid", err)
	}
	if added, err := l.AddRevocation(ctx, revocation.Entry{UVCI: "x"}, nil); err == nil || added {
		t.Errorf("AddRevocation without a UCI hash = %v, %v; want an error", added, err)
	}
	if n, err := l.RevocationCount(ctx); n != 0 || err != nil {
		t.Errorf("RevocationCount after refusals = %d, %v", n, err)
	}
}

func testAuditQuery(t *testing.T, o Ops) {
	ctx, a := ctxOf(t), o.Audit
	actions := []string{audit.ActionCorrection, audit.ActionRevocation, audit.ActionRenewal}
	// 30 hours from midnight: two days.
	for i := range 30 {
		e := audit.Entry{At: opsT0.Add(time.Duration(i) * time.Hour), Actor: fmt.Sprintf("ops-%d", i%2), Action: actions[i%3],
			UVCIs: []string{fmt.Sprintf("U%d", i)}}
		if err := a.Append(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	// Entries at the same instant keep the order they were appended in.
	tie := opsT0.Add(40 * time.Hour)
	for _, id := range []string{"same-1", "same-2", "same-3"} {
		if err := a.Append(ctx, audit.Entry{At: tie, Actor: "x", Action: "tie", UVCIs: []string{id}}); err != nil {
			t.Fatal(err)
		}
	}
	collect := func(q audit.Query) []string {
		t.Helper()
		var ids []string
		seen := map[string]bool{}
		if err := audit.All(ctx, a, q, func(e audit.Entry) error {
			if seen[e.ID] {
				return fmt.Errorf("entry %s twice: paging repeats", e.ID)
			}
			seen[e.ID] = true
			ids = append(ids, e.UVCIs[0])
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		return ids
	}
	us := func(from, to int) []string {
		var out []string
		for i := from; i < to; i++ {
			out = append(out, fmt.Sprintf("U%d", i))
		}
		return out
	}
	tests := []struct {
		name string
		q    audit.Query
		want []string
	}{
		{"all", audit.Query{Limit: 7}, append(us(0, 30), "same-1", "same-2", "same-3")},
		{"range", audit.Query{From: opsT0.Add(10 * time.Hour), To: opsT0.Add(20 * time.Hour), Limit: 3}, us(10, 20)},
		{"across midnight", audit.Query{From: opsT0.Add(22 * time.Hour), To: opsT0.Add(26 * time.Hour), Limit: 2}, us(22, 26)},
		{"from", audit.Query{From: opsT0.Add(28*time.Hour + time.Nanosecond), Limit: 1}, []string{"U29", "same-1", "same-2", "same-3"}},
		{"to", audit.Query{To: opsT0.Add(3 * time.Hour), Limit: 100}, us(0, 3)},
		{"action", audit.Query{Action: audit.ActionRevocation, Limit: 2}, []string{"U1", "U4", "U7", "U10", "U13", "U16", "U19", "U22", "U25", "U28"}},
		{"actor and action", audit.Query{Action: audit.ActionCorrection, Actor: "ops-1", Limit: 100}, []string{"U3", "U9", "U15", "U21", "U27"}},
		{"tie", audit.Query{Action: "tie", Limit: 1}, []string{"same-1", "same-2", "same-3"}},
		{"none", audit.Query{Action: "nothing", Limit: 5}, nil},
		{"empty range", audit.Query{From: opsT0.Add(100 * time.Hour), Limit: 5}, nil},
	}
	for _, tc := range tests {
		if got := collect(tc.q); !equalStrings(got, tc.want) {
			t.Errorf("%s: %q, want %q", tc.name, got, tc.want)
		}
	}
	// A page that exactly ends the matches says there is no next page; one that does not
	// names its last entry as the cursor.
	page, next, err := a.Entries(ctx, audit.Query{Action: "tie", Limit: 3})
	if err != nil || len(page) != 3 || next != "" {
		t.Errorf("exact page: %d entries, next %q, %v", len(page), next, err)
	}
	for i := 1; i < len(page); i++ {
		if page[i-1].ID == "" || page[i-1].ID >= page[i].ID {
			t.Errorf("IDs %q %q not increasing", page[i-1].ID, page[i].ID)
		}
	}
	page, next, err = a.Entries(ctx, audit.Query{Limit: 2})
	if err != nil || len(page) != 2 || next != page[1].ID {
		t.Fatalf("first page: %d entries, next %q, %v", len(page), next, err)
	}
	if !page[0].At.Equal(opsT0) || page[0].Actor != "ops-0" || page[0].Action != audit.ActionCorrection {
		t.Errorf("first entry read back as %+v", page[0])
	}
	// The cursor of an entry, with a range that starts before it.
	rest, _, err := a.Entries(ctx, audit.Query{After: page[0].ID, From: opsT0, To: opsT0.Add(3 * time.Hour), Limit: 10})
	var got []string
	for _, e := range rest {
		got = append(got, e.UVCIs[0])
	}
	if err != nil || !equalStrings(got, []string{"U1", "U2"}) {
		t.Errorf("after the first entry: %q, %v", got, err)
	}
}

func testAuditInvalid(t *testing.T, o Ops) {
	ctx, a := ctxOf(t), o.Audit
	if err := a.Append(ctx, audit.Entry{At: opsT0, Actor: "", Action: "x"}); !errors.Is(err, audit.ErrInvalid) {
		t.Errorf("Append without actor = %v, want audit.ErrInvalid", err)
	}
	if err := a.Append(ctx, audit.Entry{At: opsT0, Actor: "a", Action: "Not A Word"}); !errors.Is(err, audit.ErrInvalid) {
		t.Errorf("Append with a bad action = %v, want audit.ErrInvalid", err)
	}
	for name, q := range map[string]audit.Query{
		"limit 0":       {Limit: 0},
		"limit large":   {Limit: audit.MaxLimit + 1},
		"bad cursor":    {Limit: 1, After: "zz"},
		"from after to": {Limit: 1, From: opsT0.Add(time.Hour), To: opsT0},
	} {
		if _, _, err := a.Entries(ctx, q); !errors.Is(err, audit.ErrInvalid) {
			t.Errorf("Entries %s = %v, want audit.ErrInvalid", name, err)
		}
	}
	page, _, err := a.Entries(ctx, audit.Query{Limit: 10})
	if err != nil || len(page) != 0 {
		t.Errorf("refused entries were stored: %v %v", page, err)
	}
}
