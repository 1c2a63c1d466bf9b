package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/vaxpass/vaxpass/shared/domain/match"
	"github.com/vaxpass/vaxpass/shared/store/embedded"
	"github.com/vaxpass/vaxpass/shared/tool/progress"
	"github.com/vaxpass/vaxpass/shared/tool/registry"
	"github.com/vaxpass/vaxpass/shared/wire/cloud/admin"
)

// registryLoadSummary is what `registry load` prints on stdout (one JSON object).
type registryLoadSummary struct {
	Loaded    int `json:"loaded"`
	Added     int `json:"added"`
	Updated   int `json:"updated"`
	Unchanged int `json:"unchanged"`
	Rejected  int `json:"rejected"`
	Total     int `json:"registry_people"`
}

// runRegistryLoad is `vaxpass registry load FILE.csv`: it streams the extract into the
// embedded database (each person replacing whoever held the ID before, so loading a file
// twice is harmless). Bad lines are reported on stderr with their line number and field,
// and make the exit code 1; the good lines are loaded all the same.
func runRegistryLoad(ctx context.Context, e env, args []string) int {
	fs := flag.NewFlagSet("registry load", flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	var g globalFlags
	g.register(fs)
	checkpointDir := fs.String("checkpoint-dir", "", "--backend aws: keep the load's checkpoint in this directory (default: beside FILE.csv)")
	writers := fs.Int("writers", admin.DefaultWriters, fmt.Sprintf("--backend aws: parallel writers, 1..%d (%d fill a new on-demand table's 4,000 write units a second; a person costs 2)", admin.MaxWriters, admin.DefaultWriters))
	chunk := fs.Int("chunk", admin.DefaultChunkRecords, "--backend aws: records read between two checkpoints")
	maxRejected := fs.Int64("max-rejected", admin.DefaultMaxRejected, "--backend aws: stop the load past this many invalid lines (0: at the first; -1: no limit)")
	fs.Usage = func() {
		fmt.Fprintf(e.stderr, "usage: vaxpass registry load FILE.csv [--data DIR]\n"+
			"       vaxpass registry load FILE.csv --backend aws --stack NAME [--writers N] [--checkpoint-dir DIR] [--chunk N] [--max-rejected N]\n\n"+
			"Prints {\"loaded\",\"added\",\"updated\",\"unchanged\",\"rejected\",\"registry_people\"} on stdout\n"+
			"({\"records\",\"loaded\",\"rejected\",\"resumed_at\",\"writers\",\"throttled_retries\"} with --backend aws).\n"+
			"Exit 0 when every line loaded, 1 when some were rejected (reported on stderr) or the load failed.\n\n"+
			"With --backend aws the people go to the stack's registry table through parallel\n"+
			"writers (BatchWriteItem, throttling waited out), at national size too (100 million\n"+
			"people: see BENCHMARKS.md). A checkpoint beside the file makes the load resumable:\n"+
			"run the same command again after an interruption and it goes on where it stopped.\n"+
			"Progress (people/s, ETA) goes to stderr.\n\n")
		fs.PrintDefaults()
	}
	// The file may come before or after the flags.
	var files []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return 0
			}
			return 2
		}
		if fs.NArg() == 0 {
			break
		}
		files = append(files, fs.Arg(0))
		args = fs.Args()[1:]
	}
	if len(files) != 1 {
		fmt.Fprintln(e.stderr, "registry load: exactly one FILE.csv is required")
		fs.Usage()
		return 2
	}
	if err := g.check(); err != nil {
		fmt.Fprintf(e.stderr, "registry load: %v\n", err)
		return 2
	}
	awsOnly := ""
	fs.Visit(func(f *flag.Flag) {
		switch f.Name {
		case "checkpoint-dir", "writers", "chunk", "max-rejected":
			awsOnly = f.Name
		}
	})
	switch {
	case g.backend != backendAWS && awsOnly != "":
		fmt.Fprintf(e.stderr, "registry load: --%s is for --backend aws (the embedded load is one transaction per batch of its own)\n", awsOnly)
		return 2
	case *writers < 1 || *writers > admin.MaxWriters:
		fmt.Fprintf(e.stderr, "registry load: --writers must be 1..%d\n", admin.MaxWriters)
		return 2
	case *chunk < 25 || *chunk > 1_000_000:
		fmt.Fprintln(e.stderr, "registry load: --chunk must be 25..1000000")
		return 2
	case *maxRejected < -1:
		fmt.Fprintln(e.stderr, "registry load: --max-rejected must be -1 (no limit) or more")
		return 2
	}
	path := files[0]
	if g.backend == backendAWS {
		return registryLoadAWS(ctx, e, g, path, admin.LoadOptions{CheckpointDir: *checkpointDir, Writers: *writers,
			ChunkRecords: *chunk, MaxRejected: *maxRejected})
	}

	f, err := os.Open(path)
	if err != nil {
		fmt.Fprintf(e.stderr, "registry load: %v\n", err)
		return 1
	}
	defer f.Close()
	rd, err := registry.NewReader(f)
	if err != nil {
		fmt.Fprintf(e.stderr, "registry load: %s: %v\n", path, err)
		return 1
	}
	db, err := embedded.Open(g.dataDir)
	if err != nil {
		fmt.Fprintf(e.stderr, "registry load: %v\n", err)
		return 1
	}
	defer db.Close()

	var bar *progress.Reporter
	if fi, err := f.Stat(); err == nil && fi.Size() >= largeInput {
		bar = progress.New(e.stderr, progress.Options{Label: "registry people", Terminal: e.isTerminal})
	}
	rejects := bufio.NewWriter(e.stderr)
	rejected := 0
	var readErr error
	people := func(yield func(match.Person) bool) {
		for p, err := range rd.All() {
			if bar != nil {
				bar.Add(1)
			}
			var le *registry.LineError
			switch {
			case errors.As(err, &le):
				rejected++
				fmt.Fprintf(rejects, "registry load: %s: %v\n", path, err)
				continue
			case err != nil:
				readErr = err
				return
			}
			if !yield(p) {
				return
			}
		}
	}
	start := time.Now()
	st, err := db.LoadRegistry(ctx, people)
	if bar != nil {
		bar.Done()
	}
	rejects.Flush()
	if err == nil && readErr != nil {
		err = fmt.Errorf("%s: %w", path, readErr)
	}
	total, cerr := db.Registry().Count()
	if err == nil {
		err = cerr
	}
	fmt.Fprintf(e.stderr, "registry load: %d people loaded (%d added, %d updated, %d unchanged), %d lines rejected, in %s; the registry holds %d people\n",
		st.Loaded(), st.Added, st.Updated, st.Unchanged, rejected, time.Since(start).Round(time.Millisecond), total)
	if err != nil {
		fmt.Fprintf(e.stderr, "registry load: %v (the people counted above are stored; loading again is safe)\n", err)
		return 1
	}
	json.NewEncoder(e.stdout).Encode(registryLoadSummary{Loaded: st.Loaded(), Added: st.Added, Updated: st.Updated,
		Unchanged: st.Unchanged, Rejected: rejected, Total: total})
	if rejected > 0 {
		return 1
	}
	return 0
}

// registryLoadAWS loads the extract into the stack's registry table, resumably, printing
// where it is (people/s, ETA) to stderr.
func registryLoadAWS(ctx context.Context, e env, g globalFlags, path string, opt admin.LoadOptions) int {
	if _, err := os.Stat(path); err != nil {
		fmt.Fprintf(e.stderr, "registry load: %v\n", err)
		return 1
	}
	sys, code := openSystem(ctx, e, "registry load", g)
	if sys == nil {
		return code
	}
	defer sys.Close()
	rejects := bufio.NewWriter(e.stderr)
	// A terminal gets one line redrawn every second; a log a line every 10 seconds.
	opt.ProgressEvery = 10 * time.Second
	if e.isTerminal {
		opt.ProgressEvery = time.Second
	}
	first := true
	opt.Progress = func(p admin.LoadProgress) {
		if first { // called once before anything is read
			first = false
			if p.Skipped > 0 {
				fmt.Fprintf(e.stderr, "registry load: resuming after %d records (%d people loaded before the interruption)\n", p.Skipped, p.Loaded)
			}
			return
		}
		rejects.Flush() // the rejected lines read so far come before the status
		line := formatLoadProgress(p)
		if e.isTerminal {
			fmt.Fprintf(e.stderr, "\r%-100s", line)
		} else {
			fmt.Fprintln(e.stderr, line)
		}
	}
	opt.Rejected = func(le *registry.LineError) { fmt.Fprintf(rejects, "registry load: %s: %v\n", path, le) }
	start := time.Now()
	res, err := sys.Admin.LoadRegistry(ctx, path, opt)
	rejects.Flush()
	if e.isTerminal {
		fmt.Fprintln(e.stderr)
	}
	fmt.Fprintf(e.stderr, "registry load: %d people loaded into stack %q by %d writers, %d lines rejected, in %s\n",
		res.Loaded, g.stack, res.Writers, res.Rejected, time.Since(start).Round(time.Millisecond))
	if err != nil {
		fmt.Fprintf(e.stderr, "registry load: %v (run the same command again to resume)\n", err)
		return 1
	}
	json.NewEncoder(e.stdout).Encode(res)
	if res.Rejected > 0 {
		return 1
	}
	return 0
}

// formatLoadProgress is a status line without personal data: "registry load: 45.2% of the
// file, 1,234,567 people written (this run), 4,012 people/s, ETA 1:02:03, 17 throttled
// retries".
func formatLoadProgress(p admin.LoadProgress) string {
	pct := 100.0
	if p.Size > 0 {
		pct = 100 * float64(p.Offset) / float64(p.Size)
	}
	eta := "?"
	if d := p.ETA(); d > 0 || p.Offset >= p.Size {
		eta = d.Round(time.Second).String()
	}
	return fmt.Sprintf("registry load: %5.1f%% of the file, %d people written (this run), %.0f people/s, ETA %s, %d rejected, %d throttled retries",
		pct, p.Written, p.PeoplePerSecond(), eta, p.Rejected, p.Retries)
}
