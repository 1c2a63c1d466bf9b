package qr

import (
	"encoding/binary"
	"math/bits"
	"sync/atomic"
)

// matrix is a symbol under construction: module values and which modules belong to
// function patterns (finder, timing, alignment, format, version), which data and
// masking skip.
type matrix struct {
	size int
	mod  []byte // 1 = dark
	fn   []bool // function module
}

func newMatrix(ver int) *matrix {
	size := 17 + 4*ver
	m := &matrix{size: size, mod: make([]byte, size*size), fn: make([]bool, size*size)}
	// Timing patterns first; finders and alignment overwrite their ends.
	for i := 0; i < size; i++ {
		m.setFn(6, i, i%2 == 0)
		m.setFn(i, 6, i%2 == 0)
	}
	m.drawFinder(3, 3)
	m.drawFinder(size-4, 3)
	m.drawFinder(3, size-4)
	pos := alignmentPositions(ver)
	last := len(pos) - 1
	for i, y := range pos {
		for j, x := range pos {
			if i == 0 && j == 0 || i == 0 && j == last || i == last && j == 0 {
				continue // those corners hold finder patterns
			}
			m.drawAlignment(x, y)
		}
	}
	// Reserve the format areas (drawn after masking) and draw the version information.
	m.drawFormat(LevelL, 0)
	m.drawVersion(ver)
	return m
}

func (m *matrix) setFn(x, y int, dark bool) {
	i := y*m.size + x
	m.mod[i] = b2u(dark)
	m.fn[i] = true
}

func b2u(b bool) byte {
	if b {
		return 1
	}
	return 0
}

// drawFinder draws a finder pattern centred on (cx, cy) with its light separator.
func (m *matrix) drawFinder(cx, cy int) {
	for dy := -4; dy <= 4; dy++ {
		for dx := -4; dx <= 4; dx++ {
			x, y := cx+dx, cy+dy
			if x < 0 || y < 0 || x >= m.size || y >= m.size {
				continue
			}
			d := max(abs(dx), abs(dy))
			m.setFn(x, y, d != 2 && d != 4)
		}
	}
}

func (m *matrix) drawAlignment(cx, cy int) {
	for dy := -2; dy <= 2; dy++ {
		for dx := -2; dx <= 2; dx++ {
			m.setFn(cx+dx, cy+dy, max(abs(dx), abs(dy)) != 1)
		}
	}
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}

// alignmentPositions returns the alignment-pattern centre coordinates of a version
// (ISO 18004 annex E), computed rather than tabulated.
func alignmentPositions(ver int) []int {
	if ver == 1 {
		return nil
	}
	n := ver/7 + 2
	step := (ver*8 + n*3 + 5) / (n*4 - 4) * 2
	pos := make([]int, n)
	pos[0] = 6
	for i, p := n-1, 17+4*ver-7; i >= 1; i, p = i-1, p-step {
		pos[i] = p
	}
	return pos
}

// drawFormat writes the 15-bit format information (level, mask) in both copies.
func (m *matrix) drawFormat(l Level, mask int) {
	bits := formatInfo(l, mask)
	bit := func(i int) bool { return bits>>uint(i)&1 != 0 }
	for i := 0; i <= 5; i++ {
		m.setFn(8, i, bit(i))
	}
	m.setFn(8, 7, bit(6))
	m.setFn(8, 8, bit(7))
	m.setFn(7, 8, bit(8))
	for i := 9; i < 15; i++ {
		m.setFn(14-i, 8, bit(i))
	}
	for i := 0; i < 8; i++ {
		m.setFn(m.size-1-i, 8, bit(i))
	}
	for i := 8; i < 15; i++ {
		m.setFn(8, m.size-15+i, bit(i))
	}
	m.setFn(8, m.size-8, true) // the always-dark module
}

// formatInfo is the BCH(15,5)-protected, masked format word.
func formatInfo(l Level, mask int) int {
	data := l.formatBits()<<3 | mask
	rem := data
	for i := 0; i < 10; i++ {
		rem = rem<<1 ^ (rem>>9)*0x537
	}
	return (data<<10 | rem) ^ 0x5412
}

// drawVersion writes the 18-bit version information (versions 7 and up).
func (m *matrix) drawVersion(ver int) {
	if ver < 7 {
		return
	}
	rem := ver
	for i := 0; i < 12; i++ {
		rem = rem<<1 ^ (rem>>11)*0x1F25
	}
	bits := ver<<12 | rem
	for i := 0; i < 18; i++ {
		dark := bits>>uint(i)&1 != 0
		a, b := m.size-11+i%3, i/3
		m.setFn(a, b, dark)
		m.setFn(b, a, dark)
	}
}

// placeData lays the codewords out in the two-column zigzag, skipping function
// modules; remainder bits stay light.
func (m *matrix) placeData(codewords []byte) {
	i, total := 0, len(codewords)*8
	for right := m.size - 1; right >= 1; right -= 2 {
		if right == 6 {
			right = 5 // skip the vertical timing column
		}
		upward := (right+1)&2 == 0
		for vert := 0; vert < m.size; vert++ {
			y := vert
			if upward {
				y = m.size - 1 - vert
			}
			for j := 0; j < 2; j++ {
				k := y*m.size + right - j
				if m.fn[k] || i >= total {
					continue
				}
				m.mod[k] = codewords[i>>3] >> uint(7-i&7) & 1
				i++
			}
		}
	}
}

// maskBit reports whether mask pattern p inverts the module at row y, column x.
func maskBit(p, x, y int) bool {
	switch p {
	case 0:
		return (x+y)%2 == 0
	case 1:
		return y%2 == 0
	case 2:
		return x%3 == 0
	case 3:
		return (x+y)%3 == 0
	case 4:
		return (y/2+x/3)%2 == 0
	case 5:
		return x*y%2+x*y%3 == 0
	case 6:
		return (x*y%2+x*y%3)%2 == 0
	default:
		return ((x+y)%2+x*y%3)%2 == 0
	}
}

// maskTables holds, per version, the eight masks as XOR tables over the whole
// symbol (1 where the mask inverts a data module, 0 on function modules). They are
// built once per version: the function-module layout depends only on the version.
var maskTables [41]atomic.Pointer[[8][]byte]

func (m *matrix) masks(ver int) *[8][]byte {
	if t := maskTables[ver].Load(); t != nil {
		return t
	}
	var t [8][]byte
	for p := range t {
		t[p] = make([]byte, len(m.mod))
		for y := 0; y < m.size; y++ {
			for x := 0; x < m.size; x++ {
				k := y*m.size + x
				if !m.fn[k] && maskBit(p, x, y) {
					t[p][k] = 1
				}
			}
		}
	}
	maskTables[ver].Store(&t)
	return &t
}

func xorInto(dst, a, b []byte) {
	b = b[:len(a)]
	dst = dst[:len(a)]
	i := 0
	for ; i+8 <= len(a); i += 8 {
		binary.LittleEndian.PutUint64(dst[i:], binary.LittleEndian.Uint64(a[i:])^binary.LittleEndian.Uint64(b[i:]))
	}
	for ; i < len(a); i++ {
		dst[i] = a[i] ^ b[i]
	}
}

// chooseMask applies the mask of lowest ISO 18004 penalty score (with its format
// information drawn) and returns its number.
func (m *matrix) chooseMask(ver int, l Level) int {
	tables := m.masks(ver)
	unmasked := append([]byte(nil), m.mod...)
	cand := make([]byte, len(m.mod))
	transposed := make([]byte, len(m.mod))
	best, bestScore := 0, int(^uint(0)>>1)
	for p := 0; p < 8; p++ {
		xorInto(cand, unmasked, tables[p])
		m.mod = cand
		m.drawFormat(l, p)
		if s := penalty(cand, transposed, m.size); s < bestScore {
			best, bestScore = p, s
		}
	}
	xorInto(cand, unmasked, tables[best])
	m.mod = cand
	m.drawFormat(l, best)
	return best
}

// penalty is the ISO 18004 §7.8.3 mask evaluation score (N1..N4) of a size×size
// module array (bytes 0 or 1); scratch (same length) receives its transpose so that
// columns can be scanned as rows. Chosen eight times per symbol, so it is written
// to avoid data-dependent branches.
func penalty(mod, scratch []byte, n int) int {
	score, dark := 0, 0
	for y := 0; y < n; y++ {
		row := mod[y*n : y*n+n]
		score += linePenalty(row)
		for x, c := range row {
			scratch[x*n+y] = c
		}
		x := 0
		for ; x+8 <= n; x += 8 {
			dark += bits.OnesCount64(binary.LittleEndian.Uint64(row[x:]))
		}
		for ; x < n; x++ {
			dark += int(row[x])
		}
		if y > 0 {
			score += 3 * sameBlocks(row, mod[(y-1)*n:y*n]) // N2
		}
	}
	for x := 0; x < n; x++ {
		score += linePenalty(scratch[x*n : x*n+n])
	}
	total := n * n
	k := (abs(dark*20-total*10)+total-1)/total - 1 // N4: 10 points per 5 % off balance
	return score + 10*k
}

// sameBlocks counts the 2×2 blocks of one colour spanning row and the row above.
// Eight modules at a time: a byte of (a^b)|(a^c)|(a^d) is 0 exactly where the block
// whose bottom-right module it is has one colour.
func sameBlocks(row, up []byte) int {
	n, count, x := len(row), 0, 1
	for ; x+8 <= n; x += 8 {
		a := binary.LittleEndian.Uint64(row[x:])
		b := binary.LittleEndian.Uint64(row[x-1:])
		c := binary.LittleEndian.Uint64(up[x:])
		d := binary.LittleEndian.Uint64(up[x-1:])
		count += 8 - bits.OnesCount64((a^b)|(a^c)|(a^d))
	}
	for ; x < n; x++ {
		a := row[x]
		count += int(1 ^ ((a ^ row[x-1]) | (a ^ up[x]) | (a ^ up[x-1])))
	}
	return count
}

// Finder-like 11-module windows: light×4 then 1011101, or 1011101 then light×4.
const finderFwd, finderBack = 0b00001011101, 0b10111010000

// n1Score[r] is what the r-th module of a same-colour run adds: 3 at the fifth, 1
// for each after. n3Score[w] is 40 for a finder-like window.
var (
	n1Score = [7]int{0, 0, 0, 0, 0, 3, 1}
	n3Score = func() (t [2048]int) {
		t[finderFwd], t[finderBack] = 40, 40
		return t
	}()
)

// linePenalty scores one row or column: N1 runs of five or more same-coloured
// modules and N3 finder-like 1:1:3:1:1 patterns with four light modules on a side
// (the area outside the symbol counts as light).
func linePenalty(line []byte) int {
	score, run := 0, 1
	prev := line[0]
	w := uint32(prev) // the four light modules before the line are implicit zeros
	for _, c := range line[1:] {
		same := int(1 ^ (c ^ prev))
		run = run*same + 1
		score += n1Score[min(run, 6)]
		w = (w<<1 | uint32(c)) & 0x7FF
		score += n3Score[w]
		prev = c
	}
	// The four light modules after the line.
	for i := 0; i < 4; i++ {
		w = (w << 1) & 0x7FF
		score += n3Score[w]
	}
	return score
}
