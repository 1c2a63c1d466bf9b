package filekeys

import (
	"bytes"
	"context"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vaxpass/vaxpass/shared/domain/facilitysig"
	"github.com/vaxpass/vaxpass/shared/vaxpass"
)

func TestCheckFacilityID(t *testing.T) {
	for _, tc := range []struct {
		id string
		ok bool
	}{
		{"f1", true},
		{"HCM_Q1-tram-01", true},
		{strings.Repeat("a", 64), true},
		{"", false},
		{strings.Repeat("a", 65), false},
		{"../etc", false},
		{"a/b", false},
		{`a\b`, false},
		{"a.b", false},
		{".", false},
		{"a b", false},
		{"a\x00b", false},
		{"trạm", false},
	} {
		err := CheckFacilityID(tc.id)
		if (err == nil) != tc.ok {
			t.Errorf("CheckFacilityID(%q) = %v, want ok %v", tc.id, err, tc.ok)
		}
		if err != nil && !errors.Is(err, vaxpass.ErrInvalid) {
			t.Errorf("CheckFacilityID(%q): %v does not wrap ErrInvalid", tc.id, err)
		}
	}
}

// Whatever passes CheckFacilityID names a file directly inside the keys directory.
func FuzzCheckFacilityID(f *testing.F) {
	for _, s := range []string{"f1", "../x", "a/b", "..", "HCM_Q1-01", "", "a\x00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, id string) {
		if CheckFacilityID(id) != nil {
			return
		}
		dir := filepath.Join("data", KeysDir)
		p := filepath.Join(dir, FacilityKeyFile(id))
		if filepath.Dir(p) != dir || filepath.Base(p) != FacilityKeyFile(id) {
			t.Errorf("facility ID %q escapes the keys directory: %s", id, p)
		}
	})
}

func TestFacilityKeys(t *testing.T) {
	ctx := t.Context()
	data := t.TempDir()
	s, err := Open(data)
	if err != nil {
		t.Fatal(err)
	}
	keyID, err := s.CreateFacilityKey("f1")
	if err != nil {
		t.Fatal(err)
	}
	if keyID != "keys/facility-f1.pem" {
		t.Errorf("KeyID %q", keyID)
	}
	path := filepath.Join(data, keyID)
	checkMode(t, path, 0o600)
	checkMode(t, filepath.Join(data, KeysDir), 0o700|os.ModeDir)
	before, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}

	if _, err := s.CreateFacilityKey("f1"); !errors.Is(err, ErrKeyExists) {
		t.Errorf("second CreateFacilityKey: %v, want ErrKeyExists", err)
	}
	if after, _ := os.ReadFile(path); !bytes.Equal(before, after) {
		t.Error("the existing key was overwritten")
	}
	if _, created, err := s.EnsureFacilityKey("f1"); err != nil || created {
		t.Errorf("EnsureFacilityKey of an existing key: created %v, %v", created, err)
	}
	if _, created, err := s.EnsureFacilityKey("f2"); err != nil || !created {
		t.Errorf("EnsureFacilityKey of a new key: created %v, %v", created, err)
	}
	checkNoTemp(t, filepath.Join(data, KeysDir))

	// Sign with this store; verify with a fresh one that reads the key file back.
	signer, err := s.FacilitySigner(ctx, "f1")
	if err != nil {
		t.Fatal(err)
	}
	content := facilitysig.Content{PersonID: "001090012345", FacilityID: "f1", FullName: "Nguyễn Văn An", DOB: "1990-01-02",
		Gender: "male", Nationality: "VN", SignedAt: time.Date(2021, 9, 1, 0, 0, 0, 0, time.UTC),
		Doses: []facilitysig.Dose{{SourceID: "a1", Vaccine: "PFIZER", DoseNumber: 1, VaccinatedOn: "2021-08-01"}}}
	payload, sig, err := facilitysig.Sign(ctx, signer, content)
	if err != nil {
		t.Fatal(err)
	}
	if len(sig) != 64 {
		t.Errorf("signature of %d bytes, want 64 (r||s)", len(sig))
	}
	again, err := Open(data)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := again.FacilityPublicKey(ctx, "f1")
	if err != nil {
		t.Fatal(err)
	}
	got, err := facilitysig.Verify(pub, payload, sig)
	if err != nil {
		t.Fatalf("verify with the reloaded public key: %v", err)
	}
	if got.PersonID != content.PersonID || len(got.Doses) != 1 {
		t.Errorf("verified content %+v", got)
	}
	other, _ := again.FacilityPublicKey(ctx, "f2")
	if _, err := facilitysig.Verify(other, payload, sig); err == nil {
		t.Error("another facility's key verified the signature")
	}

	for _, id := range []string{"nope", "../keys/facility-f1"} {
		_, err := again.FacilityPublicKey(ctx, id)
		if err == nil {
			t.Errorf("FacilityPublicKey(%q) succeeded", id)
		}
		if _, err := again.FacilitySigner(ctx, id); err == nil {
			t.Errorf("FacilitySigner(%q) succeeded", id)
		}
	}
	if _, err := again.FacilityPublicKey(ctx, "nope"); !errors.Is(err, vaxpass.ErrNotFound) {
		t.Errorf("unknown facility: %v, want ErrNotFound", err)
	}
	if _, err := again.FacilitySigner(ctx, "../x"); !errors.Is(err, vaxpass.ErrInvalid) {
		t.Errorf("traversal ID: %v, want ErrInvalid", err)
	}
	if _, err := s.CreateFacilityKey("a/../../x"); !errors.Is(err, vaxpass.ErrInvalid) {
		t.Errorf("CreateFacilityKey with a path: %v, want ErrInvalid", err)
	}
	canceled, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := signer.Sign(canceled, []byte("x")); err == nil {
		t.Error("Sign with a canceled context succeeded")
	}
}

// Concurrent registrations of one facility create one key.
func TestCreateFacilityKeyConcurrent(t *testing.T) {
	data := t.TempDir()
	const workers = 8
	errs := make([]error, workers)
	var wg sync.WaitGroup
	for w := range workers {
		s, err := Open(data) // separate stores, as separate processes would be
		if err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[w] = s.CreateFacilityKey("f1")
		}()
	}
	wg.Wait()
	ok := 0
	for _, err := range errs {
		switch {
		case err == nil:
			ok++
		case !errors.Is(err, ErrKeyExists):
			t.Errorf("unexpected error %v", err)
		}
	}
	if ok != 1 {
		t.Errorf("%d creations succeeded, want 1", ok)
	}
	checkNoTemp(t, filepath.Join(data, KeysDir))
}

func TestReadKeyRejects(t *testing.T) {
	dir := t.TempDir()
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	p384DER, _ := x509.MarshalPKCS8PrivateKey(p384)
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	rsaDER, _ := x509.MarshalPKCS8PrivateKey(rsaKey)
	x25519, _ := ecdh.X25519().GenerateKey(rand.Reader)
	x25519DER, _ := x509.MarshalPKCS8PrivateKey(x25519)
	p256, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	good, _ := encodeKey(p256)
	sec1DER, _ := x509.MarshalECPrivateKey(p256)
	block := func(typ string, der []byte) []byte { return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}) }
	for _, tc := range []struct {
		name string
		data []byte
		ok   bool
	}{
		{"PKCS#8 P-256", good, true},
		{"SEC 1 P-256", block("EC PRIVATE KEY", sec1DER), true},
		{"with surrounding white space", append(append([]byte("\n"), good...), "\n\n"...), true},
		{"P-384", block("PRIVATE KEY", p384DER), false},
		{"RSA", block("PRIVATE KEY", rsaDER), false},
		{"X25519", block("PRIVATE KEY", x25519DER), false},
		{"certificate block", block("CERTIFICATE", p384DER), false},
		{"two blocks", append(append([]byte(nil), good...), good...), false},
		{"trailing text", append(append([]byte(nil), good...), "junk"...), false},
		{"not PEM", []byte("hello"), false},
		{"empty", nil, false},
		{"bad DER", block("PRIVATE KEY", []byte{0x30, 0x03, 1, 2, 3}), false},
		{"too large", append(append([]byte(nil), good...), bytes.Repeat([]byte(" "), MaxKeyFileBytes)...), false},
	} {
		path := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "_")+".pem")
		if err := os.WriteFile(path, tc.data, 0o600); err != nil {
			t.Fatal(err)
		}
		key, err := readKey(path)
		if (err == nil) != tc.ok {
			t.Errorf("%s: err %v, want ok %v", tc.name, err, tc.ok)
		}
		if err != nil && !errors.Is(err, ErrKeyFile) {
			t.Errorf("%s: %v does not wrap ErrKeyFile", tc.name, err)
		}
		if err == nil && !key.Equal(p256) {
			t.Errorf("%s: read another key", tc.name)
		}
	}
}

func checkMode(t *testing.T, path string, want os.FileMode) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := fi.Mode() & (os.ModePerm | os.ModeDir); got != want {
		t.Errorf("%s: mode %v, want %v", path, got, want)
	}
}

func checkNoTemp(t *testing.T, dir string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if strings.Contains(e.Name(), ".tmp-") {
			t.Errorf("temporary file left behind: %s", e.Name())
		}
	}
}
