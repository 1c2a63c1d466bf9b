package main

import (
	"bytes"
	"crypto/elliptic"
	"crypto/x509"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vaxpass/vaxpass/shared/hc1/trust"
)

func fileMode(t *testing.T, path string) os.FileMode {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Mode().Perm()
}

func TestCSCACreate(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "offline", "csca")
	code, stdout, stderr := runCLI("", "csca", "create", "--out", dir)
	if code != 0 {
		t.Fatalf("exit %d, stderr %s", code, stderr)
	}
	certPath, keyPath := filepath.Join(dir, "csca.pem"), filepath.Join(dir, "csca-key.pem")
	if !strings.Contains(stdout, certPath) || !strings.Contains(stdout, keyPath) {
		t.Errorf("stdout does not name the files:\n%s", stdout)
	}
	if m := fileMode(t, dir); m != 0o700 {
		t.Errorf("directory mode %o, want 700", m)
	}
	for _, p := range []string{certPath, keyPath} {
		if m := fileMode(t, p); m != 0o600 {
			t.Errorf("%s mode %o, want 600", p, m)
		}
	}
	entries, err := os.ReadDir(dir)
	if err != nil || len(entries) != 2 {
		t.Errorf("directory holds %d entries (%v), want the two files", len(entries), err)
	}

	cert, key, err := loadCSCADir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if key.Curve != elliptic.P256() {
		t.Error("key is not P-256")
	}
	if !cert.IsCA || !cert.BasicConstraintsValid || cert.MaxPathLen != 0 || !cert.MaxPathLenZero {
		t.Errorf("basic constraints: CA %v, path length %d", cert.IsCA, cert.MaxPathLen)
	}
	if cert.KeyUsage != x509.KeyUsageCertSign|x509.KeyUsageCRLSign {
		t.Errorf("key usage %b, want keyCertSign|cRLSign", cert.KeyUsage)
	}
	if len(cert.ExtKeyUsage)+len(cert.UnknownExtKeyUsage) != 0 {
		t.Error("a CSCA carries no extended key usage")
	}
	if err := cert.CheckSignatureFrom(cert); err != nil {
		t.Errorf("not self-signed: %v", err)
	}
	if cert.Subject.CommonName != "VN DGC CSCA 1" || strings.Join(cert.Subject.Country, ",") != "VN" {
		t.Errorf("subject %v", cert.Subject)
	}
	now := time.Now()
	if cert.NotBefore.After(now) || cert.NotBefore.Before(now.Add(-2*time.Hour)) {
		t.Errorf("NotBefore %s", cert.NotBefore)
	}
	if got := cert.NotAfter.Sub(cert.NotBefore); got < 4*365*24*time.Hour || got > 4*367*24*time.Hour {
		t.Errorf("validity %s, want 4 years", got)
	}
	// It can issue a DSC.
	if _, err := trust.CreateDSC(&key.PublicKey, cert, key, trust.DSCOptions{NotBefore: cert.NotBefore}); err != nil {
		t.Errorf("issue a DSC: %v", err)
	}

	// Never overwritten: a second run fails and changes nothing.
	before, _ := os.ReadFile(keyPath)
	code, _, stderr = runCLI("", "csca", "create", "--out", dir)
	if code != 1 || !strings.Contains(stderr, "exists") {
		t.Errorf("second create: exit %d, stderr %s; want 1 and a refusal", code, stderr)
	}
	if after, _ := os.ReadFile(keyPath); !bytes.Equal(before, after) {
		t.Error("the CSCA key changed")
	}
}

func TestCSCACreateOptions(t *testing.T) {
	dir := t.TempDir() // exists already: its mode is left alone
	code, _, stderr := runCLI("", "csca", "create", "--country", "LA", "--name", "Lao DGC CSCA", "--years", "2", "--out", dir)
	if code != 0 {
		t.Fatalf("exit %d, stderr %s", code, stderr)
	}
	cert, _, err := loadCSCADir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if cert.Subject.CommonName != "Lao DGC CSCA" || strings.Join(cert.Subject.Country, ",") != "LA" {
		t.Errorf("subject %v", cert.Subject)
	}
	if !cert.NotAfter.Equal(cert.NotBefore.AddDate(2, 0, 0)) {
		t.Errorf("validity %s..%s, want 2 years", cert.NotBefore, cert.NotAfter)
	}

	// The default name follows the country.
	dir = filepath.Join(t.TempDir(), "th")
	if code, _, stderr := runCLI("", "csca", "create", "--country", "TH", "--out", dir); code != 0 {
		t.Fatalf("exit %d, stderr %s", code, stderr)
	}
	if cert, _, err = loadCSCADir(dir); err != nil || cert.Subject.CommonName != "TH DGC CSCA 1" {
		t.Errorf("default name: %v %v", cert.Subject, err)
	}
}

// Either file alone blocks a new CSCA: a key without its certificate is still a CSCA
// someone may rely on.
func TestCSCACreateRefusesPartial(t *testing.T) {
	for _, name := range []string{"csca.pem", "csca-key.pem"} {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, name), []byte("keep me"), 0o600); err != nil {
			t.Fatal(err)
		}
		code, _, stderr := runCLI("", "csca", "create", "--out", dir)
		if code != 1 || !strings.Contains(stderr, name) {
			t.Errorf("%s present: exit %d, stderr %s", name, code, stderr)
		}
		entries, _ := os.ReadDir(dir)
		if len(entries) != 1 {
			t.Errorf("%s present: %d files after the refusal, want 1", name, len(entries))
		}
		if data, _ := os.ReadFile(filepath.Join(dir, name)); string(data) != "keep me" {
			t.Errorf("%s was changed", name)
		}
	}
}

func TestCSCACreateUsage(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"csca"}, "usage: vaxpass csca create"},
		{[]string{"csca", "make"}, "usage: vaxpass csca create"},
		{[]string{"csca", "create"}, "--out DIR is required"},
		{[]string{"csca", "create", "--out", dir, "extra"}, `unexpected argument "extra"`},
		{[]string{"csca", "create", "--out", dir, "--country", "vn"}, "--country"},
		{[]string{"csca", "create", "--out", dir, "--country", "VNM"}, "--country"},
		{[]string{"csca", "create", "--out", dir, "--years", "0"}, "--years"},
		{[]string{"csca", "create", "--out", dir, "--years", "31"}, "--years"},
		{[]string{"csca", "create", "--out", dir, "--name", strings.Repeat("x", 65)}, "--name"},
		{[]string{"csca", "create", "--out", dir, "--backend", "gcp"}, "--backend"},
		{[]string{"csca", "create", "--out", dir, "--nope"}, "flag provided but not defined"},
	} {
		code, stdout, stderr := runCLI("", tc.args...)
		if code != 2 || !strings.Contains(stderr, tc.want) || stdout != "" {
			t.Errorf("%v: exit %d, stderr %q; want 2 and %q", tc.args, code, stderr, tc.want)
		}
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("usage errors wrote %d files", len(entries))
	}
	if code, _, stderr := runCLI("", "csca", "create", "-h"); code != 0 || !strings.Contains(stderr, "--out") {
		t.Errorf("help: exit %d, %s", code, stderr)
	}
}

// A CSCA directory that does not hold a usable CSCA is refused when read back.
func TestLoadCSCADirProblems(t *testing.T) {
	dir := t.TempDir()
	if _, _, err := loadCSCADir(dir); err == nil {
		t.Error("empty directory: no error")
	}
	if code, _, stderr := runCLI("", "csca", "create", "--out", dir); code != 0 {
		t.Fatal(stderr)
	}
	other := t.TempDir()
	if code, _, stderr := runCLI("", "csca", "create", "--out", other); code != 0 {
		t.Fatal(stderr)
	}
	// The certificate of one CSCA with the key of another.
	key, err := os.ReadFile(filepath.Join(other, "csca-key.pem"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "csca-key.pem"), key, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := loadCSCADir(dir); err == nil || !strings.Contains(err.Error(), "not the certificate's") {
		t.Errorf("mismatched key: %v", err)
	}
	// An oversized file is not read whole.
	big := bytes.Repeat([]byte("A"), maxCSCAFile+1)
	if err := os.WriteFile(filepath.Join(other, "csca.pem"), big, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := loadCSCADir(other); err == nil || !strings.Contains(err.Error(), "larger") {
		t.Errorf("oversized certificate: %v", err)
	}
}
