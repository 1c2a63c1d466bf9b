package xlsx

import (
	"archive/zip"
	"bytes"
	"errors"
	"io"
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/xuri/excelize/v2"
)

// sample writes the workbook the tests read back: a data sheet with a styled header,
// text, numbers and gaps, and an instruction sheet.
func sample(t testing.TB) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, err := NewWriter(&buf, "Data", "Cách điền (help)")
	if err != nil {
		t.Fatal(err)
	}
	header, err := w.AddStyle(Style{Bold: true, Fill: "D9E1F2", Border: "555555", Text: true})
	if err != nil {
		t.Fatal(err)
	}
	text, _ := w.AddStyle(Style{Text: true})
	input, _ := w.AddStyle(Style{Text: true, Fill: "fff2cc"})
	if again, _ := w.AddStyle(Style{Text: true}); again != text {
		t.Fatalf("same style twice: ids %d and %d", text, again)
	}
	s, err := w.NextSheet(SheetOptions{
		Widths: []float64{20, 28, 0, 8.5}, ColStyles: []int{text, text, 0, input}, FreezeRows: 1, AutoFilter: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.WriteRowOpts(RowOptions{Height: 20},
		Text("id").WithStyle(header), Text("name").WithStyle(header), Text("dose").WithStyle(header), Text("note").WithStyle(header)); err != nil {
		t.Fatal(err)
	}
	rows := [][]Field{
		{Text("079085012345").WithStyle(text), Text("Nguyễn Văn An").WithStyle(text), Int(1), Blank().WithStyle(input)},
		{Text("  spaced\t").WithStyle(text), Text(`a&b<c>"d"'e'`), Number(1.5)},
		{Text("=1+1"), Text("ctl\x01\r\nline"), Number(-2.5e-12), Text("_x0041_ stays")},
		{},
		{Blank(), Blank(), Number(1e21), Text("\uFFFF and 😀")},
	}
	for _, r := range rows {
		if err := s.WriteRow(r...); err != nil {
			t.Fatal(err)
		}
	}
	help, err := w.NextSheet(SheetOptions{Widths: []float64{80}})
	if err != nil {
		t.Fatal(err)
	}
	wrap, _ := w.AddStyle(Style{Wrap: true}) // styles may come after the rows using them
	if err := help.WriteRow(Text("Fill in the yellow columns.\nDo not change the others.").WithStyle(wrap)); err != nil {
		t.Fatal(err)
	}
	if err := s.WriteRow(Text("late")); !errors.Is(err, ErrWriterState) {
		t.Fatalf("write to a finished sheet: %v", err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestWriterPackage(t *testing.T) {
	data := sample(t)
	zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, f := range zr.File {
		names = append(names, f.Name)
	}
	want := []string{"[Content_Types].xml", "_rels/.rels", "xl/worksheets/sheet1.xml", "xl/worksheets/sheet2.xml",
		"xl/workbook.xml", "xl/_rels/workbook.xml.rels", "xl/styles.xml"}
	if !slices.Equal(names, want) {
		t.Fatalf("parts %v\nwant %v", names, want)
	}
	sheet := partText(t, zr, "xl/worksheets/sheet1.xml")
	for _, s := range []string{
		`<c r="A2" s="2" t="inlineStr"><is><t>079085012345</t></is></c>`,
		`<c r="C2"><v>1</v></c><c r="D2" s="3"/>`,
		`<t xml:space="preserve">  spaced` + "\t</t>",
		`<t>a&amp;b&lt;c&gt;&quot;d&quot;'e'</t>`,
		`<t>ctl_x0001__x000D_` + "\n" + `line</t>`,
		`<t>_x005F_x0041_ stays</t>`,
		`<row r="5"></row>`,
		`<c r="C6"><v>1E+21</v></c>`,
		`<t>_xFFFF_ and 😀</t>`,
		`<pane ySplit="1" topLeftCell="A2" activePane="bottomLeft" state="frozen"/>`,
		`<col min="3" max="3" width="9.140625"/>`,
		`<col min="4" max="4" width="8.5" style="3" customWidth="1"/>`,
		`<autoFilter ref="A1:D6"/>`,
	} {
		if !strings.Contains(sheet, s) {
			t.Errorf("sheet1.xml lacks %s", s)
		}
	}
	book := partText(t, zr, "xl/workbook.xml")
	if !strings.Contains(book, `<definedName name="_xlnm._FilterDatabase" localSheetId="0" hidden="1">'Data'!$A$1:$D$6</definedName>`) {
		t.Errorf("workbook.xml: %s", book)
	}
	styles := partText(t, zr, "xl/styles.xml")
	for _, s := range []string{
		`<xf numFmtId="49" fontId="1" fillId="2" borderId="1" xfId="0" applyNumberFormat="1" applyFont="1" applyFill="1" applyBorder="1"/>`,
		`<fgColor rgb="FFFFF2CC"/>`,
		`<alignment vertical="top" wrapText="1"/>`,
		`<cellXfs count="5">`,
	} {
		if !strings.Contains(styles, s) {
			t.Errorf("styles.xml lacks %s", s)
		}
	}
}

func partText(t *testing.T, zr *zip.Reader, name string) string {
	t.Helper()
	f, err := zr.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b, err := io.ReadAll(f)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestWriterExcelize: another implementation reads what the writer wrote the same way.
func TestWriterExcelize(t *testing.T) {
	f, err := excelize.OpenReader(bytes.NewReader(sample(t)))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if got := f.GetSheetList(); !slices.Equal(got, []string{"Data", "Cách điền (help)"}) {
		t.Fatalf("sheets %v", got)
	}
	panes, err := f.GetPanes("Data")
	if err != nil || !panes.Freeze || panes.YSplit != 1 || panes.TopLeftCell != "A2" {
		t.Errorf("panes %+v, %v", panes, err)
	}
	if w, err := f.GetColWidth("Data", "B"); err != nil || w != 28 {
		t.Errorf("width of B: %v, %v", w, err)
	}
	style, _ := f.GetColStyle("Data", "D")
	// (excelize shows colours only with a theme part, which the writer leaves out.)
	if s, err := f.GetStyle(style); err != nil || s.NumFmt != 49 || s.Fill.Pattern != 1 {
		t.Errorf("style of D: %+v, %v", s, err)
	}
	if s, err := f.GetStyle(1); err != nil || !s.Font.Bold || s.Border[0].Type != "bottom" {
		t.Errorf("header style: %+v, %v", s, err)
	}
	rows, err := f.GetRows("Data", excelize.Options{RawCellValue: true})
	if err != nil {
		t.Fatal(err)
	}
	want := [][]string{
		{"id", "name", "dose", "note"},
		{"079085012345", "Nguyễn Văn An", "1"},
		{"  spaced\t", `a&b<c>"d"'e'`, "1.5"},
		{"=1+1", "ctl\x01\r\nline", "-2.5E-12", "_x0041_ stays"},
		nil,
		{"", "", "1E+21", "\uFFFF and 😀"},
	}
	for i := range want {
		if !slices.Equal(rows[i], want[i]) {
			t.Errorf("row %d: %q\nwant   %q", i+1, rows[i], want[i])
		}
	}
	if formula, _ := f.GetCellFormula("Data", "A4"); formula != "" {
		t.Errorf("text became a formula: %q", formula)
	}
	if typ, _ := f.GetCellType("Data", "C2"); typ != excelize.CellTypeNumber && typ != excelize.CellTypeUnset {
		t.Errorf("C2 type %v", typ)
	}
	help, _ := f.GetRows("Cách điền (help)")
	if len(help) != 1 || !strings.HasPrefix(help[0][0], "Fill in") {
		t.Errorf("help sheet %q", help)
	}
}

func TestWriterRefuses(t *testing.T) {
	for _, names := range [][]string{
		nil, {""}, {strings.Repeat("x", 32)}, {"a/b"}, {"a[1]"}, {"'quoted'"}, {"history"}, {"Data", "DATA"}, {"tab\there"},
	} {
		if _, err := NewWriter(io.Discard, names...); !errors.Is(err, ErrSheetName) {
			t.Errorf("NewWriter(%q): %v", names, err)
		}
	}
	w, err := NewWriter(io.Discard, "A")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.AddStyle(Style{Fill: "red"}); !errors.Is(err, ErrBadValue) {
		t.Errorf("colour name: %v", err)
	}
	if _, err := w.NextSheet(SheetOptions{ColStyles: []int{7}}); !errors.Is(err, ErrWriterState) {
		t.Errorf("unknown style: %v", err)
	}
	s, err := w.NextSheet(SheetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []Field{Number(math.NaN()), Number(math.Inf(1))} {
		if err := s.WriteRow(f); !errors.Is(err, ErrBadValue) {
			t.Errorf("%v: %v", f, err)
		}
	}
	if err := s.WriteRow(Text(strings.Repeat("😀", MaxCellChars/2+1))); !errors.Is(err, ErrCellTooLong) {
		t.Errorf("long text: %v", err)
	}
	if err := s.WriteRow(Text(strings.Repeat("ệ", MaxCellChars))); err != nil {
		t.Errorf("a full cell: %v", err)
	}
	if _, err := w.NextSheet(SheetOptions{}); !errors.Is(err, ErrWriterState) {
		t.Errorf("a sheet more than named: %v", err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestWriterEmptySheets: sheets named but never started are written empty.
func TestWriterEmptySheets(t *testing.T) {
	var buf bytes.Buffer
	w, err := NewWriter(&buf, "One", "Two")
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	r, err := NewReader(bytes.NewReader(buf.Bytes()), int64(buf.Len()), Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if r.SheetName() != "One" {
		t.Errorf("first sheet %q", r.SheetName())
	}
	if rows := readAll(t, r); len(rows) != 0 {
		t.Errorf("rows %v", rows)
	}
}

func BenchmarkWriter(b *testing.B) {
	b.ReportAllocs()
	row := []Field{Text("s0000001"), Text("Nguyễn Văn An"), Text("1985-03-12"), Text("male"), Text("079085012345"),
		Text("0901234567"), Text("VN"), Text("0790001"), Text("PFIZER"), Int(2), Text("2021-09-15"), Text("FF1234")}
	for b.Loop() {
		w, _ := NewWriter(io.Discard, "Data")
		s, _ := w.NextSheet(SheetOptions{})
		for range 10000 {
			if err := s.WriteRow(row...); err != nil {
				b.Fatal(err)
			}
		}
		if err := w.Close(); err != nil {
			b.Fatal(err)
		}
	}
}
