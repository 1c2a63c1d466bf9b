package dcc

import (
	"encoding/json"
	"regexp"
	"strconv"
	"unicode/utf8"
)

// Why a fast path: the jsonschema library takes ~23µs to accept one small vaccination
// document (it evaluates every oneOf branch and builds errors for the two that fail), a
// large share of the verify budget (1.3x one ECDSA verify). KnownValidVaccination is the
// combined schema's vaccination branch compiled by hand. It only ever says "valid" for a
// document the schema accepts; for anything else (test, recovery, unusual number types,
// any violation) dccschema.ValidateValue asks the library, which stays the authority and
// writes the error. It also lets Validate check what we issue without linking the library
// (see schema.go). dccschema's TestFastPathAgreesWithSchema and
// FuzzFastPathAgreesWithSchema check that implication against the library on the official
// examples and fuzzed documents; it hand-compiles the schema pinned by
// TestEmbeddedSchemaIsPinned there.

// The schema's own patterns, compiled with Go's regexp as the library does.
var (
	verPattern     = regexp.MustCompile(`^\d+.\d+.\d+$`)
	dobPattern     = regexp.MustCompile(`^((19|20)\d\d(-\d\d){0,2}){0,1}$`)
	countryPattern = regexp.MustCompile(`[A-Z]{1,10}`) // unanchored, as in the schema
	// icaoPattern (build.go) is the fnt/gnt pattern.
)

// KnownValidVaccination reports whether doc (a DecodeDocument result, or a CBOR decoding
// into map[string]any, []any, string and integer types) certainly satisfies
// DCC.combined-schema.json as a vaccination certificate. false means "ask the library",
// not "invalid".
func KnownValidVaccination(doc any) bool {
	root, ok := doc.(map[string]any)
	if !ok {
		return false
	}
	// oneOf of required [ver nam dob v|t|r]: ver, nam, dob present and only v.
	if _, ok := root["t"]; ok {
		return false
	}
	if _, ok := root["r"]; ok {
		return false
	}
	ver, ok := root["ver"].(string)
	if !ok || !verPattern.MatchString(ver) {
		return false
	}
	dob, ok := root["dob"].(string)
	if !ok || !dobPattern.MatchString(dob) {
		return false
	}
	if !knownValidName(root["nam"]) {
		return false
	}
	v, ok := root["v"].([]any)
	if !ok || len(v) != 1 {
		return false
	}
	return knownValidVaccinationEntry(v[0])
}

func knownValidName(x any) bool {
	nam, ok := x.(map[string]any)
	if !ok {
		return false
	}
	_, hasFNT := nam["fnt"]
	_, hasGNT := nam["gnt"]
	if !hasFNT && !hasGNT {
		return false
	}
	for _, k := range [...]string{"fn", "gn"} {
		if val, present := nam[k]; present && !isStringUpTo(val, 80) {
			return false
		}
	}
	for _, k := range [...]string{"fnt", "gnt"} {
		if val, present := nam[k]; present {
			s, ok := val.(string)
			if !ok || utf8.RuneCountInString(s) > 80 || !icaoPattern.MatchString(s) {
				return false
			}
		}
	}
	return true
}

func knownValidVaccinationEntry(x any) bool {
	e, ok := x.(map[string]any)
	if !ok {
		return false
	}
	for _, k := range [...]string{"tg", "vp", "mp", "ma", "dt"} {
		if _, ok := e[k].(string); !ok {
			return false
		}
	}
	for _, k := range [...]string{"is", "ci"} {
		if !isStringUpTo(e[k], 80) {
			return false
		}
	}
	co, ok := e["co"].(string)
	if !ok || !countryPattern.MatchString(co) {
		return false
	}
	return isPositiveInteger(e["dn"]) && isPositiveInteger(e["sd"])
}

func isStringUpTo(x any, n int) bool {
	s, ok := x.(string)
	return ok && utf8.RuneCountInString(s) <= n
}

// isPositiveInteger accepts the integer forms decoders produce (encoding/json with
// UseNumber, a CBOR decoder) when they are certainly >= 1; floats and anything odd go to
// the library.
func isPositiveInteger(x any) bool {
	switch n := x.(type) {
	case json.Number:
		s := string(n)
		if s == "" || len(s) > 18 {
			return false
		}
		for i := 0; i < len(s); i++ {
			if s[i] < '0' || s[i] > '9' {
				return false
			}
		}
		v, err := strconv.ParseInt(s, 10, 64)
		return err == nil && v >= 1
	case uint64:
		return n >= 1
	case int64:
		return n >= 1
	case int:
		return n >= 1
	}
	return false
}
