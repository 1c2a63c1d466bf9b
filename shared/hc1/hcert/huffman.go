package hcert

import (
	"math"
	"math/bits"
	"slices"
)

// Huffman code construction for the dynamic deflate block (RFC 1951 3.2.7).

// histogram counts symbols and lists those that occur (in ascending order,
// after finish), so later passes touch only the symbols used.
type histogram struct {
	freq []int32
	seen [5]uint64 // bit per symbol; alphabets have at most 286 symbols
	used []uint16
}

func (h *histogram) add(sym int) {
	h.freq[sym]++
	h.seen[sym>>6] |= 1 << (sym & 63)
}

func (h *histogram) reset() {
	clear(h.freq)
	h.seen = [5]uint64{}
	h.used = h.used[:0]
}

// finish fills used from seen.
func (h *histogram) finish() {
	h.used = h.used[:0]
	for w, b := range h.seen {
		for ; b != 0; b &= b - 1 {
			h.used = append(h.used, uint16(w*64+bits.TrailingZeros64(b)))
		}
	}
}

// headerBitsPerSymbol estimates what a dynamic block header costs per symbol
// used. Measured on the 566 COSE_Sign1 messages of the EU dgc-testdata suite
// it ranges 2.8-5.1 (median 4.7); see TestDynamicEstimateLoss.
const headerBitsPerSymbol = 4.5

// dynamicMayWin estimates a dynamic block (Shannon entropy of the tokens, which
// Huffman coding exceeds by about 1% here, plus an estimated header) and
// reports whether it could beat best bytes. Building the codes costs about
// as much as the rest of the compression together; HCERTs (UTF-8 names, a
// random signature) sit near the point where Huffman coding stops paying, so
// an exact plan would at best save a byte or two where the estimate says no.
func (d *deflater) dynamicMayWin(best int) bool {
	est := float64(minDynamicHeaderBits) + headerBitsPerSymbol*float64(len(d.lit.used)+len(d.dst.used))
	for _, h := range []*histogram{&d.lit, &d.dst} {
		total := int32(0)
		for _, s := range h.used {
			total += h.freq[s]
		}
		lt := log2(total)
		for _, s := range h.used {
			f := h.freq[s]
			est += float64(f) * (lt - log2(f))
		}
	}
	for _, s := range d.lit.used {
		if s > endOfBlock {
			est += float64(d.litFreq[s]) * float64(lengthExtra[s-257])
		}
	}
	for _, s := range d.dst.used {
		est += float64(d.dstFreq[s]) * float64(distExtra[s])
	}
	return est < float64(8*best)
}

// minDynamicHeaderBits: BFINAL, BTYPE, HLIT, HDIST, HCLEN, four 3-bit lengths.
const minDynamicHeaderBits = 3 + 5 + 5 + 4 + 4*3

// log2Table[i] is log2(i), for the small frequencies of HCERT-sized inputs.
var log2Table = func() (t [512]float32) {
	for i := 1; i < len(t); i++ {
		t[i] = float32(math.Log2(float64(i)))
	}
	return
}()

func log2(n int32) float64 {
	if n < int32(len(log2Table)) {
		return float64(log2Table[n])
	}
	return math.Log2(float64(n))
}

// planDynamic builds the dynamic block's code lengths and returns the header
// size in bits. ok is false when a dynamic block cannot be formed safely (fewer
// than two symbols in a code, which some inflaters reject).
func (d *deflater) planDynamic() (hlit, hdist, hclen, headerBits int, ok bool) {
	d.dstFreqFixup()
	if !d.lengths(&d.lit, d.litLen[:], maxCodeBits) || !d.lengths(&d.dst, d.dstLen[:], maxCodeBits) {
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
	if !d.lengths(&d.cl, d.clLen[:], maxCLBits) {
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
	return hlit, hdist, hclen, headerBits, true
}

// dstFreqFixup gives the distance code two symbols when it has fewer, so the
// tree is complete (RFC 1951 allows one-code trees, but not every inflater does).
func (d *deflater) dstFreqFixup() {
	if len(d.dst.used) >= 2 {
		return
	}
	for s := 0; s < 2; s++ {
		if d.dstFreq[s] == 0 {
			d.dst.add(s)
		}
	}
	d.dst.finish()
}

// rleCodeLengths run-length codes the literal/length and distance code lengths
// with symbols 16 (repeat previous 3-6), 17 (3-10 zeros) and 18 (11-138 zeros).
func (d *deflater) rleCodeLengths(hlit, hdist int) {
	d.cl.reset()
	d.clSyms = d.clSyms[:0]
	lens := append(append(d.lensBuf[:0], d.litLen[:hlit]...), d.dstLen[:hdist]...)
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
				d.emitCL(18, r-11)
				run -= r
			}
			if run >= 3 {
				d.emitCL(17, run-3)
				run = 0
			}
		} else {
			d.emitCL(int(l), 0)
			run--
			for run >= 3 {
				r := min(run, 6)
				d.emitCL(16, r-3)
				run -= r
			}
		}
		for ; run > 0; run-- {
			d.emitCL(int(l), 0)
		}
	}
	d.cl.finish()
}

func (d *deflater) emitCL(sym, extra int) {
	d.clSyms = append(d.clSyms, uint16(sym|extra<<8))
	d.cl.add(sym)
}

// lengths computes length-limited Huffman code lengths for freq into out. It
// reports false when fewer than two symbols occur.
func (d *deflater) lengths(h *histogram, out []uint8, maxBits int) bool {
	clear(out)
	d.sorted = d.sorted[:0]
	maxFreq := int32(0)
	for _, s := range h.used {
		f := h.freq[s]
		d.sorted = append(d.sorted, uint64(f)<<16|uint64(s))
		maxFreq = max(maxFreq, f)
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
	// Lengths above 32 (possible only for huge inputs) are folded into 32;
	// limitLengths folds everything above maxBits anyway.
	var count [33]int32
	for _, l := range d.weights {
		count[min(l, 32)]++
	}
	limitLengths(count[:], maxBits)
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
