package hcert

import (
	"bytes"
	"compress/zlib"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"

	"github.com/vaxpass/vaxpass/shared/hc1/base45"
)

// Unprefix strips the context identifier "HC1:" and returns the Base45 text.
// Other versions (HC2: ... HCZ:) and other prefixes are rejected: only version
// 1 exists. The text is not trimmed; a space is a Base45 symbol.
func Unprefix(hc1 string) (string, error) {
	if len(hc1) > MaxHC1Length {
		return "", fmt.Errorf("%w: %d characters exceed the limit of %d", ErrPrefix, len(hc1), MaxHC1Length)
	}
	if rest, ok := strings.CutPrefix(hc1, Prefix); ok {
		return rest, nil
	}
	if len(hc1) >= 4 && hc1[:2] == "HC" && hc1[3] == ':' {
		return "", fmt.Errorf("%w: unsupported version %q, want %q", ErrPrefix, hc1[:4], Prefix)
	}
	return "", fmt.Errorf("%w: missing %q", ErrPrefix, Prefix)
}

// DecodeBase45 decodes the Base45 text of an HC1 string.
func DecodeBase45(text string) ([]byte, error) {
	if len(text) > MaxHC1Length {
		return nil, fmt.Errorf("%w: %d characters exceed the limit of %d", ErrBase45, len(text), MaxHC1Length)
	}
	b, err := base45.Decode(text)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBase45, err)
	}
	return b, nil
}

// inflater is a pooled zlib reader with its input reader; zlib.Resetter (and
// flate.Resetter beneath it) reuse the decompressor's 40 KiB of state.
type inflater struct {
	src bytes.Reader
	zr  io.ReadCloser
}

var inflaterPool sync.Pool

// Inflate decompresses a zlib stream. Output beyond MaxCOSESize is an error
// found after reading at most MaxCOSESize+1 bytes, so a zlib bomb costs
// neither time nor memory. The Adler-32 checksum is checked, and bytes after
// the stream are an error.
func Inflate(z []byte) ([]byte, error) {
	return AppendInflate(nil, z)
}

// AppendInflate is Inflate appending to dst.
func AppendInflate(dst, z []byte) ([]byte, error) {
	inf, _ := inflaterPool.Get().(*inflater)
	if inf == nil {
		inf = new(inflater)
	}
	inf.src.Reset(z)
	var err error
	if inf.zr == nil {
		inf.zr, err = zlib.NewReader(&inf.src)
	} else {
		err = inf.zr.(zlib.Resetter).Reset(&inf.src, nil)
	}
	defer inflaterPool.Put(inf) // a failed Reset is undone by the next Reset
	if err != nil {
		return dst, fmt.Errorf("%w: %w", ErrInflate, err)
	}

	start := len(dst)
	// Compressed HCERTs inflate to about 1.1x; start from 2x to read in one go.
	dst = growTo(dst, start+min(2*len(z)+64, MaxCOSESize+1))
	for {
		if len(dst)-start > MaxCOSESize {
			return dst[:start], fmt.Errorf("%w: inflated data exceeds %d bytes", ErrInflate, MaxCOSESize)
		}
		if len(dst) == cap(dst) {
			dst = growTo(dst, start+min(2*(cap(dst)-start), MaxCOSESize+1))
		}
		n, rerr := inf.zr.Read(dst[len(dst):cap(dst)])
		dst = dst[:len(dst)+n]
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			if errors.Is(rerr, io.ErrUnexpectedEOF) {
				rerr = fmt.Errorf("truncated stream: %w", rerr)
			}
			return dst[:start], fmt.Errorf("%w: %w", ErrInflate, rerr)
		}
	}
	if len(dst)-start > MaxCOSESize {
		return dst[:start], fmt.Errorf("%w: inflated data exceeds %d bytes", ErrInflate, MaxCOSESize)
	}
	if rest := inf.src.Len(); rest != 0 {
		return dst[:start], fmt.Errorf("%w: %d bytes after the zlib stream", ErrInflate, rest)
	}
	return dst, nil
}

// growTo returns dst with capacity at least n (length unchanged).
func growTo(dst []byte, n int) []byte {
	if cap(dst) >= n {
		return dst
	}
	nd := make([]byte, len(dst), n)
	copy(nd, dst)
	return nd
}

// Open runs the decoding steps that come before any signature check: Unprefix,
// DecodeBase45, Inflate and ParseCOSE, each with its size limits. Verify checks the
// signature of what it returns; code that reads an HC1 from our own store (renewal, the
// passport page) uses it as it is.
func Open(hc1 string) (*Sign1, error) {
	text, err := Unprefix(hc1)
	if err != nil {
		return nil, err
	}
	z, err := DecodeBase45(text)
	if err != nil {
		return nil, err
	}
	raw, err := Inflate(z)
	if err != nil {
		return nil, err
	}
	return ParseCOSE(raw)
}

// OpenClaims is Open and ParseClaims of its payload: the claims and the DCC's CBOR, with
// no signature checked.
func OpenClaims(hc1 string) (*CWT, error) {
	msg, err := Open(hc1)
	if err != nil {
		return nil, err
	}
	return ParseClaims(msg.Payload)
}
