// Package revocation is the per-certificate revocation list in the EU DCC style: a
// revoked certificate is listed by hashes of its UVCI, never by the UVCI itself (a UVCI is
// personal data), and the list is published beside the trust list for verifiers.
//
// Hashes (EU DCC revocation, as computed by the Corona-Warn-App; see dcc/notes.md §1.14):
//   - UCI: the first 16 bytes of SHA-256 over the UTF-8 bytes of the DCC's ci.
//   - COUNTRYCODEUCI: the first 16 bytes of SHA-256 over iss (CWT claim 1) followed by ci.
//   - SIGNATURE: the first 16 bytes of SHA-256 over the signature's first half for ES256
//     (r only: s is malleable). It revokes one signed copy; a renewal re-signs the same
//     certificate with the same UVCI, so this list uses the UVCI hashes, which revoke every
//     renewal at once.
package revocation

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
)

// HashType names a revocation hash type as the EU gateway does.
type HashType string

// Hash types and their one-byte codes (CWA RevocationHashType).
const (
	TypeSignature      HashType = "SIGNATURE"
	TypeUCI            HashType = "UCI"
	TypeCountryCodeUCI HashType = "COUNTRYCODEUCI"
)

// Code returns the type's byte code: 0x0a SIGNATURE, 0x0b UCI, 0x0c COUNTRYCODEUCI.
func (t HashType) Code() (byte, bool) {
	switch t {
	case TypeSignature:
		return 0x0a, true
	case TypeUCI:
		return 0x0b, true
	case TypeCountryCodeUCI:
		return 0x0c, true
	}
	return 0, false
}

// HashSize is the length of every revocation hash: SHA-256 truncated to 16 bytes.
const HashSize = 16

// Hash is a truncated SHA-256 revocation hash.
type Hash [HashSize]byte

// String is the lower-case hex form used in the published list.
func (h Hash) String() string { return hex.EncodeToString(h[:]) }

// ErrMalformedHash: a hash in a list is not 16 bytes of hex.
var ErrMalformedHash = errors.New("malformed revocation hash")

// ParseHash reads a 32-character hex hash (either case).
func ParseHash(s string) (Hash, error) {
	var h Hash
	if len(s) != 2*HashSize {
		return h, fmt.Errorf("%w: %d characters, want %d", ErrMalformedHash, len(s), 2*HashSize)
	}
	if _, err := hex.Decode(h[:], []byte(s)); err != nil {
		return h, fmt.Errorf("%w: %w", ErrMalformedHash, err)
	}
	return h, nil
}

func truncated(parts ...[]byte) Hash {
	d := sha256.New()
	for _, p := range parts {
		d.Write(p)
	}
	var h Hash
	copy(h[:], d.Sum(nil))
	return h
}

// UCI is the UCI hash of a certificate identifier: SHA-256(UTF-8 ci)[:16]. ci is hashed
// exactly as the certificate carries it (no case folding).
func UCI(ci string) Hash { return truncated([]byte(ci)) }

// CountryCodeUCI is the COUNTRYCODEUCI hash: SHA-256(iss || ci)[:16], iss being the CWT
// issuer claim ("VN" for our certificates).
func CountryCodeUCI(issuer, ci string) Hash { return truncated([]byte(issuer), []byte(ci)) }

// Signature is the SIGNATURE hash of a COSE signature: for ES256 (64 bytes r||s) SHA-256
// over r only, otherwise (PS256) over the whole signature.
func Signature(sig []byte, es256 bool) Hash {
	if es256 && len(sig) == 64 {
		return truncated(sig[:32])
	}
	return truncated(sig)
}

// MarshalText encodes the hash as hex (JSON of stored entries).
func (h Hash) MarshalText() ([]byte, error) { return []byte(h.String()), nil }

// UnmarshalText decodes a hex hash.
func (h *Hash) UnmarshalText(b []byte) error {
	v, err := ParseHash(string(b))
	if err != nil {
		return err
	}
	*h = v
	return nil
}
