package bench

import (
	"context"
	"errors"
	"math"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/vaxpass/vaxpass/shared/domain/match"
)

func TestSourceIDOf(t *testing.T) {
	for _, tc := range []struct{ line, want string }{
		{`{"source_id":"F079012-0000000001","full_name":"A"}`, "F079012-0000000001"},
		{`{"full_name":"A","source_id":"x"}`, ""}, // not the generator's layout
		{`{"source_id":"unterminated`, ""},
		{``, ""},
	} {
		if got := string(sourceIDOf([]byte(tc.line))); got != tc.want {
			t.Errorf("sourceIDOf(%s) = %q, want %q", tc.line, got, tc.want)
		}
	}
}

// A generated site keeps its facility: records of one site are one facility's upload.
func TestFacilityOfIsPerSite(t *testing.T) {
	r := &runner{cfg: Config{Facilities: 8}}
	seen := map[int]bool{}
	for _, site := range []string{"F079012", "F001003", "F048001", "F092007", "F031002", "F027011"} {
		a := r.facilityOf([]byte(site + "-0000000001"))
		if b := r.facilityOf([]byte(site + "-0000099999")); a != b {
			t.Fatalf("site %s: facilities %d and %d", site, a, b)
		}
		if a < 0 || a >= 8 {
			t.Fatalf("site %s: facility %d of 8", site, a)
		}
		seen[a] = true
	}
	if len(seen) < 2 {
		t.Fatalf("six sites all on facility %v", seen)
	}
}

func TestTruthTable(t *testing.T) {
	tt := &truthTable{byRecord: make([]uint8, 3), statuses: []match.Status{match.Verified, match.NoID}}
	tt.byRecord[0], tt.byRecord[2] = 1, 2
	for _, tc := range []struct {
		source string
		want   match.Status
		ok     bool
	}{
		{"F079012-0000000001", match.Verified, true},
		{"F079012-0000000003", match.NoID, true},
		{"F079012-0000000002", "", false}, // no truth line
		{"F079012-0000000004", "", false}, // past the records
		{"F079012-0000000000", "", false},
		{"no-number", "", false},
		{"nodash", "", false},
	} {
		got, ok := tt.status(tc.source)
		if got != tc.want || ok != tc.ok {
			t.Errorf("status(%s) = %q, %v; want %q, %v", tc.source, got, ok, tc.want, tc.ok)
		}
	}
}

func TestCryptoBound(t *testing.T) {
	c := Crypto{FacilitySignPerSec: 100, FacilityVerifyPerSec: 50, CentralSignPerSec: 100}
	// 10 + 20 + 10 ms per certificate.
	c.finish(10, 10, 10)
	if math.Abs(c.CertificatesPerSec-25) > 1e-9 || math.Abs(c.RunMixPerSec-25) > 1e-9 {
		t.Fatalf("bound %v, mix %v; want 25 and 25", c.CertificatesPerSec, c.RunMixPerSec)
	}
	// Twice the facility signatures: 10 certificates in 0.2 + 0.4 + 0.1 s.
	c.finish(20, 10, 10)
	if math.Abs(c.RunMixPerSec-10/0.7) > 1e-9 {
		t.Fatalf("mix %v, want %v", c.RunMixPerSec, 10/0.7)
	}
	none := Crypto{}
	none.finish(1, 1, 1)
	if none.CertificatesPerSec != 0 {
		t.Fatalf("a bound without rates: %v", none.CertificatesPerSec)
	}
	if m := median([]float64{5, 1, 3, 9, 7}); m != 5 {
		t.Fatalf("median %v", m)
	}
}

func TestRunRefusesADatabase(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "vaxpass.db"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, cfg := range []Config{
		{People: 10, DataDir: dir},
		{People: 0, DataDir: t.TempDir()},
		{People: 10},
		{People: 10, DataDir: t.TempDir(), Facilities: 1000},
	} {
		if _, err := Run(context.Background(), cfg); !errors.Is(err, ErrConfig) {
			t.Errorf("Run(%+v) = %v, want ErrConfig", cfg, err)
		}
	}
}

func TestRunSmallPopulation(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the whole pipeline")
	}
	res, err := Run(context.Background(), Config{People: 800, Seed: 9, DataDir: t.TempDir(), Facilities: 3, CryptoDuration: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	inv := res.Invariants
	if len(inv.Violations) != 0 || inv.TruthMismatches != 0 || inv.Doses != res.Records || res.Certificates == 0 {
		t.Fatalf("result %+v", res)
	}
	if res.EndToEndSeconds <= 0 || res.CertificatesPerSec <= 0 || res.RatioToCryptoBound <= 0 || res.PeakRSSBytes <= 0 {
		t.Fatalf("figures missing: %+v", res)
	}
}
