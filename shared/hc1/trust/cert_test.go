package trust

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"testing"
	"time"
)

// pki is a CSCA and its key for tests.
type pki struct {
	csca *x509.Certificate
	key  *ecdsa.PrivateKey
}

func newPKI(t testing.TB) pki {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	nb := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	csca, err := CreateCSCA(key, CSCAOptions{NotBefore: nb})
	if err != nil {
		t.Fatal(err)
	}
	return pki{csca, key}
}

func (p pki) dsc(t testing.TB, opt DSCOptions) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if opt.NotBefore.IsZero() {
		opt.NotBefore = p.csca.NotBefore
	}
	dsc, err := CreateDSC(&key.PublicKey, p.csca, p.key, opt)
	if err != nil {
		t.Fatal(err)
	}
	return dsc, key
}

func TestCreateCSCA(t *testing.T) {
	p := newPKI(t)
	c := p.csca
	if got := c.Subject.Country; len(got) != 1 || got[0] != "VN" {
		t.Errorf("Country = %v, want [VN]", got)
	}
	if !c.IsCA || !c.BasicConstraintsValid || c.MaxPathLen != 0 || !c.MaxPathLenZero {
		t.Errorf("BasicConstraints: IsCA=%v valid=%v MaxPathLen=%d zero=%v, want CA pathLen 0",
			c.IsCA, c.BasicConstraintsValid, c.MaxPathLen, c.MaxPathLenZero)
	}
	if want := x509.KeyUsageCertSign | x509.KeyUsageCRLSign; c.KeyUsage != want {
		t.Errorf("KeyUsage = %b, want %b", c.KeyUsage, want)
	}
	if len(c.SubjectKeyId) == 0 {
		t.Error("no SKI")
	}
	if err := c.CheckSignatureFrom(c); err != nil {
		t.Errorf("not self-signed: %v", err)
	}
	if want := c.NotBefore.AddDate(4, 0, 0); !c.NotAfter.Equal(want) {
		t.Errorf("NotAfter = %v, want %v (4 years)", c.NotAfter, want)
	}
}

func TestCreateDSC(t *testing.T) {
	p := newPKI(t)
	dsc, _ := p.dsc(t, DSCOptions{CRLDistributionPoints: []string{"http://crl.example.vn/csca.crl"}})
	if dsc.KeyUsage != x509.KeyUsageDigitalSignature {
		t.Errorf("KeyUsage = %b, want digitalSignature", dsc.KeyUsage)
	}
	if dsc.IsCA {
		t.Error("DSC is a CA")
	}
	if !bytes.Equal(dsc.AuthorityKeyId, p.csca.SubjectKeyId) {
		t.Errorf("AKI %x != CSCA SKI %x", dsc.AuthorityKeyId, p.csca.SubjectKeyId)
	}
	if len(dsc.SubjectKeyId) == 0 || bytes.Equal(dsc.SubjectKeyId, p.csca.SubjectKeyId) {
		t.Errorf("DSC SKI %x missing or equal to the CSCA's", dsc.SubjectKeyId)
	}
	if len(dsc.UnknownExtKeyUsage) != 2 || !dsc.UnknownExtKeyUsage[0].Equal(OIDVaccination) ||
		!dsc.UnknownExtKeyUsage[1].Equal(OIDVaccinationAlternate) {
		t.Errorf("EKU = %v, want both vaccination OIDs", dsc.UnknownExtKeyUsage)
	}
	if want := dsc.NotBefore.AddDate(2, 0, 0); !dsc.NotAfter.Equal(want) {
		t.Errorf("NotAfter = %v, want %v (2 years)", dsc.NotAfter, want)
	}
	if err := CheckIssuedBy(dsc, p.csca); err != nil {
		t.Error(err)
	}
	other := newPKI(t)
	if err := CheckIssuedBy(dsc, other.csca); err == nil {
		t.Error("CheckIssuedBy accepted a foreign CSCA")
	}
	if len(dsc.CRLDistributionPoints) != 1 {
		t.Errorf("CRL DP = %v", dsc.CRLDistributionPoints)
	}
}

func TestCreateDSCOverRSAAndConfigurableValidity(t *testing.T) {
	p := newPKI(t)
	rk, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	nb := p.csca.NotBefore.Add(time.Hour)
	dsc, err := CreateDSC(&rk.PublicKey, p.csca, p.key, DSCOptions{NotBefore: nb, NotAfter: nb.AddDate(1, 0, 0)})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := dsc.PublicKey.(*rsa.PublicKey); !ok {
		t.Errorf("public key %T, want RSA", dsc.PublicKey)
	}
	if !dsc.NotAfter.Equal(nb.AddDate(1, 0, 0)) {
		t.Errorf("NotAfter = %v", dsc.NotAfter)
	}
}

func TestCreateDSCRejects(t *testing.T) {
	p := newPKI(t)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	dscCert, _ := p.dsc(t, DSCOptions{})
	for name, tc := range map[string]struct {
		issuer *x509.Certificate
		opt    DSCOptions
	}{
		"outlives CSCA":   {p.csca, DSCOptions{NotBefore: p.csca.NotBefore, NotAfter: p.csca.NotAfter.Add(time.Second)}},
		"before CSCA":     {p.csca, DSCOptions{NotBefore: p.csca.NotBefore.Add(-time.Hour)}},
		"empty validity":  {p.csca, DSCOptions{NotBefore: p.csca.NotBefore, NotAfter: p.csca.NotBefore}},
		"bad type":        {p.csca, DSCOptions{NotBefore: p.csca.NotBefore, Types: []CertType{'x'}}},
		"empty types":     {p.csca, DSCOptions{NotBefore: p.csca.NotBefore, Types: []CertType{}}},
		"omit and types":  {p.csca, DSCOptions{NotBefore: p.csca.NotBefore, OmitEKU: true, Types: []CertType{Test}}},
		"issuer not a CA": {dscCert, DSCOptions{NotBefore: p.csca.NotBefore}},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := CreateDSC(&key.PublicKey, tc.issuer, p.key, tc.opt)
			if !errors.Is(err, ErrCertificate) {
				t.Errorf("err = %v, want ErrCertificate", err)
			}
		})
	}
}

func TestKID(t *testing.T) {
	p := newPKI(t)
	dsc, _ := p.dsc(t, DSCOptions{})
	sum := sha256.Sum256(dsc.Raw)
	if got := KID(dsc.Raw); !bytes.Equal(got, sum[:8]) || len(got) != KIDLen {
		t.Errorf("KID = %x, want %x", got, sum[:8])
	}
	// Re-issuing for the same key changes the KID.
	again, err := CreateDSC(dsc.PublicKey, p.csca, p.key, DSCOptions{NotBefore: dsc.NotBefore})
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(KID(again.Raw), KID(dsc.Raw)) {
		t.Error("re-issued DSC has the same KID")
	}
}
