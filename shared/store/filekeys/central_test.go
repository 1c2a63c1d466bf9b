package filekeys

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/sha256"
	"errors"
	"math/big"
	"os"
	"path/filepath"
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
	keys := filepath.Join(data, KeysDir)
	for _, name := range []string{CSCAKeyFile, DSCKeyFile, CSCACertFile, DSCCertFile} {
		checkMode(t, filepath.Join(keys, name), 0o600)
	}
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
	if !bytes.Equal(again.DSC.Raw, c.DSC.Raw) || !bytes.Equal(again.CSCA.Raw, c.CSCA.Raw) || !again.CSCAKey.Equal(c.CSCAKey) {
		t.Error("reloaded material differs")
	}
	if after := snapshot(t, data); !equalSnapshots(files, after) {
		t.Error("a second EnsureCentral changed files")
	}
}

// A DSC too close to its end is archived and replaced; it stays on the trust list while
// it is valid, and the CSCA is never replaced.
func TestEnsureCentralRotatesDSC(t *testing.T) {
	data := t.TempDir()
	c1, err := EnsureCentral(data, centralNow)
	if err != nil {
		t.Fatal(err)
	}
	cscaKey := readFile(t, filepath.Join(data, KeysDir, CSCAKeyFile))

	c2, err := EnsureCentral(data, centralNow.AddDate(1, 0, 0))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(c2.DSC.Raw, c1.DSC.Raw) {
		t.Fatal("the DSC was not rotated a year on")
	}
	if len(c2.Previous) != 1 || !bytes.Equal(c2.Previous[0].Raw, c1.DSC.Raw) {
		t.Fatalf("previous DSCs: %d, want the first DSC", len(c2.Previous))
	}
	if c2.TrustList.Len() != 2 {
		t.Errorf("trust list of %d DSCs, want 2", c2.TrustList.Len())
	}
	onDisk, err := trust.ParseJSON(readFile(t, filepath.Join(data, TrustListJSONFile)))
	if err != nil || onDisk.Len() != 2 {
		t.Errorf("trustlist.json after rotation: %v, %v", onDisk, err)
	}
	old := filepath.Join(data, KeysDir, archiveName(c1.DSC, true))
	if k, err := readKey(old); err != nil || !k.PublicKey.Equal(c1.DSC.PublicKey) {
		t.Errorf("archived DSC key: %v", err)
	}
	if !bytes.Equal(readFile(t, filepath.Join(data, KeysDir, CSCAKeyFile)), cscaKey) || !bytes.Equal(c2.CSCA.Raw, c1.CSCA.Raw) {
		t.Error("the CSCA changed")
	}

	// Two and a half years on: the first DSC has expired and leaves the trust list.
	c3, err := EnsureCentral(data, centralNow.AddDate(2, 6, 0))
	if err != nil {
		t.Fatal(err)
	}
	if len(c3.Previous) != 1 || !bytes.Equal(c3.Previous[0].Raw, c2.DSC.Raw) {
		t.Errorf("previous DSCs at 2.5 years: %d, want only the second DSC", len(c3.Previous))
	}
	checkNoTemp(t, filepath.Join(data, KeysDir))
}

// A rotation interrupted after the old key was archived and removed resumes.
func TestEnsureCentralResumesRotation(t *testing.T) {
	data := t.TempDir()
	c1, err := EnsureCentral(data, centralNow)
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
	c2, err := EnsureCentral(data, centralNow.AddDate(1, 0, 0))
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
		{"CSCA key missing", func(t *testing.T, keys string) { os.Remove(filepath.Join(keys, CSCAKeyFile)) }},
		{"CSCA key and certificate missing, DSC left", func(t *testing.T, keys string) {
			os.Remove(filepath.Join(keys, CSCAKeyFile))
			os.Remove(filepath.Join(keys, CSCACertFile))
		}},
		{"DSC key missing", func(t *testing.T, keys string) { os.Remove(filepath.Join(keys, DSCKeyFile)) }},
		{"DSC certificate of another key", func(t *testing.T, keys string) {
			os.Remove(filepath.Join(keys, DSCCertFile))
			if err := os.Link(filepath.Join(keys, CSCACertFile), filepath.Join(keys, DSCCertFile)); err != nil {
				t.Fatal(err)
			}
		}},
		{"DSC key replaced", func(t *testing.T, keys string) {
			os.Remove(filepath.Join(keys, DSCKeyFile))
			if err := os.Link(filepath.Join(keys, CSCAKeyFile), filepath.Join(keys, DSCKeyFile)); err != nil {
				t.Fatal(err)
			}
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

// Near the CSCA's end no DSC can cover a certificate's year: an error, not a short DSC.
func TestEnsureCentralCSCAEnding(t *testing.T) {
	data := t.TempDir()
	if _, err := EnsureCentral(data, centralNow); err != nil {
		t.Fatal(err)
	}
	_, err := EnsureCentral(data, centralNow.AddDate(CSCAValidityYears, -6, 0))
	if !errors.Is(err, ErrCentral) {
		t.Errorf("EnsureCentral half a year before the CSCA ends: %v, want ErrCentral", err)
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
