// Package worklist is the commune's side of data cleaning (domain-vn.md, step 3): it
// exports the records that failed registry matching as a list the commune health station
// and the commune police can work through (CSV or .xlsx), and reads back either such a list
// with the corrections typed into its corrected_* columns, or a facility's import sheet
// (contract: POST /v1/imports, first sheet, a header row of dose-record field names).
//
// Spreadsheets are untrusted input: the .xlsx codec (package xlsx) streams the sheet and
// checks each limit (bytes, parts, inflated size, rows, columns, cell size, shared
// strings) before the work it guards, and this package answers with a sentinel error per
// failure class. The .xlsx worklist writes ID, phone, commune and date cells as text with
// the text number format, so that a spreadsheet program keeps them as they are; its header
// is "Nhãn (field_name)" and a second sheet tells the clerk what to fill in. A worklist
// sent back is read against the store (ReadXLSXStored): only its corrected_* cells change
// a record, and cells that came back as numbers get their leading zeros back.
package worklist

import (
	"iter"
	"strconv"
	"strings"

	"github.com/vaxpass/vaxpass/shared/domain/dose"
	"github.com/vaxpass/vaxpass/shared/domain/match"
)

// Row is one dose record with its match result, as the store hands it over.
type Row struct {
	// Facility is the vaccination site that sent the record ("" when unknown); the dose
	// record itself does not carry it. The facility_id column shows it.
	Facility string
	Record   dose.Record
	Result   match.Result
	// Disclose shows the candidates in full (registry ID, name, date of birth, gender,
	// score): the registry officer's list only. Otherwise the candidates column holds
	// their count, and the row carries no registry value.
	Disclose bool
}

// Filter selects the rows of one worklist; an empty field matches every row.
type Filter struct {
	Status      match.Status
	Facility    string
	CommuneCode string
}

// Keep reports whether the filter selects r.
func (f Filter) Keep(r Row) bool {
	return (f.Status == "" || r.Result.Status == f.Status) &&
		(f.Facility == "" || r.Facility == f.Facility) &&
		(f.CommuneCode == "" || r.Record.CommuneCode == f.CommuneCode)
}

// Select returns the rows f keeps, lazily.
func Select(rows iter.Seq[Row], f Filter) iter.Seq[Row] {
	return func(yield func(Row) bool) {
		for r := range rows {
			if f.Keep(r) && !yield(r) {
				return
			}
		}
	}
}

// column is one column a worklist or an import sheet may have.
type column int

// The columns, in the order a worklist has them: the dose record's fields in the
// contract's order, the match result, then the columns the commune fills in.
const (
	colSourceID column = iota
	colFullName
	colDOB
	colGender
	colIDNumber
	colPhone
	colNationality
	colCommuneCode
	colVaccine
	colDoseNumber
	colVaccinatedOn
	colLot
	colStatus
	colReasons
	colCandidates
	colCorrectedFullName
	colCorrectedDOB
	colCorrectedGender
	colCorrectedIDNumber
	colNote
	// colFacilityID names the row's facility: a commune's list holds the records of
	// every facility. Last, so that a worklist sent back keeps its other columns' places.
	colFacilityID
	numColumns
)

var columnNames = [numColumns]string{
	"source_id", "full_name", "dob", "gender", "id_number", "phone", "nationality",
	"commune_code", "vaccine", "dose_number", "vaccinated_on", "lot",
	"status", "reasons", "candidates",
	"corrected_full_name", "corrected_dob", "corrected_gender", "corrected_id_number", "note",
	"facility_id",
}

// columnLabels are the Vietnamese labels a commune's clerk reads in the header.
var columnLabels = [numColumns]string{
	"Mã hồ sơ", "Họ và tên", "Ngày sinh", "Giới tính", "Số CCCD/CMND", "Số điện thoại", "Quốc tịch",
	"Mã xã/phường", "Vắc xin", "Mũi số", "Ngày tiêm", "Số lô",
	"Trạng thái", "Lý do", "Ứng viên",
	"Sửa họ và tên", "Sửa ngày sinh", "Sửa giới tính", "Sửa số CCCD/CMND", "Ghi chú",
	"Mã cơ sở tiêm",
}

// Columns returns the field names of a worklist's columns, in order.
func Columns() []string { return append([]string(nil), columnNames[:]...) }

// Header returns the header row of a worklist: each column as "Nhãn (field_name)", the
// Vietnamese label then the field name the import reads (columnNamed).
func Header() []string {
	h := make([]string, numColumns)
	for c := range h {
		h[c] = columnLabels[c] + " (" + columnNames[c] + ")"
	}
	return h
}

// corrections pairs each corrected_* column with the field it corrects.
var corrections = []struct{ from, to column }{
	{colCorrectedFullName, colFullName},
	{colCorrectedDOB, colDOB},
	{colCorrectedGender, colGender},
	{colCorrectedIDNumber, colIDNumber},
}

// requiredColumns must be in every sheet read: without them no row can be a dose record.
var requiredColumns = []column{colSourceID, colFullName, colDOB, colGender, colVaccine, colDoseNumber, colVaccinatedOn}

// widths are the readable column widths of the .xlsx worklist, in characters.
var widths = [numColumns]float64{
	20, 28, 12, 8, 16, 13, 6, 10, 13, 6, 13, 10,
	12, 18, 60,
	28, 14, 12, 20, 30,
	16,
}

// cells returns a row's values in column order; the corrected_* columns and the note are
// empty for the commune to fill in. The candidates are a count unless the row discloses
// them.
func cells(r Row) [numColumns]string {
	var v [numColumns]string
	rec := r.Record
	v[colSourceID], v[colFullName], v[colDOB], v[colGender] = rec.SourceID, rec.FullName, rec.DOB, rec.Gender
	v[colIDNumber], v[colPhone], v[colNationality], v[colCommuneCode] = rec.IDNumber, rec.Phone, rec.Nationality, rec.CommuneCode
	v[colVaccine], v[colVaccinatedOn], v[colLot] = rec.Vaccine, rec.VaccinatedOn, rec.Lot
	if rec.DoseNumber != 0 {
		v[colDoseNumber] = strconv.Itoa(rec.DoseNumber)
	}
	v[colStatus] = string(r.Result.Status)
	v[colReasons] = strings.Join(r.Result.Reasons, ", ")
	if r.Disclose {
		v[colCandidates] = formatCandidates(r.Result.Candidates)
	} else if n := len(r.Result.Candidates); n > 0 {
		v[colCandidates] = strconv.Itoa(n)
	}
	v[colFacilityID] = r.Facility
	return v
}

// formatCandidates writes "ID name dob gender score; ..." so the police can check each
// against the population database.
func formatCandidates(cs []match.Candidate) string {
	var b []byte
	for i, c := range cs {
		if i > 0 {
			b = append(b, "; "...)
		}
		b = append(b, c.IDNumber...)
		b = append(b, ' ')
		b = append(b, c.FullName...)
		b = append(b, ' ')
		b = append(b, c.DOB...)
		b = append(b, ' ')
		b = append(b, c.Gender...)
		b = append(b, ' ')
		score := int(c.Score*100 + 0.5)
		b = append(b, byte('0'+score/100), '.', byte('0'+score/10%10), byte('0'+score%10))
	}
	return string(b)
}
