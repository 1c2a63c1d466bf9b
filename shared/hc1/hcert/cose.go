package hcert

import (
	"fmt"

	"github.com/fxamacker/cbor/v2"
	"github.com/veraison/go-cose"
)

// Sign1 is a parsed COSE_Sign1 message.
type Sign1 struct {
	// Protected is the protected header bstr content exactly as received; the
	// signature covers these bytes, so they are never re-encoded.
	Protected []byte
	// Algorithm is the alg (label 1) of the protected header.
	Algorithm cose.Algorithm
	// KID is the kid (label 4): from the protected header, else from the
	// unprotected header (hcert spec 3.3.3); KIDProtected says which.
	KID          []byte
	KIDProtected bool
	Payload      []byte
	Signature    []byte
}

// rawSign1 is the COSE_Sign1 array.
type rawSign1 struct {
	_           struct{} `cbor:",toarray"`
	Protected   []byte
	Unprotected cbor.RawMessage
	Payload     []byte
	Signature   []byte
}

// headerMap holds the header parameters HCERT uses. Other labels are ignored,
// except crit (2), which asks us to understand labels we may not.
type headerMap struct {
	Alg  cbor.RawMessage `cbor:"1,keyasint"`
	Crit cbor.RawMessage `cbor:"2,keyasint"`
	KID  cbor.RawMessage `cbor:"4,keyasint"`
}

// ParseCOSE parses a COSE_Sign1 message: tag 18, tag 61 (CWT) around tag 18,
// or untagged, as the EU conformance suite accepts all three. The CBOR is
// decoded strictly (see decMode). alg must be in the protected header: an
// unprotected alg is not covered by the signature (the EU QA pipeline rejects
// it too, test_qrqualitycheck.py::test_algorithm).
func ParseCOSE(data []byte) (*Sign1, error) {
	if len(data) > MaxCOSESize {
		return nil, fmt.Errorf("%w: %d bytes exceed the limit of %d", ErrCOSE, len(data), MaxCOSESize)
	}
	body, err := stripTags(data)
	if err != nil {
		return nil, err
	}
	var raw rawSign1
	if err := decMode.Unmarshal(body, &raw); err != nil {
		return nil, fmt.Errorf("%w: COSE_Sign1 array: %w", ErrCOSE, err)
	}
	if raw.Payload == nil {
		return nil, fmt.Errorf("%w: payload is nil (detached payloads are not HCERT)", ErrCOSE)
	}
	if len(raw.Signature) == 0 {
		return nil, fmt.Errorf("%w: empty signature", ErrCOSE)
	}
	var prot, unprot headerMap
	if len(raw.Protected) > 0 { // h'' stands for an empty map
		if err := decMode.Unmarshal(raw.Protected, &prot); err != nil {
			return nil, fmt.Errorf("%w: protected header: %w", ErrCOSE, err)
		}
	}
	if err := decMode.Unmarshal(raw.Unprotected, &unprot); err != nil {
		return nil, fmt.Errorf("%w: unprotected header: %w", ErrCOSE, err)
	}
	if prot.Crit != nil || unprot.Crit != nil {
		return nil, fmt.Errorf("%w: critical header parameters are not supported", ErrCOSE)
	}
	if prot.Alg == nil {
		if unprot.Alg != nil {
			return nil, fmt.Errorf("%w: alg is in the unprotected header, want it protected", ErrCOSE)
		}
		return nil, fmt.Errorf("%w: protected header has no alg", ErrCOSE)
	}
	var alg int64
	if err := decMode.Unmarshal(prot.Alg, &alg); err != nil {
		return nil, fmt.Errorf("%w: protected alg is not an integer: %w", ErrCOSE, err)
	}
	msg := &Sign1{
		Protected: raw.Protected,
		Algorithm: cose.Algorithm(alg),
		Payload:   raw.Payload,
		Signature: raw.Signature,
	}
	switch {
	case prot.KID != nil:
		msg.KIDProtected = true
		err = decMode.Unmarshal(prot.KID, &msg.KID)
	case unprot.KID != nil:
		err = decMode.Unmarshal(unprot.KID, &msg.KID)
	default:
		return nil, fmt.Errorf("%w: no kid in either header", ErrCOSE)
	}
	if err != nil || msg.KID == nil {
		return nil, fmt.Errorf("%w: kid is not a byte string", ErrCOSE)
	}
	return msg, nil
}

// stripTags removes tag 18, or tag 61 wrapping tag 18, from the message.
func stripTags(data []byte) ([]byte, error) {
	for depth := 0; ; depth++ {
		major, num, n, _, err := readHead(data)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrCOSE, err)
		}
		if major != majorTag {
			return data, nil
		}
		switch {
		case num == tagCOSESign1:
			data = data[n:]
			if major, _, _, _, err := readHead(data); err != nil || major != majorArray {
				return nil, fmt.Errorf("%w: tag 18 does not enclose an array", ErrCOSE)
			}
			return data, nil
		case num == tagCWT && depth == 0:
			data = data[n:]
			if major, num, _, _, _ := readHead(data); major != majorTag || num != tagCOSESign1 {
				return nil, fmt.Errorf("%w: CWT tag 61 does not enclose COSE_Sign1 tag 18", ErrCOSE)
			}
		default:
			return nil, fmt.Errorf("%w: unexpected tag %d, want 18 (COSE_Sign1)", ErrCOSE, num)
		}
	}
}

// SigStructure returns the ToBeSigned bytes of a COSE_Sign1 (RFC 9052 4.4):
// ["Signature1", protected as received, h” (external_aad), payload].
func (m *Sign1) SigStructure() []byte {
	return m.appendSigStructure(make([]byte, 0, len(sigStructurePrefix)+len(m.Protected)+len(m.Payload)+12))
}

func (m *Sign1) appendSigStructure(dst []byte) []byte {
	dst = append(dst, sigStructurePrefix...)
	dst = appendBytes(dst, m.Protected)
	dst = appendBytes(dst, nil)
	return appendBytes(dst, m.Payload)
}
