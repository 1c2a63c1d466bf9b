// Package qr renders HC1 strings as QR code PNGs and reads QR codes back from images.
//
// The encoder is written for HCERT (hcert_spec §4.2.2): the whole text is one
// alphanumeric-mode segment (mode 2 is a MUST there), error correction defaults to Q,
// and the PNG is drawn with exactly square modules and a 4-module quiet zone.
// Decoding uses gozxing with several fallbacks for real-world specimen images.
package qr

import (
	"errors"
	"fmt"
)

// Level is a QR error-correction level.
type Level int

// Error-correction levels, in increasing redundancy (about 7, 15, 25 and 30 %).
const (
	LevelL Level = iota
	LevelM
	LevelQ
	LevelH
)

func (l Level) String() string {
	switch l {
	case LevelL:
		return "L"
	case LevelM:
		return "M"
	case LevelQ:
		return "Q"
	case LevelH:
		return "H"
	}
	return fmt.Sprintf("Level(%d)", int(l))
}

func (l Level) valid() bool { return l >= LevelL && l <= LevelH }

// formatBits is the 2-bit level indicator of the format information (ISO 18004 table 12).
func (l Level) formatBits() int { return [...]int{1, 0, 3, 2}[l] }

// Sentinel errors of the encoder.
var (
	ErrNotAlphanumeric = errors.New("qr: text is not in the QR alphanumeric set (0-9 A-Z space $ % * + - . / :)")
	ErrTooLong         = errors.New("qr: text too long for a QR code")
	ErrEmpty           = errors.New("qr: empty text")
	ErrBadLevel        = errors.New("qr: unknown error-correction level")
)

// Symbol is an encoded QR code: Size×Size modules, without quiet zone.
type Symbol struct {
	Version int   // 1..40
	Level   Level // error-correction level
	Mask    int   // data mask pattern 0..7
	Size    int   // modules per side: 17 + 4·Version
	// Segments describes the data segments, in order. The encoder always writes
	// exactly one alphanumeric segment; it is here so callers and tests can check.
	Segments []Segment
	modules  []byte // row-major, 1 = dark
}

// Segment is one data segment of a symbol.
type Segment struct {
	Mode  string // "alphanumeric"
	Chars int    // character count
}

// Dark reports whether the module at column x, row y is dark.
func (s *Symbol) Dark(x, y int) bool { return s.modules[y*s.Size+x] == 1 }

// alnumValue maps a byte to its alphanumeric-mode value, or -1.
var alnumValue = func() (t [256]int8) {
	for i := range t {
		t[i] = -1
	}
	for i, c := range []byte("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:") {
		t[c] = int8(i)
	}
	return t
}()

// Error-correction codewords per block and number of blocks, indexed [level][version]
// (ISO 18004 table 9). Index 0 is unused.
var (
	eccPerBlock = [4][41]int8{
		{-1, 7, 10, 15, 20, 26, 18, 20, 24, 30, 18, 20, 24, 26, 30, 22, 24, 28, 30, 28, 28, 28, 28, 30, 30, 26, 28, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30},
		{-1, 10, 16, 26, 18, 24, 16, 18, 22, 22, 26, 30, 22, 22, 24, 24, 28, 28, 26, 26, 26, 26, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28},
		{-1, 13, 22, 18, 26, 18, 24, 18, 22, 20, 24, 28, 26, 24, 20, 30, 24, 28, 28, 26, 30, 28, 30, 30, 30, 30, 28, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30},
		{-1, 17, 28, 22, 16, 22, 28, 26, 26, 24, 28, 24, 28, 22, 24, 24, 30, 28, 28, 26, 28, 30, 24, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30},
	}
	eccBlocks = [4][41]int8{
		{-1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 4, 4, 4, 4, 4, 6, 6, 6, 6, 7, 8, 8, 9, 9, 10, 12, 12, 12, 13, 14, 15, 16, 17, 18, 19, 19, 20, 21, 22, 24, 25},
		{-1, 1, 1, 1, 2, 2, 4, 4, 4, 5, 5, 5, 8, 9, 9, 10, 10, 11, 13, 14, 16, 17, 17, 18, 20, 21, 23, 25, 26, 28, 29, 31, 33, 35, 37, 38, 40, 43, 45, 47, 49},
		{-1, 1, 1, 2, 2, 4, 4, 6, 6, 8, 8, 8, 10, 12, 16, 12, 17, 16, 18, 21, 20, 23, 23, 25, 27, 29, 34, 34, 35, 38, 40, 43, 45, 48, 51, 53, 56, 59, 62, 65, 68},
		{-1, 1, 1, 2, 4, 4, 4, 5, 6, 8, 8, 11, 11, 16, 16, 18, 16, 19, 21, 25, 25, 25, 34, 30, 32, 35, 37, 40, 42, 45, 48, 51, 54, 57, 60, 63, 66, 70, 74, 77, 81},
	}
)

// rawDataModules is the number of modules of a version left for data and EC
// codewords once function patterns are placed (remainder bits included).
func rawDataModules(ver int) int {
	n := (16*ver+128)*ver + 64
	if ver >= 2 {
		align := ver/7 + 2
		n -= (25*align-10)*align - 55
		if ver >= 7 {
			n -= 36
		}
	}
	return n
}

func dataCodewords(ver int, l Level) int {
	return rawDataModules(ver)/8 - int(eccPerBlock[l][ver])*int(eccBlocks[l][ver])
}

// charCountBits is the length of the alphanumeric character-count field.
func charCountBits(ver int) int {
	switch {
	case ver <= 9:
		return 9
	case ver <= 26:
		return 11
	}
	return 13
}

func alnumBits(ver, n int) int { return 4 + charCountBits(ver) + 11*(n/2) + 6*(n%2) }

// Encode encodes text as a single alphanumeric segment in the smallest version that
// holds it at level l, with the mask of lowest ISO 18004 penalty.
func Encode(text string, l Level) (*Symbol, error) {
	if !l.valid() {
		return nil, fmt.Errorf("%w: %d", ErrBadLevel, int(l))
	}
	if text == "" {
		return nil, ErrEmpty
	}
	for i := 0; i < len(text); i++ {
		if alnumValue[text[i]] < 0 {
			return nil, fmt.Errorf("%w: byte 0x%02x at offset %d", ErrNotAlphanumeric, text[i], i)
		}
	}
	ver := 0
	for v := 1; v <= 40; v++ {
		if alnumBits(v, len(text)) <= dataCodewords(v, l)*8 {
			ver = v
			break
		}
	}
	if ver == 0 {
		return nil, fmt.Errorf("%w: %d characters exceed version 40-%v", ErrTooLong, len(text), l)
	}
	data := encodeData(text, ver, l)
	codewords := addECCAndInterleave(data, ver, l)
	m := newMatrix(ver)
	m.placeData(codewords)
	mask := m.chooseMask(ver, l)
	return &Symbol{
		Version:  ver,
		Level:    l,
		Mask:     mask,
		Size:     m.size,
		Segments: []Segment{{Mode: "alphanumeric", Chars: len(text)}},
		modules:  m.mod,
	}, nil
}

// bitWriter appends big-endian bit fields to a fixed byte slice.
type bitWriter struct {
	buf []byte
	n   int // bits written
}

func (w *bitWriter) write(v uint32, bits int) {
	for i := bits - 1; i >= 0; i-- {
		if v>>uint(i)&1 != 0 {
			w.buf[w.n>>3] |= 0x80 >> uint(w.n&7)
		}
		w.n++
	}
}

// encodeData builds the data codewords: mode, count, characters, terminator, padding.
func encodeData(text string, ver int, l Level) []byte {
	capBytes := dataCodewords(ver, l)
	w := bitWriter{buf: make([]byte, capBytes)}
	w.write(0b0010, 4) // alphanumeric mode indicator
	w.write(uint32(len(text)), charCountBits(ver))
	i := 0
	for ; i+1 < len(text); i += 2 {
		w.write(uint32(alnumValue[text[i]])*45+uint32(alnumValue[text[i+1]]), 11)
	}
	if i < len(text) {
		w.write(uint32(alnumValue[text[i]]), 6)
	}
	// The terminator (up to 4 zero bits) and the zero bits to the byte boundary are
	// already zero in buf; pad bytes alternating 0xEC 0x11 fill the rest.
	end := min(w.n+4, capBytes*8)
	pad := byte(0xEC)
	for b := (end + 7) / 8; b < capBytes; b++ {
		w.buf[b] = pad
		pad ^= 0xEC ^ 0x11
	}
	return w.buf
}

// addECCAndInterleave splits data into blocks, appends Reed-Solomon EC codewords to
// each and interleaves them (ISO 18004 §7.6).
func addECCAndInterleave(data []byte, ver int, l Level) []byte {
	numBlocks := int(eccBlocks[l][ver])
	eccLen := int(eccPerBlock[l][ver])
	raw := rawDataModules(ver) / 8
	numShort := numBlocks - raw%numBlocks
	shortLen := raw / numBlocks // data+ecc length of a short block
	gen := rsGenerator(eccLen)

	out := make([]byte, raw)
	ecc := make([]byte, eccLen)
	off := 0
	shortData := shortLen - eccLen
	for b := 0; b < numBlocks; b++ {
		n := shortData
		if b >= numShort {
			n++
		}
		block := data[off : off+n]
		off += n
		rsRemainder(block, gen, ecc)
		// Data codeword i of block b goes to position i*numBlocks+b, except that
		// long blocks' last codeword comes after all short blocks' columns.
		for i, c := range block {
			pos := i*numBlocks + b
			if i == shortData {
				pos = shortData*numBlocks + (b - numShort)
			}
			out[pos] = c
		}
		dataTotal := len(data)
		for i, c := range ecc {
			out[dataTotal+i*numBlocks+b] = c
		}
	}
	return out
}

// GF(256) arithmetic with the QR polynomial x^8+x^4+x^3+x^2+1.
var gfExp, gfLog = func() (exp [512]byte, log [256]byte) {
	x := 1
	for i := 0; i < 255; i++ {
		exp[i] = byte(x)
		log[x] = byte(i)
		x <<= 1
		if x&0x100 != 0 {
			x ^= 0x11D
		}
	}
	for i := 255; i < 512; i++ {
		exp[i] = exp[i-255]
	}
	return
}()

// rsGenerator returns the coefficients (highest degree first, leading 1 omitted) of
// the product (x - α^0)…(x - α^(n-1)).
func rsGenerator(n int) []byte {
	g := make([]byte, n)
	g[n-1] = 1
	root := byte(1)
	for i := 0; i < n; i++ {
		for j := 0; j < n; j++ {
			g[j] = gfMul(g[j], root)
			if j+1 < n {
				g[j] ^= g[j+1]
			}
		}
		root = gfMul(root, 2)
	}
	return g
}

func gfMul(a, b byte) byte {
	if a == 0 || b == 0 {
		return 0
	}
	return gfExp[int(gfLog[a])+int(gfLog[b])]
}

// rsRemainder writes data(x)·x^n mod gen(x) into ecc (len n).
func rsRemainder(data, gen, ecc []byte) {
	clear(ecc)
	n := len(ecc)
	for _, d := range data {
		factor := d ^ ecc[0]
		copy(ecc, ecc[1:])
		ecc[n-1] = 0
		if factor == 0 {
			continue
		}
		lf := int(gfLog[factor])
		for i, g := range gen {
			if g != 0 {
				ecc[i] ^= gfExp[lf+int(gfLog[g])]
			}
		}
	}
}
