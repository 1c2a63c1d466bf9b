package vaccine

import (
	"errors"
	"fmt"
	"slices"
	"time"
)

// Reasons a person is not eligible for a certificate (Assessment.Reason wraps one of them).
var (
	// ErrNoDoses: the person has no dose at all.
	ErrNoDoses = errors.New("no doses")
	// ErrIncompleteCourse: fewer doses than the primary course needs.
	ErrIncompleteCourse = errors.New("primary course incomplete")
	// ErrConflictingDoses: two different vaccines are recorded on one date, and which one it
	// was changes the certificate (its product, its dn/sd, or whether one is issued at all).
	ErrConflictingDoses = errors.New("different vaccines recorded on the same date")
)

// ErrInvalidDose is wrapped by the error Assess returns for a dose that cannot be read at
// all (unknown vaccine, malformed date, dose number below 1). Stored doses passed the
// ingest validation, so this signals corrupt input rather than a person's situation.
var ErrInvalidDose = errors.New("invalid dose")

// earliestDose is the contract's floor for vaccinated_on (contract.md, dose record).
var earliestDose = time.Date(2020, 12, 1, 0, 0, 0, 0, time.UTC)

// Dose is one dose record as the facility sent it.
type Dose struct {
	Vaccine Code
	// DoseNumber is the number the facility typed. It is reported when it disagrees with the
	// dates, but never trusted: facilities number boosters differently, and a dose given
	// elsewhere may not have arrived yet.
	DoseNumber int
	// VaccinatedOn is the date of the dose, YYYY-MM-DD.
	VaccinatedOn string
}

// CountedDose is one distinct dose after de-duplication, numbered by date.
type CountedDose struct {
	// Position is the dose's rank by date: 1 for the earliest.
	Position     int
	VaccinatedOn string
	// Vaccines holds the vaccine(s) recorded on that date: more than one is a conflict.
	Vaccines []Code
	// TypedNumbers are the distinct dose numbers the facilities typed for it, ascending.
	TypedNumbers []int
}

// InconsistencyKind classifies a disagreement in the records that does not, by itself,
// stop issuance. It is meant for the facility's worklist.
type InconsistencyKind string

const (
	// TypedNumberMismatch: the typed dose_number differs from the dose's position by date
	// (for example a dose typed "2" when only one dose is on record: dose 1 is missing).
	TypedNumberMismatch InconsistencyKind = "TYPED_DOSE_NUMBER"
	// SameDayVaccines: two vaccines recorded on one date; the date counts as one dose. When
	// the choice changes the certificate, Assessment.Reason is ErrConflictingDoses too.
	SameDayVaccines InconsistencyKind = "SAME_DAY_VACCINES"
)

// Inconsistency is one disagreement found in a person's dose records.
type Inconsistency struct {
	Kind         InconsistencyKind
	VaccinatedOn string
	// Typed and Position are set for TypedNumberMismatch.
	Typed, Position int
	// Vaccines is set for SameDayVaccines.
	Vaccines []Code
}

func (i Inconsistency) String() string {
	switch i.Kind {
	case TypedNumberMismatch:
		return fmt.Sprintf("dose of %s typed as dose %d but is dose %d by date", i.VaccinatedOn, i.Typed, i.Position)
	case SameDayVaccines:
		return fmt.Sprintf("dose of %s recorded with vaccines %v", i.VaccinatedOn, i.Vaccines)
	}
	return string(i.Kind)
}

// CertifiedDose is the dose a certificate states: the person's latest, numbered by the EU
// rules.
type CertifiedDose struct {
	Vaccine Vaccine
	// DoseNumber and SeriesDoses are the DCC's dn and sd.
	DoseNumber, SeriesDoses int
	VaccinatedOn            string
}

// Assessment is the verdict on one person's doses.
type Assessment struct {
	// Eligible is true when the primary course is complete and the certified dose is known.
	Eligible bool
	// Reason says why not, wrapping ErrNoDoses, ErrIncompleteCourse or ErrConflictingDoses;
	// nil when Eligible.
	Reason error
	// DosesReceived is the number of distinct doses (same date counted once): the lookup
	// page's "number of doses received".
	DosesReceived int
	// CourseLength is the number of doses the primary course needs: that of the vaccine of
	// the first dose (0 when that is ambiguous or there are no doses).
	CourseLength int
	// Certified is set when Eligible.
	Certified CertifiedDose
	// Doses are the distinct doses in date order.
	Doses           []CountedDose
	Inconsistencies []Inconsistency
}

// Numbering returns the DCC dn and sd of the dose at position (1-based, counted by date over
// all doses given, whatever the product) in a course whose primary series needs
// courseLength doses.
//
//   - Within the primary course dn counts the doses given and sd is the course length: 1/2,
//     2/2, 1/3, 3/3, 1/1 (eu-dcc-schema examples/vaccination/standard_case_1-of-2-moderna,
//     standard_case_2-of-2-moderna-moderna, standard_case_1-of-1-janssen).
//   - A booster after a primary course of 2 or more doses is dn=sd=doses given: 3/3, 4/4
//     (Commission Delegated Regulation (EU) 2021/2288 and press release IP/21/6837: "3/3 for
//     a booster dose following a primary 2-dose vaccination series"; eu-dcc-schema examples
//     standard_case_3-of-3-moderna-moderna-moderna, standard_case_4-of-4-moderna-...;
//     dcc-quality-assurance TSI/1.3.0/booster-encodings acc_3_of_3, acc_6_of_6).
//   - A booster after a single-dose primary course keeps sd=1: 2/1, 3/1, 4/1 (same
//     regulation: "2/1 for a booster dose following a single-dose vaccination"; examples
//     standard_case_2-of-1-janssen-janssen, 3-of-1, 4-of-1; TSI acc_2_of_1, acc_3_of_1,
//     acc_6_of_1).
//
// It panics when position or courseLength is below 1: callers hold counted doses.
func Numbering(position, courseLength int) (dn, sd int) {
	if position < 1 || courseLength < 1 {
		panic(fmt.Sprintf("vaccine.Numbering(%d, %d): arguments must be >= 1", position, courseLength))
	}
	switch {
	case position < courseLength:
		return position, courseLength
	case courseLength == 1:
		return position, 1
	default:
		return position, position
	}
}

// Assess decides whether doses (in any order, duplicates and mixed vaccines allowed)
// complete a primary course and, if so, which dose is certified and how it is numbered.
//
// Rules, and why:
//   - Dates are the truth, not typed dose numbers: doses are de-duplicated by date (the same
//     date and vaccine sent twice is one dose) and numbered by date. Typed numbers that
//     disagree are reported as Inconsistencies, never used.
//   - Mixed courses: the primary course needs the number of doses of the vaccine of the
//     FIRST dose (the schedule the person started), counting doses of any product
//     (domain-vn.md: "A mixed course (AstraZeneca then Pfizer) completes after the number of
//     doses the course needs"). So AstraZeneca+Pfizer is 2/2, Janssen+Pfizer is a 2/1
//     booster, and Abdala+Pfizer is still 2/3, incomplete: we never certify a course shorter
//     than the one that was started.
//   - The certified dose is the latest (one event per DCC; eu-dcc-schema 1.3.0 v maxItems 1),
//     numbered by Numbering.
//   - Two vaccines on one date: a person gets one dose a day, so it counts once. It stops
//     issuance (ErrConflictingDoses) only if the choice changes the certificate: on the
//     latest date (the product certified) or on the first date when the candidates' course
//     lengths give a different outcome. Otherwise it is an Inconsistency.
//
// The error is non-nil only for unreadable input (wrapping ErrInvalidDose, naming the dose
// and field); a person who is not eligible gets a nil error and Assessment.Reason.
func Assess(doses []Dose) (Assessment, error) {
	type day struct {
		date     time.Time
		text     string
		vaccines []Code
		typed    []int
	}
	byDate := make(map[time.Time]*day)
	for i, d := range doses {
		if _, err := Lookup(string(d.Vaccine)); err != nil {
			return Assessment{}, fmt.Errorf("doses[%d].vaccine: %w: %w", i, ErrInvalidDose, err)
		}
		if d.DoseNumber < 1 {
			return Assessment{}, fmt.Errorf("doses[%d].dose_number: %w: %d is below 1", i, ErrInvalidDose, d.DoseNumber)
		}
		on, err := time.Parse(time.DateOnly, d.VaccinatedOn)
		if err != nil {
			return Assessment{}, fmt.Errorf("doses[%d].vaccinated_on: %w: %q is not a YYYY-MM-DD date", i, ErrInvalidDose, d.VaccinatedOn)
		}
		if on.Before(earliestDose) {
			return Assessment{}, fmt.Errorf("doses[%d].vaccinated_on: %w: %s is before 2020-12-01", i, ErrInvalidDose, d.VaccinatedOn)
		}
		dd := byDate[on]
		if dd == nil {
			dd = &day{date: on, text: on.Format(time.DateOnly)}
			byDate[on] = dd
		}
		if !slices.Contains(dd.vaccines, d.Vaccine) {
			dd.vaccines = append(dd.vaccines, d.Vaccine)
		}
		if !slices.Contains(dd.typed, d.DoseNumber) {
			dd.typed = append(dd.typed, d.DoseNumber)
		}
	}

	days := make([]*day, 0, len(byDate))
	for _, dd := range byDate {
		slices.Sort(dd.vaccines)
		slices.Sort(dd.typed)
		days = append(days, dd)
	}
	slices.SortFunc(days, func(a, b *day) int { return a.date.Compare(b.date) })

	var a Assessment
	a.DosesReceived = len(days)
	for i, dd := range days {
		pos := i + 1
		a.Doses = append(a.Doses, CountedDose{Position: pos, VaccinatedOn: dd.text, Vaccines: dd.vaccines, TypedNumbers: dd.typed})
		for _, t := range dd.typed {
			if t != pos {
				a.Inconsistencies = append(a.Inconsistencies, Inconsistency{Kind: TypedNumberMismatch, VaccinatedOn: dd.text, Typed: t, Position: pos})
			}
		}
		if len(dd.vaccines) > 1 {
			a.Inconsistencies = append(a.Inconsistencies, Inconsistency{Kind: SameDayVaccines, VaccinatedOn: dd.text, Vaccines: dd.vaccines})
		}
	}
	if len(days) == 0 {
		a.Reason = ErrNoDoses
		return a, nil
	}

	// outcome is what the certificate would say for a given course length.
	type outcome struct {
		complete bool
		sd       int
	}
	n := len(days)
	outcomeFor := func(courseLength int) outcome {
		_, sd := Numbering(n, courseLength)
		return outcome{complete: n >= courseLength, sd: sd}
	}

	first, last := days[0], days[n-1]
	a.CourseLength = courseLengthOf(first.vaccines[0])
	for _, v := range first.vaccines[1:] {
		if outcomeFor(courseLengthOf(v)) != outcomeFor(a.CourseLength) {
			a.CourseLength = 0
			a.Reason = fmt.Errorf("%w: first dose on %s recorded as %v, whose courses differ", ErrConflictingDoses, first.text, first.vaccines)
			return a, nil
		}
	}
	if n < a.CourseLength {
		a.Reason = fmt.Errorf("%w: %d of %d doses", ErrIncompleteCourse, n, a.CourseLength)
		return a, nil
	}
	if len(last.vaccines) > 1 {
		a.Reason = fmt.Errorf("%w: latest dose on %s recorded as %v", ErrConflictingDoses, last.text, last.vaccines)
		return a, nil
	}
	certified, _ := Lookup(string(last.vaccines[0]))
	dn, sd := Numbering(n, a.CourseLength)
	a.Eligible = true
	a.Certified = CertifiedDose{Vaccine: certified, DoseNumber: dn, SeriesDoses: sd, VaccinatedOn: last.text}
	return a, nil
}

// courseLengthOf is only called with codes Assess has already looked up.
func courseLengthOf(c Code) int {
	v, err := Lookup(string(c))
	if err != nil {
		panic("vaccine: course length of unchecked code " + string(c))
	}
	return v.PrimaryCourse
}
