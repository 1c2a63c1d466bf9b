package vnname

import (
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// Key returns the comparison key of a name: diacritics dropped (ă, â, ê, ô, ơ, ư and the
// five tone marks), Đ/đ folded to d, lower case, words separated by single spaces, no
// leading or trailing space. Two spellings of one name have equal keys whatever their
// Unicode normal form, case or spacing: Key("NGUYỄN  văn An") == Key("Nguyen Van An").
//
// Key is on the matcher's hot path: a name that already is a key is returned without
// allocating, and ASCII input never touches the Unicode tables.
func Key(s string) string {
	if isKeyASCII(s) {
		return s
	}
	return string(AppendKey(make([]byte, 0, len(s)), s))
}

// AppendKey appends Key(s) to dst and returns the extended buffer; with a reused buffer
// it does not allocate.
func AppendKey(dst []byte, s string) []byte {
	start := len(dst)
	space := false // a space is pending: written before the next non-space character
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			i++
			switch {
			case c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f':
				space = len(dst) > start
				continue
			case 'A' <= c && c <= 'Z':
				c += 'a' - 'A'
			}
			if space {
				dst = append(dst, ' ')
				space = false
			}
			dst = append(dst, c)
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		i += size
		if unicode.IsSpace(r) {
			space = len(dst) > start
			continue
		}
		// f is "" for a combining mark; it may hold spaces (compatibility forms such as
		// U+00A8 decompose to a space and a mark), which go through the same collapsing.
		f := foldRune(r)
		for j := 0; j < len(f); j++ {
			if f[j] == ' ' {
				space = len(dst) > start
				continue
			}
			if space {
				dst = append(dst, ' ')
				space = false
			}
			dst = append(dst, f[j])
		}
	}
	return dst
}

// isKeyASCII reports whether s is already a key made only of ASCII: no upper case, no
// white space other than single inner spaces.
func isKeyASCII(s string) bool {
	prevSpace := true
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= utf8.RuneSelf, 'A' <= c && c <= 'Z',
			c == '\t', c == '\n', c == '\r', c == '\v', c == '\f':
			return false
		case c == ' ':
			if prevSpace {
				return false
			}
			prevSpace = true
		default:
			prevSpace = false
		}
	}
	return !prevSpace || s == ""
}

// foldTableSize covers Latin-1, Latin Extended-A/B, IPA, combining marks, Greek, Cyrillic
// and Latin Extended Additional (U+1E00-U+1EFF, the precomposed Vietnamese vowels).
const foldTableSize = 0x2000

var (
	foldOnce  sync.Once
	foldTable []string // rune -> folded form, for runes below foldTableSize
)

// foldRune returns the key form of one non-ASCII, non-space rune.
func foldRune(r rune) string {
	if r < foldTableSize {
		foldOnce.Do(buildFoldTable)
		return foldTable[r]
	}
	return foldSlow(r)
}

func buildFoldTable() {
	foldTable = make([]string, foldTableSize)
	for r := rune(utf8.RuneSelf); r < foldTableSize; r++ {
		foldTable[r] = foldSlow(r)
	}
}

// foldSlow decomposes r (compatibility decomposition, so ligatures and full-width letters
// fold too), drops combining marks and lower-cases what is left. Letters without a
// decomposition that Vietnamese input confuses with plain ones are mapped by rule.
func foldSlow(r rune) string {
	switch r {
	case 'Đ', 'đ', 'Ð', 'ð':
		return "d"
	}
	var b strings.Builder
	var buf [utf8.UTFMax]byte
	n := utf8.EncodeRune(buf[:], r)
	d := norm.NFKD.Bytes(buf[:n])
	for len(d) > 0 {
		c, size := utf8.DecodeRune(d)
		d = d[size:]
		switch {
		case unicode.Is(unicode.Mn, c):
			continue
		case c == 'Đ' || c == 'đ':
			b.WriteByte('d')
		case unicode.IsSpace(c):
			b.WriteByte(' ')
		default:
			b.WriteRune(unicode.ToLower(c))
		}
	}
	return b.String()
}
