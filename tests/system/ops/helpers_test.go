// Package ops holds the acceptance tests of ops reprocessing and the dashboard (issue 6,
// lines 3 and 4): a registry update reprocessed over generated records, interrupted with
// SIGKILL and resumed, ends as an uninterrupted run does; the dashboard in headless
// Chromium shows the numbers of GET /v1/stats, which are the store's own counts.
package ops

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vaxpass/vaxpass/shared/domain/dose"
	"github.com/vaxpass/vaxpass/shared/domain/match"
	"github.com/vaxpass/vaxpass/shared/stage/ingest"
	"github.com/vaxpass/vaxpass/shared/stage/reprocess"
	"github.com/vaxpass/vaxpass/shared/testkit/cli"
	"github.com/vaxpass/vaxpass/shared/tool/synth"
	"github.com/vaxpass/vaxpass/shared/wire/local"
)

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

// quietLog discards the system's logs.
func quietLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// world is a generated population loaded into a data directory: registry, facilities,
// ingested records and the first match done.
type world struct {
	gen     string // the generator's output directory
	records []dose.Record
	truths  []synth.Truth
}

// facilityOf is the facility of a generated record: its source_id's prefix.
func facilityOf(sourceID string) string {
	f, _, _ := strings.Cut(sourceID, "-")
	return f
}

// buildWorld generates people (as many records) with seed into dir/gen and loads them
// into data, through the pipeline's own steps, on the clock now (nil: time.Now).
func buildWorld(t *testing.T, dir, data string, people int, seed uint64, now func() time.Time) *world {
	t.Helper()
	w := &world{gen: filepath.Join(dir, "gen")}
	cli.Must(t, "registry", "generate", "--people", strconv.Itoa(people), "--seed", strconv.FormatUint(seed, 10), "--out", w.gen)
	cli.Must(t, "registry", "load", filepath.Join(w.gen, synth.RegistryFile), "--data", data)
	w.records, w.truths = readGenerated(t, w.gen)

	ctx := context.Background()
	start := time.Now()
	if now == nil {
		now = time.Now
	}
	sys, err := local.OpenLocal(local.Options{DataDir: data, Log: quietLog(), Now: now})
	if err != nil {
		t.Fatal(err)
	}
	defer sys.Close()
	if _, err := local.AttachOps(sys); err != nil {
		t.Fatal(err)
	}
	byFacility := map[string][]ingest.Item{}
	var order []string
	for _, r := range w.records {
		f := facilityOf(r.SourceID)
		if _, ok := byFacility[f]; !ok {
			order = append(order, f)
			if _, err := sys.AddFacility(ctx, f, "Cơ sở tiêm chủng "+f); err != nil {
				t.Fatalf("add facility %s: %v", f, err)
			}
		}
		byFacility[f] = append(byFacility[f], ingest.Item{Record: r})
	}
	in := &ingest.Service{Doses: sys.Store, Now: now}
	for _, f := range order {
		items := byFacility[f]
		for len(items) > 0 {
			n := min(len(items), ingest.MaxBatch)
			rep, err := in.Submit(ctx, f, items[:n])
			if err != nil {
				t.Fatal(err)
			}
			if rep.Accepted != n {
				t.Fatalf("facility %s: %d of %d records accepted: %+v", f, rep.Accepted, n, firstRejected(rep))
			}
			items = items[n:]
		}
	}
	t.Logf("%d records of %d facilities ingested in %v", len(w.records), len(order), time.Since(start).Round(time.Millisecond))

	// The first match: every record is PENDING after the upload.
	start = time.Now()
	sum, err := sys.NewReprocessor(nil).Run(ctx, reprocess.Selector{Stage: reprocess.StageMatch, Filter: reprocess.Filter{Statuses: []match.Status{match.Pending}}}, reprocess.Options{})
	if err != nil || sum.Counts.Changed != int64(len(w.records)) {
		t.Fatalf("first match: %+v, %v", sum.Counts, err)
	}
	t.Logf("first match of %d records: %v", len(w.records), time.Since(start).Round(time.Millisecond))

	return w
}

// signWorld runs facility signing for every facility and central signing for all.
func signWorld(t *testing.T, data string) {
	t.Helper()
	ctx := context.Background()
	start := time.Now()
	sys, err := local.OpenLocal(local.Options{DataDir: data, Log: quietLog()})
	if err != nil {
		t.Fatal(err)
	}
	defer sys.Close()
	if _, err := local.AttachOps(sys); err != nil {
		t.Fatal(err)
	}
	if err := sys.SignAllFacilities(ctx); err != nil {
		t.Fatal(err)
	}
	if err := sys.DrainCentralQueue(ctx); err != nil {
		t.Fatal(err)
	}
	t.Logf("facility and central signing: %v", time.Since(start).Round(time.Millisecond))
}

func firstRejected(rep ingest.Report) any {
	for _, r := range rep.Results {
		if r.Status != ingest.Accepted {
			return r
		}
	}
	return nil
}

func readGenerated(t *testing.T, dir string) ([]dose.Record, []synth.Truth) {
	t.Helper()
	f, err := os.Open(filepath.Join(dir, synth.RecordsFile))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var records []dose.Record
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var r dose.Record
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatal(err)
		}
		records = append(records, r)
	}
	tf, err := os.Open(filepath.Join(dir, synth.TruthFile))
	if err != nil {
		t.Fatal(err)
	}
	defer tf.Close()
	var truths []synth.Truth
	if err := synth.ReadTruth(tf, func(tr synth.Truth) error { truths = append(truths, tr); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(records) != len(truths) {
		t.Fatalf("%d records, %d truth lines", len(records), len(truths))
	}
	return records, truths
}

// copyDir copies a data directory (the database and the key files).
func copyDir(t *testing.T, from, to string) {
	t.Helper()
	err := filepath.Walk(from, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(from, p)
		if err != nil {
			return err
		}
		dst := filepath.Join(to, rel)
		if fi.IsDir() {
			return os.MkdirAll(dst, 0o750)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(dst, b, fi.Mode().Perm())
	})
	if err != nil {
		t.Fatalf("copy %s: %v", from, err)
	}
}
