package matching

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/xuri/excelize/v2"

	"github.com/vaxpass/vaxpass/shared/domain/dose"
	"github.com/vaxpass/vaxpass/shared/domain/match"
	"github.com/vaxpass/vaxpass/shared/domain/vnname"
	"github.com/vaxpass/vaxpass/shared/stage/worklist"
	"github.com/vaxpass/vaxpass/shared/tool/registry"
	"github.com/vaxpass/vaxpass/shared/tool/synth"
)

// importDay is "today" for the import: after the last generated dose (2022-06-30).
var importDay = time.Date(2022, 7, 1, 0, 0, 0, 0, time.UTC)

// TestWorklistCorrectionsVerify is the cleaning loop of the programme: the records that
// failed matching go to the commune as an .xlsx worklist; the police type the registry's
// details into the corrected_* columns; the import applies them and the next match
// verifies those people. A few cells are typed wrong; their rows come back rejected with
// row, column and reason, and their people stay as they were.
func TestWorklistCorrectionsVerify(t *testing.T) {
	dir := t.TempDir()
	if _, err := synth.WriteDir(context.Background(), dir, synth.Config{People: 20000, Seed: 7}, nil); err != nil {
		t.Fatal(err)
	}
	regFile, err := os.Open(filepath.Join(dir, synth.RegistryFile))
	if err != nil {
		t.Fatal(err)
	}
	reg, _, err := registry.LoadMemory(regFile, func(err error) { t.Errorf("registry line: %v", err) }, nil)
	regFile.Close()
	if err != nil {
		t.Fatal(err)
	}
	people := loadRegistry(t, filepath.Join(dir, synth.RegistryFile))
	matcher := match.New(reg)
	matcher.Now = func() time.Time { return importDay }

	// First match.
	records, truths := readGenerated(t, dir)
	var failed []worklist.Row
	for i, r := range records {
		res, err := matcher.Match(r)
		if err != nil {
			t.Fatal(err)
		}
		if res.Status != truths[i].Status {
			t.Fatalf("%s: first match %s, generator planted %s", r.SourceID, res.Status, truths[i].Status)
		}
		if res.Status != match.Verified {
			failed = append(failed, worklist.Row{Record: r, Result: res})
		}
	}
	if len(failed) < 1000 {
		t.Fatalf("only %d failed records: too few to exercise the worklist", len(failed))
	}

	// The worklist as the commune receives it.
	var sheet bytes.Buffer
	if n, err := worklist.WriteXLSX(&sheet, slices.Values(failed)); err != nil || n != len(failed) {
		t.Fatalf("WriteXLSX = %d, %v", n, err)
	}

	// The officer's edits: the registry's details where the record differs; a bad date or
	// gender now and then.
	f, err := excelize.OpenReader(&sheet)
	if err != nil {
		t.Fatal(err)
	}
	sheetRows, err := f.GetRows(worklist.SheetName, excelize.Options{RawCellValue: true})
	if err != nil {
		t.Fatal(err)
	}
	col := func(name string) string {
		// The header is "Nhãn (field_name)".
		i := slices.IndexFunc(sheetRows[0], func(h string) bool { return strings.HasSuffix(h, "("+name+")") })
		if i < 0 {
			t.Fatalf("worklist has no column %s", name)
		}
		c, _ := excelize.ColumnNumberToName(i + 1)
		return c
	}
	truthBySource := map[string]synth.Truth{}
	for _, tr := range truths {
		truthBySource[tr.SourceID] = tr
	}
	type badEdit struct{ field, code string }
	wantRejected := map[int]badEdit{}
	edited := map[string]bool{} // source_id -> corrected
	for i, row := range failed {
		rowNum := i + 2
		if sheetRows[rowNum-1][0] != row.Record.SourceID {
			t.Fatalf("row %d holds %q, want %q", rowNum, sheetRows[rowNum-1][0], row.Record.SourceID)
		}
		tr := truthBySource[row.Record.SourceID]
		p := people[tr.RegistryID]
		put := func(column, value string) {
			if err := f.SetCellStr(worklist.SheetName, col(column)+strconv.Itoa(rowNum), value); err != nil {
				t.Fatal(err)
			}
		}
		switch {
		case i%97 == 5:
			put("corrected_dob", "31/02/"+p.dob[:4]) // a date as people write it, and not a real one
			wantRejected[rowNum] = badEdit{"corrected_dob", dose.CodeFormat}
			continue
		case i%89 == 7:
			put("corrected_gender", "khác") // neither male nor female (Nam/Nữ are taken)
			wantRejected[rowNum] = badEdit{"corrected_gender", dose.CodeValue}
			continue
		}
		r := row.Record
		if vnname.Key(r.FullName) != vnname.Key(p.fullName) {
			put("corrected_full_name", p.fullName)
		}
		if d, err := dose.ParsePartialDate(r.DOB); err != nil || !d.Agrees(mustDate(t, p.dob)) {
			put("corrected_dob", p.dob)
		}
		if r.Gender != p.gender {
			put("corrected_gender", p.gender)
		}
		if row.Result.Status != match.Mismatch {
			// The police found the number; half of them type it the way it is printed.
			id := tr.RegistryID
			if i%2 == 0 {
				id = id[:3] + " " + id[3:6] + " " + id[6:]
			}
			put("corrected_id_number", id)
		}
		put("note", "đã xác minh với công an xã")
		edited[r.SourceID] = true
	}
	var filled bytes.Buffer
	if _, err := f.WriteTo(&filled); err != nil {
		t.Fatal(err)
	}
	f.Close()

	// Import.
	res, err := worklist.ReadXLSX(&filled, importDay, worklist.DefaultLimits())
	if err != nil {
		t.Fatal(err)
	}
	if !res.Worklist || len(res.Accepted) != len(edited) || len(res.Rejected) != len(wantRejected) {
		t.Fatalf("import: worklist %v, %d accepted (want %d), %d rejected (want %d)",
			res.Worklist, len(res.Accepted), len(edited), len(res.Rejected), len(wantRejected))
	}
	for _, r := range res.Rejected {
		want, ok := wantRejected[r.Row]
		if !ok || len(r.Errors) != 1 || r.Errors[0].Field != want.field || r.Errors[0].Code != want.code || r.Errors[0].Message == "" {
			t.Errorf("row %d rejected with %+v, want %+v", r.Row, r.Errors, want)
		}
		if r.SourceID != failed[r.Row-2].Record.SourceID {
			t.Errorf("row %d rejection names %q", r.Row, r.SourceID)
		}
	}

	// The next match: every corrected record verifies; the rest are as before.
	corrected := map[string]dose.Record{}
	for _, a := range res.Accepted {
		if len(a.Corrected) == 0 {
			t.Errorf("row %d accepted with no correction", a.Row)
		}
		corrected[a.Record.SourceID] = a.Record
	}
	verifiedNow := 0
	for i, r := range records {
		if c, ok := corrected[r.SourceID]; ok {
			r = c
		}
		got, err := matcher.Match(r)
		if err != nil {
			t.Fatal(err)
		}
		want := truths[i].Status
		if edited[r.SourceID] {
			want = match.Verified
			verifiedNow++
		}
		if got.Status != want {
			t.Errorf("%s (class %s): second match %s %v, want %s", r.SourceID, truths[i].Class, got.Status, got.Reasons, want)
		}
	}
	t.Logf("%d records, %d on the worklist, %d corrected and now VERIFIED, %d rows rejected",
		len(records), len(failed), verifiedNow, len(res.Rejected))
}

func readGenerated(t *testing.T, dir string) ([]dose.Record, []synth.Truth) {
	t.Helper()
	f, err := os.Open(filepath.Join(dir, synth.RecordsFile))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var records []dose.Record
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var r dose.Record
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatal(err)
		}
		records = append(records, r)
	}
	tf, err := os.Open(filepath.Join(dir, synth.TruthFile))
	if err != nil {
		t.Fatal(err)
	}
	defer tf.Close()
	var truths []synth.Truth
	if err := synth.ReadTruth(tf, func(tr synth.Truth) error { truths = append(truths, tr); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(records) != len(truths) {
		t.Fatalf("%d records, %d truth lines", len(records), len(truths))
	}
	return records, truths
}

func mustDate(t *testing.T, s string) dose.PartialDate {
	d, err := dose.ParsePartialDate(s)
	if err != nil {
		t.Fatalf("registry dob %q: %v", s, err)
	}
	return d
}
