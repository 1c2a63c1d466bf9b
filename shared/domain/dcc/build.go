package dcc

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/vaxpass/vaxpass/shared/domain/uvci"
	"github.com/vaxpass/vaxpass/shared/domain/vaccine"
	"github.com/vaxpass/vaxpass/shared/domain/vnname"
	"golang.org/x/text/unicode/norm"
)

// ErrInvalid: the builder's input, or a certificate given to Validate, breaks one of our
// issuing rules. The wrapping error names the field ("nam.fn", "dob", "v[0].dt", ...).
var ErrInvalid = errors.New("invalid certificate content")

// maxText is the schema's limit for fn, gn, fnt, gnt, is and ci (code points).
const maxText = 80

// Person is who the certificate is for, as the registry knows them.
type Person struct {
	// FullName is written family name first ("Nguyễn Văn An"), in any Unicode normal form
	// and spacing.
	FullName string
	// DOB is YYYY-MM-DD, YYYY-MM or YYYY (year-only birth dates are common in older
	// Vietnamese records and the schema allows them).
	DOB string
}

// NewName builds the DCC name from a family name and given names: fn and gn in NFC with
// white space trimmed and collapsed, fnt and gnt their ICAO 9303 transliteration
// (vnname.ICAO). fnt is always sent (the 1.3.0 schema requires it; notes §1.9 recommends
// it for every version); gn and gnt only when there is a given name.
func NewName(family, given string) (Name, error) {
	n := Name{FN: vnname.Normalize(family), GN: vnname.Normalize(given)}
	if n.FN == "" {
		return Name{}, fmt.Errorf("nam.fn: %w: no family name", ErrInvalid)
	}
	n.FNT = vnname.ICAO(n.FN)
	if n.FNT == "" {
		return Name{}, fmt.Errorf("nam.fnt: %w: the family name has no letter that transliterates to A-Z", ErrInvalid)
	}
	if n.GN != "" {
		n.GNT = vnname.ICAO(n.GN)
		if n.GNT == "" {
			return Name{}, fmt.Errorf("nam.gnt: %w: the given name has no letter that transliterates to A-Z", ErrInvalid)
		}
	}
	if err := checkName(n); err != nil {
		return Name{}, err
	}
	return n, nil
}

// Build assembles the certificate of one certified dose (as vaccine.Assess chose and
// numbered it) for a person, with the UVCI ci. The full name is split family-first with
// vnname.Split. The result has passed Validate: schema, value sets and our issuing rules.
func Build(p Person, dose vaccine.CertifiedDose, ci string) (*Certificate, error) {
	family, given := vnname.Split(p.FullName)
	name, err := NewName(family, given)
	if err != nil {
		return nil, err
	}
	c := &Certificate{
		Ver: SchemaVersion,
		Nam: name,
		DOB: p.DOB,
		V: []Vaccination{{
			TG: vaccine.DiseaseTargeted,
			VP: dose.Vaccine.Prophylaxis,
			MP: dose.Vaccine.Product,
			MA: dose.Vaccine.Manufacturer,
			DN: dose.DoseNumber,
			SD: dose.SeriesDoses,
			DT: dose.VaccinatedOn,
			CO: Country,
			IS: Issuer,
			CI: ci,
		}},
	}
	// The catalogue entry must be one of ours, not a hand-made look-alike.
	if want, err := vaccine.Lookup(string(dose.Vaccine.Code)); err != nil || want != dose.Vaccine {
		return nil, fmt.Errorf("v[0].mp: %w: vaccine %q is not a catalogue entry", ErrInvalid, dose.Vaccine.Code)
	}
	if err := Validate(c); err != nil {
		return nil, err
	}
	return c, nil
}

// icaoPattern is the schema's pattern for fnt and gnt.
var icaoPattern = regexp.MustCompile(`^[A-Z<]*$`)

// Validate checks a certificate we are about to sign: it must be a single vaccination
// event, be confirmed against the official schema by KnownValidVaccination on its JSON
// encoding, pass the value sets (CheckValueSets), and follow our stricter issuing rules,
// which the schema leaves open: NFC and trimmed names, fnt always present, dob and dt real
// calendar dates, dn and sd at least 1, a well-formed UVCI, the issuer and country
// constants.
func Validate(c *Certificate) error {
	if c == nil {
		return fmt.Errorf("certificate: %w: nil", ErrInvalid)
	}
	if len(c.V) != 1 || len(c.T) != 0 || len(c.R) != 0 {
		return fmt.Errorf("v: %w: want exactly one vaccination event and no test or recovery", ErrInvalid)
	}
	if c.Ver != SchemaVersion {
		return fmt.Errorf("ver: %w: %q, want %q", ErrInvalid, c.Ver, SchemaVersion)
	}
	if err := checkName(c.Nam); err != nil {
		return err
	}
	if err := checkDOB(c.DOB); err != nil {
		return err
	}
	v := c.V[0]
	if v.DN < 1 {
		return fmt.Errorf("v[0].dn: %w: %d is below 1", ErrInvalid, v.DN)
	}
	if v.SD < 1 {
		return fmt.Errorf("v[0].sd: %w: %d is below 1", ErrInvalid, v.SD)
	}
	if _, err := time.Parse(time.DateOnly, v.DT); err != nil {
		return fmt.Errorf("v[0].dt: %w: %q is not a YYYY-MM-DD date", ErrInvalid, v.DT)
	}
	if v.CO != Country || v.IS != Issuer {
		return fmt.Errorf("v[0].is: %w: issuer %q in %q, want %q in %q", ErrInvalid, v.IS, v.CO, Issuer, Country)
	}
	if u, err := uvci.Parse(v.CI); err != nil {
		return fmt.Errorf("v[0].ci: %w: %w", ErrInvalid, err)
	} else if u.Country != Country {
		return fmt.Errorf("v[0].ci: %w: UVCI of country %s", ErrInvalid, u.Country)
	}
	doc, err := c.JSON()
	if err != nil {
		return fmt.Errorf("certificate: %w: %w", ErrInvalid, err)
	}
	decoded, err := DecodeDocument(doc)
	if err != nil {
		return err
	}
	// Fail closed on the fast path alone, so issuing binaries do not link the jsonschema
	// library (schema.go): our issuer only ever builds single vaccination events, exactly
	// the shape KnownValidVaccination is built to confirm, and the rules above are stricter
	// than it. A certificate it does not confirm is refused, never signed unchecked.
	// dccschema's TestBuiltCertificatesAreSchemaValid checks that the library agrees.
	if !KnownValidVaccination(decoded) {
		return fmt.Errorf("certificate: %w: not confirmed as a schema-valid vaccination certificate", ErrSchema)
	}
	return CheckValueSetsValue(decoded)
}

func checkName(n Name) error {
	for _, f := range []struct{ field, value string }{{"nam.fn", n.FN}, {"nam.gn", n.GN}} {
		if f.value != vnname.Normalize(f.value) || !norm.NFC.IsNormalString(f.value) {
			return fmt.Errorf("%s: %w: not in NFC with single inner spaces and no outer ones", f.field, ErrInvalid)
		}
		if utf8.RuneCountInString(f.value) > maxText {
			return fmt.Errorf("%s: %w: longer than %d characters", f.field, ErrInvalid, maxText)
		}
	}
	if n.FN == "" {
		return fmt.Errorf("nam.fn: %w: missing", ErrInvalid)
	}
	if n.FNT == "" {
		return fmt.Errorf("nam.fnt: %w: missing", ErrInvalid)
	}
	if (n.GN == "") != (n.GNT == "") {
		return fmt.Errorf("nam.gnt: %w: gnt must be present exactly when gn is", ErrInvalid)
	}
	for _, f := range []struct{ field, value string }{{"nam.fnt", n.FNT}, {"nam.gnt", n.GNT}} {
		if !icaoPattern.MatchString(f.value) || len(f.value) > maxText {
			return fmt.Errorf("%s: %w: not ^[A-Z<]*$ of at most %d characters", f.field, ErrInvalid, maxText)
		}
	}
	return nil
}

// checkDOB accepts YYYY, YYYY-MM and YYYY-MM-DD for years 1900-2099 (the schema's range),
// and only real months and days.
func checkDOB(dob string) error {
	bad := fmt.Errorf("dob: %w: %q is not YYYY, YYYY-MM or YYYY-MM-DD in 1900-2099", ErrInvalid, dob)
	var err error
	switch len(dob) {
	case 4:
		_, err = time.Parse("2006", dob)
	case 7:
		_, err = time.Parse("2006-01", dob)
	case 10:
		_, err = time.Parse(time.DateOnly, dob)
	default:
		return bad
	}
	if err != nil {
		return bad
	}
	if y, _ := strconv.Atoi(dob[:4]); y < 1900 || y > 2099 {
		return bad
	}
	return nil
}
