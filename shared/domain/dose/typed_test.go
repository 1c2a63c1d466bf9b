package dose

import (
	"testing"
	"time"

	"golang.org/x/text/unicode/norm"
)

func TestNormalizeDate(t *testing.T) {
	for in, want := range map[string]string{
		"24/11/1995":  "1995-11-24",
		" 4/5/1990 ":  "1990-05-04", // Vietnamese order: 4 May
		"04.05.1990":  "1990-05-04",
		"04-05-1990":  "1990-05-04",
		"11/1995":     "1995-11",
		"1995-11-24":  "1995-11-24",
		"1995-11":     "1995-11",
		"1995":        "1995",
		"":            "",
		"24/11/95":    "24/11/95", // a two-digit year is never guessed
		"1995/11/24":  "1995/11/24",
		"24/11/1995/": "24/11/1995/",
		"a4/11/1995":  "a4/11/1995",
		"124/11/1995": "124/11/1995",
	} {
		if got := NormalizeDate(in); got != want {
			t.Errorf("NormalizeDate(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestNormalizeGender(t *testing.T) {
	for in, want := range map[string]string{
		"Nam": Male, "NAM": Male, "Nữ": Female, "NỮ": Female, norm.NFD.String("Nữ"): Female,
		"nu": Female, "Male": Male, "female": Female, "x": "x",
	} {
		if got := NormalizeGender(in); got != want {
			t.Errorf("NormalizeGender(%q) = %q, want %q", in, got, want)
		}
	}
}

// A record typed as a clerk types it validates and is stored in the contract's form.
func TestRecordAsAClerkTypesIt(t *testing.T) {
	r := Record{SourceID: "s1", FullName: "Nguyễn Thị Lan", DOB: "15/04/1984", Gender: "Nữ",
		Vaccine: "pfizer", DoseNumber: 1, VaccinatedOn: "02/09/2021"}
	r.Normalize()
	if errs := r.Validate(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)); len(errs) != 0 {
		t.Fatalf("errors %v", errs)
	}
	if r.DOB != "1984-04-15" || r.Gender != Female || r.VaccinatedOn != "2021-09-02" {
		t.Errorf("stored as %q %q %q", r.DOB, r.Gender, r.VaccinatedOn)
	}
	bad := Record{SourceID: "s2", FullName: "A", DOB: "31/02/1984", Gender: "khác", Vaccine: "PFIZER", DoseNumber: 1, VaccinatedOn: "2021-09-02"}
	bad.Normalize()
	errs := bad.Validate(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	if len(errs) != 2 || errs[0].Field != "dob" || errs[1].Field != "gender" {
		t.Errorf("errors %v, want dob and gender", errs)
	}
}
