// Package matching holds the acceptance tests of registry matching and data cleaning: the
// real CLI over a generated registry and records reproduces the generator's planted mix
// record by record, and a worklist sent to the commune, filled in and imported back, turns
// the corrected people VERIFIED.
//
// Size: VAXPASS_MATCH_PEOPLE (default 200000) people in the registry and as many dose
// records; the acceptance figure is 1000000. VAXPASS_MATCH_SEED picks the data (default 1).
package matching

import (
	"bufio"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/vaxpass/vaxpass/shared/domain/match"
	"github.com/vaxpass/vaxpass/shared/testkit/cli"
	"github.com/vaxpass/vaxpass/shared/tool/synth"
)

const defaultPeople = 200_000

func envInt(t *testing.T, name string, def int) int {
	t.Helper()
	s := os.Getenv(name)
	if s == "" {
		return def
	}
	n, err := strconv.Atoi(s)
	if err != nil || n <= 0 {
		t.Fatalf("%s=%q: want a positive integer", name, s)
	}
	return n
}

// matchOutput is one line of `vaxpass match` (contract).
type matchOutput struct {
	SourceID  string            `json:"source_id"`
	Status    match.Status      `json:"status"`
	Reasons   []string          `json:"reasons"`
	Corrected map[string]string `json:"corrected"`
}

// summaryLine is a status count of the match summary on stderr: "  VERIFIED   12345".
var summaryLine = regexp.MustCompile(`(?m)^\s+([A-Z_]+)\s+(\d+)$`)

func TestMatchReproducesGeneratedMix(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the CLI and matches a generated population")
	}
	people := envInt(t, "VAXPASS_MATCH_PEOPLE", defaultPeople)
	seed := envInt(t, "VAXPASS_MATCH_SEED", 1)
	dir := t.TempDir()

	genOut := cli.Must(t, "registry", "generate", "--people", strconv.Itoa(people),
		"--seed", strconv.Itoa(seed), "--out", dir).Stdout
	var gen struct {
		Records         int                  `json:"records"`
		RecordsByStatus map[match.Status]int `json:"records_by_status"`
		PeopleByClass   map[synth.Class]int  `json:"people_by_class"`
	}
	if err := json.Unmarshal([]byte(genOut), &gen); err != nil {
		t.Fatalf("generate summary: %v\n%s", err, genOut)
	}
	if gen.Records != people {
		t.Fatalf("generated %d records, want %d", gen.Records, people)
	}
	for _, c := range synth.Classes {
		if gen.PeopleByClass[c] == 0 {
			t.Errorf("no person of class %s planted: the run proves nothing about it", c)
		}
	}

	matched := filepath.Join(dir, "match.jsonl")
	matchFile, err := os.Create(matched)
	if err != nil {
		t.Fatal(err)
	}
	matchErr := cli.Runner{Stdout: matchFile}.Must(t, "match", "--candidates=false",
		"--registry", filepath.Join(dir, synth.RegistryFile), "--records", filepath.Join(dir, synth.RecordsFile)).Stderr
	if err := matchFile.Close(); err != nil {
		t.Fatal(err)
	}

	// The summary on stderr counts exactly the generator's statuses.
	counts := map[match.Status]int{}
	for _, m := range summaryLine.FindAllStringSubmatch(matchErr, -1) {
		n, _ := strconv.Atoi(m[2])
		counts[match.Status(m[1])] = n
	}
	for s, n := range counts {
		if n == 0 {
			delete(counts, s)
		}
	}
	if !maps.Equal(counts, gen.RecordsByStatus) {
		t.Errorf("match summary %v\ngenerator planted %v", counts, gen.RecordsByStatus)
	}

	// Record by record: status, reasons, and for VERIFIED the registry's values.
	reg := loadRegistry(t, filepath.Join(dir, synth.RegistryFile))
	out, err := os.Open(matched)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	lines := bufio.NewScanner(out)
	lines.Buffer(nil, 1<<20)
	truth, err := os.Open(filepath.Join(dir, synth.TruthFile))
	if err != nil {
		t.Fatal(err)
	}
	defer truth.Close()
	failures := map[synth.Class]int{}
	n := 0
	err = synth.ReadTruth(truth, func(want synth.Truth) error {
		if !lines.Scan() {
			return fmt.Errorf("match output ends after %d lines", n)
		}
		n++
		var got matchOutput
		if err := json.Unmarshal(lines.Bytes(), &got); err != nil {
			return fmt.Errorf("match line %d: %w", n, err)
		}
		if got.SourceID != want.SourceID {
			return fmt.Errorf("line %d: source_id %q, truth %q", n, got.SourceID, want.SourceID)
		}
		if problem := compare(got, want, reg[want.RegistryID]); problem != "" {
			if failures[want.Class]++; failures[want.Class] <= 3 {
				t.Errorf("%s (class %s): %s", got.SourceID, want.Class, problem)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if lines.Scan() {
		t.Errorf("match printed more lines than there are records")
	}
	if len(failures) > 0 {
		t.Errorf("records matched wrongly, by planted class: %v", failures)
	}
	t.Logf("%d people, %d records, statuses %v", people, n, counts)
}

// compare returns what is wrong with a match line, or "".
func compare(got matchOutput, want synth.Truth, person registryPerson) string {
	if got.Status != want.Status || !slices.Equal(got.Reasons, want.Reasons) {
		return fmt.Sprintf("got %s %v, want %s %v", got.Status, got.Reasons, want.Status, want.Reasons)
	}
	if want.Status != match.Verified {
		if len(got.Corrected) > 0 {
			return fmt.Sprintf("corrected %v on a %s record", slices.Sorted(maps.Keys(got.Corrected)), got.Status)
		}
		return ""
	}
	if keys := slices.Sorted(maps.Keys(got.Corrected)); !slices.Equal(keys, slices.Sorted(slices.Values(want.Corrected))) {
		return fmt.Sprintf("corrected fields %v, want %v", keys, want.Corrected)
	}
	registryValue := map[string]string{
		match.FieldFullName: person.fullName, match.FieldDOB: person.dob, match.FieldIDNumber: want.RegistryID,
	}
	for field, v := range got.Corrected {
		if v != registryValue[field] {
			return fmt.Sprintf("corrected %s is not the registry's value", field)
		}
	}
	return ""
}

type registryPerson struct {
	fullName, dob, gender string
}

// loadRegistry reads the generated registry CSV (its fields never need quoting).
func loadRegistry(t *testing.T, path string) map[string]registryPerson {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Scan() // header
	if sc.Text() != synth.RegistryHeader {
		t.Fatalf("registry header %q", sc.Text())
	}
	reg := map[string]registryPerson{}
	for sc.Scan() {
		fields := strings.Split(sc.Text(), ",")
		if len(fields) != 5 {
			t.Fatalf("registry line %q", sc.Text())
		}
		reg[fields[0]] = registryPerson{fields[1], fields[2], fields[3]}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return reg
}
