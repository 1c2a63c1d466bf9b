package worklist

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vaxpass/vaxpass/shared/stage/worklist/xlsx"
)

// TestXLSXTextCells: the cells a spreadsheet program would otherwise turn into numbers
// (IDs, phones, communes, dates) are text cells in the text format, and so is every
// column a commune types into.
func TestXLSXTextCells(t *testing.T) {
	var buf bytes.Buffer
	if _, err := WriteXLSX(&buf, slices.Values(sampleRows())); err != nil {
		t.Fatal(err)
	}
	r, err := xlsx.NewReader(bytes.NewReader(buf.Bytes()), int64(buf.Len()), xlsx.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	rows, err := r.Rows()
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		row := rows.Row()
		for _, c := range row.Cells {
			want := xlsx.TypeInlineString
			if column(c.Col) == colDoseNumber && row.Num > 1 {
				want = xlsx.TypeNumber
			}
			if c.Type != want || (want == xlsx.TypeInlineString && c.Format != "@") {
				t.Errorf("%s: %s cell in format %q", xlsx.CellName(c.Col, row.Num), c.Type, c.Format)
			}
		}
		if row.Num == 2 && (row.Cells[colIDNumber].Value != "079085012345" || row.Cells[colCommuneCode].Value != "0790001") {
			t.Errorf("row 2: %+v", row.Cells)
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
}

// TestLibreOfficeWorklist reads a worklist that LibreOffice Calc opened and saved again
// (testdata/README.md): nothing changed, leading zeros included.
func TestLibreOfficeWorklist(t *testing.T) {
	data, err := os.ReadFile("testdata/worklist-libreoffice.xlsx")
	if err != nil {
		t.Fatal(err)
	}
	res, err := ReadXLSX(bytes.NewReader(data), today, DefaultLimits())
	if err != nil {
		t.Fatal(err)
	}
	checkRoundTrip(t, sampleRows(), res)
}

// TestLibreOfficeLive does the same with the LibreOffice installed here, if any, on what
// WriteXLSX writes now.
func TestLibreOfficeLive(t *testing.T) {
	soffice, err := exec.LookPath("soffice")
	if err != nil {
		t.Skip("no LibreOffice (soffice) installed")
	}
	dir := t.TempDir()
	var buf bytes.Buffer
	if _, err := WriteXLSX(&buf, slices.Values(sampleRows())); err != nil {
		t.Fatal(err)
	}
	in := filepath.Join(dir, "in", "worklist.xlsx")
	os.MkdirAll(filepath.Dir(in), 0o755)
	if err := os.WriteFile(in, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(soffice, "-env:UserInstallation=file://"+filepath.Join(dir, "profile"), "--headless",
		"--convert-to", "xlsx", "--outdir", filepath.Join(dir, "out"), in)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("soffice: %v\n%s", err, out)
	}
	data, err := os.ReadFile(filepath.Join(dir, "out", "worklist.xlsx"))
	if err != nil {
		t.Fatal(err)
	}
	res, err := ReadXLSX(bytes.NewReader(data), today, DefaultLimits())
	if err != nil {
		t.Fatal(err)
	}
	checkRoundTrip(t, sampleRows(), res)
}

func TestImportLabelledHeader(t *testing.T) {
	header := []any{"Mã (source_id)", "Họ và tên (full_name)", "Ngày sinh (dob)", "Giới tính (GENDER)", "Số CCCD/CMND (id_number)",
		"vaccine", "Mũi (dose_number)", " Ngày tiêm ( vaccinated_on ) "}
	res, err := ReadXLSX(bytes.NewReader(xlsxOf(t, [][]any{header,
		{"l1", "Lê Thị Hoa", "1970", "female", "079170000001", "ABDALA", 3, "2022-01-05"}}, nil)), today, DefaultLimits())
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Accepted) != 1 || res.Accepted[0].Record.IDNumber != "079170000001" {
		t.Fatalf("accepted %+v, rejected %+v", res.Accepted, res.Rejected)
	}
	for _, bad := range []string{"Số CCCD (unknown)", "id_number (label)", "(id_number"} {
		h := slices.Clone(header)
		h[4] = bad
		if _, err := ReadXLSX(bytes.NewReader(xlsxOf(t, [][]any{h}, nil)), today, DefaultLimits()); !errors.Is(err, ErrHeader) {
			t.Errorf("%q: %v", bad, err)
		}
	}
}

// TestHostileCells: the kinds of file the issue reported, each refused early with both
// this package's sentinel and the codec's.
func TestHostileCells(t *testing.T) {
	writeSheet := func(rows int, cell string) []byte {
		var buf bytes.Buffer
		w, _ := xlsx.NewWriter(&buf, "S")
		s, _ := w.NextSheet(xlsx.SheetOptions{})
		header := make([]xlsx.Field, len(importHeader))
		for i, h := range importHeader {
			header[i] = xlsx.Text(h.(string))
		}
		s.WriteRow(header...)
		for i := range rows {
			err := s.WriteRow(xlsx.Text(fmt.Sprint("r", i)), xlsx.Text(cell), xlsx.Text("1985"), xlsx.Text("male"), xlsx.Blank(), xlsx.Blank(),
				xlsx.Blank(), xlsx.Blank(), xlsx.Text("PFIZER"), xlsx.Int(1), xlsx.Text("2021-09-15"))
			if err != nil {
				t.Fatal(err)
			}
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		return buf.Bytes()
	}
	lim := DefaultLimits()
	lim.MaxRows = 1000
	tests := []struct {
		name  string
		data  []byte
		codec error
	}{
		{"200,000 rows against 1,000", writeSheet(200_000, "Nguyễn Văn An"), xlsx.ErrTooManyRows},
		{"a cell of 60 KB", writeSheet(1, strings.Repeat("ệ", 20_000)), xlsx.ErrCellTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			start := time.Now()
			res, err := ReadXLSX(bytes.NewReader(tt.data), today, lim)
			if !errors.Is(err, ErrTooLarge) || !errors.Is(err, tt.codec) || res != nil {
				t.Fatalf("got %+v, %v", res, err)
			}
			t.Logf("%d KB file refused in %v: %v", len(tt.data)>>10, time.Since(start), err)
		})
	}
}
