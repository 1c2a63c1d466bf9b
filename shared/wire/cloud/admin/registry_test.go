package admin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vaxpass/vaxpass/shared/domain/match"
	"github.com/vaxpass/vaxpass/shared/tool/registry"
)

// fakeWriter is a registry table in memory. It records every person put, and fails every
// put once failAt people have been put when failAt > 0 (a load dying in the middle).
type fakeWriter struct {
	mu     sync.Mutex
	puts   []string                // ID numbers, in the order put
	table  map[string]match.Person // the last person put per ID
	failAt int
	// retries is what every put reports (throttling waited out).
	retries int
}

var errKilled = errors.New("killed")

func (f *fakeWriter) Put(ctx context.Context, people []match.Person) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(people) == 0 || len(people) > 25 {
		return 0, fmt.Errorf("a put of %d people", len(people))
	}
	if f.failAt > 0 && len(f.puts) >= f.failAt {
		return 0, errKilled
	}
	if f.table == nil {
		f.table = map[string]match.Person{}
	}
	for _, p := range people {
		f.puts = append(f.puts, p.IDNumber)
		f.table[p.IDNumber] = p
	}
	return f.retries, nil
}

func (f *fakeWriter) count(id string) int {
	n := 0
	for _, p := range f.puts {
		if p == id {
			n++
		}
	}
	return n
}

// line is one data line of a test extract.
type line struct {
	id, name string
	bad      bool // a broken date of birth
}

// extract writes a registry CSV of the lines (line i+2 of the file is lines[i]).
func writeExtract(t *testing.T, dir string, lines []line) string {
	t.Helper()
	var b strings.Builder
	b.WriteString("id_number,full_name,dob,gender\n")
	for _, l := range lines {
		dob := "1980-02-03"
		if l.bad {
			dob = "1980-13-40"
		}
		fmt.Fprintf(&b, "%s,%s,%s,male\n", l.id, l.name, dob)
	}
	path := filepath.Join(dir, "registry.csv")
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// extract writes n people with distinct IDs; the indexes in bad have a broken date of
// birth. It returns the file and the ID numbers of the good lines, in order.
func extract(t *testing.T, dir string, n int, bad map[int]bool) (string, []string) {
	t.Helper()
	lines := make([]line, n)
	var ids []string
	for i := range lines {
		lines[i] = line{id: fmt.Sprintf("001080%06d", i+1), name: "Nguyễn Văn An", bad: bad[i]}
		if !bad[i] {
			ids = append(ids, lines[i].id)
		}
	}
	return writeExtract(t, dir, lines), ids
}

func checkpoints(t *testing.T, dir string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, "*.checkpoint"))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func readCP(t *testing.T, dir string) Checkpoint {
	t.Helper()
	cps := checkpoints(t, dir)
	if len(cps) != 1 {
		t.Fatalf("checkpoints %v, want one", cps)
	}
	b, err := os.ReadFile(cps[0])
	if err != nil {
		t.Fatal(err)
	}
	var cp Checkpoint
	if err := json.Unmarshal(b, &cp); err != nil {
		t.Fatal(err)
	}
	return cp
}

// rejectedLines collects the line numbers reported.
type rejectedLines struct{ lines []int }

func (r *rejectedLines) add(le *registry.LineError) { r.lines = append(r.lines, le.Line) }

// Chunks of 100 records spread over 4 writers: every good person is put exactly once, in
// batches of at most 25, the bad lines are reported in file order, and the finished load
// removes its checkpoint.
func TestLoadRegistryWritesEveryPersonOnce(t *testing.T) {
	dir := t.TempDir()
	bad := map[int]bool{0: true, 99: true, 100: true, 555: true, 1042: true}
	path, ids := extract(t, dir, 1043, bad)
	w := &fakeWriter{retries: 1}
	var rej rejectedLines
	var last LoadProgress
	calls := 0
	res, err := LoadRegistryInto(context.Background(), w, path, LoadOptions{Writers: 4, ChunkRecords: 100, MaxRejected: 5,
		Rejected: rej.add, Progress: func(p LoadProgress) { last = p; calls++ }})
	if err != nil {
		t.Fatal(err)
	}
	want := LoadResult{Records: 1043, Loaded: int64(len(ids)), Rejected: 5, Writers: 4, Retries: res.Retries}
	if res != want || res.Retries < int64(len(ids)/25) {
		t.Errorf("result %+v, want %+v with a retry per put", res, want)
	}
	if len(w.puts) != len(ids) || len(w.table) != len(ids) {
		t.Fatalf("%d puts of %d people, want each of the %d once", len(w.puts), len(w.table), len(ids))
	}
	for _, id := range ids {
		if w.count(id) != 1 {
			t.Fatalf("%s put %d times", id, w.count(id))
		}
	}
	if fmt.Sprint(rej.lines) != "[2 101 102 557 1044]" {
		t.Errorf("rejected lines %v", rej.lines)
	}
	fi, _ := os.Stat(path)
	if calls == 0 || last.Offset != fi.Size() || last.Size != fi.Size() || last.Written != int64(len(ids)) ||
		last.Loaded != int64(len(ids)) || last.Records != 1043 || last.PeoplePerSecond() <= 0 || last.ETA() != 0 {
		t.Errorf("last progress %+v (%d calls)", last, calls)
	}
	if cps := checkpoints(t, dir); len(cps) != 0 {
		t.Errorf("a finished load left its checkpoint: %v", cps)
	}
	// Finished, the same file loads again from the start.
	again := &fakeWriter{}
	if res, err := LoadRegistryInto(context.Background(), again, path, LoadOptions{Writers: 2, ChunkRecords: 100, MaxRejected: 5}); err != nil || res.ResumedAt != 0 || len(again.puts) != len(ids) {
		t.Errorf("load after a finished load: %+v %v, %d put", res, err, len(again.puts))
	}
}

// A load killed in the middle leaves a checkpoint at a chunk boundary; every person before
// it was put. The rerun starts reading there, puts every person after it (those put
// before the kill again: puts are idempotent) and names the rejected lines as the first
// run would.
func TestLoadRegistryResumesAfterAKill(t *testing.T) {
	for _, writers := range []int{1, 3, 8} {
		t.Run(fmt.Sprint(writers, " writers"), func(t *testing.T) {
			dir := t.TempDir()
			bad := map[int]bool{3: true, 41: true, 420: true, 777: true}
			path, ids := extract(t, dir, 1000, bad)
			ctx := context.Background()

			first := &fakeWriter{failAt: 430}
			var rej1 rejectedLines
			res1, err := LoadRegistryInto(ctx, first, path, LoadOptions{Writers: writers, ChunkRecords: 50, MaxRejected: -1, Rejected: rej1.add})
			if !errors.Is(err, errKilled) {
				t.Fatalf("first run: %v, want the writer's failure", err)
			}
			cp := readCP(t, dir)
			if cp.Records%50 != 0 || cp.Records == 0 || cp.Records >= 1000 || res1.Records != cp.Records || res1.Loaded != cp.Loaded {
				t.Fatalf("checkpoint %+v, result %+v: want a chunk boundary inside the file", cp, res1)
			}
			// The checkpoint's place is the start of record cp.Records+1 (line cp.Records+2).
			data, _ := os.ReadFile(path)
			if lines := strings.Count(string(data[:cp.Offset]), "\n"); lines != int(cp.Records)+1 || cp.Line != lines {
				t.Errorf("checkpoint at byte %d, line %d: %d line breaks before it, want %d", cp.Offset, cp.Line, lines, cp.Records+1)
			}
			before := 0 // good records the checkpoint covers
			for i := range int(cp.Records) {
				if !bad[i] {
					if first.count(fmt.Sprintf("001080%06d", i+1)) != 1 {
						t.Fatalf("record %d, before the checkpoint, was not put by the first run", i+1)
					}
					before++
				}
			}
			if cp.Loaded != int64(before) {
				t.Errorf("checkpoint says %d loaded, %d good records before it", cp.Loaded, before)
			}

			second := &fakeWriter{}
			var rej2 rejectedLines
			var firstProgress *LoadProgress
			res, err := LoadRegistryInto(ctx, second, path, LoadOptions{Writers: writers, ChunkRecords: 50, MaxRejected: 4, Rejected: rej2.add,
				Progress: func(p LoadProgress) {
					if firstProgress == nil {
						firstProgress = &p
					}
				}})
			if err != nil {
				t.Fatal(err)
			}
			// Told at once where it resumes.
			if p := firstProgress; p == nil || p.Skipped != cp.Records || p.Loaded != cp.Loaded || p.Written != 0 || p.Offset != cp.Offset || p.Start != cp.Offset {
				t.Errorf("first progress of the rerun %+v, checkpoint %+v", firstProgress, cp)
			}
			if res.ResumedAt != cp.Records || res.Records != 1000 || res.Loaded != int64(len(ids)) || res.Rejected != 4 {
				t.Errorf("result %+v, want resumed at %d of 1000 records, %d loaded, 4 rejected", res, cp.Records, len(ids))
			}
			if len(second.puts) != len(ids)-before {
				t.Errorf("the rerun put %d people, want the %d after the checkpoint", len(second.puts), len(ids)-before)
			}
			for _, id := range ids[before:] {
				if second.count(id) != 1 {
					t.Fatalf("%s put %d times by the rerun", id, second.count(id))
				}
			}
			var after []int
			for _, l := range []int{5, 43, 422, 779} {
				if l > int(cp.Records)+1 {
					after = append(after, l)
				}
			}
			if fmt.Sprint(rej2.lines) != fmt.Sprint(after) {
				t.Errorf("the rerun reported lines %v, want %v", rej2.lines, after)
			}
			if len(checkpoints(t, dir)) != 0 {
				t.Error("checkpoint left after the resumed load")
			}
		})
	}
}

// An ID on several lines, far apart (other chunks, other writers' turns), ends with its
// last line, also when a killed load is resumed.
func TestLoadRegistryLastLineWins(t *testing.T) {
	dir := t.TempDir()
	lines := make([]line, 700)
	for i := range lines {
		lines[i] = line{id: fmt.Sprintf("001080%06d", i+1), name: "Nguyễn Văn An"}
	}
	dup := lines[7].id
	lines[450] = line{id: dup, name: "Trần Văn Bình"}
	lines[550] = line{id: dup, name: "Lê Thị Cúc"}
	path := writeExtract(t, dir, lines)

	w := &fakeWriter{}
	if _, err := LoadRegistryInto(context.Background(), w, path, LoadOptions{Writers: 5, ChunkRecords: 20}); err != nil {
		t.Fatal(err)
	}
	if got := w.table[dup].FullName; got != "Lê Thị Cúc" || len(w.table) != 698 {
		t.Errorf("%s holds %q, %d people in the table; want the last line's name, 698 people", dup, got, len(w.table))
	}

	// Killed after both later lines were put but before their chunk was checkpointed (puts
	// 0-599 of the chunk of records 401-700), then resumed into the same table: the rerun
	// puts both again, in order.
	table := &fakeWriter{failAt: 600}
	if _, err := LoadRegistryInto(context.Background(), table, path, LoadOptions{Writers: 1, ChunkRecords: 400}); !errors.Is(err, errKilled) {
		t.Fatal(err)
	}
	if cp := readCP(t, dir); cp.Records != 400 || table.table[dup].FullName != "Lê Thị Cúc" {
		t.Fatalf("killed load: checkpoint %+v, %s holds %q", cp, dup, table.table[dup].FullName)
	}
	table.failAt = 0
	if _, err := LoadRegistryInto(context.Background(), table, path, LoadOptions{Writers: 3, ChunkRecords: 20}); err != nil {
		t.Fatal(err)
	}
	if got := table.table[dup].FullName; got != "Lê Thị Cúc" {
		t.Errorf("after a resumed load %s holds %q", dup, got)
	}
}

// A file that is mostly invalid stops the load at the first line past the limit, named;
// every invalid line before is reported.
func TestLoadRegistryStopsOnTooManyRejected(t *testing.T) {
	bad := map[int]bool{}
	for i := 10; i < 200; i += 2 {
		bad[i] = true
	}
	path, _ := extract(t, t.TempDir(), 300, bad)
	var rej rejectedLines
	_, err := LoadRegistryInto(context.Background(), &fakeWriter{}, path, LoadOptions{MaxRejected: 5, Rejected: rej.add})
	if !errors.Is(err, ErrTooManyRejected) || !strings.Contains(err.Error(), "line 22 ") {
		t.Fatalf("err %v, want ErrTooManyRejected naming line 22", err)
	}
	if fmt.Sprint(rej.lines) != "[12 14 16 18 20 22]" {
		t.Errorf("reported %v", rej.lines)
	}
	// 0: the first invalid line stops the load.
	rej = rejectedLines{}
	if _, err := LoadRegistryInto(context.Background(), &fakeWriter{}, path, LoadOptions{Rejected: rej.add}); !errors.Is(err, ErrTooManyRejected) || fmt.Sprint(rej.lines) != "[12]" {
		t.Fatalf("no invalid line allowed: %v, reported %v", err, rej.lines)
	}
	// No limit: all are reported, the good ones loaded.
	rej = rejectedLines{}
	res, err := LoadRegistryInto(context.Background(), &fakeWriter{}, path, LoadOptions{MaxRejected: -1, Rejected: rej.add})
	if err != nil || res.Rejected != 95 || res.Loaded != 205 || len(rej.lines) != 95 {
		t.Errorf("unlimited: %+v %v, %d reported", res, err, len(rej.lines))
	}
}

// A line too long for an extract ends the load with an error naming the file.
func TestLoadRegistryFileError(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "long.csv")
	body := "id_number,full_name,dob,gender\n001080000001,Nguyễn Văn An,1980-02-03,male\n" + strings.Repeat("x", registry.MaxLineBytes+10) + "\n"
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := LoadRegistryInto(context.Background(), &fakeWriter{}, path, LoadOptions{})
	if !errors.Is(err, registry.ErrLineTooLong) || !strings.Contains(err.Error(), "long.csv") {
		t.Fatalf("err %v", err)
	}
}

// A context ended (Ctrl-C) stops the load with its error; the rerun resumes.
func TestLoadRegistryCancelled(t *testing.T) {
	dir := t.TempDir()
	path, ids := extract(t, dir, 500, nil)
	ctx, cancel := context.WithCancel(context.Background())
	w := &cancellingWriter{after: 200, cancel: cancel}
	if _, err := LoadRegistryInto(ctx, w, path, LoadOptions{Writers: 2, ChunkRecords: 50}); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled load: %v", err)
	}
	cp := readCP(t, dir)
	again := &fakeWriter{}
	res, err := LoadRegistryInto(context.Background(), again, path, LoadOptions{Writers: 2, ChunkRecords: 50})
	if err != nil || res.ResumedAt != cp.Records || res.Loaded != int64(len(ids)) || len(again.puts) != len(ids)-int(cp.Records) {
		t.Errorf("resumed: %+v %v, %d put after a checkpoint at %d", res, err, len(again.puts), cp.Records)
	}
}

type cancellingWriter struct {
	fakeWriter
	after  int
	cancel func()
}

func (c *cancellingWriter) Put(ctx context.Context, people []match.Person) (int, error) {
	c.mu.Lock()
	n := len(c.puts)
	c.mu.Unlock()
	if n >= c.after {
		c.cancel()
		<-ctx.Done()
		return 0, ctx.Err()
	}
	return c.fakeWriter.Put(ctx, people)
}

func TestLoadRegistryCheckpointDirAndChangedFile(t *testing.T) {
	in := t.TempDir()
	cpDir := t.TempDir()
	path, ids := extract(t, in, 50, nil)
	ctx := context.Background()

	if _, err := LoadRegistryInto(ctx, &fakeWriter{failAt: 30}, path, LoadOptions{Writers: 1, ChunkRecords: 10, CheckpointDir: cpDir}); !errors.Is(err, errKilled) {
		t.Fatal(err)
	}
	if len(checkpoints(t, in)) != 0 || len(checkpoints(t, cpDir)) != 1 {
		t.Fatalf("checkpoint beside the input %v, in the directory given %v", checkpoints(t, in), checkpoints(t, cpDir))
	}
	// The file changes before the rerun: its checkpoint no longer names it, so the load
	// starts over rather than skip people it never wrote.
	path, ids = extract(t, in, 60, nil)
	again := &fakeWriter{}
	res, err := LoadRegistryInto(ctx, again, path, LoadOptions{ChunkRecords: 10, CheckpointDir: cpDir})
	if err != nil {
		t.Fatal(err)
	}
	if res.ResumedAt != 0 || len(again.puts) != len(ids) {
		t.Errorf("load of a changed file: %+v, %d written, want all %d from the start", res, len(again.puts), len(ids))
	}
}

func TestLoadRegistryRefusesAnUnwritableCheckpoint(t *testing.T) {
	path, _ := extract(t, t.TempDir(), 5, nil)
	w := &fakeWriter{}
	_, err := LoadRegistryInto(context.Background(), w, path, LoadOptions{CheckpointDir: filepath.Join(t.TempDir(), "missing")})
	if err == nil || !strings.Contains(err.Error(), "checkpoint") {
		t.Fatalf("load with a checkpoint directory that does not exist: %v", err)
	}
	if len(w.puts) != 0 {
		t.Errorf("%d people written before the checkpoint could be", len(w.puts))
	}
}

func TestLoadRegistryRefusesACorruptCheckpoint(t *testing.T) {
	dir := t.TempDir()
	path, _ := extract(t, dir, 30, nil)
	if _, err := LoadRegistryInto(context.Background(), &fakeWriter{failAt: 15}, path, LoadOptions{Writers: 1, ChunkRecords: 10}); !errors.Is(err, errKilled) {
		t.Fatal(err)
	}
	cps := checkpoints(t, dir)
	if len(cps) != 1 {
		t.Fatalf("checkpoints %v", cps)
	}
	cp := readCP(t, dir)
	// A checkpoint whose offset is not the end of a line is refused, not trusted.
	cp.Offset--
	b, _ := json.Marshal(cp)
	os.WriteFile(cps[0], b, 0o644)
	if _, err := LoadRegistryInto(context.Background(), &fakeWriter{}, path, LoadOptions{}); err == nil || !strings.Contains(err.Error(), "not the end of a line") {
		t.Fatalf("load with a checkpoint inside a line: %v", err)
	}
	if err := os.WriteFile(cps[0], []byte("{not json"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadRegistryInto(context.Background(), &fakeWriter{}, path, LoadOptions{}); err == nil || !strings.Contains(err.Error(), "not a load checkpoint") {
		t.Fatalf("load with a corrupt checkpoint: %v", err)
	}
}

func TestLoadRegistryBadHeaderAndEmptyFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.csv")
	os.WriteFile(path, []byte("name,dob\nA,1980-01-01\n"), 0o644)
	if _, err := LoadRegistryInto(context.Background(), &fakeWriter{}, path, LoadOptions{}); !errors.Is(err, registry.ErrHeader) {
		t.Fatalf("bad header: %v", err)
	}
	// A header and blank lines: nothing to load, and done.
	os.WriteFile(path, []byte("id_number,full_name,dob,gender\n\n\n"), 0o644)
	w := &fakeWriter{}
	if res, err := LoadRegistryInto(context.Background(), w, path, LoadOptions{}); err != nil || res.Records != 0 || len(w.puts) != 0 {
		t.Fatalf("empty extract: %+v %v", res, err)
	}
}

func TestLoadProgressRateAndETA(t *testing.T) {
	p := LoadProgress{Written: 5000, Offset: 300, Start: 100, Size: 1100, Elapsed: 2 * time.Second}
	if r := p.PeoplePerSecond(); r != 2500 {
		t.Errorf("rate %v", r)
	}
	if eta := p.ETA(); eta != 8*time.Second {
		t.Errorf("ETA %v, want 8s (800 bytes left at 100 a second)", eta)
	}
	if (LoadProgress{Size: 10}).ETA() != 0 {
		t.Error("ETA without progress")
	}
}
