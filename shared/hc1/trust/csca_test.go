package trust

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"testing"
	"time"
)

func TestNewCSCA(t *testing.T) {
	nb := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	cert, key, err := NewCSCA(CSCAOptions{Subject: pkix.Name{Country: []string{"LA"}, CommonName: "LA DGC CSCA 2"}, NotBefore: nb})
	if err != nil {
		t.Fatal(err)
	}
	if key.Curve != elliptic.P256() || !key.PublicKey.Equal(cert.PublicKey) {
		t.Error("the certificate is not of a new P-256 key")
	}
	if !cert.IsCA || cert.KeyUsage != x509.KeyUsageCertSign|x509.KeyUsageCRLSign || cert.MaxPathLen != 0 || !cert.MaxPathLenZero {
		t.Errorf("IsCA %v KeyUsage %v MaxPathLen %d", cert.IsCA, cert.KeyUsage, cert.MaxPathLen)
	}
	if err := cert.CheckSignatureFrom(cert); err != nil {
		t.Errorf("not self-signed: %v", err)
	}
	if cert.Subject.CommonName != "LA DGC CSCA 2" || len(cert.Subject.Country) != 1 || cert.Subject.Country[0] != "LA" {
		t.Errorf("subject %v", cert.Subject)
	}
	if !cert.NotBefore.Equal(nb) || !cert.NotAfter.Equal(nb.AddDate(4, 0, 0)) {
		t.Errorf("validity %s..%s, want 4 years from %s", cert.NotBefore, cert.NotAfter, nb)
	}
	// Two calls, two keys.
	_, other, err := NewCSCA(CSCAOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if other.Equal(key) {
		t.Error("NewCSCA reused a key")
	}
	// Refusals of CreateCSCA come through.
	if _, _, err := NewCSCA(CSCAOptions{NotBefore: nb, NotAfter: nb}); !errors.Is(err, ErrCertificate) {
		t.Errorf("empty validity: %v", err)
	}
}

func TestEncodeParseCSCA(t *testing.T) {
	cert, key, err := NewCSCA(CSCAOptions{})
	if err != nil {
		t.Fatal(err)
	}
	certPEM, keyPEM, err := EncodeCSCA(cert, key)
	if err != nil {
		t.Fatal(err)
	}
	c2, k2, err := ParseCSCA(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	if !c2.Equal(cert) || !k2.Equal(key) {
		t.Error("round trip changed the CSCA")
	}
	// A SEC 1 key (openssl ecparam -genkey) is read too.
	sec1, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	if _, k3, err := ParseCSCA(certPEM, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: sec1})); err != nil || !k3.Equal(key) {
		t.Errorf("SEC 1 key: %v", err)
	}
	if _, _, err := EncodeCSCA(nil, key); !errors.Is(err, ErrCSCA) {
		t.Errorf("EncodeCSCA(nil): %v", err)
	}
}

func TestParseCSCARefuses(t *testing.T) {
	cert, key, err := NewCSCA(CSCAOptions{})
	if err != nil {
		t.Fatal(err)
	}
	certPEM, keyPEM, err := EncodeCSCA(cert, key)
	if err != nil {
		t.Fatal(err)
	}
	_, otherKey, err := NewCSCA(CSCAOptions{})
	if err != nil {
		t.Fatal(err)
	}
	_, otherKeyPEM, err := EncodeCSCA(cert, otherKey)
	if err != nil {
		t.Fatal(err)
	}
	// A DSC and its key: a matching pair, but not a CA.
	dscKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	dsc, err := CreateDSC(&dscKey.PublicKey, cert, key, DSCOptions{NotBefore: cert.NotBefore, NotAfter: cert.NotAfter})
	if err != nil {
		t.Fatal(err)
	}
	dscPEM, dscKeyPEM, err := EncodeCSCA(dsc, dscKey)
	if err != nil {
		t.Fatal(err)
	}
	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	p384DER, err := x509.MarshalPKCS8PrivateKey(p384)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name          string
		certPEM, keyP []byte
	}{
		{"key of another CSCA", certPEM, otherKeyPEM},
		{"not a CA", dscPEM, dscKeyPEM},
		{"certificate and key swapped", keyPEM, certPEM},
		{"empty certificate", nil, keyPEM},
		{"empty key", certPEM, nil},
		{"two certificates", append(append([]byte{}, certPEM...), dscPEM...), keyPEM},
		{"P-384 key", certPEM, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: p384DER})},
		{"corrupt certificate", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte{0x30, 0}}), keyPEM},
		{"public key block", certPEM, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: []byte{1}})},
	} {
		if _, _, err := ParseCSCA(tc.certPEM, tc.keyP); !errors.Is(err, ErrCSCA) {
			t.Errorf("%s: %v, want ErrCSCA", tc.name, err)
		}
	}
}
