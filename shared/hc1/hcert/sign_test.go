package hcert

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/veraison/go-cose"

	"github.com/vaxpass/vaxpass/shared/hc1/trust"
)

func TestSignVerifyRoundTrip(t *testing.T) {
	p := newTestPKI(t, trust.DSCOptions{})
	iat := testEpoch.Add(30 * 24 * time.Hour)
	claims := p.claimsAt(t, iat)
	hc1, err := Sign(context.Background(), p.signer, claims, vietnameseDCC())
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(hc1, "HC1:") {
		t.Fatalf("no HC1 prefix: %.10q", hc1)
	}
	res, err := p.verifier(iat.Add(time.Hour)).Verify(context.Background(), hc1)
	if err != nil {
		t.Fatal(err)
	}
	if res.Issuer != "VN" || !res.IssuedAt.Equal(iat) || !res.ExpiresAt.Equal(iat.AddDate(1, 0, 0)) {
		t.Errorf("claims = %+v", res.Claims)
	}
	if res.Type != trust.Vaccination || res.Algorithm != cose.AlgorithmES256 || res.DSC != p.dsc {
		t.Errorf("type %v alg %v dsc %p", res.Type, res.Algorithm, res.DSC)
	}
	var got testDCC
	if err := json.Unmarshal(res.DCC, &got); err != nil {
		t.Fatalf("DCC JSON %s: %v", res.DCC, err)
	}
	want := vietnameseDCC()
	if gj, _ := json.Marshal(got); string(gj) != mustJSON(t, want) {
		t.Errorf("DCC round trip:\n got %s\nwant %s", gj, mustJSON(t, want))
	}
}

func mustJSON(t testing.TB, v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestSignedCOSEShape checks the wire format against go-cose, an independent
// COSE implementation: tag 18, protected {1: -7, 4: kid}, empty unprotected,
// and a signature go-cose verifies.
func TestSignedCOSEShape(t *testing.T) {
	p := newTestPKI(t, trust.DSCOptions{})
	hc1, err := Sign(context.Background(), p.signer, p.claimsAt(t, testEpoch), vietnameseDCC())
	if err != nil {
		t.Fatal(err)
	}
	text, _ := Unprefix(hc1)
	z, _ := DecodeBase45(text)
	if z[0] != 0x78 {
		t.Errorf("zlib header %x", z[:2])
	}
	raw, err := Inflate(z)
	if err != nil {
		t.Fatal(err)
	}
	if raw[0] != 0xd2 {
		t.Errorf("first byte %#x, want 0xd2 (tag 18)", raw[0])
	}
	var msg cose.Sign1Message
	if err := msg.UnmarshalCBOR(raw); err != nil {
		t.Fatalf("go-cose cannot parse our COSE: %v", err)
	}
	if alg, _ := msg.Headers.Protected.Algorithm(); alg != cose.AlgorithmES256 {
		t.Errorf("alg %v", alg)
	}
	if kid, _ := msg.Headers.Protected[cose.HeaderLabelKeyID].([]byte); string(kid) != string(trust.KID(p.dsc.Raw)) {
		t.Errorf("protected kid %x", kid)
	}
	if len(msg.Headers.Unprotected) != 0 {
		t.Errorf("unprotected header %v, want empty", msg.Headers.Unprotected)
	}
	if len(msg.Signature) != 64 {
		t.Errorf("signature %d bytes", len(msg.Signature))
	}
	v, err := cose.NewVerifier(cose.AlgorithmES256, p.dsc.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	if err := msg.Verify(nil, v); err != nil {
		t.Errorf("go-cose does not verify our signature: %v", err)
	}
	// Claim keys in deterministic order 1, 4, 6, -260.
	if want := []byte{0xa4, 0x01}; string(msg.Payload[:2]) != string(want) {
		t.Errorf("payload starts %x, want a4 01 (map(4), iss)", msg.Payload[:2])
	}
}

func TestSignJSONPayloadEqualsStruct(t *testing.T) {
	p := newTestPKI(t, trust.DSCOptions{})
	c := p.claimsAt(t, testEpoch)
	a, err := Sign(context.Background(), p.signer, c, vietnameseDCC())
	if err != nil {
		t.Fatal(err)
	}
	b, err := Sign(context.Background(), p.signer, c, JSONPayload(mustJSON(t, vietnameseDCC())))
	if err != nil {
		t.Fatal(err)
	}
	pa, pb := payloadOf(t, a), payloadOf(t, b)
	if string(pa) != string(pb) {
		t.Errorf("struct and JSON payloads encode differently:\n%x\n%x", pa, pb)
	}
}

func payloadOf(t *testing.T, hc1 string) []byte {
	t.Helper()
	text, _ := Unprefix(hc1)
	z, _ := DecodeBase45(text)
	raw, err := Inflate(z)
	if err != nil {
		t.Fatal(err)
	}
	msg, err := ParseCOSE(raw)
	if err != nil {
		t.Fatal(err)
	}
	return msg.Payload
}

type failingSigner struct {
	*SoftwareSigner
	alg cose.Algorithm
	sig []byte
	err error
}

func (f failingSigner) Algorithm() cose.Algorithm { return f.alg }
func (f failingSigner) Sign(context.Context, []byte) ([]byte, error) {
	return f.sig, f.err
}

func TestSignRejects(t *testing.T) {
	p := newTestPKI(t, trust.DSCOptions{})
	good := p.claimsAt(t, testEpoch)
	ctx := context.Background()
	tests := map[string]struct {
		signer  Signer
		claims  Claims
		payload any
	}{
		"no iat":           {p.signer, Claims{ExpiresAt: good.ExpiresAt}, vietnameseDCC()},
		"exp before iat":   {p.signer, Claims{IssuedAt: good.ExpiresAt, ExpiresAt: good.IssuedAt}, vietnameseDCC()},
		"nil payload":      {p.signer, good, nil},
		"bad JSON payload": {p.signer, good, JSONPayload(`{"ver":`)},
		"unencodable":      {p.signer, good, map[string]any{"f": func() {}}},
		"ES384 signer":     {failingSigner{p.signer, cose.AlgorithmES384, nil, nil}, good, vietnameseDCC()},
		"signer error":     {failingSigner{p.signer, cose.AlgorithmES256, nil, errors.New("kms down")}, good, vietnameseDCC()},
		"DER-sized sig":    {failingSigner{p.signer, cose.AlgorithmES256, make([]byte, 71), nil}, good, vietnameseDCC()},
		"empty PS256 sig":  {failingSigner{p.signer, cose.AlgorithmPS256, nil, nil}, good, vietnameseDCC()},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if _, err := Sign(ctx, tc.signer, tc.claims, tc.payload); !errors.Is(err, ErrSign) {
				t.Errorf("err = %v, want ErrSign", err)
			}
		})
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := Sign(cancelled, p.signer, good, vietnameseDCC()); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled context: %v", err)
	}
}

func TestExpiry(t *testing.T) {
	p := newTestPKI(t, trust.DSCOptions{}) // DSC valid 2025-01-01 .. 2027-01-01
	tests := []struct {
		name string
		iat  time.Time
		ok   bool
	}{
		{"start of DSC", testEpoch, true},
		{"exactly fits", p.dsc.NotAfter.AddDate(0, -12, 0), true},
		{"one second too late", p.dsc.NotAfter.AddDate(0, -12, 0).Add(time.Second), false},
		{"before DSC", testEpoch.Add(-time.Second), false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			exp, err := Expiry(tc.iat, 12, p.dsc)
			if tc.ok {
				if err != nil || !exp.Equal(tc.iat.AddDate(1, 0, 0)) {
					t.Errorf("Expiry = %v, %v", exp, err)
				}
				return
			}
			if !errors.Is(err, ErrDSCValidity) || !errors.Is(err, ErrSign) {
				t.Errorf("err = %v, want ErrDSCValidity and ErrSign", err)
			}
		})
	}
	if _, err := Expiry(testEpoch, 0, p.dsc); !errors.Is(err, ErrSign) {
		t.Errorf("0 months: %v", err)
	}
}

func TestNewSoftwareSignerRejects(t *testing.T) {
	p := newTestPKI(t, trust.DSCOptions{})
	if _, err := NewSoftwareSigner(nil, []byte("k")); !errors.Is(err, ErrSign) {
		t.Errorf("nil key: %v", err)
	}
	if _, err := NewSoftwareSigner(p.key, nil); !errors.Is(err, ErrSign) {
		t.Errorf("empty kid: %v", err)
	}
}
