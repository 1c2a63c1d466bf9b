package qr

import (
	"bytes"
	"errors"
	"image"
	"image/png"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/makiuchi-d/gozxing"
	"github.com/makiuchi-d/gozxing/qrcode/decoder"
	"github.com/vaxpass/vaxpass/shared/hc1/qrscan"
)

// TestPNGRoundTrip renders random strings of HC1 lengths and reads them back with
// the decoder: the text must come back byte for byte.
func TestPNGRoundTrip(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	n := 40
	if testing.Short() {
		n = 8
	}
	for i := 0; i < n; i++ {
		text := "HC1:" + randomAlnum(r, 296+r.IntN(801)) // 300..1100 characters
		if i%5 == 0 {
			text += "  " // trailing spaces are data, not padding
		}
		px := 2 + i%5
		b, err := PNG(text, ModulePixels(px))
		if err != nil {
			t.Fatalf("len %d: %v", len(text), err)
		}
		got, err := qrscan.DecodeBytes(b)
		if err != nil {
			t.Fatalf("len %d px %d: decode: %v", len(text), px, err)
		}
		if got != text {
			t.Fatalf("len %d px %d: round trip changed the text", len(text), px)
		}
	}
}

// TestPNGGeometry checks the picture: side (Size+8)·px, a white quiet zone, and
// every module an exactly square px×px block of its colour.
func TestPNGGeometry(t *testing.T) {
	text := "HC1:" + randomAlnum(rand.New(rand.NewPCG(5, 6)), 556)
	sym, err := Encode(text, LevelQ)
	if err != nil {
		t.Fatal(err)
	}
	for _, px := range []int{1, 3, 4, 7} {
		b, err := sym.PNG(px)
		if err != nil {
			t.Fatal(err)
		}
		img, err := png.Decode(bytes.NewReader(b))
		if err != nil {
			t.Fatalf("px %d: standard library cannot read our PNG: %v", px, err)
		}
		side := (sym.Size + 2*QuietZone) * px
		if got := img.Bounds(); got != image.Rect(0, 0, side, side) {
			t.Fatalf("px %d: bounds %v, want %d×%d", px, got, side, side)
		}
		for y := 0; y < side; y++ {
			for x := 0; x < side; x++ {
				mx, my := x/px-QuietZone, y/px-QuietZone
				wantDark := mx >= 0 && my >= 0 && mx < sym.Size && my < sym.Size && sym.Dark(mx, my)
				r, _, _, _ := img.At(x, y).RGBA()
				if (r == 0) != wantDark {
					t.Fatalf("px %d: pixel (%d,%d) dark=%v, module (%d,%d) dark=%v", px, x, y, r == 0, mx, my, wantDark)
				}
			}
		}
	}
}

// TestPNGLevelAndMode reads the rendered symbol independently of our encoder: the
// module grid is sampled from the PNG pixels, gozxing's parser reads the format and
// version information and corrects the codewords, and the bit stream is parsed here
// to list its segments. HCERT wants level Q and one alphanumeric segment.
func TestPNGLevelAndMode(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	for _, text := range []string{
		"HC1:" + randomAlnum(r, 556),
		"HC1:" + strings.Repeat("0123456789", 60), // numeric runs must not split off
		"HC1:NCFOXN%TS3DH0RGPJB/IB-OM7533LR5OV5JTK7VN2RHQ3HK61A8CJ0$O+N3+*0J$PX%4B$3:Q9P0",
	} {
		const px = 4
		b, err := PNG(text, ModulePixels(px))
		if err != nil {
			t.Fatal(err)
		}
		img, err := png.Decode(bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		dim := img.Bounds().Dx()/px - 2*QuietZone
		grid, _ := gozxing.NewBitMatrix(dim, dim)
		for y := 0; y < dim; y++ {
			for x := 0; x < dim; x++ {
				if c, _, _, _ := img.At((x+QuietZone)*px+px/2, (y+QuietZone)*px+px/2).RGBA(); c == 0 {
					grid.Set(x, y)
				}
			}
		}
		parser, err := decoder.NewBitMatrixParser(grid)
		if err != nil {
			t.Fatal(err)
		}
		format, err := parser.ReadFormatInformation()
		if err != nil {
			t.Fatal(err)
		}
		if got := format.GetErrorCorrectionLevel().String(); got != "Q" {
			t.Errorf("format information says level %s, want Q", got)
		}
		version, err := parser.ReadVersion()
		if err != nil {
			t.Fatal(err)
		}
		res, err := decoder.NewDecoder().Decode(grid, nil)
		if err != nil {
			t.Fatalf("gozxing decoder: %v", err)
		}
		if res.GetECLevel() != "Q" {
			t.Errorf("decoder result EC level %q, want Q", res.GetECLevel())
		}
		if res.GetText() != text {
			t.Errorf("decoded text differs")
		}
		segs, err := parseSegments(res.GetRawBytes(), version.GetVersionNumber())
		if err != nil {
			t.Fatal(err)
		}
		if len(segs) != 1 || segs[0].Mode != "alphanumeric" || segs[0].Chars != len(text) {
			t.Errorf("segments %+v, want one alphanumeric segment of %d characters", segs, len(text))
		}
	}
}

// parseSegments lists the mode segments of a QR data bit stream (ISO 18004 §7.4),
// stopping at the terminator or the end of data. Only the modes a QR encoder
// might produce for ASCII text are known.
func parseSegments(data []byte, version int) ([]Segment, error) {
	pos := 0
	read := func(n int) (int, bool) {
		if pos+n > len(data)*8 {
			return 0, false
		}
		v := 0
		for i := 0; i < n; i++ {
			v = v<<1 | int(data[(pos+i)/8]>>(7-(pos+i)%8)&1)
		}
		pos += n
		return v, true
	}
	cc := func(small, mid, large int) int {
		switch {
		case version <= 9:
			return small
		case version <= 26:
			return mid
		}
		return large
	}
	var segs []Segment
	for {
		mode, ok := read(4)
		if !ok || mode == 0 {
			return segs, nil
		}
		var name string
		var countBits, bitsPer func(n int) int
		switch mode {
		case 1:
			name = "numeric"
			countBits = func(int) int { return cc(10, 12, 14) }
			bitsPer = func(n int) int { return n/3*10 + [3]int{0, 4, 7}[n%3] }
		case 2:
			name = "alphanumeric"
			countBits = func(int) int { return cc(9, 11, 13) }
			bitsPer = func(n int) int { return n/2*11 + n%2*6 }
		case 4:
			name = "byte"
			countBits = func(int) int { return cc(8, 16, 16) }
			bitsPer = func(n int) int { return 8 * n }
		default:
			return segs, errors.New("unexpected mode indicator " + string(rune('0'+mode)))
		}
		n, ok := read(countBits(0))
		if !ok {
			return segs, errors.New("truncated count")
		}
		if _, ok := read(bitsPer(n)); !ok {
			return segs, errors.New("truncated segment")
		}
		segs = append(segs, Segment{Mode: name, Chars: n})
	}
}

func TestPNGOptions(t *testing.T) {
	for _, px := range []int{0, -1, MaxModulePixels + 1} {
		if _, err := PNG("HC1:A", ModulePixels(px)); !errors.Is(err, ErrBadModulePixels) {
			t.Errorf("px %d: err %v, want ErrBadModulePixels", px, err)
		}
	}
	if _, err := PNG("hc1:a"); !errors.Is(err, ErrNotAlphanumeric) {
		t.Errorf("lower case: err %v, want ErrNotAlphanumeric", err)
	}
	text := "HC1:" + randomAlnum(rand.New(rand.NewPCG(9, 10)), 556)
	b, err := PNG(text, WithLevel(LevelL), ModulePixels(3))
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := png.DecodeConfig(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	l, _ := Encode(text, LevelL)
	if want := (l.Size + 2*QuietZone) * 3; cfg.Width != want || cfg.Height != want {
		t.Errorf("level L at 3 px: %d×%d, want %d²", cfg.Width, cfg.Height, want)
	}
}

// FuzzRoundTrip: whatever Encode accepts must come back exactly from the PNG, and
// whatever it refuses must really be outside the alphanumeric set (or empty/too long).
func FuzzRoundTrip(f *testing.F) {
	f.Add("HC1:6BFOXN*TS0BI$ZD4N9:9S6RCVN5+O30K3/XIV0W23NTDEXWK G2EP4J0B3KL6QM5/OVGA/MAT%ZSPO0")
	f.Add(" ")
	f.Add("hc1:lower")
	f.Add(strings.Repeat("9", 700))
	f.Fuzz(func(t *testing.T, text string) {
		b, err := PNG(text, ModulePixels(2))
		if err != nil {
			allowed := text != "" && len(text) <= 2420
			for i := 0; i < len(text); i++ {
				allowed = allowed && strings.IndexByte(alnumSet, text[i]) >= 0
			}
			if allowed {
				t.Fatalf("refused valid text: %v", err)
			}
			return
		}
		got, err := qrscan.DecodeBytes(b)
		if err != nil {
			t.Fatalf("decode: %v", err)
		}
		if got != text {
			t.Fatalf("round trip: got %q, want %q", got, text)
		}
	})
}

// FuzzAlnumRoundTrip maps arbitrary bytes onto the alphanumeric set so that every
// input is encodable, and checks the PNG reads back exactly.
func FuzzAlnumRoundTrip(f *testing.F) {
	f.Add([]byte("HC1:NCFOXN%TS3DH0RGPJB/IB-OM7533LR5OV5JTK7VN2RHQ3HK61A8CJ0"))
	f.Add(bytes.Repeat([]byte{0}, 600))
	f.Add([]byte{36, 36, 36})
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) == 0 || len(data) > 2420 {
			return
		}
		text := make([]byte, len(data))
		for i, b := range data {
			text[i] = alnumSet[int(b)%len(alnumSet)]
		}
		b, err := PNG(string(text), ModulePixels(2))
		if err != nil {
			t.Fatalf("%d characters: %v", len(text), err)
		}
		got, err := qrscan.DecodeBytes(b)
		if err != nil {
			t.Fatalf("%d characters: decode: %v", len(text), err)
		}
		if got != string(text) {
			t.Fatalf("round trip: got %q, want %q", got, text)
		}
	})
}
