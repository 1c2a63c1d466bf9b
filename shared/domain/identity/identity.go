// Package identity normalises and checks Vietnamese citizen ID numbers: the 12-digit
// personal identification number carried by the CCCD (and by the 12-digit CMND), and the
// old 9-digit CMND (notes §4.3-4.5).
//
// The checks come in two layers, because the matcher needs them apart:
//   - Parse is syntactic ("đúng định dạng"): characters, length, province code. A number
//     failing it cannot be anyone's ID.
//   - (ID).CheckRecord compares the digits that encode gender, century and birth year with
//     the record typed beside the number. A contradiction means the number or the record is
//     wrong; which one only the registry can tell.
package identity

import (
	"errors"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/vaxpass/vaxpass/shared/domain/dose"
)

// Kind is the kind of ID a number's format says it is.
type Kind int

const (
	// CMND9 is the old 9-digit CMND: no encoded gender or birth year, nothing to check
	// beyond the format.
	CMND9 Kind = 9
	// Personal12 is the 12-digit personal identification number: the CCCD number, equal to
	// the number of the 12-digit CMND it replaced.
	Personal12 Kind = 12
)

func (k Kind) String() string {
	switch k {
	case CMND9:
		return "CMND"
	case Personal12:
		return "CCCD"
	}
	return fmt.Sprintf("Kind(%d)", int(k))
}

// Error is one failure class of an ID number; Code is the reason code the matcher reports.
// The exported Err* values are the sentinels: test with errors.Is, read the code with Code.
type Error struct {
	Code    string
	Message string
}

func (e *Error) Error() string { return e.Message }

// Reason codes and their sentinel errors.
var (
	ErrEmpty         = &Error{"NO_ID", "no ID number"}
	ErrCharacters    = &Error{"ID_CHARACTERS", "ID number holds characters other than digits"}
	ErrLength        = &Error{"ID_LENGTH", "ID number is neither 9 (CMND) nor 12 (CCCD) digits long"}
	ErrProvince      = &Error{"ID_PROVINCE", "ID number starts with an unknown province code"}
	ErrGenderCentury = &Error{"ID_GENDER_CENTURY", "ID number's gender/century digit contradicts the record"}
	ErrBirthYear     = &Error{"ID_BIRTH_YEAR", "ID number's birth-year digits contradict the record"}
)

// Code returns the reason code of the first identity error in err's tree, or "".
func Code(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return ""
}

// Codes returns the reason codes of every identity error joined in err, in order.
func Codes(err error) []string {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var codes []string
		for _, e := range j.Unwrap() {
			codes = append(codes, Codes(e)...)
		}
		return codes
	}
	if c := Code(err); c != "" {
		return []string{c}
	}
	return nil
}

// Normalize removes what people type inside an ID number: white space, dots and dashes
// ("001 088 012 345", "001.088.012.345"). Everything else is kept for Parse to judge. It
// returns s itself when there is nothing to remove.
func Normalize(s string) string {
	clean := true
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= ' ' || c == '.' || c == '-' || c >= utf8.RuneSelf {
			clean = false
			break
		}
	}
	if clean {
		return s
	}
	return strings.Map(func(r rune) rune {
		if r == '.' || r == '-' || r == '\u2010' || r == '\u2011' || r == '\u2013' || unicode.IsSpace(r) {
			return -1
		}
		return r
	}, s)
}

// ID is a syntactically valid ID number.
type ID struct {
	Number string // normalised: digits only
	Kind   Kind
}

// Parse normalises s and checks its format: only digits (ErrCharacters), 9 or 12 of them
// (ErrLength), and for 12 digits a province code among the 63 (ErrProvince). An empty
// number gives ErrEmpty. Errors wrap the sentinels with the detail found.
func Parse(s string) (ID, error) {
	n := Normalize(s)
	if n == "" {
		return ID{}, ErrEmpty
	}
	for i := 0; i < len(n); i++ {
		if n[i] < '0' || n[i] > '9' {
			return ID{}, ErrCharacters
		}
	}
	switch len(n) {
	case 9:
		return ID{Number: n, Kind: CMND9}, nil
	case 12:
		if !knownProvince[int(n[0]-'0')*100+int(n[1]-'0')*10+int(n[2]-'0')] {
			return ID{}, fmt.Errorf("%w: %s", ErrProvince, n[:3])
		}
		return ID{Number: n, Kind: Personal12}, nil
	}
	return ID{}, fmt.Errorf("%w: %d digits", ErrLength, len(n))
}

// ProvinceCode returns the 3-digit code of the province where the birth was registered,
// or "" for a 9-digit CMND.
func (id ID) ProvinceCode() string {
	if id.Kind != Personal12 {
		return ""
	}
	return id.Number[:3]
}

// ProvinceName returns the Vietnamese name of the province of ProvinceCode, or "".
func (id ID) ProvinceName() string { return provinceNames[id.ProvinceCode()] }

// Gender returns the gender encoded in digit 4 (even male, odd female), or "" for a
// 9-digit CMND.
func (id ID) Gender() string {
	if id.Kind != Personal12 {
		return ""
	}
	if (id.Number[3]-'0')%2 == 0 {
		return dose.Male
	}
	return dose.Female
}

// BirthYear returns the birth year encoded in digits 4-6: century (19 + digit4/2) and the
// year's last two digits. ok is false for a 9-digit CMND.
func (id ID) BirthYear() (year int, ok bool) {
	if id.Kind != Personal12 {
		return 0, false
	}
	d := id.Number
	century := 19 + int(d[3]-'0')/2
	return century*100 + int(d[4]-'0')*10 + int(d[5]-'0'), true
}

// CheckRecord compares the digits of a 12-digit number with the gender and date of birth
// typed beside it: digit 4 must give the dob's century and the gender's parity
// (ErrGenderCentury), digits 5-6 the dob year's last two digits (ErrBirthYear). A part of
// the record that is unknown (gender "", dob Year 0) is not checked; a year-only dob is
// enough. A 9-digit CMND encodes nothing and always passes. All failures are returned,
// joined, in that order.
func (id ID) CheckRecord(gender string, dob dose.PartialDate) error {
	if id.Kind != Personal12 {
		return nil
	}
	var errs []error
	encoded, _ := id.BirthYear()
	if g := id.Gender(); gender != "" && g != gender {
		errs = append(errs, fmt.Errorf("%w: digit 4 says %s", ErrGenderCentury, g))
	} else if dob.Year != 0 && dob.Year/100 != encoded/100 {
		errs = append(errs, fmt.Errorf("%w: digit 4 says born %d-%d", ErrGenderCentury, encoded/100*100, encoded/100*100+99))
	}
	if dob.Year != 0 && dob.Year%100 != encoded%100 {
		errs = append(errs, fmt.Errorf("%w: digits 5-6 say %02d", ErrBirthYear, encoded%100))
	}
	return errors.Join(errs...)
}
