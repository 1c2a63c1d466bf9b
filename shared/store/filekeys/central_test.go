package filekeys

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"io/fs"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vaxpass/vaxpass/shared/hc1/trust"
)

var centralNow = time.Date(2021, 9, 1, 8, 0, 0, 0, time.UTC)

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestEnsureCentralCreatesAndLoads(t *testing.T) {
	data := t.TempDir()
	c, err := EnsureCentral(data, centralNow)
	if err != nil {
		t.Fatal(err)
	}
	if !c.Demo || c.CSCA.Subject.CommonName != DemoCSCAName {
		t.Errorf("first start: Demo %v, CSCA %q, want the demo CSCA", c.Demo, c.CSCA.Subject.CommonName)
	}
	keys := filepath.Join(data, KeysDir)
	for _, name := range []string{DSCKeyFile, CSCACertFile, DSCCertFile} {
		checkMode(t, filepath.Join(keys, name), 0o600)
	}
	if _, err := os.Lstat(filepath.Join(keys, CSCAKeyFile)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("%s: %v, want no CSCA key file", CSCAKeyFile, err)
	}
	checkNoCSCAKey(t, data, c.CSCA)
	checkNoTemp(t, keys)
	checkNoTemp(t, data)

	if err := trust.CheckIssuedBy(c.DSC, c.CSCA); err != nil {
		t.Errorf("DSC not issued by the CSCA: %v", err)
	}
	if err := trust.CheckKeyUsage(c.DSC, trust.Vaccination); err != nil {
		t.Errorf("DSC key usage: %v", err)
	}
	if !bytes.Equal(c.Signer.KeyID(), trust.KID(c.DSC.Raw)) {
		t.Errorf("signer kid %x, want the DSC's %x", c.Signer.KeyID(), trust.KID(c.DSC.Raw))
	}
	if c.DSC.NotBefore.After(centralNow) || c.DSC.NotAfter.Before(DSCMinRemaining(centralNow)) {
		t.Errorf("DSC valid %s..%s does not cover a certificate issued now", c.DSC.NotBefore, c.DSC.NotAfter)
	}
	// The signer signs with the DSC's key.
	tbs := []byte("to be signed")
	sig, err := c.Signer.Sign(t.Context(), tbs)
	if err != nil {
		t.Fatal(err)
	}
	digest := sha256.Sum256(tbs)
	if !ecdsa.Verify(c.DSC.PublicKey.(*ecdsa.PublicKey), digest[:], new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])) {
		t.Error("the signer's signature does not verify with the DSC")
	}

	// The trust list files hold the DSC, in both forms.
	fromPEM, err := trust.ParsePEM(readFile(t, filepath.Join(data, TrustListPEMFile)))
	if err != nil {
		t.Fatal(err)
	}
	fromJSON, err := trust.ParseJSON(readFile(t, filepath.Join(data, TrustListJSONFile)))
	if err != nil {
		t.Fatal(err)
	}
	for name, l := range map[string]*trust.List{"pem": fromPEM, "json": fromJSON, "memory": c.TrustList} {
		if l.Len() != 1 || len(l.ByKID(trust.KID(c.DSC.Raw))) != 1 {
			t.Errorf("%s trust list: %d DSCs, want the one DSC", name, l.Len())
		}
	}

	// A second call loads the same material and writes nothing.
	files := snapshot(t, data)
	again, err := EnsureCentral(data, centralNow.Add(24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if again.Demo || !bytes.Equal(again.DSC.Raw, c.DSC.Raw) || !bytes.Equal(again.CSCA.Raw, c.CSCA.Raw) {
		t.Errorf("reloaded material differs (demo %v)", again.Demo)
	}
	if after := snapshot(t, data); !equalSnapshots(files, after) {
		t.Error("a second EnsureCentral changed files")
	}
}

// checkNoCSCAKey parses every PEM block (and every file as DER) under dir and fails when
// one is a private key whose public key is the CSCA's.
func checkNoCSCAKey(t *testing.T, dir string, csca *x509.Certificate) {
	t.Helper()
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
			if k, ok := key.(*ecdsa.PrivateKey); ok && k.PublicKey.Equal(csca.PublicKey) {
				t.Errorf("%s holds the CSCA's private key", path)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func newCSCA(t *testing.T, cn string) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	nb := centralNow.Add(-time.Hour)
	cert, key, err := trust.NewCSCA(trust.CSCAOptions{Subject: pkix.Name{Country: []string{"VN"}, CommonName: cn}, NotBefore: nb, NotAfter: nb.AddDate(5, 0, 0)})
	if err != nil {
		t.Fatal(err)
	}
	return cert, key
}

func dscOptions(now time.Time) trust.DSCOptions {
	return trust.DSCOptions{NotBefore: now.Add(-time.Hour), NotAfter: now.AddDate(DSCValidityYears, 0, 0)}
}

// The demo DSC is rolled over by an offline CSCA: the demo DSC stays on the trust list
// (its CSCA's certificate archived), the new DSC chains to the real CSCA, and nothing
// of either CSCA's key is in the data directory.
func TestPublishDSCRollsOverTheDemo(t *testing.T) {
	data := t.TempDir()
	demo, err := EnsureCentral(data, centralNow)
	if err != nil {
		t.Fatal(err)
	}
	csca, cscaKey := newCSCA(t, "VN DGC CSCA 1")
	at := centralNow.Add(48 * time.Hour)
	c, err := PublishDSC(data, csca, cscaKey, dscOptions(at), at)
	if err != nil {
		t.Fatal(err)
	}
	if c.Demo || !bytes.Equal(c.CSCA.Raw, csca.Raw) || bytes.Equal(c.DSC.Raw, demo.DSC.Raw) {
		t.Fatalf("after publish: demo %v, CSCA %q, same DSC %v", c.Demo, c.CSCA.Subject.CommonName, bytes.Equal(c.DSC.Raw, demo.DSC.Raw))
	}
	if err := trust.CheckIssuedBy(c.DSC, csca); err != nil {
		t.Errorf("new DSC: %v", err)
	}
	if len(c.Previous) != 1 || !bytes.Equal(c.Previous[0].Raw, demo.DSC.Raw) || c.TrustList.Len() != 2 {
		t.Errorf("previous %d, trust list %d: want the demo DSC kept", len(c.Previous), c.TrustList.Len())
	}
	checkNoCSCAKey(t, data, csca)
	checkNoCSCAKey(t, data, demo.CSCA)

	// A restart loads it; a second publish archives the first real DSC too.
	again, err := EnsureCentral(data, at)
	if err != nil || again.Demo || !bytes.Equal(again.DSC.Raw, c.DSC.Raw) {
		t.Fatalf("restart: %v", err)
	}
	later := centralNow.AddDate(1, 0, 0)
	c2, err := PublishDSC(data, csca, cscaKey, dscOptions(later), later)
	if err != nil {
		t.Fatal(err)
	}
	if len(c2.Previous) != 2 || c2.TrustList.Len() != 3 {
		t.Errorf("second publish: %d previous, want 2", len(c2.Previous))
	}
	// Another CSCA's key does not match the data directory's CSCA certificate: refused.
	_, other := newCSCA(t, "other")
	if _, err := PublishDSC(data, csca, other, dscOptions(later), later); !errors.Is(err, ErrCentral) {
		t.Errorf("publish with a key not the CSCA's: %v, want ErrCentral", err)
	}
	checkNoTemp(t, filepath.Join(data, KeysDir))
}

// A data directory certified by an offline CSCA is never given a demo CSCA: without a DSC
// it refuses to start and says how to publish one.
func TestEnsureCentralWithoutDSCAfterPublish(t *testing.T) {
	data := t.TempDir()
	csca, cscaKey := newCSCA(t, "VN DGC CSCA 1")
	if _, err := PublishDSC(data, csca, cscaKey, dscOptions(centralNow), centralNow); err != nil {
		t.Fatal(err)
	}
	keys := filepath.Join(data, KeysDir)
	for _, f := range []string{DSCCertFile, DSCKeyFile} {
		if err := os.Remove(filepath.Join(keys, f)); err != nil {
			t.Fatal(err)
		}
	}
	_, err := EnsureCentral(data, centralNow)
	if !errors.Is(err, ErrCentral) || !strings.Contains(err.Error(), "dsc publish") {
		t.Errorf("EnsureCentral without a DSC: %v, want ErrCentral naming dsc publish", err)
	}
	if _, err := os.Lstat(filepath.Join(keys, DSCCertFile)); err == nil {
		t.Error("a DSC was made without the CSCA")
	}
}

// A CSCA key left in the data directory by an earlier version is neither used nor
// touched: the server starts and names it (in the log and in Central.LegacyCSCAKey).
func TestEnsureCentralLegacyCSCAKey(t *testing.T) {
	data := t.TempDir()
	csca, cscaKey := newCSCA(t, "VN DGC CSCA 1")
	if _, err := PublishDSC(data, csca, cscaKey, dscOptions(centralNow), centralNow); err != nil {
		t.Fatal(err)
	}
	_, keyPEM, err := trust.EncodeCSCA(csca, cscaKey)
	if err != nil {
		t.Fatal(err)
	}
	legacy := filepath.Join(data, KeysDir, CSCAKeyFile)
	if err := os.WriteFile(legacy, keyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := EnsureCentral(data, centralNow)
	if err != nil {
		t.Fatal(err)
	}
	if c.LegacyCSCAKey != legacy {
		t.Errorf("LegacyCSCAKey %q, want %q", c.LegacyCSCAKey, legacy)
	}
	if !bytes.Equal(readFile(t, legacy), keyPEM) {
		t.Error("the legacy CSCA key file changed")
	}
}

// A publish interrupted after archiving the DSC (its key removed) is completed by
// publishing again; the server refuses to start meanwhile.
func TestPublishDSCResumes(t *testing.T) {
	data := t.TempDir()
	csca, cscaKey := newCSCA(t, "VN DGC CSCA 1")
	c1, err := PublishDSC(data, csca, cscaKey, dscOptions(centralNow), centralNow)
	if err != nil {
		t.Fatal(err)
	}
	keys := filepath.Join(data, KeysDir)
	for _, f := range [][2]string{{DSCCertFile, archiveName(c1.DSC, false)}, {DSCKeyFile, archiveName(c1.DSC, true)}} {
		if err := os.Link(filepath.Join(keys, f[0]), filepath.Join(keys, f[1])); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Remove(filepath.Join(keys, DSCKeyFile)); err != nil {
		t.Fatal(err)
	}
	if _, err := EnsureCentral(data, centralNow); !errors.Is(err, ErrCentral) {
		t.Errorf("start mid-publish: %v, want ErrCentral", err)
	}
	c2, err := PublishDSC(data, csca, cscaKey, dscOptions(centralNow), centralNow)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(c2.DSC.Raw, c1.DSC.Raw) || len(c2.Previous) != 1 {
		t.Errorf("after resuming: new DSC %v, %d previous", !bytes.Equal(c2.DSC.Raw, c1.DSC.Raw), len(c2.Previous))
	}
}

func TestEnsureCentralRefusesInconsistentMaterial(t *testing.T) {
	for _, tc := range []struct {
		name   string
		damage func(t *testing.T, keys string)
	}{
		{"CSCA certificate missing, DSC left", func(t *testing.T, keys string) { os.Remove(filepath.Join(keys, CSCACertFile)) }},
		{"DSC key missing", func(t *testing.T, keys string) { os.Remove(filepath.Join(keys, DSCKeyFile)) }},
		{"DSC certificate of another key", func(t *testing.T, keys string) {
			os.Remove(filepath.Join(keys, DSCCertFile))
			if err := os.Link(filepath.Join(keys, CSCACertFile), filepath.Join(keys, DSCCertFile)); err != nil {
				t.Fatal(err)
			}
		}},
		{"DSC key replaced", func(t *testing.T, keys string) {
			os.Remove(filepath.Join(keys, DSCKeyFile))
			if _, err := createKey(filepath.Join(keys, DSCKeyFile)); err != nil {
				t.Fatal(err)
			}
		}},
		{"CSCA certificate of another CSCA", func(t *testing.T, keys string) {
			other, _ := newCSCA(t, "other")
			os.WriteFile(filepath.Join(keys, CSCACertFile), certPEM(other), 0o600)
		}},
		{"corrupt CSCA certificate", func(t *testing.T, keys string) {
			os.WriteFile(filepath.Join(keys, CSCACertFile), []byte("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"), 0o600)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			data := t.TempDir()
			if _, err := EnsureCentral(data, centralNow); err != nil {
				t.Fatal(err)
			}
			tc.damage(t, filepath.Join(data, KeysDir))
			before := snapshot(t, filepath.Join(data, KeysDir))
			_, err := EnsureCentral(data, centralNow)
			if !errors.Is(err, ErrCentral) && !errors.Is(err, ErrKeyFile) {
				t.Errorf("EnsureCentral: %v, want ErrCentral or ErrKeyFile", err)
			}
			if after := snapshot(t, filepath.Join(data, KeysDir)); !equalSnapshots(before, after) {
				t.Error("EnsureCentral changed key files of inconsistent material")
			}
		})
	}
}

// A DSC near its end is still used (the server cannot certify another without the
// offline CSCA); an expired one is an error naming dsc publish.
func TestEnsureCentralDSCEnding(t *testing.T) {
	data := t.TempDir()
	c, err := EnsureCentral(data, centralNow)
	if err != nil {
		t.Fatal(err)
	}
	near, err := EnsureCentral(data, c.DSC.NotAfter.AddDate(0, -2, 0))
	if err != nil || !bytes.Equal(near.DSC.Raw, c.DSC.Raw) {
		t.Errorf("two months before the DSC ends: %v, want the same DSC", err)
	}
	_, err = EnsureCentral(data, c.DSC.NotAfter.Add(time.Hour))
	if !errors.Is(err, ErrCentral) || !strings.Contains(err.Error(), "dsc publish") {
		t.Errorf("after the DSC ended: %v, want ErrCentral naming dsc publish", err)
	}
}

func snapshot(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.Type().IsRegular() {
			out[e.Name()] = readFile(t, filepath.Join(dir, e.Name()))
		}
	}
	return out
}

func equalSnapshots(a, b map[string][]byte) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || !bytes.Equal(v, w) {
			return false
		}
	}
	return true
}
