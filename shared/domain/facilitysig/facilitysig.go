// Package facilitysig is the first of the two signatures: a vaccination site signs the
// verified doses it gave a person, as canonical CBOR, with its own P-256 key. Central
// signing verifies it and builds the certificate from the signed content only, so a
// record changed in the store after signing cannot reach a certificate. A facility signs a
// whole page of people with one signature over a Merkle root (batch.go); each person's
// part still verifies on its own.
package facilitysig

import (
	"context"
	"crypto/ecdsa"
	"crypto/sha256"
	"errors"
	"fmt"
	"math/big"
	"sort"
	"time"

	"github.com/fxamacker/cbor/v2"
)

// Dose is one signed dose.
type Dose struct {
	SourceID     string `cbor:"source_id"`
	Vaccine      string `cbor:"vaccine"`
	DoseNumber   int    `cbor:"dose_number"`
	VaccinatedOn string `cbor:"vaccinated_on"`
	Lot          string `cbor:"lot,omitempty"`
}

// Content is what a facility vouches for: who the person is (as verified against the
// registry) and which doses it gave them.
type Content struct {
	PersonID    string    `cbor:"person_id"`
	FacilityID  string    `cbor:"facility_id"`
	FullName    string    `cbor:"full_name"`
	DOB         string    `cbor:"dob"`
	Gender      string    `cbor:"gender"`
	Nationality string    `cbor:"nationality"`
	Doses       []Dose    `cbor:"doses"`
	SignedAt    time.Time `cbor:"signed_at"`
}

// Signer produces a 64-byte r||s ECDSA P-256 signature over SHA-256 of its input, the
// same contract as the certificate signer, so a KMS key can stand in.
type Signer interface {
	Sign(ctx context.Context, toBeSigned []byte) ([]byte, error)
}

var (
	encMode = mustEncMode()
	decMode = mustDecMode()
)

func mustEncMode() cbor.EncMode {
	opts := cbor.CoreDetEncOptions() // RFC 8949 core deterministic encoding
	opts.Time = cbor.TimeRFC3339Nano
	m, err := opts.EncMode()
	if err != nil {
		panic(err)
	}
	return m
}

func mustDecMode() cbor.DecMode {
	m, err := cbor.DecOptions{
		DupMapKey:        cbor.DupMapKeyEnforcedAPF,
		MaxNestedLevels:  8,
		MaxArrayElements: 1024,
		MaxMapPairs:      64,
		IndefLength:      cbor.IndefLengthForbidden,
	}.DecMode()
	if err != nil {
		panic(err)
	}
	return m
}

// ErrSignature reports a facility signature that does not verify.
var ErrSignature = errors.New("facility signature does not verify")

// Encode returns the canonical CBOR of c, doses sorted by source_id so the same content
// always gives the same bytes.
func Encode(c Content) ([]byte, error) {
	doses := append([]Dose(nil), c.Doses...)
	sort.Slice(doses, func(i, j int) bool { return doses[i].SourceID < doses[j].SourceID })
	c.Doses = doses
	c.SignedAt = c.SignedAt.UTC()
	b, err := encMode.Marshal(c)
	if err != nil {
		return nil, fmt.Errorf("encode facility signature content: %w", err)
	}
	return b, nil
}

// Decode parses signed content strictly: it must be exactly what Encode produces.
func Decode(payload []byte) (Content, error) {
	var c Content
	if err := decMode.Unmarshal(payload, &c); err != nil {
		return c, fmt.Errorf("decode facility signature content: %w", err)
	}
	again, err := Encode(c)
	if err != nil || string(again) != string(payload) {
		return c, fmt.Errorf("decode facility signature content: not canonical")
	}
	return c, nil
}

// Sign encodes c and signs it.
func Sign(ctx context.Context, s Signer, c Content) (payload, signature []byte, err error) {
	payload, err = Encode(c)
	if err != nil {
		return nil, nil, err
	}
	signature, err = s.Sign(ctx, payload)
	if err != nil {
		return nil, nil, fmt.Errorf("facility sign: %w", err)
	}
	return payload, signature, nil
}

// Verify checks a 64-byte r||s signature over payload with the facility's public key and
// returns the signed content (FormSingle; Signed.Verify takes either form).
func Verify(pub *ecdsa.PublicKey, payload, signature []byte) (Content, error) {
	if !verifyECDSA(pub, payload, signature) {
		return Content{}, ErrSignature
	}
	c, err := Decode(payload)
	if err != nil {
		return Content{}, fmt.Errorf("%w: %w", ErrSignature, err)
	}
	return c, nil
}

// verifyECDSA checks a 64-byte r||s ECDSA P-256 signature over SHA-256 of msg.
func verifyECDSA(pub *ecdsa.PublicKey, msg, signature []byte) bool {
	if pub == nil || len(signature) != 64 {
		return false
	}
	digest := sha256.Sum256(msg)
	r := new(big.Int).SetBytes(signature[:32])
	s := new(big.Int).SetBytes(signature[32:])
	return ecdsa.Verify(pub, digest[:], r, s)
}
