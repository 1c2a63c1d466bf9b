package synth

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/vaxpass/vaxpass/shared/domain/identity"
	"github.com/vaxpass/vaxpass/shared/domain/match"
)

// Class is the kind of error planted in a person's dose records: the real failure classes
// the Ministry named, and the trivial variants the matcher must resolve by itself. All
// doses of one person carry the same class.
type Class string

// The classes. Each one's Expect says what the matcher must answer.
const (
	Clean Class = "clean" // details exactly as in the registry

	// Trivial variants: VERIFIED, with the registry's value listed in corrected.
	NameNFD     Class = "name_nfd"      // name in NFD
	NameASCII   Class = "name_ascii"    // name without diacritics
	NameUpper   Class = "name_upper"    // name in upper case
	NameSpaces  Class = "name_spaces"   // doubled spaces inside the name
	IDSpaced    Class = "id_spaced"     // ID typed with spaces: "079 085 012 345"
	IDDotted    Class = "id_dotted"     // ID typed with dots: "079.085.012.345"
	DOBYearOnly Class = "dob_year_only" // only the year of birth

	NoID Class = "no_id" // empty ID

	// INVALID_ID: the ID cannot be anyone's, or contradicts the record and is not in the
	// registry.
	IDLength        Class = "id_length"         // 11 or 13 digits
	IDLetters       Class = "id_letters"        // a letter typed for a look-alike digit (O for 0)
	IDProvince      Class = "id_province"       // a province code that does not exist
	IDGenderCentury Class = "id_gender_century" // digit 4 contradicts gender or century
	IDBirthYear     Class = "id_birth_year"     // digits 5-6 contradict the birth year

	// NOT_FOUND: a well-formed ID the registry does not hold.
	NotFound Class = "not_found" // a consistent CCCD with mistyped random digits
	OldCMND  Class = "old_cmnd"  // the old 9-digit CMND instead of the CCCD

	// MISMATCH: the ID is in the registry; the record disagrees on these details.
	WrongName    Class = "wrong_name"     // a genuinely different given name
	WrongDOB     Class = "wrong_dob"      // a different date of birth
	WrongGender  Class = "wrong_gender"   // gender flipped (the CCCD digit now contradicts too)
	WrongNameDOB Class = "wrong_name_dob" // both
)

// Classes lists every class in a fixed order; draws and reports follow it.
var Classes = []Class{
	Clean, NameNFD, NameASCII, NameUpper, NameSpaces, IDSpaced, IDDotted, DOBYearOnly,
	NoID, IDLength, IDLetters, IDProvince, IDGenderCentury, IDBirthYear, NotFound, OldCMND,
	WrongName, WrongDOB, WrongGender, WrongNameDOB,
}

// Expect returns the status and reasons the matcher must give a record of this class.
// The reasons of INVALID_ID are the reason codes of shared/domain/identity.
func (c Class) Expect() (status match.Status, reasons []string) {
	switch c {
	case Clean, NameNFD, NameASCII, NameUpper, NameSpaces, IDSpaced, IDDotted, DOBYearOnly:
		return match.Verified, nil
	case NoID:
		return match.NoID, nil
	case IDLength:
		return match.InvalidID, []string{identity.ErrLength.Code}
	case IDLetters:
		return match.InvalidID, []string{identity.ErrCharacters.Code}
	case IDProvince:
		return match.InvalidID, []string{identity.ErrProvince.Code}
	case IDGenderCentury:
		return match.InvalidID, []string{identity.ErrGenderCentury.Code}
	case IDBirthYear:
		return match.InvalidID, []string{identity.ErrBirthYear.Code}
	case NotFound, OldCMND:
		return match.NotFound, nil
	case WrongName:
		return match.Mismatch, []string{match.ReasonName}
	case WrongDOB:
		return match.Mismatch, []string{match.ReasonDOB}
	case WrongGender:
		return match.Mismatch, []string{match.ReasonGender}
	case WrongNameDOB:
		return match.Mismatch, []string{match.ReasonName, match.ReasonDOB}
	}
	panic("synth: unknown class " + string(c))
}

// Mix is the share of vaccinated people given each class. Shares are relative: they are
// divided by their sum.
type Mix map[Class]float64

// DefaultMix plants errors at about the rate the real programme saw: roughly a quarter of
// the records failed the first registry check (domain-vn.md: 113 million verified, 41
// million failed in March 2022), plus the trivial variants a matcher must absorb.
func DefaultMix() Mix {
	return Mix{
		Clean: 0.715, NameNFD: 0.02, NameASCII: 0.03, NameUpper: 0.01, NameSpaces: 0.01,
		IDSpaced: 0.01, IDDotted: 0.01, DOBYearOnly: 0.02,
		NoID:     0.05,
		IDLength: 0.01, IDLetters: 0.005, IDProvince: 0.005, IDGenderCentury: 0.005, IDBirthYear: 0.005,
		NotFound: 0.02, OldCMND: 0.01,
		WrongName: 0.03, WrongDOB: 0.02, WrongGender: 0.01, WrongNameDOB: 0.005,
	}
}

// ErrMix reports a mix that cannot be used.
var ErrMix = errors.New("invalid mix")

// ParseMix reads "class=share,class=share" over DefaultMix: named classes get the share
// given, the others keep theirs. "only" as the first item starts from an empty mix instead:
// "only,clean=1,no_id=1" gives half and half.
func ParseMix(s string) (Mix, error) {
	m := DefaultMix()
	items := strings.Split(s, ",")
	if len(items) > 0 && strings.TrimSpace(items[0]) == "only" {
		m, items = Mix{}, items[1:]
	}
	for _, item := range items {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		name, value, ok := strings.Cut(item, "=")
		if !ok {
			return nil, fmt.Errorf("%w: %q is not class=share", ErrMix, item)
		}
		c := Class(strings.TrimSpace(name))
		if !c.known() {
			return nil, fmt.Errorf("%w: unknown class %q", ErrMix, name)
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(value), 64)
		if err != nil || v < 0 || v != v || v > 1e9 {
			return nil, fmt.Errorf("%w: share of %s must be a number >= 0, got %q", ErrMix, c, value)
		}
		m[c] = v
	}
	return m, m.check()
}

func (c Class) known() bool {
	for _, k := range Classes {
		if k == c {
			return true
		}
	}
	return false
}

func (m Mix) check() error {
	sum := 0.0
	for c, v := range m {
		if !c.known() {
			return fmt.Errorf("%w: unknown class %q", ErrMix, c)
		}
		if v < 0 || v != v {
			return fmt.Errorf("%w: share of %s is %v", ErrMix, c, v)
		}
		sum += v
	}
	if sum <= 0 {
		return fmt.Errorf("%w: every share is zero", ErrMix)
	}
	return nil
}

// Fractions returns each class's share of the whole, in Classes order.
func (m Mix) Fractions() []float64 {
	sum := 0.0
	for _, c := range Classes {
		sum += m[c]
	}
	f := make([]float64, len(Classes))
	for i, c := range Classes {
		f[i] = m[c] / sum
	}
	return f
}

// String formats the mix as ParseMix reads it, in Classes order.
func (m Mix) String() string {
	var b strings.Builder
	b.WriteString("only")
	for _, c := range Classes {
		if m[c] > 0 {
			fmt.Fprintf(&b, ",%s=%g", c, m[c])
		}
	}
	return b.String()
}
