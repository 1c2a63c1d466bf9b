package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/vaxpass/vaxpass/shared/domain/match"
	"github.com/vaxpass/vaxpass/shared/tool/synth"
)

func TestRegistryGenerate(t *testing.T) {
	dirA, dirB := t.TempDir(), t.TempDir()
	code, stdout, stderr := runCLI("", "registry", "generate", "--people", "3000", "--seed", "5", "--out", dirA)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var sum generateSummary
	if err := json.Unmarshal([]byte(stdout), &sum); err != nil {
		t.Fatalf("stdout is not the JSON summary: %v\n%s", err, stdout)
	}
	if sum.People != 3000 || sum.Records != 3000 || sum.Seed != 5 {
		t.Fatalf("summary %+v", sum)
	}
	total := 0
	for _, n := range sum.RecordsByStatus {
		total += n
	}
	if total != sum.Records || sum.RecordsByStatus[match.Verified] == 0 {
		t.Fatalf("records by status %v do not add up to %d", sum.RecordsByStatus, sum.Records)
	}
	if !strings.Contains(stderr, "people: done 3,000") || !strings.Contains(stderr, "3000 dose records") {
		t.Fatalf("stderr lacks the progress summary or the counts:\n%s", stderr)
	}

	// Same flags, other directory: byte-identical files.
	if code, _, stderr := runCLI("", "registry", "generate", "--people=3000", "--seed=5", "--out="+dirB); code != 0 {
		t.Fatalf("second run exit %d: %s", code, stderr)
	}
	for _, name := range []string{synth.RegistryFile, synth.RecordsFile, synth.TruthFile} {
		a, errA := os.ReadFile(filepath.Join(dirA, name))
		b, errB := os.ReadFile(filepath.Join(dirB, name))
		if errA != nil || errB != nil || len(a) == 0 || !bytes.Equal(a, b) {
			t.Errorf("%s differs between runs (%v, %v)", name, errA, errB)
		}
		if sum.Files[strings.TrimSuffix(strings.TrimSuffix(name, ".csv"), ".jsonl")] != filepath.Join(dirA, name) {
			t.Errorf("summary files %v do not name %s", sum.Files, name)
		}
	}
}

func TestRegistryGenerateMix(t *testing.T) {
	dir := t.TempDir()
	code, stdout, stderr := runCLI("", "registry", "generate", "--people", "2000", "--records", "1000", "--mix", "only,no_id=1", "--out", dir)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var sum generateSummary
	if err := json.Unmarshal([]byte(stdout), &sum); err != nil {
		t.Fatal(err)
	}
	if sum.Records != 1000 || sum.RecordsByStatus[match.NoID] != 1000 {
		t.Fatalf("mix only,no_id=1 gave %+v", sum)
	}
}

func TestRegistryGenerateUsage(t *testing.T) {
	dir := t.TempDir()
	for _, args := range [][]string{
		{},
		{"--people", "0", "--out", dir},
		{"--people", "-5", "--out", dir},
		{"--people", "10", "--records", "-1", "--out", dir},
		{"--people", "10", "--mix", "bogus=1", "--out", dir},
		{"--people", "10", "--out", dir, "extra"},
		{"--nonsense"},
	} {
		if code, _, stderr := runCLI("", append([]string{"registry", "generate"}, args...)...); code != 2 || stderr == "" {
			t.Errorf("%q: exit %d, stderr %q; want 2 and a message", args, code, stderr)
		}
	}
	// An output directory that cannot be created is a failure, not a usage error.
	file := filepath.Join(dir, "file")
	os.WriteFile(file, nil, 0o644)
	if code, _, stderr := runCLI("", "registry", "generate", "--people", "10", "--out", filepath.Join(file, "sub")); code != 1 {
		t.Errorf("unwritable --out: exit %d, stderr %q; want 1", code, stderr)
	}
}

// The generated registry, records and truth hold (synthetic) personal data: only their
// owner reads them, and the output directories the command creates.
func TestRegistryGenerateFileModes(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("no Unix permissions")
	}
	base := t.TempDir()
	out := filepath.Join(base, "generated", "run1")
	if code, _, stderr := runCLI("", "registry", "generate", "--people", "50", "--out", out); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	mode := func(path string) os.FileMode {
		st, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		return st.Mode().Perm()
	}
	for _, dir := range []string{filepath.Join(base, "generated"), out} {
		if m := mode(dir); m&0o077 != 0 {
			t.Errorf("directory %s has mode %v; want no access for group and others", dir, m)
		}
	}
	for _, name := range []string{synth.RegistryFile, synth.RecordsFile, synth.TruthFile} {
		if m := mode(filepath.Join(out, name)); m != 0o600 {
			t.Errorf("%s has mode %v; want 0600", name, m)
		}
	}
}
