// Package vnname handles Vietnamese personal names: the display form, the split into
// family and given names, the comparison key used by the registry matcher, and the
// ICAO 9303 transliteration carried in the EU DCC's fnt/gnt fields.
//
// The same name reaches the system in NFC, NFD, without diacritics, in upper case and
// with doubled spaces; every function here gives the same answer for all of them.
package vnname

import (
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// Normalize returns the display form of a name: NFC, trimmed, every run of white space
// replaced by one ASCII space. Letters and their diacritics are kept as typed.
func Normalize(s string) string {
	s = collapseSpace(s)
	if isASCII(s) {
		return s
	}
	return norm.NFC.String(s)
}

// Split splits a full name written in Vietnamese order (family name first) into the
// family name and the given names: "Nguyễn Văn An" gives "Nguyễn", "Văn An". A one-word
// name is a family name only. Both parts are in display form (see Normalize).
func Split(fullName string) (family, given string) {
	n := Normalize(fullName)
	family, given, _ = strings.Cut(n, " ")
	return family, given
}

// collapseSpace trims s and replaces every run of Unicode white space by one ASCII space.
// It returns s itself when nothing changes.
func collapseSpace(s string) string {
	clean := true
	prevSpace := true // true at the start so that a leading space counts as a change
	for i := 0; i < len(s); {
		r, size := rune(s[i]), 1
		if r >= utf8.RuneSelf {
			r, size = utf8.DecodeRuneInString(s[i:])
		}
		sp := unicode.IsSpace(r)
		if sp && (prevSpace || r != ' ') {
			clean = false
			break
		}
		prevSpace = sp
		i += size
	}
	if clean && !prevSpace {
		return s
	}
	return strings.Join(strings.FieldsFunc(s, unicode.IsSpace), " ")
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}
