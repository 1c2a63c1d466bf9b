package trust

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
)

// ErrCSCA is wrapped when a CSCA read back (ParseCSCA) cannot issue DSCs.
var ErrCSCA = errors.New("trust: unusable CSCA")

// PEM block types of the CSCA files.
const (
	pemCertificate  = "CERTIFICATE"
	pemPrivateKey   = "PRIVATE KEY"    // PKCS #8
	pemECPrivateKey = "EC PRIVATE KEY" // SEC 1, read for keys made by openssl ecparam
)

// NewCSCA makes a CSCA: a new ECDSA P-256 key and its self-signed certificate
// (CreateCSCA with opt). The key is the country's root of trust: keep it offline.
func NewCSCA(opt CSCAOptions) (*x509.Certificate, *ecdsa.PrivateKey, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: CSCA key: %w", ErrCertificate, err)
	}
	cert, err := CreateCSCA(key, opt)
	if err != nil {
		return nil, nil, err
	}
	return cert, key, nil
}

// EncodeCSCA returns the certificate as one PEM CERTIFICATE block and the key as one PEM
// PKCS #8 PRIVATE KEY block, the form ParseCSCA reads.
func EncodeCSCA(cert *x509.Certificate, key *ecdsa.PrivateKey) (certPEM, keyPEM []byte, err error) {
	if cert == nil || key == nil {
		return nil, nil, fmt.Errorf("%w: nil certificate or key", ErrCSCA)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: encode key: %w", ErrCSCA, err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: pemCertificate, Bytes: cert.Raw}),
		pem.EncodeToMemory(&pem.Block{Type: pemPrivateKey, Bytes: der}), nil
}

// ParseCSCA reads a CSCA back: certPEM one CERTIFICATE block, keyPEM one PKCS #8 PRIVATE
// KEY or SEC 1 EC PRIVATE KEY block holding a P-256 key. It checks that the key is the
// certificate's and that the certificate is a CA allowed to sign certificates; not its
// validity period, which the caller compares with its own clock.
func ParseCSCA(certPEM, keyPEM []byte) (*x509.Certificate, *ecdsa.PrivateKey, error) {
	cb, err := onePEM(certPEM, "certificate")
	if err != nil {
		return nil, nil, err
	}
	if cb.Type != pemCertificate {
		return nil, nil, fmt.Errorf("%w: certificate: PEM block %q, want %s", ErrCSCA, cb.Type, pemCertificate)
	}
	cert, err := x509.ParseCertificate(cb.Bytes)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: certificate: %w", ErrCSCA, err)
	}
	kb, err := onePEM(keyPEM, "key")
	if err != nil {
		return nil, nil, err
	}
	var k any
	switch kb.Type {
	case pemPrivateKey:
		k, err = x509.ParsePKCS8PrivateKey(kb.Bytes)
	case pemECPrivateKey:
		k, err = x509.ParseECPrivateKey(kb.Bytes)
	default:
		return nil, nil, fmt.Errorf("%w: key: PEM block %q, want %s", ErrCSCA, kb.Type, pemPrivateKey)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("%w: key: %w", ErrCSCA, err)
	}
	key, ok := k.(*ecdsa.PrivateKey)
	if !ok || key.Curve != elliptic.P256() {
		return nil, nil, fmt.Errorf("%w: key: not an ECDSA P-256 key", ErrCSCA)
	}
	if !key.PublicKey.Equal(cert.PublicKey) {
		return nil, nil, fmt.Errorf("%w: the key is not the certificate's (%q)", ErrCSCA, cert.Subject.CommonName)
	}
	if !cert.IsCA || cert.KeyUsage&x509.KeyUsageCertSign == 0 {
		return nil, nil, fmt.Errorf("%w: %q is not a CA certificate with keyCertSign", ErrCSCA, cert.Subject.CommonName)
	}
	return cert, key, nil
}

// onePEM decodes data holding exactly one PEM block (and white space).
func onePEM(data []byte, what string) (*pem.Block, error) {
	block, rest := pem.Decode(data)
	if block == nil {
		return nil, fmt.Errorf("%w: %s: no PEM block", ErrCSCA, what)
	}
	if len(bytes.TrimSpace(rest)) != 0 {
		return nil, fmt.Errorf("%w: %s: data after the PEM block", ErrCSCA, what)
	}
	return block, nil
}
