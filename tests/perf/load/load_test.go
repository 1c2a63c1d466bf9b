// Package load runs the lookup load test: wrk (Debian package wrk) against
// POST /v1/passports/lookup and the QR images of distinct generated people, on a system
// the bench pipeline filled. It is skipped where wrk is not installed.
//
// The documented run (BENCHMARKS.md) is tests/perf/load/run.sh; this test is its small form:
//
//	go test ./tests/perf/load -run Load -v                      # 5,000 people, 3 s per run
//	VAXPASS_LOAD_PEOPLE=100000 VAXPASS_LOAD_DURATION=30s go test ./tests/perf/load -run Load -v -timeout 30m
package load

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vaxpass/vaxpass/shared/edge/apigw"
	"github.com/vaxpass/vaxpass/shared/testkit/server"
	"github.com/vaxpass/vaxpass/shared/tool/bench"
	"github.com/vaxpass/vaxpass/shared/wire/local"
)

// loadRate lifts the public API's per-client limit (20/s in production): wrk sends
// everything from one address.
var loadRate = apigw.RateLimit{Rate: 1e9, Burst: 1 << 30, MaxKeys: 100_000}

func TestLookupLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the pipeline and two wrk runs")
	}
	wrk, err := exec.LookPath("wrk")
	if err != nil {
		t.Skip("wrk is not installed (Debian: apt-get install -y wrk)")
	}
	people := envInt(t, "VAXPASS_LOAD_PEOPLE", 5000)
	duration := 3 * time.Second
	if v := os.Getenv("VAXPASS_LOAD_DURATION"); v != "" {
		if duration, err = time.ParseDuration(v); err != nil {
			t.Fatalf("VAXPASS_LOAD_DURATION: %v", err)
		}
	}
	ctx := t.Context()
	dir := t.TempDir()
	res, err := bench.Run(ctx, bench.Config{People: people, Seed: 7, DataDir: dir, CryptoDuration: 100 * time.Millisecond})
	if err != nil {
		t.Fatalf("bench run: %v", err)
	}
	srv := server.Open(t, server.Options{Options: local.Options{DataDir: dir, FacilitySignEvery: -1, LookupRate: loadRate}})
	files, err := bench.WriteLoadFiles(ctx, srv.Local, filepath.Join(dir, "load"), people)
	if err != nil {
		t.Fatal(err)
	}
	if files.People != res.Certificates {
		t.Fatalf("load files cover %d people, the run certified %d", files.People, res.Certificates)
	}
	url := srv.URL

	for _, run := range []struct{ name, script, file string }{
		{"lookup", "lookup.lua", files.Lookups},
		{"qr", "qr.lua", files.QRPaths},
	} {
		t.Run(run.name, func(t *testing.T) {
			out, err := exec.CommandContext(ctx, wrk, "-t2", "-c64", "-d"+duration.String(), "--latency",
				"-s", run.script, url, "--", run.file).CombinedOutput()
			if err != nil {
				t.Fatalf("wrk: %v\n%s", err, out)
			}
			r, err := ParseWrk(string(out))
			if err != nil {
				t.Fatalf("%v\n%s", err, out)
			}
			t.Logf("%s over %d distinct people, %d CPUs, load average %.2f: %.0f requests/s, p50 %v, p99 %v",
				run.name, files.People, runtime.NumCPU(), bench.LoadAverage(), r.RequestsPerSec, r.P50, r.P99)
			if r.Requests == 0 || r.NonSuccess != 0 || r.SocketErrors != 0 {
				t.Errorf("%d requests, %d answers not 2xx, %d socket errors\n%s", r.Requests, r.NonSuccess, r.SocketErrors, out)
			}
		})
	}
}

// WrkResult is what a `wrk --latency` run reported.
type WrkResult struct {
	Requests       int
	RequestsPerSec float64
	P50, P90, P99  time.Duration
	NonSuccess     int // "Non-2xx or 3xx responses"
	SocketErrors   int // connect + read + write + timeout
}

var (
	wrkRequests  = regexp.MustCompile(`(?m)^\s*(\d+) requests in `)
	wrkRate      = regexp.MustCompile(`(?m)^Requests/sec:\s+([\d.]+)`)
	wrkPercent   = regexp.MustCompile(`(?m)^\s+(50|90|99)%\s+([\d.]+)(us|ms|s)\s*$`)
	wrkNon2xx    = regexp.MustCompile(`(?m)^\s*Non-2xx or 3xx responses: (\d+)`)
	wrkSocketErr = regexp.MustCompile(`(?m)^\s*Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)`)
)

// ParseWrk reads the figures of a `wrk --latency` report.
func ParseWrk(out string) (WrkResult, error) {
	var r WrkResult
	m := wrkRequests.FindStringSubmatch(out)
	if m == nil {
		return r, errors.New("wrk report: no request count")
	}
	r.Requests, _ = strconv.Atoi(m[1])
	if m = wrkRate.FindStringSubmatch(out); m == nil {
		return r, errors.New("wrk report: no Requests/sec")
	}
	r.RequestsPerSec, _ = strconv.ParseFloat(m[1], 64)
	for _, p := range wrkPercent.FindAllStringSubmatch(out, -1) {
		d, err := time.ParseDuration(p[2] + strings.Replace(p[3], "us", "µs", 1))
		if err != nil {
			return r, fmt.Errorf("wrk report: latency %s%s: %w", p[2], p[3], err)
		}
		switch p[1] {
		case "50":
			r.P50 = d
		case "90":
			r.P90 = d
		case "99":
			r.P99 = d
		}
	}
	if r.P50 == 0 || r.P99 == 0 {
		return r, errors.New("wrk report: no latency distribution (run with --latency)")
	}
	if m = wrkNon2xx.FindStringSubmatch(out); m != nil {
		r.NonSuccess, _ = strconv.Atoi(m[1])
	}
	if m = wrkSocketErr.FindStringSubmatch(out); m != nil {
		for _, v := range m[1:] {
			n, _ := strconv.Atoi(v)
			r.SocketErrors += n
		}
	}
	return r, nil
}

func envInt(t *testing.T, name string, def int) int {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 {
		t.Fatalf("%s: want a positive number, got %q", name, v)
	}
	return n
}
