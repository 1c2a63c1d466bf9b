// Package trust creates the CSCA and DSC certificates of the DCC public-key
// infrastructure, computes key identifiers, checks a DSC's extended key usage
// against the certificate type it signed, and reads and writes trust lists
// (the JSON of the public contract and PEM bundles).
package trust

import (
	"crypto"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"fmt"
	"math/big"
	"time"
)

// KIDLen is the length of a DCC key identifier.
const KIDLen = 8

// KID returns the DCC key identifier of a DSC: the first 8 bytes of SHA-256 over
// its DER encoding (hcert spec Appendix A.1). Re-issuing a DSC for the same key
// changes its KID.
func KID(der []byte) []byte {
	sum := sha256.Sum256(der)
	return sum[:KIDLen:KIDLen]
}

// ErrCertificate is wrapped when certificate creation is refused.
var ErrCertificate = errors.New("trust: cannot create certificate")

// CSCAOptions describe a country signing CA.
type CSCAOptions struct {
	// Subject of the CSCA; Country defaults to "VN" and CommonName to "VN DGC CSCA 1".
	Subject pkix.Name
	// NotBefore defaults to now; NotAfter defaults to NotBefore + 4 years
	// (governance guide recommendation).
	NotBefore, NotAfter time.Time
	// SerialNumber defaults to a random 127-bit number.
	SerialNumber *big.Int
}

// CreateCSCA creates a self-signed CSCA certificate for key: C=VN,
// keyCertSign and cRLSign, BasicConstraints CA with path length 0, and a
// subject key identifier.
func CreateCSCA(key crypto.Signer, opt CSCAOptions) (*x509.Certificate, error) {
	if key == nil {
		return nil, fmt.Errorf("%w: CSCA key is nil", ErrCertificate)
	}
	subject := withDefaults(opt.Subject, "VN DGC CSCA 1")
	nb, na, err := validity(opt.NotBefore, opt.NotAfter, 4)
	if err != nil {
		return nil, err
	}
	serial, err := serialOrRandom(opt.SerialNumber)
	if err != nil {
		return nil, err
	}
	ski, err := subjectKeyID(key.Public())
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               subject,
		NotBefore:             nb,
		NotAfter:              na,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLen:            0,
		MaxPathLenZero:        true,
		SubjectKeyId:          ski,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, fmt.Errorf("%w: CSCA: %w", ErrCertificate, err)
	}
	return x509.ParseCertificate(der)
}

// DSCOptions describe a document signer certificate.
type DSCOptions struct {
	// Subject of the DSC; Country defaults to "VN" and CommonName to "VN DGC DSC".
	Subject pkix.Name
	// NotBefore defaults to now; NotAfter defaults to NotBefore + 2 years. The
	// DSC must lie within the CSCA's validity, and must outlive every exp it signs.
	NotBefore, NotAfter time.Time
	// SerialNumber defaults to a random 127-bit number.
	SerialNumber *big.Int
	// Types lists the certificate types the DSC may sign; each adds both of its
	// EKU OIDs. Nil means Vaccination only.
	Types []CertType
	// OmitEKU leaves out the extended key usage extension: the DSC may then sign
	// every type. Types must be empty.
	OmitEKU bool
	// CRLDistributionPoints are URLs; the governance guide says SHOULD be present.
	CRLDistributionPoints []string
}

// CreateDSC certifies pub (for instance a KMS key's public key) as a DSC issued
// by csca, signed with cscaKey: KeyUsage digitalSignature, AKI = the CSCA's SKI,
// its own SKI, and the DCC extended key usage OIDs of opt.Types in both arcs.
func CreateDSC(pub crypto.PublicKey, csca *x509.Certificate, cscaKey crypto.Signer, opt DSCOptions) (*x509.Certificate, error) {
	if pub == nil || csca == nil || cscaKey == nil {
		return nil, fmt.Errorf("%w: DSC needs a public key, the CSCA and its key", ErrCertificate)
	}
	if !csca.IsCA || csca.KeyUsage&x509.KeyUsageCertSign == 0 {
		return nil, fmt.Errorf("%w: issuer %q is not a CA with keyCertSign", ErrCertificate, csca.Subject.CommonName)
	}
	subject := withDefaults(opt.Subject, "VN DGC DSC")
	nb, na, err := validity(opt.NotBefore, opt.NotAfter, 2)
	if err != nil {
		return nil, err
	}
	if nb.Before(csca.NotBefore) || na.After(csca.NotAfter) {
		return nil, fmt.Errorf("%w: DSC validity %s..%s is outside the CSCA's %s..%s", ErrCertificate,
			nb.Format(time.RFC3339), na.Format(time.RFC3339),
			csca.NotBefore.Format(time.RFC3339), csca.NotAfter.Format(time.RFC3339))
	}
	serial, err := serialOrRandom(opt.SerialNumber)
	if err != nil {
		return nil, err
	}
	ski, err := subjectKeyID(pub)
	if err != nil {
		return nil, err
	}
	types := opt.Types
	if opt.OmitEKU {
		if len(types) > 0 {
			return nil, fmt.Errorf("%w: OmitEKU with Types %v", ErrCertificate, types)
		}
	} else if types == nil {
		types = []CertType{Vaccination}
	}
	var eku []asn1.ObjectIdentifier
	for _, t := range types {
		if !t.Valid() {
			return nil, fmt.Errorf("%w: unknown certificate type %v", ErrCertificate, t)
		}
		eku = append(eku, t.OIDs()...)
	}
	if !opt.OmitEKU && len(eku) == 0 {
		return nil, fmt.Errorf("%w: empty Types; use OmitEKU for a DSC without EKU", ErrCertificate)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               subject,
		NotBefore:             nb,
		NotAfter:              na,
		KeyUsage:              x509.KeyUsageDigitalSignature,
		UnknownExtKeyUsage:    eku,
		BasicConstraintsValid: true,
		IsCA:                  false,
		SubjectKeyId:          ski,
		AuthorityKeyId:        csca.SubjectKeyId,
		CRLDistributionPoints: opt.CRLDistributionPoints,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, csca, pub, cscaKey)
	if err != nil {
		return nil, fmt.Errorf("%w: DSC: %w", ErrCertificate, err)
	}
	return x509.ParseCertificate(der)
}

// CheckIssuedBy reports whether dsc carries a valid signature of csca.
func CheckIssuedBy(dsc, csca *x509.Certificate) error {
	if err := dsc.CheckSignatureFrom(csca); err != nil {
		return fmt.Errorf("trust: DSC %q not issued by CSCA %q: %w", dsc.Subject.CommonName, csca.Subject.CommonName, err)
	}
	return nil
}

func withDefaults(n pkix.Name, cn string) pkix.Name {
	if len(n.Country) == 0 {
		n.Country = []string{"VN"}
	}
	if n.CommonName == "" {
		n.CommonName = cn
	}
	return n
}

// validity applies the defaults (now, +years) and truncates to whole seconds,
// the precision of X.509 times.
func validity(nb, na time.Time, years int) (time.Time, time.Time, error) {
	if nb.IsZero() {
		nb = time.Now()
	}
	nb = nb.UTC().Truncate(time.Second)
	if na.IsZero() {
		na = nb.AddDate(years, 0, 0)
	}
	na = na.UTC().Truncate(time.Second)
	if !na.After(nb) {
		return nb, na, fmt.Errorf("%w: NotAfter %s is not after NotBefore %s", ErrCertificate,
			na.Format(time.RFC3339), nb.Format(time.RFC3339))
	}
	return nb, na, nil
}

func serialOrRandom(s *big.Int) (*big.Int, error) {
	if s != nil {
		if s.Sign() <= 0 {
			return nil, fmt.Errorf("%w: serial number must be positive", ErrCertificate)
		}
		return s, nil
	}
	s, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, fmt.Errorf("%w: serial number: %w", ErrCertificate, err)
	}
	return s.Add(s, big.NewInt(1)), nil
}

// subjectKeyID derives a key identifier from the public key's SPKI encoding
// (truncated SHA-256, RFC 7093 method 1 style).
func subjectKeyID(pub crypto.PublicKey) ([]byte, error) {
	spki, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, fmt.Errorf("%w: public key: %w", ErrCertificate, err)
	}
	sum := sha256.Sum256(spki)
	return sum[:20], nil
}
