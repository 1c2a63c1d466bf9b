// Package match decides whether a dose record's person is the one the population registry
// holds under the record's ID number (contract: "Match status").
//
// Trivial differences are resolved automatically: a name typed without diacritics, in
// another Unicode normal form, case or spacing, an ID typed with spaces or dots, or a
// year-only date of birth all verify when ID, date of birth and gender agree, and the
// result says what was taken from the registry. Everything else gets a status and precise
// reasons for the commune worklists, and, when the ID cannot be used, the registry people
// the record most likely meant.
package match

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/vaxpass/vaxpass/shared/domain/dose"
	"github.com/vaxpass/vaxpass/shared/domain/identity"
	"github.com/vaxpass/vaxpass/shared/domain/vnname"
)

// Status is a record's match status (contract).
type Status string

// The statuses of the contract.
const (
	Pending   Status = "PENDING"    // not matched yet (or the registry could not be read)
	Verified  Status = "VERIFIED"   // registry holds the ID; name, dob, gender agree
	NoID      Status = "NO_ID"      // no ID number given
	InvalidID Status = "INVALID_ID" // the ID cannot be a CCCD/CMND, or contradicts the record and is unknown
	NotFound  Status = "NOT_FOUND"  // well-formed ID the registry does not hold
	Mismatch  Status = "MISMATCH"   // registry holds the ID; Reasons lists what disagrees
)

// Reasons of a MISMATCH, reported in this order. INVALID_ID reasons are the identity
// package's codes (ID_CHARACTERS, ID_LENGTH, ID_PROVINCE, ID_GENDER_CENTURY, ID_BIRTH_YEAR).
const (
	ReasonName   = "NAME"
	ReasonDOB    = "DOB"
	ReasonGender = "GENDER"
)

// Keys of Result.Corrected: the dose-record fields taken from the registry.
const (
	FieldFullName = "full_name"
	FieldDOB      = "dob"
	FieldGender   = "gender"
	FieldIDNumber = "id_number"
)

// DefaultMaxCandidates is how many candidates a result carries at most.
const DefaultMaxCandidates = 5

// Person is one registry entry. In the registry DOB is always a full YYYY-MM-DD date and
// Gender is "male" or "female".
type Person struct {
	IDNumber string `json:"id_number"`
	FullName string `json:"full_name"`
	DOB      string `json:"dob"`
	Gender   string `json:"gender"`
	// NameKey is vnname.Key(FullName) when the registry precomputed it (it should: that
	// keeps the matcher's hot path free of Unicode work); the matcher computes it when empty.
	NameKey string `json:"-"`
}

// Candidate is a registry person a record without a usable ID may be, with a score in
// (0, 1]; see Matcher.Candidates for the scale.
type Candidate struct {
	Person
	Score float64 `json:"score"`
}

// Result is the outcome of matching one record.
type Result struct {
	Status  Status   `json:"status"`
	Reasons []string `json:"reasons"`
	// Corrected holds, for a VERIFIED record, the fields whose registry value differs from
	// what was typed: full_name (registry spelling), dob (the full date when the record had
	// a partial one), gender, id_number (normalised).
	Corrected  map[string]string `json:"corrected,omitempty"`
	Candidates []Candidate       `json:"candidates,omitempty"`
}

// Registry is the population registry as the matcher needs it. Implementations live in
// shared/tool/registry (in memory) and shared/store/embedded (bbolt); both must be safe for
// concurrent use once loaded.
type Registry interface {
	// Lookup returns the person holding a normalised ID number (digits only).
	Lookup(id string) (p Person, found bool, err error)
	// SameName calls visit for every person whose name key (vnname.Key) is nameKey and
	// whose date of birth is in birthYear, until visit returns false.
	SameName(nameKey string, birthYear int, visit func(Person) bool) error
}

// ErrRegistry wraps a failure to read the registry; the record stays PENDING.
var ErrRegistry = errors.New("registry unavailable")

// Matcher matches records against a registry. Its fields are read-only once in use, and a
// Matcher is safe for concurrent use when its Registry is.
type Matcher struct {
	Registry Registry
	// MaxCandidates caps Result.Candidates (DefaultMaxCandidates when 0; negative: none).
	MaxCandidates int
	// Now gives today's date, to reject IDs whose encoded birth year is in the future
	// (time.Now when nil).
	Now func() time.Time
}

// New returns a Matcher over reg with the default settings.
func New(reg Registry) *Matcher { return &Matcher{Registry: reg} }

// noReasons is the empty, non-nil reason list: JSON shows "reasons":[] rather than null.
var noReasons = []string{}

// Match decides the status of one record; see the package documentation and the contract.
// The record is used as typed (its Normalize need not have run). An error means the
// registry could not be read; the result is then PENDING.
func (m *Matcher) Match(r dose.Record) (Result, error) {
	gender := strings.ToLower(strings.TrimSpace(r.Gender))
	dob, dobErr := dose.ParsePartialDate(strings.TrimSpace(r.DOB))
	if dobErr != nil {
		dob = dose.PartialDate{} // unknown: not compared with ID digits, never agrees
	}

	id, err := identity.Parse(r.IDNumber)
	switch {
	case errors.Is(err, identity.ErrEmpty):
		return m.withCandidates(Result{Status: NoID, Reasons: noReasons}, r.FullName, dob, gender)
	case err != nil:
		return m.withCandidates(Result{Status: InvalidID, Reasons: []string{identity.Code(err)}}, r.FullName, dob, gender)
	}
	if year, ok := id.BirthYear(); ok && year > m.today().Year() {
		// Digits 4-6 say the person is not born yet: no registry can hold the number.
		return m.withCandidates(Result{Status: InvalidID, Reasons: []string{identity.ErrBirthYear.Code}}, r.FullName, dob, gender)
	}

	p, found, err := m.Registry.Lookup(id.Number)
	if err != nil {
		return Result{Status: Pending, Reasons: noReasons}, fmt.Errorf("%w: lookup: %w", ErrRegistry, err)
	}
	if !found {
		// Only now do the ID's own digits count against the record: when the registry
		// holds the ID, it decides (a contradiction there is a MISMATCH).
		checkGender := gender
		if checkGender != dose.Male && checkGender != dose.Female {
			checkGender = "" // not a gender: nothing to compare digit 4 with
		}
		if codes := identity.Codes(id.CheckRecord(checkGender, dob)); len(codes) > 0 {
			return m.withCandidates(Result{Status: InvalidID, Reasons: codes}, r.FullName, dob, gender)
		}
		return m.withCandidates(Result{Status: NotFound, Reasons: noReasons}, r.FullName, dob, gender)
	}
	return compare(r, id, p, dob, dobErr == nil, gender), nil
}

// compare judges a record against the registry person holding its ID.
func compare(r dose.Record, id identity.ID, p Person, dob dose.PartialDate, dobOK bool, gender string) Result {
	var keyBuf [128]byte
	recordKey := vnname.AppendKey(keyBuf[:0], r.FullName)
	registryKey := p.NameKey
	if registryKey == "" {
		registryKey = vnname.Key(p.FullName)
	}
	nameOK := string(recordKey) == registryKey
	regDOB, err := dose.ParsePartialDate(p.DOB)
	dobAgrees := dobOK && err == nil && dob.Agrees(regDOB)
	genderOK := gender == p.Gender

	if !nameOK || !dobAgrees || !genderOK {
		reasons := make([]string, 0, 3)
		if !nameOK {
			reasons = append(reasons, ReasonName)
		}
		if !dobAgrees {
			reasons = append(reasons, ReasonDOB)
		}
		if !genderOK {
			reasons = append(reasons, ReasonGender)
		}
		return Result{Status: Mismatch, Reasons: reasons}
	}

	res := Result{Status: Verified, Reasons: noReasons}
	correct := func(field, typed, registry string) {
		if typed != registry {
			if res.Corrected == nil {
				res.Corrected = make(map[string]string, 4)
			}
			res.Corrected[field] = registry
		}
	}
	correct(FieldFullName, r.FullName, p.FullName)
	correct(FieldDOB, r.DOB, p.DOB)
	correct(FieldGender, r.Gender, p.Gender)
	correct(FieldIDNumber, r.IDNumber, id.Number)
	return res
}

func (m *Matcher) today() time.Time {
	if m.Now != nil {
		return m.Now()
	}
	return time.Now()
}

func (m *Matcher) withCandidates(res Result, fullName string, dob dose.PartialDate, gender string) (Result, error) {
	c, err := m.candidates(fullName, dob, gender)
	if err != nil {
		return res, err
	}
	res.Candidates = c
	return res, nil
}

// Candidates returns the registry people a record with this name, date of birth
// (YYYY, YYYY-MM or YYYY-MM-DD) and gender most likely is, best first, at most
// MaxCandidates. Only people with the same name key and birth year are considered (an
// index lookup, not a scan). Scores:
//
//	1.0  the record's full date equals the registry's
//	0.9  the record has year and month, and they agree
//	0.8  the record has the year only
//	0.5  same year, but the record's month or day differs (a typo the commune can confirm)
//
// halved when the gender differs. Ties are broken by ID number, so the order is stable.
func (m *Matcher) Candidates(fullName, dob, gender string) ([]Candidate, error) {
	d, err := dose.ParsePartialDate(strings.TrimSpace(dob))
	if err != nil {
		return nil, nil
	}
	return m.candidates(fullName, d, strings.ToLower(strings.TrimSpace(gender)))
}

func (m *Matcher) candidates(fullName string, dob dose.PartialDate, gender string) ([]Candidate, error) {
	limit := m.MaxCandidates
	if limit == 0 {
		limit = DefaultMaxCandidates
	}
	key := vnname.Key(fullName)
	if limit < 0 || dob.Year == 0 || key == "" {
		return nil, nil
	}
	var out []Candidate
	err := m.Registry.SameName(key, dob.Year, func(p Person) bool {
		regDOB, err := dose.ParsePartialDate(p.DOB)
		if err != nil || regDOB.Year != dob.Year {
			return true
		}
		c := Candidate{Person: p, Score: dobScore(dob, regDOB)}
		if gender != p.Gender {
			c.Score /= 2
		}
		out = insertCandidate(out, c, limit)
		return true
	})
	if err != nil {
		return nil, fmt.Errorf("%w: candidates: %w", ErrRegistry, err)
	}
	return out, nil
}

func dobScore(record, registry dose.PartialDate) float64 {
	switch {
	case !record.Agrees(registry):
		return 0.5
	case record.Day != 0:
		return 1.0
	case record.Month != 0:
		return 0.9
	}
	return 0.8
}

// insertCandidate keeps list sorted best first and at most limit long; common names make
// the visited set large, so this never holds more than limit people.
func insertCandidate(list []Candidate, c Candidate, limit int) []Candidate {
	better := func(a, b Candidate) int {
		if a.Score != b.Score {
			return cmp.Compare(b.Score, a.Score)
		}
		return cmp.Compare(a.IDNumber, b.IDNumber)
	}
	i, _ := slices.BinarySearchFunc(list, c, better)
	if i >= limit {
		return list
	}
	list = slices.Insert(list, i, c)
	if len(list) > limit {
		list = list[:limit]
	}
	return list
}
