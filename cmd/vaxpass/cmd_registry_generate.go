package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"path/filepath"
	"time"

	"github.com/vaxpass/vaxpass/shared/domain/match"
	"github.com/vaxpass/vaxpass/shared/tool/progress"
	"github.com/vaxpass/vaxpass/shared/tool/synth"
)

// generateSummary is what `registry generate` prints on stdout (one JSON object), for
// scripts and tests to compare with `vaxpass match`.
type generateSummary struct {
	People          int                  `json:"people"`
	Vaccinated      int                  `json:"vaccinated"`
	Records         int                  `json:"records"`
	Seed            uint64               `json:"seed"`
	Mix             string               `json:"mix"`
	RecordsByStatus map[match.Status]int `json:"records_by_status"`
	PeopleByClass   map[synth.Class]int  `json:"people_by_class"`
	Files           map[string]string    `json:"files"`
}

// runRegistryGenerate is `vaxpass registry generate`: a synthetic registry, dose records
// with planted errors and their ground truth (shared/tool/synth). args follow "generate".
func runRegistryGenerate(ctx context.Context, e env, args []string) int {
	fs := flag.NewFlagSet("registry generate", flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	var g globalFlags
	g.register(fs)
	people := fs.Int("people", 0, "people in the registry (required)")
	records := fs.Int("records", 0, "dose records to write (default: as many as people)")
	seed := fs.Uint64("seed", 1, "random seed: the same people, records and seed give the same files")
	out := fs.String("out", ".", "output directory for "+synth.RegistryFile+", "+synth.RecordsFile+", "+synth.TruthFile)
	mixFlag := fs.String("mix", "", "error mix over the default, e.g. no_id=0.1,wrong_name=0.05 (\"only,...\" starts empty)")
	fs.Usage = func() {
		fmt.Fprintf(e.stderr, "usage: vaxpass registry generate --people N [--records M] [--seed S] [--out DIR] [--mix ...]\n\n")
		fs.PrintDefaults()
		fmt.Fprintf(e.stderr, "\nclasses: %v\n", synth.Classes)
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(e.stderr, "registry generate: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	if *people <= 0 || *people > synth.MaxPeople {
		fmt.Fprintf(e.stderr, "registry generate: --people must be 1..%d\n", synth.MaxPeople)
		return 2
	}
	if *records < 0 {
		fmt.Fprintln(e.stderr, "registry generate: --records must not be negative")
		return 2
	}
	mix, err := synth.ParseMix(*mixFlag)
	if err != nil {
		fmt.Fprintf(e.stderr, "registry generate: --mix: %v\n", err)
		return 2
	}

	cfg := synth.Config{People: *people, Records: *records, Seed: *seed, Mix: mix}
	bar := progress.New(e.stderr, progress.Options{Label: "people", Total: int64(*people), Terminal: e.isTerminal})
	start := time.Now()
	sum, err := synth.WriteDir(ctx, *out, cfg, bar)
	bar.Done()
	if err != nil {
		fmt.Fprintf(e.stderr, "registry generate: %v\n", err)
		return 1
	}
	fmt.Fprintf(e.stderr, "registry generate: %d people, %d vaccinated, %d dose records in %s\n",
		sum.People, sum.Vaccinated, sum.Records, time.Since(start).Round(time.Millisecond))
	for _, s := range []match.Status{match.Verified, match.NoID, match.InvalidID, match.NotFound, match.Mismatch} {
		fmt.Fprintf(e.stderr, "  %-10s %d records\n", s, sum.RecordsByStatus[s])
	}

	files := map[string]string{}
	for key, name := range map[string]string{"registry": synth.RegistryFile, "records": synth.RecordsFile, "truth": synth.TruthFile} {
		files[key] = filepath.Join(*out, name)
	}
	enc := json.NewEncoder(e.stdout)
	if err := enc.Encode(generateSummary{
		People: sum.People, Vaccinated: sum.Vaccinated, Records: sum.Records, Seed: *seed, Mix: mix.String(),
		RecordsByStatus: sum.RecordsByStatus, PeopleByClass: sum.PeopleByClass, Files: files,
	}); err != nil {
		fmt.Fprintf(e.stderr, "registry generate: %v\n", err)
		return 1
	}
	return 0
}
