package load

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestParseWrk(t *testing.T) {
	for _, tc := range []struct {
		file string
		want WrkResult
	}{
		// A real report of tests/perf/load/run.sh (lookup, 8 connections).
		{"wrk-lookup.txt", WrkResult{Requests: 443144, RequestsPerSec: 14753.61,
			P50: 352 * time.Microsecond, P90: 4140 * time.Microsecond, P99: 10930 * time.Microsecond}},
		// The same layout edited to carry every error line wrk prints, and seconds.
		{"wrk-errors-edited.txt", WrkResult{Requests: 4820, RequestsPerSec: 4812.5,
			P50: 750 * time.Microsecond, P90: 1100 * time.Microsecond, P99: 2 * time.Second, NonSuccess: 17, SocketErrors: 5}},
	} {
		t.Run(tc.file, func(t *testing.T) {
			b, err := os.ReadFile(filepath.Join("testdata", tc.file))
			if err != nil {
				t.Fatal(err)
			}
			got, err := ParseWrk(string(b))
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Fatalf("ParseWrk = %+v, want %+v", got, tc.want)
			}
		})
	}
	for _, bad := range []string{"", "Running 1s test\n  10 requests in 1.00s\nRequests/sec: 10\n"} {
		if _, err := ParseWrk(bad); err == nil {
			t.Errorf("ParseWrk(%q) accepted a report without figures", bad)
		}
	}
}
