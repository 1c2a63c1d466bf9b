package hcert

import (
	"context"
	"crypto/x509"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/vaxpass/vaxpass/shared/hc1/base45"
	"github.com/vaxpass/vaxpass/shared/hc1/trust"
)

// reencode rebuilds an HC1 string after mutating its COSE bytes.
func reencode(t *testing.T, hc1 string, mutate func(cose []byte) []byte) string {
	t.Helper()
	text, _ := Unprefix(hc1)
	z, _ := DecodeBase45(text)
	raw, err := Inflate(z)
	if err != nil {
		t.Fatal(err)
	}
	return Prefix + base45.Encode(appendZlib(nil, mutate(append([]byte(nil), raw...))))
}

func TestVerifyFailures(t *testing.T) {
	p := newTestPKI(t, trust.DSCOptions{})
	iat := testEpoch.Add(24 * time.Hour)
	c := p.claimsAt(t, iat)
	hc1, err := Sign(context.Background(), p.signer, c, vietnameseDCC())
	if err != nil {
		t.Fatal(err)
	}
	msg, err := ParseCOSE(mustInflate(t, hc1))
	if err != nil {
		t.Fatal(err)
	}
	sigAt := len(mustInflate(t, hc1)) - 1              // last signature byte
	payloadAt := len(mustInflate(t, hc1)) - 64 - 2 - 5 // a byte inside the DCC payload
	kidAt := 1 + 1 + 1 + 3 + 2                         // d2 84 4d | a2 01 26 04 48 | kid...
	if string(mustInflate(t, hc1)[kidAt:kidAt+8]) != string(msg.KID) {
		t.Fatalf("kid offset wrong")
	}
	flip := func(at int) func([]byte) []byte {
		return func(b []byte) []byte { b[at] ^= 0x01; return b }
	}
	recovery := newTestPKI(t, trust.DSCOptions{Types: []trust.CertType{trust.Recovery}})
	recHC1, err := Sign(context.Background(), recovery.signer, recovery.claimsAt(t, iat), vietnameseDCC())
	if err != nil {
		t.Fatal(err)
	}
	now := iat.Add(time.Hour)
	tests := []struct {
		name  string
		v     *Verifier
		hc1   string
		want  error
		also  error
		fresh bool // partial Result expected (signature verified)
	}{
		{"signature byte", p.verifier(now), reencode(t, hc1, flip(sigAt)), ErrSignature, nil, false},
		{"payload byte", p.verifier(now), reencode(t, hc1, flip(payloadAt)), ErrSignature, nil, false},
		{"kid byte", p.verifier(now), reencode(t, hc1, flip(kidAt)), ErrUnknownKID, nil, false},
		{"expired", p.verifier(c.ExpiresAt.Add(time.Second)), hc1, ErrExpiration, ErrExpired, true},
		{"before iat", p.verifier(iat.Add(-time.Second)), hc1, ErrExpiration, ErrNotYetValid, true},
		{"recovery DSC signs vaccination", recovery.verifier(now), recHC1, ErrKeyUsage, trust.ErrKeyUsage, true},
		{"other issuer's trust list", newTestPKI(t, trust.DSCOptions{}).verifier(now), hc1, ErrUnknownKID, nil, false},
		{"payload check", &Verifier{Trust: p.list, Now: func() time.Time { return now },
			CheckPayload: func([]byte) error { return errors.New("schema says no") }}, hc1, ErrPayload, nil, true},
		{"resolver down", &Verifier{Trust: failingResolver{}, Now: func() time.Time { return now }}, hc1, ErrTrust, nil, false},
		{"no resolver", &Verifier{}, hc1, ErrTrust, nil, false},
		{"HC2 prefix", p.verifier(now), "HC2:" + hc1[4:], ErrPrefix, nil, false},
		{"lower-case prefix", p.verifier(now), strings.ToLower(hc1[:10]) + hc1[10:], ErrPrefix, nil, false},
		{"bad base45", p.verifier(now), hc1[:20] + "a" + hc1[21:], ErrBase45, nil, false},
		{"not zlib", p.verifier(now), Prefix + base45.Encode([]byte("plain")), ErrInflate, nil, false},
		{"not COSE", p.verifier(now), Prefix + base45.Encode(appendZlib(nil, []byte{0xa0})), ErrCOSE, nil, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res, err := tc.v.Verify(context.Background(), tc.hc1)
			if !errors.Is(err, tc.want) || (tc.also != nil && !errors.Is(err, tc.also)) {
				t.Fatalf("err = %v, want %v and %v", err, tc.want, tc.also)
			}
			if tc.fresh != (res != nil) {
				t.Errorf("partial result %v, want %v", res != nil, tc.fresh)
			}
		})
	}
}

func mustInflate(t *testing.T, hc1 string) []byte {
	t.Helper()
	text, err := Unprefix(hc1)
	if err != nil {
		t.Fatal(err)
	}
	z, err := DecodeBase45(text)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := Inflate(z)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

type failingResolver struct{}

func (failingResolver) LookupKID(context.Context, []byte) ([]*x509.Certificate, error) {
	return nil, errors.New("trust store unreachable")
}

// collidingResolver returns a decoy DSC before the real one under every kid.
type collidingResolver struct{ decoy, real *x509.Certificate }

func (r collidingResolver) LookupKID(context.Context, []byte) ([]*x509.Certificate, error) {
	return []*x509.Certificate{r.decoy, r.real}, nil
}

func TestVerifyTriesEveryDSCWithTheKID(t *testing.T) {
	p := newTestPKI(t, trust.DSCOptions{})
	other := newTestPKI(t, trust.DSCOptions{})
	iat := testEpoch.Add(time.Hour)
	hc1, err := Sign(context.Background(), p.signer, p.claimsAt(t, iat), vietnameseDCC())
	if err != nil {
		t.Fatal(err)
	}
	v := &Verifier{Trust: collidingResolver{decoy: other.dsc, real: p.dsc}, Now: func() time.Time { return iat }}
	res, err := v.Verify(context.Background(), hc1)
	if err != nil {
		t.Fatal(err)
	}
	if res.DSC != p.dsc {
		t.Error("verified with the decoy")
	}
	v.Trust = collidingResolver{decoy: other.dsc, real: other.dsc}
	if _, err := v.Verify(context.Background(), hc1); !errors.Is(err, ErrSignature) {
		t.Errorf("all candidates wrong: %v, want ErrSignature", err)
	}
}

func TestCheckExpirationDSCWindow(t *testing.T) {
	p := newTestPKI(t, trust.DSCOptions{}) // 2025-01-01 .. 2027-01-01
	in := Claims{IssuedAt: testEpoch.Add(time.Hour), ExpiresAt: testEpoch.AddDate(1, 0, 0)}
	now := testEpoch.Add(2 * time.Hour)
	tests := []struct {
		name string
		c    Claims
		now  time.Time
		want error
	}{
		{"inside", in, now, nil},
		{"at iat", in, in.IssuedAt, nil},
		{"at exp", in, in.ExpiresAt, nil},
		{"iat before DSC", Claims{IssuedAt: testEpoch.Add(-time.Second), ExpiresAt: in.ExpiresAt}, now, ErrDSCValidity},
		{"exp after DSC", Claims{IssuedAt: in.IssuedAt, ExpiresAt: p.dsc.NotAfter.Add(time.Second)}, now, ErrDSCValidity},
		{"after exp", in, in.ExpiresAt.Add(time.Nanosecond), ErrExpired},
		{"before iat", in, in.IssuedAt.Add(-time.Nanosecond), ErrNotYetValid},
	}
	for _, tc := range tests {
		err := CheckExpiration(tc.c, p.dsc, tc.now)
		if tc.want == nil && err != nil || tc.want != nil && (!errors.Is(err, tc.want) || !errors.Is(err, ErrExpiration)) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}
}

// TestTruncatedInputNeverPanics cuts a valid HC1 and its COSE at every length.
func TestTruncatedInputNeverPanics(t *testing.T) {
	p := newTestPKI(t, trust.DSCOptions{})
	iat := testEpoch.Add(time.Hour)
	hc1, err := Sign(context.Background(), p.signer, p.claimsAt(t, iat), vietnameseDCC())
	if err != nil {
		t.Fatal(err)
	}
	v := p.verifier(iat)
	for n := 0; n < len(hc1); n++ {
		if _, err := v.Verify(context.Background(), hc1[:n]); err == nil {
			t.Fatalf("HC1 cut to %d characters verified", n)
		}
	}
	raw := mustInflate(t, hc1)
	for n := 0; n < len(raw); n++ {
		if _, err := ParseCOSE(raw[:n]); err == nil {
			t.Fatalf("COSE cut to %d bytes parsed", n)
		}
	}
	z := appendZlib(nil, raw)
	for n := 0; n < len(z); n++ {
		if _, err := Inflate(z[:n]); err == nil {
			t.Fatalf("zlib cut to %d bytes inflated", n)
		}
	}
	msg, _ := ParseCOSE(raw)
	cwt, _ := ParseClaims(msg.Payload)
	for n := 0; n < len(msg.Payload); n++ {
		if _, err := ParseClaims(msg.Payload[:n]); err == nil {
			t.Fatalf("payload cut to %d bytes parsed", n)
		}
	}
	for n := 0; n < len(cwt.DCC); n++ {
		if _, err := DCCToJSON(cwt.DCC[:n]); err == nil {
			t.Fatalf("DCC cut to %d bytes converted", n)
		}
	}
}
