package hcert

import (
	"fmt"
	"math"
	"time"

	"github.com/fxamacker/cbor/v2"
)

// CWT is a parsed HCERT claims map.
type CWT struct {
	Claims
	// DCC is the CBOR of the health certificate (claim -260, key 1), a map;
	// it aliases the COSE payload.
	DCC []byte
}

// rawCWT is the claims map with the values left raw so each can be type-checked
// with an error naming the claim.
type rawCWT struct {
	Issuer    cbor.RawMessage `cbor:"1,keyasint"`
	ExpiresAt cbor.RawMessage `cbor:"4,keyasint"`
	IssuedAt  cbor.RawMessage `cbor:"6,keyasint"`
	HCert     cbor.RawMessage `cbor:"-260,keyasint"`
}

type rawHCert struct {
	DCC cbor.RawMessage `cbor:"1,keyasint"`
}

// ParseClaims parses the COSE payload as CWT claims. iss (1) must be a text
// string when present; iat (6) and exp (4) are required NumericDates, an
// integer or a float (the EU suite has floats such as 1621262460.78 from ES and
// HU); hcert (-260) must be a map holding key 1, and that value a map. Other
// claims and other -260 keys are ignored.
func ParseClaims(payload []byte) (*CWT, error) {
	if major, _, _, _, err := readHead(payload); err != nil || major != majorMap {
		return nil, fmt.Errorf("%w: payload is not a CBOR map", ErrClaims)
	}
	var raw rawCWT
	if err := decMode.Unmarshal(payload, &raw); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrClaims, err)
	}
	out := &CWT{}
	if raw.Issuer != nil {
		if err := decMode.Unmarshal(raw.Issuer, &out.Issuer); err != nil || !isText(raw.Issuer) {
			return nil, fmt.Errorf("%w: iss (1) is not a text string", ErrClaims)
		}
	}
	var err error
	if out.IssuedAt, err = numericDate(raw.IssuedAt, "iat (6)"); err != nil {
		return nil, err
	}
	if out.ExpiresAt, err = numericDate(raw.ExpiresAt, "exp (4)"); err != nil {
		return nil, err
	}
	if raw.HCert == nil {
		return nil, fmt.Errorf("%w: hcert (-260) is missing", ErrClaims)
	}
	var hc rawHCert
	if !isMajor(raw.HCert, majorMap) {
		return nil, fmt.Errorf("%w: hcert (-260) is not a map", ErrClaims)
	}
	if err := decMode.Unmarshal(raw.HCert, &hc); err != nil {
		return nil, fmt.Errorf("%w: hcert (-260): %w", ErrClaims, err)
	}
	if hc.DCC == nil {
		return nil, fmt.Errorf("%w: hcert (-260) has no eu_dcc_v1 (1)", ErrClaims)
	}
	if !isMajor(hc.DCC, majorMap) {
		return nil, fmt.Errorf("%w: eu_dcc_v1 (-260/1) is not a map", ErrClaims)
	}
	out.DCC = hc.DCC
	return out, nil
}

func isMajor(b []byte, major byte) bool { return len(b) > 0 && b[0]>>5 == major }

func isText(b []byte) bool { return isMajor(b, majorText) }

// numericDate decodes a CWT NumericDate: integer or floating-point seconds
// since the epoch (RFC 8392 2), without a tag.
func numericDate(b cbor.RawMessage, name string) (time.Time, error) {
	if b == nil {
		return time.Time{}, fmt.Errorf("%w: %s is missing", ErrClaims, name)
	}
	var v any
	if err := decMode.Unmarshal(b, &v); err != nil {
		return time.Time{}, fmt.Errorf("%w: %s: %w", ErrClaims, name, err)
	}
	// Bounds keep time.Unix and the float conversion exact and sane.
	const lim = 1 << 40
	switch x := v.(type) {
	case uint64:
		if x < lim {
			return time.Unix(int64(x), 0).UTC(), nil
		}
	case int64:
		if x > -lim {
			return time.Unix(x, 0).UTC(), nil
		}
	case float64:
		if !math.IsNaN(x) && math.Abs(x) < lim {
			// Microseconds, as Python's datetime.fromtimestamp (the EU runner)
			// rounds: a float64 near 1.6e9 holds no finer digits anyway.
			return time.UnixMicro(int64(math.Round(x * 1e6))).UTC(), nil
		}
	default:
		return time.Time{}, fmt.Errorf("%w: %s is a %T, want an integer or float NumericDate", ErrClaims, name, v)
	}
	return time.Time{}, fmt.Errorf("%w: %s value %v is out of range", ErrClaims, name, v)
}
