package faults

import (
	"context"
	"encoding/json"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/vaxpass/vaxpass/shared/domain/match"
	"github.com/vaxpass/vaxpass/shared/edge/httpapi"
	"github.com/vaxpass/vaxpass/shared/stage/ingest"
	"github.com/vaxpass/vaxpass/shared/store/embedded"
	"github.com/vaxpass/vaxpass/shared/store/embedded/queue"
	"github.com/vaxpass/vaxpass/shared/tool/registry"
	"github.com/vaxpass/vaxpass/shared/vaxpass"
	"github.com/vaxpass/vaxpass/shared/wire/local"
)

// runInProcess runs a population through the system in process (local.Local, no server)
// to the end; wire, when not nil, changes the wiring of every local.Local it opens. The
// population's last record is not sent.
func runInProcess(t *testing.T, pop *population, rewire func(*local.Local)) (string, runState) {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	l, err := local.OpenLocal(local.Options{DataDir: dir, FacilitySignEvery: -1})
	if err != nil {
		t.Fatal(err)
	}
	if rewire != nil {
		rewire(l)
	}
	f, err := os.Open(pop.registry)
	if err != nil {
		t.Fatal(err)
	}
	rd, err := registry.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	var readErr error
	if _, err := l.DB.LoadRegistry(ctx, func(yield func(match.Person) bool) {
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
		t.Fatalf("load registry: %v %v", err, readErr)
	}
	f.Close()
	for i := range facilityCount {
		if _, err := l.AddFacility(ctx, facilityID(i), "Checker site"); err != nil {
			t.Fatal(err)
		}
	}
	led := newLedger()
	in := &ingest.Service{Doses: l.Store, Now: time.Now}
	batches := pop.batches()
	// The last record stays unsent, for the checks of what was never sent.
	last := &batches[len(batches)-1]
	last.records = last.records[:len(last.records)-1]
	for _, b := range batches {
		items := make([]ingest.Item, len(b.records))
		for j, i := range b.records {
			items[j] = httpapi.DecodeRecord(pop.raw[i])
		}
		rep, err := in.Submit(ctx, facilityID(b.facility), items)
		if err != nil {
			t.Fatal(err)
		}
		led.markSent(pop, b)
		var ur uploadReport
		js, _ := json.Marshal(rep)
		json.Unmarshal(js, &ur)
		for _, bad := range led.record(pop, b, ur) {
			t.Fatal(bad)
		}
	}
	l.Close()
	drainWith(t, dir, 0, rewire)
	if l, err = local.OpenLocal(local.Options{DataDir: dir, FacilitySignEvery: -1}); err != nil {
		t.Fatal(err)
	}
	if rewire != nil {
		rewire(l)
	}
	if err := l.SignAllFacilities(ctx); err != nil {
		t.Fatal(err)
	}
	l.Close()
	drainWith(t, dir, 0, rewire)
	return dir, runState{pop: pop, sent: led.sent, acked: led.acked}
}

// copyDir copies a stopped data directory.
func copyDir(t *testing.T, src string) string {
	t.Helper()
	dst := t.TempDir()
	err := filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, path)
		target := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(target, 0o700)
		}
		in, err := os.Open(path)
		if err != nil {
			return err
		}
		defer in.Close()
		out, err := os.OpenFile(target, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
		if err != nil {
			return err
		}
		if _, err := io.Copy(out, in); err != nil {
			out.Close()
			return err
		}
		return out.Close()
	})
	if err != nil {
		t.Fatal(err)
	}
	return dst
}

// withLocal opens a stopped data directory in process.
func withLocal(t *testing.T, dir string, fn func(l *local.Local)) {
	t.Helper()
	l, err := local.OpenLocal(local.Options{DataDir: dir, FacilitySignEvery: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	fn(l)
}

// someCertificate returns an issued certificate of the data directory.
func someCertificate(t *testing.T, l *local.Local) vaxpass.Certificate {
	t.Helper()
	certs, _, err := l.Store.ListCertificates(context.Background(), "", 50)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range certs {
		if c.Status == vaxpass.CertIssued {
			return c
		}
	}
	t.Fatal("no issued certificate")
	return vaxpass.Certificate{}
}

// TestInvariantCheckerCatches proves the checker can fail: a finished run passes, and
// each way of breaking the invariant, planted in a copy of its data directory (or in
// what the client believes), is reported with the right message.
func TestInvariantCheckerCatches(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	base, run := runInProcess(t, generate(t, 300, 300*recordsPerPerson, 11), nil)
	rep := requireInvariant(t, base, run, finished, time.Now())
	if rep.Eligible == 0 || rep.Certified != rep.Eligible {
		t.Fatalf("the clean run: %s", rep)
	}

	// A record of the population that was never sent, and one that was.
	var unsent doseKey
	var unsentIndex int
	for i := range run.pop.records {
		if k := run.pop.key(i); !run.sent[k] {
			unsent, unsentIndex = k, i
		}
	}
	var verifiedKey doseKey
	for k := range run.acked {
		if run.pop.truth[run.pop.index[k]].Status == match.Verified {
			verifiedKey = k
			break
		}
	}

	cases := []struct {
		name  string
		plant func(t *testing.T, dir string, run *runState)
		want  string
	}{
		{"an acknowledged record lost", func(t *testing.T, dir string, run *runState) {
			// The client holds an answer for a record the server never stored.
			if unsent == (doseKey{}) {
				t.Skip("every record was sent")
			}
			run.acked = cloneSet(run.acked)
			run.sent = cloneSet(run.sent)
			run.acked[unsent], run.sent[unsent] = true, true
		}, "lost"},
		{"a record stored that was never sent", func(t *testing.T, dir string, run *runState) {
			run.sent = cloneSet(run.sent)
			for k := range run.acked {
				delete(run.sent, k)
				run.acked = cloneSet(run.acked)
				delete(run.acked, k)
				return
			}
		}, "never sent"},
		{"a record left PENDING", func(t *testing.T, dir string, run *runState) {
			if unsent == (doseKey{}) {
				t.Skip("every record was sent")
			}
			withLocal(t, dir, func(l *local.Local) {
				in := &ingest.Service{Doses: l.Store, Now: time.Now}
				if _, err := in.Submit(ctx, unsent.Facility, []ingest.Item{httpapi.DecodeRecord(run.pop.raw[unsentIndex])}); err != nil {
					t.Fatal(err)
				}
			})
			run.sent = cloneSet(run.sent)
			run.acked = cloneSet(run.acked)
			run.sent[unsent], run.acked[unsent] = true, true
		}, "still PENDING"},
		{"a record matched against the truth", func(t *testing.T, dir string, run *runState) {
			withLocal(t, dir, func(l *local.Local) {
				d, err := l.Store.GetDose(ctx, vaxpass.DoseKey{FacilityID: verifiedKey.Facility, SourceID: verifiedKey.SourceID})
				if err != nil {
					t.Fatal(err)
				}
				d.Match = match.Result{Status: match.NotFound}
				if err := l.Store.SaveMatch(ctx, d); err != nil {
					t.Fatal(err)
				}
			})
		}, "the truth is VERIFIED"},
		{"an eligible person without a certificate", func(t *testing.T, dir string, run *runState) {
			withLocal(t, dir, func(l *local.Local) {
				c := someCertificate(t, l)
				if err := l.Store.RevokeCertificate(ctx, c, "test", time.Now()); err != nil {
					t.Fatal(err)
				}
			})
		}, "has no certificate"},
		{"a certificate that does not verify", func(t *testing.T, dir string, run *runState) {
			withLocal(t, dir, func(l *local.Local) {
				c := someCertificate(t, l)
				next := c
				next.UVCI = "URN:UVCI:01:VN:TAMPERED0001#X"
				next.HC1 = c.HC1[:len(c.HC1)-8] + "00000000"
				next.Replaces = c.UVCI
				if err := l.Store.ReplaceCertificate(ctx, next, &c); err != nil {
					t.Fatal(err)
				}
			})
		}, "does not verify"},
		{"a certificate for someone not eligible", func(t *testing.T, dir string, run *runState) {
			withLocal(t, dir, func(l *local.Local) {
				c := someCertificate(t, l)
				c.UVCI, c.PersonID, c.Version = "URN:UVCI:01:VN:NOBODY000001#X", "999999999999", 1
				if err := l.Store.ReplaceCertificate(ctx, c, nil); err != nil {
					t.Fatal(err)
				}
			})
		}, "not eligible"},
		{"two issued certificates for one person", func(t *testing.T, dir string, run *runState) {
			// The store refuses this through its API; plant it in the file itself.
			var c vaxpass.Certificate
			withLocal(t, dir, func(l *local.Local) { c = someCertificate(t, l) })
			db, err := bolt.Open(filepath.Join(dir, embedded.FileName), 0o600, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			c.UVCI = "URN:UVCI:01:VN:SECOND000001#X"
			v, _ := json.Marshal(c)
			if err := db.Update(func(tx *bolt.Tx) error {
				return tx.Bucket([]byte("certs")).Put([]byte(strings.ToUpper(c.UVCI)), v)
			}); err != nil {
				t.Fatal(err)
			}
		}, "holds 2 issued certificates"},
		{"a message left on the central queue", func(t *testing.T, dir string, run *runState) {
			withLocal(t, dir, func(l *local.Local) {
				if _, err := l.Queue.Send(ctx, []byte(`{}`), queue.SendOptions{}); err != nil {
					t.Fatal(err)
				}
			})
		}, "not drained"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := copyDir(t, base)
			r := run
			tc.plant(t, dir, &r)
			rep, err := checkInvariant(ctx, dir, r, finished, time.Now())
			if err != nil {
				t.Fatal(err)
			}
			found := false
			for _, v := range rep.Violations {
				found = found || strings.Contains(v, tc.want)
			}
			if !found {
				t.Errorf("planted %s: no violation says %q; got %d: %v", tc.name, tc.want, rep.ViolationCount, rep.Violations)
			}
		})
	}
}

func cloneSet(m map[doseKey]bool) map[doseKey]bool {
	out := make(map[doseKey]bool, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}
