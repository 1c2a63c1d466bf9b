package ops

import (
	"bufio"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vaxpass/vaxpass/shared/domain/identity"
	"github.com/vaxpass/vaxpass/shared/domain/match"
	"github.com/vaxpass/vaxpass/shared/domain/vaccine"
	"github.com/vaxpass/vaxpass/shared/stage/audit"
	"github.com/vaxpass/vaxpass/shared/stage/reprocess"
	"github.com/vaxpass/vaxpass/shared/testkit/cli"
	"github.com/vaxpass/vaxpass/shared/tool/synth"
	"github.com/vaxpass/vaxpass/shared/vaxpass"
	"github.com/vaxpass/vaxpass/shared/wire/local"
)

// defaultReprocessRecords keeps the test within a CI budget; the acceptance figure is
// 100000 (VAXPASS_REPROCESS_RECORDS=100000).
const defaultReprocessRecords = 20_000

// The selection of the registry update's reprocessing, as a user types it.
var (
	matchStage = []string{"reprocess", "--stage", "match", "--status", "NOT_FOUND,MISMATCH", "--reason", "registry update"}
	signStage  = []string{"reprocess", "--stage", "facility-sign", "--status", "VERIFIED", "--reason", "registry update"}
)

// TestReprocessAfterRegistryUpdate is issue 6, acceptance line 3: after a registry update
// (the NOT_FOUND people now exist, the wrongly named ones are renamed), reprocessing the
// generated records turns the fixed people VERIFIED and issues their certificates; run
// killed with SIGKILL (several times) and resumed, it ends in the state of an
// uninterrupted run on a copy of the same data: no record lost, no certificate twice, and
// each change counted and audited once.
//
// Size: VAXPASS_REPROCESS_RECORDS generated records (default 20000; acceptance 100000).
func TestReprocessAfterRegistryUpdate(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the CLI and reprocesses a generated population")
	}
	n := envInt(t, "VAXPASS_REPROCESS_RECORDS", defaultReprocessRecords)
	begin := time.Now()
	dir := t.TempDir()
	base := filepath.Join(dir, "base")
	w := buildWorld(t, dir, base, n, 11, nil)
	signWorld(t, base)
	before := readState(t, base)

	update := filepath.Join(dir, "registry-update.csv")
	fixed := writeRegistryUpdate(t, w, update)
	if len(fixed.records) < 10 {
		t.Fatalf("only %d records to fix: the run proves little", len(fixed.records))
	}
	for key := range fixed.records {
		if st := before.doses[key].Status; st != match.NotFound && st != match.Mismatch {
			t.Fatalf("%s is %s before the update, want NOT_FOUND or MISMATCH", key, st)
		}
	}

	// A: the uninterrupted run.
	dirA, dirB := filepath.Join(dir, "a"), filepath.Join(dir, "b")
	copyDir(t, base, dirA)
	copyDir(t, base, dirB)
	startA := time.Now()
	cli.Must(t, "registry", "load", update, "--data", dirA)
	outMatchA := cli.Must(t, append(matchStage, "--data", dirA)...).Stdout
	outSignA := cli.Must(t, append(signStage, "--data", dirA)...).Stdout
	t.Logf("uninterrupted reprocessing of %d records: %v", n, time.Since(startA).Round(time.Millisecond))
	sumMatchA, sumSignA := decodeSummary(t, outMatchA), decodeSummary(t, outSignA)

	// B: the same, killed mid-run and started again, twice for signing.
	cli.Must(t, "registry", "load", update, "--data", dirB)
	// About 30 batches per stage, 70 ms apart: a kill lands mid-run whatever the size.
	paced := func(batch int) []string {
		return []string{"--batch", strconv.Itoa(batch), "--pace", "70ms", "--data", dirB}
	}
	matchBatch, signBatch := max(5, n/300), max(20, n/40) // ~10% and ~80% of the records
	killMidRun(t, 30, append(matchStage, paced(matchBatch)...)...)
	errMatchB := cli.Must(t, append(matchStage, "--data", dirB)...).Stderr
	if !strings.Contains(errMatchB, "resuming run") {
		t.Fatalf("the match stage did not resume its killed run:\n%s", errMatchB)
	}
	killMidRun(t, 20, append(signStage, paced(signBatch)...)...)
	killMidRun(t, 20, append(signStage, paced(signBatch)...)...)
	// The third start finishes the run and is killed while central signing works off
	// the queue; the fourth finds the run done, works off the rest and changes nothing.
	seen := cli.KillWhen(t, "while processing the queue", func(line string) bool {
		return strings.HasSuffix(line, "processing central signing's queue")
	}, append(signStage, "--data", dirB)...)
	if !strings.Contains(strings.Join(seen, "\n"), "resuming run") {
		t.Fatalf("the signing stage did not resume its killed run:\n%s", strings.Join(seen, "\n"))
	}
	outLast := cli.Must(t, append(signStage, "--data", dirB)...).Stdout
	if last := decodeSummary(t, outLast); last.Resumed || last.Counts.Changed != 0 {
		t.Errorf("signing again after the run finished: %+v", last)
	}

	a, b := readState(t, dirA), readState(t, dirB)

	t.Run("the fixed people are verified and certified", func(t *testing.T) {
		for key := range fixed.records {
			if d := a.doses[key]; d.Status != match.Verified {
				t.Errorf("%s: %s %v after the update, want VERIFIED", key, d.Status, d.Reasons)
			}
		}
		newCerts := 0
		for person, eligible := range fixed.eligible {
			c, ok := a.certs[person]
			switch {
			case eligible && (!ok || c.Active == ""):
				t.Errorf("a fixed, fully vaccinated person has no certificate (records %v)", fixed.byPerson[person])
			case !eligible && ok:
				t.Errorf("a fixed person with an incomplete course has a certificate (records %v)", fixed.byPerson[person])
			case eligible:
				newCerts++
			}
		}
		if got, want := a.active-before.active, newCerts; got != want || want == 0 {
			t.Errorf("%d new active certificates, want %d (the fixed, fully vaccinated people)", got, want)
		}
		// Nobody else changed: every other record is as before.
		for key, d := range before.doses {
			if _, isFixed := fixed.records[key]; !isFixed && a.doses[key] != d {
				t.Errorf("%s changed though not fixed: %+v -> %+v", key, d, a.doses[key])
			}
		}
		if sumMatchA.Counts.Changed != int64(len(fixed.records)) {
			t.Errorf("match stage changed %d records, want the %d fixed ones", sumMatchA.Counts.Changed, len(fixed.records))
		}
		t.Logf("%d records fixed, %d people newly certified; match %v, sign %v", len(fixed.records), newCerts, sumMatchA.Counts.Outcomes, sumSignA.Counts.Outcomes)
	})

	t.Run("killed and resumed equals uninterrupted", func(t *testing.T) {
		if len(a.doses) != n || len(b.doses) != n {
			t.Fatalf("%d and %d doses stored, want %d", len(a.doses), len(b.doses), n)
		}
		diff := 0
		for key, da := range a.doses {
			if db := b.doses[key]; db != da {
				if diff++; diff <= 5 {
					t.Errorf("dose %s: uninterrupted %+v, resumed %+v", key, da, db)
				}
			}
		}
		if diff > 0 {
			t.Errorf("%d doses differ", diff)
		}
		if !maps.Equal(a.certs, b.certs) {
			diff := 0
			for p, ca := range a.certs {
				if cb := b.certs[p]; cb != ca {
					if diff++; diff <= 5 {
						t.Errorf("certificates of a person: uninterrupted %+v, resumed %+v", ca, cb)
					}
				}
			}
			t.Errorf("certificates differ for %d people (%d and %d people certified)", diff, len(a.certs), len(b.certs))
		}
		for name, s := range map[string]state{"uninterrupted": a, "resumed": b} {
			if s.queue.Visible+s.queue.InFlight+s.queue.Delayed+s.queue.Dead != 0 {
				t.Errorf("%s: central queue not empty: %+v", name, s.queue)
			}
		}
	})

	t.Run("each change is counted and audited once", func(t *testing.T) {
		runsA, runsB := readRuns(t, dirA), readRuns(t, dirB)
		for _, stage := range []reprocess.Stage{reprocess.StageMatch, reprocess.StageFacilitySign} {
			ra, rb := firstRun(t, runsA, stage), firstRun(t, runsB, stage)
			if rb.Resumes == 0 {
				t.Errorf("%s: the resumed run records no resumption", stage)
			}
			if ra.Counts.Changed != rb.Counts.Changed || !maps.Equal(ra.Counts.Outcomes, rb.Counts.Outcomes) {
				t.Errorf("%s: uninterrupted run counted %d %v, resumed run %d %v", stage, ra.Counts.Changed, ra.Counts.Outcomes, rb.Counts.Changed, rb.Counts.Outcomes)
			}
			ia, ib := auditedDoses(t, dirA, ra.ID), auditedDoses(t, dirB, rb.ID)
			if len(ia) != int(ra.Counts.Changed) || !slices.Equal(ia, ib) {
				t.Errorf("%s: audited %d records (uninterrupted) and %d (resumed); %d changed", stage, len(ia), len(ib), ra.Counts.Changed)
			}
		}
	})

	t.Run("running again changes nothing", func(t *testing.T) {
		for _, args := range [][]string{
			{"reprocess", "--stage", "match,facility-sign,central-sign", "--status", "VERIFIED,NOT_FOUND,MISMATCH"},
		} {
			out := cli.Must(t, append(args, "--data", dirA)...).Stdout
			dec := json.NewDecoder(strings.NewReader(out))
			for dec.More() {
				var s reprocess.Summary
				if err := dec.Decode(&s); err != nil {
					t.Fatal(err)
				}
				if s.Counts.Changed != 0 || s.Counts.Failed != 0 || s.Counts.Selected == 0 {
					t.Errorf("%s again: %+v", s.Stage, s.Counts)
				}
			}
		}
		out := cli.Must(t, append(matchStage, "--dry-run", "--data", dirA)...).Stdout
		if out != "" {
			t.Errorf("a dry run after the reprocessing lists changes:\n%.500s", out)
		}
		if again := readState(t, dirA); !maps.Equal(again.certs, a.certs) {
			t.Errorf("certificates changed on a second run")
		}
	})
	t.Logf("%d records: whole test %v", n, time.Since(begin).Round(time.Second))
}

// fixes describes the registry update: the records it fixes, and per person (registry ID
// after the update) whether their course is complete and which records are theirs.
type fixes struct {
	records  map[vaxpass.DoseKey]bool
	eligible map[string]bool
	byPerson map[string][]string
}

// writeRegistryUpdate writes the registry extract of the update: a row for each NOT_FOUND
// person (their record's ID now exists, with the record's details) and each wrongly named
// person (their row with the name the records carry).
func writeRegistryUpdate(t *testing.T, w *world, path string) fixes {
	t.Helper()
	rows := readRegistryRows(t, filepath.Join(w.gen, synth.RegistryFile))
	fx := fixes{records: map[vaxpass.DoseKey]bool{}, eligible: map[string]bool{}, byPerson: map[string][]string{}}
	doses := map[string][]vaccine.Dose{}
	update := map[string][]string{}
	var order []string
	for i, tr := range w.truths {
		r := w.records[i]
		var person string
		switch tr.Class {
		case synth.NotFound, synth.OldCMND:
			id, err := identity.Parse(r.IDNumber)
			if err != nil {
				t.Fatalf("%s: %v", r.SourceID, err)
			}
			person = id.Number
			if _, ok := update[person]; !ok {
				update[person] = []string{person, r.FullName, r.DOB, r.Gender, r.CommuneCode}
				order = append(order, person)
			}
		case synth.WrongName:
			person = tr.RegistryID
			if _, ok := update[person]; !ok {
				row := slices.Clone(rows[person])
				row[1] = r.FullName
				update[person] = row
				order = append(order, person)
			}
		default:
			continue
		}
		fx.records[vaxpass.DoseKey{FacilityID: facilityOf(r.SourceID), SourceID: r.SourceID}] = true
		fx.byPerson[person] = append(fx.byPerson[person], r.SourceID)
		doses[person] = append(doses[person], vaccine.Dose{Vaccine: vaccine.Code(r.Vaccine), DoseNumber: r.DoseNumber, VaccinatedOn: r.VaccinatedOn})
	}
	for p, ds := range doses {
		a, err := vaccine.Assess(ds)
		fx.eligible[p] = err == nil && a.Eligible
	}
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cw := csv.NewWriter(f)
	cw.Write(strings.Split(synth.RegistryHeader, ","))
	for _, p := range order {
		cw.Write(update[p])
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		t.Fatal(err)
	}
	return fx
}

func readRegistryRows(t *testing.T, path string) map[string][]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r := csv.NewReader(bufio.NewReaderSize(f, 1<<20))
	r.ReuseRecord = false
	rows := map[string][]string{}
	if _, err := r.Read(); err != nil {
		t.Fatal(err)
	}
	for {
		rec, err := r.Read()
		if err == io.EOF {
			return rows
		}
		if err != nil {
			t.Fatal(err)
		}
		rows[rec[0]] = rec
	}
}

// killMidRun starts the CLI and kills it with SIGKILL once its progress passes pct
// percent (at least one batch is committed then, and the run is not finished).
func killMidRun(t *testing.T, pct int, args ...string) []string {
	t.Helper()
	progressLine := regexp.MustCompile(`^doses\s+(\d+)%`)
	return cli.KillWhen(t, fmt.Sprintf("at %d%%", pct), func(line string) bool {
		m := progressLine.FindStringSubmatch(line)
		if m == nil {
			return false
		}
		p, _ := strconv.Atoi(m[1])
		return p >= pct && p < 100
	}, args...)
}

func decodeSummary(t *testing.T, out string) reprocess.Summary {
	t.Helper()
	var s reprocess.Summary
	if err := json.Unmarshal([]byte(out), &s); err != nil {
		t.Fatalf("summary: %v\n%s", err, out)
	}
	if !s.Done || s.Counts.Failed != 0 {
		t.Fatalf("run not finished cleanly: %+v", s)
	}
	return s
}

// doseState is what reprocessing may change of a dose.
type doseState struct {
	Status         match.Status
	Reasons        string
	Corrected      string
	PersonID       string
	MatchedDetails string
	Signed         bool
}

// personCerts summarises a person's certificates: how many exist, and what the active one
// says (its content hash and displayed fields, the UVCI aside: UVCIs are random).
type personCerts struct {
	Total, Revoked int
	Active         string
	Fields         vaxpass.Fields
}

type state struct {
	doses  map[vaxpass.DoseKey]doseState
	certs  map[string]personCerts
	active int
	queue  struct{ Visible, InFlight, Delayed, Dead int }
}

// readState reads a data directory's doses and certificates through the store's own
// listing calls.
func readState(t *testing.T, data string) state {
	t.Helper()
	ctx := context.Background()
	sys, err := local.OpenLocal(local.Options{DataDir: data, Log: quietLog()})
	if err != nil {
		t.Fatal(err)
	}
	defer sys.Close()
	s := state{doses: map[vaxpass.DoseKey]doseState{}, certs: map[string]personCerts{}}
	facs, err := sys.Store.ListFacilities(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range facs {
		for _, st := range []match.Status{match.Pending, match.Verified, match.NoID, match.InvalidID, match.NotFound, match.Mismatch} {
			after := ""
			for {
				page, err := sys.Store.ListByStatus(ctx, f.ID, st, after, 1000)
				if err != nil {
					t.Fatal(err)
				}
				for _, d := range page {
					s.doses[d.Key()] = doseState{
						Status: d.Match.Status, Reasons: strings.Join(d.Match.Reasons, ","),
						Corrected: fmt.Sprint(d.Match.Corrected), PersonID: d.PersonID,
						MatchedDetails: d.MatchedDetails, Signed: !d.SignedAt.IsZero(),
					}
				}
				if len(page) < 1000 {
					break
				}
				after = page[len(page)-1].SourceID
			}
		}
	}
	cursor := ""
	for {
		page, next, err := sys.Store.ListCertificates(ctx, cursor, 1000)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range page {
			pc := s.certs[c.PersonID]
			pc.Total++
			switch c.Status {
			case vaxpass.CertRevoked:
				pc.Revoked++
			case vaxpass.CertIssued:
				if pc.Active != "" {
					t.Fatalf("a person has two active certificates")
				}
				pc.Active = c.ContentHash
				pc.Fields = c.Fields
				pc.Fields.CertificateID = ""
				s.active++
			}
			s.certs[c.PersonID] = pc
		}
		if next == "" {
			break
		}
		cursor = next
	}
	qc, err := sys.Queue.Counts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	s.queue.Visible, s.queue.InFlight, s.queue.Delayed, s.queue.Dead = qc.Visible, qc.InFlight, qc.Delayed, qc.Dead
	return s
}

func readRuns(t *testing.T, data string) []reprocess.Run {
	t.Helper()
	out := cli.Must(t, "reprocess", "list", "--json", "--data", data).Stdout
	var runs []reprocess.Run
	dec := json.NewDecoder(strings.NewReader(out))
	for dec.More() {
		var r reprocess.Run
		if err := dec.Decode(&r); err != nil {
			t.Fatal(err)
		}
		runs = append(runs, r)
	}
	return runs
}

// firstRun is the registry update's finished run of a stage (before it, the world's
// first match; after it, the idempotence checks).
func firstRun(t *testing.T, runs []reprocess.Run, stage reprocess.Stage) reprocess.Run {
	t.Helper()
	for _, r := range runs {
		if r.Stage == stage && r.State == reprocess.Done && r.Reason == "registry update" {
			return r
		}
	}
	t.Fatalf("no finished %s run among %d", stage, len(runs))
	return reprocess.Run{}
}

// auditedDoses lists the dose keys the audit trail records for a run, sorted.
func auditedDoses(t *testing.T, data, runID string) []string {
	t.Helper()
	sys, err := local.OpenLocal(local.Options{DataDir: data, Log: quietLog()})
	if err != nil {
		t.Fatal(err)
	}
	defer sys.Close()
	ops, err := local.AttachOps(sys)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	err = audit.All(context.Background(), ops.Audit, audit.Query{Action: audit.ActionReprocess}, func(e audit.Entry) error {
		if e.RunID == runID {
			ids = append(ids, e.Doses...)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(ids)
	return ids
}
