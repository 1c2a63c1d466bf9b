package facilitysig

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"errors"
	"fmt"
	"time"
)

// A facility signs a page of people with one signature (one KMS call on AWS): the leaves
// of a Merkle tree are the people's payloads, the facility signs a head naming the tree's
// root, and each person's signature carries the head, the one signature over it and the
// person's inclusion proof, so it is still checked on its own.

// Form says what a facility signature signs. It travels with the signature: a verifier
// is told the form, it never guesses it from which fields are set.
type Form string

const (
	// FormSingle signs the person's payload itself (the first form; stored signatures of
	// it are still verified).
	FormSingle Form = ""
	// FormMerkle signs a BatchHead whose root is that of a tree holding the payload.
	FormMerkle Form = "merkle-sha256"
)

// BatchHead is what a facility signs for a batch: the tree's root with the context that
// keeps the signature from meaning anything else (the algorithm, the facility, when, and
// how many leaves).
type BatchHead struct {
	Alg        string    `cbor:"alg"`
	FacilityID string    `cbor:"facility_id"`
	Root       []byte    `cbor:"root"`
	Count      uint64    `cbor:"count"`
	SignedAt   time.Time `cbor:"signed_at"`
}

// EncodeHead returns the canonical CBOR of h, the bytes the facility signs.
func EncodeHead(h BatchHead) ([]byte, error) {
	h.SignedAt = h.SignedAt.UTC()
	b, err := encMode.Marshal(h)
	if err != nil {
		return nil, fmt.Errorf("encode facility batch head: %w", err)
	}
	return b, nil
}

// DecodeHead parses a signed head strictly: it must be exactly what EncodeHead produces.
// A person's content never decodes as a head, nor a head as content: neither can be
// passed off as the other.
func DecodeHead(b []byte) (BatchHead, error) {
	var h BatchHead
	if err := decMode.Unmarshal(b, &h); err != nil {
		return h, fmt.Errorf("decode facility batch head: %w", err)
	}
	again, err := EncodeHead(h)
	if err != nil || !bytes.Equal(again, b) {
		return h, errors.New("decode facility batch head: not canonical")
	}
	return h, nil
}

// Signed is one person's facility signature in either form. In FormMerkle, Batch is the
// signed head, Signature is over Batch and Proof places Payload in the head's tree; in
// FormSingle, Signature is over Payload and Batch and Proof are empty.
type Signed struct {
	Form      Form
	Payload   []byte
	Signature []byte
	Batch     []byte
	Proof     Proof
}

// SignBatch signs the contents, all of facilityID, with one call to s: one Signed per
// content, in order, each verifiable on its own.
func SignBatch(ctx context.Context, s Signer, facilityID string, signedAt time.Time, contents []Content) ([]Signed, error) {
	if len(contents) == 0 {
		return nil, errors.New("facility batch sign: nothing to sign")
	}
	payloads := make([][]byte, len(contents))
	leaves := make([][HashSize]byte, len(contents))
	for i, c := range contents {
		if c.FacilityID != facilityID {
			return nil, fmt.Errorf("facility batch sign: content %d is of another facility", i)
		}
		p, err := Encode(c)
		if err != nil {
			return nil, err
		}
		payloads[i], leaves[i] = p, LeafHash(p)
	}
	root, proofs, err := BuildTree(leaves)
	if err != nil {
		return nil, fmt.Errorf("facility batch sign: %w", err)
	}
	head, err := EncodeHead(BatchHead{Alg: string(FormMerkle), FacilityID: facilityID, Root: root[:],
		Count: uint64(len(contents)), SignedAt: signedAt})
	if err != nil {
		return nil, err
	}
	sig, err := s.Sign(ctx, head)
	if err != nil {
		return nil, fmt.Errorf("facility batch sign: %w", err)
	}
	out := make([]Signed, len(contents))
	for i := range contents {
		// Each person's signature owns its bytes: they travel and are stored apart.
		out[i] = Signed{Form: FormMerkle, Payload: payloads[i], Signature: bytes.Clone(sig),
			Batch: bytes.Clone(head), Proof: proofs[i]}
	}
	return out, nil
}

// Verify checks s with the facility's public key and returns the signed content. Every
// failure is ErrSignature (or wraps it).
func (s Signed) Verify(pub *ecdsa.PublicKey) (Content, error) {
	switch s.Form {
	case FormSingle:
		if len(s.Batch) != 0 || s.Proof.Index != 0 || s.Proof.TreeSize != 0 || len(s.Proof.Path) != 0 {
			return Content{}, fmt.Errorf("%w: a single signature with a batch proof", ErrSignature)
		}
		return Verify(pub, s.Payload, s.Signature)
	case FormMerkle:
		return VerifyBatch(pub, s.Payload, s.Batch, s.Signature, s.Proof)
	default:
		return Content{}, fmt.Errorf("%w: unknown form", ErrSignature)
	}
}

// VerifyBatch checks one person's part of a batch signature: the proof leads from the
// payload's leaf to the root in the signed head, the signature over the head verifies
// with the facility's key, and the head and the content name the same facility.
func VerifyBatch(pub *ecdsa.PublicKey, payload, head, signature []byte, proof Proof) (Content, error) {
	h, err := DecodeHead(head)
	if err != nil {
		return Content{}, fmt.Errorf("%w: %w", ErrSignature, err)
	}
	if h.Alg != string(FormMerkle) || len(h.Root) != HashSize || h.Count != proof.TreeSize {
		return Content{}, fmt.Errorf("%w: batch head does not fit the proof", ErrSignature)
	}
	root, err := RootFromProof(LeafHash(payload), proof)
	if err != nil {
		return Content{}, fmt.Errorf("%w: %w", ErrSignature, err)
	}
	if !bytes.Equal(root[:], h.Root) {
		return Content{}, fmt.Errorf("%w: payload is not in the signed batch", ErrSignature)
	}
	if !verifyECDSA(pub, head, signature) {
		return Content{}, ErrSignature
	}
	c, err := Decode(payload)
	if err != nil {
		return Content{}, fmt.Errorf("%w: %w", ErrSignature, err)
	}
	if c.FacilityID != h.FacilityID {
		return Content{}, fmt.Errorf("%w: content and batch name different facilities", ErrSignature)
	}
	return c, nil
}
