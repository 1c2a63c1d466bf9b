package vaccine

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
)

func TestNumbering(t *testing.T) {
	tests := []struct {
		position, course, dn, sd int
		source                   string
	}{
		{1, 2, 1, 2, "eu-dcc-schema examples/vaccination/standard_case_1-of-2-moderna"},
		{2, 2, 2, 2, "standard_case_2-of-2-moderna-moderna"},
		{3, 2, 3, 3, "Reg. (EU) 2021/2288, IP/21/6837: 3/3 booster after a 2-dose series; standard_case_3-of-3-moderna-moderna-moderna"},
		{4, 2, 4, 4, "standard_case_4-of-4-moderna-moderna-moderna"},
		{6, 2, 6, 6, "dcc-quality-assurance TSI/1.3.0/booster-encodings acc_6_of_6_pfizer"},
		{1, 1, 1, 1, "standard_case_1-of-1-janssen"},
		{2, 1, 2, 1, "Reg. (EU) 2021/2288, IP/21/6837: 2/1 booster after a single-dose vaccination; standard_case_2-of-1-janssen-janssen"},
		{3, 1, 3, 1, "standard_case_3-of-1-janssen-janssen-janssen; TSI acc_3_of_1_pfizer"},
		{4, 1, 4, 1, "standard_case_4-of-1-janssen-janssen-janssen-janssen"},
		{6, 1, 6, 1, "TSI acc_6_of_1_pfizer"},
		{1, 3, 1, 3, "Abdala's 3-dose course (domain-vn.md): within the course sd is the course length"},
		{2, 3, 2, 3, "Abdala, within the course"},
		{3, 3, 3, 3, "Abdala, course complete"},
		{4, 3, 4, 4, "booster after a 3-dose course: dn=sd=doses given, as 3/3 after 2"},
	}
	for _, tt := range tests {
		dn, sd := Numbering(tt.position, tt.course)
		if dn != tt.dn || sd != tt.sd {
			t.Errorf("Numbering(%d, %d) = %d/%d, want %d/%d (%s)", tt.position, tt.course, dn, sd, tt.dn, tt.sd, tt.source)
		}
	}
}

func TestNumberingPanicsOnZero(t *testing.T) {
	for _, args := range [][2]int{{0, 2}, {1, 0}, {-1, 1}} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("Numbering(%d, %d) did not panic", args[0], args[1])
				}
			}()
			Numbering(args[0], args[1])
		}()
	}
}

func d(v Code, typed int, on string) Dose {
	return Dose{Vaccine: v, DoseNumber: typed, VaccinatedOn: on}
}

func TestAssess(t *testing.T) {
	tests := []struct {
		name   string
		source string
		doses  []Dose
		// want
		reason       error // nil when eligible
		received     int
		course       int
		certified    Code
		dn, sd       int
		dt           string
		inconsistent []InconsistencyKind
	}{
		{
			name: "no doses", source: "nothing to certify",
			doses: nil, reason: ErrNoDoses,
		},
		{
			name: "one of two", source: "primary course incomplete (domain-vn.md: only full courses qualify)",
			doses:  []Dose{d(Pfizer, 1, "2021-08-01")},
			reason: ErrIncompleteCourse, received: 1, course: 2,
		},
		{
			name: "two of two", source: "standard_case_2-of-2-moderna-moderna",
			doses:    []Dose{d(Moderna, 1, "2021-06-01"), d(Moderna, 2, "2021-07-01")},
			received: 2, course: 2, certified: Moderna, dn: 2, sd: 2, dt: "2021-07-01",
		},
		{
			name: "any order", source: "dates, not input order, number the doses",
			doses:    []Dose{d(Moderna, 2, "2021-07-01"), d(Moderna, 1, "2021-06-01")},
			received: 2, course: 2, certified: Moderna, dn: 2, sd: 2, dt: "2021-07-01",
		},
		{
			name: "janssen single dose", source: "standard_case_1-of-1-janssen",
			doses:    []Dose{d(Janssen, 1, "2021-09-10")},
			received: 1, course: 1, certified: Janssen, dn: 1, sd: 1, dt: "2021-09-10",
		},
		{
			name: "booster after janssen", source: "Reg. (EU) 2021/2288: 2/1; standard_case_2-of-1-janssen-janssen",
			doses:    []Dose{d(Janssen, 1, "2021-09-10"), d(Pfizer, 2, "2022-01-10")},
			received: 2, course: 1, certified: Pfizer, dn: 2, sd: 1, dt: "2022-01-10",
		},
		{
			name: "second booster after janssen", source: "standard_case_3-of-1-janssen-janssen-janssen",
			doses:    []Dose{d(Janssen, 1, "2021-09-10"), d(Pfizer, 2, "2022-01-10"), d(Moderna, 3, "2022-06-10")},
			received: 3, course: 1, certified: Moderna, dn: 3, sd: 1, dt: "2022-06-10",
		},
		{
			name: "booster after two doses", source: "Reg. (EU) 2021/2288: 3/3; standard_case_3-of-3-moderna-moderna-moderna",
			doses:    []Dose{d(AstraZeneca, 1, "2021-06-01"), d(AstraZeneca, 2, "2021-08-20"), d(Pfizer, 3, "2022-01-05")},
			received: 3, course: 2, certified: Pfizer, dn: 3, sd: 3, dt: "2022-01-05",
		},
		{
			name: "second booster", source: "standard_case_4-of-4-moderna-moderna-moderna",
			doses:    []Dose{d(VeroCell, 1, "2021-06-01"), d(VeroCell, 2, "2021-07-01"), d(Pfizer, 3, "2021-12-01"), d(Moderna, 4, "2022-05-01")},
			received: 4, course: 2, certified: Moderna, dn: 4, sd: 4, dt: "2022-05-01",
		},
		{
			name: "mixed primary course", source: "domain-vn.md: AstraZeneca then Pfizer completes after the doses the course needs",
			doses:    []Dose{d(AstraZeneca, 1, "2021-06-01"), d(Pfizer, 2, "2021-09-01")},
			received: 2, course: 2, certified: Pfizer, dn: 2, sd: 2, dt: "2021-09-01",
		},
		{
			name: "abdala two of three", source: "Abdala needs 3 doses (domain-vn.md)",
			doses:  []Dose{d(Abdala, 1, "2021-09-01"), d(Abdala, 2, "2021-09-15")},
			reason: ErrIncompleteCourse, received: 2, course: 3,
		},
		{
			name: "abdala three of three", source: "Abdala needs 3 doses (domain-vn.md); Numbering 3/3",
			doses:    []Dose{d(Abdala, 1, "2021-09-01"), d(Abdala, 2, "2021-09-15"), d(Abdala, 3, "2021-10-01")},
			received: 3, course: 3, certified: Abdala, dn: 3, sd: 3, dt: "2021-10-01",
		},
		{
			name: "abdala then pfizer is still incomplete", source: "our rule: the first dose's vaccine sets the course length",
			doses:  []Dose{d(Abdala, 1, "2021-09-01"), d(Pfizer, 2, "2021-11-01")},
			reason: ErrIncompleteCourse, received: 2, course: 3,
		},
		{
			name: "pfizer then janssen completes at two", source: "our rule: the first dose's vaccine sets the course length",
			doses:    []Dose{d(Pfizer, 1, "2021-09-01"), d(Janssen, 2, "2021-11-01")},
			received: 2, course: 2, certified: Janssen, dn: 2, sd: 2, dt: "2021-11-01",
		},
		{
			name: "duplicate record counted once", source: "contract: re-sending a dose never makes a second dose; same date+vaccine is one dose",
			doses:  []Dose{d(Pfizer, 1, "2021-08-01"), d(Pfizer, 1, "2021-08-01")},
			reason: ErrIncompleteCourse, received: 1, course: 2,
		},
		{
			name: "duplicates from two facilities", source: "same date+vaccine is one dose",
			doses:    []Dose{d(Pfizer, 1, "2021-08-01"), d(Pfizer, 2, "2021-09-01"), d(Pfizer, 2, "2021-09-01"), d(Pfizer, 1, "2021-08-01")},
			received: 2, course: 2, certified: Pfizer, dn: 2, sd: 2, dt: "2021-09-01",
		},
		{
			name: "typed number disagrees with dates", source: "our rule: dates are the truth; a mismatch is reported",
			doses:    []Dose{d(Pfizer, 1, "2021-08-01"), d(Pfizer, 1, "2021-09-01")},
			received: 2, course: 2, certified: Pfizer, dn: 2, sd: 2, dt: "2021-09-01",
			inconsistent: []InconsistencyKind{TypedNumberMismatch},
		},
		{
			name: "booster typed as 1", source: "facilities number boosters their own way; dn comes from dates (3/3)",
			doses:    []Dose{d(Moderna, 1, "2021-08-01"), d(Moderna, 2, "2021-09-01"), d(Moderna, 1, "2022-02-01")},
			received: 3, course: 2, certified: Moderna, dn: 3, sd: 3, dt: "2022-02-01",
			inconsistent: []InconsistencyKind{TypedNumberMismatch},
		},
		{
			name: "dose 2 without dose 1 on record", source: "dates are the truth: one dose is one dose, whatever was typed",
			doses:  []Dose{d(Pfizer, 2, "2021-09-01")},
			reason: ErrIncompleteCourse, received: 1, course: 2,
			inconsistent: []InconsistencyKind{TypedNumberMismatch},
		},
		{
			name: "duplicate with two typed numbers", source: "same date+vaccine is one dose; both typed numbers checked",
			doses:    []Dose{d(Pfizer, 1, "2021-08-01"), d(Pfizer, 2, "2021-08-01"), d(Pfizer, 2, "2021-10-01")},
			received: 2, course: 2, certified: Pfizer, dn: 2, sd: 2, dt: "2021-10-01",
			inconsistent: []InconsistencyKind{TypedNumberMismatch},
		},
		{
			name: "two vaccines on a middle date", source: "our rule: one dose a day; does not change the certificate",
			doses:    []Dose{d(Pfizer, 1, "2021-08-01"), d(Pfizer, 2, "2021-09-01"), d(Moderna, 2, "2021-09-01"), d(Moderna, 3, "2022-01-01")},
			received: 3, course: 2, certified: Moderna, dn: 3, sd: 3, dt: "2022-01-01",
			inconsistent: []InconsistencyKind{SameDayVaccines},
		},
		{
			name: "two vaccines on the latest date", source: "our rule: the certified product would be a guess",
			doses:  []Dose{d(Pfizer, 1, "2021-08-01"), d(Pfizer, 2, "2021-09-01"), d(Moderna, 2, "2021-09-01")},
			reason: ErrConflictingDoses, received: 2, course: 2,
			inconsistent: []InconsistencyKind{SameDayVaccines},
		},
		{
			name: "first date janssen or pfizer changes the course", source: "our rule: course length would be a guess (1/1 vs 1/2)",
			doses:  []Dose{d(Janssen, 1, "2021-08-01"), d(Pfizer, 1, "2021-08-01"), d(Pfizer, 2, "2021-09-01")},
			reason: ErrConflictingDoses, received: 2,
			inconsistent: []InconsistencyKind{SameDayVaccines},
		},
		{
			name: "first date pfizer or astrazeneca does not matter", source: "our rule: both need 2 doses, the certificate is the same",
			doses:    []Dose{d(AstraZeneca, 1, "2021-08-01"), d(Pfizer, 1, "2021-08-01"), d(Pfizer, 2, "2021-09-01")},
			received: 2, course: 2, certified: Pfizer, dn: 2, sd: 2, dt: "2021-09-01",
			inconsistent: []InconsistencyKind{SameDayVaccines},
		},
		{
			name: "first date conflict irrelevant after many boosters", source: "course 2 or 3 both give 5/5",
			doses: []Dose{d(Abdala, 1, "2021-08-01"), d(Pfizer, 1, "2021-08-01"), d(Pfizer, 2, "2021-09-01"),
				d(Pfizer, 3, "2021-10-01"), d(Pfizer, 4, "2022-01-01"), d(Pfizer, 5, "2022-06-01")},
			received: 5, course: 3, certified: Pfizer, dn: 5, sd: 5, dt: "2022-06-01",
			inconsistent: []InconsistencyKind{SameDayVaccines},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, err := Assess(tt.doses)
			if err != nil {
				t.Fatalf("Assess: %v (%s)", err, tt.source)
			}
			if a.DosesReceived != tt.received {
				t.Errorf("DosesReceived = %d, want %d (%s)", a.DosesReceived, tt.received, tt.source)
			}
			if a.CourseLength != tt.course {
				t.Errorf("CourseLength = %d, want %d (%s)", a.CourseLength, tt.course, tt.source)
			}
			var kinds []InconsistencyKind
			for _, inc := range a.Inconsistencies {
				if !slices.Contains(kinds, inc.Kind) {
					kinds = append(kinds, inc.Kind)
				}
				if inc.String() == "" {
					t.Errorf("empty description for %+v", inc)
				}
			}
			if !slices.Equal(kinds, tt.inconsistent) {
				t.Errorf("inconsistencies = %v, want kinds %v (%s)", a.Inconsistencies, tt.inconsistent, tt.source)
			}
			if tt.reason != nil {
				if a.Eligible || !errors.Is(a.Reason, tt.reason) {
					t.Errorf("Eligible=%v Reason=%v, want not eligible with %v (%s)", a.Eligible, a.Reason, tt.reason, tt.source)
				}
				if a.Certified != (CertifiedDose{}) {
					t.Errorf("not eligible but Certified = %+v", a.Certified)
				}
				return
			}
			if !a.Eligible || a.Reason != nil {
				t.Fatalf("Eligible=%v Reason=%v, want eligible (%s)", a.Eligible, a.Reason, tt.source)
			}
			c := a.Certified
			if c.Vaccine.Code != tt.certified || c.DoseNumber != tt.dn || c.SeriesDoses != tt.sd || c.VaccinatedOn != tt.dt {
				t.Errorf("certified %s %d/%d on %s, want %s %d/%d on %s (%s)",
					c.Vaccine.Code, c.DoseNumber, c.SeriesDoses, c.VaccinatedOn, tt.certified, tt.dn, tt.sd, tt.dt, tt.source)
			}
		})
	}
}

func TestAssessTypedMismatchDetail(t *testing.T) {
	a, err := Assess([]Dose{d(Pfizer, 2, "2021-09-01")})
	if err != nil {
		t.Fatal(err)
	}
	want := []Inconsistency{{Kind: TypedNumberMismatch, VaccinatedOn: "2021-09-01", Typed: 2, Position: 1}}
	if !reflect.DeepEqual(a.Inconsistencies, want) {
		t.Errorf("Inconsistencies = %+v, want %+v", a.Inconsistencies, want)
	}
	wantDoses := []CountedDose{{Position: 1, VaccinatedOn: "2021-09-01", Vaccines: []Code{Pfizer}, TypedNumbers: []int{2}}}
	if !reflect.DeepEqual(a.Doses, wantDoses) {
		t.Errorf("Doses = %+v, want %+v", a.Doses, wantDoses)
	}
}

func TestAssessRejectsUnreadableDoses(t *testing.T) {
	ok := d(Pfizer, 1, "2021-08-01")
	tests := []struct {
		name  string
		bad   Dose
		field string
	}{
		{"unknown vaccine", d("SINOVAC", 2, "2021-09-01"), "doses[1].vaccine"},
		{"lower-case vaccine", d("pfizer", 2, "2021-09-01"), "doses[1].vaccine"},
		{"dose number 0", d(Pfizer, 0, "2021-09-01"), "doses[1].dose_number"},
		{"empty date", d(Pfizer, 2, ""), "doses[1].vaccinated_on"},
		{"not a date", d(Pfizer, 2, "2021-02-30"), "doses[1].vaccinated_on"},
		{"unpadded date", d(Pfizer, 2, "2021-9-1"), "doses[1].vaccinated_on"},
		{"date and time", d(Pfizer, 2, "2021-09-01T10:00:00Z"), "doses[1].vaccinated_on"},
		{"before the programme", d(Pfizer, 2, "2020-11-30"), "doses[1].vaccinated_on"},
	}
	for _, tt := range tests {
		_, err := Assess([]Dose{ok, tt.bad})
		if !errors.Is(err, ErrInvalidDose) || !strings.HasPrefix(err.Error(), tt.field+":") {
			t.Errorf("%s: error %v, want ErrInvalidDose naming %s", tt.name, err, tt.field)
		}
	}
	if _, err := Assess([]Dose{d(Pfizer, 1, "2020-12-01")}); err != nil {
		t.Errorf("2020-12-01 is the first allowed date: %v", err)
	}
}

// parseDoses turns "CODE,typed,date;..." into doses; fields it cannot read become values
// Assess must reject, so the fuzzer explores both paths.
func parseDoses(s string) []Dose {
	var out []Dose
	for _, rec := range strings.Split(s, ";") {
		if rec == "" {
			continue
		}
		f := strings.SplitN(rec, ",", 3)
		for len(f) < 3 {
			f = append(f, "")
		}
		n, _ := strconv.Atoi(f[1])
		out = append(out, Dose{Vaccine: Code(f[0]), DoseNumber: n, VaccinatedOn: f[2]})
	}
	return out
}

func FuzzAssess(f *testing.F) {
	f.Add("PFIZER,1,2021-08-01;PFIZER,2,2021-09-01")
	f.Add("JANSSEN,1,2021-09-10;PFIZER,2,2022-01-10;MODERNA,3,2022-06-10")
	f.Add("ABDALA,1,2021-09-01;PFIZER,2,2021-11-01")
	f.Add("JANSSEN,1,2021-08-01;PFIZER,1,2021-08-01;PFIZER,2,2021-09-01")
	f.Add("PFIZER,1,2021-08-01;PFIZER,2,2021-09-01;MODERNA,2,2021-09-01")
	f.Add("VERO_CELL,1,2021-06-01;VERO_CELL,2,2021-07-01;PFIZER,3,2021-12-01;MODERNA,4,2022-05-01")
	f.Add("SINOVAC,1,2021-08-01")
	f.Add("")
	f.Fuzz(func(t *testing.T, s string) {
		doses := parseDoses(s)
		a, err := Assess(doses)
		if err != nil {
			if !errors.Is(err, ErrInvalidDose) {
				t.Fatalf("error %v does not wrap ErrInvalidDose", err)
			}
			return
		}
		dates := map[string]bool{}
		for _, x := range doses {
			dates[x.VaccinatedOn] = true
		}
		if a.DosesReceived != len(dates) || len(a.Doses) != len(dates) {
			t.Fatalf("DosesReceived %d, Doses %d, distinct dates %d", a.DosesReceived, len(a.Doses), len(dates))
		}
		if a.Eligible != (a.Reason == nil) {
			t.Fatalf("Eligible=%v with Reason=%v", a.Eligible, a.Reason)
		}
		if a.Eligible {
			c := a.Certified
			if c.DoseNumber != a.DosesReceived || c.DoseNumber < a.CourseLength || c.SeriesDoses < 1 {
				t.Fatalf("certified %d/%d with %d doses, course %d", c.DoseNumber, c.SeriesDoses, a.DosesReceived, a.CourseLength)
			}
			if c.VaccinatedOn != a.Doses[len(a.Doses)-1].VaccinatedOn {
				t.Fatalf("certified %s is not the latest dose %s", c.VaccinatedOn, a.Doses[len(a.Doses)-1].VaccinatedOn)
			}
		}
		// The verdict does not depend on the order the records arrive in.
		shuffled := slices.Clone(doses)
		r := rand.New(rand.NewPCG(uint64(len(s)), 7))
		r.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
		b, err := Assess(shuffled)
		if err != nil {
			t.Fatalf("shuffled input fails: %v", err)
		}
		if fmt.Sprint(a) != fmt.Sprint(b) {
			t.Fatalf("order changes the verdict:\n%v\n%v", a, b)
		}
	})
}

func ExampleAssess() {
	a, err := Assess([]Dose{
		{Vaccine: Janssen, DoseNumber: 1, VaccinatedOn: "2021-09-10"},
		{Vaccine: Pfizer, DoseNumber: 1, VaccinatedOn: "2022-01-10"}, // a booster, typed as 1
	})
	if err != nil {
		panic(err)
	}
	c := a.Certified
	fmt.Printf("eligible=%v %s %d/%d on %s, doses received %d\n", a.Eligible, c.Vaccine.ProductDisplay, c.DoseNumber, c.SeriesDoses, c.VaccinatedOn, a.DosesReceived)
	for _, inc := range a.Inconsistencies {
		fmt.Println(inc)
	}
	// Output:
	// eligible=true Comirnaty 2/1 on 2022-01-10, doses received 2
	// dose of 2022-01-10 typed as dose 1 but is dose 2 by date
}

func BenchmarkAssess(b *testing.B) {
	doses := []Dose{d(AstraZeneca, 1, "2021-06-01"), d(AstraZeneca, 2, "2021-08-20"), d(AstraZeneca, 2, "2021-08-20"), d(Pfizer, 3, "2022-01-05")}
	b.ReportAllocs()
	for b.Loop() {
		if a, err := Assess(doses); err != nil || !a.Eligible {
			b.Fatal(err, a.Reason)
		}
	}
}
