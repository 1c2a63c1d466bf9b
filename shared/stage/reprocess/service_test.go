package reprocess_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vaxpass/vaxpass/shared/domain/dose"
	"github.com/vaxpass/vaxpass/shared/domain/match"
	"github.com/vaxpass/vaxpass/shared/stage/audit"
	"github.com/vaxpass/vaxpass/shared/stage/ingest"
	"github.com/vaxpass/vaxpass/shared/stage/reprocess"
	"github.com/vaxpass/vaxpass/shared/tool/registry"
	"github.com/vaxpass/vaxpass/shared/tool/synth"
	"github.com/vaxpass/vaxpass/shared/vaxpass"
	"github.com/vaxpass/vaxpass/shared/wire/local"
)

// testWorld is a small generated population on the embedded backend, ingested and
// matched, with the registry extract of its NOT_FOUND people.
type testWorld struct {
	sys    *local.Local
	ops    *local.Ops
	update []match.Person // the NOT_FOUND people as the registry update adds them
	fixed  []string       // their records' dose keys
}

func newWorld(t *testing.T, people int) *testWorld {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	gen := filepath.Join(dir, "gen")
	if _, err := synth.WriteDir(ctx, gen, synth.Config{People: people, Seed: 3}, nil); err != nil {
		t.Fatal(err)
	}
	sys, err := local.OpenLocal(local.Options{DataDir: filepath.Join(dir, "data"), Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sys.Close() })
	ops, err := local.AttachOps(sys)
	if err != nil {
		t.Fatal(err)
	}
	w := &testWorld{sys: sys, ops: ops}
	f, err := os.Open(filepath.Join(gen, synth.RegistryFile))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rd, err := registry.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	var readErr error
	if _, err := sys.DB.LoadRegistry(ctx, func(yield func(match.Person) bool) {
		for p, err := range rd.All() {
			if err != nil {
				readErr = err
				return
			}
			if !yield(p) {
				return
			}
		}
	}); err != nil || readErr != nil {
		t.Fatal(err, readErr)
	}

	recs := readLines[dose.Record](t, filepath.Join(gen, synth.RecordsFile))
	truths := readLines[synth.Truth](t, filepath.Join(gen, synth.TruthFile))
	byFac := map[string][]ingest.Item{}
	seen := map[string]bool{}
	for i, r := range recs {
		fac, _, _ := strings.Cut(r.SourceID, "-")
		if _, ok := byFac[fac]; !ok {
			if _, err := sys.AddFacility(ctx, fac, "Site "+fac); err != nil {
				t.Fatal(err)
			}
		}
		byFac[fac] = append(byFac[fac], ingest.Item{Record: r})
		if truths[i].Class == synth.NotFound {
			w.fixed = append(w.fixed, fac+"/"+r.SourceID)
			if !seen[r.IDNumber] {
				seen[r.IDNumber] = true
				w.update = append(w.update, match.Person{IDNumber: r.IDNumber, FullName: r.FullName, DOB: r.DOB, Gender: r.Gender})
			}
		}
	}
	in := &ingest.Service{Doses: sys.Store, Now: time.Now}
	for fac, items := range byFac {
		for len(items) > 0 {
			n := min(len(items), ingest.MaxBatch)
			if rep, err := in.Submit(ctx, fac, items[:n]); err != nil || rep.Accepted != n {
				t.Fatalf("ingest %s: %+v %v", fac, rep.Rejected, err)
			}
			items = items[n:]
		}
	}
	slices.Sort(w.fixed)
	if len(w.fixed) == 0 {
		t.Fatal("no NOT_FOUND record generated")
	}
	return w
}

func readLines[T any](t *testing.T, path string) []T {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []T
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		var v T
		if err := json.Unmarshal([]byte(line), &v); err != nil {
			t.Fatal(err)
		}
		out = append(out, v)
	}
	return out
}

func (w *testWorld) service(batch int) *reprocess.Service {
	svc := w.sys.NewReprocessor(w.ops.AuditAppender())
	svc.BatchSize = batch
	return svc
}

func (w *testWorld) loadUpdate(t *testing.T) {
	t.Helper()
	if _, err := w.sys.DB.LoadRegistry(context.Background(), slices.Values(w.update)); err != nil {
		t.Fatal(err)
	}
}

// crashingRuns is the run store of a process that dies after allowing saves: every save
// after that fails, as nothing more reaches the disk (for all of a run's workers).
type crashingRuns struct {
	reprocess.RunStore
	mu    sync.Mutex
	allow int
}

var errCrash = errors.New("simulated crash")

func (c *crashingRuns) take() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.allow <= 0 {
		return false
	}
	c.allow--
	return true
}

func (c *crashingRuns) SaveRun(ctx context.Context, id string, doc []byte, changes map[string]string) error {
	if !c.take() {
		return errCrash
	}
	return c.RunStore.SaveRun(ctx, id, doc, changes)
}

func (c *crashingRuns) SwapRun(ctx context.Context, id string, prev, doc []byte) error {
	if !c.take() {
		return errCrash
	}
	return c.RunStore.SwapRun(ctx, id, prev, doc)
}

var matchAll = reprocess.Selector{Stage: reprocess.StageMatch, Filter: reprocess.Filter{Statuses: []match.Status{match.Pending}}, Actor: "cli:test", Reason: "first match"}

var rematch = reprocess.Selector{Stage: reprocess.StageMatch, Filter: reprocess.Filter{Statuses: []match.Status{match.NotFound}}, Actor: "cli:test", Reason: "registry update"}

func TestMatchStageIsIdempotent(t *testing.T) {
	w := newWorld(t, 400)
	ctx := context.Background()
	svc := w.service(37)
	first, err := svc.Run(ctx, matchAll, reprocess.Options{})
	if err != nil || !first.Done || first.Counts.Changed == 0 || first.Counts.Changed != first.Counts.Selected {
		t.Fatalf("first match: %+v %v", first.Counts, err)
	}
	// Everything is matched: nothing is PENDING, nothing to do.
	again, err := svc.Run(ctx, matchAll, reprocess.Options{})
	if err != nil || again.Counts.Scanned != 0 || again.Counts.Changed != 0 {
		t.Errorf("PENDING again: %+v %v", again.Counts, err)
	}
	every := reprocess.Selector{Stage: reprocess.StageMatch, Actor: "cli:test"}
	all, err := svc.Run(ctx, every, reprocess.Options{})
	if err != nil || all.Counts.Changed != 0 || all.Counts.Selected != first.Counts.Selected {
		t.Errorf("every record again: %+v %v", all.Counts, err)
	}
}

// TestMatchStageSurvivesCrashes re-matches after a registry update with a process that
// dies at every possible point -- before a batch is announced, after the announcement,
// after its writes but before its commit -- and is started again each time: the records
// end as one clean run leaves them, every change is counted once and audited once.
func TestMatchStageSurvivesCrashes(t *testing.T) {
	w := newWorld(t, 600)
	ctx := context.Background()
	if _, err := w.service(50).Run(ctx, matchAll, reprocess.Options{}); err != nil {
		t.Fatal(err)
	}
	w.loadUpdate(t)

	// A dry run lists exactly what the run will change, and writes nothing.
	var would []string
	dry := rematch
	dry.DryRun = true
	sum, err := w.service(7).Run(ctx, dry, reprocess.Options{OnChange: func(c reprocess.Change) { would = append(would, c.ID) }})
	if err != nil || !sum.Done {
		t.Fatal(err)
	}
	slices.Sort(would)
	if !slices.Equal(would, w.fixed) {
		t.Fatalf("dry run would change %d records, the update fixes %d", len(would), len(w.fixed))
	}
	if runs, _ := w.service(7).ListRuns(ctx); len(runs) != 1 {
		t.Fatalf("the dry run stored a run: %d runs", len(runs))
	}

	crashes := 0
	var last reprocess.Summary
	for allow := 1; ; allow++ {
		svc := w.service(7)
		svc.Runs = &crashingRuns{RunStore: svc.Runs, allow: allow % 4} // die after 0-3 saves
		if allow%4 == 0 {
			svc.Runs = w.sys.Store // now and then a start that does not die
		}
		last, err = svc.Run(ctx, rematch, reprocess.Options{})
		if err == nil {
			break
		}
		if !errors.Is(err, errCrash) {
			t.Fatal(err)
		}
		crashes++
		if crashes > 1000 {
			t.Fatal("the run makes no progress across crashes")
		}
	}
	if crashes < 3 || last.Counts.Changed != int64(len(w.fixed)) || last.Counts.Outcomes["verified"] != int64(len(w.fixed)) {
		t.Errorf("%d crashes; counts %+v, want %d changed (verified)", crashes, last.Counts, len(w.fixed))
	}
	for _, id := range w.fixed {
		fac, src, _ := strings.Cut(id, "/")
		d, err := w.sys.Store.GetDose(ctx, vaxpass.DoseKey{FacilityID: fac, SourceID: src})
		if err != nil || d.Match.Status != match.Verified || d.PersonID == "" {
			t.Errorf("%s: %s %v", id, d.Match.Status, err)
		}
	}
	var audited []string
	entries := 0
	err = audit.All(ctx, w.ops.Audit, audit.Query{Action: audit.ActionReprocess}, func(e audit.Entry) error {
		if e.RunID == last.RunID {
			entries++
			audited = append(audited, e.Doses...)
			if e.Counts["changed"] != int64(len(w.fixed)) || e.Params["stage"] != "match" || e.Actor != "cli:test" || e.Reason != "registry update" {
				t.Errorf("audit entry %+v", e)
			}
		}
		return nil
	})
	slices.Sort(audited)
	if err != nil || entries != 1 || !slices.Equal(audited, w.fixed) {
		t.Errorf("audit: %d entries with %d records (want 1 with %d), %v", entries, len(audited), len(w.fixed), err)
	}
	t.Logf("%d records fixed through %d crashes", len(w.fixed), crashes)
}

// TestSigningStages signs the fixed people with crashes, drains central signing, and
// checks that central-sign then finds nothing to do while a dry run of it agrees.
func TestSigningStages(t *testing.T) {
	w := newWorld(t, 600)
	ctx := context.Background()
	if _, err := w.service(50).Run(ctx, matchAll, reprocess.Options{}); err != nil {
		t.Fatal(err)
	}
	sign := reprocess.Selector{Stage: reprocess.StageFacilitySign, Filter: reprocess.Filter{Statuses: []match.Status{match.Verified}}, Actor: "cli:test"}
	crashes := 0
	var sum reprocess.Summary
	var err error
	for allow := 1; ; allow++ {
		svc := w.service(40)
		svc.Runs = &crashingRuns{RunStore: svc.Runs, allow: 1 + allow%5}
		if sum, err = svc.Run(ctx, sign, reprocess.Options{}); err == nil {
			break
		}
		if !errors.Is(err, errCrash) || crashes > 1000 {
			t.Fatal(err)
		}
		crashes++
	}
	if sum.Counts.Changed == 0 || sum.Counts.Outcomes[reprocess.OutcomeSigned] != sum.Counts.Changed {
		t.Fatalf("facility-sign after %d crashes: %+v", crashes, sum.Counts)
	}
	// The signatures are lost on their way (as if central signing's queue were purged):
	// the doses say signed, central signing holds nothing. Signing again repairs it.
	lost := 0
	for {
		msgs, err := w.sys.Queue.ReceiveBatch(ctx, 10, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		if len(msgs) == 0 {
			break
		}
		for _, m := range msgs {
			if err := w.sys.Queue.Delete(ctx, m.ReceiptHandle); err != nil {
				t.Fatal(err)
			}
			lost++
		}
	}
	if lost < int(sum.Counts.Changed) {
		t.Fatalf("%d messages in the queue for %d people signed", lost, sum.Counts.Changed)
	}
	repair, err := w.service(40).Run(ctx, sign, reprocess.Options{})
	if err != nil || repair.Counts.Changed != sum.Counts.Changed || repair.Counts.Outcomes[reprocess.OutcomeResigned] != sum.Counts.Changed {
		t.Fatalf("signing the lost signatures again: %+v, %v; want %d resigned", repair.Counts, err, sum.Counts.Changed)
	}
	if err := w.sys.DrainCentralQueue(ctx); err != nil {
		t.Fatal(err)
	}
	certs, _, err := w.sys.Store.ListCertificates(ctx, "", 100_000)
	if err != nil || int64(len(certs)) < sum.Counts.Changed/2 {
		t.Fatalf("%d certificates for %d people signed: %v", len(certs), sum.Counts.Changed, err)
	}
	// A person signed at two facilities gets a certificate from the first signature and a
	// fuller one from the second, which supersedes it; every person has one active.
	active := map[string]int{}
	for _, c := range certs {
		switch {
		case c.Status == vaxpass.CertIssued:
			active[c.PersonID]++
		case c.RevokedReason != "superseded":
			t.Errorf("certificate %s is %s (%s)", c.UVCI, c.Status, c.RevokedReason)
		}
	}
	for _, c := range certs {
		if active[c.PersonID] != 1 {
			t.Errorf("a person has %d active certificates", active[c.PersonID])
		}
	}

	// Signed and issued: signing again and issuing again change nothing.
	again, err := w.service(40).Run(ctx, sign, reprocess.Options{})
	if err != nil || again.Counts.Changed != 0 {
		t.Errorf("facility-sign again: %+v %v", again.Counts, err)
	}
	central := reprocess.Selector{Stage: reprocess.StageCentralSign, Actor: "cli:test"}
	dry := central
	dry.DryRun = true
	d, err := w.service(40).Run(ctx, dry, reprocess.Options{})
	if err != nil || d.Counts.Changed != 0 || d.Counts.Selected == 0 {
		t.Errorf("central-sign dry run: %+v %v", d.Counts, err)
	}
	c, err := w.service(40).Run(ctx, central, reprocess.Options{})
	if err != nil || c.Counts.Changed != 0 || c.Counts.Selected != d.Counts.Selected {
		t.Errorf("central-sign: %+v %v", c.Counts, err)
	}
	if after, _, _ := w.sys.Store.ListCertificates(ctx, "", 100_000); len(after) != len(certs) {
		t.Errorf("%d certificates after central-sign, %d before", len(after), len(certs))
	}
}

func TestRunRefusesWhatItCannotDo(t *testing.T) {
	w := newWorld(t, 50)
	ctx := context.Background()
	svc := w.service(10)
	svc.Matcher = nil
	if _, err := svc.Run(ctx, matchAll, reprocess.Options{}); !errors.Is(err, reprocess.ErrStageUnavailable) {
		t.Errorf("match without a matcher: %v", err)
	}
	if _, err := w.service(10).Run(ctx, reprocess.Selector{Stage: "sign"}, reprocess.Options{}); !errors.Is(err, vaxpass.ErrInvalid) {
		t.Errorf("unknown stage: %v", err)
	}
	if _, err := w.service(10).Run(ctx, reprocess.Selector{RunID: "rp-20220701T120000Z-0a1b2c3d"}, reprocess.Options{}); !errors.Is(err, vaxpass.ErrNotFound) {
		t.Errorf("unknown run: %v", err)
	}
	done, err := w.service(10).Run(ctx, matchAll, reprocess.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.service(10).Run(ctx, reprocess.Selector{RunID: done.RunID}, reprocess.Options{}); !errors.Is(err, reprocess.ErrRunFinished) {
		t.Errorf("a finished run: %v", err)
	}
}

// ScanByStatus walks the same doses in the same order as the embedded store's own scan.
func TestScanByStatusEqualsTheStoreScan(t *testing.T) {
	w := newWorld(t, 300)
	ctx := context.Background()
	if _, err := w.service(50).Run(ctx, matchAll, reprocess.Options{}); err != nil {
		t.Fatal(err)
	}
	generic := reprocess.ScanByStatus{Lister: w.sys.Store}
	facs, err := w.sys.Store.ListFacilities(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, sel := range []struct {
		statuses   []match.Status
		facilities []string
	}{
		{nil, nil},
		{[]match.Status{match.NotFound, match.Mismatch}, nil},
		{[]match.Status{match.Verified}, []string{facs[len(facs)-1].ID, facs[0].ID}},
	} {
		walk := func(s interface {
			ScanDoses(context.Context, []match.Status, []string, vaxpass.DoseKey, int) ([]vaxpass.Dose, bool, error)
		}, limit int) []vaxpass.DoseKey {
			var keys []vaxpass.DoseKey
			after := vaxpass.DoseKey{}
			for {
				page, done, err := s.ScanDoses(ctx, sel.statuses, sel.facilities, after, limit)
				if err != nil {
					t.Fatal(err)
				}
				for _, d := range page {
					keys = append(keys, d.Key())
				}
				if done {
					return keys
				}
				after = page[len(page)-1].Key()
			}
		}
		want := walk(w.sys.Store, 1000)
		for _, limit := range []int{1, 13, 1000} {
			if got := walk(generic, limit); !slices.Equal(got, want) {
				t.Errorf("%v %v, pages of %d: %d doses, the store's scan %d", sel.statuses, sel.facilities, limit, len(got), len(want))
			}
		}
		n, err := generic.CountDoses(ctx, sel.statuses, sel.facilities)
		if m, _ := w.sys.Store.CountDoses(ctx, sel.statuses, sel.facilities); err != nil || n != m || n != int64(len(want)) {
			t.Errorf("%v: CountDoses %d (store %d, walked %d), %v", sel.statuses, n, m, len(want), err)
		}
	}
}

// Restart abandons an interrupted run -- audited with what it changed -- and starts anew.
func TestRestartAbandonsAndAudits(t *testing.T) {
	w := newWorld(t, 300)
	ctx := context.Background()
	svc := w.service(20)
	svc.Runs = &crashingRuns{RunStore: svc.Runs, allow: 4} // dies after two batches
	if _, err := svc.Run(ctx, matchAll, reprocess.Options{}); !errors.Is(err, errCrash) {
		t.Fatalf("first attempt: %v", err)
	}
	restart := matchAll
	restart.Restart = true
	sum, err := w.service(20).Run(ctx, restart, reprocess.Options{})
	if err != nil || sum.Resumed || !sum.Done {
		t.Fatalf("restart: %+v %v", sum, err)
	}
	runs, err := w.service(20).ListRuns(ctx)
	if err != nil || len(runs) != 2 || runs[0].State != reprocess.Abandoned || !runs[0].Audited || runs[1].ID != sum.RunID {
		t.Fatalf("runs after the restart: %+v %v", runs, err)
	}
	states := map[string]string{}
	changed := map[string]int64{}
	err = audit.All(ctx, w.ops.Audit, audit.Query{Action: audit.ActionReprocess}, func(e audit.Entry) error {
		states[e.RunID] = e.Params["state"]
		changed[e.RunID] += e.Counts["changed"]
		return nil
	})
	if err != nil || states[runs[0].ID] != "abandoned" || states[sum.RunID] != "done" {
		t.Errorf("audited states %v, %v", states, err)
	}
	// Between them the two runs matched every record once.
	if got := changed[runs[0].ID] + changed[sum.RunID]; got != runs[0].Total || changed[runs[0].ID] == 0 {
		t.Errorf("changed %v, %d records", changed, runs[0].Total)
	}
}
