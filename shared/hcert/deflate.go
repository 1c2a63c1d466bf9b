package hcert

import (
	"encoding/binary"
	"hash/adler32"
	"math"
	"math/bits"
	"slices"
	"sync"
)

// This file holds a zlib (RFC 1950/1951) compressor tuned for HCERT's inputs:
// a few hundred bytes compressed into one block. compress/flate spends most of
// its time on such inputs building Huffman tables with a general algorithm (and
// levels 2-9 clear 640 KiB of hash tables on every Reset), which alone costs
// more than an ECDSA signature. Here the tables are built with the in-place
// Moffat-Katajainen algorithm over a sorted symbol list, LZ77 uses a single-probe
// hash table sized for small inputs, and the cheapest of a dynamic, fixed or
// stored block is written. Output is standard zlib; tests inflate it with the
// standard library, and the fuzz target round-trips arbitrary input.

const (
	maxMatch     = 258
	minMatch     = 4 // 3-byte matches rarely beat two literals on this data
	windowSize   = 1 << 15
	hashBits     = 11
	endOfBlock   = 256
	numLitLen    = 286
	numDist      = 30
	numCodeLen   = 19
	maxCodeBits  = 15
	maxCLBits    = 7
	matchFlag    = 1 << 31
	maxStoredLen = 65535
)

var (
	lengthBase  = [29]uint16{3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59, 67, 83, 99, 115, 131, 163, 195, 227, 258}
	lengthExtra = [29]uint8{0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0}
	distBase    = [30]uint16{1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193, 257, 385, 513, 769, 1025, 1537, 2049, 3073, 4097, 6145, 8193, 12289, 16385, 24577}
	distExtra   = [30]uint8{0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13}
	// clOrder is the transmission order of the code-length code lengths.
	clOrder = [numCodeLen]uint8{16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15}
)

// lengthCode maps a match length minus 3 to its length symbol index (0..28).
var lengthCode = func() (t [256]uint8) {
	for code := 0; code < 29; code++ {
		n := 1 << lengthExtra[code]
		for j := 0; j < n && int(lengthBase[code])-3+j < 256; j++ {
			t[int(lengthBase[code])-3+j] = uint8(code)
		}
	}
	t[255] = 28 // length 258 has its own code
	return t
}()

// distCode returns the distance symbol (0..29) of a distance 1..32768.
func distCode(d uint32) uint32 {
	if d <= 4 {
		return d - 1
	}
	// Two codes per power of two: the top bit's position and the bit below it.
	nb := uint32(bits.Len32(d-1)) - 1
	return 2*nb + ((d - 1) >> (nb - 1) & 1)
}

// fixedLit and fixedDist are the code lengths of a fixed-Huffman block.
var fixedLit, fixedDist = func() (l [288]uint8, d [numDist]uint8) {
	for i := range l {
		switch {
		case i < 144:
			l[i] = 8
		case i < 256:
			l[i] = 9
		case i < 280:
			l[i] = 7
		default:
			l[i] = 8
		}
	}
	for i := range d {
		d[i] = 5
	}
	return
}()

// deflater holds reusable scratch space; deflaters live in a sync.Pool.
type deflater struct {
	table   [1 << hashBits]int32 // last position+1 seen for each 4-byte hash
	tokens  []uint32
	litFreq [numLitLen]int32
	dstFreq [numDist]int32
	clFreq  [numCodeLen]int32
	litLen  [numLitLen]uint8
	dstLen  [numDist]uint8
	clLen   [numCodeLen]uint8
	litCode [288]uint16
	dstCode [numDist]uint16
	clCode  [numCodeLen]uint16
	clSyms  []uint16 // RLE-coded code lengths: symbol | extra<<8
	sorted  []uint64
	tmp     []uint64
	weights []int32
	bucket  [1024]uint16 // counting-sort buckets, by frequency
}

var deflaterPool = sync.Pool{New: func() any { return new(deflater) }}

// appendZlib appends the zlib stream of src to dst.
func appendZlib(dst, src []byte) []byte {
	d := deflaterPool.Get().(*deflater)
	defer deflaterPool.Put(d)
	dst = append(dst, 0x78, 0xda) // 32 KiB window, "maximum compression" level hint
	dst = d.block(dst, src)
	return binary.BigEndian.AppendUint32(dst, adler32.Checksum(src))
}

func hash4(u uint32) uint32 { return (u * 0x1e35a7bd) >> (32 - hashBits) }

// tokenize runs greedy LZ77 over src into d.tokens and counts symbol frequencies.
func (d *deflater) tokenize(src []byte) {
	d.table = [1 << hashBits]int32{}
	d.litFreq = [numLitLen]int32{}
	d.dstFreq = [numDist]int32{}
	d.tokens = d.tokens[:0]
	n := len(src)
	for i := 0; i < n; {
		if i+minMatch <= n {
			cur := binary.LittleEndian.Uint32(src[i:])
			h := hash4(cur)
			cand := int(d.table[h]) - 1
			d.table[h] = int32(i + 1)
			if cand >= 0 && i-cand <= windowSize && binary.LittleEndian.Uint32(src[cand:]) == cur {
				l := minMatch
				for i+l < n && l < maxMatch && src[cand+l] == src[i+l] {
					l++
				}
				dist := uint32(i - cand)
				d.tokens = append(d.tokens, matchFlag|uint32(l-3)<<16|(dist-1))
				d.litFreq[257+int(lengthCode[l-3])]++
				d.dstFreq[distCode(dist)]++
				// Index the positions inside the match so later repeats find them.
				for j := i + 1; j < i+l && j+minMatch <= n; j++ {
					d.table[hash4(binary.LittleEndian.Uint32(src[j:]))] = int32(j + 1)
				}
				i += l
				continue
			}
		}
		d.tokens = append(d.tokens, uint32(src[i]))
		d.litFreq[src[i]]++
		i++
	}
	d.litFreq[endOfBlock] = 1
}

// block writes src as one final deflate block of the cheapest type.
func (d *deflater) block(dst, src []byte) []byte {
	d.tokenize(src)
	w := bitWriter{out: dst}

	dataBits := func(lit, dist []uint8) int {
		total := 0
		for s, f := range d.litFreq {
			if f != 0 {
				total += int(f) * int(lit[s])
				if s > endOfBlock {
					total += int(f) * int(lengthExtra[s-257])
				}
			}
		}
		for s, f := range d.dstFreq {
			if f != 0 {
				total += int(f) * (int(dist[s]) + int(distExtra[s]))
			}
		}
		return total
	}

	fixedBits := 3 + dataBits(fixedLit[:], fixedDist[:])
	storedBits := -1
	if len(src) <= maxStoredLen {
		storedBits = 3 + 7 + 32 + 8*len(src) // worst-case alignment padding
	}
	// HCERTs are short and dense (UTF-8 text, a random signature), so often no
	// Huffman code beats a stored block. The Shannon entropy of the symbols is a
	// lower bound for any Huffman code; when even that plus the smallest
	// possible dynamic header loses, skip building the codes.
	dynBits, hlit, hdist, hclen, ok := 0, 0, 0, 0, false
	if bound := d.entropyBits() + minDynamicHeaderBits; bound < fixedBits && (storedBits < 0 || bound < storedBits) {
		dynBits, hlit, hdist, hclen, ok = d.planDynamic()
		if ok {
			dynBits += dataBits(d.litLen[:], d.dstLen[:])
		}
	}

	switch {
	case storedBits >= 0 && storedBits <= fixedBits && (!ok || storedBits <= dynBits):
		w.write(1, 3) // BFINAL=1, BTYPE=00
		w.alignByte()
		w.out = binary.LittleEndian.AppendUint16(w.out, uint16(len(src)))
		w.out = binary.LittleEndian.AppendUint16(w.out, ^uint16(len(src)))
		return append(w.out, src...)
	case !ok || fixedBits <= dynBits:
		canonicalCodes(fixedLit[:], d.litCode[:])
		canonicalCodes(fixedDist[:], d.dstCode[:])
		w.write(1|1<<1, 3) // BFINAL=1, BTYPE=01
		d.writeTokens(&w, fixedLit[:], fixedDist[:])
	default:
		canonicalCodes(d.litLen[:], d.litCode[:])
		canonicalCodes(d.dstLen[:], d.dstCode[:])
		canonicalCodes(d.clLen[:], d.clCode[:])
		w.write(1|2<<1, 3) // BFINAL=1, BTYPE=10
		w.write(uint64(hlit-257), 5)
		w.write(uint64(hdist-1), 5)
		w.write(uint64(hclen-4), 4)
		for i := 0; i < hclen; i++ {
			w.write(uint64(d.clLen[clOrder[i]]), 3)
		}
		for _, cs := range d.clSyms {
			sym := cs & 0xff
			w.write(uint64(d.clCode[sym]), uint(d.clLen[sym]))
			switch sym {
			case 16:
				w.write(uint64(cs>>8), 2)
			case 17:
				w.write(uint64(cs>>8), 3)
			case 18:
				w.write(uint64(cs>>8), 7)
			}
		}
		d.writeTokens(&w, d.litLen[:], d.dstLen[:])
	}
	return w.flush()
}

// minDynamicHeaderBits is the least a dynamic block header can take: BFINAL,
// BTYPE, HLIT, HDIST, HCLEN and four 3-bit code-length code lengths.
const minDynamicHeaderBits = 3 + 5 + 5 + 4 + 4*3

// entropyBits returns a lower bound on the data bits of any Huffman coding of
// the tokens: their order-0 entropy plus the exact extra bits.
func (d *deflater) entropyBits() int {
	bound := 0.0
	for _, freq := range [][]int32{d.litFreq[:], d.dstFreq[:]} {
		total := int32(0)
		for _, f := range freq {
			total += f
		}
		lt := math.Log2(float64(total))
		for s, f := range freq {
			if f != 0 {
				bound += float64(f) * (lt - math.Log2(float64(f)))
				if len(freq) == numLitLen && s > endOfBlock {
					bound += float64(f) * float64(lengthExtra[s-257])
				} else if len(freq) == numDist {
					bound += float64(f) * float64(distExtra[s])
				}
			}
		}
	}
	return int(bound) // truncation keeps it a lower bound
}

// planDynamic builds the dynamic block's code lengths and returns the header
// size in bits. ok is false when a dynamic block cannot be formed safely (fewer
// than two symbols in a code, which some inflaters reject).
func (d *deflater) planDynamic() (headerBits, hlit, hdist, hclen int, ok bool) {
	d.dstFreqFixup()
	if !d.lengths(d.litFreq[:], d.litLen[:], maxCodeBits) || !d.lengths(d.dstFreq[:], d.dstLen[:], maxCodeBits) {
		return 0, 0, 0, 0, false
	}
	hlit, hdist = 257, 1
	for i := numLitLen - 1; i >= 257; i-- {
		if d.litLen[i] != 0 {
			hlit = i + 1
			break
		}
	}
	for i := numDist - 1; i >= 1; i-- {
		if d.dstLen[i] != 0 {
			hdist = i + 1
			break
		}
	}
	d.rleCodeLengths(hlit, hdist)
	if !d.lengths(d.clFreq[:], d.clLen[:], maxCLBits) {
		return 0, 0, 0, 0, false
	}
	hclen = numCodeLen
	for hclen > 4 && d.clLen[clOrder[hclen-1]] == 0 {
		hclen--
	}
	headerBits = 3 + 5 + 5 + 4 + 3*hclen
	for _, cs := range d.clSyms {
		sym := cs & 0xff
		headerBits += int(d.clLen[sym])
		switch sym {
		case 16:
			headerBits += 2
		case 17:
			headerBits += 3
		case 18:
			headerBits += 7
		}
	}
	return headerBits, hlit, hdist, hclen, true
}

// dstFreqFixup gives the distance code two symbols when it has fewer, so the
// tree is complete (RFC 1951 allows one-code trees, but not every inflater does).
func (d *deflater) dstFreqFixup() {
	used := 0
	for _, f := range d.dstFreq {
		if f != 0 {
			used++
		}
	}
	for s := 0; used < 2; s++ {
		if d.dstFreq[s] == 0 {
			d.dstFreq[s] = 1
			used++
		}
	}
}

// rleCodeLengths run-length codes the literal/length and distance code lengths
// with symbols 16 (repeat previous 3-6), 17 (3-10 zeros) and 18 (11-138 zeros).
func (d *deflater) rleCodeLengths(hlit, hdist int) {
	d.clFreq = [numCodeLen]int32{}
	d.clSyms = d.clSyms[:0]
	lens := make([]uint8, 0, numLitLen+numDist)
	lens = append(append(lens, d.litLen[:hlit]...), d.dstLen[:hdist]...)
	emit := func(sym, extra int) {
		d.clSyms = append(d.clSyms, uint16(sym|extra<<8))
		d.clFreq[sym]++
	}
	for i := 0; i < len(lens); {
		l := lens[i]
		run := 1
		for i+run < len(lens) && lens[i+run] == l {
			run++
		}
		i += run
		if l == 0 {
			for run >= 11 {
				r := min(run, 138)
				emit(18, r-11)
				run -= r
			}
			if run >= 3 {
				emit(17, run-3)
				run = 0
			}
		} else {
			emit(int(l), 0)
			run--
			for run >= 3 {
				r := min(run, 6)
				emit(16, r-3)
				run -= r
			}
		}
		for ; run > 0; run-- {
			emit(int(l), 0)
		}
	}
}

// lengths computes length-limited Huffman code lengths for freq into out. It
// reports false when fewer than two symbols occur.
func (d *deflater) lengths(freq []int32, out []uint8, maxBits int) bool {
	clear(out)
	d.sorted = d.sorted[:0]
	maxFreq := int32(0)
	for s, f := range freq {
		if f != 0 {
			d.sorted = append(d.sorted, uint64(f)<<16|uint64(s))
			maxFreq = max(maxFreq, f)
		}
	}
	n := len(d.sorted)
	if n < 2 {
		return false
	}
	d.sortByFreq(maxFreq)
	d.weights = d.weights[:0]
	for _, v := range d.sorted {
		d.weights = append(d.weights, int32(v>>16))
	}
	minimumRedundancy(d.weights)
	// d.weights now holds code lengths, non-increasing (rarest symbols longest);
	// the longest is at most n-1.
	var count [numLitLen + 1]int32
	longest := int(d.weights[0])
	for _, l := range d.weights {
		count[l]++
	}
	limitLengths(count[:max(longest, maxBits)+1], maxBits)
	// Hand out the (possibly changed) lengths: shortest to the most frequent.
	j := n
	for l := 1; l <= maxBits; l++ {
		for k := count[l]; k > 0; k-- {
			j--
			out[d.sorted[j]&0xffff] = uint8(l)
		}
	}
	return true
}

// sortByFreq sorts d.sorted (freq<<16 | symbol) ascending. Small inputs have
// small frequencies, so a counting sort over the frequency usually applies.
func (d *deflater) sortByFreq(maxFreq int32) {
	if maxFreq >= int32(len(d.bucket)) {
		slices.Sort(d.sorted)
		return
	}
	b := d.bucket[:maxFreq+1]
	clear(b)
	for _, v := range d.sorted {
		b[v>>16]++
	}
	pos := uint16(0)
	for i, c := range b {
		b[i] = pos
		pos += c
	}
	d.tmp = append(d.tmp[:0], d.sorted...)
	for _, v := range d.tmp {
		f := v >> 16
		d.sorted[b[f]] = v
		b[f]++
	}
}

// minimumRedundancy turns ascending weights a into Huffman code lengths in
// place (Moffat and Katajainen, "In-place calculation of minimum-redundancy
// codes", 1995).
func minimumRedundancy(a []int32) {
	n := len(a)
	a[0] += a[1]
	root, leaf := 0, 2
	for next := 1; next < n-1; next++ {
		if leaf >= n || a[root] < a[leaf] {
			a[next] = a[root]
			a[root] = int32(next)
			root++
		} else {
			a[next] = a[leaf]
			leaf++
		}
		if leaf >= n || (root < next && a[root] < a[leaf]) {
			a[next] += a[root]
			a[root] = int32(next)
			root++
		} else {
			a[next] += a[leaf]
			leaf++
		}
	}
	a[n-2] = 0
	for next := n - 3; next >= 0; next-- {
		a[next] = a[a[next]] + 1
	}
	avail, used, depth := 1, 0, int32(0)
	root, next := n-2, n-1
	for avail > 0 {
		for root >= 0 && a[root] == depth {
			used++
			root--
		}
		for avail > used {
			a[next] = depth
			next--
			avail--
		}
		avail, depth, used = 2*used, depth+1, 0
	}
}

// limitLengths rewrites a histogram of code lengths so none exceeds maxBits
// while the code stays complete (Kraft sum exactly 1), as zlib and miniz do.
func limitLengths(count []int32, maxBits int) {
	for l := maxBits + 1; l < len(count); l++ {
		count[maxBits] += count[l]
		count[l] = 0
	}
	total := 0
	for l := maxBits; l > 0; l-- {
		total += int(count[l]) << (maxBits - l)
	}
	for total != 1<<maxBits {
		count[maxBits]--
		for l := maxBits - 1; l > 0; l-- {
			if count[l] != 0 {
				count[l]--
				count[l+1] += 2
				break
			}
		}
		total--
	}
}

// canonicalCodes assigns canonical Huffman codes (RFC 1951 3.2.2), bit-reversed
// because deflate sends Huffman codes most-significant bit first.
func canonicalCodes(lens []uint8, codes []uint16) {
	var count, next [maxCodeBits + 1]uint16
	for _, l := range lens {
		count[l]++
	}
	count[0] = 0
	code := uint16(0)
	for l := 1; l <= maxCodeBits; l++ {
		code = (code + count[l-1]) << 1
		next[l] = code
	}
	for s, l := range lens {
		if l != 0 {
			codes[s] = bits.Reverse16(next[l]) >> (16 - l)
			next[l]++
		}
	}
}

func (d *deflater) writeTokens(w *bitWriter, lit, dist []uint8) {
	for _, t := range d.tokens {
		if t&matchFlag == 0 {
			w.write(uint64(d.litCode[t]), uint(lit[t]))
			continue
		}
		l := t >> 16 & 0xff // length-3
		lc := uint32(lengthCode[l])
		sym := 257 + lc
		w.write(uint64(d.litCode[sym]), uint(lit[sym]))
		if e := lengthExtra[lc]; e != 0 {
			w.write(uint64(l+3-uint32(lengthBase[lc])), uint(e))
		}
		dv := t&0xffff + 1
		dc := distCode(dv)
		w.write(uint64(d.dstCode[dc]), uint(dist[dc]))
		if e := distExtra[dc]; e != 0 {
			w.write(uint64(dv-uint32(distBase[dc])), uint(e))
		}
	}
	w.write(uint64(d.litCode[endOfBlock]), uint(lit[endOfBlock]))
}

// bitWriter packs LSB-first bit fields into bytes.
type bitWriter struct {
	out []byte
	acc uint64
	n   uint
}

func (w *bitWriter) write(v uint64, nb uint) {
	w.acc |= v << w.n
	w.n += nb
	if w.n >= 32 {
		w.out = binary.LittleEndian.AppendUint32(w.out, uint32(w.acc))
		w.acc >>= 32
		w.n -= 32
	}
}

func (w *bitWriter) alignByte() {
	for w.n > 0 {
		w.out = append(w.out, byte(w.acc))
		w.acc >>= 8
		w.n -= min(w.n, 8)
	}
	w.acc, w.n = 0, 0
}

func (w *bitWriter) flush() []byte {
	w.alignByte()
	return w.out
}
