package hcert

import (
	"crypto/x509"
	"fmt"
	"time"
)

// Claims are the CWT claims HCERT uses besides the DCC itself.
type Claims struct {
	// Issuer is CWT iss (1): the ISO 3166-1 alpha-2 code of the issuing
	// country, e.g. "VN". Optional in the spec; empty means absent.
	Issuer string
	// IssuedAt is CWT iat (6), ExpiresAt is CWT exp (4). On issue both are
	// written as integer seconds (sub-second parts are truncated).
	IssuedAt, ExpiresAt time.Time
}

// DefaultValidityMonths is how long an issued certificate is valid.
const DefaultValidityMonths = 12

// Expiry returns iat plus months, for a certificate signed with dsc. The hcert
// spec (3.3.5, 3.3.6) says iat must not be before the DSC's notBefore and exp
// must not be after its notAfter. Expiry returns an error (wrapping
// ErrDSCValidity) rather than silently shortening the validity: a DSC too close
// to its end must be rolled over, and a holder must never get a certificate
// shorter than promised without anyone deciding so.
//
// Months are calendar months (time.AddDate): 31 Jan + 1 month is 3 Mar.
func Expiry(iat time.Time, months int, dsc *x509.Certificate) (time.Time, error) {
	if months <= 0 {
		return time.Time{}, fmt.Errorf("%w: validity of %d months", ErrSign, months)
	}
	iat = iat.Truncate(time.Second)
	exp := iat.AddDate(0, months, 0)
	if iat.Before(dsc.NotBefore) {
		return time.Time{}, fmt.Errorf("%w: %w: iat %s is before the DSC's notBefore %s",
			ErrSign, ErrDSCValidity, iat.UTC().Format(time.RFC3339), dsc.NotBefore.UTC().Format(time.RFC3339))
	}
	if exp.After(dsc.NotAfter) {
		return time.Time{}, fmt.Errorf("%w: %w: exp %s would be after the DSC's notAfter %s; roll the DSC over",
			ErrSign, ErrDSCValidity, exp.UTC().Format(time.RFC3339), dsc.NotAfter.UTC().Format(time.RFC3339))
	}
	return exp, nil
}

// NewClaims returns claims for a certificate issued at iat with the DSC dsc,
// valid DefaultValidityMonths (see Expiry for the DSC rule).
func NewClaims(issuer string, iat time.Time, dsc *x509.Certificate) (Claims, error) {
	exp, err := Expiry(iat, DefaultValidityMonths, dsc)
	if err != nil {
		return Claims{}, err
	}
	return Claims{Issuer: issuer, IssuedAt: iat.Truncate(time.Second), ExpiresAt: exp}, nil
}

func (c Claims) validate() error {
	if c.IssuedAt.IsZero() || c.ExpiresAt.IsZero() {
		return fmt.Errorf("%w: claims need both iat and exp", ErrSign)
	}
	if c.ExpiresAt.Unix() <= c.IssuedAt.Unix() {
		return fmt.Errorf("%w: exp %s is not after iat %s", ErrSign,
			c.ExpiresAt.UTC().Format(time.RFC3339), c.IssuedAt.UTC().Format(time.RFC3339))
	}
	return nil
}
