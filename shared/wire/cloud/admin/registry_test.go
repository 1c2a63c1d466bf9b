package admin

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vaxpass/vaxpass/shared/domain/match"
	"github.com/vaxpass/vaxpass/shared/tool/registry"
)

// fakeRegistry records every person written, in order; it fails the write after failAt
// people when failAt > 0 (a load killed in the middle of a batch: the people of that
// batch before the failure are written, as BatchWriteItem does 25 at a time).
type fakeRegistry struct {
	writes []string
	failAt int
}

var errKilled = errors.New("killed")

func (f *fakeRegistry) Load(_ context.Context, people iter.Seq[match.Person]) (int, error) {
	n := 0
	for p := range people {
		if f.failAt > 0 && len(f.writes) >= f.failAt {
			return n, errKilled
		}
		f.writes = append(f.writes, p.IDNumber)
		n++
	}
	return n, nil
}

// extract writes a registry CSV of n people; every line listed in bad has a broken date
// of birth. It returns the file and the ID numbers of the good lines, in order.
func extract(t *testing.T, dir string, n int, bad map[int]bool) (string, []string) {
	t.Helper()
	var b strings.Builder
	b.WriteString("id_number,full_name,dob,gender\n")
	var ids []string
	for i := range n {
		id := fmt.Sprintf("001080%06d", i+1)
		dob := "1980-02-03"
		if bad[i] {
			dob = "1980-13-40"
		} else {
			ids = append(ids, id)
		}
		fmt.Fprintf(&b, "%s,Nguyễn Văn An,%s,male\n", id, dob)
	}
	path := filepath.Join(dir, "registry.csv")
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return path, ids
}

func checkpoints(t *testing.T, dir string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, "*.checkpoint"))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestLoadRegistryResumesAfterAKill(t *testing.T) {
	dir := t.TempDir()
	path, ids := extract(t, dir, 95, map[int]bool{3: true, 41: true})
	ctx := context.Background()

	// The first run dies in the middle of its third batch (after 25 of its people).
	first := &fakeRegistry{failAt: 2*20 + 7}
	var rejected []int
	_, err := LoadRegistryInto(ctx, first, path, LoadOptions{BatchSize: 20, Rejected: func(le *registry.LineError) { rejected = append(rejected, le.Line) }})
	if !errors.Is(err, errKilled) {
		t.Fatalf("first run: %v, want the loader's failure", err)
	}
	if cps := checkpoints(t, dir); len(cps) != 1 {
		t.Fatalf("checkpoints after the kill: %v, want one beside the input", cps)
	}

	// The rerun skips the two batches the checkpoint covers and writes the rest, the
	// interrupted batch again in full.
	second := &fakeRegistry{}
	var last LoadProgress
	res, err := LoadRegistryInto(ctx, second, path, LoadOptions{BatchSize: 20, Progress: func(p LoadProgress) { last = p },
		Rejected: func(le *registry.LineError) { rejected = append(rejected, le.Line) }})
	if err != nil {
		t.Fatal(err)
	}
	// The checkpoint covers the records of the first two batches: 40 people and the bad
	// line 5 (record 4) among them, so 41 records.
	if res.ResumedAt != 41 || res.Records != 95 || res.Loaded != int64(len(ids)) || res.Rejected != 2 {
		t.Errorf("result %+v, want resumed at 41 of 95 records, %d loaded, 2 rejected", res, len(ids))
	}
	if len(second.writes) != len(ids)-40 || second.writes[0] != ids[40] || second.writes[len(second.writes)-1] != ids[len(ids)-1] {
		t.Errorf("the rerun wrote %d people from %v, want %d from %s", len(second.writes), second.writes[:1], len(ids)-40, ids[40])
	}
	if got := append(first.writes[:40:40], second.writes...); strings.Join(got, ",") != strings.Join(ids, ",") {
		t.Errorf("the two runs together did not write every good person exactly once after the checkpoint")
	}
	// Line 5 is reported by the killed run only; line 43, read in the batch the kill
	// interrupted, by both runs (the rerun reads that batch again).
	if fmt.Sprint(rejected) != "[5 43 43]" {
		t.Errorf("rejected lines reported %v, want [5 43 43]", rejected)
	}
	if last.Loaded != res.Loaded || last.Size == 0 || last.Offset != last.Size {
		t.Errorf("last progress %+v", last)
	}
	if cps := checkpoints(t, dir); len(cps) != 0 {
		t.Errorf("a finished load left its checkpoint: %v", cps)
	}

	// Finished, the same file loads again from the start.
	third := &fakeRegistry{}
	if res, err := LoadRegistryInto(ctx, third, path, LoadOptions{BatchSize: 20}); err != nil || res.ResumedAt != 0 || len(third.writes) != len(ids) {
		t.Errorf("load after a finished load: %+v %v, %d written", res, err, len(third.writes))
	}
}

func TestLoadRegistryCheckpointDirAndChangedFile(t *testing.T) {
	in := t.TempDir()
	cpDir := t.TempDir()
	path, ids := extract(t, in, 50, nil)
	ctx := context.Background()

	if _, err := LoadRegistryInto(ctx, &fakeRegistry{failAt: 30}, path, LoadOptions{BatchSize: 10, CheckpointDir: cpDir}); !errors.Is(err, errKilled) {
		t.Fatal(err)
	}
	if len(checkpoints(t, in)) != 0 || len(checkpoints(t, cpDir)) != 1 {
		t.Fatalf("checkpoint beside the input %v, in the directory given %v", checkpoints(t, in), checkpoints(t, cpDir))
	}
	// The file changes before the rerun: its checkpoint no longer names it, so the load
	// starts over rather than skip people it never wrote.
	path, ids = extract(t, in, 60, nil)
	again := &fakeRegistry{}
	res, err := LoadRegistryInto(ctx, again, path, LoadOptions{BatchSize: 10, CheckpointDir: cpDir})
	if err != nil {
		t.Fatal(err)
	}
	if res.ResumedAt != 0 || len(again.writes) != len(ids) {
		t.Errorf("load of a changed file: %+v, %d written, want all %d from the start", res, len(again.writes), len(ids))
	}
}

func TestLoadRegistryRefusesAnUnwritableCheckpoint(t *testing.T) {
	path, _ := extract(t, t.TempDir(), 5, nil)
	reg := &fakeRegistry{}
	_, err := LoadRegistryInto(context.Background(), reg, path, LoadOptions{CheckpointDir: filepath.Join(t.TempDir(), "missing")})
	if err == nil || !strings.Contains(err.Error(), "checkpoint") {
		t.Fatalf("load with a checkpoint directory that does not exist: %v", err)
	}
	if len(reg.writes) != 0 {
		t.Errorf("%d people written before the checkpoint could be", len(reg.writes))
	}
}

func TestLoadRegistryRefusesACorruptCheckpoint(t *testing.T) {
	dir := t.TempDir()
	path, _ := extract(t, dir, 30, nil)
	if _, err := LoadRegistryInto(context.Background(), &fakeRegistry{failAt: 15}, path, LoadOptions{BatchSize: 10}); !errors.Is(err, errKilled) {
		t.Fatal(err)
	}
	cps := checkpoints(t, dir)
	if len(cps) != 1 {
		t.Fatalf("checkpoints %v", cps)
	}
	if err := os.WriteFile(cps[0], []byte("{not json"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadRegistryInto(context.Background(), &fakeRegistry{}, path, LoadOptions{BatchSize: 10}); err == nil || !strings.Contains(err.Error(), "not a load checkpoint") {
		t.Fatalf("load with a corrupt checkpoint: %v", err)
	}
}

func TestLoadRegistryBadHeader(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.csv")
	os.WriteFile(path, []byte("name,dob\nA,1980-01-01\n"), 0o644)
	if _, err := LoadRegistryInto(context.Background(), &fakeRegistry{}, path, LoadOptions{}); !errors.Is(err, registry.ErrHeader) {
		t.Fatalf("bad header: %v", err)
	}
}
