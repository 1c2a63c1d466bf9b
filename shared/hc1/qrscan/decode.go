package qrscan

import (
	"bytes"
	"errors"
	"fmt"
	"image"
	_ "image/jpeg" // specimen "PNGs" are sometimes JPEGs (Vietnam's is)
	_ "image/png"
	"io"
	"os"

	"github.com/makiuchi-d/gozxing"
	gzqr "github.com/makiuchi-d/gozxing/qrcode"
)

// Limits on untrusted images.
const (
	MaxImageBytes  = 32 << 20 // encoded file size
	MaxImagePixels = 40 << 20 // width × height after decoding the header
)

// Sentinel errors of the decoder.
var (
	ErrNoQRCode      = errors.New("qr: no readable QR code in image")
	ErrImageTooLarge = errors.New("qr: image too large")
	ErrImageFormat   = errors.New("qr: not a PNG or JPEG image")
)

// DecodeFile reads a PNG or JPEG file (sniffed by content, not by name) and decodes
// the QR code in it.
func DecodeFile(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("qr: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxImageBytes+1))
	if err != nil {
		return "", fmt.Errorf("qr: read %s: %w", path, err)
	}
	return DecodeBytes(data)
}

// DecodeBytes decodes the QR code in an encoded PNG or JPEG image.
func DecodeBytes(data []byte) (string, error) {
	img, err := decodeImage(data)
	if err != nil {
		return "", err
	}
	return Decode(img)
}

func decodeImage(data []byte) (image.Image, error) {
	if len(data) > MaxImageBytes {
		return nil, fmt.Errorf("%w: more than %d bytes", ErrImageTooLarge, MaxImageBytes)
	}
	cfg, format, err := image.DecodeConfig(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrImageFormat, err)
	}
	if format != "png" && format != "jpeg" {
		return nil, fmt.Errorf("%w: format %q", ErrImageFormat, format)
	}
	if cfg.Width <= 0 || cfg.Height <= 0 || cfg.Width*cfg.Height > MaxImagePixels {
		return nil, fmt.Errorf("%w: %d×%d pixels (limit %d)", ErrImageTooLarge, cfg.Width, cfg.Height, MaxImagePixels)
	}
	img, _, err := image.Decode(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("qr: decode %s image: %w", format, err)
	}
	return img, nil
}

// Decode finds and decodes one QR code in img and returns its text exactly as
// encoded (no trimming: spaces are legal in the alphanumeric set).
//
// It tries, cheapest first, until one succeeds: gozxing with TRY_HARDER; its
// pure-barcode extraction (clean, axis-aligned renderings); its global histogram
// binarizer (even lighting); a more thorough finder search of this package's own
// (finder-like blobs in the data, non-integer module sizes); then all again on the
// image surrounded by a wide white border (codes cropped to their edge).
func Decode(img image.Image) (string, error) {
	if img == nil || img.Bounds().Empty() {
		return "", fmt.Errorf("%w: empty image", ErrNoQRCode)
	}
	b := img.Bounds()
	if b.Dx()*b.Dy() > MaxImagePixels {
		return "", fmt.Errorf("%w: %d×%d pixels (limit %d)", ErrImageTooLarge, b.Dx(), b.Dy(), MaxImagePixels)
	}
	text, _, _, err := decode(img)
	return text, err
}

// decode is Decode reporting which image variant and attempt succeeded (for tests).
func decode(img image.Image) (text string, variant int, a attempt, err error) {
	var firstErr error
	v := variants{orig: toGray(img)}
	for i := 0; i < numVariants; i++ {
		src := gozxing.NewLuminanceSourceFromImage(v.get(i))
		for _, a := range attempts {
			text, err := tryDecode(src, a)
			if err == nil {
				return text, i, a, nil
			}
			if firstErr == nil {
				firstErr = err
			}
		}
	}
	return "", 0, attempt{}, fmt.Errorf("%w: %v", ErrNoQRCode, firstErr)
}

type attempt struct {
	global     bool // GlobalHistogramBinarizer instead of HybridBinarizer
	pure       bool // PURE_BARCODE: the image is the symbol and its quiet zone only
	allFinders bool // decodeAllFinders instead of gozxing's own detector
}

var attempts = []attempt{{}, {pure: true}, {global: true}, {allFinders: true}, {allFinders: true, global: true}}

func tryDecode(src gozxing.LuminanceSource, a attempt) (text string, err error) {
	// gozxing is a port of Java code and can panic on malformed geometry; treat a
	// panic in one attempt as that attempt failing.
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("gozxing panic: %v", r)
		}
	}()
	var bin gozxing.Binarizer
	if a.global {
		bin = gozxing.NewGlobalHistgramBinarizer(src)
	} else {
		bin = gozxing.NewHybridBinarizer(src)
	}
	bmp, err := gozxing.NewBinaryBitmap(bin)
	if err != nil {
		return "", err
	}
	hints := map[gozxing.DecodeHintType]any{gozxing.DecodeHintType_TRY_HARDER: true}
	if a.allFinders {
		bits, err := bmp.GetBlackMatrix()
		if err != nil {
			return "", err
		}
		return decodeAllFinders(bits, hints)
	}
	if a.pure {
		hints[gozxing.DecodeHintType_PURE_BARCODE] = true
	}
	res, err := gzqr.NewQRCodeReader().Decode(bmp, hints)
	if err != nil {
		return "", err
	}
	return res.GetText(), nil
}

// variants builds, only when needed, the image as is and on a wide white border
// (for codes cropped to their edge, which gozxing's binarizer and detector need).
type variants struct {
	orig, padded *image.Gray
}

const numVariants = 2

func (v *variants) get(i int) *image.Gray {
	if i == 0 {
		return v.orig
	}
	if v.padded == nil {
		w, h := v.orig.Rect.Dx(), v.orig.Rect.Dy()
		v.padded = pad(v.orig, max(max(w, h)/8, 8))
	}
	return v.padded
}

// toGray converts to 8-bit luminance, compositing transparency onto white (many
// specimens are black modules on a transparent background).
func toGray(img image.Image) *image.Gray {
	b := img.Bounds()
	switch m := img.(type) {
	case *image.Gray:
		if b.Min == (image.Point{}) {
			return m
		}
	case *image.YCbCr:
		g := image.NewGray(image.Rect(0, 0, b.Dx(), b.Dy()))
		for y := 0; y < b.Dy(); y++ {
			for x := 0; x < b.Dx(); x++ {
				g.Pix[y*g.Stride+x] = m.Y[m.YOffset(b.Min.X+x, b.Min.Y+y)]
			}
		}
		return g
	}
	g := image.NewGray(image.Rect(0, 0, b.Dx(), b.Dy()))
	for y := 0; y < b.Dy(); y++ {
		for x := 0; x < b.Dx(); x++ {
			r, gr, bl, a := img.At(b.Min.X+x, b.Min.Y+y).RGBA()
			// Premultiplied colour over white: c + (1 - alpha).
			lum := (299*r + 587*gr + 114*bl) / 1000
			g.Pix[y*g.Stride+x] = uint8((lum + 0xffff - a) >> 8)
		}
	}
	return g
}

func pad(g *image.Gray, n int) *image.Gray {
	w, h := g.Rect.Dx(), g.Rect.Dy()
	out := image.NewGray(image.Rect(0, 0, w+2*n, h+2*n))
	for i := range out.Pix {
		out.Pix[i] = 0xFF
	}
	for y := 0; y < h; y++ {
		copy(out.Pix[(y+n)*out.Stride+n:], g.Pix[y*g.Stride:y*g.Stride+w])
	}
	return out
}
