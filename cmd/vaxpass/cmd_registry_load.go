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
	fs.Usage = func() {
		fmt.Fprintf(e.stderr, "usage: vaxpass registry load FILE.csv [--data DIR]\n\n"+
			"Prints {\"loaded\",\"added\",\"updated\",\"unchanged\",\"rejected\",\"registry_people\"} on stdout.\n"+
			"Exit 0 when every line loaded, 1 when some were rejected (reported on stderr) or the load failed.\n\n")
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
	if g.backend != "embedded" {
		fmt.Fprintf(e.stderr, "registry load: --backend %s is not supported yet (only embedded)\n", g.backend)
		return 2
	}
	path := files[0]

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
