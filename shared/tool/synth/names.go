package synth

import (
	"math/rand/v2"
	"sort"
	"strings"
	"unicode"

	"golang.org/x/text/unicode/norm"

	"github.com/vaxpass/vaxpass/shared/domain/vnname"
)

// Spellings of a name that records carry.
const (
	formNFC = iota
	formNFD
	formASCII
	formUpper
	numForms
)

// syllable is one word of a name with every spelling precomputed, so building a name
// variant costs appends only.
type syllable struct {
	forms [numForms]string
	key   string // vnname.Key: what the matcher compares
}

// syllables interns every word of the name tables; names are index lists into it.
type syllables struct {
	list  []syllable
	index map[string]int
}

func (s *syllables) intern(word string) int {
	if i, ok := s.index[word]; ok {
		return i
	}
	var y syllable
	y.forms[formNFC] = norm.NFC.String(word)
	y.forms[formNFD] = norm.NFD.String(word)
	y.forms[formASCII] = foldASCII(word)
	y.forms[formUpper] = strings.ToUpper(y.forms[formNFC])
	y.key = vnname.Key(word)
	s.list = append(s.list, y)
	s.index[word] = len(s.list) - 1
	return len(s.list) - 1
}

// foldASCII drops the diacritics of a word and keeps its case, as people type a name on a
// keyboard without Vietnamese input: "Đặng" -> "Dang".
func foldASCII(s string) string {
	var b strings.Builder
	for _, r := range norm.NFD.String(s) {
		switch {
		case unicode.Is(unicode.Mn, r):
		case r == 'Đ':
			b.WriteByte('D')
		case r == 'đ':
			b.WriteByte('d')
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// sampler draws an index with probability proportional to its weight.
type sampler struct {
	cum []float64
}

func newSampler(weights []float64) sampler {
	cum := make([]float64, len(weights))
	total := 0.0
	for i, w := range weights {
		total += w
		cum[i] = total
	}
	for i := range cum {
		cum[i] /= total
	}
	return sampler{cum}
}

func (s sampler) pick(r *rand.Rand) int {
	x := r.Float64()
	i := sort.SearchFloat64s(s.cum, x)
	if i == len(s.cum) { // x above the last bound through rounding
		i = len(s.cum) - 1
	}
	return i
}

// nameTable is one weighted list of words, interned.
type nameTable struct {
	words []int // syllable indices
	draw  sampler
}

func newNameTable(s *syllables, entries []weighted) nameTable {
	t := nameTable{words: make([]int, len(entries))}
	weights := make([]float64, len(entries))
	for i, e := range entries {
		t.words[i] = s.intern(e.value)
		weights[i] = e.weight
	}
	t.draw = newSampler(weights)
	return t
}

func newUniformTable(s *syllables, words []string) nameTable {
	entries := make([]weighted, len(words))
	for i, w := range words {
		entries[i] = weighted{w, 1}
	}
	return newNameTable(s, entries)
}

func (t nameTable) pick(r *rand.Rand) int { return t.words[t.draw.pick(r)] }

// name is a full name as syllable indices: family, one or two middle names, given name.
type name struct {
	words [4]int
	n     int
}

func (nm name) given() int { return nm.words[nm.n-1] }

// appendForm writes the name in one spelling with single spaces.
func (s *syllables) appendForm(b []byte, nm name, form int) []byte {
	for i := 0; i < nm.n; i++ {
		if i > 0 {
			b = append(b, ' ')
		}
		b = append(b, s.list[nm.words[i]].forms[form]...)
	}
	return b
}
