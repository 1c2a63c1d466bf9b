package worklist

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"iter"

	"github.com/xuri/excelize/v2"
)

// SheetName is the name of the worklist's sheet in the .xlsx export.
const SheetName = "Worklist"

// MaxSheetRows is the most data rows an .xlsx sheet can hold (Excel's limit, minus the
// header).
const MaxSheetRows = excelize.TotalRows - 1

// ErrTooManyRows: the worklist does not fit in one sheet; export by commune instead.
var ErrTooManyRows = errors.New("worklist longer than one sheet holds")

// utf8BOM starts the CSV so that Excel opens it as UTF-8 (Vietnamese letters intact).
const utf8BOM = "\ufeff"

// WriteCSV writes the rows as a CSV worklist (UTF-8 with a byte-order mark, header first)
// and returns how many rows it wrote. Cells that a spreadsheet would run as a formula get
// a leading apostrophe, which ReadCSV removes again.
func WriteCSV(w io.Writer, rows iter.Seq[Row]) (int, error) {
	if _, err := io.WriteString(w, utf8BOM); err != nil {
		return 0, fmt.Errorf("write worklist: %w", err)
	}
	cw := csv.NewWriter(w)
	if err := cw.Write(columnNames[:]); err != nil {
		return 0, fmt.Errorf("write worklist: %w", err)
	}
	n := 0
	record := make([]string, numColumns)
	for r := range rows {
		v := cells(r)
		for i := range v {
			record[i] = defuseFormula(v[i])
		}
		if err := cw.Write(record); err != nil {
			return n, fmt.Errorf("write worklist row %d: %w", n+2, err)
		}
		n++
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		return n, fmt.Errorf("write worklist: %w", err)
	}
	return n, nil
}

// defuseFormula protects a CSV cell from formula injection: spreadsheets run a cell that
// starts with = + - @ (or a tab or carriage return); an apostrophe in front makes it text.
func defuseFormula(s string) string {
	if s != "" && isFormulaStart(s[0]) {
		return "'" + s
	}
	return s
}

// restoreFormula undoes defuseFormula.
func restoreFormula(s string) string {
	if len(s) >= 2 && s[0] == '\'' && isFormulaStart(s[1]) {
		return s[1:]
	}
	return s
}

func isFormulaStart(c byte) bool {
	return c == '=' || c == '+' || c == '-' || c == '@' || c == '\t' || c == '\r'
}

// WriteXLSX writes the rows as an .xlsx worklist and returns how many rows it wrote. It
// streams the sheet (excelize StreamWriter), so long lists need little memory. The header
// is frozen; the corrected_* and note columns are marked for input and, like the ID,
// phone and date columns, formatted as text so that what the commune types stays as typed
// (no lost leading zeros, no dates turned into numbers).
func WriteXLSX(w io.Writer, rows iter.Seq[Row]) (int, error) {
	f := excelize.NewFile()
	defer f.Close()
	if err := f.SetSheetName("Sheet1", SheetName); err != nil {
		return 0, fmt.Errorf("xlsx worklist: %w", err)
	}
	sw, err := f.NewStreamWriter(SheetName)
	if err != nil {
		return 0, fmt.Errorf("xlsx worklist: %w", err)
	}
	st, err := newStyles(f)
	if err != nil {
		return 0, fmt.Errorf("xlsx worklist: %w", err)
	}
	for c := column(0); c < numColumns; c++ {
		col := int(c) + 1
		if err := sw.SetColWidth(col, col, widths[c]); err != nil {
			return 0, fmt.Errorf("xlsx worklist: %w", err)
		}
		style := st.text
		if isInput(c) {
			style = st.input
		}
		if err := sw.SetColStyle(col, col, style); err != nil {
			return 0, fmt.Errorf("xlsx worklist: %w", err)
		}
	}
	if err := sw.SetPanes(&excelize.Panes{Freeze: true, YSplit: 1, TopLeftCell: "A2", ActivePane: "bottomLeft"}); err != nil {
		return 0, fmt.Errorf("xlsx worklist: %w", err)
	}

	header := make([]any, numColumns)
	for c := column(0); c < numColumns; c++ {
		style := st.header
		if isInput(c) {
			style = st.inputHeader
		}
		header[c] = excelize.Cell{StyleID: style, Value: columnNames[c]}
	}
	if err := sw.SetRow("A1", header, excelize.RowOpts{Height: 20}); err != nil {
		return 0, fmt.Errorf("xlsx worklist: %w", err)
	}

	n := 0
	values := make([]any, numColumns)
	for r := range rows {
		if n == MaxSheetRows {
			return n, fmt.Errorf("%w: more than %d rows", ErrTooManyRows, MaxSheetRows)
		}
		v := cells(r)
		for c := range v {
			switch {
			case column(c) == colDoseNumber && r.Record.DoseNumber != 0:
				values[c] = r.Record.DoseNumber // a number, so that Excel sorts doses right
			case v[c] == "":
				values[c] = nil // no cell: the column's text style applies when typed into
			default:
				values[c] = v[c]
			}
		}
		cell, err := excelize.CoordinatesToCellName(1, n+2)
		if err != nil {
			return n, fmt.Errorf("xlsx worklist: %w", err)
		}
		if err := sw.SetRow(cell, values); err != nil {
			return n, fmt.Errorf("xlsx worklist row %d: %w", n+2, err)
		}
		n++
	}
	if err := sw.Flush(); err != nil {
		return n, fmt.Errorf("xlsx worklist: %w", err)
	}
	if _, err := f.WriteTo(w); err != nil {
		return n, fmt.Errorf("write xlsx worklist: %w", err)
	}
	return n, nil
}

// isInput reports whether the commune fills the column in.
func isInput(c column) bool { return c >= colCorrectedFullName }

type styles struct{ header, inputHeader, text, input int }

// textFormat is Excel's built-in number format 49, "@": the cell holds text as typed.
const textFormat = 49

func newStyles(f *excelize.File) (styles, error) {
	var s styles
	var err error
	border := []excelize.Border{{Type: "bottom", Color: "555555", Style: 1}}
	if s.header, err = f.NewStyle(&excelize.Style{
		Font: &excelize.Font{Bold: true}, NumFmt: textFormat, Border: border,
		Fill: excelize.Fill{Type: "pattern", Pattern: 1, Color: []string{"D9E1F2"}},
	}); err != nil {
		return s, err
	}
	if s.inputHeader, err = f.NewStyle(&excelize.Style{
		Font: &excelize.Font{Bold: true}, NumFmt: textFormat, Border: border,
		Fill: excelize.Fill{Type: "pattern", Pattern: 1, Color: []string{"FFD966"}},
	}); err != nil {
		return s, err
	}
	if s.text, err = f.NewStyle(&excelize.Style{NumFmt: textFormat}); err != nil {
		return s, err
	}
	s.input, err = f.NewStyle(&excelize.Style{
		NumFmt: textFormat, Fill: excelize.Fill{Type: "pattern", Pattern: 1, Color: []string{"FFF2CC"}},
	})
	return s, err
}
