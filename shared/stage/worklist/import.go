package worklist

import (
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/vaxpass/vaxpass/shared/domain/dose"
	"github.com/vaxpass/vaxpass/shared/stage/worklist/xlsx"
)

// Limits bound what reading one sheet may cost.
type Limits struct {
	MaxBytes    int64 // size of the file as sent
	MaxRows     int   // rows after the header, blank ones included
	MaxColumns  int
	MaxUnzipped int64 // sum of the uncompressed sizes of an .xlsx's parts
	MaxParts    int   // files inside an .xlsx
	// MaxCellBytes bounds one cell's text (UTF-8); 0 means DefaultMaxCellBytes. No field
	// of a dose record comes near it.
	MaxCellBytes int
}

// DefaultMaxCellBytes is the cell limit when Limits leaves it zero.
const DefaultMaxCellBytes = 32 << 10

// DefaultLimits fit a commune's worklist or a facility's daily import with room to
// spare, and keep a hostile file from costing more than a few hundred megabytes.
func DefaultLimits() Limits {
	return Limits{MaxBytes: 20 << 20, MaxRows: 200_000, MaxColumns: 64, MaxUnzipped: 256 << 20, MaxParts: 1000,
		MaxCellBytes: DefaultMaxCellBytes}
}

func (l Limits) cellBytes() int {
	if l.MaxCellBytes <= 0 {
		return DefaultMaxCellBytes
	}
	return l.MaxCellBytes
}

// xlsx turns the limits into the codec's, which checks each before the work it guards
// (the row number before the row's cells, a part's size before inflating it).
func (l Limits) xlsx() xlsx.Limits {
	rows := min(max(l.MaxRows, 0), xlsx.MaxSheetRows) + 1 // and the header
	cols := max(l.MaxColumns, 1)
	return xlsx.Limits{
		MaxFileBytes:  l.MaxBytes,
		MaxParts:      l.MaxParts,
		MaxPartBytes:  l.MaxUnzipped,
		MaxTotalBytes: l.MaxUnzipped,
		MaxRows:       rows,
		MaxColumns:    cols,
		MaxCellBytes:  l.cellBytes(),
		// Each string cell of the sheet, unique, and no more.
		MaxSharedStrings:     int(min(int64(rows)*int64(cols), 4<<20)),
		MaxSharedStringBytes: l.MaxUnzipped,
	}
}

// Sentinel errors: the whole file is refused and nothing is accepted.
var (
	ErrTooLarge     = errors.New("spreadsheet too large")
	ErrCorrupt      = errors.New("spreadsheet unreadable")
	ErrEncrypted    = errors.New("spreadsheet is password-protected: save it without a password")
	ErrLegacyFormat = errors.New("legacy .xls (or other OLE2) file: save it as .xlsx")
	ErrHeader       = errors.New("bad header row")
)

// FieldError codes of this package.
const (
	// CodeDuplicate: a source_id repeated within one file.
	CodeDuplicate = "duplicate"
	// CodeNotFound: a worklist row whose record is not stored (or not the caller's).
	CodeNotFound = "not_found"
	// CodeLostZeros: an ID, phone or commune cell came back as a number whose leading
	// zeros cannot be told; the row is refused so that nothing guesses.
	CodeLostZeros = "lost_leading_zeros"
	// CodeReadOnlyChanged is a warning: a read-only column of a worklist differs from
	// the stored record; the stored value is kept.
	CodeReadOnlyChanged = "read_only_changed"
	// CodeNoHeader: a value in a column without a header.
	CodeNoHeader = dose.CodeFormat
)

// Stored reads the stored record a worklist row corrects, by the row's facility_id (""
// when the sheet has none) and source_id. found is false when there is no such record
// the caller may change (another commune's record reads as none); err is a store failure.
type Stored func(facilityID, sourceID string) (rec dose.Record, found bool, err error)

// Accepted is a row that gave a valid dose record.
type Accepted struct {
	Row    int // 1-based row of the sheet; the header is row 1
	Record dose.Record
	// Corrected lists the dose-record fields whose value came from a corrected_* column
	// (a worklist filled in by the commune), in column order.
	Corrected []string
	// Facility is the row's facility_id as read (a worklist with that column).
	Facility string
	// FromStore: Record is the stored record with the row's corrections applied (a
	// worklist read with Stored), not the sheet's cells.
	FromStore bool
	// Warnings name the read-only columns whose cells differ from the stored record
	// (CodeReadOnlyChanged): reported, never written.
	Warnings []dose.FieldError
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
		return readXLSX(data, today, lim, nil)
	}
	return readCSV(data, today, lim)
}

// ReadXLSX reads the first sheet of an .xlsx file.
func ReadXLSX(r io.Reader, today time.Time, lim Limits) (*Result, error) {
	return ReadXLSXStored(r, today, lim, nil)
}

// ReadXLSXStored reads the first sheet of an .xlsx file; a worklist sent back (a sheet
// with corrected_* columns) is read against the store: each row's record is the stored
// one (stored, by facility_id and source_id) with the row's corrected_* cells applied, the
// read-only cells only compared (Accepted.Warnings). A nil stored reads the cells as the
// record, as ReadXLSX does.
func ReadXLSXStored(r io.Reader, today time.Time, lim Limits, stored Stored) (*Result, error) {
	data, err := readLimited(r, lim.MaxBytes)
	if err != nil {
		return nil, err
	}
	return readXLSX(data, today, lim, stored)
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
)

func readXLSX(data []byte, today time.Time, lim Limits, stored Stored) (*Result, error) {
	xr, err := xlsx.NewReader(bytes.NewReader(data), int64(len(data)), lim.xlsx())
	if err != nil {
		return nil, xlsxError(err)
	}
	rows, err := xr.Rows()
	if err != nil {
		return nil, xlsxError(err)
	}
	defer rows.Close()

	s := newSheet(today, lim)
	s.stored = stored
	var (
		values []string
		cells  []xlsx.Cell // the row's cells by column; the zero Cell in gaps
	)
	fix := func(c column, i int, v string) string {
		if (c == colDOB || c == colVaccinatedOn || c == colCorrectedDOB) && cells[i].Type == xlsx.TypeDate {
			return dateText(cells[i])
		}
		return v
	}
	for rows.Next() {
		row := rows.Row()
		n := 0
		if len(row.Cells) > 0 {
			n = row.Cells[len(row.Cells)-1].Col + 1
		}
		values, cells = resize(values, n), resize(cells, n)
		for _, c := range row.Cells {
			// As a person reads the cell: an ID number formatted "000000000000" with its
			// leading zero, 1.5E+3 as 1500, a date as YYYY-MM-DD.
			values[c.Col], cells[c.Col] = c.Text(), c
		}
		if err := s.add(row.Num, values, fix); err != nil {
			return nil, err
		}
	}
	if err := rows.Err(); err != nil {
		return nil, xlsxError(err)
	}
	return s.result()
}

// resize returns a slice of n zero values, reusing s.
func resize[T any](s []T, n int) []T {
	s = slices.Grow(s[:0], n)[:n]
	clear(s)
	return s
}

// xlsxError gives a codec error the package's sentinel, keeping the codec's for
// errors.Is.
func xlsxError(err error) error {
	switch {
	case errors.Is(err, xlsx.ErrEncrypted):
		return ErrEncrypted
	case errors.Is(err, xlsx.ErrLegacyFormat):
		return ErrLegacyFormat
	case errors.Is(err, xlsx.ErrTooLarge):
		return fmt.Errorf("%w: %w", ErrTooLarge, err)
	default: // xlsx.ErrNotZip, xlsx.ErrCorrupt
		return fmt.Errorf("%w: %w", ErrCorrupt, err)
	}
}

// dateText turns a date cell of a date column into the text the contract expects. A real
// date is YYYY-MM-DD (its time of day dropped); a year typed into a date-formatted cell
// is a small day serial (1985 shows as 1905-06-07) and means the year.
func dateText(c xlsx.Cell) string {
	if v := c.Value; len(v) == 4 && v >= "1900" && v <= "2099" {
		return v
	}
	t, err := c.Time()
	if err != nil {
		return c.Text()
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
	seen    map[string]int // source_id (worklist: facility_id and source_id) -> row it first appeared in
	res     Result
	gotHead bool
	stored  Stored // nil: the cells are the record
	err     error  // a store failure: the read stops
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
	for i, v := range values {
		if len(v) > s.lim.cellBytes() {
			return fmt.Errorf("%w: cell %s%d has more than %d bytes", ErrTooLarge, columnLetter(i), row, s.lim.cellBytes())
		}
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
	return s.err
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
		c := columnNamed(name)
		if c < 0 {
			return fmt.Errorf("%w: unknown column %q (column %s); expected dose-record field names, alone or after a label in brackets: %s",
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

// columnNamed finds the column a header cell names: the field name, or a label followed
// by the field name in brackets ("Số CCCD/CMND (id_number)"); -1 for none.
func columnNamed(name string) column {
	if c := slices.Index(columnNames[:], name); c >= 0 {
		return column(c)
	}
	if open := strings.LastIndexByte(name, '('); open >= 0 && strings.HasSuffix(name, ")") {
		return column(slices.Index(columnNames[:], strings.TrimSpace(name[open+1:len(name)-1])))
	}
	return -1
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

	// Cells that came back as numbers: the text they were, where that can be told.
	v[colCorrectedIDNumber] = restoreByLength(colIDNumber, v[colCorrectedIDNumber])
	if s.res.Worklist && s.stored != nil {
		s.storedRecord(row, v, errs)
		return
	}
	for _, c := range digitColumns {
		v[c] = restoreByLength(c, v[c])
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

	s.finish(row, rec, corrected, errs, Accepted{Row: row, Facility: strings.TrimSpace(v[colFacilityID])})
}

// finish files a row: rejected with errs (named after the cells typed), else accepted.
func (s *sheet) finish(row int, rec dose.Record, corrected []column, errs []dose.FieldError, acc Accepted) {
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
	acc.Row, acc.Record = row, rec
	for _, c := range corrected {
		acc.Corrected = append(acc.Corrected, columnNames[c])
	}
	s.res.Accepted = append(s.res.Accepted, acc)
}

// storedRecord judges one row of a worklist sent back against the store: the record is
// the stored one, only the corrected_* cells change it, and each read-only cell is
// compared with the stored value (a difference is a warning, never written).
func (s *sheet) storedRecord(row int, v [numColumns]string, errs []dose.FieldError) {
	sid, fac := strings.TrimSpace(v[colSourceID]), strings.TrimSpace(v[colFacilityID])
	if sid == "" {
		errs = append(errs, dose.FieldError{Field: "source_id", Code: dose.CodeRequired, Message: "is required"})
		s.finish(row, dose.Record{}, nil, errs, Accepted{})
		return
	}
	key := fac + "\x00" + sid
	if first, dup := s.seen[key]; dup {
		errs = append(errs, dose.FieldError{Field: "source_id", Code: CodeDuplicate, Message: "repeats the source_id of row " + strconv.Itoa(first)})
		s.finish(row, dose.Record{SourceID: sid}, nil, errs, Accepted{})
		return
	}
	s.seen[key] = row
	base, found, err := s.stored(fac, sid)
	if err != nil {
		s.err = fmt.Errorf("read stored record of row %d: %w", row, err)
		return
	}
	if !found {
		errs = append(errs, dose.FieldError{Field: "source_id", Code: CodeNotFound, Message: "no stored record of this worklist has this source_id"})
		s.finish(row, dose.Record{SourceID: sid}, nil, errs, Accepted{})
		return
	}
	base.Normalize()

	// The read-only cells as a record, normalized as the stored one was.
	var warnings []dose.FieldError
	for _, c := range digitColumns {
		if !s.has[c] {
			continue
		}
		cell := strings.TrimSpace(v[c])
		want := *field(&base, c)
		if restored, ok := restoreZeros(cell, want); ok {
			v[c] = restored
			continue
		}
		v[c] = restoreByLength(c, cell)
		if lostZeros(c, v[c]) {
			errs = append(errs, dose.FieldError{Field: columnNames[c], Code: CodeLostZeros,
				Message: "came back as a number without its leading zeros: type it as text, as it was"})
		}
	}
	sheetRec := dose.Record{
		SourceID: sid, FullName: v[colFullName], DOB: v[colDOB], Gender: v[colGender],
		IDNumber: v[colIDNumber], Phone: v[colPhone], Nationality: v[colNationality],
		CommuneCode: v[colCommuneCode], Vaccine: v[colVaccine], VaccinatedOn: v[colVaccinatedOn], Lot: v[colLot],
	}
	sheetRec.Normalize()
	for c := colFullName; c <= colLot; c++ {
		if !s.has[c] {
			continue
		}
		var same bool
		if c == colDoseNumber {
			n, err := strconv.Atoi(strings.TrimSpace(v[c]))
			same = err == nil && n == base.DoseNumber
		} else {
			same = *field(&sheetRec, c) == *field(&base, c)
		}
		if !same {
			warnings = append(warnings, dose.FieldError{Field: columnNames[c], Code: CodeReadOnlyChanged,
				Message: "is read-only and differs from the stored record: the stored value is kept; correct it in its corrected_ column, if it has one"})
		}
	}

	rec := base
	var corrected []column
	for _, c := range corrections {
		if val := strings.TrimSpace(v[c.from]); val != "" {
			*field(&rec, c.to) = val
			corrected = append(corrected, c.to)
		}
	}
	rec.Normalize()
	errs = append(errs, rec.Validate(s.today)...)
	s.finish(row, rec, corrected, errs, Accepted{Facility: fac, FromStore: true, Warnings: warnings})
}

// field is the record's field of a text column.
func field(r *dose.Record, c column) *string {
	switch c {
	case colSourceID:
		return &r.SourceID
	case colFullName:
		return &r.FullName
	case colDOB:
		return &r.DOB
	case colGender:
		return &r.Gender
	case colIDNumber:
		return &r.IDNumber
	case colPhone:
		return &r.Phone
	case colNationality:
		return &r.Nationality
	case colCommuneCode:
		return &r.CommuneCode
	case colVaccine:
		return &r.Vaccine
	case colVaccinatedOn:
		return &r.VaccinatedOn
	case colLot:
		return &r.Lot
	}
	var none string // dose_number and the worklist's own columns
	return &none
}

// digitColumns hold codes of digits whose leading zeros matter: a spreadsheet that takes
// them for numbers drops the zeros.
var digitColumns = []column{colIDNumber, colPhone, colCommuneCode}

// restoreZeros reads a cell of digits that lost its leading zeros as the stored value it
// was: ok when stored is cell with zeros in front (or cell itself).
func restoreZeros(cell, stored string) (string, bool) {
	if cell == stored {
		return cell, true
	}
	if cell == "" || !allDigits(cell) || len(stored) <= len(cell) || !strings.HasSuffix(stored, cell) ||
		strings.Trim(stored[:len(stored)-len(cell)], "0") != "" {
		return "", false
	}
	return stored, true
}

// restoreByLength restores the leading zeros of a cell of digits where its length leaves
// no doubt: a CCCD has 12 digits and a CMND 9 (10 or 11 digits were a CCCD, 8 a CMND),
// a Vietnamese phone 10 starting with 0 (9 digits: one 0 lost), a commune code 5 or 7
// (4 and 6 digits: one 0 lost). Anything else comes back as it was.
func restoreByLength(c column, cell string) string {
	t := strings.TrimSpace(cell)
	if t == "" || !allDigits(t) || t[0] == '0' {
		return cell
	}
	want := 0
	switch n := len(t); c {
	case colIDNumber:
		switch n {
		case 10, 11:
			want = 12
		case 8:
			want = 9
		}
	case colPhone:
		if n == 9 {
			want = 10
		}
	case colCommuneCode:
		switch n {
		case 4:
			want = 5
		case 6:
			want = 7
		}
	}
	if want == 0 {
		return cell
	}
	return strings.Repeat("0", want-len(t)) + t
}

// lostZeros reports a cell of digits too short for its column, even after restoreByLength:
// the zeros it lost cannot be told.
func lostZeros(c column, cell string) bool {
	t := strings.TrimSpace(cell)
	if t == "" || !allDigits(t) || t[0] == '0' {
		return false
	}
	switch c {
	case colIDNumber:
		return len(t) < 12 && len(t) != 9
	case colPhone:
		return len(t) < 9
	case colCommuneCode:
		return len(t) < 5
	}
	return false
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
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
func columnLetter(i int) string { return xlsx.ColumnName(i) }

func truncate(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n]) + "…"
}
