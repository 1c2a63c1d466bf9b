// Package bench measures the embedded pipeline end to end: it generates a synthetic
// population (shared/tool/synth), loads its registry, and pushes every dose record through the
// same use cases and handlers `vaxpass serve` runs -- upload through the facility API,
// matching on the change feed, facility signing, central signing through the queue --
// then checks that nothing was lost or duplicated. It also measures, in the same process
// on the same cores, the crypto-only bound: how fast this machine does just the
// signatures and verifications each certificate needs.
package bench

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"time"

	"github.com/vaxpass/vaxpass/shared/tool/synth"
	"github.com/vaxpass/vaxpass/shared/wire/local"
)

// Progress is a running count shown while a stage works (shared/tool/progress.Reporter).
type Progress interface {
	Add(n int64)
	Done()
}

// Config says what to run.
type Config struct {
	People int    // people in the generated registry; as many dose records are generated
	Seed   uint64 // generator seed
	// DataDir is the data directory of the run: it must not hold a database yet.
	DataDir string
	// Facilities is how many vaccination sites upload the records (default 8).
	Facilities int
	// UploadBatch is the records per POST /v1/doses (default and at most 1,000).
	UploadBatch int
	// Workers is how many uploads and facility signing runs go at once (default
	// GOMAXPROCS); the pumps run as local.Options configures them.
	Workers int
	// Sequential runs the stages one after another, each alone on the machine, for
	// per-stage rates; by default they overlap as in `serve` (the matcher consumes the
	// feed while records are uploaded, central signing the queue while facilities sign).
	Sequential bool
	// CryptoDuration is how long each crypto-only operation is measured (default 3s).
	CryptoDuration time.Duration
	// NewProgress starts the progress display of a stage; nil shows nothing.
	NewProgress func(label string, total int64) Progress
	// Log receives one line per stage (what is starting); nil discards.
	Log func(format string, args ...any)
}

func (c Config) withDefaults() Config {
	if c.Facilities <= 0 {
		c.Facilities = 8
	}
	if c.UploadBatch <= 0 || c.UploadBatch > 1000 {
		c.UploadBatch = 1000
	}
	if c.Workers <= 0 {
		c.Workers = runtime.GOMAXPROCS(0)
	}
	if c.CryptoDuration <= 0 {
		c.CryptoDuration = 3 * time.Second
	}
	if c.NewProgress == nil {
		c.NewProgress = func(string, int64) Progress { return nopProgress{} }
	}
	if c.Log == nil {
		c.Log = func(string, ...any) {}
	}
	return c
}

type nopProgress struct{}

func (nopProgress) Add(int64) {}
func (nopProgress) Done()     {}

// ErrConfig marks a Config that cannot run.
var ErrConfig = errors.New("invalid bench config")

// ErrInvariant marks a run whose end state breaks an invariant (a record not matched, a
// person without a certificate or with two).
var ErrInvariant = errors.New("pipeline invariant broken")

// Stage is one stage's figures. Pipelined stages overlap: From is when the stage began,
// in seconds after the pipeline started, and Seconds how long it ran from then.
type Stage struct {
	Name    string  `json:"name"`
	Items   int     `json:"items"`
	Unit    string  `json:"unit"`
	From    float64 `json:"from_second"`
	Seconds float64 `json:"seconds"`
	PerSec  float64 `json:"per_second"`
}

// Result is what a run measured.
type Result struct {
	Machine Machine `json:"machine"`
	People  int     `json:"people"`
	Seed    uint64  `json:"seed"`
	// Records generated; Accepted by the upload (the rest rejected or duplicates).
	Records    int  `json:"records"`
	Accepted   int  `json:"accepted"`
	Rejected   int  `json:"rejected"`
	Duplicates int  `json:"duplicates"`
	Sequential bool `json:"sequential"`
	Facilities int  `json:"facilities"`
	Workers    int  `json:"workers"`
	// FacilitySignatures sent to central signing; Certificates issued (active at the end).
	FacilitySignatures int `json:"facility_signatures"`
	Certificates       int `json:"certificates"`

	Setup  []Stage `json:"setup"`  // generation and registry load: not part of end to end
	Stages []Stage `json:"stages"` // upload, match, facility sign, central sign, feed drain

	EndToEndSeconds    float64 `json:"end_to_end_seconds"`
	RecordsPerSec      float64 `json:"end_to_end_records_per_second"`
	CertificatesPerSec float64 `json:"end_to_end_certificates_per_second"`
	Crypto             Crypto  `json:"crypto_bound"`
	RatioToCryptoBound float64 `json:"ratio_to_crypto_bound"`
	// Memory peaks: PeakRSSBytes is VmHWM (mapped database pages included, which the
	// kernel can drop); PeakAnonBytes the process's own memory; PeakGoBytes the runtime's.
	PeakRSSBytes        int64   `json:"peak_rss_bytes"`
	PeakAnonBytes       int64   `json:"peak_anon_rss_bytes"`
	PeakFileBytes       int64   `json:"peak_file_rss_bytes"`
	PeakGoBytes         int64   `json:"peak_go_runtime_bytes"`
	DatabaseBytes       int64   `json:"database_bytes"`
	LoadAverageAfterRun float64 `json:"load_average_1m_after"`

	Invariants Invariants `json:"invariants"`
}

// Run generates the population into cfg.DataDir and runs the pipeline on it.
func Run(ctx context.Context, cfg Config) (Result, error) {
	cfg = cfg.withDefaults()
	res := Result{People: cfg.People, Seed: cfg.Seed, Facilities: cfg.Facilities, Workers: cfg.Workers, Sequential: cfg.Sequential, Machine: ReadMachine()}
	switch {
	case cfg.People <= 0 || cfg.People > synth.MaxPeople:
		return res, fmt.Errorf("%w: people must be 1..%d", ErrConfig, synth.MaxPeople)
	case cfg.DataDir == "":
		return res, fmt.Errorf("%w: no data directory", ErrConfig)
	case cfg.Facilities > 999:
		return res, fmt.Errorf("%w: at most 999 facilities", ErrConfig)
	}
	if _, err := os.Stat(filepath.Join(cfg.DataDir, "vaxpass.db")); err == nil {
		return res, fmt.Errorf("%w: %s already holds a database: the bench needs a fresh data directory", ErrConfig, cfg.DataDir)
	}
	peaks := startPeakSampler()
	defer peaks.stop()

	popDir := filepath.Join(cfg.DataDir, "population")
	cfg.Log("generating %d people into %s", cfg.People, popDir)
	t0 := time.Now()
	bar := cfg.NewProgress("generate people", int64(cfg.People))
	sum, err := synth.WriteDir(ctx, popDir, synth.Config{People: cfg.People, Seed: cfg.Seed}, bar)
	bar.Done()
	if err != nil {
		return res, fmt.Errorf("generate population: %w", err)
	}
	res.Records = sum.Records
	res.Setup = append(res.Setup, stage("generate", sum.People, "people", time.Since(t0)))

	// The system as `serve` assembles it; idle pumps look for work every 20ms rather
	// than 200ms so that the stage boundaries are sharp.
	sys, err := local.OpenLocal(local.Options{DataDir: cfg.DataDir, FacilitySignEvery: -1, PollInterval: 20 * time.Millisecond})
	if err != nil {
		return res, err
	}
	defer sys.Close()
	r := &runner{cfg: cfg, sys: sys, popDir: popDir, res: &res}

	t0 = time.Now()
	n, err := r.loadRegistry(ctx)
	if err != nil {
		return res, err
	}
	res.Setup = append(res.Setup, stage("registry load", n, "people", time.Since(t0)))
	if err := r.addFacilities(ctx); err != nil {
		return res, err
	}

	start := time.Now()
	if err := r.pipeline(ctx, start); err != nil {
		return res, err
	}
	elapsed := time.Since(start)
	res.EndToEndSeconds = elapsed.Seconds()
	// The peak of the run itself, before the checks below hold their own tables.
	pk := peaks.stop()
	res.PeakRSSBytes, res.PeakAnonBytes, res.PeakFileBytes, res.PeakGoBytes = pk.RSS, pk.Anon, pk.File, pk.GoTotal
	if fi, err := os.Stat(sys.DB.Path()); err == nil {
		res.DatabaseBytes = fi.Size()
	}

	cfg.Log("checking invariants")
	if res.Invariants, err = r.checkInvariants(ctx); err != nil {
		return res, err
	}
	res.Certificates = res.Invariants.ActiveCertificates

	// The crypto-only bound: on the same keys, the same cores and the payloads this run
	// produced, right after it (the machine as loaded as during the run).
	cfg.Log("measuring the crypto-only bound (%s per operation)", cfg.CryptoDuration)
	if res.Crypto, err = r.measureCrypto(ctx); err != nil {
		return res, err
	}
	res.RecordsPerSec = float64(res.Accepted) / elapsed.Seconds()
	res.CertificatesPerSec = float64(res.Certificates) / elapsed.Seconds()
	res.Crypto.finish(res.FacilitySignatures, res.Invariants.CertificatesIssued, res.Certificates)
	if res.Crypto.CertificatesPerSec > 0 {
		res.RatioToCryptoBound = res.CertificatesPerSec / res.Crypto.CertificatesPerSec
	}
	res.LoadAverageAfterRun = LoadAverage()
	if v := res.Invariants.Violations; len(v) > 0 {
		return res, fmt.Errorf("%w: %s", ErrInvariant, v[0])
	}
	return res, nil
}

func stage(name string, items int, unit string, d time.Duration) Stage {
	s := Stage{Name: name, Items: items, Unit: unit, Seconds: d.Seconds()}
	if d > 0 {
		s.PerSec = float64(items) / d.Seconds()
	}
	return s
}

// runner holds the state of one run.
type runner struct {
	cfg    Config
	sys    *local.Local
	popDir string
	res    *Result
	keys   []string // API keys of the facilities, by index
}
