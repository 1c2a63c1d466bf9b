package hcert

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"hash/adler32"

	"bytes"
	"compress/zlib"
	"github.com/vaxpass/vaxpass/shared/hc1/trust"
	"io"
	"math/rand/v2"
	"strings"
	"testing"
)

func inflateStd(t testing.TB, z []byte) []byte {
	t.Helper()
	r, err := zlib.NewReader(bytes.NewReader(z))
	if err != nil {
		t.Fatalf("zlib header: %v", err)
	}
	out, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("inflate: %v", err)
	}
	return out
}

func deflateInputs() map[string][]byte {
	rng := rand.New(rand.NewPCG(1, 2))
	random := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		return b
	}
	text := []byte(strings.Repeat("Nguyễn Văn An 2021-09-01 URN:UVCI:01:VN:", 40))
	return map[string][]byte{
		"empty":        {},
		"one byte":     {'x'},
		"two bytes":    {'x', 'y'},
		"same byte 3":  {7, 7, 7},
		"random 64":    random(64),
		"random 400":   random(400),
		"random 70000": random(70000),
		"zeros 100000": make([]byte, 100000),
		"text":         text,
		"text+random":  append(append([]byte(nil), text[:300]...), random(64)...),
		"long repeats": bytes.Repeat(append(random(1000), random(40000)[:3000]...), 20),
		"all byte vals": func() []byte {
			b := make([]byte, 256)
			for i := range b {
				b[i] = byte(i)
			}
			return b
		}(),
	}
}

func TestDeflateRoundTrip(t *testing.T) {
	for name, src := range deflateInputs() {
		t.Run(name, func(t *testing.T) {
			z := appendZlib(nil, src)
			if got := inflateStd(t, z); !bytes.Equal(got, src) {
				t.Fatalf("round trip differs: got %d bytes, want %d", len(got), len(src))
			}
		})
	}
}

// TestDeflateRatio guards against a size regression: QR density is what the
// holder sees, so our fast compressor must stay close to compress/zlib's best
// on HCERT-sized inputs. (On large inputs with far repeats its single-probe
// hash table is weaker; that is out of scope.)
func TestDeflateRatio(t *testing.T) {
	for _, name := range []string{"text", "text+random", "random 400", "all byte vals", "zeros 100000"} {
		src := deflateInputs()[name]
		var std bytes.Buffer
		w, _ := zlib.NewWriterLevel(&std, zlib.BestCompression)
		w.Write(src)
		w.Close()
		ours := len(appendZlib(nil, src))
		if limit := std.Len() + std.Len()/20 + 4; ours > limit {
			t.Errorf("%s: %d bytes, compress/zlib best %d (limit %d)", name, ours, std.Len(), limit)
		}
	}
}

func TestAppendZlibKeepsPrefix(t *testing.T) {
	z := appendZlib([]byte("keep"), []byte("hello"))
	if !bytes.HasPrefix(z, []byte("keep")) || !bytes.Equal(inflateStd(t, z[4:]), []byte("hello")) {
		t.Errorf("appendZlib clobbered dst or produced bad output")
	}
}

func TestDistCode(t *testing.T) {
	for d := uint32(1); d <= 32768; d++ {
		c := distCode(d)
		lo := uint32(distBase[c])
		hi := lo + 1<<distExtra[c] - 1
		if d < lo || d > hi {
			t.Fatalf("distCode(%d) = %d covering %d..%d", d, c, lo, hi)
		}
	}
	for l := 3; l <= 258; l++ {
		c := lengthCode[l-3]
		lo := int(lengthBase[c])
		if l < lo || l > lo+1<<lengthExtra[c]-1 || (l == 258 && c != 28) {
			t.Fatalf("lengthCode(%d) = %d", l, c)
		}
	}
}

func FuzzDeflate(f *testing.F) {
	for _, src := range deflateInputs() {
		if len(src) < 5000 {
			f.Add(src)
		}
	}
	f.Fuzz(func(t *testing.T, src []byte) {
		if got := inflateStd(t, appendZlib(nil, src)); !bytes.Equal(got, src) {
			t.Fatalf("round trip of %d bytes differs", len(src))
		}
		if got := inflateStd(t, appendZlibExact(src)); !bytes.Equal(got, src) {
			t.Fatalf("round trip of %d bytes with the exact plan differs", len(src))
		}
	})
}

// typicalCOSE is an ES256 HCERT COSE_Sign1 of the Vietnamese test DCC.
func typicalCOSE(b testing.TB) []byte {
	p := newTestPKI(b, trust.DSCOptions{})
	hc1, err := Sign(context.Background(), p.signer, p.claimsAt(b, testEpoch), vietnameseDCC())
	if err != nil {
		b.Fatal(err)
	}
	text, _ := Unprefix(hc1)
	z, _ := DecodeBase45(text)
	raw, err := Inflate(z)
	if err != nil {
		b.Fatal(err)
	}
	return raw
}

func BenchmarkAppendZlib(b *testing.B) {
	src := typicalCOSE(b)
	var dst []byte
	b.ReportAllocs()
	for b.Loop() {
		dst = appendZlib(dst[:0], src)
	}
	b.ReportMetric(float64(len(dst)), "out-bytes")
}

func BenchmarkStdZlibBest(b *testing.B) {
	src := typicalCOSE(b)
	var buf bytes.Buffer
	w, _ := zlib.NewWriterLevel(&buf, zlib.BestCompression)
	b.ReportAllocs()
	for b.Loop() {
		buf.Reset()
		w.Reset(&buf)
		w.Write(src)
		w.Close()
	}
	b.ReportMetric(float64(buf.Len()), "out-bytes")
}

func BenchmarkInflate(b *testing.B) {
	z := appendZlib(nil, typicalCOSE(b))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Inflate(z); err != nil {
			b.Fatal(err)
		}
	}
}

// appendZlibExact is appendZlib that always builds the dynamic codes.
func appendZlibExact(src []byte) []byte {
	d := deflaterPool.Get().(*deflater)
	defer deflaterPool.Put(d)
	dst := d.block([]byte{0x78, 0xda}, src, true)
	return binary.BigEndian.AppendUint32(dst, adler32.Checksum(src))
}

// hcertCorpus returns the COSE messages of the EU suite and of Vietnamese
// test certificates with varied names.
func hcertCorpus(t *testing.T) [][]byte {
	var out [][]byte
	for _, f := range loadSuite(t) {
		if f.test.COSE != nil {
			if b, err := hex.DecodeString(*f.test.COSE); err == nil {
				out = append(out, b)
			}
		}
	}
	p := newTestPKI(t, trust.DSCOptions{})
	names := [][4]string{
		{"Nguyễn", "NGUYEN", "Thị Minh Khai", "THI<MINH<KHAI"},
		{"Trần", "TRAN", "Văn Bình", "VAN<BINH"},
		{"Lê", "LE", "Hoàng Phương Anh", "HOANG<PHUONG<ANH"},
		{"Phạm", "PHAM", "Đức Thắng", "DUC<THANG"},
		{"Huỳnh", "HUYNH", "Ngọc Trâm", "NGOC<TRAM"},
		{"Vo", "VO", "An", "AN"},
	}
	for i, n := range names {
		dcc := vietnameseDCC()
		dcc.Nam = testName{FN: n[0], FNT: n[1], GN: n[2], GNT: n[3]}
		dcc.V[0].DN = 1 + i%3
		hc1, err := Sign(context.Background(), p.signer, p.claimsAt(t, testEpoch), dcc)
		if err != nil {
			t.Fatal(err)
		}
		text, _ := Unprefix(hc1)
		z, _ := DecodeBase45(text)
		raw, err := Inflate(z)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, raw)
	}
	return out
}

// TestDynamicEstimateLoss bounds what skipping the Huffman planning on an
// estimate costs: on every HCERT of the corpus at most 3 bytes more than the
// exact choice, and within 1% of compress/zlib at level 9 (whose lazy matching
// finds a few more repeats in the largest messages).
func TestDynamicEstimateLoss(t *testing.T) {
	var total, exactTotal, skipped int
	for i, src := range hcertCorpus(t) {
		got, exact := appendZlib(nil, src), appendZlibExact(src)
		if !bytes.Equal(inflateStd(t, exact), src) {
			t.Fatalf("message %d: exact plan does not round-trip", i)
		}
		var std bytes.Buffer
		w, _ := zlib.NewWriterLevel(&std, zlib.BestCompression)
		w.Write(src)
		w.Close()
		if len(got) > len(exact)+3 {
			t.Errorf("message %d: %d bytes, exact plan %d", i, len(got), len(exact))
		}
		if len(got) > std.Len()+std.Len()/100+1 {
			t.Errorf("message %d (%d bytes in): %d bytes, exact %d, compress/zlib best %d", i, len(src), len(got), len(exact), std.Len())
		}
		if len(got) != len(exact) {
			skipped++
		}
		total += len(got)
		exactTotal += len(exact)
	}
	t.Logf("estimate lost bytes on %d messages; total %d vs exact %d", skipped, total, exactTotal)
}
