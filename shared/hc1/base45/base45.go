// Package base45 implements the Base45 encoding of RFC 9285, the text form of an
// HC1 payload inside a QR code's alphanumeric mode.
//
// Decoding is strict: any character outside the 45-symbol alphabet, a trailing
// group of one character, a triple above 65535 or a trailing pair above 255 is
// rejected with an error wrapping ErrInvalid.
package base45

import (
	"errors"
	"fmt"
)

// Alphabet lists the 45 symbols in value order (value 0 is '0', 36 is ' ').
const Alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:"

// ErrInvalid is wrapped by every decoding error.
var ErrInvalid = errors.New("base45: invalid input")

// invalid marks bytes outside the alphabet in decodeMap.
const invalid = 0xff

// decodeMap maps an input byte to its value, or invalid.
var decodeMap = func() (m [256]byte) {
	for i := range m {
		m[i] = invalid
	}
	for i := 0; i < len(Alphabet); i++ {
		m[Alphabet[i]] = byte(i)
	}
	return m
}()

// EncodedLen returns the length of the Base45 text for n input bytes.
func EncodedLen(n int) int { return n/2*3 + n%2*2 }

// DecodedLen returns the maximum number of bytes decoded from n characters.
func DecodedLen(n int) int { return n/3*2 + n%3/2 }

// Encode returns the Base45 text of src.
func Encode(src []byte) string {
	return string(AppendEncode(make([]byte, 0, EncodedLen(len(src))), src))
}

// AppendEncode appends the Base45 text of src to dst and returns the extended slice.
func AppendEncode(dst, src []byte) []byte {
	n := len(dst)
	dst = grow(dst, EncodedLen(len(src)))
	out := dst[n:]
	i, o := 0, 0
	for ; i+1 < len(src); i, o = i+2, o+3 {
		// Division by the constant 45 compiles to a multiply, as fast as a table.
		v := uint(src[i])<<8 | uint(src[i+1])
		out[o], out[o+1], out[o+2] = Alphabet[v%45], Alphabet[v/45%45], Alphabet[v/(45*45)]
	}
	if i < len(src) {
		v := uint(src[i])
		out[o], out[o+1] = Alphabet[v%45], Alphabet[v/45]
	}
	return dst
}

// Decode returns the bytes encoded by the Base45 text s.
func Decode(s string) ([]byte, error) {
	return AppendDecode(make([]byte, 0, DecodedLen(len(s))), s)
}

// AppendDecode appends the bytes encoded by s to dst. On error dst is returned
// unchanged in length (its spare capacity may have been written).
func AppendDecode(dst []byte, s string) ([]byte, error) {
	if len(s)%3 == 1 {
		return dst, fmt.Errorf("%w: length %d leaves a trailing single character", ErrInvalid, len(s))
	}
	n := len(dst)
	dst = grow(dst, DecodedLen(len(s)))
	out := dst[n:]
	i, o := 0, 0
	for ; i+2 < len(s); i, o = i+3, o+2 {
		c, d, e := decodeMap[s[i]], decodeMap[s[i+1]], decodeMap[s[i+2]]
		if (c|d|e)&0x80 != 0 { // valid values are < 45, invalid is 0xff
			return dst[:n], badChar(s, i, 3)
		}
		v := uint32(c) + uint32(d)*45 + uint32(e)*45*45
		if v > 0xffff {
			return dst[:n], fmt.Errorf("%w: group at offset %d has value %d > 65535", ErrInvalid, i, v)
		}
		out[o], out[o+1] = byte(v>>8), byte(v)
	}
	if i < len(s) { // two characters left
		c, d := decodeMap[s[i]], decodeMap[s[i+1]]
		if c == invalid || d == invalid {
			return dst[:n], badChar(s, i, 2)
		}
		v := uint32(c) + uint32(d)*45
		if v > 0xff {
			return dst[:n], fmt.Errorf("%w: final pair at offset %d has value %d > 255", ErrInvalid, i, v)
		}
		out[o] = byte(v)
	}
	return dst, nil
}

// badChar names the first character outside the alphabet in s[i:i+n].
func badChar(s string, i, n int) error {
	for j := i; j < i+n; j++ {
		if decodeMap[s[j]] == invalid {
			return fmt.Errorf("%w: character %q at offset %d is not in the alphabet", ErrInvalid, s[j], j)
		}
	}
	return fmt.Errorf("%w: at offset %d", ErrInvalid, i)
}

// grow extends dst by n bytes, reallocating at most once.
func grow(dst []byte, n int) []byte {
	if cap(dst)-len(dst) < n {
		nd := make([]byte, len(dst), len(dst)+n)
		copy(nd, dst)
		dst = nd
	}
	return dst[:len(dst)+n]
}
