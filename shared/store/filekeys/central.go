package filekeys

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"time"

	"github.com/vaxpass/vaxpass/shared/hc1/hcert"
	"github.com/vaxpass/vaxpass/shared/hc1/trust"
)

// Files of the central key material: the CSCA and DSC in the keys directory, the trust
// list in the data directory.
const (
	CSCACertFile      = "csca.pem"
	CSCAKeyFile       = "csca-key.pem"
	DSCCertFile       = "dsc.pem"
	DSCKeyFile        = "dsc-key.pem"
	TrustListPEMFile  = "trustlist.pem"
	TrustListJSONFile = "trustlist.json"
)

// Validity of the certificates EnsureCentral creates. The local CSCA lives long so that
// it can issue every DSC of a long-running installation; a DSC is replaced once it would
// no longer cover a certificate issued now (see DSCMinRemaining).
const (
	CSCAValidityYears = 10
	DSCValidityYears  = 2
)

// DSCMinRemaining is how long a DSC must still be valid for EnsureCentral to keep using
// it: a certificate's 12 months plus a month of margin. A DSC closer to its end is
// archived (it stays on the trust list until it expires) and a new one created.
func DSCMinRemaining(now time.Time) time.Time { return now.AddDate(1, 1, 0) }

// backdate is how far before now new certificates start, for clocks slightly behind.
const backdate = time.Hour

// ErrCentral is wrapped when the central key material is inconsistent (a certificate
// without its key, a DSC not issued by the CSCA, a CSCA too close to its end).
var ErrCentral = errors.New("filekeys: central key material")

// Central is the central key material of the embedded backend.
type Central struct {
	CSCA *x509.Certificate
	// CSCAKey can certify further DSCs (for instance over a KMS key's public key).
	CSCAKey *ecdsa.PrivateKey
	// DSC is the current document signer certificate; Signer signs with its key (ES256,
	// kid = trust.KID of the DSC).
	DSC    *x509.Certificate
	Signer *hcert.SoftwareSigner
	// Previous are earlier DSCs, archived by a rotation, still valid at the time given
	// to EnsureCentral (certificates they signed may still be live).
	Previous []*x509.Certificate
	// TrustList holds DSC and Previous; it is also written to <data>/trustlist.pem and
	// <data>/trustlist.json.
	TrustList *trust.List
}

var archivedDSC = regexp.MustCompile(`^dsc-[0-9a-f]{16}\.pem$`)

// EnsureCentral loads the central key material of dataDir, creating what is missing: the
// CSCA key and certificate, the DSC key and certificate (a new DSC when the current one
// would not cover a certificate issued at now), and the trust list files. Keys are never
// overwritten; a rotated DSC's files are kept as keys/dsc-<kid hex>.pem and
// keys/dsc-<kid hex>-key.pem.
func EnsureCentral(dataDir string, now time.Time) (*Central, error) {
	dir := filepath.Join(dataDir, KeysDir)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("filekeys: create %s: %w", dir, err)
	}
	c := &Central{}
	var err error
	if c.CSCA, c.CSCAKey, err = ensureCSCA(dir, now); err != nil {
		return nil, err
	}
	var dscKey *ecdsa.PrivateKey
	for attempt := 0; ; attempt++ {
		if c.DSC, dscKey, err = ensureDSC(dir, c.CSCA, c.CSCAKey, now); err != nil {
			return nil, err
		}
		if !c.DSC.NotAfter.Before(DSCMinRemaining(now)) {
			break
		}
		if attempt > 0 {
			return nil, fmt.Errorf("%w: a new DSC would end %s, before %s", ErrCentral, c.DSC.NotAfter.Format(time.RFC3339), DSCMinRemaining(now).Format(time.RFC3339))
		}
		if err := archiveDSC(dir, c.DSC); err != nil {
			return nil, err
		}
	}
	if c.Signer, err = hcert.NewSoftwareSigner(dscKey, trust.KID(c.DSC.Raw)); err != nil {
		return nil, fmt.Errorf("filekeys: DSC signer: %w", err)
	}
	if c.Previous, err = loadPrevious(dir, c.CSCA, c.DSC, now); err != nil {
		return nil, err
	}
	if c.TrustList, err = trust.NewList(append([]*x509.Certificate{c.DSC}, c.Previous...)...); err != nil {
		return nil, fmt.Errorf("filekeys: trust list: %w", err)
	}
	if err := writeTrustList(dataDir, c.TrustList); err != nil {
		return nil, err
	}
	return c, nil
}

// ensureCSCA loads or creates the CSCA.
func ensureCSCA(dir string, now time.Time) (*x509.Certificate, *ecdsa.PrivateKey, error) {
	certPath, keyPath := filepath.Join(dir, CSCACertFile), filepath.Join(dir, CSCAKeyFile)
	cert, err := readOptional(certPath, readCert)
	if err != nil {
		return nil, nil, fmt.Errorf("filekeys: CSCA: %w", err)
	}
	key, err := readOptional(keyPath, readKey)
	if err != nil {
		return nil, nil, fmt.Errorf("filekeys: CSCA: %w", err)
	}
	if key == nil {
		if cert != nil {
			return nil, nil, fmt.Errorf("%w: %s without %s", ErrCentral, CSCACertFile, CSCAKeyFile)
		}
		// A DSC without the CSCA that issued it: a new CSCA would silently break the chain.
		if _, err := os.Lstat(filepath.Join(dir, DSCCertFile)); err == nil {
			return nil, nil, fmt.Errorf("%w: %s exists but the CSCA (%s) is missing", ErrCentral, DSCCertFile, CSCAKeyFile)
		}
		if key, err = createKey(keyPath); err != nil {
			return nil, nil, fmt.Errorf("filekeys: CSCA key: %w", err)
		}
	}
	if cert == nil {
		nb := now.Add(-backdate)
		cert, err = trust.CreateCSCA(key, trust.CSCAOptions{NotBefore: nb, NotAfter: nb.AddDate(CSCAValidityYears, 0, 0)})
		if err != nil {
			return nil, nil, fmt.Errorf("filekeys: CSCA: %w", err)
		}
		if err := writeNew(certPath, certPEM(cert)); err != nil {
			return nil, nil, fmt.Errorf("filekeys: CSCA: %w", err)
		}
	}
	if !key.PublicKey.Equal(cert.PublicKey) {
		return nil, nil, fmt.Errorf("%w: %s is not the certificate of %s", ErrCentral, CSCACertFile, CSCAKeyFile)
	}
	if !cert.IsCA {
		return nil, nil, fmt.Errorf("%w: %s is not a CA certificate", ErrCentral, CSCACertFile)
	}
	return cert, key, nil
}

// ensureDSC loads or creates the current DSC.
func ensureDSC(dir string, csca *x509.Certificate, cscaKey *ecdsa.PrivateKey, now time.Time) (*x509.Certificate, *ecdsa.PrivateKey, error) {
	certPath, keyPath := filepath.Join(dir, DSCCertFile), filepath.Join(dir, DSCKeyFile)
	cert, err := readOptional(certPath, readCert)
	if err != nil {
		return nil, nil, fmt.Errorf("filekeys: DSC: %w", err)
	}
	key, err := readOptional(keyPath, readKey)
	if err != nil {
		return nil, nil, fmt.Errorf("filekeys: DSC: %w", err)
	}
	if key == nil && cert != nil {
		// A rotation interrupted after archiving removes the key first: the certificate
		// left behind is already archived and can go.
		archived, err := os.ReadFile(filepath.Join(dir, archiveName(cert, false)))
		if err != nil || !bytes.Equal(archived, certPEM(cert)) {
			return nil, nil, fmt.Errorf("%w: %s without %s", ErrCentral, DSCCertFile, DSCKeyFile)
		}
		if err := os.Remove(certPath); err != nil {
			return nil, nil, fmt.Errorf("filekeys: DSC: %w", err)
		}
		cert = nil
	}
	if key == nil {
		if key, err = createKey(keyPath); err != nil {
			return nil, nil, fmt.Errorf("filekeys: DSC key: %w", err)
		}
	}
	if cert == nil {
		nb := now.Add(-backdate)
		if nb.Before(csca.NotBefore) {
			nb = csca.NotBefore
		}
		na := nb.AddDate(DSCValidityYears, 0, 0)
		if na.After(csca.NotAfter) {
			na = csca.NotAfter
		}
		if na.Before(DSCMinRemaining(now)) {
			return nil, nil, fmt.Errorf("%w: the CSCA ends %s, too soon for a new DSC; replace the CSCA", ErrCentral, csca.NotAfter.Format(time.RFC3339))
		}
		cert, err = trust.CreateDSC(&key.PublicKey, csca, cscaKey, trust.DSCOptions{NotBefore: nb, NotAfter: na})
		if err != nil {
			return nil, nil, fmt.Errorf("filekeys: DSC: %w", err)
		}
		if err := writeNew(certPath, certPEM(cert)); err != nil {
			return nil, nil, fmt.Errorf("filekeys: DSC: %w", err)
		}
	}
	if !key.PublicKey.Equal(cert.PublicKey) {
		return nil, nil, fmt.Errorf("%w: %s is not the certificate of %s", ErrCentral, DSCCertFile, DSCKeyFile)
	}
	if err := trust.CheckIssuedBy(cert, csca); err != nil {
		return nil, nil, fmt.Errorf("%w: %s: %w", ErrCentral, DSCCertFile, err)
	}
	return cert, key, nil
}

// archiveDSC moves the current DSC's files to their archive names (hard links first, so a
// crash at any point loses nothing), removing the key before the certificate.
func archiveDSC(dir string, dsc *x509.Certificate) error {
	for _, f := range []struct{ from, to string }{
		{DSCCertFile, archiveName(dsc, false)},
		{DSCKeyFile, archiveName(dsc, true)},
	} {
		from, to := filepath.Join(dir, f.from), filepath.Join(dir, f.to)
		if err := os.Link(from, to); err != nil {
			if !errors.Is(err, fs.ErrExist) || !sameContent(from, to) {
				return fmt.Errorf("filekeys: archive DSC: %w", err)
			}
		}
	}
	if err := syncDir(dir); err != nil {
		return fmt.Errorf("filekeys: archive DSC: %w", err)
	}
	for _, name := range []string{DSCKeyFile, DSCCertFile} {
		if err := os.Remove(filepath.Join(dir, name)); err != nil {
			return fmt.Errorf("filekeys: archive DSC: %w", err)
		}
	}
	return syncDir(dir)
}

func archiveName(dsc *x509.Certificate, key bool) string {
	name := "dsc-" + hex.EncodeToString(trust.KID(dsc.Raw))
	if key {
		return name + "-key.pem"
	}
	return name + ".pem"
}

// loadPrevious reads the archived DSCs still valid at now, newest first.
func loadPrevious(dir string, csca, current *x509.Certificate, now time.Time) ([]*x509.Certificate, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("filekeys: archived DSCs: %w", err)
	}
	var out []*x509.Certificate
	for _, e := range entries {
		if !archivedDSC.MatchString(e.Name()) {
			continue
		}
		cert, err := readCert(filepath.Join(dir, e.Name()))
		if err != nil {
			return nil, fmt.Errorf("filekeys: archived DSC: %w", err)
		}
		if bytes.Equal(cert.Raw, current.Raw) || !cert.NotAfter.After(now) {
			continue
		}
		if err := trust.CheckIssuedBy(cert, csca); err != nil {
			return nil, fmt.Errorf("%w: archived DSC %s: %w", ErrCentral, e.Name(), err)
		}
		out = append(out, cert)
	}
	slices.SortFunc(out, func(a, b *x509.Certificate) int { return b.NotAfter.Compare(a.NotAfter) })
	return out, nil
}

// writeTrustList writes the PEM bundle and the contract JSON of the list, when changed.
func writeTrustList(dataDir string, l *trust.List) error {
	js, err := l.MarshalJSON()
	if err != nil {
		return fmt.Errorf("filekeys: trust list: %w", err)
	}
	for name, data := range map[string][]byte{TrustListPEMFile: l.MarshalPEM(), TrustListJSONFile: js} {
		path := filepath.Join(dataDir, name)
		if old, err := os.ReadFile(path); err == nil && bytes.Equal(old, data) {
			continue
		}
		if err := writeReplace(path, data, 0o644); err != nil {
			return fmt.Errorf("filekeys: write %s: %w", name, err)
		}
	}
	return nil
}

func createKey(path string) (*ecdsa.PrivateKey, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	data, err := encodeKey(key)
	if err != nil {
		return nil, err
	}
	if err := writeNew(path, data); err != nil {
		return nil, err
	}
	return key, nil
}

func certPEM(c *x509.Certificate) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
}

// readOptional reads a file with read, answering the zero value for a missing file.
func readOptional[T any](path string, read func(string) (T, error)) (T, error) {
	v, err := read(path)
	if errors.Is(err, fs.ErrNotExist) {
		var zero T
		return zero, nil
	}
	return v, err
}

func sameContent(a, b string) bool {
	x, err1 := os.ReadFile(a)
	y, err2 := os.ReadFile(b)
	return err1 == nil && err2 == nil && bytes.Equal(x, y)
}
