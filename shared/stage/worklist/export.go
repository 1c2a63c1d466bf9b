package worklist

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"iter"

	"github.com/vaxpass/vaxpass/shared/stage/worklist/xlsx"
)

// SheetName is the name of the worklist's sheet in the .xlsx export.
const SheetName = "Worklist"

// GuideSheetName is the name of the .xlsx export's second sheet: how to fill the list in.
const GuideSheetName = "Hướng dẫn"

// guide is the instruction sheet, Vietnamese then English, one paragraph a row.
var guide = [][2]string{
	{"Hướng dẫn điền danh sách / How to fill in this list", ""},
	{"Chỉ điền vào các cột màu vàng: Sửa họ và tên (corrected_full_name), Sửa ngày sinh (corrected_dob), Sửa giới tính (corrected_gender), Sửa số CCCD/CMND (corrected_id_number) và Ghi chú (note).",
		"Fill in the yellow columns only: corrected_full_name, corrected_dob, corrected_gender, corrected_id_number and note."},
	{"Để trống ô sửa nếu thông tin đã đúng. Chỉ những ô sửa được ghi lại; ghi chú không thay đổi hồ sơ.",
		"Leave a correction cell empty when the value is right. Only the correction cells change the record; the note changes nothing."},
	{"Các cột khác chỉ để đọc: hệ thống lấy hồ sơ đã lưu, không lấy giá trị trong các cột này. Nếu một cột chỉ đọc bị sửa, dòng đó sẽ có cảnh báo và giá trị đó không được ghi.",
		"The other columns are read-only: the stored record is used, not these cells. A read-only cell that was changed is reported as a warning and never written."},
	{"Ngày sinh: ghi theo dạng NN/TT/NNNN (ví dụ 04/03/1985) hoặc NNNN-TT-NN.",
		"Dates: DD/MM/YYYY (for example 04/03/1985) or YYYY-MM-DD."},
	{"Giới tính: Nam hoặc Nữ.", "Gender: Nam (male) or Nữ (female)."},
	{"Số CCCD có 12 chữ số, CMND 9 chữ số; giữ nguyên số 0 ở đầu (các ô đã được định dạng văn bản).",
		"ID numbers: 12 digits (CCCD) or 9 (CMND); keep the leading zeros (the cells are formatted as text)."},
	{"Không đổi tên, thứ tự hay xoá các cột; lưu lại dưới dạng .xlsx rồi gửi lên (POST /v1/imports).",
		"Do not rename, reorder or delete columns; save as .xlsx and send it back (POST /v1/imports)."},
}

// MaxSheetRows is the most data rows an .xlsx sheet can hold (Excel's limit, minus the
// header).
const MaxSheetRows = xlsx.MaxSheetRows - 1

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
	if err := cw.Write(Header()); err != nil {
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

// WriteXLSX writes the rows as an .xlsx worklist and returns how many rows it wrote, then
// the instruction sheet (GuideSheetName). It streams the sheet, so long lists need little
// memory. The header ("Nhãn (field_name)", Header) is frozen and has
// filter buttons; the corrected_* and note columns are marked for input and, like every
// other text column (ID, phone, commune, dates), formatted as text and written as text
// cells, so that a spreadsheet program keeps leading zeros and does not turn dates into
// numbers, in what it read and in what the commune types.
func WriteXLSX(w io.Writer, rows iter.Seq[Row]) (int, error) {
	xw, err := xlsx.NewWriter(w, SheetName, GuideSheetName)
	if err != nil {
		return 0, fmt.Errorf("xlsx worklist: %w", err)
	}
	st, err := newStyles(xw)
	if err != nil {
		return 0, fmt.Errorf("xlsx worklist: %w", err)
	}
	opt := xlsx.SheetOptions{Widths: widths[:], ColStyles: make([]int, numColumns), FreezeRows: 1, AutoFilter: true}
	for c := column(0); c < numColumns; c++ {
		opt.ColStyles[c] = st.text
		if isInput(c) {
			opt.ColStyles[c] = st.input
		}
	}
	sheet, err := xw.NextSheet(opt)
	if err != nil {
		return 0, fmt.Errorf("xlsx worklist: %w", err)
	}

	fields := make([]xlsx.Field, numColumns)
	header := Header()
	for c := column(0); c < numColumns; c++ {
		style := st.header
		if isInput(c) {
			style = st.inputHeader
		}
		fields[c] = xlsx.Text(header[c]).WithStyle(style)
	}
	if err := sheet.WriteRowOpts(xlsx.RowOptions{Height: 20}, fields...); err != nil {
		return 0, fmt.Errorf("xlsx worklist: %w", err)
	}

	n := 0
	for r := range rows {
		if n == MaxSheetRows {
			return n, fmt.Errorf("%w: more than %d rows", ErrTooManyRows, MaxSheetRows)
		}
		v := cells(r)
		for c := range v {
			switch {
			case column(c) == colDoseNumber && r.Record.DoseNumber != 0:
				fields[c] = xlsx.Int(r.Record.DoseNumber) // a number, so that Excel sorts doses right
			case v[c] == "":
				fields[c] = xlsx.Blank() // no cell: the column's text style applies when typed into
			default:
				fields[c] = xlsx.Text(v[c]).WithStyle(st.text)
			}
		}
		if err := sheet.WriteRow(fields...); err != nil {
			return n, fmt.Errorf("xlsx worklist row %d: %w", n+2, err)
		}
		n++
	}
	if err := writeGuide(xw, st); err != nil {
		return n, fmt.Errorf("xlsx worklist guide: %w", err)
	}
	if err := xw.Close(); err != nil {
		return n, fmt.Errorf("write xlsx worklist: %w", err)
	}
	return n, nil
}

// writeGuide writes the instruction sheet: Vietnamese in column A, English in B.
func writeGuide(xw *xlsx.Writer, st styles) error {
	sheet, err := xw.NextSheet(xlsx.SheetOptions{Widths: []float64{90, 70}, ColStyles: []int{st.wrap, st.wrap}})
	if err != nil {
		return err
	}
	for i, g := range guide {
		style := st.wrap
		if i == 0 {
			style = st.header
		}
		if err := sheet.WriteRow(xlsx.Text(g[0]).WithStyle(style), xlsx.Text(g[1]).WithStyle(style)); err != nil {
			return err
		}
	}
	return nil
}

// isInput reports whether the commune fills the column in.
func isInput(c column) bool { return c >= colCorrectedFullName && c <= colNote }

type styles struct{ header, inputHeader, text, input, wrap int }

// textFormat is Excel's built-in number format 49, "@": the cell holds text as typed.
const textFormat = 49

func newStyles(w *xlsx.Writer) (styles, error) {
	var s styles
	var err error
	const border = "555555"
	if s.header, err = w.AddStyle(xlsx.Style{Bold: true, Text: true, Border: border, Fill: "D9E1F2"}); err != nil {
		return s, err
	}
	if s.inputHeader, err = w.AddStyle(xlsx.Style{Bold: true, Text: true, Border: border, Fill: "FFD966"}); err != nil {
		return s, err
	}
	if s.text, err = w.AddStyle(xlsx.Style{Text: true}); err != nil {
		return s, err
	}
	if s.input, err = w.AddStyle(xlsx.Style{Text: true, Fill: "FFF2CC"}); err != nil {
		return s, err
	}
	s.wrap, err = w.AddStyle(xlsx.Style{Text: true, Wrap: true})
	return s, err
}
