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
	batch := fs.Int("batch", 1000, "--backend aws: people written between two checkpoints")
	fs.Usage = func() {
		fmt.Fprintf(e.stderr, "usage: vaxpass registry load FILE.csv [--data DIR]\n"+
			"       vaxpass registry load FILE.csv --backend aws --stack NAME [--checkpoint-dir DIR] [--batch N]\n\n"+
			"Prints {\"loaded\",\"added\",\"updated\",\"unchanged\",\"rejected\",\"registry_people\"} on stdout\n"+
			"({\"records\",\"loaded\",\"rejected\",\"resumed_at\"} with --backend aws).\n"+
			"Exit 0 when every line loaded, 1 when some were rejected (reported on stderr) or the load failed.\n\n"+
			"With --backend aws the people go to the stack's registry table in batches, and a\n"+
			"checkpoint after each batch makes the load resumable: run the same command again\n"+
			"after an interruption and it goes on where it stopped. (A national registry goes\n"+
			"through S3 and DynamoDB's table import instead.)\n\n")
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
		if f.Name == "checkpoint-dir" || f.Name == "batch" {
			awsOnly = f.Name
		}
	})
	switch {
	case g.backend != backendAWS && awsOnly != "":
		fmt.Fprintf(e.stderr, "registry load: --%s is for --backend aws (the embedded load is one transaction per batch of its own)\n", awsOnly)
		return 2
	case *batch < 1 || *batch > 100_000:
		fmt.Fprintln(e.stderr, "registry load: --batch must be 1..100000")
		return 2
	}
	path := files[0]
	if g.backend == backendAWS {
		return registryLoadAWS(ctx, e, g, path, admin.LoadOptions{CheckpointDir: *checkpointDir, BatchSize: *batch})
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

// registryLoadAWS loads the extract into the stack's registry table, resumably.
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
	var bar *progress.Reporter
	var shown int64
	opt.Progress = func(p admin.LoadProgress) {
		if bar == nil {
			if p.Skipped > 0 {
				fmt.Fprintf(e.stderr, "registry load: resuming after %d records (%d people loaded before the interruption)\n", p.Skipped, p.Loaded)
			}
			bar = progress.New(e.stderr, progress.Options{Label: "registry bytes", Total: p.Size, Terminal: e.isTerminal})
		}
		bar.Add(p.Offset - shown)
		shown = p.Offset
	}
	rejects := bufio.NewWriter(e.stderr)
	opt.Rejected = func(le *registry.LineError) { fmt.Fprintf(rejects, "registry load: %s: %v\n", path, le) }
	start := time.Now()
	res, err := sys.Admin.LoadRegistry(ctx, path, opt)
	if bar != nil {
		bar.Done()
	}
	rejects.Flush()
	fmt.Fprintf(e.stderr, "registry load: %d people loaded into stack %q, %d lines rejected, in %s\n",
		res.Loaded, g.stack, res.Rejected, time.Since(start).Round(time.Millisecond))
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
