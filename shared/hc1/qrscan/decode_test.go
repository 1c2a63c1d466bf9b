package qrscan

import (
	"bytes"
	"errors"
	"hash/crc32"
	"image"
	"image/color"
	"image/draw"
	"image/jpeg"
	"image/png"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/makiuchi-d/gozxing"
	"github.com/vaxpass/vaxpass/shared/hc1/qr"
)

// alnumSet is QR's alphanumeric character set.
const alnumSet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:"

func isHC1(s string) bool {
	if !strings.HasPrefix(s, "HC1:") {
		return false
	}
	for i := 0; i < len(s); i++ {
		if strings.IndexByte(alnumSet, s[i]) < 0 {
			return false
		}
	}
	return true
}

// TestDecodeSpecimens decodes EU QA specimens that defeat gozxing on its own.
func TestDecodeSpecimens(t *testing.T) {
	files, err := filepath.Glob("testdata/specimens/*.png")
	if err != nil || len(files) == 0 {
		t.Fatalf("no specimens: %v", err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			img, err := decodeImage(data)
			if err != nil {
				t.Fatal(err)
			}
			text, variant, a, err := decode(img)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("read by variant %d, attempt %+v", variant, a)
			if !isHC1(text) {
				t.Fatalf("decoded %d characters that are not an alphanumeric HC1 string", len(text))
			}
		})
	}
	// Notes §4.2: Vietnam's specimen holds 825 characters.
	if text, err := DecodeFile("testdata/specimens/VN_VAC_VN.png"); err != nil || len(text) != 825 {
		t.Errorf("VN specimen: %d characters, %v; want 825", len(text), err)
	}
}

// TestDecodeNonIntegerScale: a rendering resampled to 3.6 px per module is beyond
// gozxing's dimension rounding but not beyond the all-finders fallback.
func TestDecodeNonIntegerScale(t *testing.T) {
	text := "HC1:" + randomAlnum(rand.New(rand.NewPCG(11, 12)), 800)
	sym, err := qr.Encode(text, qr.LevelQ)
	if err != nil {
		t.Fatal(err)
	}
	for _, scale := range []float64{3.4, 3.6, 3.7, 4.3} {
		img := resample(sym, scale)
		got, variant, a, err := decode(img)
		if err != nil || got != text {
			t.Fatalf("scale %.1f: %v", scale, err)
		}
		t.Logf("scale %.1f: read by variant %d, attempt %+v", scale, variant, a)
		// The fallback on its own, on the bordered image.
		if got, err := tryDecode(gozxing.NewLuminanceSourceFromImage(pad(img, 16)), attempt{allFinders: true}); err != nil || got != text {
			t.Errorf("scale %.1f: all-finders fallback: %v", scale, err)
		}
	}
}

// resample draws the symbol and quiet zone at a non-integer pixels-per-module scale
// (nearest neighbour, as a screenshot tool would).
func resample(sym *qr.Symbol, scale float64) *image.Gray {
	n := sym.Size + 2*qr.QuietZone
	side := int(float64(n) * scale)
	img := image.NewGray(image.Rect(0, 0, side, side))
	for y := 0; y < side; y++ {
		for x := 0; x < side; x++ {
			mx, my := int(float64(x)/scale)-qr.QuietZone, int(float64(y)/scale)-qr.QuietZone
			v := uint8(255)
			if mx >= 0 && my >= 0 && mx < sym.Size && my < sym.Size && sym.Dark(mx, my) {
				v = 0
			}
			img.Pix[y*img.Stride+x] = v
		}
	}
	return img
}

// TestDecodeImageKinds: transparent backgrounds, JPEG inside a ".png" file, turned
// and borderless images, sub-rectangles.
func TestDecodeImageKinds(t *testing.T) {
	text := "HC1:" + randomAlnum(rand.New(rand.NewPCG(13, 14)), 560) + " "
	b, err := qr.PNG(text, qr.ModulePixels(5))
	if err != nil {
		t.Fatal(err)
	}
	src, err := png.Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	bounds := src.Bounds()

	// Black modules on a transparent background.
	transparent := image.NewNRGBA(bounds)
	for y := bounds.Min.Y; y < bounds.Max.Y; y++ {
		for x := bounds.Min.X; x < bounds.Max.X; x++ {
			if r, _, _, _ := src.At(x, y).RGBA(); r == 0 {
				transparent.Set(x, y, color.NRGBA{A: 255})
			}
		}
	}
	// No quiet zone at all.
	edge := 5 * qr.QuietZone
	cropped := toGray(src).SubImage(image.Rect(edge, edge, bounds.Dx()-edge, bounds.Dy()-edge))
	// Offset in a larger picture (non-zero bounds origin).
	big := image.NewRGBA(image.Rect(-50, -30, bounds.Dx()+70, bounds.Dy()+90))
	draw.Draw(big, big.Bounds(), image.White, image.Point{}, draw.Src)
	draw.Draw(big, bounds, src, image.Point{}, draw.Src)

	tests := map[string]image.Image{
		"paletted/gray": src,
		"transparent":   transparent,
		"no quiet zone": cropped,
		"turned":        turn(toGray(src)),
		"offset":        big,
	}
	for name, img := range tests {
		got, err := Decode(img)
		if err != nil || got != text {
			t.Errorf("%s: %v (text equal: %v)", name, err, got == text)
		}
	}

	// A JPEG saved under a .png name is sniffed by content.
	var jb bytes.Buffer
	if err := jpeg.Encode(&jb, src, &jpeg.Options{Quality: 90}); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "really-a-jpeg.png")
	if err := os.WriteFile(path, jb.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	if got, err := DecodeFile(path); err != nil || got != text {
		t.Errorf("jpeg: %v", err)
	}
}

func TestDecodeErrors(t *testing.T) {
	blank := image.NewGray(image.Rect(0, 0, 200, 200))
	draw.Draw(blank, blank.Bounds(), image.White, image.Point{}, draw.Src)
	var blankPNG bytes.Buffer
	if err := png.Encode(&blankPNG, blank); err != nil {
		t.Fatal(err)
	}
	// A valid PNG header claiming 100000×100000 pixels: refused before decoding.
	var huge bytes.Buffer
	if err := png.Encode(&huge, image.NewGray(image.Rect(0, 0, 1, 1))); err != nil {
		t.Fatal(err)
	}
	hugeBytes := huge.Bytes()
	copy(hugeBytes[16:24], []byte{0, 1, 0x86, 0xA0, 0, 1, 0x86, 0xA0})
	fixIHDRCRC(hugeBytes)

	tests := []struct {
		name string
		data []byte
		want error
	}{
		{"blank image", blankPNG.Bytes(), ErrNoQRCode},
		{"not an image", []byte("HC1:NOT AN IMAGE"), ErrImageFormat},
		{"gif", []byte("GIF89a\x01\x00\x01\x00\x00\x00\x00;"), ErrImageFormat},
		{"huge dimensions", hugeBytes, ErrImageTooLarge},
		{"huge file", make([]byte, MaxImageBytes+1), ErrImageTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := DecodeBytes(tt.data)
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
		})
	}
	if _, err := Decode(nil); !errors.Is(err, ErrNoQRCode) {
		t.Errorf("nil image: %v", err)
	}
	if _, err := DecodeFile(filepath.Join(t.TempDir(), "missing.png")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
}

func fixIHDRCRC(b []byte) {
	// IHDR chunk: length at 8, type+data at 12..29, CRC at 29..33.
	c := crc32.ChecksumIEEE(b[12:29])
	b[29], b[30], b[31], b[32] = byte(c>>24), byte(c>>16), byte(c>>8), byte(c)
}

// turn rotates a quarter turn clockwise.
func turn(g *image.Gray) *image.Gray {
	w, h := g.Rect.Dx(), g.Rect.Dy()
	out := image.NewGray(image.Rect(0, 0, h, w))
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			out.Pix[x*out.Stride+h-1-y] = g.Pix[y*g.Stride+x]
		}
	}
	return out
}

// randomAlnum returns n random characters of the alphanumeric set.
func randomAlnum(r *rand.Rand, n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = alnumSet[r.IntN(len(alnumSet))]
	}
	return string(b)
}
