package qr

import (
	"bytes"
	"compress/flate"
	"compress/zlib"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"sync"
)

// QuietZone is the light border around the symbol, in modules (ISO 18004 minimum).
const QuietZone = 4

// Module-size bounds for PNG output, in pixels per module.
const (
	DefaultModulePixels = 4
	MaxModulePixels     = 64
)

// ErrBadModulePixels reports a module size outside 1..MaxModulePixels.
var ErrBadModulePixels = errors.New("qr: module size out of range")

type pngConfig struct {
	modulePixels int
	level        Level
}

// Option adjusts PNG rendering.
type Option func(*pngConfig)

// ModulePixels sets the side of one module in pixels (default DefaultModulePixels).
// Modules are always exactly square: every module is px×px pixels.
func ModulePixels(px int) Option { return func(c *pngConfig) { c.modulePixels = px } }

// WithLevel sets the error-correction level (default LevelQ, which HCERT recommends).
func WithLevel(l Level) Option { return func(c *pngConfig) { c.level = l } }

// PNG renders text (an HC1 string, or anything in the alphanumeric set) as a QR code
// PNG: one alphanumeric segment, level Q unless told otherwise, a 4-module quiet zone,
// black on white, 1-bit greyscale.
func PNG(text string, opts ...Option) ([]byte, error) {
	cfg := pngConfig{modulePixels: DefaultModulePixels, level: LevelQ}
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.modulePixels < 1 || cfg.modulePixels > MaxModulePixels {
		return nil, fmt.Errorf("%w: %d px (want 1..%d)", ErrBadModulePixels, cfg.modulePixels, MaxModulePixels)
	}
	sym, err := Encode(text, cfg.level)
	if err != nil {
		return nil, err
	}
	return sym.PNG(cfg.modulePixels)
}

// zlibPool recycles compressors: allocating a deflate state costs far more than
// compressing a QR image, whose pixel rows are mostly "same as the row above".
var zlibPool = sync.Pool{New: func() any {
	w, _ := zlib.NewWriterLevel(nil, flate.BestSpeed)
	return w
}}

// PNG draws the symbol with a QuietZone border at px pixels per module.
//
// The image is 1-bit greyscale (0 = black). Each module row is written once with
// PNG filter None and repeated px-1 times with filter Up, whose filtered bytes are
// all zero, so deflate at BestSpeed shrinks them to almost nothing.
func (s *Symbol) PNG(px int) ([]byte, error) {
	if px < 1 || px > MaxModulePixels {
		return nil, fmt.Errorf("%w: %d px (want 1..%d)", ErrBadModulePixels, px, MaxModulePixels)
	}
	modules := s.Size + 2*QuietZone
	side := modules * px
	stride := (side + 7) / 8

	// Scanlines: filter byte + packed bits. Light (white) is 1 in greyscale.
	raw := make([]byte, (stride+1)*side)
	line := make([]byte, stride)
	o := 0
	for my := 0; my < modules; my++ {
		for i := range line {
			line[i] = 0xFF
		}
		y := my - QuietZone
		if y >= 0 && y < s.Size {
			row := s.modules[y*s.Size : (y+1)*s.Size]
			for x, dark := range row {
				if dark == 0 {
					continue
				}
				for p := (x + QuietZone) * px; p < (x+QuietZone+1)*px; p++ {
					line[p>>3] &^= 0x80 >> uint(p&7)
				}
			}
		}
		raw[o] = 0 // filter None
		copy(raw[o+1:], line)
		o += stride + 1
		for r := 1; r < px; r++ {
			raw[o] = 2 // filter Up: bytes after it are zero
			o += stride + 1
		}
	}

	var idat bytes.Buffer
	idat.Grow(len(raw)/16 + 64)
	zw := zlibPool.Get().(*zlib.Writer)
	zw.Reset(&idat)
	_, err := zw.Write(raw)
	if err == nil {
		err = zw.Close()
	}
	zlibPool.Put(zw)
	if err != nil {
		return nil, fmt.Errorf("qr: compress PNG: %w", err)
	}

	out := make([]byte, 0, 8+25+12+idat.Len()+12)
	out = append(out, "\x89PNG\r\n\x1a\n"...)
	var ihdr [13]byte
	binary.BigEndian.PutUint32(ihdr[0:], uint32(side))
	binary.BigEndian.PutUint32(ihdr[4:], uint32(side))
	ihdr[8] = 1 // bit depth
	ihdr[9] = 0 // greyscale; compression, filter, interlace all 0
	out = appendChunk(out, "IHDR", ihdr[:])
	out = appendChunk(out, "IDAT", idat.Bytes())
	out = appendChunk(out, "IEND", nil)
	return out, nil
}

func appendChunk(out []byte, typ string, data []byte) []byte {
	out = binary.BigEndian.AppendUint32(out, uint32(len(data)))
	start := len(out)
	out = append(out, typ...)
	out = append(out, data...)
	return binary.BigEndian.AppendUint32(out, crc32.ChecksumIEEE(out[start:]))
}
