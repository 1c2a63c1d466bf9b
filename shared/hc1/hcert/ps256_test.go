package hcert

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"testing"
	"time"

	"github.com/veraison/go-cose"

	"github.com/vaxpass/vaxpass/shared/hc1/trust"
)

// pssSigner is a PS256 Signer (RSASSA-PSS, SHA-256, salt = hash length).
type pssSigner struct {
	key *rsa.PrivateKey
	kid []byte
}

func (s pssSigner) Algorithm() cose.Algorithm { return cose.AlgorithmPS256 }
func (s pssSigner) KeyID() []byte             { return s.kid }
func (s pssSigner) Sign(_ context.Context, tbs []byte) ([]byte, error) {
	d := sha256.Sum256(tbs)
	return rsa.SignPSS(rand.Reader, s.key, crypto.SHA256, d[:], &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash})
}

func TestPS256RoundTrip(t *testing.T) {
	p := newTestPKI(t, trust.DSCOptions{})
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	dsc, err := trust.CreateDSC(&key.PublicKey, p.csca, p.cscaKey, trust.DSCOptions{NotBefore: testEpoch})
	if err != nil {
		t.Fatal(err)
	}
	list, _ := trust.NewList(dsc)
	iat := testEpoch.Add(time.Hour)
	c, _ := NewClaims("VN", iat, dsc)
	hc1, err := Sign(context.Background(), pssSigner{key, trust.KID(dsc.Raw)}, c, vietnameseDCC())
	if err != nil {
		t.Fatal(err)
	}
	v := &Verifier{Trust: list, Now: func() time.Time { return iat }}
	res, err := v.Verify(context.Background(), hc1)
	if err != nil {
		t.Fatal(err)
	}
	if res.Algorithm != cose.AlgorithmPS256 {
		t.Errorf("alg %v", res.Algorithm)
	}
	// The ES256 key of another DSC under the same kid must not verify it.
	msg, _ := ParseCOSE(mustInflate(t, hc1))
	msg.Algorithm = cose.AlgorithmES256
	if err := VerifySignature(msg, dsc); err == nil {
		t.Error("PS256 signature accepted as ES256")
	}
}
