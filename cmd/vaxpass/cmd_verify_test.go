package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vaxpass/vaxpass/shared/hc1/hcert"
	"github.com/vaxpass/vaxpass/shared/hc1/qr"
	"github.com/vaxpass/vaxpass/shared/hc1/trust"
	"github.com/vaxpass/vaxpass/shared/stage/verification"
)

// verifyDCC is a schema-valid Vietnamese vaccination DCC (fields as the issuer
// writes them; the person is invented).
const verifyDCC = `{"ver":"1.3.0","nam":{"fn":"Nguyễn","fnt":"NGUYEN","gn":"Thị Minh Khai","gnt":"THI<MINH<KHAI"},` +
	`"dob":"1990-07-15","v":[{"tg":"840539006","vp":"J07BX03","mp":"EU/1/20/1528","ma":"ORG-100030215",` +
	`"dn":2,"sd":2,"dt":"2021-09-20","co":"VN","is":"Ministry of Health of Viet Nam","ci":"URN:UVCI:01:VN:79A1B2C3D4E5F6G7H8J9#K"}]}`

// verifyPKI is a CSCA, a vaccination DSC and its signer, as the issuer sets them up.
type verifyPKI struct {
	dsc    *x509.Certificate
	key    *ecdsa.PrivateKey
	signer *hcert.SoftwareSigner
	iat    time.Time
}

func newVerifyPKI(t *testing.T) *verifyPKI {
	t.Helper()
	cscaKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	csca, err := trust.CreateCSCA(cscaKey, trust.CSCAOptions{NotBefore: start})
	if err != nil {
		t.Fatal(err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	dsc, err := trust.CreateDSC(&key.PublicKey, csca, cscaKey, trust.DSCOptions{NotBefore: start})
	if err != nil {
		t.Fatal(err)
	}
	signer, err := hcert.NewSoftwareSigner(key, trust.KID(dsc.Raw))
	if err != nil {
		t.Fatal(err)
	}
	return &verifyPKI{dsc: dsc, key: key, signer: signer, iat: start.AddDate(0, 1, 0)}
}

// sign issues an HC1 for doc with signer s (the PKI's own by default).
func (p *verifyPKI) sign(t *testing.T, doc string, s hcert.Signer) string {
	t.Helper()
	if s == nil {
		s = p.signer
	}
	claims, err := hcert.NewClaims("VN", p.iat, p.dsc)
	if err != nil {
		t.Fatal(err)
	}
	hc1, err := hcert.Sign(context.Background(), s, claims, hcert.JSONPayload(doc))
	if err != nil {
		t.Fatal(err)
	}
	return hc1
}

// trustFile writes a trust list of the given DSCs (PEM, or the contract JSON).
func trustFile(t *testing.T, asJSON bool, dscs ...*x509.Certificate) string {
	t.Helper()
	list, err := trust.NewList(dscs...)
	if err != nil {
		t.Fatal(err)
	}
	data := list.MarshalPEM()
	name := "trust.pem"
	if asJSON {
		if data, err = list.MarshalJSON(); err != nil {
			t.Fatal(err)
		}
		name = "trust.json"
	}
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

type verifyRun struct {
	code           int
	stdout, stderr string
	verdict        verification.Verdict
}

func runVerifyCmd(t *testing.T, stdin string, args ...string) verifyRun {
	t.Helper()
	var r verifyRun
	r.code, r.stdout, r.stderr = runCLI(stdin, append([]string{"verify"}, args...)...)
	if r.stdout != "" {
		if err := json.Unmarshal([]byte(r.stdout), &r.verdict); err != nil {
			t.Fatalf("stdout is not a JSON verdict: %v\n%s", err, r.stdout)
		}
		if strings.Count(r.stdout, "\n") != 1 {
			t.Fatalf("stdout is not one line: %q", r.stdout)
		}
	}
	return r
}

func TestVerifyValid(t *testing.T) {
	p := newVerifyPKI(t)
	hc1 := p.sign(t, verifyDCC, nil)
	at := p.iat.Add(24 * time.Hour).Format(time.RFC3339)
	pemFile := trustFile(t, false, p.dsc)

	png, err := qr.PNG(hc1)
	if err != nil {
		t.Fatal(err)
	}
	pngFile := filepath.Join(t.TempDir(), "pass.png")
	if err := os.WriteFile(pngFile, png, 0o600); err != nil {
		t.Fatal(err)
	}
	dataDir := t.TempDir()
	list, err := trust.NewList(p.dsc)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dataDir, verifyTrustListFile), list.MarshalPEM(), 0o600); err != nil {
		t.Fatal(err)
	}

	tests := map[string]struct {
		stdin string
		args  []string
	}{
		"argument":            {"", []string{"--trust", pemFile, "--at", at, hc1}},
		"stdin with newline":  {hc1 + "\n", []string{"--trust", pemFile, "--at", at, "-"}},
		"stdin with CRLF":     {hc1 + "\r\n", []string{"--trust", pemFile, "--at=" + at, "-"}},
		"QR image":            {"", []string{"--trust", pemFile, "--at", at, "--qr", pngFile}},
		"JSON trust list":     {"", []string{"--trust", trustFile(t, true, p.dsc), "--at", at, hc1}},
		"data directory list": {"", []string{"--data", dataDir, "--at", at, hc1}},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			r := runVerifyCmd(t, tt.stdin, tt.args...)
			v := r.verdict
			if r.code != 0 || !v.Valid {
				t.Fatalf("exit %d, verdict %+v, stderr %s", r.code, v, r.stderr)
			}
			if !strings.Contains(r.stdout, `"gnt":"THI<MINH<KHAI"`) {
				t.Errorf("stdout escapes the ICAO filler: %s", r.stdout)
			}
			if v.Step != "" || v.Reason != "" {
				t.Errorf("a valid verdict has step %q reason %q", v.Step, v.Reason)
			}
			if want := base64.StdEncoding.EncodeToString(trust.KID(p.dsc.Raw)); v.KID != want {
				t.Errorf("kid %q, want %q", v.KID, want)
			}
			if v.Algorithm != "ES256" || v.Issuer != "VN" || v.Type != "vaccination" {
				t.Errorf("alg %q issuer %q type %q", v.Algorithm, v.Issuer, v.Type)
			}
			if v.IssuedAt != p.iat.Format(time.RFC3339) || v.ExpiresAt != p.iat.AddDate(0, hcert.DefaultValidityMonths, 0).Format(time.RFC3339) {
				t.Errorf("issued_at %q expires_at %q", v.IssuedAt, v.ExpiresAt)
			}
			if got := mustCanonical(t, string(v.DCC)); got != mustCanonical(t, verifyDCC) {
				t.Errorf("dcc %s, want %s", got, verifyDCC)
			}
		})
	}
}

// mustCanonical re-encodes JSON with sorted keys for comparison.
func mustCanonical(t *testing.T, s string) string {
	t.Helper()
	var v any
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(v)
	return string(b)
}

func TestVerifyInvalid(t *testing.T) {
	p := newVerifyPKI(t)
	other := newVerifyPKI(t)
	hc1 := p.sign(t, verifyDCC, nil)
	pemFile := trustFile(t, false, p.dsc)
	at := p.iat.Add(time.Hour).Format(time.RFC3339)

	// Another key signing under this DSC's kid: the kid resolves, the signature fails.
	forger, err := hcert.NewSoftwareSigner(other.key, trust.KID(p.dsc.Raw))
	if err != nil {
		t.Fatal(err)
	}
	// One character changed mid-string: Base45 still decodes, zlib's checksum fails.
	mid := len(hc1) / 2
	swap := byte('0')
	if hc1[mid] == '0' {
		swap = '1'
	}
	tampered := hc1[:mid] + string(swap) + hc1[mid+1:]

	noQR := filepath.Join(t.TempDir(), "blank.png")
	blank, err := qr.PNG("X") // a QR code…
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(noQR, blank[:len(blank)/2], 0o600); err != nil { // …cut in half
		t.Fatal(err)
	}

	tests := []struct {
		name      string
		stdin     string
		args      []string
		step      string
		authentic bool // the verdict shows the decoded content
	}{
		{"prefix", "", []string{"--trust", pemFile, "--at", at, "HC2:" + hc1[4:]}, "prefix", false},
		{"tampered", "", []string{"--trust", pemFile, "--at", at, tampered}, "inflate", false},
		{"bad base45", "", []string{"--trust", pemFile, "--at", at, "HC1:A"}, "base45", false},
		{"forged signature", "", []string{"--trust", pemFile, "--at", at, p.sign(t, verifyDCC, forger)}, "signature", false},
		{"unknown kid", "", []string{"--trust", trustFile(t, false, other.dsc), "--at", at, hc1}, "unknown_kid", false},
		{"expired", "", []string{"--trust", pemFile, "--at", p.iat.AddDate(2, 0, 0).Format(time.RFC3339), hc1}, "expired", true},
		{"not yet valid", "", []string{"--trust", pemFile, "--at", p.iat.Add(-time.Hour).Format(time.RFC3339), hc1}, "not_yet_valid", true},
		{"schema", "", []string{"--trust", pemFile, "--at", at, p.sign(t, strings.Replace(verifyDCC, `"dob":"1990-07-15"`, `"dob":"15/07/1990"`, 1), nil)}, "schema", true},
		{"value set", "", []string{"--trust", pemFile, "--at", at, p.sign(t, strings.Replace(verifyDCC, "EU/1/20/1528", "EU/1/99/9999", 1), nil)}, "value_set", true},
		{"stdin trailing space", hc1 + " \n", []string{"--trust", pemFile, "--at", at, "-"}, "base45", false},
		{"unreadable image", "", []string{"--trust", pemFile, "--at", at, "--qr", noQR}, "qr", false},
		{"missing image", "", []string{"--trust", pemFile, "--qr", filepath.Join(t.TempDir(), "none.png")}, "qr", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := runVerifyCmd(t, tt.stdin, tt.args...)
			v := r.verdict
			if r.code != 1 || v.Valid {
				t.Fatalf("exit %d, verdict %+v, stderr %s", r.code, v, r.stderr)
			}
			if v.Step != tt.step || v.Reason == "" {
				t.Fatalf("step %q reason %q, want step %q", v.Step, v.Reason, tt.step)
			}
			if got := v.DCC != nil && v.KID != "" && v.ExpiresAt != ""; got != tt.authentic {
				t.Errorf("decoded content shown = %v, want %v (verdict %+v)", got, tt.authentic, v)
			}
		})
	}
}

func TestVerifyUsage(t *testing.T) {
	p := newVerifyPKI(t)
	hc1 := p.sign(t, verifyDCC, nil)
	pemFile := trustFile(t, false, p.dsc)
	tests := map[string][]string{
		"no input":        {"--trust", pemFile},
		"both inputs":     {"--trust", pemFile, "--qr", "x.png", hc1},
		"two arguments":   {"--trust", pemFile, "HC1:ABC", "DEF"},
		"bad --at":        {"--trust", pemFile, "--at", "yesterday", hc1},
		"unknown flag":    {"--trust", pemFile, "--strict", hc1},
		"bad backend":     {"--backend", "s3", "--trust", pemFile, hc1},
		"aws, no --trust": {"--backend", "aws", hc1},
	}
	for name, args := range tests {
		t.Run(name, func(t *testing.T) {
			r := runVerifyCmd(t, "", args...)
			if r.code != 2 || r.stdout != "" || r.stderr == "" {
				t.Fatalf("exit %d stdout %q stderr %q; want 2, no verdict, a message", r.code, r.stdout, r.stderr)
			}
		})
	}
	if r := runVerifyCmd(t, "", "--help"); r.code != 0 || !strings.Contains(r.stderr, "trustlist.pem") {
		t.Errorf("--help: exit %d, usage does not name the default trust list:\n%s", r.code, r.stderr)
	}
}

func TestVerifyTrustListProblems(t *testing.T) {
	p := newVerifyPKI(t)
	hc1 := p.sign(t, verifyDCC, nil)
	garbage := filepath.Join(t.TempDir(), "trust.pem")
	if err := os.WriteFile(garbage, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := map[string][]string{
		"no list in data dir": {"--data", t.TempDir(), hc1},
		"missing file":        {"--trust", filepath.Join(t.TempDir(), "none.pem"), hc1},
		"not PEM":             {"--trust", garbage, hc1},
	}
	for name, args := range tests {
		t.Run(name, func(t *testing.T) {
			r := runVerifyCmd(t, "", args...)
			if r.code != 1 || r.stdout != "" || !strings.Contains(r.stderr, "trust list") {
				t.Fatalf("exit %d stdout %q stderr %q; want 1, no verdict, a trust list error", r.code, r.stdout, r.stderr)
			}
		})
	}
}
