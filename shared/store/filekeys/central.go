package filekeys

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"time"

	"github.com/vaxpass/vaxpass/shared/hc1/hcert"
	"github.com/vaxpass/vaxpass/shared/hc1/trust"
)

// Files of the central key material: the CSCA's certificate and the DSC in the keys
// directory, the trust list in the data directory. The CSCA's private key is never in a
// data directory: it lives offline (vaxpass csca create) and certifies the DSC from there
// (PublishDSC, vaxpass dsc publish --data).
const (
	CSCACertFile = "csca.pem"
	// CSCAKeyFile is where earlier versions kept the CSCA's private key in the data
	// directory. EnsureCentral never reads it; finding it, it logs an error telling the
	// operator to move it offline (Central.LegacyCSCAKey).
	CSCAKeyFile       = "csca-key.pem"
	DSCCertFile       = "dsc.pem"
	DSCKeyFile        = "dsc-key.pem"
	TrustListPEMFile  = "trustlist.pem"
	TrustListJSONFile = "trustlist.json"
)

// Validity of the certificates this package creates: the demo CSCA and every DSC. A DSC
// closer to its end than DSCMinRemaining is still used, with a warning to roll it over
// (PublishDSC): without the CSCA's key the server cannot certify a new one itself.
const (
	CSCAValidityYears = 10
	DSCValidityYears  = 2
)

// DemoCSCAName is the common name of the CSCA EnsureCentral makes, once, for a data
// directory without a DSC: its key is discarded right after certifying the DSC.
const DemoCSCAName = "VN DGC CSCA demo (key discarded)"

// DSCMinRemaining is how long a DSC should still be valid: a certificate's 12 months plus
// a month of margin. A DSC closer to its end is rolled over with PublishDSC.
func DSCMinRemaining(now time.Time) time.Time { return now.AddDate(1, 1, 0) }

// backdate is how far before now new certificates start, for clocks slightly behind.
const backdate = time.Hour

// ErrCentral is wrapped when the central key material is inconsistent or missing (a
// certificate without its key, a DSC not issued by the CSCA, no DSC and no way to make
// one, an expired DSC).
var ErrCentral = errors.New("filekeys: central key material")

// Central is the central key material of the embedded backend.
type Central struct {
	// CSCA is the certificate of the CSCA that issued DSC (its key is offline).
	CSCA *x509.Certificate
	// DSC is the current document signer certificate; Signer signs with its key (ES256,
	// kid = trust.KID of the DSC).
	DSC    *x509.Certificate
	Signer *hcert.SoftwareSigner
	// Previous are earlier DSCs, archived by a roll-over, still valid at the time given
	// to EnsureCentral (certificates they signed may still be live).
	Previous []*x509.Certificate
	// TrustList holds DSC and Previous; it is also written to <data>/trustlist.pem and
	// <data>/trustlist.json.
	TrustList *trust.List
	// Demo says this call made a one-time CSCA to certify a new DSC (zero-setup start)
	// and discarded its key.
	Demo bool
	// LegacyCSCAKey is the path of a CSCA private key found in the data directory (left
	// by an earlier version), "" when none. It is never used; an error is logged.
	LegacyCSCAKey string
}

var (
	archivedDSC  = regexp.MustCompile(`^dsc-[0-9a-f]{16}\.pem$`)
	archivedCSCA = regexp.MustCompile(`^csca-[0-9a-f]{16}\.pem$`)
)

// EnsureCentral loads the central key material of dataDir. A data directory without a
// DSC (a first start) gets a zero-setup one: a one-time CSCA made in memory certifies a
// new DSC key, only the CSCA's certificate is written, and its key is discarded (logged
// once, without personal data). A directory whose CSCA is not such a demo CSCA must be
// given its DSC by PublishDSC. Keys are never overwritten; the trust list files are
// (re)written.
func EnsureCentral(dataDir string, now time.Time) (*Central, error) {
	dir := filepath.Join(dataDir, KeysDir)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("filekeys: create %s: %w", dir, err)
	}
	c := &Central{}
	legacy := filepath.Join(dir, CSCAKeyFile)
	if _, err := os.Lstat(legacy); err == nil {
		c.LegacyCSCAKey = legacy
		slog.Error("a CSCA private key is in the data directory: it is not used; move it offline and use it from there",
			"file", legacy, "how", "mkdir -m 700 CSCA_DIR && mv "+legacy+" CSCA_DIR/"+CSCAKeyFile+" && cp "+
				filepath.Join(dir, CSCACertFile)+" CSCA_DIR/; roll the DSC over with: vaxpass dsc publish --data "+dataDir+" --csca-dir CSCA_DIR")
	}
	csca, err := readOptional(filepath.Join(dir, CSCACertFile), readCert)
	if err != nil {
		return nil, fmt.Errorf("filekeys: CSCA: %w", err)
	}
	dsc, dscKey, err := loadDSC(dir)
	if err != nil {
		return nil, err
	}
	switch {
	case dsc == nil && (csca == nil || isDemoCSCA(csca)):
		if csca, dsc, dscKey, err = demoCentral(dir, dscKey, now); err != nil {
			return nil, err
		}
		c.Demo = true
		slog.Warn("made a one-time demo CSCA to certify this data directory's DSC and discarded its key: it can never certify another DSC; "+
			"for a real deployment make an offline CSCA (vaxpass csca create --out CSCA_DIR) and certify the DSC with it (vaxpass dsc publish --data DIR --csca-dir CSCA_DIR)",
			"csca", csca.Subject.CommonName)
	case dsc == nil:
		return nil, fmt.Errorf("%w: no DSC certificate (%s): certify one with vaxpass dsc publish --data %s --csca-dir CSCA_DIR", ErrCentral, DSCCertFile, dataDir)
	case csca == nil:
		return nil, fmt.Errorf("%w: %s exists but the CSCA certificate (%s) is missing", ErrCentral, DSCCertFile, CSCACertFile)
	}
	if !csca.IsCA {
		return nil, fmt.Errorf("%w: %s is not a CA certificate", ErrCentral, CSCACertFile)
	}
	if err := trust.CheckIssuedBy(dsc, csca); err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrCentral, DSCCertFile, err)
	}
	if !now.Before(dsc.NotAfter) {
		return nil, fmt.Errorf("%w: the DSC ended %s: roll it over with vaxpass dsc publish --data %s --csca-dir CSCA_DIR", ErrCentral, dsc.NotAfter.Format(time.RFC3339), dataDir)
	}
	if dsc.NotAfter.Before(DSCMinRemaining(now)) {
		slog.Warn("the DSC ends too soon to cover a new certificate's 12 months: roll it over with vaxpass dsc publish --data DIR --csca-dir CSCA_DIR",
			"dsc_not_after", dsc.NotAfter.Format(time.DateOnly))
	}
	c.CSCA, c.DSC = csca, dsc
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

// PublishDSC certifies a new DSC of dataDir with the offline CSCA (cert, key) -- the
// embedded backend's vaxpass dsc publish --data. The current DSC, if any, is archived
// (it stays on the trust list while valid), a new DSC key is made (a key left by an
// interrupted publish is certified instead), and the CSCA's certificate replaces the
// data directory's first, the former one kept as keys/csca-<kid hex>.pem when it differs
// so that archived DSCs it issued still check. The CSCA's key is only used here, in memory:
// nothing of it is written. A crash part-way leaves a directory that EnsureCentral
// refuses with the advice to publish again, which completes it. A running server picks
// the new DSC up when restarted.
func PublishDSC(dataDir string, csca *x509.Certificate, cscaKey *ecdsa.PrivateKey, opt trust.DSCOptions, now time.Time) (*Central, error) {
	if csca == nil || cscaKey == nil || !cscaKey.PublicKey.Equal(csca.PublicKey) {
		return nil, fmt.Errorf("%w: the CSCA key is not the CSCA certificate's", ErrCentral)
	}
	dir := filepath.Join(dataDir, KeysDir)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("filekeys: create %s: %w", dir, err)
	}
	cur, key, err := loadDSC(dir)
	if err != nil {
		return nil, err
	}
	certPath := filepath.Join(dir, CSCACertFile)
	old, err := readOptional(certPath, readCert)
	if err != nil {
		return nil, fmt.Errorf("filekeys: CSCA: %w", err)
	}
	if old == nil || !bytes.Equal(old.Raw, csca.Raw) {
		if old != nil {
			if err := writeNew(filepath.Join(dir, "csca-"+hex.EncodeToString(trust.KID(old.Raw))+".pem"), certPEM(old)); err != nil && !errors.Is(err, ErrKeyExists) {
				return nil, fmt.Errorf("filekeys: archive CSCA certificate: %w", err)
			}
		}
		if err := writeReplace(certPath, certPEM(csca), 0o600); err != nil {
			return nil, fmt.Errorf("filekeys: CSCA certificate: %w", err)
		}
	}
	if cur != nil {
		if err := archiveDSC(dir, cur); err != nil {
			return nil, err
		}
		key = nil
	}
	if key == nil {
		if key, err = createKey(filepath.Join(dir, DSCKeyFile)); err != nil {
			return nil, fmt.Errorf("filekeys: DSC key: %w", err)
		}
	}
	cert, err := trust.CreateDSC(&key.PublicKey, csca, cscaKey, opt)
	if err != nil {
		return nil, fmt.Errorf("filekeys: DSC: %w", err)
	}
	if err := writeNew(filepath.Join(dir, DSCCertFile), certPEM(cert)); err != nil {
		return nil, fmt.Errorf("filekeys: DSC: %w", err)
	}
	return EnsureCentral(dataDir, now)
}

// isDemoCSCA says whether a CSCA certificate is one EnsureCentral made (its key gone).
func isDemoCSCA(c *x509.Certificate) bool { return c.Subject.CommonName == DemoCSCAName }

// demoCentral makes the one-time CSCA, in memory, and certifies the DSC key (key, or a
// new one when nil) with it. The CSCA certificate is written before the DSC's: a crash
// in between leaves a demo CSCA without DSC, which the next start replaces.
func demoCentral(dir string, key *ecdsa.PrivateKey, now time.Time) (csca, dsc *x509.Certificate, _ *ecdsa.PrivateKey, err error) {
	nb := now.Add(-backdate)
	csca, cscaKey, err := trust.NewCSCA(trust.CSCAOptions{
		Subject:   pkix.Name{Country: []string{"VN"}, CommonName: DemoCSCAName},
		NotBefore: nb, NotAfter: nb.AddDate(CSCAValidityYears, 0, 0),
	})
	if err != nil {
		return nil, nil, nil, fmt.Errorf("filekeys: demo CSCA: %w", err)
	}
	certPath := filepath.Join(dir, CSCACertFile)
	if old, err := readOptional(certPath, readCert); err != nil {
		return nil, nil, nil, fmt.Errorf("filekeys: CSCA: %w", err)
	} else if old != nil {
		// An earlier demo CSCA without a DSC (a crash): kept aside, it may have issued an
		// archived DSC.
		if err := writeNew(filepath.Join(dir, "csca-"+hex.EncodeToString(trust.KID(old.Raw))+".pem"), certPEM(old)); err != nil && !errors.Is(err, ErrKeyExists) {
			return nil, nil, nil, fmt.Errorf("filekeys: archive CSCA certificate: %w", err)
		}
	}
	if err := writeReplace(certPath, certPEM(csca), 0o600); err != nil {
		return nil, nil, nil, fmt.Errorf("filekeys: CSCA certificate: %w", err)
	}
	if key == nil {
		if key, err = createKey(filepath.Join(dir, DSCKeyFile)); err != nil {
			return nil, nil, nil, fmt.Errorf("filekeys: DSC key: %w", err)
		}
	}
	na := nb.AddDate(DSCValidityYears, 0, 0)
	dsc, err = trust.CreateDSC(&key.PublicKey, csca, cscaKey, trust.DSCOptions{NotBefore: nb, NotAfter: na})
	if err != nil {
		return nil, nil, nil, fmt.Errorf("filekeys: DSC: %w", err)
	}
	if err := writeNew(filepath.Join(dir, DSCCertFile), certPEM(dsc)); err != nil {
		return nil, nil, nil, fmt.Errorf("filekeys: DSC: %w", err)
	}
	return csca, dsc, key, nil
}

// loadDSC reads the current DSC and its key: both nil when there is no DSC, the key
// alone when a publish stopped before certifying it.
func loadDSC(dir string) (*x509.Certificate, *ecdsa.PrivateKey, error) {
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
		// A roll-over interrupted after archiving removes the key first: the certificate
		// left behind is already archived and can go.
		archived, err := os.ReadFile(filepath.Join(dir, archiveName(cert, false)))
		if err != nil || !bytes.Equal(archived, certPEM(cert)) {
			return nil, nil, fmt.Errorf("%w: %s without %s", ErrCentral, DSCCertFile, DSCKeyFile)
		}
		if err := os.Remove(certPath); err != nil {
			return nil, nil, fmt.Errorf("filekeys: DSC: %w", err)
		}
		return nil, nil, nil
	}
	if cert != nil && !key.PublicKey.Equal(cert.PublicKey) {
		return nil, nil, fmt.Errorf("%w: %s is not the certificate of %s", ErrCentral, DSCCertFile, DSCKeyFile)
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
	// Archived DSCs may have been issued by an earlier CSCA (a demo CSCA replaced by the
	// real one): its certificate is kept as csca-<kid hex>.pem.
	issuers := []*x509.Certificate{csca}
	for _, e := range entries {
		if archivedCSCA.MatchString(e.Name()) {
			cert, err := readCert(filepath.Join(dir, e.Name()))
			if err != nil {
				return nil, fmt.Errorf("filekeys: archived CSCA: %w", err)
			}
			issuers = append(issuers, cert)
		}
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
		for _, issuer := range issuers {
			if err = trust.CheckIssuedBy(cert, issuer); err == nil {
				break
			}
		}
		if err != nil {
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
