package trust

import (
	"crypto/x509"
	"encoding/asn1"
	"errors"
	"fmt"
)

// CertType is the kind of DCC a DSC signs: the single key "v", "t" or "r" of the
// DCC payload.
type CertType byte

const (
	Test        CertType = 't'
	Vaccination CertType = 'v'
	Recovery    CertType = 'r'
)

func (t CertType) String() string {
	switch t {
	case Test:
		return "test"
	case Vaccination:
		return "vaccination"
	case Recovery:
		return "recovery"
	}
	return fmt.Sprintf("CertType(%q)", byte(t))
}

// Valid reports whether t is one of Test, Vaccination, Recovery.
func (t CertType) Valid() bool { return t == Test || t == Vaccination || t == Recovery }

// ErrKeyUsage is wrapped when a DSC's extended key usage does not allow the
// certificate type it signed.
var ErrKeyUsage = errors.New("trust: DSC extended key usage does not allow this certificate type")

// The DCC extended-key-usage OIDs (hcert spec Appendix A.4). Both arcs circulate:
// the spec's 1.3.6.1.4.1.1847.2021.1.x and the governance guide's
// 1.3.6.1.4.1.0.1847.2021.1.x with an extra 0; verifiers treat them as equal.
var (
	OIDTest                 = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 1847, 2021, 1, 1}
	OIDVaccination          = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 1847, 2021, 1, 2}
	OIDRecovery             = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 1847, 2021, 1, 3}
	OIDTestAlternate        = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 0, 1847, 2021, 1, 1}
	OIDVaccinationAlternate = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 0, 1847, 2021, 1, 2}
	OIDRecoveryAlternate    = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 0, 1847, 2021, 1, 3}
)

// OIDs returns both OIDs (spec arc first) that allow a DSC to sign t.
func (t CertType) OIDs() []asn1.ObjectIdentifier {
	switch t {
	case Test:
		return []asn1.ObjectIdentifier{OIDTest, OIDTestAlternate}
	case Vaccination:
		return []asn1.ObjectIdentifier{OIDVaccination, OIDVaccinationAlternate}
	case Recovery:
		return []asn1.ObjectIdentifier{OIDRecovery, OIDRecoveryAlternate}
	}
	return nil
}

// CheckKeyUsage reports whether dsc may sign a DCC of type t, with the semantics
// of the EU conformance runner (dgc-testdata tests/test_ehealth_certs.py,
// test_expected_key_usage with CERT_VALIDITY_MAP):
//   - a DSC without extended key usage may sign every type;
//   - a DSC with any extended key usage (DCC OIDs or others, such as an ICAO or
//     TLS purpose) must carry one of t's two OIDs.
//
// The second rule is stricter than "only look at DCC OIDs": the suite's IS/3
// (an RSA DSC whose only EKU is an ICAO OID) is expected to fail.
func CheckKeyUsage(dsc *x509.Certificate, t CertType) error {
	if !t.Valid() {
		return fmt.Errorf("%w: unknown certificate type %v", ErrKeyUsage, t)
	}
	if len(dsc.ExtKeyUsage) == 0 && len(dsc.UnknownExtKeyUsage) == 0 {
		return nil
	}
	for _, have := range dsc.UnknownExtKeyUsage {
		for _, want := range t.OIDs() {
			if have.Equal(want) {
				return nil
			}
		}
	}
	return fmt.Errorf("%w: DSC %q allows %s, not %v", ErrKeyUsage, dsc.Subject.CommonName, describeEKU(dsc), t)
}

// describeEKU lists a DSC's extended key usages for error messages.
func describeEKU(dsc *x509.Certificate) string {
	s := ""
	for _, o := range dsc.UnknownExtKeyUsage {
		if s != "" {
			s += ", "
		}
		s += o.String()
	}
	for _, u := range dsc.ExtKeyUsage {
		if s != "" {
			s += ", "
		}
		s += fmt.Sprintf("ExtKeyUsage(%d)", u)
	}
	return "[" + s + "]"
}
