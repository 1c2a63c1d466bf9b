package awskms

import (
	"crypto/elliptic"
	"errors"
	"fmt"
	"math/big"
)

// ErrDER reports a KMS signature that is not a strict DER ECDSA-Sig-Value of P-256.
var ErrDER = errors.New("awskms: malformed DER ECDSA signature")

// p256Order is the order n of P-256: r and s lie in [1, n-1].
var p256Order = elliptic.P256().Params().N

// rawSignature converts KMS's DER ECDSA-Sig-Value (SEQUENCE { INTEGER r, INTEGER s },
// RFC 3279) to COSE's 64-byte r||s (RFC 8152 §8.1: each integer left-padded to 32 bytes).
// It accepts strict DER only -- minimal lengths and integers, positive, no trailing bytes
// -- so exactly one byte string maps to each signature.
func rawSignature(der []byte) ([]byte, error) {
	// A P-256 signature is at most 2+2*(2+33) = 72 bytes: lengths are always short form.
	if len(der) < 8 || len(der) > 72 {
		return nil, fmt.Errorf("%w: %d bytes", ErrDER, len(der))
	}
	if der[0] != 0x30 {
		return nil, fmt.Errorf("%w: tag 0x%02x, want SEQUENCE", ErrDER, der[0])
	}
	if int(der[1]) != len(der)-2 {
		return nil, fmt.Errorf("%w: SEQUENCE length %d for %d content bytes", ErrDER, der[1], len(der)-2)
	}
	out := make([]byte, 64)
	rest := der[2:]
	for i, name := range []string{"r", "s"} {
		v, tail, err := readInteger(rest)
		if err != nil {
			return nil, fmt.Errorf("%w: %s: %w", ErrDER, name, err)
		}
		n := new(big.Int).SetBytes(v)
		if n.Sign() == 0 || n.Cmp(p256Order) >= 0 {
			return nil, fmt.Errorf("%w: %s is outside [1, n-1]", ErrDER, name)
		}
		copy(out[32*i+32-len(v):32*(i+1)], v)
		rest = tail
	}
	if len(rest) != 0 {
		return nil, fmt.Errorf("%w: %d bytes after s", ErrDER, len(rest))
	}
	return out, nil
}

// readInteger reads a DER INTEGER that holds a positive value of at most 32 bytes and
// returns its magnitude without the sign byte.
func readInteger(b []byte) (v, rest []byte, err error) {
	if len(b) < 3 || b[0] != 0x02 {
		return nil, nil, errors.New("not an INTEGER")
	}
	n := int(b[1])
	if n == 0 || n > 33 || n > len(b)-2 {
		return nil, nil, fmt.Errorf("INTEGER length %d", n)
	}
	v, rest = b[2:2+n], b[2+n:]
	switch {
	case v[0]&0x80 != 0:
		return nil, nil, errors.New("negative INTEGER")
	case v[0] == 0 && n == 1:
		return nil, nil, errors.New("zero")
	case v[0] == 0 && v[1]&0x80 == 0:
		return nil, nil, errors.New("INTEGER not minimally encoded")
	case v[0] == 0:
		v = v[1:] // the sign byte of a value with its top bit set
	}
	if len(v) > 32 {
		return nil, nil, errors.New("INTEGER over 32 bytes")
	}
	return v, rest, nil
}
