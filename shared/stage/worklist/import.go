package worklist

import (
	"archive/zip"
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/xuri/excelize/v2"

	"github.com/vaxpass/vaxpass/shared/domain/dose"
)

// Limits bound what reading one sheet may cost.
type Limits struct {
	MaxBytes    int64 // size of the file as sent
	MaxRows     int   // rows after the header, blank ones included
	MaxColumns  int
	MaxUnzipped int64 // sum of the uncompressed sizes of an .xlsx's parts
	MaxParts    int   // files inside an .xlsx
}

// DefaultLimits fit a commune's worklist or a facility's daily import with room to
// spare, and keep a hostile file from costing more than a few hundred megabytes.
func DefaultLimits() Limits {
	return Limits{MaxBytes: 20 << 20, MaxRows: 200_000, MaxColumns: 64, MaxUnzipped: 256 << 20, MaxParts: 1000}
}

// Sentinel errors: the whole file is refused and nothing is accepted.
var (
	ErrTooLarge     = errors.New("spreadsheet too large")
	ErrCorrupt      = errors.New("spreadsheet unreadable")
	ErrEncrypted    = errors.New("spreadsheet is password-protected: save it without a password")
	ErrLegacyFormat = errors.New("legacy .xls (or other OLE2) file: save it as .xlsx")
	ErrHeader       = errors.New("bad header row")
)

// CodeDuplicate is the FieldError code of a source_id repeated within one file.
const CodeDuplicate = "duplicate"

// Accepted is a row that gave a valid dose record.
type Accepted struct {
	Row    int // 1-based row of the sheet; the header is row 1
	Record dose.Record
	// Corrected lists the dose-record fields whose value came from a corrected_* column
	// (a worklist filled in by the commune), in column order.
	Corrected []string
}

// Rejected is a row that did not; Errors name the column to fix (corrected_dob rather
// than dob when the bad value was typed as a correction).
type Rejected struct {
	Row      int
	SourceID string
	Errors   []dose.FieldError
}

// Result is the row-by-row answer for one file.
type Result struct {
	// Worklist is true when the sheet has corrected_* columns: a worklist sent back.
	Worklist bool
	Accepted []Accepted
	Rejected []Rejected
}

// Read reads an .xlsx or a CSV file, telling them apart by their first bytes.
func Read(r io.Reader, today time.Time, lim Limits) (*Result, error) {
	data, err := readLimited(r, lim.MaxBytes)
	if err != nil {
		return nil, err
	}
	if bytes.HasPrefix(data, zipMagic) || bytes.HasPrefix(data, oleMagic) {
		return readXLSX(data, today, lim)
	}
	return readCSV(data, today, lim)
}

// ReadXLSX reads the first sheet of an .xlsx file.
func ReadXLSX(r io.Reader, today time.Time, lim Limits) (*Result, error) {
	data, err := readLimited(r, lim.MaxBytes)
	if err != nil {
		return nil, err
	}
	return readXLSX(data, today, lim)
}

// ReadCSV reads a CSV file (UTF-8, with or without a byte-order mark).
func ReadCSV(r io.Reader, today time.Time, lim Limits) (*Result, error) {
	data, err := readLimited(r, lim.MaxBytes)
	if err != nil {
		return nil, err
	}
	return readCSV(data, today, lim)
}

func readLimited(r io.Reader, limit int64) ([]byte, error) {
	data, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, fmt.Errorf("read spreadsheet: %w", err)
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("%w: more than %d bytes", ErrTooLarge, limit)
	}
	return data, nil
}

var (
	zipMagic = []byte("PK\x03\x04")
	oleMagic = []byte{0xd0, 0xcf, 0x11, 0xe0, 0xa1, 0xb1, 0x1a, 0xe1}
	// encryptedPackage is the stream name an encrypted OOXML file carries inside its OLE2
	// container (MS-OFFCRYPTO), as the directory stores it: UTF-16LE.
	encryptedPackage = utf16le("EncryptedPackage")
)

func utf16le(s string) []byte {
	b := make([]byte, 0, 2*len(s))
	for i := 0; i < len(s); i++ {
		b = append(b, s[i], 0)
	}
	return b
}

// checkContainer inspects the file before the spreadsheet library opens it: the OLE2
// wrapper of encrypted workbooks, and the zip's central directory, whose declared sizes
// bound what unzipping may produce (archive/zip refuses to inflate past them).
func checkContainer(data []byte, lim Limits) error {
	if bytes.HasPrefix(data, oleMagic) {
		if bytes.Contains(data, encryptedPackage) {
			return ErrEncrypted
		}
		return ErrLegacyFormat
	}
	if !bytes.HasPrefix(data, zipMagic) {
		return fmt.Errorf("%w: not an .xlsx file", ErrCorrupt)
	}
	zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		return fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	if len(zr.File) > lim.MaxParts {
		return fmt.Errorf("%w: %d parts inside the file (limit %d)", ErrTooLarge, len(zr.File), lim.MaxParts)
	}
	var total uint64
	for _, f := range zr.File {
		total += f.UncompressedSize64
		if f.UncompressedSize64 > uint64(lim.MaxUnzipped) || total > uint64(lim.MaxUnzipped) {
			return fmt.Errorf("%w: unpacks to more than %d bytes", ErrTooLarge, lim.MaxUnzipped)
		}
	}
	// Inflate every part once, within the sizes just checked: archive/zip stops at the
	// declared size and checks the CRC, and the spreadsheet library ignores both errors
	// (it would read a lying part truncated, silently).
	for _, f := range zr.File {
		if err := checkPart(f); err != nil {
			return fmt.Errorf("%w: part %q: %v", ErrCorrupt, truncate(f.Name, 60), err)
		}
	}
	return nil
}

func checkPart(f *zip.File) error {
	rc, err := f.Open()
	if err != nil {
		return err
	}
	defer rc.Close()
	_, err = io.Copy(io.Discard, rc)
	return err
}

func readXLSX(data []byte, today time.Time, lim Limits) (*Result, error) {
	if err := checkContainer(data, lim); err != nil {
		return nil, err
	}
	f, err := excelize.OpenReader(bytes.NewReader(data), excelize.Options{
		UnzipSizeLimit:    lim.MaxUnzipped,
		UnzipXMLSizeLimit: min(lim.MaxUnzipped, excelize.StreamChunkSize),
	})
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	defer f.Close()
	sheets := f.GetSheetList()
	if len(sheets) == 0 {
		return nil, fmt.Errorf("%w: no sheet", ErrCorrupt)
	}
	props, err := f.GetWorkbookProps()
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	date1904 := props.Date1904 != nil && *props.Date1904

	// Two cursors over the same sheet, in step: the displayed values (an ID column
	// formatted "000000000000" keeps its leading zero) and the raw ones (a date cell is a
	// serial number, whatever its display format).
	shown, err := f.Rows(sheets[0])
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	defer shown.Close()
	raw, err := f.Rows(sheets[0])
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	defer raw.Close()

	s := newSheet(today, lim)
	for row := 1; shown.Next(); row++ {
		if !raw.Next() {
			return nil, fmt.Errorf("%w: sheet rows out of step", ErrCorrupt)
		}
		values, err := shown.Columns()
		if err != nil {
			return nil, fmt.Errorf("%w: row %d: %v", ErrCorrupt, row, err)
		}
		rawValues, err := raw.Columns(excelize.Options{RawCellValue: true})
		if err != nil {
			return nil, fmt.Errorf("%w: row %d: %v", ErrCorrupt, row, err)
		}
		if err := s.add(row, values, func(c column, i int, v string) string {
			if (c == colDOB || c == colVaccinatedOn || c == colCorrectedDOB) && i < len(rawValues) {
				return excelDate(v, rawValues[i], date1904)
			}
			return v
		}); err != nil {
			return nil, err
		}
	}
	if err := shown.Error(); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	return s.result()
}

// excelDate turns a date cell back into the text the contract expects. A cell typed as
// text (or a number in General format) shows its raw value and stays as it is; a date
// cell shows a display format, and its raw value is the day serial.
func excelDate(shown, raw string, date1904 bool) string {
	if shown == raw {
		return shown
	}
	if _, err := dose.ParsePartialDate(strings.TrimSpace(shown)); err == nil {
		return shown // a custom format that already prints YYYY-MM-DD
	}
	serial, err := strconv.ParseFloat(raw, 64)
	if err != nil || serial < 1 || serial > 2958465 {
		return shown
	}
	if len(raw) == 4 && serial >= 1900 && serial <= 2099 && serial == math.Trunc(serial) {
		return raw // a year typed as a number, then formatted
	}
	t, err := excelize.ExcelDateToTime(math.Trunc(serial), date1904)
	if err != nil {
		return shown
	}
	return t.Format("2006-01-02")
}

func readCSV(data []byte, today time.Time, lim Limits) (*Result, error) {
	data = bytes.TrimPrefix(data, []byte(utf8BOM))
	cr := csv.NewReader(bytes.NewReader(data))
	cr.FieldsPerRecord = -1 // rows are judged here, with their row number
	cr.ReuseRecord = true
	s := newSheet(today, lim)
	for row := 1; ; row++ {
		values, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%w: row %d: %v", ErrCorrupt, row, err)
		}
		for i := range values {
			values[i] = restoreFormula(values[i])
		}
		if err := s.add(row, values, nil); err != nil {
			return nil, err
		}
	}
	return s.result()
}

// sheet turns rows into records: the header first, then one verdict per row.
type sheet struct {
	today   time.Time
	lim     Limits
	columns []column // sheet column index -> column; -1 for a trailing empty header cell
	has     [numColumns]bool
	seen    map[string]int // source_id -> row it first appeared in
	res     Result
	gotHead bool
}

func newSheet(today time.Time, lim Limits) *sheet {
	return &sheet{today: today, lim: lim, seen: map[string]int{}}
}

func (s *sheet) result() (*Result, error) {
	if !s.gotHead {
		return nil, fmt.Errorf("%w: the sheet is empty", ErrHeader)
	}
	return &s.res, nil
}

// add takes one row. fix, when not nil, adjusts a cell's value knowing its column.
func (s *sheet) add(row int, values []string, fix func(c column, i int, v string) string) error {
	if len(values) > s.lim.MaxColumns {
		return fmt.Errorf("%w: row %d has %d columns (limit %d)", ErrTooLarge, row, len(values), s.lim.MaxColumns)
	}
	if !s.gotHead {
		if blank(values) {
			return nil // leading blank rows before the header
		}
		s.gotHead = true
		return s.header(values)
	}
	if row-1 > s.lim.MaxRows {
		return fmt.Errorf("%w: more than %d rows", ErrTooLarge, s.lim.MaxRows)
	}
	if blank(values) {
		return nil
	}
	s.record(row, values, fix)
	return nil
}

func blank(values []string) bool {
	for _, v := range values {
		if strings.TrimSpace(v) != "" {
			return false
		}
	}
	return true
}

func (s *sheet) header(values []string) error {
	end := len(values)
	for end > 0 && strings.TrimSpace(values[end-1]) == "" {
		end--
	}
	s.columns = make([]column, len(values))
	for i, v := range values {
		if i >= end {
			s.columns[i] = -1
			continue
		}
		name := strings.ToLower(strings.TrimSpace(v))
		if name == "" {
			return fmt.Errorf("%w: column %s has no name", ErrHeader, columnLetter(i))
		}
		c := column(slices.Index(columnNames[:], name))
		if c < 0 {
			return fmt.Errorf("%w: unknown column %q (column %s); expected dose-record field names: %s",
				ErrHeader, truncate(v, 40), columnLetter(i), strings.Join(columnNames[:colLot+1], ","))
		}
		if s.has[c] {
			return fmt.Errorf("%w: column %q appears twice", ErrHeader, name)
		}
		s.has[c] = true
		s.columns[i] = c
	}
	var missing []string
	for _, c := range requiredColumns {
		if !s.has[c] {
			missing = append(missing, columnNames[c])
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("%w: missing column(s) %s", ErrHeader, strings.Join(missing, ","))
	}
	for _, c := range corrections {
		s.res.Worklist = s.res.Worklist || s.has[c.from]
	}
	return nil
}

// record judges one data row.
func (s *sheet) record(row int, values []string, fix func(c column, i int, v string) string) {
	var v [numColumns]string
	var errs []dose.FieldError
	for i, val := range values {
		c := column(-1)
		if i < len(s.columns) {
			c = s.columns[i]
		}
		if c < 0 {
			if strings.TrimSpace(val) != "" {
				errs = append(errs, dose.FieldError{Field: "column " + columnLetter(i), Code: dose.CodeFormat,
					Message: "has a value but no header"})
			}
			continue
		}
		if fix != nil {
			val = fix(c, i, val)
		}
		v[c] = val
	}

	var corrected []column
	for _, c := range corrections {
		if strings.TrimSpace(v[c.from]) != "" {
			v[c.to] = v[c.from]
			corrected = append(corrected, c.to)
		}
	}
	rec := dose.Record{
		SourceID: v[colSourceID], FullName: v[colFullName], DOB: v[colDOB], Gender: v[colGender],
		IDNumber: v[colIDNumber], Phone: v[colPhone], Nationality: v[colNationality],
		CommuneCode: v[colCommuneCode], Vaccine: v[colVaccine], VaccinatedOn: v[colVaccinatedOn], Lot: v[colLot],
	}
	doseNumberOK := true
	switch n := strings.TrimSpace(v[colDoseNumber]); {
	case n == "":
		doseNumberOK = false
		errs = append(errs, dose.FieldError{Field: "dose_number", Code: dose.CodeRequired, Message: "is required"})
	default:
		d, err := strconv.Atoi(n)
		if err != nil {
			doseNumberOK = false
			errs = append(errs, dose.FieldError{Field: "dose_number", Code: dose.CodeFormat, Message: "must be a whole number"})
		}
		rec.DoseNumber = d
	}
	rec.Normalize()
	for _, e := range rec.Validate(s.today) {
		if e.Field == "dose_number" && !doseNumberOK {
			continue // already reported as unreadable
		}
		errs = append(errs, e)
	}
	if first, dup := s.seen[rec.SourceID]; dup && rec.SourceID != "" {
		errs = append(errs, dose.FieldError{Field: "source_id", Code: CodeDuplicate,
			Message: "repeats the source_id of row " + strconv.Itoa(first)})
	} else if rec.SourceID != "" {
		s.seen[rec.SourceID] = row
	}

	if len(errs) > 0 {
		for i := range errs {
			for _, c := range corrections {
				if slices.Contains(corrected, c.to) && errs[i].Field == columnNames[c.to] {
					errs[i].Field = columnNames[c.from] // name the cell the commune typed
				}
			}
		}
		slices.SortStableFunc(errs, func(a, b dose.FieldError) int { return fieldOrder(a.Field) - fieldOrder(b.Field) })
		s.res.Rejected = append(s.res.Rejected, Rejected{Row: row, SourceID: truncate(rec.SourceID, dose.MaxSourceID), Errors: errs})
		return
	}
	acc := Accepted{Row: row, Record: rec}
	for _, c := range corrected {
		acc.Corrected = append(acc.Corrected, columnNames[c])
	}
	s.res.Accepted = append(s.res.Accepted, acc)
}

// fieldOrder sorts errors by the column they name: a corrected_* column sits with the field
// it corrects; columns without a header go last.
func fieldOrder(field string) int {
	field = strings.TrimPrefix(field, "corrected_")
	if i := slices.Index(columnNames[:], field); i >= 0 {
		return i
	}
	return int(numColumns)
}

// columnLetter names a 0-based column the way a spreadsheet shows it: A, B, ..., AA.
func columnLetter(i int) string {
	name, err := excelize.ColumnNumberToName(i + 1)
	if err != nil {
		return strconv.Itoa(i + 1)
	}
	return name
}

func truncate(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n]) + "…"
}
