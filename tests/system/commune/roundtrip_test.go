// Package commune holds the acceptance test of the commune's spreadsheet round trip
// (issue 13, acceptance 1): the clerk's worklist goes through LibreOffice (to CSV and back,
// and as .xlsx opened and saved), corrections typed as a clerk types them come back
// (DD/MM/YYYY, Nữ, an ID typed as a number), the corrected people become VERIFIED, and no
// stored ID, phone or commune code changed other than by a correction.
package commune

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/xuri/excelize/v2"

	"github.com/vaxpass/vaxpass/shared/domain/access"
	"github.com/vaxpass/vaxpass/shared/domain/dose"
	"github.com/vaxpass/vaxpass/shared/domain/match"
	"github.com/vaxpass/vaxpass/shared/testkit/server"
	"github.com/vaxpass/vaxpass/shared/vaxpass"
	"github.com/vaxpass/vaxpass/shared/wire/local"
)

const (
	facilityID = "site-1"
	// A synthetic 7-digit commune code: the 10002 a spreadsheet makes of it would pass
	// for a 5-digit code, so only the stored value can tell.
	commune  = "0010002"
	xlsxType = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
	// csvIn reads a CSV as UTF-8, comma-separated, as a clerk's LibreOffice does.
	csvIn = "CSV Text - txt - csv (StarCalc):44,34,76,1"
)

// person is a registry person and the record the facility sent with a mistake, and what
// the clerk types to correct it (column -> cell; an int is typed as a number).
type person struct {
	reg     match.Person
	rec     dose.Record
	status  match.Status // after matching
	via     string       // "xlsx" or "csv": the round trip that corrects it; "" none
	correct map[string]any
	wantID  string // the ID stored in the end
}

func people() []*person {
	rec := func(sid, name, dob, gender, id, phone string) dose.Record {
		return dose.Record{SourceID: sid, FullName: name, DOB: dob, Gender: gender, IDNumber: id, Phone: phone,
			CommuneCode: commune, Vaccine: "PFIZER", DoseNumber: 1, VaccinatedOn: "2021-08-01"}
	}
	return []*person{
		{ // a misspelt name
			reg: match.Person{IDNumber: "001085012345", FullName: "Nguyễn Văn An", DOB: "1985-03-24", Gender: "male"},
			rec: rec("HN-001", "Trần Văn Bảo", "1985-03-24", "male", "001085012345", "0912345001"), status: match.Mismatch,
			via: "xlsx", correct: map[string]any{"corrected_full_name": "Nguyễn Văn An"},
		},
		{ // a woman recorded as a man
			reg: match.Person{IDNumber: "001190054321", FullName: "Trần Thị Bích", DOB: "1990-07-15", Gender: "female"},
			rec: rec("HN-002", "Trần Thị Bích", "1990-07-15", "male", "001190054321", "0912345002"), status: match.Mismatch,
			via: "xlsx", correct: map[string]any{"corrected_gender": "Nữ"},
		},
		{ // two digits of the ID swapped; the clerk types the right one as a number
			reg: match.Person{IDNumber: "001308764214", FullName: "Phạm Thị Dung", DOB: "2008-05-14", Gender: "female"},
			rec: rec("HN-003", "Phạm Thị Dung", "2008-05-14", "female", "001308764241", "0912345003"), status: match.NotFound,
			via: "xlsx", correct: map[string]any{"corrected_id_number": 1308764214}, wantID: "001308764214",
		},
		{ // a wrong date of birth, typed back DD/MM/YYYY
			reg: match.Person{IDNumber: "001088098765", FullName: "Lê Văn Cường", DOB: "1988-11-23", Gender: "male"},
			rec: rec("HN-004", "Lê Văn Cường", "1988-11-22", "male", "001088098765", "0912345004"), status: match.Mismatch,
			// The clerk also overwrote the read-only phone: reported, not written.
			via: "csv", correct: map[string]any{"corrected_dob": "23/11/1988", "phone": "0999999999"},
		},
		{ // an ID of no province, and recorded as a man: both corrected, the ID typed as text
			reg: match.Person{IDNumber: "001192011223", FullName: "Đỗ Thị Hoa", DOB: "1992-02-18", Gender: "female"},
			rec: rec("HN-005", "Đỗ Thị Hoa", "1992-02-18", "male", "991192011223", "0912345005"), status: match.InvalidID,
			via: "csv", correct: map[string]any{"corrected_gender": "Nữ", "corrected_id_number": "001192011223"}, wantID: "001192011223",
		},
		{
			reg: match.Person{IDNumber: "001087033445", FullName: "Vũ Văn Khánh", DOB: "1987-09-30", Gender: "male"},
			rec: rec("HN-006", "Vũ Văn Khánh", "1987-09-30", "male", "001087034435", "0912345006"), status: match.NotFound,
			via: "csv", correct: map[string]any{"corrected_id_number": 1087033445}, wantID: "001087033445",
		},
		{ // left as it is: stays MISMATCH
			reg: match.Person{IDNumber: "001091044556", FullName: "Hoàng Văn Long", DOB: "1991-04-19", Gender: "male"},
			rec: rec("HN-007", "Hoàng Văn Lân", "1991-04-19", "male", "001091044556", "0912345007"), status: match.Mismatch,
		},
	}
}

func TestWorklistThroughLibreOffice(t *testing.T) {
	office := findOffice(t)
	ctx := context.Background()
	sys := server.Open(t, server.Options{Options: local.Options{PollInterval: 5 * time.Millisecond, FacilitySignEvery: -1},
		Facility: facilityID, NoSync: true})
	ps := people()
	var reg []match.Person
	for _, p := range ps {
		reg = append(reg, p.reg)
	}
	if _, err := sys.Local.DB.LoadRegistry(ctx, slices.Values(reg)); err != nil {
		t.Fatal(err)
	}
	fac := server.NewClient(sys.URL, sys.FacilityKey)
	var recs []dose.Record
	for _, p := range ps {
		recs = append(recs, p.rec)
	}
	if r := fac.Call(t, "POST", "/v1/doses", map[string]any{"records": recs}); r.Status != http.StatusOK || !strings.Contains(string(r.Body), `"accepted":7`) {
		t.Fatalf("upload: %s", r)
	}
	waitStatuses(t, sys, ps, func(p *person) match.Status { return p.status })
	before := stored(t, sys, ps)

	clerkKey, _, err := sys.Local.Sys.NewKey(ctx, access.Clerk, commune)
	if err != nil {
		t.Fatal(err)
	}
	clerk := server.NewClient(sys.URL, clerkKey)
	dir := t.TempDir()
	if d := os.Getenv("ROUNDTRIP_KEEP"); d != "" {
		dir = d
	}
	statuses := []match.Status{match.Mismatch, match.NotFound, match.InvalidID}
	for _, st := range statuses {
		for _, format := range []string{"xlsx", "csv"} {
			r := clerk.Do(t, "GET", "/v1/worklist?status="+string(st)+"&format="+format, nil, "")
			if r.Status != http.StatusOK {
				t.Fatalf("clerk's %s worklist: %s", st, r)
			}
			write(t, filepath.Join(dir, "in", string(st)+"."+format), r.Body)
		}
	}

	// The .xlsx worklists opened and saved in LibreOffice, the corrections typed in.
	office.convert(t, "xlsx", "", filepath.Join(dir, "xlsx-saved"), glob(t, dir, "in/*.xlsx")...)
	for _, st := range statuses {
		path := filepath.Join(dir, "xlsx-saved", string(st)+".xlsx")
		typeIntoXLSX(t, path, ps, "xlsx")
		rep := importSheet(t, clerk, read(t, path))
		if rep.Rejected != 0 {
			t.Errorf("xlsx %s: rejected rows: %+v", st, rep.Results)
		}
		for _, r := range rep.Results {
			if len(r.Warnings) > 0 {
				t.Errorf("xlsx %s row %d: warnings %+v (LibreOffice changed no read-only cell)", st, r.Row, r.Warnings)
			}
		}
	}

	// The CSV worklists opened in LibreOffice and saved as CSV (which drops leading
	// zeros), corrected as text, opened again and saved as .xlsx, the way a clerk sends a
	// CSV back.
	office.convert(t, "csv", csvIn, filepath.Join(dir, "csv-saved"), glob(t, dir, "in/*.csv")...)
	saved := string(read(t, filepath.Join(dir, "csv-saved", string(match.Mismatch)+".csv")))
	if strings.Contains(saved, ","+commune+",") || !strings.Contains(saved, ","+strings.TrimLeft(commune, "0")+",") ||
		strings.Contains(saved, "0912345001") || !strings.Contains(saved, "912345001") {
		t.Fatalf("LibreOffice kept the leading zeros of the CSV: the round trip proves nothing:\n%s", saved)
	}
	for _, st := range statuses {
		typeIntoCSV(t, filepath.Join(dir, "csv-saved", string(st)+".csv"), ps, "csv")
	}
	office.convert(t, "xlsx", csvIn, filepath.Join(dir, "csv-as-xlsx"), glob(t, dir, "csv-saved/*.csv")...)
	phoneWarned := false
	for _, st := range statuses {
		rep := importSheet(t, clerk, read(t, filepath.Join(dir, "csv-as-xlsx", string(st)+".xlsx")))
		if rep.Rejected != 0 {
			t.Errorf("csv %s: rejected rows: %+v", st, rep.Results)
		}
		for _, r := range rep.Results {
			for _, w := range r.Warnings {
				phoneWarned = phoneWarned || r.SourceID == "HN-004" && w.Field == "phone"
				// Only the rows corrected by the .xlsx round trip differ from the old list.
				p := bySource(ps, r.SourceID)
				if p == nil || (p.via != "xlsx" && !(p.rec.SourceID == "HN-004" && w.Field == "phone")) || w.Code != "read_only_changed" {
					t.Errorf("csv %s row %d (%s): warning %+v", st, r.Row, r.SourceID, w)
				}
			}
		}
	}

	if !phoneWarned {
		t.Error("HN-004's overwritten read-only phone was not reported")
	}
	waitStatuses(t, sys, ps, func(p *person) match.Status {
		if p.via != "" {
			return match.Verified
		}
		return p.status
	})
	after := stored(t, sys, ps)
	for _, p := range ps {
		b, a := before[p.rec.SourceID], after[p.rec.SourceID]
		wantID := b.IDNumber
		if p.wantID != "" {
			wantID = p.wantID
		}
		if a.IDNumber != wantID || a.Phone != b.Phone || a.CommuneCode != b.CommuneCode {
			t.Errorf("%s: stored ID/phone/commune %q %q %q, want %q %q %q", p.rec.SourceID,
				a.IDNumber, a.Phone, a.CommuneCode, wantID, b.Phone, b.CommuneCode)
		}
	}
	if a := after["HN-004"]; a.DOB != "1988-11-23" {
		t.Errorf("HN-004 dob %q, want 1988-11-23 (typed 23/11/1988)", a.DOB)
	}
	if a := after["HN-002"]; a.Gender != dose.Female {
		t.Errorf("HN-002 gender %q, want female (typed Nữ)", a.Gender)
	}
}

// office runs LibreOffice headless with a profile of its own.
type office struct{ bin, profile string }

// findOffice finds soffice: without it the test is skipped, or fails in CI.
func findOffice(t *testing.T) *office {
	t.Helper()
	bin, err := exec.LookPath("soffice")
	if err != nil {
		if v := os.Getenv("CI"); v != "" && v != "false" && v != "0" {
			t.Fatalf("soffice not found (%v); CI=%s: the LibreOffice round trip must run in CI (.ci/setup installs libreoffice-calc-nogui)", err, v)
		}
		t.Skipf("soffice not found (%v): install libreoffice-calc-nogui to run the round trip", err)
	}
	return &office{bin: bin, profile: t.TempDir()}
}

// convert converts files to format into outDir, in one start of LibreOffice (each start
// costs seconds). infilter, when set, says how to read the inputs.
func (o *office) convert(t *testing.T, format, infilter, outDir string, files ...string) {
	t.Helper()
	args := []string{"-env:UserInstallation=file://" + o.profile, "--headless", "--norestore"}
	if infilter != "" {
		args = append(args, "--infilter="+infilter)
	}
	args = append(args, "--convert-to", format, "--outdir", outDir)
	args = append(args, files...)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, o.bin, args...)
	cmd.Env = append(os.Environ(), "HOME="+o.profile)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("soffice --convert-to %s: %v\n%s", format, err, out)
	}
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), filepath.Ext(f)) + "." + format
		if _, err := os.Stat(filepath.Join(outDir, name)); err != nil {
			t.Fatalf("soffice made no %s: %v\n%s", name, err, out)
		}
	}
}

// typeIntoXLSX types the corrections of the people corrected by via into the sheet.
func typeIntoXLSX(t *testing.T, path string, ps []*person, via string) {
	t.Helper()
	f, err := excelize.OpenFile(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sheet := f.GetSheetName(0)
	rows, err := f.GetRows(sheet)
	if err != nil || len(rows) == 0 {
		t.Fatalf("%s: %v", path, err)
	}
	col := columnsOf(t, rows[0])
	for i, row := range rows[1:] {
		p := bySource(ps, cellAt(row, col["source_id"]))
		if p == nil || p.via != via {
			continue
		}
		for name, v := range p.correct {
			cell, _ := excelize.CoordinatesToCellName(col[name]+1, i+2)
			if err := f.SetCellValue(sheet, cell, v); err != nil { // an int: a number cell, as typed into Excel
				t.Fatal(err)
			}
		}
	}
	if err := f.Save(); err != nil {
		t.Fatal(err)
	}
}

// typeIntoCSV types the corrections into a CSV as text, as a clerk types them.
func typeIntoCSV(t *testing.T, path string, ps []*person, via string) {
	t.Helper()
	rows, err := csv.NewReader(bytes.NewReader(bytes.TrimPrefix(read(t, path), []byte("\ufeff")))).ReadAll()
	if err != nil || len(rows) == 0 {
		t.Fatalf("%s: %v", path, err)
	}
	col := columnsOf(t, rows[0])
	for _, row := range rows[1:] {
		p := bySource(ps, cellAt(row, col["source_id"]))
		if p == nil || p.via != via {
			continue
		}
		for name, v := range p.correct {
			row[col[name]] = fmt.Sprint(v)
		}
	}
	var buf bytes.Buffer
	w := csv.NewWriter(&buf)
	if err := w.WriteAll(rows); err != nil {
		t.Fatal(err)
	}
	write(t, path, buf.Bytes())
}

// columnsOf maps field names to columns by the "Nhãn (field_name)" header.
func columnsOf(t *testing.T, header []string) map[string]int {
	t.Helper()
	col := map[string]int{}
	for i, h := range header {
		if open := strings.LastIndexByte(h, '('); open >= 0 && strings.HasSuffix(h, ")") {
			col[h[open+1:len(h)-1]] = i
		}
	}
	for _, name := range []string{"source_id", "phone", "corrected_full_name", "corrected_dob", "corrected_gender", "corrected_id_number", "facility_id"} {
		if _, ok := col[name]; !ok {
			t.Fatalf("no column %s in %q", name, header)
		}
	}
	return col
}

func cellAt(row []string, i int) string {
	if i < len(row) {
		return row[i]
	}
	return ""
}

func bySource(ps []*person, sid string) *person {
	for _, p := range ps {
		if p.rec.SourceID == sid {
			return p
		}
	}
	return nil
}

type importReport struct {
	Accepted, Duplicates, Rejected int
	Results                        []struct {
		Row      int               `json:"row"`
		SourceID string            `json:"source_id"`
		Status   string            `json:"status"`
		Errors   []dose.FieldError `json:"errors"`
		Warnings []dose.FieldError `json:"warnings"`
	}
}

func importSheet(t *testing.T, c *server.Client, body []byte) importReport {
	t.Helper()
	r := c.Do(t, "POST", "/v1/imports", body, xlsxType)
	var rep importReport
	if r.Status != http.StatusOK || json.Unmarshal(r.Body, &rep) != nil {
		t.Fatalf("import: %s", r)
	}
	return rep
}

// stored reads every person's stored record.
func stored(t *testing.T, sys *server.System, ps []*person) map[string]dose.Record {
	t.Helper()
	out := map[string]dose.Record{}
	for _, p := range ps {
		d, err := sys.Local.Store.GetDose(context.Background(), vaxpass.DoseKey{FacilityID: facilityID, SourceID: p.rec.SourceID})
		if err != nil {
			t.Fatal(err)
		}
		out[p.rec.SourceID] = d.Record
	}
	return out
}

// waitStatuses waits until every record has the status want gives it.
func waitStatuses(t *testing.T, sys *server.System, ps []*person, want func(*person) match.Status) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		var wrong []string
		for _, p := range ps {
			d, err := sys.Local.Store.GetDose(context.Background(), vaxpass.DoseKey{FacilityID: facilityID, SourceID: p.rec.SourceID})
			if err != nil && !errors.Is(err, vaxpass.ErrNotFound) {
				t.Fatal(err)
			}
			if d.Match.Status != want(p) {
				wrong = append(wrong, p.rec.SourceID+" "+string(d.Match.Status)+" "+strings.Join(d.Match.Reasons, "+")+" want "+string(want(p)))
			}
		}
		if len(wrong) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("statuses not reached: %s", strings.Join(wrong, "; "))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func glob(t *testing.T, dir, pattern string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, pattern))
	if err != nil || len(m) == 0 {
		t.Fatalf("no %s in %s: %v", pattern, dir, err)
	}
	return m
}

func read(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func write(t *testing.T, path string, b []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}
