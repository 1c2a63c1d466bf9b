package dose

import (
	"strings"
	"testing"
	"time"
)

var today = time.Date(2022, 4, 15, 0, 0, 0, 0, time.UTC)

func validRecord() Record {
	return Record{
		SourceID: "F079001-000000001", FullName: "Nguyễn Văn An", DOB: "1985-03-12", Gender: Male,
		IDNumber: "079085012345", Nationality: "VN", Vaccine: "PFIZER", DoseNumber: 2,
		VaccinatedOn: "2021-10-01",
	}
}

func TestParsePartialDate(t *testing.T) {
	tests := []struct {
		in      string
		want    PartialDate
		wantErr bool
	}{
		{"1985", PartialDate{1985, 0, 0}, false},
		{"1985-03", PartialDate{1985, 3, 0}, false},
		{"1985-03-12", PartialDate{1985, 3, 12}, false},
		{"2000-02-29", PartialDate{2000, 2, 29}, false},
		{"1900", PartialDate{1900, 0, 0}, false},
		{"2099-12-31", PartialDate{2099, 12, 31}, false},
		{"1900-02-29", PartialDate{}, true}, // 1900 was not a leap year
		{"2021-02-29", PartialDate{}, true},
		{"1985-04-31", PartialDate{}, true},
		{"1985-13", PartialDate{}, true},
		{"1985-00", PartialDate{}, true},
		{"1985-01-00", PartialDate{}, true},
		{"1899", PartialDate{}, true},
		{"2100", PartialDate{}, true},
		{"", PartialDate{}, true},
		{"85", PartialDate{}, true},
		{"1985-3-12", PartialDate{}, true},
		{"1985/03/12", PartialDate{}, true},
		{"12-03-1985", PartialDate{}, true},
		{"1985-03-1a", PartialDate{}, true},
		{"+985", PartialDate{}, true},
		{"1985-03-12T00:00:00Z", PartialDate{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParsePartialDate(tt.in)
			if tt.wantErr {
				if err != ErrDate {
					t.Fatalf("ParsePartialDate(%q) = %+v, %v; want ErrDate", tt.in, got, err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("ParsePartialDate(%q) = %+v, %v; want %+v", tt.in, got, err, tt.want)
			}
			if s := got.String(); s != tt.in {
				t.Fatalf("String() = %q, want the input %q back", s, tt.in)
			}
		})
	}
}

func TestPartialDateAgrees(t *testing.T) {
	full := PartialDate{1985, 3, 12}
	tests := []struct {
		d    PartialDate
		want bool
	}{
		{PartialDate{1985, 0, 0}, true},
		{PartialDate{1985, 3, 0}, true},
		{PartialDate{1985, 3, 12}, true},
		{PartialDate{1986, 0, 0}, false},
		{PartialDate{1985, 4, 0}, false},
		{PartialDate{1985, 3, 13}, false},
		{PartialDate{1985, 12, 3}, false}, // day and month swapped
	}
	for _, tt := range tests {
		if got := tt.d.Agrees(full); got != tt.want {
			t.Errorf("%v.Agrees(%v) = %v, want %v", tt.d, full, got, tt.want)
		}
	}
}

func TestValidate(t *testing.T) {
	type fe struct{ field, code string }
	tests := []struct {
		name   string
		mutate func(r *Record)
		want   []fe
	}{
		{"valid", func(r *Record) {}, nil},
		{"valid without optional fields", func(r *Record) { r.IDNumber, r.Phone, r.CommuneCode, r.Lot = "", "", "", "" }, nil},
		{"year-only dob", func(r *Record) { r.DOB = "1985" }, nil},
		{"year-month dob", func(r *Record) { r.DOB = "1985-03" }, nil},
		{"vaccinated today", func(r *Record) { r.VaccinatedOn = "2022-04-15" }, nil},
		{"vaccinated on the first day", func(r *Record) { r.VaccinatedOn = "2020-12-01" }, nil},
		{"name at the limit", func(r *Record) { r.FullName = strings.Repeat("ễ", MaxName) }, nil},
		{"source_id at the limit", func(r *Record) { r.SourceID = strings.Repeat("x", MaxSourceID) }, nil},
		{"dose 20", func(r *Record) { r.DoseNumber = 20 }, nil},

		{"missing source_id", func(r *Record) { r.SourceID = "" }, []fe{{"source_id", CodeRequired}}},
		{"long source_id", func(r *Record) { r.SourceID = strings.Repeat("x", MaxSourceID+1) }, []fe{{"source_id", CodeTooLong}}},
		{"control char in source_id", func(r *Record) { r.SourceID = "a\tb" }, []fe{{"source_id", CodeFormat}}},
		{"missing name", func(r *Record) { r.FullName = "" }, []fe{{"full_name", CodeRequired}}},
		{"name too long", func(r *Record) { r.FullName = strings.Repeat("ễ", MaxName+1) }, []fe{{"full_name", CodeTooLong}}},
		{"name not UTF-8", func(r *Record) { r.FullName = "Nguy\xe1n" }, []fe{{"full_name", CodeFormat}}},
		{"name with newline", func(r *Record) { r.FullName = "Nguyễn\nAn" }, []fe{{"full_name", CodeFormat}}},
		{"missing dob", func(r *Record) { r.DOB = "" }, []fe{{"dob", CodeRequired}}},
		{"dob day first", func(r *Record) { r.DOB = "12/03/1985" }, []fe{{"dob", CodeFormat}}},
		{"dob impossible day", func(r *Record) { r.DOB = "1985-02-30" }, []fe{{"dob", CodeFormat}}},
		{"dob too long", func(r *Record) { r.DOB = "1985-03-12 00:00" }, []fe{{"dob", CodeTooLong}}},
		{"dob in the future", func(r *Record) { r.DOB = "2022-04-16" }, []fe{{"dob", CodeRange}}},
		{"dob year in the future", func(r *Record) { r.DOB = "2023" }, []fe{{"dob", CodeRange}}},
		{"dob month in the future", func(r *Record) { r.DOB = "2022-05" }, []fe{{"dob", CodeRange}}},
		{"missing gender", func(r *Record) { r.Gender = "" }, []fe{{"gender", CodeRequired}}},
		{"gender in Vietnamese", func(r *Record) { r.Gender = "nam" }, []fe{{"gender", CodeValue}}},
		{"gender upper case (not normalised)", func(r *Record) { r.Gender = "MALE" }, []fe{{"gender", CodeValue}}},
		{"id too long", func(r *Record) { r.IDNumber = strings.Repeat("1", MaxShort+1) }, []fe{{"id_number", CodeTooLong}}},
		{"phone with control char", func(r *Record) { r.Phone = "090\x7f" }, []fe{{"phone", CodeFormat}}},
		{"missing nationality", func(r *Record) { r.Nationality = "" }, []fe{{"nationality", CodeRequired}}},
		{"nationality alpha-3", func(r *Record) { r.Nationality = "VNM" }, []fe{{"nationality", CodeTooLong}}},
		{"nationality lower case", func(r *Record) { r.Nationality = "vn" }, []fe{{"nationality", CodeFormat}}},
		{"nationality digits", func(r *Record) { r.Nationality = "84" }, []fe{{"nationality", CodeFormat}}},
		{"commune too long", func(r *Record) { r.CommuneCode = strings.Repeat("1", MaxShort+1) }, []fe{{"commune_code", CodeTooLong}}},
		{"missing vaccine", func(r *Record) { r.Vaccine = "" }, []fe{{"vaccine", CodeRequired}}},
		{"unknown vaccine", func(r *Record) { r.Vaccine = "NOVAVAX" }, []fe{{"vaccine", CodeValue}}},
		{"dose 0", func(r *Record) { r.DoseNumber = 0 }, []fe{{"dose_number", CodeRange}}},
		{"dose 21", func(r *Record) { r.DoseNumber = 21 }, []fe{{"dose_number", CodeRange}}},
		{"missing vaccination date", func(r *Record) { r.VaccinatedOn = "" }, []fe{{"vaccinated_on", CodeRequired}}},
		{"vaccination date year only", func(r *Record) { r.VaccinatedOn = "2021" }, []fe{{"vaccinated_on", CodeFormat}}},
		{"vaccinated before the programme", func(r *Record) { r.VaccinatedOn = "2020-11-30" }, []fe{{"vaccinated_on", CodeRange}}},
		{"vaccinated in the future", func(r *Record) { r.VaccinatedOn = "2022-04-16" }, []fe{{"vaccinated_on", CodeRange}}},
		{"lot too long", func(r *Record) { r.Lot = strings.Repeat("L", MaxShort+1) }, []fe{{"lot", CodeTooLong}}},
		{"several problems in field order", func(r *Record) {
			r.VaccinatedOn, r.SourceID, r.Gender = "", "", "x"
		}, []fe{{"source_id", CodeRequired}, {"gender", CodeValue}, {"vaccinated_on", CodeRequired}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := validRecord()
			tt.mutate(&r)
			errs := r.Validate(today)
			var got []fe
			for _, e := range errs {
				got = append(got, fe{e.Field, e.Code})
				if e.Message == "" || !strings.HasPrefix(e.Error(), e.Field+": ") {
					t.Errorf("error %+v: Error() = %q does not name the field with a message", e, e.Error())
				}
			}
			if len(got) != len(tt.want) {
				t.Fatalf("Validate = %+v, want %+v", errs, tt.want)
			}
			for i := range got {
				if got[i] != tt.want[i] {
					t.Fatalf("Validate = %+v, want %+v", errs, tt.want)
				}
			}
		})
	}
}

func TestNormalize(t *testing.T) {
	r := Record{SourceID: " s1 ", FullName: "  Lê Thị Hoa\t", Gender: " Female ", Vaccine: "pfizer ",
		Nationality: "", IDNumber: " 079 085 012 345 "}
	r.Normalize()
	want := Record{SourceID: "s1", FullName: "Lê Thị Hoa", Gender: Female, Vaccine: "PFIZER",
		Nationality: "VN", IDNumber: "079 085 012 345"}
	if r != want {
		t.Fatalf("Normalize = %+v, want %+v", r, want)
	}
	r = Record{Nationality: "la"}
	r.Normalize()
	if r.Nationality != "LA" {
		t.Fatalf("nationality %q, want LA", r.Nationality)
	}
}

func FuzzParsePartialDate(f *testing.F) {
	for _, s := range []string{"1985", "1985-03", "1985-03-12", "2000-02-29", "1985-02-30", "", "12/03/1985"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := ParsePartialDate(s)
		if err != nil {
			return
		}
		// Anything accepted prints back to itself and agrees with itself.
		if d.String() != s {
			t.Fatalf("ParsePartialDate(%q).String() = %q", s, d.String())
		}
		if !d.Agrees(d) {
			t.Fatalf("%v does not agree with itself", d)
		}
	})
}

func FuzzValidate(f *testing.F) {
	r := validRecord()
	f.Add(r.SourceID, r.FullName, r.DOB, r.Gender, r.IDNumber, r.Vaccine, r.DoseNumber, r.VaccinatedOn)
	f.Add("", "", "1985-02-30", "nam", "", "x", -1, "2021")
	f.Fuzz(func(t *testing.T, sourceID, name, dob, gender, id, vaccine string, doseNumber int, on string) {
		r := Record{SourceID: sourceID, FullName: name, DOB: dob, Gender: gender, IDNumber: id,
			Nationality: "VN", Vaccine: vaccine, DoseNumber: doseNumber, VaccinatedOn: on}
		for _, e := range r.Validate(today) {
			if e.Field == "" || e.Code == "" || e.Message == "" {
				t.Fatalf("incomplete field error %+v", e)
			}
		}
	})
}
