package worklist

import (
	"bytes"
	"encoding/csv"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/xuri/excelize/v2"

	"github.com/vaxpass/vaxpass/shared/domain/dose"
	"github.com/vaxpass/vaxpass/shared/domain/match"
	"github.com/vaxpass/vaxpass/shared/stage/worklist/xlsx"
)

var today = time.Date(2022, 7, 1, 0, 0, 0, 0, time.UTC)

func sampleRows() []Row {
	rec := func(id, name, dob, gender, number, commune string, doseNumber int) dose.Record {
		return dose.Record{SourceID: id, FullName: name, DOB: dob, Gender: gender, IDNumber: number,
			Phone: "0901234567", Nationality: "VN", CommuneCode: commune, Vaccine: "PFIZER",
			DoseNumber: doseNumber, VaccinatedOn: "2021-09-15", Lot: "FF1234"}
	}
	return []Row{
		{Facility: "F1", Record: rec("s1", "Nguyễn Văn An", "1985-03-12", dose.Male, "079085012345", "0790001", 1),
			Result: match.Result{Status: match.Mismatch, Reasons: []string{match.ReasonName, match.ReasonDOB}}},
		{Facility: "F1", Record: rec("s2", "Trần Thị Bích", "1990", dose.Female, "", "0790001", 2),
			Result: match.Result{Status: match.NoID, Reasons: []string{}, Candidates: []match.Candidate{
				{Person: match.Person{IDNumber: "079190000001", FullName: "Trần Thị Bích", DOB: "1990-05-01", Gender: dose.Female}, Score: 0.8},
				{Person: match.Person{IDNumber: "001190000002", FullName: "Trần Thị Bích", DOB: "1990-11-30", Gender: dose.Female}, Score: 0.8},
			}}},
		{Facility: "F2", Record: rec("s3", "=HYPERLINK(\"http://x\")", "1970-01-01", dose.Male, "+84 12", "0010002", 1),
			Result: match.Result{Status: match.InvalidID, Reasons: []string{"ID_CHARACTERS"}}},
		{Facility: "F2", Record: rec("s4", "Lê Văn Tám", "1960-06-06", dose.Male, "001060000001", "0010002", 3),
			Result: match.Result{Status: match.Verified, Reasons: []string{}}},
	}
}

func TestSelect(t *testing.T) {
	rows := sampleRows()
	tests := []struct {
		f    Filter
		want []string
	}{
		{Filter{}, []string{"s1", "s2", "s3", "s4"}},
		{Filter{Status: match.Mismatch}, []string{"s1"}},
		{Filter{Facility: "F2"}, []string{"s3", "s4"}},
		{Filter{CommuneCode: "0790001"}, []string{"s1", "s2"}},
		{Filter{Status: match.Verified, CommuneCode: "0010002"}, []string{"s4"}},
		{Filter{Status: match.Verified, Facility: "F1"}, nil},
	}
	for _, tt := range tests {
		var got []string
		for r := range Select(slices.Values(rows), tt.f) {
			got = append(got, r.Record.SourceID)
		}
		if !slices.Equal(got, tt.want) {
			t.Errorf("Select(%+v) = %v, want %v", tt.f, got, tt.want)
		}
	}
	// Stopping early stops the source.
	for range Select(slices.Values(rows), Filter{}) {
		break
	}
}

func TestFormatCandidates(t *testing.T) {
	got := formatCandidates(sampleRows()[1].Result.Candidates)
	want := "079190000001 Trần Thị Bích 1990-05-01 female 0.80; 001190000002 Trần Thị Bích 1990-11-30 female 0.80"
	if got != want {
		t.Fatalf("got  %q\nwant %q", got, want)
	}
	if formatCandidates([]match.Candidate{{Score: 1}, {Score: 0.5}, {Score: 0.45}}) != "    1.00;     0.50;     0.45" {
		t.Fatalf("scores: %q", formatCandidates([]match.Candidate{{Score: 1}, {Score: 0.5}, {Score: 0.45}}))
	}
}

func TestCSVRoundTrip(t *testing.T) {
	rows := sampleRows()
	var buf bytes.Buffer
	n, err := WriteCSV(&buf, slices.Values(rows))
	if err != nil || n != len(rows) {
		t.Fatalf("WriteCSV = %d, %v", n, err)
	}
	if !bytes.HasPrefix(buf.Bytes(), []byte(utf8BOM)) {
		t.Fatal("no byte-order mark")
	}
	parsed, err := csv.NewReader(bytes.NewReader(buf.Bytes()[len(utf8BOM):])).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(parsed[0], Header()) || parsed[0][colIDNumber] != "Số CCCD/CMND (id_number)" {
		t.Fatalf("header %v", parsed[0])
	}
	if got := parsed[1][colReasons]; got != "NAME, DOB" {
		t.Errorf("reasons cell %q", got)
	}
	// Not disclosed: the candidates are a count, no registry value is in the list.
	if got := parsed[2][colCandidates]; got != "2" {
		t.Errorf("candidates cell %q, want their count", got)
	}
	for _, c := range sampleRows()[1].Result.Candidates {
		if bytes.Contains(buf.Bytes(), []byte(c.IDNumber)) || bytes.Contains(buf.Bytes(), []byte(c.DOB)) {
			t.Errorf("the list carries candidate %s's registry values", c.IDNumber)
		}
	}
	if got := parsed[4][colFacilityID]; got != "F2" {
		t.Errorf("facility_id cell %q", got)
	}
	if got := parsed[3][colFullName]; !strings.HasPrefix(got, "'=") {
		t.Errorf("formula not defused: %q", got)
	}
	if got := parsed[3][colIDNumber]; got != "'+84 12" {
		t.Errorf("formula not defused: %q", got)
	}
	for _, c := range []column{colCorrectedFullName, colCorrectedDOB, colCorrectedGender, colCorrectedIDNumber, colNote} {
		if parsed[1][c] != "" {
			t.Errorf("column %s not empty: %q", columnNames[c], parsed[1][c])
		}
	}

	res, err := ReadCSV(bytes.NewReader(buf.Bytes()), today, DefaultLimits())
	if err != nil {
		t.Fatal(err)
	}
	checkRoundTrip(t, rows, res)
}

func checkRoundTrip(t *testing.T, rows []Row, res *Result) {
	t.Helper()
	if !res.Worklist || len(res.Rejected) != 0 || len(res.Accepted) != len(rows) {
		t.Fatalf("read back: worklist %v, %d accepted, rejected %+v", res.Worklist, len(res.Accepted), res.Rejected)
	}
	for i, a := range res.Accepted {
		if a.Row != i+2 || a.Record != rows[i].Record || len(a.Corrected) != 0 {
			t.Errorf("row %d: %+v\nwant record %+v", i+2, a, rows[i].Record)
		}
	}
}

func TestXLSXExport(t *testing.T) {
	rows := sampleRows()
	rows[1].Disclose = true // the officer's row: candidates in full
	var buf bytes.Buffer
	n, err := WriteXLSX(&buf, slices.Values(rows))
	if err != nil || n != len(rows) {
		t.Fatalf("WriteXLSX = %d, %v", n, err)
	}
	f, err := excelize.OpenReader(bytes.NewReader(buf.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if got := f.GetSheetList(); !slices.Equal(got, []string{SheetName, GuideSheetName}) {
		t.Fatalf("sheets %v", got)
	}
	guideRows, err := f.GetRows(GuideSheetName)
	if err != nil || len(guideRows) != len(guide) || !strings.Contains(guideRows[1][0], "corrected_dob") ||
		!strings.Contains(strings.Join(guideRows[4], " "), "DD/MM/YYYY") || !strings.Contains(guideRows[5][0], "Nữ") {
		t.Errorf("guide sheet %q, %v", guideRows, err)
	}
	panes, err := f.GetPanes(SheetName)
	if err != nil || !panes.Freeze || panes.YSplit != 1 {
		t.Errorf("header not frozen: %+v, %v", panes, err)
	}
	for c, want := range map[string]float64{"B": widths[colFullName], "O": widths[colCandidates], "P": widths[colCorrectedFullName]} {
		if got, err := f.GetColWidth(SheetName, c); err != nil || got != want {
			t.Errorf("column %s width %v, %v; want %v", c, got, err, want)
		}
	}
	all, err := f.GetRows(SheetName)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(all[0], Header()) || all[0][colFacilityID] != "Mã cơ sở tiêm (facility_id)" {
		t.Fatalf("header %v", all[0])
	}
	for c := colSourceID; c < numColumns; c++ { // every column is text-formatted
		style, err := f.GetColStyle(SheetName, xlsx.ColumnName(int(c)))
		if s, err2 := f.GetStyle(style); err != nil || err2 != nil || s.NumFmt != textFormat {
			t.Errorf("column %s style %+v: not text", columnNames[c], s)
		}
	}
	if got := all[2][colCandidates]; !strings.Contains(got, "079190000001 Trần Thị Bích 1990-05-01 female 0.80; ") {
		t.Errorf("candidates cell %q", got)
	}
	if got := all[2][colFacilityID]; got != "F1" {
		t.Errorf("facility_id cell %q", got)
	}
	// The formula-looking name is a plain string cell in .xlsx.
	if got := all[3][colFullName]; got != rows[2].Record.FullName {
		t.Errorf("name cell %q", got)
	}
	if formula, _ := f.GetCellFormula(SheetName, "B4"); formula != "" {
		t.Errorf("B4 became a formula: %q", formula)
	}
	// The input columns are text-formatted, so what is typed there stays text.
	style, err := f.GetColStyle(SheetName, "Q")
	if err != nil {
		t.Fatal(err)
	}
	if s, err := f.GetStyle(style); err != nil || s.NumFmt != textFormat {
		t.Errorf("corrected_dob column style %+v, %v; want text", s, err)
	}
	if typ, _ := f.GetCellType(SheetName, "J2"); typ != excelize.CellTypeNumber && typ != excelize.CellTypeUnset {
		t.Errorf("dose_number cell type %v", typ)
	}

	res, err := ReadXLSX(bytes.NewReader(buf.Bytes()), today, DefaultLimits())
	if err != nil {
		t.Fatal(err)
	}
	checkRoundTrip(t, rows, res)
}

func TestXLSXExportEmpty(t *testing.T) {
	var buf bytes.Buffer
	if n, err := WriteXLSX(&buf, slices.Values([]Row(nil))); err != nil || n != 0 {
		t.Fatalf("WriteXLSX = %d, %v", n, err)
	}
	res, err := ReadXLSX(bytes.NewReader(buf.Bytes()), today, DefaultLimits())
	if err != nil || len(res.Accepted)+len(res.Rejected) != 0 || !res.Worklist {
		t.Fatalf("empty worklist read back as %+v, %v", res, err)
	}
}

func BenchmarkWriteXLSX(b *testing.B) {
	rows := make([]Row, 10000)
	base := sampleRows()
	for i := range rows {
		rows[i] = base[i%len(base)]
	}
	b.ResetTimer()
	for b.Loop() {
		var buf bytes.Buffer
		if _, err := WriteXLSX(&buf, slices.Values(rows)); err != nil {
			b.Fatal(err)
		}
	}
}
