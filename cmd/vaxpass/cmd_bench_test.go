package main

import (
	"bufio"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vaxpass/vaxpass/shared/stage/lookup"
	"github.com/vaxpass/vaxpass/shared/tool/bench"
)

func TestBenchUsageErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"no people", nil, "--people must be positive"},
		{"negative people", []string{"--people", "-3"}, "--people must be positive"},
		{"too many facilities", []string{"--people", "10", "--facilities", "1000"}, "--facilities must be 1..999"},
		{"no facilities", []string{"--people", "10", "--facilities", "0"}, "--facilities must be 1..999"},
		{"negative workers", []string{"--people", "10", "--workers", "-1"}, "must not be negative"},
		{"zero crypto time", []string{"--people", "10", "--crypto-time", "0s"}, "must not be negative"},
		{"aws backend", []string{"--people", "10", "--backend", "aws"}, "only --backend embedded"},
		{"argument", []string{"--people", "10", "extra"}, `unexpected argument "extra"`},
		{"unknown flag", []string{"--peeple", "10"}, "flag provided but not defined"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, stdout, stderr := runCLI("", append([]string{"bench"}, tc.args...)...)
			if code != 2 || stdout != "" || !strings.Contains(stderr, tc.want) {
				t.Fatalf("exit %d, stdout %q, stderr %q; want 2 and %q", code, stdout, stderr, tc.want)
			}
		})
	}
}

func TestBenchSmallRun(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the whole pipeline")
	}
	for _, mode := range []string{"overlapped", "sequential"} {
		t.Run(mode, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "data")
			args := []string{"bench", "--people", "1500", "--seed", "3", "--data", dir, "--crypto-time", "50ms", "--load-files", "50"}
			if mode == "sequential" {
				args = append(args, "--sequential")
			}
			code, stdout, stderr := runCLI("", args...)
			if code != 0 {
				t.Fatalf("exit %d: %s", code, stderr)
			}
			var sum benchSummary
			if err := json.Unmarshal([]byte(stdout), &sum); err != nil {
				t.Fatalf("stdout is not the JSON summary: %v\n%s", err, stdout)
			}
			inv := sum.Invariants
			if len(inv.Violations) != 0 || inv.Unmatched != 0 || inv.MissingCertificates != 0 || inv.DuplicateCertificates != 0 {
				t.Fatalf("invariants %+v", inv)
			}
			if sum.Records != 1500 || sum.Accepted != sum.Records || inv.Doses != sum.Accepted {
				t.Fatalf("records %d, accepted %d, stored %d", sum.Records, sum.Accepted, inv.Doses)
			}
			if sum.Certificates == 0 || sum.Certificates != inv.EligiblePeople || sum.FacilitySignatures < sum.Certificates {
				t.Fatalf("%d certificates for %d eligible people from %d facility signatures", sum.Certificates, inv.EligiblePeople, sum.FacilitySignatures)
			}
			if sum.Sequential != (mode == "sequential") {
				t.Fatalf("sequential %v", sum.Sequential)
			}
			var names []string
			for _, s := range sum.Stages {
				names = append(names, s.Name)
			}
			if got := strings.Join(names, ","); got != "upload,match,facility sign,central sign,feed drain" {
				t.Fatalf("stages %s", got)
			}
			c := sum.Crypto
			if c.FacilitySignPerSec <= 0 || c.FacilityVerifyPerSec <= 0 || c.CentralSignPerSec <= 0 || c.CertificatesPerSec <= 0 || sum.RatioToCryptoBound <= 0 {
				t.Fatalf("crypto bound %+v, ratio %v", c, sum.RatioToCryptoBound)
			}
			if sum.PeakRSSBytes <= 0 || sum.DataDir != dir {
				t.Fatalf("peak RSS %d, data dir %q", sum.PeakRSSBytes, sum.DataDir)
			}
			for _, want := range []string{"end to end", "crypto-only bound", "ratio end to end / crypto bound", "invariants hold"} {
				if !strings.Contains(stderr, want) {
					t.Errorf("stderr lacks %q:\n%s", want, stderr)
				}
			}
			checkLoadFiles(t, sum.LoadFiles, 50)
		})
	}
}

// checkLoadFiles checks the wrk input: distinct people, one valid body or path a line.
func checkLoadFiles(t *testing.T, lf *bench.LoadFiles, want int) {
	t.Helper()
	if lf == nil || lf.People != want {
		t.Fatalf("load files %+v, want %d people", lf, want)
	}
	f, err := os.Open(lf.Lookups)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	seen := map[string]bool{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var q lookup.Query
		if err := json.Unmarshal(sc.Bytes(), &q); err != nil || len(q.Validate()) > 0 {
			t.Fatalf("lookup body %s: %v %v", sc.Text(), err, q.Validate())
		}
		if seen[q.IDNumber] {
			t.Fatalf("person %s twice", q.IDNumber)
		}
		seen[q.IDNumber] = true
	}
	if len(seen) != want {
		t.Fatalf("%d lookup bodies, want %d", len(seen), want)
	}
	b, err := os.ReadFile(lf.QRPaths)
	if err != nil {
		t.Fatal(err)
	}
	paths := strings.Fields(string(b))
	if len(paths) != want || !strings.HasPrefix(paths[0], "/v1/passports/") || !strings.HasSuffix(paths[0], "/qr.png") {
		t.Fatalf("%d QR paths, first %q", len(paths), paths[0])
	}
}
