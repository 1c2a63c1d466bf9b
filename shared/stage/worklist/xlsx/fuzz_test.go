package xlsx

import (
	"archive/zip"
	"bytes"
	"errors"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"
)

// fuzzLimits keep each input cheap while leaving every limit reachable.
var fuzzLimits = Limits{MaxFileBytes: 1 << 20, MaxParts: 64, MaxPartBytes: 1 << 20, MaxTotalBytes: 4 << 20,
	MaxRows: 1000, MaxColumns: 100, MaxCellBytes: 1000, MaxSharedStrings: 1000, MaxSharedStringBytes: 64 << 10}

// checkRead reads a whole file and checks what any input must give: a sentinel error, or
// rows within the limits.
func checkRead(t *testing.T, data []byte) {
	r, err := NewReader(bytes.NewReader(data), int64(len(data)), fuzzLimits)
	if err != nil {
		checkSentinel(t, err)
		return
	}
	rows, err := r.Rows()
	if err != nil {
		checkSentinel(t, err)
		return
	}
	defer rows.Close()
	last := 0
	for rows.Next() {
		row := rows.Row()
		if row.Num <= last || row.Num > fuzzLimits.MaxRows {
			t.Fatalf("row %d after %d", row.Num, last)
		}
		last = row.Num
		col := -1
		for _, c := range row.Cells {
			if c.Col <= col || c.Col >= fuzzLimits.MaxColumns {
				t.Fatalf("row %d: column %d after %d", row.Num, c.Col, col)
			}
			col = c.Col
			if c.Value == "" || len(c.Value) > fuzzLimits.MaxCellBytes || c.Type < TypeString || c.Type > TypeError {
				t.Fatalf("cell %s: %+v", CellName(c.Col, row.Num), c)
			}
			c.Text()
		}
	}
	if err := rows.Err(); err != nil {
		checkSentinel(t, err)
	}
}

func checkSentinel(t *testing.T, err error) {
	for _, e := range []error{ErrNotZip, ErrEncrypted, ErrLegacyFormat, ErrCorrupt, ErrTooLarge} {
		if errors.Is(err, e) {
			return
		}
	}
	t.Fatalf("error without a sentinel: %v", err)
}

// FuzzReader: whole files, seeded with what the writer and LibreOffice produce.
func FuzzReader(f *testing.F) {
	f.Add(sample(f))
	files, _ := filepath.Glob("testdata/*.xlsx")
	for _, name := range files {
		data, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add(workbook(f, sheetOpen+`<row><c t="s"><v>0</v></c></row>`+sheetClose, `<sst><si><t>a</t></si></sst>`, ""))
	f.Fuzz(func(t *testing.T, data []byte) { checkRead(t, data) })
}

// FuzzParts: the XML of the three parts read in full, inside a valid package (mutating a
// deflated archive mostly breaks its checksums, so the whole-file target rarely gets
// this far).
func FuzzParts(f *testing.F) {
	seeds := [][]byte{sample(f)}
	files, _ := filepath.Glob("testdata/*.xlsx")
	for _, name := range files {
		data, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		seeds = append(seeds, data)
	}
	for _, data := range seeds {
		zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
		if err != nil {
			f.Fatal(err)
		}
		part := func(name string) string {
			rc, err := zr.Open(name)
			if err != nil {
				return ""
			}
			defer rc.Close()
			b, _ := io.ReadAll(rc)
			return string(b)
		}
		f.Add(part("xl/worksheets/sheet1.xml"), part("xl/sharedStrings.xml"), part("xl/styles.xml"))
	}
	f.Add(sheetOpen+`<row r="7"><c r="B7" s="1"><v>31118</v></c><c r="C7" t="inlineStr"><is><r><t>in</t></r><rPh><t>x</t></rPh></is></c></row>`+sheetClose,
		`<sst uniqueCount="1"><si><r><t xml:space="preserve">a_x000D_ </t></r></si></sst>`,
		`<styleSheet><numFmts><numFmt numFmtId="164" formatCode="[h]:mm;@"/></numFmts><cellXfs><xf/><xf numFmtId="164"/></cellXfs></styleSheet>`)
	f.Fuzz(func(t *testing.T, sheet, sst, styles string) {
		checkRead(t, workbook(t, sheet, sst, styles))
	})
}

// FuzzRoundTrip: what the writer writes, the reader reads back unchanged.
func FuzzRoundTrip(f *testing.F) {
	f.Add("079085012345", 1.0, "Nguyễn Văn An")
	f.Add("  _x0041_\r\n\x00\uFFFF", -2.5e-12, "=HYPERLINK(\"x\")")
	f.Add("\xff\xfe bad utf-8", 1e21, "😀")
	f.Fuzz(func(t *testing.T, a string, n float64, b string) {
		var buf bytes.Buffer
		w, err := NewWriter(&buf, "Data", "Help")
		if err != nil {
			t.Fatal(err)
		}
		text, _ := w.AddStyle(Style{Text: true})
		s, err := w.NextSheet(SheetOptions{ColStyles: []int{text}, FreezeRows: 1, AutoFilter: true})
		if err != nil {
			t.Fatal(err)
		}
		err = s.WriteRow(Text(a).WithStyle(text), Number(n), Blank(), Text(b))
		switch {
		case math.IsNaN(n) || math.IsInf(n, 0):
			if !errors.Is(err, ErrBadValue) {
				t.Fatalf("%v: %v", n, err)
			}
			return
		case utf16Len(a) > MaxCellChars || utf16Len(b) > MaxCellChars:
			if !errors.Is(err, ErrCellTooLong) {
				t.Fatalf("long text: %v", err)
			}
			return
		case err != nil:
			t.Fatal(err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		r, err := NewReader(bytes.NewReader(buf.Bytes()), int64(buf.Len()), Limits{})
		if err != nil {
			t.Fatal(err)
		}
		rows := readAll(t, r)
		if len(rows) != 1 {
			t.Fatalf("rows %+v", rows)
		}
		got := map[int]Cell{}
		for _, c := range rows[0].Cells {
			got[c.Col] = c
		}
		for col, want := range map[int]string{0: a, 3: b} {
			want = asWritten(want)
			c, ok := got[col]
			if want == "" {
				if ok {
					t.Errorf("column %d: %+v for empty text", col, c)
				}
				continue
			}
			if !ok || c.Value != want || c.Type != TypeInlineString {
				t.Errorf("column %d: %+v, want %q", col, c, want)
			}
		}
		if v, err := got[1].Float(); err != nil || v != n || got[1].Type != TypeNumber {
			t.Errorf("number %v read as %+v (%v, %v)", n, got[1], v, err)
		}
	})
}

func utf16Len(s string) int {
	n := 0
	for _, r := range s {
		n++
		if r >= 0x10000 {
			n++
		}
	}
	return n
}

// asWritten is s with each byte of invalid UTF-8 replaced, as the writer does.
func asWritten(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b.WriteString("\uFFFD")
		} else {
			b.WriteString(s[i : i+size])
		}
		i += size
	}
	return b.String()
}
