package hcert

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"fmt"

	"github.com/veraison/go-cose"
)

// Signer signs COSE ToBeSigned bytes (the encoded Sig_structure) and returns
// the signature in COSE form: for ES256 the 64-byte r||s, never ASN.1 DER. A
// KMS-backed signer hashes the bytes, calls the KMS and converts its DER reply.
type Signer interface {
	Algorithm() cose.Algorithm
	KeyID() []byte
	Sign(ctx context.Context, toBeSigned []byte) ([]byte, error)
}

// SoftwareSigner is an ES256 Signer over an in-memory P-256 key, for tests,
// the embedded backend and development.
type SoftwareSigner struct {
	key *ecdsa.PrivateKey
	kid []byte
}

// NewSoftwareSigner returns an ES256 signer for a P-256 key; kid is the KID of
// the key's DSC (trust.KID(dsc.Raw)).
func NewSoftwareSigner(key *ecdsa.PrivateKey, kid []byte) (*SoftwareSigner, error) {
	if key == nil || key.Curve != elliptic.P256() {
		return nil, fmt.Errorf("%w: ES256 needs a P-256 key", ErrSign)
	}
	if len(kid) == 0 {
		return nil, fmt.Errorf("%w: empty kid", ErrSign)
	}
	return &SoftwareSigner{key: key, kid: append([]byte(nil), kid...)}, nil
}

func (s *SoftwareSigner) Algorithm() cose.Algorithm { return cose.AlgorithmES256 }

// KeyID returns the signer's kid (shared; do not modify).
func (s *SoftwareSigner) KeyID() []byte { return s.kid }

// Sign hashes toBeSigned with SHA-256 and returns the ECDSA signature as r||s.
func (s *SoftwareSigner) Sign(ctx context.Context, toBeSigned []byte) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	digest := sha256.Sum256(toBeSigned)
	r, ss, err := ecdsa.Sign(rand.Reader, s.key, digest[:])
	if err != nil {
		return nil, fmt.Errorf("%w: ecdsa: %w", ErrSign, err)
	}
	sig := make([]byte, 64)
	r.FillBytes(sig[:32])
	ss.FillBytes(sig[32:])
	return sig, nil
}
