package dcc

import (
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
)

// The official value sets (ehn-dcc-development/eu-dcc-valuesets 2.12.0, commit 60ea3d8,
// Apache-2.0, see valuesets/LICENSE) are compiled in for the same reason as the schema.
//
//go:embed valuesets/*.json
var valueSetFiles embed.FS

// ValueSet names one official value set by its file.
type ValueSet string

// The value sets the schema refers to through "valueset-uri".
const (
	DiseaseAgentTargeted    ValueSet = "disease-agent-targeted.json"    // tg
	VaccineProphylaxis      ValueSet = "vaccine-prophylaxis.json"       // v.vp
	VaccineMedicinalProduct ValueSet = "vaccine-medicinal-product.json" // v.mp
	VaccineMAHManufacturer  ValueSet = "vaccine-mah-manf.json"          // v.ma
	CountryCodes            ValueSet = "country-2-codes.json"           // co
	TestType                ValueSet = "test-type.json"                 // t.tt
	TestResult              ValueSet = "test-result.json"               // t.tr
	// TestManufacturer (t.ma) is the repository's snapshot of the JRC rapid-test device list
	// (test-manf-example.json, 2021-07-01); devices listed later are not in it.
	TestManufacturer ValueSet = "test-manf-example.json"
)

// ErrValueSet: a coded field holds a value that is not in its official value set.
var ErrValueSet = errors.New("value not in the DCC value set")

type valueSetEntry struct {
	Display string `json:"display"`
	Active  bool   `json:"active"`
}

type valueSetFile struct {
	ValueSetID     string                   `json:"valueSetId"`
	ValueSetValues map[string]valueSetEntry `json:"valueSetValues"`
}

func loadedValueSets() (map[ValueSet]valueSetFile, error) {
	loadedValueSetsOnce.Do(func() { loadedValueSetsOnce.v, loadedValueSetsOnce.err = loadValueSets() })
	return loadedValueSetsOnce.v, loadedValueSetsOnce.err
}

// loadedValueSetsOnce holds loadedValueSets's result. A plain function and a sync.Once rather than a
// package-level sync.OnceValues closure: the linker then leaves the work out of binaries
// that never call it.
var loadedValueSetsOnce struct {
	sync.Once
	v   map[ValueSet]valueSetFile
	err error
}

func loadValueSets() (map[ValueSet]valueSetFile, error) {
	out := make(map[ValueSet]valueSetFile)
	for _, vs := range []ValueSet{DiseaseAgentTargeted, VaccineProphylaxis, VaccineMedicinalProduct,
		VaccineMAHManufacturer, CountryCodes, TestType, TestResult, TestManufacturer} {
		b, err := valueSetFiles.ReadFile("valuesets/" + string(vs))
		if err != nil {
			return nil, fmt.Errorf("dcc: embedded value set: %w", err)
		}
		var f valueSetFile
		if err := json.Unmarshal(b, &f); err != nil {
			return nil, fmt.Errorf("dcc: embedded value set %s: %w", vs, err)
		}
		if len(f.ValueSetValues) == 0 {
			return nil, fmt.Errorf("dcc: embedded value set %s is empty", vs)
		}
		out[vs] = f
	}
	return out, nil
}

// Display returns the English display of code in value set vs (for example "Comirnaty" for
// EU/1/20/1528 in VaccineMedicinalProduct), and whether the code is in the set at all.
// Deprecated entries are included: certificates issued before their deprecation carry
// them.
func Display(vs ValueSet, code string) (string, bool) {
	sets, err := loadedValueSets()
	if err != nil {
		return "", false
	}
	e, ok := sets[vs].ValueSetValues[code]
	return e.Display, ok
}

// codedFields lists, per certificate group, which field takes which value set.
var codedFields = map[string][]struct {
	field string
	set   ValueSet
}{
	"v": {{"tg", DiseaseAgentTargeted}, {"vp", VaccineProphylaxis}, {"mp", VaccineMedicinalProduct}, {"ma", VaccineMAHManufacturer}, {"co", CountryCodes}},
	"t": {{"tg", DiseaseAgentTargeted}, {"tt", TestType}, {"ma", TestManufacturer}, {"tr", TestResult}, {"co", CountryCodes}},
	"r": {{"tg", DiseaseAgentTargeted}, {"co", CountryCodes}},
}

// CheckValueSets checks that every coded field of a DCC JSON document (tg, vp, mp, ma, co
// of vaccinations; tg, tt, ma, tr, co of tests; tg, co of recoveries) holds a code of its
// official value set. Codes marked inactive still pass: a deprecated code (J07BX03 on
// Viet Nam's own 2021 specimen) was valid when the certificate was issued. Absent fields
// are the schema's business (dccschema.ValidateJSON); a present field of the wrong type
// fails here.
// The error wraps ErrValueSet and names the field, e.g. "v[0].mp".
func CheckValueSets(doc []byte) error {
	v, err := DecodeDocument(doc)
	if err != nil {
		return err
	}
	return CheckValueSetsValue(v)
}

// CheckValueSetsValue is CheckValueSets on an already decoded document (see
// dccschema.ValidateValue).
func CheckValueSetsValue(doc any) error {
	sets, err := loadedValueSets()
	if err != nil {
		return err
	}
	root, ok := doc.(map[string]any)
	if !ok {
		return fmt.Errorf("%w: document is not an object", ErrValueSet)
	}
	var errs []error
	for _, group := range []string{"v", "t", "r"} {
		raw, present := root[group]
		if !present {
			continue
		}
		entries, ok := raw.([]any)
		if !ok {
			errs = append(errs, fmt.Errorf("%s: %w: not an array", group, ErrValueSet))
			continue
		}
		for i, e := range entries {
			entry, ok := e.(map[string]any)
			if !ok {
				errs = append(errs, fmt.Errorf("%s[%d]: %w: not an object", group, i, ErrValueSet))
				continue
			}
			for _, cf := range codedFields[group] {
				val, present := entry[cf.field]
				if !present {
					continue
				}
				code, ok := val.(string)
				set := sets[cf.set]
				switch {
				case !ok:
					errs = append(errs, fmt.Errorf("%s[%d].%s: %w: not a string", group, i, cf.field, ErrValueSet))
				case !hasCode(set, code):
					errs = append(errs, fmt.Errorf("%s[%d].%s: %w: %q is not in %s", group, i, cf.field, ErrValueSet, code, set.ValueSetID))
				}
			}
		}
	}
	return errors.Join(errs...)
}

func hasCode(f valueSetFile, code string) bool {
	_, ok := f.ValueSetValues[code]
	return ok
}
