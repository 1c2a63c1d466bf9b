package hcert

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/vaxpass/vaxpass/shared/hc1/trust"
)

// suiteSeeds returns the PREFIX strings and decoded COSE messages of the EU
// suite, the seeds of the decoder fuzz targets.
func suiteSeeds(f *testing.F) (prefixes []string, coses [][]byte) {
	for _, s := range loadSuite(f) {
		if s.test.Prefix != nil {
			prefixes = append(prefixes, *s.test.Prefix)
		}
		if s.test.COSE != nil {
			if b, err := hex.DecodeString(*s.test.COSE); err == nil {
				coses = append(coses, b)
			}
		}
	}
	return prefixes, coses
}

// stepErrors are the sentinels Verify may return; any other error (or a
// panic) is a bug.
var stepErrors = []error{ErrPrefix, ErrBase45, ErrInflate, ErrCOSE, ErrClaims, ErrUnknownKID,
	ErrSignature, ErrExpiration, ErrKeyUsage, ErrDCC, ErrPayload, ErrTrust}

func isStepError(err error) bool {
	for _, s := range stepErrors {
		if errors.Is(err, s) {
			return true
		}
	}
	return false
}

func FuzzVerify(f *testing.F) {
	prefixes, _ := suiteSeeds(f)
	for _, p := range prefixes {
		f.Add(p)
	}
	p := newTestPKI(f, trust.DSCOptions{})
	iat := testEpoch.Add(time.Hour)
	hc1, err := Sign(context.Background(), p.signer, p.claimsAt(f, iat), vietnameseDCC())
	if err != nil {
		f.Fatal(err)
	}
	f.Add(hc1)
	v := p.verifier(iat)
	f.Fuzz(func(t *testing.T, s string) {
		res, err := v.Verify(context.Background(), s)
		if err != nil {
			if !isStepError(err) {
				t.Fatalf("error wraps no step sentinel: %v", err)
			}
			return
		}
		if !json.Valid(res.DCC) {
			t.Fatalf("verified DCC is not JSON: %s", res.DCC)
		}
	})
}

func FuzzParseCOSE(f *testing.F) {
	_, coses := suiteSeeds(f)
	for _, c := range coses {
		f.Add(c)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		msg, err := ParseCOSE(data)
		if err != nil {
			if !errors.Is(err, ErrCOSE) {
				t.Fatalf("error is not ErrCOSE: %v", err)
			}
			return
		}
		if msg.KID == nil || len(msg.Signature) == 0 || msg.Payload == nil {
			t.Fatalf("parsed message lacks kid, signature or payload")
		}
		if cwt, err := ParseClaims(msg.Payload); err == nil {
			if js, err := DCCToJSON(cwt.DCC); err == nil && !json.Valid(js) {
				t.Fatalf("DCCToJSON produced invalid JSON %s", js)
			}
		} else if !errors.Is(err, ErrClaims) {
			t.Fatalf("error is not ErrClaims: %v", err)
		}
	})
}

func FuzzInflate(f *testing.F) {
	_, coses := suiteSeeds(f)
	for _, c := range coses[:min(len(coses), 50)] {
		f.Add(appendZlib(nil, c))
	}
	f.Add(zlibBomb(1 << 20))
	f.Fuzz(func(t *testing.T, z []byte) {
		out, err := Inflate(z)
		if err != nil {
			if !errors.Is(err, ErrInflate) {
				t.Fatalf("error is not ErrInflate: %v", err)
			}
			return
		}
		if len(out) > MaxCOSESize {
			t.Fatalf("inflated %d bytes past the limit", len(out))
		}
	})
}

func FuzzDCCToJSON(f *testing.F) {
	_, coses := suiteSeeds(f)
	for _, c := range coses {
		if msg, err := ParseCOSE(c); err == nil {
			if cwt, err := ParseClaims(msg.Payload); err == nil {
				f.Add(cwt.DCC)
			}
		}
	}
	f.Fuzz(func(t *testing.T, dcc []byte) {
		js, err := DCCToJSON(dcc)
		if err != nil {
			if !errors.Is(err, ErrDCC) {
				t.Fatalf("error is not ErrDCC: %v", err)
			}
			return
		}
		if !json.Valid(js) {
			t.Fatalf("invalid JSON %s", js)
		}
	})
}
