package vnname

import (
	"strings"
	"unicode"

	"golang.org/x/text/unicode/norm"
)

// MaxICAO is the longest fnt/gnt the DCC schema allows.
const MaxICAO = 80

// icaoSpecial holds the ICAO 9303 Part 3 transliterations that are not "drop the
// diacritic" (notes §1.10; table as in corona-warn-app/cwa-quick-test-frontend
// src/misc/icao/icao.json). Keys are NFC letters of either case.
var icaoSpecial = map[rune]string{
	'Ä': "AE", 'ä': "AE", 'Å': "AA", 'å': "AA", 'Æ': "AE", 'æ': "AE",
	'Ö': "OE", 'ö': "OE", 'Ø': "OE", 'ø': "OE", 'Œ': "OE", 'œ': "OE",
	'Ü': "UE", 'ü': "UE", 'ß': "SS", 'ẞ': "SS", 'Þ': "TH", 'þ': "TH",
	'Ĳ': "IJ", 'ĳ': "IJ",
	// Letters with a stroke or similar have no Unicode decomposition: mapped by rule.
	'Đ': "D", 'đ': "D", 'Ð': "D", 'ð': "D", 'Ħ': "H", 'ħ': "H", 'ı': "I",
	'Ł': "L", 'ł': "L", 'Ŋ': "N", 'ŋ': "N", 'Ŧ': "T", 'ŧ': "T",
}

// ICAO returns the ICAO 9303 machine-readable form of a name (or of one part of it) for
// the DCC's fnt/gnt: only A-Z and the filler '<'. Diacritics are dropped (Nguyễn ->
// NGUYEN), Đ becomes D, the ICAO table's multi-letter forms apply to other Latin letters
// (Ä -> AE, ß -> SS, ...), spaces, hyphens and commas become '<', other punctuation and
// digits are dropped, runs of '<' collapse to one and none leads or trails. The result is
// at most MaxICAO characters. The answer does not depend on the input's normal form, so
// every re-issue of one person's certificate carries the same fnt/gnt.
func ICAO(s string) string {
	// NFKC first: canonically equivalent inputs (NFC, NFD) and their compatibility forms
	// (NFKC, NFKD) all end up as the same string, with letters composed so that the
	// multi-letter table sees Ä and not A + U+0308.
	s = norm.NFKC.String(s)
	var b strings.Builder
	b.Grow(len(s))
	filler := false // a '<' is pending: written before the next letter
	for _, r := range s {
		// '<' counts as a separator so that ICAO(ICAO(x)) == ICAO(x).
		if sep := r == ' ' || r == '-' || r == ',' || r == '<' || unicode.IsSpace(r) ||
			r == '\u2010' || r == '\u2011' || r == '\u2012' || r == '\u2013' || r == '\u2014'; sep {
			filler = b.Len() > 0
			continue
		}
		t := icaoLetter(r)
		if t == "" {
			continue
		}
		if filler {
			b.WriteByte('<')
			filler = false
		}
		b.WriteString(t)
	}
	return truncateICAO(b.String())
}

// icaoLetter transliterates one rune to upper-case A-Z, or "" when it is dropped.
func icaoLetter(r rune) string {
	switch {
	case 'A' <= r && r <= 'Z':
		return string(r)
	case 'a' <= r && r <= 'z':
		return string(r - 'a' + 'A')
	case r < 0x80:
		return "" // digits and punctuation
	}
	if t, ok := icaoSpecial[r]; ok {
		return t
	}
	var out []byte
	for _, c := range norm.NFD.String(string(r)) {
		switch {
		case 'A' <= c && c <= 'Z':
			out = append(out, byte(c))
		case 'a' <= c && c <= 'z':
			out = append(out, byte(c-'a'+'A'))
		}
	}
	return string(out)
}

// truncateICAO cuts a transliteration to MaxICAO characters without leaving a trailing
// filler.
func truncateICAO(s string) string {
	if len(s) <= MaxICAO {
		return s
	}
	return strings.TrimRight(s[:MaxICAO], "<")
}
