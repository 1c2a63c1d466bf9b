package hcert

import (
	"bytes"
	"compress/zlib"
	"errors"
	"runtime"
	"strings"
	"testing"
)

func TestUnprefix(t *testing.T) {
	tests := []struct {
		in, want string
		ok       bool
	}{
		{"HC1:NCFOXN", "NCFOXN", true},
		{"HC1:", "", true},
		{"HC1: 6BF", " 6BF", true}, // space is Base45; never trimmed
		{"HC2:NCFOXN", "", false},
		{"HCZ:NCFOXN", "", false},
		{"HL0:NCFOXN", "", false},
		{"hc1:NCFOXN", "", false},
		{"NCFOXN", "", false},
		{" HC1:NCFOXN", "", false},
		{"", "", false},
		{"HC1:" + strings.Repeat("A", MaxHC1Length), "", false},
	}
	for _, tc := range tests {
		got, err := Unprefix(tc.in)
		if tc.ok && (err != nil || got != tc.want) {
			t.Errorf("Unprefix(%.12q) = %q, %v", tc.in, got, err)
		}
		if !tc.ok && !errors.Is(err, ErrPrefix) {
			t.Errorf("Unprefix(%.12q) = %q, %v; want ErrPrefix", tc.in, got, err)
		}
	}
}

func TestDecodeBase45Errors(t *testing.T) {
	for _, in := range []string{"BB8A", "GGW", "bb8", strings.Repeat("0", MaxHC1Length+1)} {
		if _, err := DecodeBase45(in); !errors.Is(err, ErrBase45) {
			t.Errorf("DecodeBase45(%.8q) = %v, want ErrBase45", in, err)
		}
	}
}

func zlibStd(b []byte) []byte {
	var buf bytes.Buffer
	w := zlib.NewWriter(&buf)
	w.Write(b)
	w.Close()
	return buf.Bytes()
}

func TestInflateErrors(t *testing.T) {
	good := zlibStd([]byte("hello HCERT"))
	badSum := append([]byte(nil), good...)
	badSum[len(badSum)-1] ^= 1
	tests := map[string][]byte{
		"empty":          nil,
		"not zlib":       []byte("hello"),
		"wrong header":   append([]byte{0x78, 0x00}, good[2:]...),
		"bad checksum":   badSum,
		"truncated":      good[:len(good)-5],
		"trailing bytes": append(append([]byte(nil), good...), 0),
		"preset dict":    {0x78, 0xbb, 0, 0, 0, 1, 3, 0},
	}
	for name, in := range tests {
		t.Run(name, func(t *testing.T) {
			if out, err := Inflate(in); !errors.Is(err, ErrInflate) {
				t.Errorf("Inflate = %q, %v; want ErrInflate", out, err)
			}
		})
	}
	if out, err := Inflate(good); err != nil || string(out) != "hello HCERT" {
		t.Errorf("Inflate(good) = %q, %v", out, err)
	}
}

// zlibBomb builds the zlib stream of n zero bytes directly (a literal 0, then
// matches of length 258 at distance 1 in a fixed-Huffman block), which is much
// faster than compressing 1 GiB.
func zlibBomb(n int) []byte {
	w := bitWriter{out: []byte{0x78, 0x01}}
	w.write(1|1<<1, 3) // final fixed block
	w.write(uint64(fixedLitCode[0]), uint(fixedLit[0]))
	for left := n - 1; left > 0; {
		l := min(left, 258)
		if l < 3 {
			for ; l > 0; l-- {
				w.write(uint64(fixedLitCode[0]), uint(fixedLit[0]))
				left--
			}
			continue
		}
		lc := lengthCode[l-3]
		sym := 257 + int(lc)
		w.write(uint64(fixedLitCode[sym]), uint(fixedLit[sym]))
		if e := lengthExtra[lc]; e != 0 {
			w.write(uint64(l-int(lengthBase[lc])), uint(e))
		}
		w.write(uint64(fixedDstCode[0]), uint(fixedDist[0])) // distance 1
		left -= l
	}
	w.write(uint64(fixedLitCode[endOfBlock]), uint(fixedLit[endOfBlock]))
	out := w.flush()
	sum := uint32(n%65521)<<16 | 1 // Adler-32 of n zeros: a = 1, b = n mod 65521
	return append(out, byte(sum>>24), byte(sum>>16), byte(sum>>8), byte(sum))
}

func TestZlibBombIsCheap(t *testing.T) {
	if got := inflateStd(t, zlibBomb(100000)); !bytes.Equal(got, make([]byte, 100000)) {
		t.Fatalf("bomb generator is broken: %d bytes", len(got))
	}
	bomb := zlibBomb(1 << 30) // 1 GiB of zeros in about 6.5 MB
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	out, err := Inflate(bomb)
	runtime.ReadMemStats(&after)
	if !errors.Is(err, ErrInflate) || len(out) != 0 {
		t.Fatalf("Inflate(bomb) = %d bytes, %v; want ErrInflate", len(out), err)
	}
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 4*MaxCOSESize {
		t.Errorf("Inflate(bomb) allocated %d bytes, want at most %d", alloc, 4*MaxCOSESize)
	}
}

func TestInflateAtLimit(t *testing.T) {
	exact := zlibStd(make([]byte, MaxCOSESize))
	if out, err := Inflate(exact); err != nil || len(out) != MaxCOSESize {
		t.Errorf("Inflate of exactly MaxCOSESize = %d, %v", len(out), err)
	}
	over := zlibStd(make([]byte, MaxCOSESize+1))
	if _, err := Inflate(over); !errors.Is(err, ErrInflate) {
		t.Errorf("Inflate of MaxCOSESize+1 = %v, want ErrInflate", err)
	}
}
