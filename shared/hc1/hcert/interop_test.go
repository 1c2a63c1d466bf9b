package hcert

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/pem"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/vaxpass/vaxpass/shared/hc1/trust"
)

// interopPython returns a Python with pycose, cbor2 and base45: $VAXPASS_PYTHON
// when it names an executable, else python3 when it imports pycose.
func interopPython(t *testing.T) string {
	if p := os.Getenv("VAXPASS_PYTHON"); p != "" {
		if st, err := os.Stat(p); err == nil && !st.IsDir() {
			return p
		}
	}
	if err := exec.Command("python3", "-c", "import pycose, cbor2, base45").Run(); err == nil {
		return "python3"
	}
	t.Skip("interop needs Python with pycose: set VAXPASS_PYTHON to a venv's python after " +
		"`pip install -r shared/hc1/hcert/testdata/interop/requirements.txt` (VAXPASS_PYTHON is unset or " +
		"names no file, and python3 cannot import pycose)")
	return ""
}

type pyVerdict struct {
	Name           string          `json:"name"`
	Decoded        bool            `json:"decoded"`
	KIDMatches     bool            `json:"kid_matches"`
	SignatureValid bool            `json:"signature_valid"`
	Expired        *bool           `json:"expired"`
	NotYetValid    *bool           `json:"not_yet_valid"`
	Issuer         *string         `json:"iss"`
	IssuedAt       *float64        `json:"iat"`
	ExpiresAt      *float64        `json:"exp"`
	DCC            json.RawMessage `json:"dcc"`
	Error          *string         `json:"error"`
}

func (v pyVerdict) valid() bool {
	return v.Decoded && v.KIDMatches && v.SignatureValid && v.Expired != nil && !*v.Expired &&
		v.NotYetValid != nil && !*v.NotYetValid
}

// TestInteropPython checks certificates we sign verify in an implementation we
// did not write (pycose 1.1.0 + cbor2 + base45 + zlib, testdata/interop), and
// that tampered ones fail in both.
func TestInteropPython(t *testing.T) {
	python := interopPython(t)
	p := newTestPKI(t, trust.DSCOptions{})
	iat := time.Date(2025, 3, 1, 8, 0, 0, 0, time.UTC)
	c := p.claimsAt(t, iat)
	ctx := context.Background()
	good, err := Sign(ctx, p.signer, c, vietnameseDCC())
	if err != nil {
		t.Fatal(err)
	}
	raw := mustInflate(t, good)
	flip := func(at int) func([]byte) []byte { return func(b []byte) []byte { b[at] ^= 1; return b } }
	now := iat.Add(24 * time.Hour)
	type input struct {
		Name string `json:"name"`
		HC1  string `json:"hc1"`
		Now  int64  `json:"now"`
	}
	cases := []struct {
		in      input
		ourErr  error // nil: must verify
		pyValid bool
	}{
		{input{"valid", good, now.Unix()}, nil, true},
		{input{"signature byte", reencode(t, good, flip(len(raw)-1)), now.Unix()}, ErrSignature, false},
		{input{"payload byte", reencode(t, good, flip(len(raw)-64-2-5)), now.Unix()}, ErrSignature, false},
		{input{"kid byte", reencode(t, good, flip(8)), now.Unix()}, ErrUnknownKID, false},
		{input{"expired clock", good, c.ExpiresAt.Unix() + 1}, ErrExpired, false},
	}
	dir := t.TempDir()
	pemPath, inPath := filepath.Join(dir, "dsc.pem"), filepath.Join(dir, "inputs.json")
	if err := os.WriteFile(pemPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: p.dsc.Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	var inputs []input
	for _, tc := range cases {
		inputs = append(inputs, tc.in)
	}
	inJSON, _ := json.Marshal(inputs)
	if err := os.WriteFile(inPath, inJSON, 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(python, "testdata/interop/verify_hc1.py", pemPath, inPath)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("verify_hc1.py: %v\n%s", err, stderr.Bytes())
	}
	dec := json.NewDecoder(bytes.NewReader(out))
	for _, tc := range cases {
		var py pyVerdict
		if err := dec.Decode(&py); err != nil {
			t.Fatalf("reading verdict for %s: %v\n%s", tc.in.Name, err, out)
		}
		if py.Name != tc.in.Name {
			t.Fatalf("verdict for %q, want %q", py.Name, tc.in.Name)
		}
		t.Logf("%-15s python: decoded=%v kid=%v signature=%v expired=%v", tc.in.Name, py.Decoded, py.KIDMatches, py.SignatureValid, py.Expired != nil && *py.Expired)
		if py.valid() != tc.pyValid {
			t.Errorf("%s: Python valid=%v, want %v (%+v)", tc.in.Name, py.valid(), tc.pyValid, py)
		}
		v := p.verifier(time.Unix(tc.in.Now, 0))
		res, err := v.Verify(ctx, tc.in.HC1)
		switch {
		case tc.ourErr == nil && err != nil:
			t.Errorf("%s: ours: %v", tc.in.Name, err)
		case tc.ourErr != nil && !errors.Is(err, tc.ourErr):
			t.Errorf("%s: ours: %v, want %v", tc.in.Name, err, tc.ourErr)
		}
		if tc.in.Name == "valid" && err == nil {
			if err := sameJSON(res.DCC, py.DCC); err != nil {
				t.Errorf("DCC differs between us and Python: %v\nours %s\ntheirs %s", err, res.DCC, py.DCC)
			}
			if py.Issuer == nil || *py.Issuer != "VN" || py.IssuedAt == nil || int64(*py.IssuedAt) != iat.Unix() ||
				py.ExpiresAt == nil || int64(*py.ExpiresAt) != c.ExpiresAt.Unix() {
				t.Errorf("claims seen by Python: iss %v iat %v exp %v", py.Issuer, py.IssuedAt, py.ExpiresAt)
			}
		}
	}
}
