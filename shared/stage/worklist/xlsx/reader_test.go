package xlsx

import (
	"archive/zip"
	"bytes"
	"compress/flate"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"
)

func readAll(t testing.TB, r *Reader) []Row {
	t.Helper()
	rows, err := r.Rows()
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []Row
	for rows.Next() {
		row := rows.Row()
		out = append(out, Row{Num: row.Num, Cells: slices.Clone(row.Cells)})
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func open(t testing.TB, data []byte, lim Limits) *Reader {
	t.Helper()
	r, err := NewReader(bytes.NewReader(data), int64(len(data)), lim)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// texts shows rows as "row: A=value|type ...".
func texts(rows []Row) []string {
	var out []string
	for _, r := range rows {
		s := fmt.Sprint(r.Num, ":")
		for _, c := range r.Cells {
			s += fmt.Sprintf(" %s=%s|%s", ColumnName(c.Col), c.Text(), c.Type)
		}
		out = append(out, s)
	}
	return out
}

func TestReadOwnWorkbook(t *testing.T) {
	r := open(t, sample(t), Limits{})
	if r.SheetName() != "Data" || r.Date1904() {
		t.Errorf("sheet %q, 1904 %v", r.SheetName(), r.Date1904())
	}
	got := texts(readAll(t, r))
	want := []string{
		"1: A=id|inlineStr B=name|inlineStr C=dose|inlineStr D=note|inlineStr",
		"2: A=079085012345|inlineStr B=Nguyễn Văn An|inlineStr C=1|number",
		"3: A=  spaced\t|inlineStr B=a&b<c>\"d\"'e'|inlineStr C=1.5|number",
		"4: A==1+1|inlineStr B=ctl\x01\r\nline|inlineStr C=-2.5E-12|number D=_x0041_ stays|inlineStr",
		"5:",
		"6: C=1E+21|number D=\uFFFF and 😀|inlineStr",
	}
	if !slices.Equal(got, want) {
		t.Errorf("rows\n%q\nwant\n%q", got, want)
	}
	rows := readAll(t, open(t, sample(t), Limits{}))
	if c := rows[1].Cells[0]; c.Format != "@" {
		t.Errorf("text cell format %q", c.Format)
	}
	if c := rows[1].Cells[2]; c.Format != "General" || c.Value != "1" {
		t.Errorf("number cell %+v", c)
	}
}

// workbook builds a package around hand-written parts; sheet is the first worksheet's
// XML, the other parts are left out when "".
func workbook(t testing.TB, sheet, sst, styles string, extra ...string) []byte {
	t.Helper()
	files := map[string]string{
		"[Content_Types].xml": `<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"/>`,
		"_rels/.rels": `<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">` +
			`<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="xl/workbook.xml"/></Relationships>`,
		"xl/workbook.xml": `<workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships">` +
			`<sheets><sheet name="S" sheetId="1" r:id="rId1"/></sheets></workbook>`,
		"xl/worksheets/sheet1.xml": sheet,
	}
	rels := `<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">` +
		`<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" Target="worksheets/sheet1.xml"/>`
	if sst != "" {
		files["xl/sharedStrings.xml"] = sst
		rels += `<Relationship Id="rId2" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/sharedStrings" Target="sharedStrings.xml"/>`
	}
	if styles != "" {
		files["xl/styles.xml"] = styles
		rels += `<Relationship Id="rId3" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/styles" Target="/xl/styles.xml"/>`
	}
	files["xl/_rels/workbook.xml.rels"] = rels + `</Relationships>`
	for i := 0; i+1 < len(extra); i += 2 {
		files[extra[i]] = extra[i+1]
	}
	return zipOf(t, files)
}

func zipOf(t testing.TB, files map[string]string) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	names := make([]string, 0, len(files))
	for name := range files {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		w, err := zw.Create(name)
		if err != nil {
			t.Fatal(err)
		}
		io.WriteString(w, files[name])
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

const (
	sheetOpen  = `<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData>`
	sheetClose = `</sheetData></worksheet>`
)

func TestReadCells(t *testing.T) {
	sst := "\ufeff" + `<?xml version="1.0" encoding="UTF-8"?><sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" count="4" uniqueCount="4">` +
		`<si><t>plain</t></si>` +
		`<si><r><rPr><b/></rPr><t xml:space="preserve">Nguyễn </t></r><r><t>Văn</t></r><rPh sb="0" eb="1"><t>ignored</t></rPh><phoneticPr fontId="1"/></si>` +
		`<si><t xml:space="preserve">  keep  </t></si>` +
		`<si><t>line_x000D_` + "\n" + `two _x005F_x0041_</t></si></sst>`
	styles := `<styleSheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">` +
		`<numFmts count="3"><numFmt numFmtId="164" formatCode="dd/mm/yyyy"/><numFmt numFmtId="165" formatCode="000000000000"/><numFmt numFmtId="166" formatCode="&quot;d&quot;0.00"/></numFmts>` +
		`<cellStyleXfs count="1"><xf numFmtId="14"/></cellStyleXfs>` +
		`<cellXfs count="6"><xf numFmtId="0"/><xf numFmtId="14"/><xf numFmtId="164"/><xf numFmtId="165"/><xf numFmtId="166"/><xf numFmtId="49"/></cellXfs></styleSheet>`
	sheet := sheetOpen +
		`<row r="2"><c r="A2" t="s"><v>0</v></c><c r="C2" t="s"><v>1</v></c><c r="D2" t="s"><v>2</v></c><c r="E2" t="s"><v>3</v></c></row>` +
		`<row><c><v>1.5E+3</v></c><c><v>-7e-3</v></c><c t="b"><v>1</v></c><c t="b"><v>0</v></c><c t="e"><v>#N/A</v></c></row>` +
		`<row r="7" spans="1:9"><c r="B7" s="1"><v>31118</v></c><c r="C7" s="2"><v>36525.75</v></c><c r="D7" s="3"><v>79085012345</v></c>` +
		`<c r="E7" s="4"><v>2</v></c><c r="F7" t="d"><v>2021-09-15T00:00:00Z</v></c><c r="G7" t="str"><f>A2</f><v>plain</v></c>` +
		`<c r="H7" t="inlineStr"><is><r><t>in</t></r><r><t>line</t></r></is></c><c r="I7"/><c r="J7" s="5"/></row>` +
		`<row r="8"><c r="A8"><v>79085012345</v></c><c r="B8" t="s"/><c r="C8"><v>0.30000000000000004</v></c><c r="D8"><v>123456789012345678</v></c></row>` +
		sheetClose
	rows := readAll(t, open(t, workbook(t, sheet, sst, styles), Limits{}))
	got := texts(rows)
	want := []string{
		"2: A=plain|string C=Nguyễn Văn|string D=  keep  |string E=line\r\ntwo _x0041_|string",
		"3: A=1500|number B=-0.007|number C=TRUE|bool D=FALSE|bool E=#N/A|error",
		"7: B=1985-03-12|date C=1999-12-31 18:00:00|date D=079085012345|number E=2|number F=2021-09-15|date G=plain|string H=inline|inlineStr",
		"8: A=79085012345|number C=0.3|number D=123456789012346000|number",
	}
	if !slices.Equal(got, want) {
		t.Errorf("rows\n%q\nwant\n%q", got, want)
	}
	if c := rows[2].Cells[0]; c.Value != "31118" || c.Format != "mm-dd-yy" {
		t.Errorf("date cell %+v", c)
	}
	if tm, err := rows[2].Cells[1].Time(); err != nil || !tm.Equal(time.Date(1999, 12, 31, 18, 0, 0, 0, time.UTC)) {
		t.Errorf("Time() = %v, %v", tm, err)
	}
	if f, err := rows[1].Cells[0].Float(); err != nil || f != 1500 {
		t.Errorf("Float() = %v, %v", f, err)
	}
}

// TestReadPackageVariants: what other writers do differently.
func TestReadPackageVariants(t *testing.T) {
	sheet := sheetOpen + `<row r="1"><c r="A1" t="inlineStr"><is><t>x</t></is></c></row>` + sheetClose
	t.Run("prefixed namespace", func(t *testing.T) {
		prefixed := `<x:worksheet xmlns:x="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><x:sheetData><x:row><x:c t="inlineStr"><x:is><x:t>x</x:t></x:is></x:c></x:row></x:sheetData></x:worksheet>`
		if got := texts(readAll(t, open(t, workbook(t, prefixed, "", ""), Limits{}))); !slices.Equal(got, []string{"1: A=x|inlineStr"}) {
			t.Errorf("rows %q", got)
		}
	})
	t.Run("chartsheet first, 1904 dates, odd names", func(t *testing.T) {
		files := map[string]string{
			"_rels/.rels": `<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">` +
				`<Relationship Id="a" Type="http://purl.oclc.org/ooxml/officeDocument/relationships/officeDocument" Target="/Book/Main.xml"/></Relationships>`,
			"Book/Main.xml": `<workbook xmlns="http://purl.oclc.org/ooxml/spreadsheetml/main" xmlns:rel="http://purl.oclc.org/ooxml/officeDocument/relationships">` +
				`<workbookPr date1904="true"/><sheets><sheet name="Chart" sheetId="1" rel:id="c"/><sheet name="Second" sheetId="2" rel:id="s"/></sheets></workbook>`,
			"book/_rels/main.xml.rels": `<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">` +
				`<Relationship Id="c" Type="http://purl.oclc.org/ooxml/officeDocument/relationships/chartsheet" Target="charts/c.xml"/>` +
				`<Relationship Id="s" Type="http://purl.oclc.org/ooxml/officeDocument/relationships/worksheet" Target="../sheets/My%20Sheet.xml"/></Relationships>`,
			"sheets/My Sheet.xml": sheetOpen + `<row r="3"><c r="B3" s="0"><v>0</v></c></row>` + sheetClose,
		}
		r := open(t, zipOf(t, files), Limits{})
		if r.SheetName() != "Second" || !r.Date1904() {
			t.Errorf("sheet %q, 1904 %v", r.SheetName(), r.Date1904())
		}
		rows := readAll(t, r)
		if len(rows) != 1 || rows[0].Num != 3 || rows[0].Cells[0].Col != 1 || rows[0].Cells[0].Value != "0" {
			t.Errorf("rows %+v", rows)
		}
	})
	t.Run("row numbers from cells", func(t *testing.T) {
		s := sheetOpen + `<row><c r="B4" t="inlineStr"><is><t>x</t></is></c><c t="inlineStr"><is><t>y</t></is></c></row><row><c><v>1</v></c></row>` + sheetClose
		if got := texts(readAll(t, open(t, workbook(t, s, "", ""), Limits{}))); !slices.Equal(got, []string{"4: B=x|inlineStr C=y|inlineStr", "5: A=1|number"}) {
			t.Errorf("rows %q", got)
		}
	})
	t.Run("other parts are not read", func(t *testing.T) {
		data := workbook(t, sheet, "", "", "xl/media/image1.png", "\x89PNG not xml", "docProps/core.xml", "<broken")
		if got := texts(readAll(t, open(t, data, Limits{}))); len(got) != 1 {
			t.Errorf("rows %q", got)
		}
	})
}

func TestReadMalformed(t *testing.T) {
	sheet := func(rows string) []byte { return workbook(t, sheetOpen+rows+sheetClose, "", "") }
	tests := []struct {
		name string
		data []byte
		want error
	}{
		{"empty", nil, ErrNotZip},
		{"text", []byte("source_id,full_name\n"), ErrNotZip},
		{"legacy xls", append(slices.Clone(oleMagic), make([]byte, 600)...), ErrLegacyFormat},
		{"encrypted", append(append(slices.Clone(oleMagic), make([]byte, 70000)...), encryptedPackage...), ErrEncrypted},
		{"truncated", sample(t)[:500], ErrCorrupt},
		{"no package relationships", zipOf(t, map[string]string{"xl/workbook.xml": "<workbook/>"}), ErrCorrupt},
		{"a document, not a workbook", zipOf(t, map[string]string{
			"_rels/.rels":                  `<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="r" Type="x/officeDocument" Target="word/document.xml"/></Relationships>`,
			"word/_rels/document.xml.rels": `<Relationships/>`, "word/document.xml": `<document/>`}), ErrCorrupt},
		{"no worksheet", workbook(t, "", "", "", "xl/workbook.xml", `<workbook><sheets/></workbook>`), ErrCorrupt},
		{"missing sheet part", zipOf(t, map[string]string{
			"_rels/.rels":       `<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="r" Type="x/officeDocument" Target="wb.xml"/></Relationships>`,
			"_rels/wb.xml.rels": `<Relationships><Relationship Id="s" Type="x/worksheet" Target="nowhere.xml"/></Relationships>`,
			"wb.xml":            `<workbook xmlns:r="r"><sheets><sheet r:id="s"/></sheets></workbook>`}), ErrCorrupt},
		{"not xml", workbook(t, "<worksheet><sheetData><row>", "", ""), ErrCorrupt},
		{"mismatched tags", sheet(`<row></c>`), ErrCorrupt},
		{"second root", workbook(t, sheetOpen+sheetClose+sheetOpen+`<row><c><v>1</v></c></row>`+sheetClose, "", ""), ErrCorrupt},
		{"doctype", workbook(t, `<!DOCTYPE x [<!ENTITY a "b">]><worksheet/>`, "", ""), ErrCorrupt},
		{"unknown entity", sheet(`<row><c t="inlineStr"><is><t>&a;</t></is></c></row>`), ErrCorrupt},
		{"rows out of order", sheet(`<row r="3"/><row r="2"/>`), ErrCorrupt},
		{"row twice", sheet(`<row r="3"/><row r="3"/>`), ErrCorrupt},
		{"row zero", sheet(`<row r="0"/>`), ErrCorrupt},
		{"cells out of order", sheet(`<row r="1"><c r="B1"><v>1</v></c><c r="A1"><v>1</v></c></row>`), ErrCorrupt},
		{"cell in another row", sheet(`<row r="1"><c r="A2"><v>1</v></c></row>`), ErrCorrupt},
		{"bad reference", sheet(`<row r="1"><c r="a1"><v>1</v></c></row>`), ErrCorrupt},
		{"bad number", sheet(`<row><c><v>0x10</v></c></row>`), ErrCorrupt},
		{"infinite number", sheet(`<row><c><v>1e999</v></c></row>`), ErrCorrupt},
		{"NaN", sheet(`<row><c><v>NaN</v></c></row>`), ErrCorrupt},
		{"bad boolean", sheet(`<row><c t="b"><v>2</v></c></row>`), ErrCorrupt},
		{"unknown type", sheet(`<row><c t="x"><v>2</v></c></row>`), ErrCorrupt},
		{"no shared strings", sheet(`<row><c t="s"><v>0</v></c></row>`), ErrCorrupt},
		{"shared string out of range", workbook(t, sheetOpen+`<row><c t="s"><v>1</v></c></row>`+sheetClose, `<sst><si><t>a</t></si></sst>`, ""), ErrCorrupt},
		{"style out of range", workbook(t, sheetOpen+`<row><c s="2"><v>1</v></c></row>`+sheetClose, "", `<styleSheet><cellXfs><xf/></cellXfs></styleSheet>`), ErrCorrupt},
		{"part twice", func() []byte {
			var buf bytes.Buffer
			zw := zip.NewWriter(&buf)
			zw.Create("_rels/.rels")
			zw.Create("_RELS/.rels")
			zw.Close()
			return buf.Bytes()
		}(), ErrCorrupt},
		{"lying size", lyingPart(t, 1<<20), ErrCorrupt},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := readErr(tt.data, Limits{})
			if !errors.Is(err, tt.want) {
				t.Fatalf("got %v, want %v", err, tt.want)
			}
		})
	}
}

// readErr reads a whole file and returns the first error.
func readErr(data []byte, lim Limits) error {
	r, err := NewReader(bytes.NewReader(data), int64(len(data)), lim)
	if err != nil {
		return err
	}
	rows, err := r.Rows()
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
	}
	return rows.Err()
}

// lyingPart is a workbook whose sheet declares 100 bytes and inflates to size.
func lyingPart(t testing.TB, size int) []byte {
	t.Helper()
	return rewriteSheet(t, workbook(t, "x", "", ""), func(zw *zip.Writer, name string) {
		content := []byte(sheetOpen + strings.Repeat("<!-- x -->", size/10) + sheetClose)
		var compressed bytes.Buffer
		fw, _ := flate.NewWriter(&compressed, flate.BestSpeed)
		fw.Write(content)
		fw.Close()
		w, err := zw.CreateRaw(&zip.FileHeader{Name: name, Method: zip.Deflate, CRC32: crc32.ChecksumIEEE(content),
			CompressedSize64: uint64(compressed.Len()), UncompressedSize64: 100})
		if err != nil {
			t.Fatal(err)
		}
		w.Write(compressed.Bytes())
	})
}

// rewriteSheet copies a package, letting write replace the first worksheet.
func rewriteSheet(t testing.TB, data []byte, write func(zw *zip.Writer, name string)) []byte {
	t.Helper()
	zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, f := range zr.File {
		if f.Name == "xl/worksheets/sheet1.xml" {
			write(zw, f.Name)
			continue
		}
		w, _ := zw.Create(f.Name)
		rc, _ := f.Open()
		io.Copy(w, rc)
		rc.Close()
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// bomb is a workbook whose sheet is open + filler repeated to about size bytes + close,
// deflated: a few hundred kilobytes on the wire.
func bomb(t testing.TB, open, filler, close string, size int) []byte {
	t.Helper()
	return rewriteSheet(t, workbook(t, "x", "", ""), func(zw *zip.Writer, name string) {
		w, _ := zw.Create(name)
		io.WriteString(w, open)
		chunk := []byte(strings.Repeat(filler, max(1, (64<<10)/len(filler))))
		for n := 0; n < size; n += len(chunk) {
			w.Write(chunk)
		}
		io.WriteString(w, close)
	})
}

// TestLimits: each limit is enforced with its own error, before the work it guards.
func TestLimits(t *testing.T) {
	small := Limits{MaxRows: 10, MaxColumns: 5, MaxCellBytes: 100, MaxSharedStrings: 3, MaxSharedStringBytes: 20, MaxParts: 20,
		MaxPartBytes: 1 << 20, MaxTotalBytes: 2 << 20}
	row := func(r string) []byte { return workbook(t, sheetOpen+r+sheetClose, "", "") }
	sst := func(s string) []byte {
		return workbook(t, sheetOpen+sheetClose, `<sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">`+s+`</sst>`, "")
	}
	manyParts := map[string]string{}
	for i := range 30 {
		manyParts[fmt.Sprint("p", i)] = ""
	}
	deep := strings.Repeat("<a>", 100) + strings.Repeat("</a>", 100)
	tests := []struct {
		name string
		data []byte
		lim  Limits
		want error
	}{
		{"file size", sample(t), Limits{MaxFileBytes: 1000}, ErrFileTooLarge},
		{"parts", zipOf(t, manyParts), small, ErrTooManyParts},
		{"declared part size", bomb(t, sheetOpen, "<!-- bomb -->", sheetClose, 3<<20), Limits{MaxPartBytes: 1 << 20}, ErrPartTooLarge},
		{"declared total", bomb(t, sheetOpen, "<!-- bomb -->", sheetClose, 3<<20), small, ErrInflatedTooLarge},
		{"compression ratio", bomb(t, sheetOpen, "<!-- bomb -->", sheetClose, 3<<20), Limits{}, ErrCompressionRatio},
		{"compression ratio, a lower limit", bomb(t, sheetOpen+`<row><c t="inlineStr"><is><t>`, "abcdefghij", `</t></is></c></row>`+sheetClose, 2<<20), Limits{MaxRatio: 50}, ErrCompressionRatio},
		{"actual part size", lyingPart(t, 3<<20), Limits{MaxPartBytes: 1 << 20}, ErrCorrupt}, // archive/zip stops at the declared size
		{"row number", row(`<row r="11"/>`), small, ErrTooManyRows},
		{"huge row number", row(`<row r="99999999999999999999"/>`), small, ErrTooManyRows},
		{"rows without numbers", row(strings.Repeat(`<row/>`, 11)), small, ErrTooManyRows},
		{"row from a cell", row(`<row><c r="A11"><v>1</v></c></row>`), small, ErrTooManyRows},
		{"column", row(`<row><c r="F1"><v>1</v></c></row>`), small, ErrTooManyColumns},
		{"huge column", row(`<row><c r="ZZZZZZZZZZZZZZZZZZZZ1"><v>1</v></c></row>`), small, ErrTooManyColumns},
		{"columns without references", row(`<row>` + strings.Repeat(`<c><v>1</v></c>`, 6) + `</row>`), small, ErrTooManyColumns},
		{"cell value", row(`<row><c><v>` + strings.Repeat("1", 101) + `</v></c></row>`), small, ErrCellTooLarge},
		{"inline string", row(`<row><c t="inlineStr"><is><r><t>` + strings.Repeat("é", 30) + `</t></r><r><t>` + strings.Repeat("é", 30) + `</t></r></is></c></row>`), small, ErrCellTooLarge},
		{"shared strings count", sst(`<si><t>a</t></si><si/><si/><si/>`), small, ErrTooManySharedStrings},
		{"shared strings uniqueCount", workbook(t, sheetOpen+sheetClose, `<sst uniqueCount="4"></sst>`, ""), small, ErrTooManySharedStrings},
		{"shared strings bytes", sst(`<si><t>0123456789</t></si><si><t>0123456789</t></si><si><t>0</t></si>`), small, ErrSharedStringsTooLarge},
		{"shared string", sst(`<si><t>` + strings.Repeat("x", 101) + `</t></si>`), Limits{MaxCellBytes: 100}, ErrCellTooLarge},
		{"styles", workbook(t, sheetOpen+sheetClose, "", `<styleSheet><cellXfs>`+strings.Repeat(`<xf/>`, maxStyles+1)+`</cellXfs></styleSheet>`), Limits{}, ErrTooManyStyles},
		{"nesting", row(`<row><c><v>1</v>` + deep + `</c></row>`), small, ErrMarkupTooLarge},
		{"attribute", row(`<row a="` + strings.Repeat("x", maxMarkup) + `"/>`), small, ErrMarkupTooLarge},
		{"comment", row(`<!--` + strings.Repeat("<", maxMarkup) + `-->`), small, ErrMarkupTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := readErr(tt.data, tt.lim)
			if !errors.Is(err, tt.want) {
				t.Fatalf("got %v, want %v", err, tt.want)
			}
			if errors.Is(tt.want, ErrTooLarge) != errors.Is(err, ErrTooLarge) {
				t.Errorf("%v: ErrTooLarge %v", err, errors.Is(err, ErrTooLarge))
			}
		})
	}
	// Up to the limits, the same kinds of file are read.
	for name, data := range map[string][]byte{
		"rows":           row(`<row r="10"><c r="E10"><v>` + strings.Repeat("1", 100) + `</v></c></row>`),
		"shared strings": sst(`<si><t>0123456789</t></si><si><t>0123456789</t></si><si/>`),
		"nesting":        row(`<row><c><v>1</v>` + strings.Repeat("<a>", maxDepth-4) + strings.Repeat("</a>", maxDepth-4) + `</c></row>`),
	} {
		if err := readErr(data, small); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// TestHugeCellCostsLittle: the report that started this package: a small file with a
// 100 MB cell. It is refused after reading little more than the cell limit, with memory
// to match.
func TestHugeCellCostsLittle(t *testing.T) {
	for _, tt := range []struct {
		name                string
		open, filler, close string
	}{
		{"number", sheetOpen + `<row><c><v>`, "1234567890", `</v></c></row>` + sheetClose},
		{"inline string", sheetOpen + `<row><c t="inlineStr"><is><t>`, "abcdefghij", `</t></is></c></row>` + sheetClose},
		{"text between rows", sheetOpen, "&amp;", sheetClose},
		{"CDATA", sheetOpen + `<row><c><v><![CDATA[`, "1234567890", `]]></v></c></row>` + sheetClose},
	} {
		t.Run(tt.name, func(t *testing.T) {
			data := bomb(t, tt.open, tt.filler, tt.close, 100<<20)
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			start := time.Now()
			// The ratio check would refuse the file first: this is about the stream.
			err := readErr(data, Limits{MaxRatio: 1 << 30})
			runtime.ReadMemStats(&after)
			if !errors.Is(err, ErrCellTooLarge) {
				t.Fatalf("got %v", err)
			}
			if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 16<<20 {
				t.Errorf("%d KB of %d KB file allocated %d MB", len(data)>>10, 100<<10, alloc>>20)
			}
			if d := time.Since(start); d > 2*time.Second {
				t.Errorf("took %v", d)
			}
		})
	}
}

// TestManyRowsStopEarly: a sheet of 200,000 rows against a limit of 1,000 is refused at
// row 1,001, without reading the rest.
func TestManyRowsStopEarly(t *testing.T) {
	var sb strings.Builder
	sb.WriteString(sheetOpen)
	for i := 1; i <= 200_000; i++ {
		fmt.Fprintf(&sb, `<row r="%d"><c r="A%d" t="inlineStr"><is><t>s%d</t></is></c><c r="B%d"><v>%d</v></c></row>`, i, i, i, i, i)
	}
	sb.WriteString(sheetClose)
	data := workbook(t, sb.String(), "", "")
	start := time.Now()
	r := open(t, data, Limits{MaxRows: 1001})
	rows, err := r.Rows()
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	n := 0
	for rows.Next() {
		n++
	}
	if !errors.Is(rows.Err(), ErrTooManyRows) || n != 1001 {
		t.Fatalf("%d rows, then %v", n, rows.Err())
	}
	if r.inflated > 1<<20 {
		t.Errorf("inflated %d KB of a %d KB sheet", r.inflated>>10, sb.Len()>>10)
	}
	t.Logf("refused after %v, %d KB inflated", time.Since(start), r.inflated>>10)
}

func TestExcelSerialToTime(t *testing.T) {
	day := func(y int, m time.Month, d int) time.Time { return time.Date(y, m, d, 0, 0, 0, 0, time.UTC) }
	tests := []struct {
		serial   float64
		date1904 bool
		want     time.Time
	}{
		{1, false, day(1900, 1, 1)},
		{59, false, day(1900, 2, 28)},
		{61, false, day(1900, 3, 1)},
		{31118, false, day(1985, 3, 12)},
		{44454, false, day(2021, 9, 15)},
		{44454.5, false, day(2021, 9, 15).Add(12 * time.Hour)},
		{44454.999999, false, day(2021, 9, 15).Add(24*time.Hour - 86*time.Millisecond)}, // 86.4 ms before midnight, rounded
		{2958465, false, day(9999, 12, 31)},
		{0, true, day(1904, 1, 1)},
		{29656, true, day(1985, 3, 12)},
		{2957003, true, day(9999, 12, 31)},
	}
	for _, tt := range tests {
		got, err := ExcelSerialToTime(tt.serial, tt.date1904)
		if err != nil || !got.Equal(tt.want) {
			t.Errorf("ExcelSerialToTime(%v, %v) = %v, %v; want %v", tt.serial, tt.date1904, got, err, tt.want)
		}
	}
	for _, bad := range []struct {
		serial   float64
		date1904 bool
	}{{0, false}, {0.5, false}, {60, false}, {60.25, false}, {-1, false}, {-0.5, true}, {2958466, false}, {2957004, true}, {nan(), false}} {
		if got, err := ExcelSerialToTime(bad.serial, bad.date1904); err == nil {
			t.Errorf("ExcelSerialToTime(%v, %v) = %v", bad.serial, bad.date1904, got)
		}
	}
}

func nan() float64 { var zero float64; return zero / zero }

func TestIsDateFormat(t *testing.T) {
	for code, want := range map[string]bool{
		"dd/mm/yyyy": true, "yyyy-mm-dd": true, "d-mmm-yy": true, "h:mm AM/PM": true, "[h]:mm:ss": true, "[$-42A]dd/mm/yyyy": true,
		"[Red]mm:ss": true, "[ss]": true, "General": false, "0": false, "000000000000": false, "0.00E+00": false, "@": false,
		`"day "0`: false, `0\d`: false, `#,##0 "VND"`: false, `[Red]0.00;[Blue]-0.00`: false, `_(* #,##0_)`: false,
		`#,##0 ₫`: false, `0 "m"`: false, `"unterminated`: false, `[unterminated`: false, `*d0`: false,
	} {
		if got := IsDateFormat(code); got != want {
			t.Errorf("IsDateFormat(%q) = %v", code, got)
		}
	}
}

func TestCellText(t *testing.T) {
	tests := []struct {
		c    Cell
		want string
	}{
		{Cell{Type: TypeNumber, Value: "1.5E+3"}, "1500"},
		{Cell{Type: TypeNumber, Value: "79085012345", Format: "000000000000"}, "079085012345"},
		{Cell{Type: TypeNumber, Value: "1.5", Format: "0"}, "2"},
		{Cell{Type: TypeNumber, Value: "-2.5", Format: "000"}, "-003"},
		{Cell{Type: TypeNumber, Value: "1985", Format: "0;-0;;@"}, "1985"},
		{Cell{Type: TypeNumber, Value: "1.25", Format: "0.00"}, "1.25"},
		{Cell{Type: TypeNumber, Value: "-0"}, "0"},
		{Cell{Type: TypeNumber, Value: "1e-12"}, "1E-12"},
		{Cell{Type: TypeNumber, Value: "12345678901234567890123"}, "1.23456789012346E+22"},
		{Cell{Type: TypeDate, Value: "31118"}, "1985-03-12"},
		{Cell{Type: TypeDate, Value: "29656", date1904: true}, "1985-03-12"},
		{Cell{Type: TypeDate, Value: "60"}, "60"},
		{Cell{Type: TypeDate, Value: "1985-03-12"}, "1985-03-12"},
		{Cell{Type: TypeDate, Value: "not a date"}, "not a date"},
		{Cell{Type: TypeBool, Value: "1"}, "TRUE"},
		{Cell{Type: TypeError, Value: "#DIV/0!"}, "#DIV/0!"},
		{Cell{Type: TypeString, Value: " x "}, " x "},
	}
	for _, tt := range tests {
		if got := tt.c.Text(); got != tt.want {
			t.Errorf("%+v.Text() = %q, want %q", tt.c, got, tt.want)
		}
	}
}

func TestColumnName(t *testing.T) {
	for col, want := range map[int]string{0: "A", 25: "Z", 26: "AA", 51: "AZ", 52: "BA", 701: "ZZ", 702: "AAA", 16383: "XFD"} {
		if got := ColumnName(col); got != want {
			t.Errorf("ColumnName(%d) = %q, want %q", col, got, want)
		}
		if c, r, ok := parseRef(want + "7"); !ok || c != col || r != 7 {
			t.Errorf("parseRef(%s7) = %d, %d, %v", want, c, r, ok)
		}
	}
	for _, bad := range []string{"", "A", "7", "A0", "a1", "A-1", "A1B", "$A$1"} {
		if _, _, ok := parseRef(bad); ok {
			t.Errorf("parseRef(%q) ok", bad)
		}
	}
}

// TestLibreOffice reads files LibreOffice Calc wrote (testdata/README.md says how they
// were made): a worklist from WriteXLSX opened and saved again, and a CSV it converted,
// typing the values itself (dates, numbers).
func TestLibreOffice(t *testing.T) {
	t.Run("resaved", func(t *testing.T) {
		data, err := os.ReadFile("testdata/libreoffice-resaved.xlsx")
		if err != nil {
			t.Fatal(err)
		}
		rows := readAll(t, open(t, data, Limits{}))
		got := texts(rows)
		want := texts(readAll(t, open(t, sample(t), Limits{})))
		// LibreOffice keeps the values and their types, moving text to shared strings; it
		// drops the empty row and keeps a line break without its carriage return.
		want = slices.DeleteFunc(want, func(s string) bool { return s == "5:" })
		for i := range want {
			want[i] = strings.ReplaceAll(want[i], "|inlineStr", "|string")
			want[i] = strings.ReplaceAll(want[i], "\r\n", "\n")
		}
		if !slices.Equal(got, want) {
			t.Errorf("rows\n%q\nwant\n%q", got, want)
		}
		if c := rows[1].Cells[0]; c.Format != "@" {
			t.Errorf("text format lost: %+v", c)
		}
	})
	t.Run("converted CSV", func(t *testing.T) {
		data, err := os.ReadFile("testdata/libreoffice-csv.xlsx")
		if err != nil {
			t.Fatal(err)
		}
		got := texts(readAll(t, open(t, data, Limits{})))
		want := []string{
			"1: A=source_id|string B=full_name|string C=dob|string D=id_number|string E=dose_number|string F=vaccinated_on|string",
			"2: A=s1|string B=Nguyễn Văn An|string C=1985-03-12|date D=79085012345|number E=1|number F=2021-09-15|date",
			"3: A=s2|string B=Trần Thị Bích|string C=1990|number D=1190000002|number E=2|number F=2021-10-01|date",
		}
		if !slices.Equal(got, want) {
			t.Errorf("rows\n%q\nwant\n%q", got, want)
		}
	})
}

func BenchmarkReader(b *testing.B) {
	var buf bytes.Buffer
	w, _ := NewWriter(&buf, "Data")
	s, _ := w.NextSheet(SheetOptions{})
	for i := range 10000 {
		s.WriteRow(Text(fmt.Sprint("s", i)), Text("Nguyễn Văn An"), Text("1985-03-12"), Text("male"), Text("079085012345"),
			Text("0901234567"), Text("VN"), Text("0790001"), Text("PFIZER"), Int(2), Text("2021-09-15"), Text("FF1234"))
	}
	w.Close()
	data := buf.Bytes()
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		r := open(b, data, Limits{})
		rows, err := r.Rows()
		if err != nil {
			b.Fatal(err)
		}
		for rows.Next() {
		}
		if err := rows.Err(); err != nil {
			b.Fatal(err)
		}
		rows.Close()
	}
}

// TestRatioAdmitsRealSheets: a large worklist as this package writes it (20,000 rows, the
// columns a worklist has, many cells blank) compresses far less than MaxRatio: the bomb
// check refuses nothing a person sends.
func TestRatioAdmitsRealSheets(t *testing.T) {
	var buf bytes.Buffer
	w, err := NewWriter(&buf, "Worklist")
	if err != nil {
		t.Fatal(err)
	}
	s, err := w.NextSheet(SheetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 20_000 {
		row := []Field{Text(fmt.Sprintf("F001-%07d", i)), Text("Nguyễn Văn An"), Text("1990-05-17"), Text("male"),
			Text(fmt.Sprintf("0790900%05d", i)), Blank(), Text("VN"), Text("26734"), Text("PFIZER"), Int(1 + i%3),
			Text("2021-08-01"), Text("FF1234"), Text("VERIFIED"), Blank(), Blank(), Blank(), Blank(), Blank(), Blank(), Blank()}
		if err := s.WriteRow(row...); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	zr, err := zip.NewReader(bytes.NewReader(buf.Bytes()), int64(buf.Len()))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range zr.File {
		if f.UncompressedSize64 > ratioFloor {
			t.Logf("%s: %d bytes from %d (%.0f:1)", f.Name, f.UncompressedSize64, f.CompressedSize64, float64(f.UncompressedSize64)/float64(f.CompressedSize64))
		}
	}
	r := open(t, buf.Bytes(), Limits{})
	rows, err := r.Rows()
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	n := 0
	for rows.Next() {
		n++
	}
	if err := rows.Err(); err != nil || n != 20_000 {
		t.Fatalf("read %d rows: %v", n, err)
	}
}
