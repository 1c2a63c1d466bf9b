package trust

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"math/big"
	"testing"
	"time"
)

// rawDSC builds a self-signed certificate with exactly the given EKUs, for
// shapes CreateDSC does not produce (one arc only, non-DCC purposes).
func rawDSC(t *testing.T, unknown []asn1.ObjectIdentifier, known []x509.ExtKeyUsage) *x509.Certificate {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber:       big.NewInt(7),
		Subject:            pkix.Name{CommonName: "test DSC", Country: []string{"VN"}},
		NotBefore:          time.Now(),
		NotAfter:           time.Now().Add(time.Hour),
		UnknownExtKeyUsage: unknown,
		ExtKeyUsage:        known,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestCheckKeyUsage(t *testing.T) {
	p := newPKI(t)
	mk := func(opt DSCOptions) *x509.Certificate { c, _ := p.dsc(t, opt); return c }
	vacc := mk(DSCOptions{})
	all := mk(DSCOptions{Types: []CertType{Test, Vaccination, Recovery}})
	rec := mk(DSCOptions{Types: []CertType{Recovery}})
	none := mk(DSCOptions{OmitEKU: true})
	specArc := rawDSC(t, []asn1.ObjectIdentifier{OIDVaccination}, nil)
	altArc := rawDSC(t, []asn1.ObjectIdentifier{OIDTestAlternate}, nil)
	icao := rawDSC(t, []asn1.ObjectIdentifier{{2, 23, 136, 1, 1, 14, 2}}, nil)
	tls := rawDSC(t, nil, []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth})
	mixed := rawDSC(t, []asn1.ObjectIdentifier{OIDRecoveryAlternate}, []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth})

	tests := []struct {
		name string
		dsc  *x509.Certificate
		typ  CertType
		ok   bool
	}{
		{"vaccination DSC signs v", vacc, Vaccination, true},
		{"vaccination DSC refuses t", vacc, Test, false},
		{"vaccination DSC refuses r", vacc, Recovery, false},
		{"all-types DSC signs t", all, Test, true},
		{"all-types DSC signs r", all, Recovery, true},
		{"recovery DSC refuses v", rec, Vaccination, false},
		{"no EKU signs v", none, Vaccination, true},
		{"no EKU signs t", none, Test, true},
		{"spec arc only signs v", specArc, Vaccination, true},
		{"alternate arc only signs t", altArc, Test, true},
		{"alternate test arc refuses v", altArc, Vaccination, false},
		{"ICAO-only EKU refuses t (EU runner, IS/3)", icao, Test, false},
		{"TLS-only EKU refuses v", tls, Vaccination, false},
		{"TLS plus recovery signs r", mixed, Recovery, true},
		{"unknown type", none, 'x', false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := CheckKeyUsage(tc.dsc, tc.typ)
			if tc.ok && err != nil {
				t.Errorf("CheckKeyUsage: %v", err)
			}
			if !tc.ok && !errors.Is(err, ErrKeyUsage) {
				t.Errorf("CheckKeyUsage = %v, want ErrKeyUsage", err)
			}
		})
	}
}

func TestCertTypeString(t *testing.T) {
	for typ, want := range map[CertType]string{Test: "test", Vaccination: "vaccination", Recovery: "recovery", 'x': `CertType('x')`} {
		if got := typ.String(); got != want {
			t.Errorf("%c.String() = %q, want %q", byte(typ), got, want)
		}
	}
}
