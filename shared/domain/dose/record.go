// Package dose holds the dose record of the public contract and its field-by-field
// validation. It is shared by the API, the Excel import and the matcher.
package dose

import (
	"strings"
	"time"
	"unicode/utf8"
)

// Record is one dose as a facility sends it (contract: "Dose record").
type Record struct {
	SourceID     string `json:"source_id"`
	FullName     string `json:"full_name"`
	DOB          string `json:"dob"`
	Gender       string `json:"gender"`
	IDNumber     string `json:"id_number"`
	Phone        string `json:"phone,omitempty"`
	Nationality  string `json:"nationality,omitempty"`
	CommuneCode  string `json:"commune_code,omitempty"`
	Vaccine      string `json:"vaccine"`
	DoseNumber   int    `json:"dose_number"`
	VaccinatedOn string `json:"vaccinated_on"`
	Lot          string `json:"lot,omitempty"`
}

// Gender values of the contract.
const (
	Male   = "male"
	Female = "female"
)

// FieldError is one reason a record was rejected; Field is the JSON field name.
type FieldError struct {
	Field   string `json:"field"`
	Code    string `json:"code"`
	Message string `json:"message"`
}

func (e FieldError) Error() string { return e.Field + ": " + e.Message }

// Error codes of FieldError.
const (
	CodeRequired = "required"
	CodeTooLong  = "too_long"
	CodeFormat   = "invalid_format"
	CodeValue    = "invalid_value"
	CodeRange    = "out_of_range"
)

// Limits of free-text fields; generous for real data, tight enough to keep records small.
const (
	MaxSourceID = 64
	MaxName     = 200
	MaxShort    = 64
)

// FirstVaccinationDay is the earliest accepted vaccinated_on (contract).
var FirstVaccinationDay = time.Date(2020, 12, 1, 0, 0, 0, 0, time.UTC)

// knownVaccines are the 8 vaccine codes of the contract. The catalogue with their EU codes
// lives in shared/domain/vaccine; this list only gates input.
var knownVaccines = map[string]bool{
	"ASTRAZENECA": true, "SPUTNIK_V": true, "VERO_CELL": true, "PFIZER": true,
	"MODERNA": true, "JANSSEN": true, "HAYAT_VAX": true, "ABDALA": true,
}

// Normalize trims surrounding white space of every text field and applies defaults
// (nationality VN). It does not touch the name's inner spelling: matching does that.
func (r *Record) Normalize() {
	for _, p := range []*string{&r.SourceID, &r.FullName, &r.DOB, &r.Gender, &r.IDNumber,
		&r.Phone, &r.Nationality, &r.CommuneCode, &r.Vaccine, &r.VaccinatedOn, &r.Lot} {
		*p = strings.TrimSpace(*p)
	}
	// As a clerk types them (Nam/Nữ, DD/MM/YYYY): stored in the contract's form.
	r.Gender = NormalizeGender(r.Gender)
	r.DOB = NormalizeDate(r.DOB)
	r.VaccinatedOn = NormalizeDate(r.VaccinatedOn)
	r.Vaccine = strings.ToUpper(r.Vaccine)
	r.Nationality = strings.ToUpper(r.Nationality)
	if r.Nationality == "" {
		r.Nationality = "VN"
	}
}

// Validate checks every field and returns all problems found, in field order.
// today is the current date (injected so tests are deterministic).
func (r *Record) Validate(today time.Time) []FieldError {
	var errs []FieldError
	add := func(field, code, msg string) { errs = append(errs, FieldError{field, code, msg}) }
	text := func(field, v string, max int, required bool) bool {
		switch {
		case v == "" && required:
			add(field, CodeRequired, "is required")
		case !utf8.ValidString(v):
			add(field, CodeFormat, "is not valid UTF-8")
		case utf8.RuneCountInString(v) > max:
			add(field, CodeTooLong, "is longer than the limit")
		case strings.ContainsFunc(v, isControl):
			add(field, CodeFormat, "contains control characters")
		default:
			return v != ""
		}
		return false
	}

	if text("source_id", r.SourceID, MaxSourceID, true) && strings.ContainsAny(r.SourceID, "/?%") {
		// API Gateway decodes the path before routing, so GET /v1/doses/{source_id} could
		// never read such a record back.
		add("source_id", CodeFormat, "must not contain /, ? or % (it is part of the record's URL)")
	}
	text("full_name", r.FullName, MaxName, true)
	if text("dob", r.DOB, 10, true) {
		if _, err := ParsePartialDate(r.DOB); err != nil {
			add("dob", CodeFormat, MsgDOBFormat)
		} else if r.DOB > today.Format("2006-01-02")[:len(r.DOB)] {
			add("dob", CodeRange, "is in the future")
		}
	}
	if r.Gender == "" {
		add("gender", CodeRequired, "is required")
	} else if r.Gender != Male && r.Gender != Female {
		add("gender", CodeValue, "must be male or female (Nam or Nữ)")
	}
	text("id_number", r.IDNumber, MaxShort, false)
	text("phone", r.Phone, MaxShort, false)
	if text("nationality", r.Nationality, 2, true) && !isUpperAlpha2(r.Nationality) {
		add("nationality", CodeFormat, "must be an ISO 3166-1 alpha-2 code")
	}
	text("commune_code", r.CommuneCode, MaxShort, false)
	if r.Vaccine == "" {
		add("vaccine", CodeRequired, "is required")
	} else if !knownVaccines[r.Vaccine] {
		add("vaccine", CodeValue, "is not one of the 8 licensed vaccine codes")
	}
	if r.DoseNumber < 1 {
		add("dose_number", CodeRange, "must be 1 or more")
	} else if r.DoseNumber > 20 {
		add("dose_number", CodeRange, "must be 20 or less")
	}
	if text("vaccinated_on", r.VaccinatedOn, 10, true) {
		d, err := time.Parse("2006-01-02", r.VaccinatedOn)
		switch {
		case err != nil:
			add("vaccinated_on", CodeFormat, "must be YYYY-MM-DD or DD/MM/YYYY")
		case d.Before(FirstVaccinationDay):
			add("vaccinated_on", CodeRange, "is before 2020-12-01")
		case d.After(today):
			add("vaccinated_on", CodeRange, "is in the future")
		}
	}
	text("lot", r.Lot, MaxShort, false)
	return errs
}

func isControl(r rune) bool { return r < 0x20 || r == 0x7f }

func isUpperAlpha2(s string) bool {
	return len(s) == 2 && s[0] >= 'A' && s[0] <= 'Z' && s[1] >= 'A' && s[1] <= 'Z'
}
