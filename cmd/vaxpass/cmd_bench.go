package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/vaxpass/vaxpass/shared/edge/apigw"
	"github.com/vaxpass/vaxpass/shared/tool/bench"
	"github.com/vaxpass/vaxpass/shared/tool/progress"
	"github.com/vaxpass/vaxpass/shared/wire/local"
)

func init() {
	register("bench", "measure the embedded pipeline end to end on a generated population", runBench)
}

// benchSummary is what `vaxpass bench` prints on stdout: the run's figures, and where the
// load-run files are when --load-files was given.
type benchSummary struct {
	bench.Result
	DataDir   string           `json:"data_dir"`
	LoadFiles *bench.LoadFiles `json:"load_files,omitempty"`
}

// runBench is `vaxpass bench --people N [--seed S] [--data DIR] ...`.
func runBench(ctx context.Context, e env, args []string) int {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	var g globalFlags
	g.register(fs)
	people := fs.Int("people", 0, "people in the generated registry (as many dose records are generated; required)")
	seed := fs.Uint64("seed", 1, "generator seed")
	facilities := fs.Int("facilities", 8, "vaccination sites the records are uploaded from")
	workers := fs.Int("workers", 0, "uploads and facility signing runs at once (default GOMAXPROCS)")
	sequential := fs.Bool("sequential", false, "run the stages one after another for per-stage rates (default: overlapped, as serve runs them)")
	cryptoTime := fs.Duration("crypto-time", 3*time.Second, "how long each crypto-only operation is measured (in 5 slices, taken in turn)")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the run to this file")
	memProfile := fs.String("memprofile", "", "write a heap profile at the end of the run to this file")
	keep := fs.Bool("keep", false, "keep the data directory when it is a temporary one")
	loadFiles := fs.Int("load-files", 0, "write lookup bodies and QR paths of up to this many certified people into DATA/load for the wrk run")
	serve := fs.String("serve", "", "after the run, serve the API on this address for load runs (public rate limit lifted) until interrupted")
	fs.Usage = func() {
		fmt.Fprintf(e.stderr, "usage: vaxpass bench --people N [--seed S] [--data DIR] [flags]\n\n"+
			"Generates N people, uploads their dose records through the facility API, matches,\n"+
			"signs (facility and central) on the embedded backend, checks that every eligible\n"+
			"person has exactly one certificate, and prints the rates: a JSON summary on stdout,\n"+
			"a table on stderr. Without --data the run uses a temporary directory.\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	dataSet := false
	fs.Visit(func(f *flag.Flag) { dataSet = dataSet || f.Name == "data" })
	switch {
	case fs.NArg() > 0:
		fmt.Fprintf(e.stderr, "bench: unexpected argument %q\n", fs.Arg(0))
		return 2
	case g.backend != "embedded":
		fmt.Fprintln(e.stderr, "bench: only --backend embedded is measured here; see BENCHMARKS.md for AWS")
		return 2
	case *people <= 0:
		fmt.Fprintln(e.stderr, "bench: --people must be positive")
		return 2
	case *facilities < 1 || *facilities > 999:
		fmt.Fprintln(e.stderr, "bench: --facilities must be 1..999")
		return 2
	case *workers < 0 || *loadFiles < 0 || *cryptoTime <= 0:
		fmt.Fprintln(e.stderr, "bench: --workers, --load-files and --crypto-time must not be negative")
		return 2
	}

	dir := g.dataDir
	if !dataSet {
		tmp, err := os.MkdirTemp("", "vaxpass-bench-")
		if err != nil {
			fmt.Fprintf(e.stderr, "bench: %v\n", err)
			return 1
		}
		dir = tmp
		if !*keep && *serve == "" {
			defer os.RemoveAll(tmp)
		}
	}

	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			fmt.Fprintf(e.stderr, "bench: %v\n", err)
			return 1
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			fmt.Fprintf(e.stderr, "bench: cpu profile: %v\n", err)
			return 1
		}
		defer pprof.StopCPUProfile()
	}

	cfg := bench.Config{
		People: *people, Seed: *seed, DataDir: dir, Facilities: *facilities, Workers: *workers,
		Sequential: *sequential, CryptoDuration: *cryptoTime,
		NewProgress: func(label string, total int64) bench.Progress {
			return progress.New(e.stderr, progress.Options{Label: label, Total: total, Terminal: e.isTerminal})
		},
		Log: func(format string, args ...any) { fmt.Fprintf(e.stderr, "bench: "+format+"\n", args...) },
	}
	res, runErr := bench.Run(ctx, cfg)
	if *memProfile != "" {
		if err := writeHeapProfile(*memProfile); err != nil {
			fmt.Fprintf(e.stderr, "bench: heap profile: %v\n", err)
		}
	}
	sum := benchSummary{Result: res, DataDir: dir}
	if runErr == nil && *loadFiles > 0 {
		lf, err := writeLoadFiles(ctx, dir, *loadFiles)
		if err != nil {
			runErr = fmt.Errorf("load files: %w", err)
		} else {
			sum.LoadFiles = &lf
		}
	}
	if len(res.Stages) > 0 {
		printBenchTable(e.stderr, res)
	}
	enc := json.NewEncoder(e.stdout)
	enc.SetIndent("", "  ")
	if err := enc.Encode(sum); err != nil {
		fmt.Fprintf(e.stderr, "bench: %v\n", err)
		return 1
	}
	if runErr != nil {
		fmt.Fprintf(e.stderr, "bench: %v\n", runErr)
		return 1
	}
	if *serve != "" {
		return serveForLoad(ctx, e, dir, *serve)
	}
	return 0
}

func writeHeapProfile(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	runtime.GC()
	if err := pprof.WriteHeapProfile(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func writeLoadFiles(ctx context.Context, dir string, max int) (bench.LoadFiles, error) {
	sys, err := local.OpenLocal(local.Options{DataDir: dir, FacilitySignEvery: -1})
	if err != nil {
		return bench.LoadFiles{}, err
	}
	defer sys.Close()
	return bench.WriteLoadFiles(ctx, sys, filepath.Join(dir, "load"), max)
}

// LoadRunRate is the public API's per-client limit while serving for a load run: wrk
// sends everything from one address, which the production limit (20/s) would refuse.
var LoadRunRate = apigw.RateLimit{Rate: 1e9, Burst: 1 << 30, MaxKeys: 100_000}

// serveForLoad serves the benched data directory with the public rate limit lifted.
func serveForLoad(ctx context.Context, e env, dir, addr string) int {
	sys, err := local.OpenLocal(local.Options{DataDir: dir, FacilitySignEvery: -1, LookupRate: LoadRunRate})
	if err != nil {
		fmt.Fprintf(e.stderr, "bench: serve: %v\n", err)
		return 1
	}
	defer sys.Close()
	err = sys.Run(ctx, addr, func(a net.Addr) {
		fmt.Fprintf(e.stderr, "bench: serving %s on http://%s for load runs (public rate limit lifted); interrupt to stop\n", dir, a)
	})
	if err != nil {
		fmt.Fprintf(e.stderr, "bench: serve: %v\n", err)
		return 1
	}
	return 0
}

// printBenchTable writes the human summary.
func printBenchTable(w io.Writer, r bench.Result) {
	m := r.Machine
	fmt.Fprintf(w, "\nmachine: %d CPUs (GOMAXPROCS %d), %s, %s %s/%s, load average %.2f before, %.2f after\n",
		m.CPUs, m.GOMAXPROCS, m.CPUModel, m.GoVersion, m.OS, m.Arch, m.LoadAvg1m, r.LoadAverageAfterRun)
	fmt.Fprintf(w, "population: %d people, %d records (%d accepted, %d rejected, %d duplicates), %d facilities, %d workers\n\n",
		r.People, r.Records, r.Accepted, r.Rejected, r.Duplicates, r.Facilities, r.Workers)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	mode := "overlapped as in serve"
	if r.Sequential {
		mode = "one after another"
	}
	fmt.Fprintf(w, "stages %s:\n", mode)
	fmt.Fprintln(tw, "stage\titems\tunit\tfrom s\tseconds\tper second\t")
	for _, s := range r.Setup {
		fmt.Fprintf(tw, "(setup) %s\t%d\t%s\t\t%.2f\t%.0f\t\n", s.Name, s.Items, s.Unit, s.Seconds, s.PerSec)
	}
	for _, s := range r.Stages {
		fmt.Fprintf(tw, "%s\t%d\t%s\t%.2f\t%.2f\t%.0f\t\n", s.Name, s.Items, s.Unit, s.From, s.Seconds, s.PerSec)
	}
	fmt.Fprintf(tw, "end to end\t%d\tcertificates\t0.00\t%.2f\t%.0f\t\n", r.Certificates, r.EndToEndSeconds, r.CertificatesPerSec)
	fmt.Fprintf(tw, "end to end\t%d\trecords\t0.00\t%.2f\t%.0f\t\n", r.Accepted, r.EndToEndSeconds, r.RecordsPerSec)
	tw.Flush()
	c := r.Crypto
	fmt.Fprintf(w, "\ncrypto only (%d workers): facility sign %.0f/s, facility verify %.0f/s, central sign %.0f/s\n",
		c.Workers, c.FacilitySignPerSec, c.FacilityVerifyPerSec, c.CentralSignPerSec)
	fmt.Fprintf(w, "crypto-only bound: %.0f certificates/s (one of each); %.0f/s for this run's mix (%d facility signatures, %d certificates sealed)\n",
		c.CertificatesPerSec, c.RunMixPerSec, r.FacilitySignatures, r.Invariants.CertificatesIssued)
	mix := 0.0
	if c.RunMixPerSec > 0 {
		mix = r.CertificatesPerSec / c.RunMixPerSec
	}
	fmt.Fprintf(w, "ratio end to end / crypto bound: %.2f (%.2f against the run's mix)\n", r.RatioToCryptoBound, mix)
	mib := func(n int64) float64 { return float64(n) / (1 << 20) }
	fmt.Fprintf(w, "peak memory: %.0f MiB resident (VmHWM) = at most %.0f MiB private (RssAnon; Go runtime %.0f MiB) + at most %.0f MiB of mapped database pages (RssFile; database file %.0f MiB)\n",
		mib(r.PeakRSSBytes), mib(r.PeakAnonBytes), mib(r.PeakGoBytes), mib(r.PeakFileBytes), mib(r.DatabaseBytes))
	inv := r.Invariants
	verdict := "hold"
	if len(inv.Violations) > 0 {
		verdict = "BROKEN: " + strings.Join(inv.Violations, "; ")
	}
	fmt.Fprintf(w, "invariants %s: %d doses, %d unmatched, %d eligible people, %d active certificates (%d superseded), queue left %d, feed lag %d; %d statuses differ from the generator's truth\n",
		verdict, inv.Doses, inv.Unmatched, inv.EligiblePeople, inv.ActiveCertificates, inv.Superseded, inv.QueueLeft, inv.FeedLag, inv.TruthMismatches)
}
