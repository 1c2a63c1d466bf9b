package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/x509"
	"encoding/pem"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/vaxpass/vaxpass/shared/hc1/trust"
	"github.com/vaxpass/vaxpass/shared/store/filekeys"
	"github.com/vaxpass/vaxpass/shared/wire/local"
)

// privateKeysOf parses every file under dir, as DER and as PEM blocks, and returns the
// paths of those holding a private key whose public key is pub.
func privateKeysOf(t *testing.T, dir string, pub any) []string {
	t.Helper()
	var found []string
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		ders := [][]byte{data}
		for rest := data; ; {
			var b *pem.Block
			if b, rest = pem.Decode(rest); b == nil {
				break
			}
			ders = append(ders, b.Bytes)
		}
		for _, der := range ders {
			var key any
			if k, err := x509.ParsePKCS8PrivateKey(der); err == nil {
				key = k
			} else if k, err := x509.ParseECPrivateKey(der); err == nil {
				key = k
			}
			if k, ok := key.(*ecdsa.PrivateKey); ok && k.PublicKey.Equal(pub) {
				found = append(found, path)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return found
}

// publicFiles are the data directory's files that are published as they are (the trust
// list and the revocation list): the only ones others may read.
var publicFiles = map[string]bool{
	filekeys.TrustListPEMFile: true, filekeys.TrustListJSONFile: true, local.RevocationsFile: true,
}

// checkOwnerOnly fails for every file or directory under dir that its group or others
// can read, write or enter, the published lists aside.
func checkOwnerOnly(t *testing.T, dir string) {
	t.Helper()
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		if info.Mode().Perm()&0o077 != 0 && !(info.Mode().IsRegular() && publicFiles[d.Name()] && filepath.Dir(path) == dir) {
			t.Errorf("%s has mode %v: want no access for group and others", path, info.Mode().Perm())
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// A fresh data directory started as the demo is (serve --demo) holds the DSC key, the
// DSC and the demo CSCA's certificate, never the CSCA's key; its DSC chains to that
// certificate; its files are owner-only. dsc publish --data then certifies a new DSC with
// an offline CSCA, whose key stays out of the data directory too.
func TestDemoDataDirHoldsNoCSCAKey(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("no Unix permissions")
	}
	data := filepath.Join(t.TempDir(), "data")
	l, err := local.OpenLocal(local.Options{DataDir: data})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.SetupDemo(context.Background(), 1); err != nil {
		l.Close()
		t.Fatal(err)
	}
	demo := l.Central
	l.Close()
	if err := trust.CheckIssuedBy(demo.DSC, demo.CSCA); err != nil {
		t.Errorf("the DSC does not chain to the data directory's CSCA certificate: %v", err)
	}
	if keys := privateKeysOf(t, data, demo.CSCA.PublicKey); len(keys) != 0 {
		t.Errorf("the demo CSCA's private key is in %v", keys)
	}
	if keys := privateKeysOf(t, data, demo.DSC.PublicKey); len(keys) != 1 {
		t.Errorf("the DSC key is in %d files, want 1 (%v)", len(keys), keys)
	}
	checkOwnerOnly(t, data)

	// csca create refuses a directory inside the data directory.
	code, _, stderr := runCLI("", "csca", "create", "--out", filepath.Join(data, "keys", "csca"))
	if code != 2 || !strings.Contains(stderr, "inside the data directory") {
		t.Errorf("csca create inside the data directory: exit %d, %s", code, stderr)
	}
	if _, err := os.Lstat(filepath.Join(data, "keys", "csca")); err == nil {
		t.Error("csca create made its directory inside the data directory")
	}

	offline := newCSCADir(t)
	code, stdout, stderr := runCLI("", "dsc", "publish", "--data", data, "--csca-dir", offline)
	if code != 0 || !strings.Contains(stdout, "published DSC") {
		t.Fatalf("dsc publish --data: exit %d, %s%s", code, stdout, stderr)
	}
	csca, _, err := loadCSCADir(offline)
	if err != nil {
		t.Fatal(err)
	}
	c, err := filekeys.EnsureCentral(data, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if c.Demo || string(c.CSCA.Raw) != string(csca.Raw) {
		t.Errorf("after publish: demo %v, CSCA %q, want the offline CSCA", c.Demo, c.CSCA.Subject.CommonName)
	}
	if err := trust.CheckIssuedBy(c.DSC, csca); err != nil {
		t.Errorf("published DSC: %v", err)
	}
	if len(c.Previous) != 1 || string(c.Previous[0].Raw) != string(demo.DSC.Raw) {
		t.Errorf("previous DSCs %d, want the demo DSC still listed", len(c.Previous))
	}
	if keys := privateKeysOf(t, data, csca.PublicKey); len(keys) != 0 {
		t.Errorf("the offline CSCA's private key is in %v", keys)
	}
	checkOwnerOnly(t, data)

	// The server starts on it and seals with the new DSC.
	l2, err := local.OpenLocal(local.Options{DataDir: data})
	if err != nil {
		t.Fatal(err)
	}
	defer l2.Close()
	if string(l2.Central.DSC.Raw) != string(c.DSC.Raw) {
		t.Error("the restarted server does not use the published DSC")
	}
}
