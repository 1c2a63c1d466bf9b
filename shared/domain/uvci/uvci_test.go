package uvci

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"testing/iotest"
)

type vector struct {
	ci, want, source string
}

func loadVectors(t testing.TB) []vector {
	t.Helper()
	f, err := os.Open("testdata/vectors.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []vector
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		p := strings.Split(line, "\t")
		if len(p) != 3 {
			t.Fatalf("bad vector line %q", line)
		}
		out = append(out, vector{p[0], p[1], p[2]})
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestCheckCharReferenceVector(t *testing.T) {
	// eHN FAQ, eu-dcc-schema examples/Luhn-Mod-N/luhn_mod_n.py.
	c, err := CheckChar("URN:UVCI:01:NL:187/37512422923")
	if err != nil || c != 'Z' {
		t.Fatalf("CheckChar = %q, %v; want 'Z'", c, err)
	}
	lower, err := CheckChar("urn:uvci:01:nl:187/37512422923")
	if err != nil || lower != 'Z' {
		t.Fatalf("lower case: CheckChar = %q, %v; want 'Z'", lower, err)
	}
}

func TestVectors(t *testing.T) {
	vs := loadVectors(t)
	if len(vs) < 10 {
		t.Fatalf("only %d vectors", len(vs))
	}
	for _, v := range vs {
		u, err := Parse(v.ci)
		switch v.want {
		case "valid":
			if err != nil {
				t.Errorf("%s (%s): %v", v.ci, v.source, err)
				continue
			}
			if u.String() != strings.ToUpper(v.ci) {
				t.Errorf("%s: String() = %s", v.ci, u.String())
			}
		case "checkchar":
			if !errors.Is(err, ErrCheckChar) {
				t.Errorf("%s (%s): error %v, want ErrCheckChar", v.ci, v.source, err)
			}
		default:
			t.Fatalf("unknown expectation %q", v.want)
		}
	}
}

func TestNew(t *testing.T) {
	zero := bytes.NewReader(make([]byte, 16))
	u, err := New(zero)
	if err != nil {
		t.Fatal(err)
	}
	// 16 zero bytes are 26 base32 'A's; the check character follows from the Luhn rule.
	body := Prefix + strings.Repeat("A", 26)
	c, _ := CheckChar(body)
	if want := body + "#" + string(c); u != want {
		t.Errorf("New(zeros) = %s, want %s", u, want)
	}

	seen := map[string]bool{}
	for range 1000 {
		u, err := New(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		if len(u) != 43 || len(u) >= 60 {
			t.Fatalf("%s has %d characters, want 43 (< 60 per the URN registration)", u, len(u))
		}
		p, err := Parse(u)
		if err != nil {
			t.Fatalf("New gave %s which does not parse: %v", u, err)
		}
		if p.Country != "VN" || p.Version != "01" || p.Check == 0 || len(p.Opaque) != 26 {
			t.Fatalf("parsed %s as %+v", u, p)
		}
		if seen[u] {
			t.Fatalf("duplicate %s", u)
		}
		seen[u] = true
	}
}

func TestNewRandomFailure(t *testing.T) {
	for name, r := range map[string]interface{ Read([]byte) (int, error) }{
		"error":    iotest.ErrReader(errors.New("entropy exhausted")),
		"short":    bytes.NewReader(make([]byte, 15)),
		"one-byte": iotest.OneByteReader(bytes.NewReader(make([]byte, 15))),
	} {
		if u, err := New(r); !errors.Is(err, ErrRandom) || u != "" {
			t.Errorf("%s: New = %q, %v; want ErrRandom", name, u, err)
		}
	}
	// A reader that delivers 16 bytes one at a time is fine (io.ReadFull).
	if _, err := New(iotest.OneByteReader(bytes.NewReader(make([]byte, 16)))); err != nil {
		t.Errorf("one byte at a time: %v", err)
	}
}

func TestParse(t *testing.T) {
	withCheck := func(body string) string {
		c, err := CheckChar(body)
		if err != nil {
			t.Fatal(err)
		}
		return body + "#" + string(c)
	}
	valid := []string{
		"URN:UVCI:01:VN:FFFE3D31FABD035899134A9D3BAE9BCF", // VN's own specimen: no check char (notes §4.2)
		withCheck("URN:UVCI:01:VN:ABC"),
		withCheck("URN:UVCI:01:VN:ISSUER/ABC"),
		withCheck("URN:UVCI:01:VN:ISSUER/VACCINE/ABC"),
		"urn:uvci:01:vn:abc" + "#" + string(must(CheckChar("URN:UVCI:01:VN:ABC"))), // case-insensitive
	}
	for _, s := range valid {
		if _, err := Parse(s); err != nil {
			t.Errorf("Parse(%q): %v", s, err)
		}
	}
	malformed := []string{
		"",
		"URN:UVCI:01:VN:",
		"URN:UCI:01:NL:ABC",                         // NL deviation
		"URN:UVCI:V1:AE:ABC",                        // non-standard version
		"01/LU/ABC",                                 // abbreviated LU form
		"URN:UVCI:01:SG:2ABC-CDE-CDE",               // hyphen outside the alphabet
		"URN:UVCI:01:VNM:ABC",                       // three-letter country
		"URN:UVCI:01:V1:ABC",                        // digit in country
		"URN:UVCI:01:VN:A/B/C/D",                    // four components
		"URN:UVCI:01:VN:A//B",                       // empty component
		"URN:UVCI:01:VN:ABC:DEF",                    // extra field
		"URN:UVCI:01:VN:ABC#",                       // empty check
		"URN:UVCI:01:VN:ABC##",                      // FI-style double hash
		"URN:UVCI:01:VN:ABC#22D4655D",               // IL-style long check
		"URN:UVCI:01:VN:ÀBC",                        // non-ASCII
		"urn:uvcı:01:vn:abc",                        // dotless i must not fold to I
		"URN:UVCI:01:VN:" + strings.Repeat("A", 70), // over 80
	}
	for _, s := range malformed {
		_, err := Parse(s)
		if err == nil || errors.Is(err, ErrCheckChar) {
			t.Errorf("Parse(%q) = %v, want ErrMalformed", s, err)
		}
		if Valid(s) {
			t.Errorf("Valid(%q) = true", s)
		}
	}
}

func must(c byte, err error) byte {
	if err != nil {
		panic(err)
	}
	return c
}

// Luhn mod N detects every single-character substitution; so a typo anywhere in a UVCI we
// issue is caught by Parse.
func TestCheckCharDetectsEverySubstitution(t *testing.T) {
	u, err := New(bytes.NewReader([]byte("0123456789abcdef")))
	if err != nil {
		t.Fatal(err)
	}
	body, check, _ := strings.Cut(u, "#")
	for i := len("URN:UVCI:01:VN:"); i < len(body); i++ {
		for _, c := range alphabet[:36] {
			if byte(c) == body[i] {
				continue
			}
			typo := body[:i] + string(c) + body[i+1:] + "#" + check
			if _, err := Parse(typo); !errors.Is(err, ErrCheckChar) {
				t.Fatalf("substitution at %d (%q) not detected: %v", i, typo, err)
			}
		}
	}
}

func TestEqual(t *testing.T) {
	a := "URN:UVCI:01:VN:ABCDEF#" + string(must(CheckChar("URN:UVCI:01:VN:ABCDEF")))
	tests := []struct {
		a, b string
		want bool
	}{
		{a, a, true},
		{a, strings.ToLower(a), true},
		{a, "URN:UVCI:01:VN:ABCDEF", true}, // the check character is not part of the identity
		{a, "URN:UVCI:01:VN:ABCDEG", false},
		{"URN:UVCI:01:VN:K", "URN:UVCI:01:VN:\u212a", false}, // Kelvin sign is not K
	}
	for _, tt := range tests {
		if got := Equal(tt.a, tt.b); got != tt.want {
			t.Errorf("Equal(%q, %q) = %v, want %v", tt.a, tt.b, got, tt.want)
		}
	}
	p, _ := Parse(strings.ToLower(a))
	if p.Key() != "URN:UVCI:01:VN:ABCDEF" {
		t.Errorf("Key() = %s", p.Key())
	}
}

func FuzzParse(f *testing.F) {
	for _, v := range loadVectors(f) {
		f.Add(v.ci)
	}
	f.Add("URN:UVCI:01:VN:ISSUER/VACCINE/ABC")
	f.Add("urn:uvci:01:vn:abc#Q")
	// 80 characters without a check character: "#C" would not fit.
	f.Add("URN:UVCI:01:VN:" + strings.Repeat("A", MaxLength-len("URN:UVCI:01:VN:")))
	f.Fuzz(func(t *testing.T, s string) {
		u, err := Parse(s)
		if err != nil {
			if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrCheckChar) {
				t.Fatalf("Parse(%q): unclassified error %v", s, err)
			}
			return
		}
		if !Equal(s, u.String()) {
			t.Fatalf("Parse(%q).String() = %q is not Equal", s, u.String())
		}
		again, err := Parse(u.String())
		if err != nil || again != u {
			t.Fatalf("round trip of %q: %+v, %v", s, again, err)
		}
		if u.Check == 0 && len(u.Key())+2 <= MaxLength {
			// Adding the computed check character keeps it valid, when
			// the "#C" suffix still fits the schema's 80 characters.
			c, err := CheckChar(u.Key())
			if err != nil {
				t.Fatal(err)
			}
			if _, err := Parse(u.Key() + "#" + string(c)); err != nil {
				t.Fatalf("with computed check char: %v", err)
			}
		}
	})
}

func FuzzNew(f *testing.F) {
	f.Add([]byte("0123456789abcdef"))
	f.Fuzz(func(t *testing.T, b []byte) {
		u, err := New(bytes.NewReader(b))
		if len(b) < 16 {
			if !errors.Is(err, ErrRandom) {
				t.Fatalf("New with %d bytes: %v", len(b), err)
			}
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		p, err := Parse(u)
		if err != nil || p.Check == 0 || !strings.HasPrefix(u, Prefix) {
			t.Fatalf("New gave %q: %+v, %v", u, p, err)
		}
	})
}

func ExampleNew() {
	u, err := New(rand.Reader)
	if err != nil {
		panic(err)
	}
	fmt.Println(len(u), strings.HasPrefix(u, "URN:UVCI:01:VN:"), Valid(u))
	// Output: 43 true true
}
