package hcert

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"sync"

	"github.com/fxamacker/cbor/v2"
	"github.com/veraison/go-cose"

	"github.com/vaxpass/vaxpass/shared/hc1/base45"
)

// Prefix is the HCERT context identifier of version 1.
const Prefix = "HC1:"

// tagCOSESign1 is CBOR tag 18 (COSE_Sign1), tagCWT is tag 61 (CWT).
const (
	tagCOSESign1 = 18
	tagCWT       = 61
)

// cwtClaims is the CWT claims map: iss 1, exp 4, iat 6, hcert -260 {1: DCC}.
type cwtClaims struct {
	Issuer    string     `cbor:"1,keyasint,omitempty"`
	ExpiresAt int64      `cbor:"4,keyasint"`
	IssuedAt  int64      `cbor:"6,keyasint"`
	HCert     hcertClaim `cbor:"-260,keyasint"`
}

type hcertClaim struct {
	DCC any `cbor:"1,keyasint"`
}

// sigStructurePrefix is the start of Sig_structure for COSE_Sign1:
// array(4), text(10) "Signature1".
var sigStructurePrefix = []byte{0x84, 0x6a, 'S', 'i', 'g', 'n', 'a', 't', 'u', 'r', 'e', '1'}

// scratch buffers reused across Sign calls.
type signScratch struct {
	claims           bytes.Buffer
	tbs, msg, z, out []byte
}

var signScratchPool = sync.Pool{New: func() any { return new(signScratch) }}

// Sign issues an HC1 string: payload (the DCC, a struct with json or cbor tags
// or a map with string keys; JSONPayload for JSON text) goes into the CWT
// claims under -260/1 with iss, iat and exp from c, is signed as a COSE_Sign1
// (tag 18; protected header {1: alg, 4: kid}; empty unprotected header),
// compressed with zlib, Base45-encoded and prefixed with "HC1:". CBOR is
// encoded deterministically.
//
// Sign does not check exp against the DSC's notAfter; build c with NewClaims or
// Expiry, which do.
func Sign(ctx context.Context, signer Signer, c Claims, payload any) (string, error) {
	if err := c.validate(); err != nil {
		return "", err
	}
	if payload == nil {
		return "", fmt.Errorf("%w: nil payload", ErrSign)
	}
	alg, kid := signer.Algorithm(), signer.KeyID()
	sigSize, err := signatureSize(alg)
	if err != nil {
		return "", err
	}
	if len(kid) == 0 {
		return "", fmt.Errorf("%w: signer has an empty kid", ErrSign)
	}
	s := signScratchPool.Get().(*signScratch)
	defer signScratchPool.Put(s)
	s.claims.Reset()
	err = encMode.MarshalToBuffer(cwtClaims{
		Issuer:    c.Issuer,
		ExpiresAt: c.ExpiresAt.Unix(),
		IssuedAt:  c.IssuedAt.Unix(),
		HCert:     hcertClaim{DCC: payload},
	}, &s.claims)
	if err != nil {
		return "", fmt.Errorf("%w: encode payload: %w", ErrSign, err)
	}
	claims := s.claims.Bytes()

	// Protected header {1: alg, 4: kid}, keys in deterministic order.
	var phBuf [64]byte
	ph := appendHead(phBuf[:0], majorMap, 2)
	ph = appendInt(ph, 1)
	ph = appendInt(ph, int64(alg))
	ph = appendInt(ph, 4)
	ph = appendBytes(ph, kid)

	s.tbs = append(s.tbs[:0], sigStructurePrefix...)
	s.tbs = appendBytes(s.tbs, ph)
	s.tbs = appendBytes(s.tbs, nil) // external_aad
	s.tbs = appendBytes(s.tbs, claims)

	sig, err := signer.Sign(ctx, s.tbs)
	if err != nil {
		return "", fmt.Errorf("%w: signer: %w", ErrSign, err)
	}
	if len(sig) == 0 || sigSize > 0 && len(sig) != sigSize {
		return "", fmt.Errorf("%w: %v %w: %d bytes", ErrSign, alg, errSignatureSize, len(sig))
	}

	s.msg = appendHead(s.msg[:0], majorTag, tagCOSESign1)
	s.msg = appendHead(s.msg, majorArray, 4)
	s.msg = appendBytes(s.msg, ph)
	s.msg = appendHead(s.msg, majorMap, 0)
	s.msg = appendBytes(s.msg, claims)
	s.msg = appendBytes(s.msg, sig)

	s.z = appendZlib(s.z[:0], s.msg)
	s.out = base45.AppendEncode(append(s.out[:0], Prefix...), s.z)
	return string(s.out), nil
}

// signatureSize returns the COSE signature length of alg, 0 for RSA (key-sized).
func signatureSize(alg cose.Algorithm) (int, error) {
	switch alg {
	case cose.AlgorithmES256:
		return 64, nil
	case cose.AlgorithmPS256:
		return 0, nil
	}
	return 0, fmt.Errorf("%w: unsupported algorithm %v (want ES256 or PS256)", ErrSign, alg)
}

// JSONPayload is a DCC given as JSON text. It encodes to CBOR with integers
// kept as integers and other numbers as floats, so a JSON DCC can be signed
// directly: Sign(ctx, s, c, JSONPayload(doc)).
type JSONPayload []byte

// MarshalCBOR implements cbor.Marshaler.
func (p JSONPayload) MarshalCBOR() ([]byte, error) {
	v, err := jsonToValue(p)
	if err != nil {
		return nil, err
	}
	return encMode.Marshal(v)
}

var _ cbor.Marshaler = JSONPayload(nil)

// jsonToValue decodes JSON with numbers as int64 where exact, else float64.
func jsonToValue(doc []byte) (any, error) {
	var v any
	dec := json.NewDecoder(bytes.NewReader(doc))
	dec.UseNumber()
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("DCC JSON: %w", err)
	}
	if dec.More() {
		return nil, fmt.Errorf("DCC JSON: data after the value")
	}
	return convertNumbers(v)
}

func convertNumbers(v any) (any, error) {
	switch x := v.(type) {
	case json.Number:
		if i, err := x.Int64(); err == nil {
			return i, nil
		}
		f, err := x.Float64()
		if err != nil {
			return nil, fmt.Errorf("DCC JSON: number %s: %w", x, err)
		}
		return f, nil
	case map[string]any:
		for k, e := range x {
			c, err := convertNumbers(e)
			if err != nil {
				return nil, err
			}
			x[k] = c
		}
	case []any:
		for i, e := range x {
			c, err := convertNumbers(e)
			if err != nil {
				return nil, err
			}
			x[i] = c
		}
	}
	return v, nil
}
