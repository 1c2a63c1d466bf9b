package dose

import (
	"strings"
	"testing"
	"time"
)

// TestEveryMessageHasItsVietnamese: each message Validate gives has a translation, so a
// clerk who asks for Vietnamese never gets an English row error from validation.
func TestEveryMessageHasItsVietnamese(t *testing.T) {
	today := time.Date(2022, 7, 1, 0, 0, 0, 0, time.UTC)
	bad := []Record{
		{},
		{SourceID: "a/b", FullName: "x\x01", DOB: "31/02/1960", Gender: "khác", Nationality: "VNM", Vaccine: "X", DoseNumber: 21, VaccinatedOn: "2019-01-01"},
		{SourceID: strings.Repeat("s", MaxSourceID+1), FullName: "\xff", DOB: "2030-01-01", Gender: "male", Vaccine: "PFIZER", DoseNumber: 1, VaccinatedOn: "2030-01-01"},
		{SourceID: "s", FullName: "n", DOB: "1985", Gender: "male", Vaccine: "PFIZER", DoseNumber: 1, VaccinatedOn: "01.2021"},
	}
	seen := 0
	for _, r := range bad {
		r.Normalize()
		for _, e := range r.Validate(today) {
			seen++
			vi := MessageVI(e)
			if vi == "" {
				t.Errorf("no Vietnamese for %s %s %q", e.Field, e.Code, e.Message)
			}
			if !strings.HasPrefix(vi, FieldLabelVI(e.Field)+": ") {
				t.Errorf("%q does not name the field", vi)
			}
		}
	}
	if seen < 15 {
		t.Fatalf("only %d errors: the bad records no longer cover the messages", seen)
	}
	if got := MessageVI(FieldError{Field: "source_id", Code: "duplicate", Message: "repeats the source_id of row 7"}); got != "Mã hồ sơ (source_id): trùng mã hồ sơ với dòng 7" {
		t.Errorf("duplicate: %q", got)
	}
	if MessageVI(FieldError{Field: "dob", Message: "something new"}) != "" {
		t.Error("an unknown message must stay untranslated")
	}
}
