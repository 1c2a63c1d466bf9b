// Package uvci creates and checks Unique Vaccination Certificate Identifiers (the DCC `ci`).
//
// Our form is `URN:UVCI:01:VN:<26 characters A-Z2-7>#<check>`: 43 characters in all.
//
// Grammar: eu-dcc-hcert-spec urn-registration0-1.01-request.txt (ABNF, Appendix 1):
// "URN:UVCI:" version ":" country ":" nss ["#" check], nss being ALNUM, ISSUER/ALNUM or
// ISSUER/VACCINE/ALNUM; A-Z and 0-9, case-insensitive; the registration asks for fewer
// than 60 characters. The check character is Luhn mod N over
// ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789/: (N = 38) computed over the whole string before
// `#`, prefix included (eHN FAQ; eu-dcc-schema examples/Luhn-Mod-N/luhn_mod_n.py;
// reference vector URN:UVCI:01:NL:187/37512422923 -> Z). See dcc/notes.md §1.11.
//
// Collision argument: the opaque part is 128 bits from a cryptographic random source. By
// the birthday bound, the probability that any two of n identifiers collide is at most
// n²/2^129. For n = 10^9 certificates (~2^29.9) that is about 2^-69, i.e. 1.6·10^-21; even
// 10^12 certificates give ~1.5·10^-15. No registry of issued identifiers is needed to keep
// them unique, and the identifier reveals nothing about the person, the facility or the
// order of issue (a UVCI is personal data; a counter would leak volumes).
package uvci

import (
	"encoding/base32"
	"errors"
	"fmt"
	"io"
	"strings"
)

// Prefix is the fixed start of every UVCI we issue: schema version 01, country VN.
const Prefix = "URN:UVCI:01:VN:"

// MaxLength is the longest UVCI Parse accepts: the DCC schema's limit for `ci`.
const MaxLength = 80

// opaqueBytes is the size of the random part: 128 bits (see the collision argument).
const opaqueBytes = 16

// alphabet is the Luhn mod N character set; a character's index is its code point.
const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789/:"

// encoding is RFC 4648 base32 without padding: A-Z and 2-7, all inside the UVCI alphabet.
var encoding = base32.StdEncoding.WithPadding(base32.NoPadding)

var (
	// ErrMalformed: the string does not follow the UVCI grammar.
	ErrMalformed = errors.New("malformed UVCI")
	// ErrCheckChar: the check character after `#` does not match.
	ErrCheckChar = errors.New("UVCI check character does not match")
	// ErrRandom: the random source failed.
	ErrRandom = errors.New("UVCI random source failed")
)

// New returns a fresh UVCI: Prefix, 128 bits from rand in base32, `#` and the check
// character. rand must be a cryptographic source in production (crypto/rand.Reader); it is
// injected so tests are deterministic.
func New(rand io.Reader) (string, error) {
	var b [opaqueBytes]byte
	if _, err := io.ReadFull(rand, b[:]); err != nil {
		return "", fmt.Errorf("%w: %w", ErrRandom, err)
	}
	body := Prefix + encoding.EncodeToString(b[:])
	c, err := CheckChar(body)
	if err != nil {
		// Unreachable: the prefix and base32 are inside the alphabet.
		return "", err
	}
	return body + "#" + string(c), nil
}

// CheckChar returns the Luhn mod 38 check character of s (the UVCI up to, not including,
// `#`). Letters are compared case-insensitively; any character outside the alphabet gives
// ErrMalformed.
func CheckChar(s string) (byte, error) {
	const n = len(alphabet)
	factor, sum := 2, 0
	for i := len(s) - 1; i >= 0; i-- {
		cp := codePoint(s[i])
		if cp < 0 {
			return 0, fmt.Errorf("%w: character %q at %d is outside A-Z 0-9 / :", ErrMalformed, s[i], i)
		}
		addend := factor * cp
		if factor == 2 {
			factor = 1
		} else {
			factor = 2
		}
		sum += addend/n + addend%n
	}
	return alphabet[(n-sum%n)%n], nil
}

func codePoint(c byte) int {
	if 'a' <= c && c <= 'z' {
		c -= 'a' - 'A'
	}
	return strings.IndexByte(alphabet, c)
}

// UVCI is a parsed identifier, upper-cased.
type UVCI struct {
	Version string // "01"
	Country string // ISO 3166-1 alpha-2, e.g. "VN"
	// Opaque is the national part (nss): one to three `/`-separated components.
	Opaque string
	// Check is the check character, or 0 when the UVCI carries none.
	Check byte
}

// Key returns the identifier without its check character: the part that identifies the
// certificate and that comparisons use.
func (u UVCI) Key() string {
	return "URN:UVCI:" + u.Version + ":" + u.Country + ":" + u.Opaque
}

// String returns the canonical upper-case form, with the check character if present.
func (u UVCI) String() string {
	if u.Check == 0 {
		return u.Key()
	}
	return u.Key() + "#" + string(u.Check)
}

// Parse reads a UVCI of the standard grammar, in any letter case: `URN:UVCI:01:` country
// `:` nss [`#` check]. A check character, when present, must be the Luhn mod 38 one. The
// non-standard forms seen in the wild (URN:UCI:, V1 versions, no prefix) are rejected:
// they are not ours to issue and Parse is for checking identifiers, not for reading every
// foreign certificate.
func Parse(s string) (UVCI, error) {
	if len(s) > MaxLength {
		return UVCI{}, fmt.Errorf("%w: %d characters, more than %d", ErrMalformed, len(s), MaxLength)
	}
	up := asciiUpper(s)
	body, check, hasCheck := strings.Cut(up, "#")
	rest, ok := strings.CutPrefix(body, "URN:UVCI:")
	if !ok {
		return UVCI{}, fmt.Errorf("%w: does not start with URN:UVCI:", ErrMalformed)
	}
	parts := strings.Split(rest, ":")
	if len(parts) != 3 {
		return UVCI{}, fmt.Errorf("%w: want URN:UVCI:version:country:identifier", ErrMalformed)
	}
	u := UVCI{Version: parts[0], Country: parts[1], Opaque: parts[2]}
	if u.Version != "01" {
		return UVCI{}, fmt.Errorf("%w: version %q, want 01", ErrMalformed, u.Version)
	}
	if len(u.Country) != 2 || !isUpper(u.Country) {
		return UVCI{}, fmt.Errorf("%w: country %q is not two letters", ErrMalformed, u.Country)
	}
	components := strings.Split(u.Opaque, "/")
	if len(components) > 3 {
		return UVCI{}, fmt.Errorf("%w: identifier has %d components, at most 3", ErrMalformed, len(components))
	}
	for _, c := range components {
		if c == "" || !isAlnum(c) {
			return UVCI{}, fmt.Errorf("%w: identifier component %q is not A-Z 0-9", ErrMalformed, c)
		}
	}
	if hasCheck {
		if len(check) != 1 || codePoint(check[0]) < 0 {
			return UVCI{}, fmt.Errorf("%w: check part %q is not one character of A-Z 0-9 / :", ErrMalformed, check)
		}
		want, err := CheckChar(body)
		if err != nil {
			return UVCI{}, err
		}
		if check[0] != want {
			return UVCI{}, fmt.Errorf("%w: got %q, want %q", ErrCheckChar, check[0], want)
		}
		u.Check = check[0]
	}
	return u, nil
}

// Valid reports whether s parses (see Parse).
func Valid(s string) bool {
	_, err := Parse(s)
	return err == nil
}

// Equal compares two UVCIs the way the registration asks: case-insensitively, over the
// whole URN up to but not including `#` (so a copy without its check character is the same
// certificate).
func Equal(a, b string) bool {
	a, _, _ = strings.Cut(a, "#")
	b, _, _ = strings.Cut(b, "#")
	return asciiUpper(a) == asciiUpper(b)
}

// asciiUpper folds only a-z: the UVCI alphabet is ASCII, and Unicode case folding would
// let look-alikes through (strings.ToUpper("ı") is "I", EqualFold("K", "\u212a") is true).
func asciiUpper(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'a' <= c && c <= 'z' {
			b[i] = c - ('a' - 'A')
		}
	}
	return string(b)
}

func isUpper(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 'A' || s[i] > 'Z' {
			return false
		}
	}
	return true
}

func isAlnum(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < 'A' || c > 'Z') && (c < '0' || c > '9') {
			return false
		}
	}
	return true
}
