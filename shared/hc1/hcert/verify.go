package hcert

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"fmt"
	"math/big"
	"time"

	"github.com/veraison/go-cose"

	"github.com/vaxpass/vaxpass/shared/hc1/trust"
)

// VerifySignature checks that msg was signed by dsc: the message's kid must be
// the DSC's KID (first 8 bytes of SHA-256 of its DER) and the signature must
// verify with its public key under the message's algorithm, ES256 (P-256,
// 64-byte r||s) or PS256 (RSA-PSS, SHA-256, salt length 32).
func VerifySignature(msg *Sign1, dsc *x509.Certificate) error {
	if want := trust.KID(dsc.Raw); !bytes.Equal(msg.KID, want) {
		return fmt.Errorf("%w: kid %x is not the DSC's KID %x", ErrSignature, msg.KID, want)
	}
	var scratch [1024]byte // the Sig_structure of a real HCERT fits, no allocation
	digest := sha256.Sum256(msg.appendSigStructure(scratch[:0]))
	return verifyDigest(msg.Algorithm, digest[:], msg.Signature, dsc.PublicKey)
}

// verifyDigest verifies sig over the SHA-256 digest of the Sig_structure; the
// checks match go-cose's ES256 and PS256 verifiers.
func verifyDigest(alg cose.Algorithm, digest, sig []byte, pub any) error {
	switch alg {
	case cose.AlgorithmES256:
		k, ok := pub.(*ecdsa.PublicKey)
		if !ok || k.Curve != elliptic.P256() {
			return fmt.Errorf("%w: ES256 needs a P-256 key, the DSC has %s", ErrSignature, keyName(pub))
		}
		if len(sig) != 64 {
			return fmt.Errorf("%w: ES256 signature is %d bytes, want 64", ErrSignature, len(sig))
		}
		var r, s big.Int
		r.SetBytes(sig[:32])
		s.SetBytes(sig[32:])
		if !ecdsa.Verify(k, digest, &r, &s) {
			return fmt.Errorf("%w: ES256 signature does not verify", ErrSignature)
		}
		return nil
	case cose.AlgorithmPS256:
		k, ok := pub.(*rsa.PublicKey)
		if !ok {
			return fmt.Errorf("%w: PS256 needs an RSA key, the DSC has %s", ErrSignature, keyName(pub))
		}
		if k.N.BitLen() < 2048 { // RFC 8230 6.1
			return fmt.Errorf("%w: PS256 key has %d bits, want at least 2048", ErrSignature, k.N.BitLen())
		}
		opts := rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash} // RFC 8230 2
		if err := rsa.VerifyPSS(k, crypto.SHA256, digest, sig, &opts); err != nil {
			return fmt.Errorf("%w: PS256 signature does not verify", ErrSignature)
		}
		return nil
	}
	return fmt.Errorf("%w: unsupported algorithm %v", ErrSignature, alg)
}

func keyName(pub any) string {
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		return "an ECDSA " + k.Curve.Params().Name + " key"
	case *rsa.PublicKey:
		return fmt.Sprintf("an RSA-%d key", k.N.BitLen())
	}
	return fmt.Sprintf("a %T", pub)
}

// CheckExpiration checks DSC.notBefore <= iat <= now <= exp <= DSC.notAfter,
// the rule of the EU conformance runner (test_expiration_check). The error
// wraps ErrExpiration and one of ErrNotYetValid, ErrExpired, ErrDSCValidity.
func CheckExpiration(c Claims, dsc *x509.Certificate, now time.Time) error {
	const layout = time.RFC3339
	switch {
	case now.Before(c.IssuedAt):
		return fmt.Errorf("%w: %w: now %s is before iat %s", ErrExpiration, ErrNotYetValid,
			now.UTC().Format(layout), c.IssuedAt.UTC().Format(layout))
	case now.After(c.ExpiresAt):
		return fmt.Errorf("%w: %w: now %s is after exp %s", ErrExpiration, ErrExpired,
			now.UTC().Format(layout), c.ExpiresAt.UTC().Format(layout))
	case c.IssuedAt.Before(dsc.NotBefore):
		return fmt.Errorf("%w: %w: iat %s is before the DSC's notBefore %s", ErrExpiration, ErrDSCValidity,
			c.IssuedAt.UTC().Format(layout), dsc.NotBefore.UTC().Format(layout))
	case c.ExpiresAt.After(dsc.NotAfter):
		return fmt.Errorf("%w: %w: exp %s is after the DSC's notAfter %s", ErrExpiration, ErrDSCValidity,
			c.ExpiresAt.UTC().Format(layout), dsc.NotAfter.UTC().Format(layout))
	}
	return nil
}

// CheckKeyUsage checks that dsc may sign the DCC's certificate type (see
// trust.CheckKeyUsage). A DCC without exactly one of v/t/r fails with ErrDCC.
func CheckKeyUsage(dsc *x509.Certificate, dcc []byte) (trust.CertType, error) {
	typ, err := CertificateType(dcc)
	if err != nil {
		return 0, err
	}
	if err := trust.CheckKeyUsage(dsc, typ); err != nil {
		return typ, fmt.Errorf("%w: %w", ErrKeyUsage, err)
	}
	return typ, nil
}

// TrustResolver finds the DSCs for a kid. It returns every DSC with that kid
// (kids can collide) and an error only when the lookup itself failed; an
// unknown kid is an empty result. *trust.List implements it.
type TrustResolver interface {
	LookupKID(ctx context.Context, kid []byte) ([]*x509.Certificate, error)
}

// Verifier decodes and verifies HC1 strings.
type Verifier struct {
	// Trust resolves kids to DSCs. Required.
	Trust TrustResolver
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// CheckPayload, when set, checks the DCC JSON (schema, value sets); its
	// error is wrapped with ErrPayload.
	CheckPayload func(dccJSON []byte) error
}

// Result is what Verify decoded.
type Result struct {
	Claims
	Algorithm cose.Algorithm
	KID       []byte
	// DSC is the trusted certificate whose key verified the signature.
	DSC *x509.Certificate
	// Type is the DCC's certificate type (v, t or r).
	Type trust.CertType
	// DCC is the health certificate as JSON.
	DCC []byte
}

// Verify runs every step on an HC1 string: Unprefix, DecodeBase45, Inflate,
// ParseCOSE, trust lookup and VerifySignature (every DSC with the kid is
// tried), ParseClaims, CheckExpiration against Now, CheckKeyUsage, DCCToJSON
// and CheckPayload. The error wraps the sentinel of the failing step. Once the
// signature has verified, a failing later step still returns the Result
// decoded so far (authentic content, but not valid), e.g. to show when an
// expired certificate expired.
func (v *Verifier) Verify(ctx context.Context, hc1 string) (*Result, error) {
	msg, err := Open(hc1)
	if err != nil {
		return nil, err
	}
	dsc, err := v.verifyWithTrust(ctx, msg)
	if err != nil {
		return nil, err
	}
	res := &Result{Algorithm: msg.Algorithm, KID: msg.KID, DSC: dsc}
	cwt, err := ParseClaims(msg.Payload)
	if err != nil {
		return res, err
	}
	res.Claims = cwt.Claims
	now := time.Now
	if v.Now != nil {
		now = v.Now
	}
	if err := CheckExpiration(cwt.Claims, dsc, now()); err != nil {
		return res, err
	}
	if res.Type, err = CheckKeyUsage(dsc, cwt.DCC); err != nil {
		return res, err
	}
	if res.DCC, err = DCCToJSON(cwt.DCC); err != nil {
		return res, err
	}
	if v.CheckPayload != nil {
		if err := v.CheckPayload(res.DCC); err != nil {
			return res, fmt.Errorf("%w: %w", ErrPayload, err)
		}
	}
	return res, nil
}

// verifyWithTrust tries every DSC registered under the message's kid.
func (v *Verifier) verifyWithTrust(ctx context.Context, msg *Sign1) (*x509.Certificate, error) {
	if v.Trust == nil {
		return nil, fmt.Errorf("%w: no trust resolver configured", ErrTrust)
	}
	dscs, err := v.Trust.LookupKID(ctx, msg.KID)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrTrust, err)
	}
	if len(dscs) == 0 {
		return nil, fmt.Errorf("%w: %x", ErrUnknownKID, msg.KID)
	}
	var errs []error
	for _, dsc := range dscs {
		err := VerifySignature(msg, dsc)
		if err == nil {
			return dsc, nil
		}
		errs = append(errs, err)
	}
	if len(errs) == 1 {
		return nil, errs[0]
	}
	return nil, fmt.Errorf("%w: none of %d DSCs with kid %x verifies: %w", ErrSignature, len(dscs), msg.KID, errors.Join(errs...))
}
