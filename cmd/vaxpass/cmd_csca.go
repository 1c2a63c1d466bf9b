package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/vaxpass/vaxpass/shared/hc1/trust"
	"github.com/vaxpass/vaxpass/shared/store/embedded"
	"github.com/vaxpass/vaxpass/shared/store/filekeys"
)

func init() {
	register("csca", "the country signing CA, offline: csca create --out DIR", runCSCA)
}

// The files of a CSCA directory (csca create writes them, dsc publish reads them): the
// names a data directory's keys/ uses for its own CSCA.
const (
	cscaCertFile = "csca.pem"
	cscaKeyFile  = "csca-key.pem"
	// maxCSCAFile bounds a CSCA file read back.
	maxCSCAFile = 64 << 10
)

// Limits of csca create --years: the governance guide recommends 4 years; more than a few
// decades is a typo.
const (
	cscaDefaultYears = 4
	cscaMaxYears     = 30
)

// cscaBackdate starts a new certificate this much before now, for clocks slightly behind.
const cscaBackdate = time.Hour

const cscaUsage = `usage: vaxpass csca create --out DIR [--country VN] [--name NAME] [--years N]

Makes a country signing CA (CSCA), offline: a new ECDSA P-256 key and its self-signed
certificate (CA, keyCertSign and cRLSign, path length 0), written to
  DIR/` + cscaCertFile + `      the certificate: give it to verifiers and other countries
  DIR/` + cscaKeyFile + `  the private key: keep it offline, never on a server or in a stack
Both files are 0600; DIR is created 0700 if missing. An existing CSCA in DIR is never
overwritten. Use the directory with: vaxpass dsc publish --csca-dir DIR.
Exit 0 created, 1 failure (a CSCA already there), 2 usage error.
`

// runCSCA is `vaxpass csca create --out DIR [--country CC] [--name NAME] [--years N]`.
func runCSCA(_ context.Context, e env, args []string) int {
	if len(args) == 0 || args[0] != "create" {
		fmt.Fprint(e.stderr, cscaUsage)
		if len(args) > 0 && (args[0] == "-h" || args[0] == "--help") {
			return 0
		}
		return 2
	}
	fs := flag.NewFlagSet("csca create", flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	var g globalFlags
	g.register(fs)
	out := fs.String("out", "", "directory for "+cscaCertFile+" and "+cscaKeyFile+" (required)")
	country := fs.String("country", "VN", "ISO 3166-1 alpha-2 country of the CSCA (subject C=)")
	name := fs.String("name", "", "subject common name (default \"<country> DGC CSCA 1\")")
	years := fs.Int("years", cscaDefaultYears, "validity in years; every DSC it issues must end before it")
	fs.Usage = func() {
		fmt.Fprint(e.stderr, cscaUsage+"\nflags:\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	usageErr := func(format string, a ...any) int {
		fmt.Fprintf(e.stderr, "csca create: "+format+"\n", a...)
		return 2
	}
	cn := strings.TrimSpace(*name)
	if cn == "" {
		cn = *country + " DGC CSCA 1"
	}
	switch {
	case fs.NArg() > 0:
		return usageErr("unexpected argument %q", fs.Arg(0))
	case *out == "":
		return usageErr("--out DIR is required")
	case g.backend != "embedded" && g.backend != "aws":
		return usageErr("--backend must be embedded or aws, not %q", g.backend)
	case !isCountry(*country):
		return usageErr("--country must be an ISO 3166-1 alpha-2 code such as VN, not %q", *country)
	case *years < 1 || *years > cscaMaxYears:
		return usageErr("--years must be 1 to %d", cscaMaxYears)
	case len(cn) > 64: // X.520 ub-common-name
		return usageErr("--name must be at most 64 bytes")
	}

	// A CSCA key in a data directory would sit with the server's files and backups.
	if data, err := inDataDir(*out); err != nil {
		fmt.Fprintf(e.stderr, "csca create: %v\n", err)
		return 1
	} else if data != "" {
		return usageErr("--out %s is inside the data directory %s: keep the CSCA offline, outside every data directory", *out, data)
	}

	nb := time.Now().UTC().Add(-cscaBackdate)
	cert, err := createCSCADir(*out, trust.CSCAOptions{
		Subject:   pkix.Name{Country: []string{*country}, CommonName: cn},
		NotBefore: nb,
		NotAfter:  nb.AddDate(*years, 0, 0),
	})
	if err != nil {
		fmt.Fprintf(e.stderr, "csca create: %v\n", err)
		return 1
	}
	fp := sha256.Sum256(cert.Raw)
	fmt.Fprintf(e.stdout, "created CSCA %q (C=%s), valid %s to %s\n", cert.Subject.CommonName, *country,
		cert.NotBefore.Format(time.DateOnly), cert.NotAfter.Format(time.DateOnly))
	fmt.Fprintf(e.stdout, "certificate %s (SHA-256 %X)\n", filepath.Join(*out, cscaCertFile), fp)
	fmt.Fprintf(e.stdout, "private key %s: keep it offline\n", filepath.Join(*out, cscaKeyFile))
	return 0
}

// createCSCADir makes a CSCA (trust.NewCSCA) and writes it to dir, refusing when dir
// holds either file already: replacing a CSCA would orphan every DSC it issued.
func createCSCADir(dir string, opt trust.CSCAOptions) (*x509.Certificate, error) {
	certPath, keyPath := filepath.Join(dir, cscaCertFile), filepath.Join(dir, cscaKeyFile)
	for _, p := range []string{certPath, keyPath} {
		if _, err := os.Lstat(p); err == nil {
			return nil, fmt.Errorf("%s exists: a CSCA is never overwritten (use another --out)", p)
		} else if !errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	cert, key, err := trust.NewCSCA(opt)
	if err != nil {
		return nil, err
	}
	certPEM, keyPEM, err := trust.EncodeCSCA(cert, key)
	if err != nil {
		return nil, err
	}
	// The key first: a certificate without its key would be useless.
	if err := writeExclusive(keyPath, keyPEM); err != nil {
		return nil, err
	}
	if err := writeExclusive(certPath, certPEM); err != nil {
		os.Remove(keyPath) // ours: created just above
		return nil, err
	}
	return cert, nil
}

// writeExclusive creates path 0600 (never replacing a file: O_EXCL), writes data and syncs
// it; on failure it removes what it created. No temporary file and rename: the directory
// may be on removable media without hard links.
func writeExclusive(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		if errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("%s exists: a CSCA is never overwritten (use another --out)", path)
		}
		return err
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(path)
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// loadCSCADir reads the CSCA that csca create wrote to dir (trust.ParseCSCA checks the
// key is the certificate's and the certificate a CA).
func loadCSCADir(dir string) (*x509.Certificate, *ecdsa.PrivateKey, error) {
	certPath, keyPath := filepath.Join(dir, cscaCertFile), filepath.Join(dir, cscaKeyFile)
	certPEM, err := readCSCAFile(certPath)
	if err != nil {
		return nil, nil, err
	}
	keyPEM, err := readCSCAFile(keyPath)
	if err != nil {
		return nil, nil, err
	}
	cert, key, err := trust.ParseCSCA(certPEM, keyPEM)
	if err != nil {
		return nil, nil, fmt.Errorf("%s, %s: %w", certPath, keyPath, err)
	}
	return cert, key, nil
}

// readCSCAFile reads a file of a CSCA directory, bounded.
func readCSCAFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxCSCAFile+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	if len(data) > maxCSCAFile {
		return nil, fmt.Errorf("%s is larger than %d bytes", path, maxCSCAFile)
	}
	return data, nil
}

// isCountry reports whether s is two upper-case ASCII letters.
func isCountry(s string) bool {
	return len(s) == 2 && s[0] >= 'A' && s[0] <= 'Z' && s[1] >= 'A' && s[1] <= 'Z'
}

// inDataDir returns the embedded backend's data directory that dir is (or is inside):
// the nearest of dir and its parents holding the database or a DSC key; "" when none.
func inDataDir(dir string) (string, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	for p := abs; ; p = filepath.Dir(p) {
		for _, marker := range []string{embedded.FileName, filepath.Join(filekeys.KeysDir, filekeys.DSCKeyFile)} {
			if _, err := os.Lstat(filepath.Join(p, marker)); err == nil {
				return p, nil
			}
		}
		if filepath.Dir(p) == p {
			return "", nil
		}
	}
}

// dirWithin reports whether dir is root or inside it, or inside any data directory
// (inDataDir), comparing absolute paths with symbolic links resolved where they exist.
func dirWithin(dir, root string) (bool, error) {
	if data, err := inDataDir(dir); err != nil || data != "" {
		return data != "", err
	}
	d, err := resolved(dir)
	if err != nil {
		return false, err
	}
	r, err := resolved(root)
	if err != nil {
		return false, err
	}
	rel, err := filepath.Rel(r, d)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator)), nil
}

// resolved is path made absolute with symbolic links resolved (path as is when it does
// not exist yet).
func resolved(path string) (string, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return "", err
	}
	if r, err := filepath.EvalSymlinks(abs); err == nil {
		return r, nil
	}
	return abs, nil
}
