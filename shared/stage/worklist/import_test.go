package worklist

import (
	"archive/zip"
	"bytes"
	"compress/flate"
	"errors"
	"hash/crc32"
	"io"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/xuri/excelize/v2"

	"github.com/vaxpass/vaxpass/shared/domain/dose"
)

// xlsxOf builds a one-sheet workbook; edit may style cells before saving.
func xlsxOf(t testing.TB, rows [][]any, edit func(f *excelize.File), opts ...excelize.Options) []byte {
	t.Helper()
	f := excelize.NewFile()
	defer f.Close()
	for i, row := range rows {
		cell, _ := excelize.CoordinatesToCellName(1, i+1)
		if err := f.SetSheetRow("Sheet1", cell, &row); err != nil {
			t.Fatal(err)
		}
	}
	if edit != nil {
		edit(f)
	}
	var buf bytes.Buffer
	if _, err := f.WriteTo(&buf, opts...); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

var importHeader = []any{"source_id", "full_name", "dob", "gender", "id_number", "phone", "nationality",
	"commune_code", "vaccine", "dose_number", "vaccinated_on", "lot"}

func importRow(id string, mods ...func([]any)) []any {
	row := []any{id, "Nguyễn Văn An", "1985-03-12", "male", "079085012345", "", "VN", "0790001", "PFIZER", 1, "2021-09-15", ""}
	for _, m := range mods {
		m(row)
	}
	return row
}

func set(i int, v any) func([]any) { return func(r []any) { r[i] = v } }

type rejection struct {
	row   int
	field string
	code  string
}

func rejections(res *Result) []rejection {
	var out []rejection
	for _, r := range res.Rejected {
		for _, e := range r.Errors {
			out = append(out, rejection{r.Row, e.Field, e.Code})
		}
	}
	return out
}

func TestImportSheet(t *testing.T) {
	rows := [][]any{
		importHeader,
		importRow("a1"),
		importRow("a2", set(2, "1985"), set(3, "Female"), set(8, "moderna")), // normalised: female, MODERNA
		importRow("a3", set(2, "1985/03/12")),
		importRow("a4", set(3, "khác"), set(9, "two")),
		{},                                   // blank row: skipped
		importRow("a1"),                      // duplicate of row 2
		importRow("", set(10, "2030-01-01")), // missing source_id, vaccinated in the future
		importRow("a8", set(9, "")),
		importRow("a9", set(2, "12/03/1985"), set(3, "Nữ"), set(10, "2/9/2021")), // as a clerk types them
	}
	res, err := ReadXLSX(bytes.NewReader(xlsxOf(t, rows, nil)), today, DefaultLimits())
	if err != nil {
		t.Fatal(err)
	}
	if res.Worklist {
		t.Error("an import sheet read as a worklist")
	}
	var accepted []string
	for _, a := range res.Accepted {
		accepted = append(accepted, a.Record.SourceID)
		if errs := a.Record.Validate(today); len(errs) > 0 {
			t.Errorf("accepted %s does not validate: %v", a.Record.SourceID, errs)
		}
	}
	if !slices.Equal(accepted, []string{"a1", "a2", "a9"}) {
		t.Errorf("accepted %v", accepted)
	}
	if a := res.Accepted[len(res.Accepted)-1]; a.Record.DOB != "1985-03-12" || a.Record.Gender != dose.Female || a.Record.VaccinatedOn != "2021-09-02" {
		t.Errorf("row 10 read as %+v", a.Record)
	}
	if a := res.Accepted[1]; a.Row != 3 || a.Record.Gender != dose.Female || a.Record.Vaccine != "MODERNA" || a.Record.DOB != "1985" {
		t.Errorf("row 3 read as %+v", a)
	}
	want := []rejection{
		{4, "dob", dose.CodeFormat},
		{5, "gender", dose.CodeValue},
		{5, "dose_number", dose.CodeFormat},
		{7, "source_id", CodeDuplicate},
		{8, "source_id", dose.CodeRequired},
		{8, "vaccinated_on", dose.CodeRange},
		{9, "dose_number", dose.CodeRequired},
	}
	if got := rejections(res); !slices.Equal(got, want) {
		t.Errorf("rejections\n got %v\nwant %v", got, want)
	}
	if res.Rejected[2].SourceID != "a1" || !strings.Contains(res.Rejected[2].Errors[0].Message, "row 2") {
		t.Errorf("duplicate rejection %+v", res.Rejected[2])
	}
}

// TestImportExcelTypedCells: what Excel does to typed values. A real date cell is a serial
// number with a date format; an ID column formatted "000000000000" is a number showing
// its leading zero; a year typed into a date column is a number.
func TestImportExcelTypedCells(t *testing.T) {
	rows := [][]any{
		importHeader,
		importRow("d1", set(2, time.Date(1985, 3, 12, 0, 0, 0, 0, time.UTC)), set(10, time.Date(2021, 9, 15, 0, 0, 0, 0, time.UTC))),
		importRow("d2", set(2, 1985), set(4, 79085012345)),
		importRow("d3", set(2, time.Date(1999, 12, 31, 0, 0, 0, 0, time.UTC))),
	}
	data := xlsxOf(t, rows, func(f *excelize.File) {
		dmy, _ := f.NewStyle(&excelize.Style{CustomNumFmt: ptr("dd/mm/yyyy")})
		f.SetCellStyle("Sheet1", "C4", "C4", dmy)
		zeros, _ := f.NewStyle(&excelize.Style{CustomNumFmt: ptr("000000000000")})
		f.SetCellStyle("Sheet1", "E3", "E3", zeros)
		year, _ := f.NewStyle(&excelize.Style{NumFmt: 1}) // "0"
		f.SetCellStyle("Sheet1", "C3", "C3", year)
	})
	res, err := ReadXLSX(bytes.NewReader(data), today, DefaultLimits())
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Rejected) > 0 {
		t.Fatalf("rejected %+v", res.Rejected)
	}
	got := func(i int) dose.Record { return res.Accepted[i].Record }
	if got(0).DOB != "1985-03-12" || got(0).VaccinatedOn != "2021-09-15" {
		t.Errorf("date cells read as %q, %q", got(0).DOB, got(0).VaccinatedOn)
	}
	if got(1).DOB != "1985" || got(1).IDNumber != "079085012345" {
		t.Errorf("number cells read as dob %q, id %q", got(1).DOB, got(1).IDNumber)
	}
	if got(2).DOB != "1999-12-31" {
		t.Errorf("dd/mm/yyyy date cell read as %q", got(2).DOB)
	}
}

func ptr[T any](v T) *T { return &v }

func TestImportFilledWorklist(t *testing.T) {
	rows := sampleRows()
	var buf bytes.Buffer
	if _, err := WriteXLSX(&buf, slices.Values(rows)); err != nil {
		t.Fatal(err)
	}
	f, err := excelize.OpenReader(&buf)
	if err != nil {
		t.Fatal(err)
	}
	// The commune types its corrections, as an officer would.
	for cell, v := range map[string]string{
		"P2": "Nguyễn Văn Ân", "Q2": "1985-12-03", // row 2: name and dob fixed
		"S3": "079 190 000 001", // row 3: the ID found by the police
		"R4": "khác",            // row 4: a bad gender
		"Q5": "31/02/1960",      // row 5: a bad date
		"T5": "checked",         // a note is ignored
	} {
		if err := f.SetCellStr(SheetName, cell, v); err != nil {
			t.Fatal(err)
		}
	}
	var edited bytes.Buffer
	if _, err := f.WriteTo(&edited); err != nil {
		t.Fatal(err)
	}
	f.Close()

	res, err := ReadXLSX(&edited, today, DefaultLimits())
	if err != nil {
		t.Fatal(err)
	}
	if !res.Worklist || len(res.Accepted) != 2 {
		t.Fatalf("worklist %v, accepted %+v, rejected %+v", res.Worklist, res.Accepted, res.Rejected)
	}
	a := res.Accepted[0]
	if a.Record.FullName != "Nguyễn Văn Ân" || a.Record.DOB != "1985-12-03" || !slices.Equal(a.Corrected, []string{"full_name", "dob"}) {
		t.Errorf("row 2: %+v", a)
	}
	if b := res.Accepted[1]; b.Record.IDNumber != "079 190 000 001" || !slices.Equal(b.Corrected, []string{"id_number"}) {
		t.Errorf("row 3: %+v", b)
	}
	want := []rejection{{4, "corrected_gender", dose.CodeValue}, {5, "corrected_dob", dose.CodeFormat}}
	if got := rejections(res); !slices.Equal(got, want) {
		t.Errorf("rejections %v, want %v", got, want)
	}
	if res.Rejected[0].SourceID != "s3" {
		t.Errorf("rejection names source %q", res.Rejected[0].SourceID)
	}
}

func TestImportHeader(t *testing.T) {
	tests := []struct {
		name   string
		header []any
	}{
		{"unknown column", append(slices.Clone(importHeader), "favourite_colour")},
		{"duplicate column", append(slices.Clone(importHeader), "dob")},
		{"missing required", importHeader[1:]},
		{"gap in header", []any{"source_id", "", "full_name"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := ReadXLSX(bytes.NewReader(xlsxOf(t, [][]any{tt.header, importRow("x")}, nil)), today, DefaultLimits())
			if !errors.Is(err, ErrHeader) || res != nil {
				t.Fatalf("got %+v, %v; want ErrHeader", res, err)
			}
		})
	}
	if _, err := ReadCSV(strings.NewReader(""), today, DefaultLimits()); !errors.Is(err, ErrHeader) {
		t.Errorf("empty CSV: %v", err)
	}
	// Header case and spaces do not matter; trailing empty header cells are fine; a value
	// under no header rejects its row.
	header := []any{" Source_ID", "FULL_NAME", "dob", "gender", "vaccine", "dose_number", "vaccinated_on", ""}
	res, err := ReadXLSX(bytes.NewReader(xlsxOf(t, [][]any{
		header,
		{"r1", "Lê Thị Hoa", "1970", "female", "ABDALA", 3, "2022-01-05"},
		{"r2", "Lê Thị Hoa", "1970", "female", "ABDALA", 3, "2022-01-05", "", "stray"},
	}, nil)), today, DefaultLimits())
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Accepted) != 1 || !slices.Equal(rejections(res), []rejection{{3, "column I", dose.CodeFormat}}) {
		t.Fatalf("accepted %+v, rejected %v", res.Accepted, rejections(res))
	}
}

func TestCSVImport(t *testing.T) {
	csvText := "\ufeffsource_id,full_name,dob,gender,id_number,vaccine,dose_number,vaccinated_on\n" +
		"c1,Phạm Thị Lan,1990-02-03,female,'+84,VERO_CELL,1,2021-07-01\n" +
		"c2,\"Phạm, Thị Lan\",1990-02-30,female,,VERO_CELL,1.5,2021-07-01\n"
	res, err := ReadCSV(strings.NewReader(csvText), today, DefaultLimits())
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Accepted) != 1 || res.Accepted[0].Record.IDNumber != "+84" {
		t.Fatalf("accepted %+v", res.Accepted)
	}
	want := []rejection{{3, "dob", dose.CodeFormat}, {3, "dose_number", dose.CodeFormat}}
	if got := rejections(res); !slices.Equal(got, want) {
		t.Fatalf("rejections %v, want %v", got, want)
	}
	bad := "source_id,full_name,dob,gender,vaccine,dose_number,vaccinated_on\nc1,\"unterminated\n"
	if _, err := ReadCSV(strings.NewReader(bad), today, DefaultLimits()); !errors.Is(err, ErrCorrupt) {
		t.Errorf("malformed CSV: %v", err)
	}
}

func TestReadSniffsFormat(t *testing.T) {
	x := xlsxOf(t, [][]any{importHeader, importRow("x1")}, nil)
	c := "source_id,full_name,dob,gender,vaccine,dose_number,vaccinated_on\nc1,A B,1990,male,PFIZER,1,2021-08-01\n"
	for name, data := range map[string][]byte{"xlsx": x, "csv": []byte(c)} {
		res, err := Read(bytes.NewReader(data), today, DefaultLimits())
		if err != nil || len(res.Accepted) != 1 {
			t.Errorf("%s: %+v, %v", name, res, err)
		}
	}
}

// Hostile files: each is refused as a whole, with its sentinel error.
func TestHostileFiles(t *testing.T) {
	start := time.Now()
	defer func() { t.Logf("setup and run: %v", time.Since(start)) }()
	small := Limits{MaxBytes: 1 << 20, MaxRows: 5, MaxColumns: 20, MaxUnzipped: 4 << 20, MaxParts: 50}
	valid := xlsxOf(t, [][]any{importHeader, importRow("x1")}, nil)
	manyRows := [][]any{importHeader}
	for i := range 10 {
		manyRows = append(manyRows, importRow("r"+string(rune('a'+i))))
	}
	wide := slices.Clone(importHeader)
	for len(wide) < 30 {
		wide = append(wide, "note")
	}
	farCell := xlsxOf(t, [][]any{importHeader, importRow("x1")}, func(f *excelize.File) {
		f.SetCellStr("Sheet1", "ZZ2", "far away")
	})
	farRow := xlsxOf(t, [][]any{importHeader, importRow("x1")}, func(f *excelize.File) {
		f.SetCellStr("Sheet1", "A100", "far down")
	})

	tests := []struct {
		name string
		data []byte
		lim  Limits
		want error
	}{
		{"random bytes", randomBytes(5000), DefaultLimits(), ErrCorrupt},
		{"truncated xlsx", valid[:len(valid)/2], DefaultLimits(), ErrCorrupt},
		{"zip without a workbook", zipOf(t, map[string]string{"hello.txt": "hi"}), DefaultLimits(), ErrCorrupt},
		{"encrypted", xlsxOf(t, [][]any{importHeader, importRow("x1")}, nil, excelize.Options{Password: "secret"}), DefaultLimits(), ErrEncrypted},
		{"legacy xls", append(slices.Clone(oleMagic), make([]byte, 4096)...), DefaultLimits(), ErrLegacyFormat},
		{"too many bytes", valid, Limits{MaxBytes: int64(len(valid) - 1), MaxRows: 5, MaxColumns: 20, MaxUnzipped: 4 << 20, MaxParts: 50}, ErrTooLarge},
		{"too many rows", xlsxOf(t, manyRows, nil), small, ErrTooLarge},
		{"far row", farRow, small, ErrTooLarge},
		{"too many columns", xlsxOf(t, [][]any{wide}, nil), small, ErrTooLarge},
		{"far column", farCell, small, ErrTooLarge},
		{"zip bomb", zipBomb(t, 64<<20), small, ErrTooLarge},
		{"zip bomb, default limits", zipBomb(t, 300<<20), DefaultLimits(), ErrTooLarge},
		{"many parts", zipOfN(t, 100), small, ErrTooLarge},
		{"lying sizes", lyingZip(t), DefaultLimits(), ErrCorrupt},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := ReadXLSX(bytes.NewReader(tt.data), today, tt.lim)
			if !errors.Is(err, tt.want) || res != nil {
				t.Fatalf("got %+v, %v; want %v", res, err, tt.want)
			}
		})
	}
	if res, err := ReadCSV(bytes.NewReader(make([]byte, 2<<20)), today, small); !errors.Is(err, ErrTooLarge) || res != nil {
		t.Errorf("large CSV: %v", err)
	}
}

func randomBytes(n int) []byte {
	r := rand.New(rand.NewPCG(1, 2))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.UintN(256))
	}
	return b
}

func zipOf(t testing.TB, files map[string]string) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for name, content := range files {
		w, err := zw.Create(name)
		if err != nil {
			t.Fatal(err)
		}
		io.WriteString(w, content)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func zipOfN(t testing.TB, n int) []byte {
	files := map[string]string{}
	for i := range n {
		files["part"+strings.Repeat("x", i)] = ""
	}
	return zipOf(t, files)
}

// zipBomb is a valid workbook whose sheet XML inflates to size bytes of repeated data: a
// few hundred kilobytes on the wire.
func zipBomb(t testing.TB, size int) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	zw.RegisterCompressor(zip.Deflate, func(w io.Writer) (io.WriteCloser, error) { return flate.NewWriter(w, flate.BestSpeed) })
	valid := xlsxOf(t, [][]any{importHeader}, nil)
	zr, err := zip.NewReader(bytes.NewReader(valid), int64(len(valid)))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range zr.File {
		w, err := zw.Create(f.Name)
		if err != nil {
			t.Fatal(err)
		}
		if f.Name != "xl/worksheets/sheet1.xml" {
			rc, _ := f.Open()
			io.Copy(w, rc)
			rc.Close()
			continue
		}
		io.WriteString(w, `<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData>`)
		chunk := bytes.Repeat([]byte("<!-- bomb -->"), 1<<16)
		for written := 0; written < size; written += len(chunk) {
			w.Write(chunk)
		}
		io.WriteString(w, `</sheetData></worksheet>`)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// lyingZip declares a small uncompressed size for a part that inflates far beyond it.
func lyingZip(t testing.TB) []byte {
	t.Helper()
	valid := xlsxOf(t, [][]any{importHeader}, nil)
	zr, err := zip.NewReader(bytes.NewReader(valid), int64(len(valid)))
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, f := range zr.File {
		if f.Name != "xl/worksheets/sheet1.xml" {
			rc, _ := f.Open()
			w, _ := zw.Create(f.Name)
			io.Copy(w, rc)
			rc.Close()
			continue
		}
		content := bytes.Repeat([]byte("<!-- x -->"), 1<<20) // 10 MiB
		var compressed bytes.Buffer
		fw, _ := flate.NewWriter(&compressed, flate.BestSpeed)
		fw.Write(content)
		fw.Close()
		w, err := zw.CreateRaw(&zip.FileHeader{
			Name: f.Name, Method: zip.Deflate, CRC32: crc32.ChecksumIEEE(content),
			CompressedSize64: uint64(compressed.Len()), UncompressedSize64: 1000,
		})
		if err != nil {
			t.Fatal(err)
		}
		w.Write(compressed.Bytes())
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func FuzzReadCSV(f *testing.F) {
	f.Add("source_id,full_name,dob,gender,vaccine,dose_number,vaccinated_on\nc1,A B,1990,male,PFIZER,1,2021-08-01\n")
	f.Add("\ufeffsource_id,full_name,dob,gender,vaccine,dose_number,vaccinated_on,corrected_dob\nc1,A,1990,male,PFIZER,x,2021-08-01,1991\n")
	f.Add("a,b\n\"x")
	f.Fuzz(func(t *testing.T, s string) {
		res, err := ReadCSV(strings.NewReader(s), today, DefaultLimits())
		checkFuzzResult(t, res, err)
	})
}

func FuzzReadXLSX(f *testing.F) {
	f.Add(xlsxOf(f, [][]any{importHeader, importRow("x1"), importRow("x2", set(2, "bad"))}, nil))
	var wl bytes.Buffer
	WriteXLSX(&wl, slices.Values(sampleRows()))
	f.Add(wl.Bytes())
	f.Fuzz(func(t *testing.T, data []byte) {
		res, err := ReadXLSX(bytes.NewReader(data), today, DefaultLimits())
		checkFuzzResult(t, res, err)
	})
}

func checkFuzzResult(t *testing.T, res *Result, err error) {
	if err != nil {
		if res != nil {
			t.Fatalf("error %v with a result", err)
		}
		for _, e := range []error{ErrTooLarge, ErrCorrupt, ErrEncrypted, ErrLegacyFormat, ErrHeader} {
			if errors.Is(err, e) {
				return
			}
		}
		t.Fatalf("error without a sentinel: %v", err)
	}
	for _, a := range res.Accepted {
		if errs := a.Record.Validate(today); len(errs) > 0 {
			t.Fatalf("accepted row %d does not validate: %v", a.Row, errs)
		}
	}
	for _, r := range res.Rejected {
		if len(r.Errors) == 0 || r.Row < 2 {
			t.Fatalf("rejection without errors or row: %+v", r)
		}
	}
}
