package hcert

import (
	"encoding/binary"
	"hash/adler32"
	"math"
	"math/bits"
	"sync"
)

// This file holds a zlib (RFC 1950/1951) compressor tuned for HCERT's inputs:
// a few hundred bytes compressed into one block. compress/flate spends most of
// its time on such inputs building Huffman tables with a general algorithm (and
// levels 2-9 clear 640 KiB of hash tables on every Reset), which alone costs
// more than an ECDSA signature. Here LZ77 uses a single-probe hash table sized
// for small inputs and never cleared, symbol statistics touch only the symbols
// used, Huffman codes (huffman.go) are built only when an entropy estimate says
// a dynamic block may win, and the smallest of a dynamic, fixed or stored block
// is written. Output is standard zlib; tests inflate it with the standard
// library, bound the estimate's loss against an exact plan on the EU suite's
// messages, and the fuzz target round-trips arbitrary input.

const (
	maxMatch     = 258
	minMatch     = 4 // 3-byte matches rarely beat two literals on this data
	windowSize   = 1 << 15
	hashBits     = 9
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

// fixedLitCode and fixedDstCode are the canonical codes of a fixed block.
var fixedLitCode, fixedDstCode = func() (l [288]uint16, d [numDist]uint16) {
	canonicalCodes(fixedLit[:], l[:])
	canonicalCodes(fixedDist[:], d[:])
	return
}()

// deflater holds reusable scratch space; deflaters live in a sync.Pool.
type deflater struct {
	// table holds base+position+1 of the last occurrence of each 4-byte hash;
	// entries not above base are stale, so the table is never cleared per call.
	table   [1 << hashBits]int32
	base    int32
	tokens  []uint32
	lit     histogram
	dst     histogram
	cl      histogram
	litFreq [numLitLen]int32
	dstFreq [numDist]int32
	clFreq  [numCodeLen]int32
	litLen  [numLitLen]uint8
	dstLen  [numDist]uint8
	clLen   [numCodeLen]uint8
	litCode [numLitLen]uint16
	dstCode [numDist]uint16
	clCode  [numCodeLen]uint16
	clSyms  []uint16 // RLE-coded code lengths: symbol | extra<<8
	sorted  []uint64
	tmp     []uint64
	weights []int32
	bucket  [1024]uint16 // counting-sort buckets, by frequency
	lensBuf [numLitLen + numDist]uint8
}

var deflaterPool = sync.Pool{New: func() any {
	d := new(deflater)
	d.lit.freq, d.dst.freq, d.cl.freq = d.litFreq[:], d.dstFreq[:], d.clFreq[:]
	return d
}}

// appendZlib appends the zlib stream of src to dst.
func appendZlib(dst, src []byte) []byte {
	d := deflaterPool.Get().(*deflater)
	defer deflaterPool.Put(d)
	dst = append(dst, 0x78, 0xda) // 32 KiB window, "maximum compression" level hint
	dst = d.block(dst, src, false)
	return binary.BigEndian.AppendUint32(dst, adler32.Checksum(src))
}

func hash4(u uint32) uint32 { return (u * 0x1e35a7bd) >> (32 - hashBits) }

// tokenize runs greedy LZ77 over src into d.tokens and counts symbol frequencies.
func (d *deflater) tokenize(src []byte) {
	if d.base > 1<<30 {
		d.table = [1 << hashBits]int32{}
		d.base = 0
	}
	base := int(d.base)
	d.lit.reset()
	d.dst.reset()
	d.tokens = d.tokens[:0]
	n := len(src)
	for i := 0; i < n; {
		if i+minMatch <= n {
			cur := binary.LittleEndian.Uint32(src[i:])
			h := hash4(cur)
			cand := int(d.table[h]) - base - 1
			d.table[h] = int32(base + i + 1)
			if cand >= 0 && i-cand <= windowSize && binary.LittleEndian.Uint32(src[cand:]) == cur {
				l := minMatch
				for i+l < n && l < maxMatch && src[cand+l] == src[i+l] {
					l++
				}
				dist := uint32(i - cand)
				d.tokens = append(d.tokens, matchFlag|uint32(l-3)<<16|(dist-1))
				d.lit.add(257 + int(lengthCode[l-3]))
				d.dst.add(int(distCode(dist)))
				// Index the positions inside the match so later repeats find them.
				for j := i + 1; j < i+l && j+minMatch <= n; j++ {
					d.table[hash4(binary.LittleEndian.Uint32(src[j:]))] = int32(base + j + 1)
				}
				i += l
				continue
			}
		}
		d.tokens = append(d.tokens, uint32(src[i]))
		d.lit.add(int(src[i]))
		i++
	}
	d.lit.add(endOfBlock)
	d.lit.finish()
	d.dst.finish()
	// Inputs beyond 2^30 bytes would overflow the table's int32 positions; the
	// pool's buffers are never that large in HCERT use, but stay correct.
	if n >= 1<<30 {
		d.table = [1 << hashBits]int32{}
		d.base = 0
	} else {
		d.base += int32(n + 1)
	}
}

// block writes src as one final deflate block of the cheapest type.
// exact builds the dynamic codes even when the estimate says they lose (tests).
func (d *deflater) block(dst, src []byte, exact bool) []byte {
	d.tokenize(src)
	w := bitWriter{out: dst}

	dataBits := func(lit, dist []uint8) int {
		total := 0
		for _, s := range d.lit.used {
			f := int(d.litFreq[s])
			total += f * int(lit[s])
			if s > endOfBlock {
				total += f * int(lengthExtra[s-257])
			}
		}
		for _, s := range d.dst.used {
			total += int(d.dstFreq[s]) * (int(dist[s]) + int(distExtra[s]))
		}
		return total
	}

	// Compare whole output bytes; on a tie prefer the block that is cheaper
	// to write and to inflate (stored, then fixed). Dense HCERTs (UTF-8 names,
	// a random signature) often gain nothing from Huffman coding.
	fixedBytes := (3 + dataBits(fixedLit[:], fixedDist[:]) + 7) / 8
	storedBytes := math.MaxInt
	if len(src) <= maxStoredLen {
		storedBytes = 1 + 4 + len(src) // 3 header bits padded, LEN, NLEN, data
	}
	best := min(storedBytes, fixedBytes)
	dynBytes := math.MaxInt
	hlit, hdist, hclen, ok := 0, 0, 0, false
	if exact || d.dynamicMayWin(best) {
		var headerBits int
		hlit, hdist, hclen, headerBits, ok = d.planDynamic()
		if ok {
			dynBytes = (headerBits + dataBits(d.litLen[:], d.dstLen[:]) + 7) / 8
		}
	}

	switch {
	case storedBytes <= fixedBytes && storedBytes <= dynBytes:
		w.write(1, 3) // BFINAL=1, BTYPE=00
		w.alignByte()
		w.out = binary.LittleEndian.AppendUint16(w.out, uint16(len(src)))
		w.out = binary.LittleEndian.AppendUint16(w.out, ^uint16(len(src)))
		return append(w.out, src...)
	case fixedBytes <= dynBytes:
		w.write(1|1<<1, 3) // BFINAL=1, BTYPE=01
		d.writeTokens(&w, fixedLit[:], fixedDist[:], fixedLitCode[:], fixedDstCode[:])
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
		d.writeTokens(&w, d.litLen[:], d.dstLen[:], d.litCode[:], d.dstCode[:])
	}
	return w.flush()
}

func (d *deflater) writeTokens(w *bitWriter, lit, dist []uint8, litCode, dstCode []uint16) {
	for _, t := range d.tokens {
		if t&matchFlag == 0 {
			w.write(uint64(litCode[t]), uint(lit[t]))
			continue
		}
		l := t >> 16 & 0xff // length-3
		lc := uint32(lengthCode[l])
		sym := 257 + lc
		w.write(uint64(litCode[sym]), uint(lit[sym]))
		if e := lengthExtra[lc]; e != 0 {
			w.write(uint64(l+3-uint32(lengthBase[lc])), uint(e))
		}
		dv := t&0xffff + 1
		dc := distCode(dv)
		w.write(uint64(dstCode[dc]), uint(dist[dc]))
		if e := distExtra[dc]; e != 0 {
			w.write(uint64(dv-uint32(distBase[dc])), uint(e))
		}
	}
	w.write(uint64(litCode[endOfBlock]), uint(lit[endOfBlock]))
}
