package deployed

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/vaxpass/vaxpass/shared/domain/dose"
	"github.com/vaxpass/vaxpass/shared/domain/match"
	"github.com/vaxpass/vaxpass/shared/domain/vaccine"
	"github.com/vaxpass/vaxpass/shared/stage/audit"
	"github.com/vaxpass/vaxpass/shared/stage/renewal"
	"github.com/vaxpass/vaxpass/shared/stage/reprocess"
	"github.com/vaxpass/vaxpass/shared/stage/revocation"
	"github.com/vaxpass/vaxpass/shared/stage/stats"
	"github.com/vaxpass/vaxpass/shared/store/awsdlq"
	"github.com/vaxpass/vaxpass/shared/testkit/cli"
	"github.com/vaxpass/vaxpass/shared/tool/synth"
	"github.com/vaxpass/vaxpass/shared/vaxpass"
)

// EnvWalkPeople overrides the size of the operator walk's population.
const EnvWalkPeople = "VAXPASS_WALK_PEOPLE"

// walk is an operator working on the deployed stack with the CLI only (`vaxpass ...
// --backend aws --stack NAME`, the AWS SDK's environment giving endpoint and credentials)
// and the stack's HTTP API.
type walk struct {
	*stack
	t     *testing.T
	bin   string
	dir   string
	name  string // the stack
	start time.Time
}

type cliResult struct {
	code           int
	stdout, stderr string
}

func (w *walk) step(format string, a ...any) {
	w.t.Logf("%6.1fs %s", time.Since(w.start).Seconds(), fmt.Sprintf(format, a...))
}

// command is the CLI (the test kit's one build) with the walk's environment: the test's own (AWS_ENDPOINT_URL,
// credentials, region) with USER set, so the default actor is known.
func (w *walk) command(args ...string) *exec.Cmd {
	cmd := exec.Command(w.bin, args...)
	cmd.Env = append(os.Environ(), "USER=walker", "VAXPASS_STACK=")
	return cmd
}

func (w *walk) cli(args ...string) cliResult {
	w.t.Helper()
	r := cli.Runner{Env: []string{"USER=walker", "VAXPASS_STACK="}}.Run(w.t, args...)
	return cliResult{code: r.Code, stdout: r.Stdout, stderr: r.Stderr}
}

// aws runs an operator command against the stack and wants exit 0.
func (w *walk) aws(args ...string) cliResult {
	w.t.Helper()
	r := w.cli(append(args, "--backend", "aws", "--stack", w.name)...)
	if r.code != 0 {
		w.t.Fatalf("vaxpass %s --backend aws: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
	}
	return r
}

// awsDeadLetters is aws for the dead-letter commands, which an operator runs again when
// they answer that a receive's response was lost (the messages it hid come back after
// their visibility timeout; the emulator loses about one response in a few hundred, AWS
// seldom): at most three tries, waiting out the visibility timeout in between.
func (w *walk) awsDeadLetters(args ...string) cliResult {
	w.t.Helper()
	for try := 1; ; try++ {
		r := w.cli(append(args, "--backend", "aws", "--stack", w.name)...)
		if r.code == 0 {
			return r
		}
		if try == 3 || !strings.Contains(r.stderr, "try again") {
			w.t.Fatalf("vaxpass %s --backend aws: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
		}
		w.step("vaxpass %s: a lost response, trying again after the visibility timeout", strings.Join(args, " "))
		time.Sleep(awsdlq.DefaultVisibility + 5*time.Second)
	}
}

// awsCode is aws with the backend flags right after the command's name (before verify's
// HC1 argument) and the exit code wanted.
func (w *walk) awsCode(want int, args ...string) cliResult {
	w.t.Helper()
	r := w.cli(append([]string{args[0], "--backend", "aws", "--stack", w.name}, args[1:]...)...)
	if r.code != want {
		w.t.Fatalf("vaxpass %s --backend aws: exit %d, want %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), r.code, want, r.stdout, r.stderr)
	}
	return r
}

func decodeLines[T any](t *testing.T, what, text string) []T {
	t.Helper()
	var out []T
	for line := range strings.Lines(text) {
		if strings.TrimSpace(line) == "" {
			continue
		}
		var v T
		if err := json.Unmarshal([]byte(line), &v); err != nil {
			t.Fatalf("%s: %v: %q", what, err, line)
		}
		out = append(out, v)
	}
	return out
}

// walkPopulation is the walk's generated population: the registry's lines, the dose
// records and their ground truth, and which people are held back from the first registry
// load (a registry update brings them later).
type walkPopulation struct {
	header  []string
	lines   map[string][]string // registry line by ID number
	ids     []string            // registry IDs in file order
	records []dose.Record
	truth   []synth.Truth
	late    map[string]bool
}

func (w *walk) generate(people int) walkPopulation {
	t := w.t
	var seed [4]byte
	rand.Read(seed[:])
	dir := filepath.Join(w.dir, "population")
	if r := w.cli("registry", "generate", "--people", fmt.Sprint(people), "--records", fmt.Sprint(3*people),
		"--mix", "only,clean=1", "--seed", fmt.Sprint(uint32(seed[0])|uint32(seed[1])<<8|uint32(seed[2])<<16|uint32(seed[3])<<24), "--out", dir); r.code != 0 {
		t.Fatalf("registry generate: %s", r.stderr)
	}
	var p walkPopulation
	p.records = readJSONL[dose.Record](t, filepath.Join(dir, synth.RecordsFile))
	p.truth = readJSONL[synth.Truth](t, filepath.Join(dir, synth.TruthFile))
	if len(p.records) == 0 || len(p.records) != len(p.truth) {
		t.Fatalf("generated %d records, %d truths", len(p.records), len(p.truth))
	}
	f, err := os.Open(filepath.Join(dir, synth.RegistryFile))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	p.header, p.lines = rows[0], map[string][]string{}
	for _, r := range rows[1:] {
		p.lines[r[0]] = r
		p.ids = append(p.ids, r[0])
	}
	// Every other vaccinated person is held back: their records are NOT_FOUND until the
	// registry update.
	p.late = map[string]bool{}
	seen := map[string]bool{}
	for _, tr := range p.truth {
		if !seen[tr.RegistryID] {
			seen[tr.RegistryID] = true
			if len(seen)%2 == 0 {
				p.late[tr.RegistryID] = true
			}
		}
	}
	return p
}

// writeRegistry writes the registry lines of ids (all when nil) as a CSV extract.
func (w *walk) writeRegistry(p walkPopulation, name string, keep func(id string) bool) (string, int) {
	path := filepath.Join(w.dir, name)
	f, err := os.Create(path)
	if err != nil {
		w.t.Fatal(err)
	}
	cw := csv.NewWriter(f)
	cw.Write(p.header)
	n := 0
	for _, id := range p.ids {
		if keep(id) {
			cw.Write(p.lines[id])
			n++
		}
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		w.t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		w.t.Fatal(err)
	}
	return path, n
}

// eligibleOf returns the people whose doses with status VERIFIED in status make a full course.
func eligibleOf(p walkPopulation, status map[string]match.Status) []string {
	byPerson := map[string][]vaccine.Dose{}
	for i, tr := range p.truth {
		if status[p.records[i].SourceID] == match.Verified {
			r := p.records[i]
			byPerson[tr.RegistryID] = append(byPerson[tr.RegistryID], vaccine.Dose{Vaccine: vaccine.Code(r.Vaccine), DoseNumber: r.DoseNumber, VaccinatedOn: r.VaccinatedOn})
		}
	}
	var out []string
	for id, ds := range byPerson {
		if a, err := vaccine.Assess(ds); err == nil && a.Eligible {
			out = append(out, id)
		}
	}
	slices.Sort(out)
	return out
}

func (w *walk) person(p walkPopulation, id string) match.Person {
	line := p.lines[id]
	return match.Person{IDNumber: line[0], FullName: line[1], DOB: line[2], Gender: line[3]}
}

// facilityStats reads GET /v1/stats with the ops key and returns the facility's row.
func (w *walk) facilityStats(opsKey, facility string) (stats.Facility, bool) {
	var snap stats.Snapshot
	w.json("GET", "/v1/stats", opsKey, nil, &snap, http.StatusOK)
	for _, f := range snap.Facilities {
		if f.ID == facility {
			return f, true
		}
	}
	return stats.Facility{}, false
}

// statuses reads every record's match status through the facility API.
func (w *walk) statuses(apiKey string, records []dose.Record) map[string]match.Status {
	out := map[string]match.Status{}
	for _, r := range records {
		var d doseAnswer
		w.json("GET", "/v1/doses/"+r.SourceID, apiKey, nil, &d, http.StatusOK)
		out[r.SourceID] = d.Match.Status
	}
	return out
}

// TestDeployedOperatorWalk is an operator's walk through a deployed stack with only the
// CLI (`--backend aws --stack NAME`) and the HTTP API: a CSCA and the stack's DSC, a
// registry load, a facility, an ops key, uploads, signing, lookup, verification, a
// correction, renewal, a revocation (audited, published, refused by verification), a
// registry update followed by a filtered reprocessing run -- dry run, then for real with
// the ops function SIGKILLed in the middle (on an emulator) and the run resumed from the
// work queue -- dead letters listed and redriven, the dashboard's numbers and page.
func TestDeployedOperatorWalk(t *testing.T) {
	s := openStack(t)
	ctx := context.Background()
	w := &walk{stack: s, t: t, dir: t.TempDir(), name: s.outputs["StackName"], start: time.Now()}
	if w.name == "" {
		t.Fatal("stack output StackName missing")
	}
	w.bin = cli.Bin(t)
	w.step("CLI built")

	tag := randomTag()
	facility := "walk-" + tag

	// A central signing message that can never succeed, sent first so that it is a dead
	// letter (two receives, 5 s apart on the emulator) by the time the walk gets there.
	poisonFacility := "walk-poison-" + tag
	poison := fmt.Sprintf(`{"signature":{"person_id":"001099000001","facility_id":%q,"payload":"AA==","signature":"AA==","signed_at":"2021-09-01T00:00:00Z"}}`, poisonFacility)
	if _, err := sqs.NewFromConfig(s.cfg).SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(s.outputs["CentralQueueUrl"]), MessageBody: aws.String(poison)}); err != nil {
		t.Fatal(err)
	}

	// 1. A CSCA, offline, and the stack's DSC certified with it and published.
	cscaDir := filepath.Join(w.dir, "csca")
	if r := w.cli("csca", "create", "--out", cscaDir); r.code != 0 {
		t.Fatalf("csca create: %s", r.stderr)
	}
	if r := w.aws("dsc", "publish", "--csca-dir", cscaDir); !strings.Contains(r.stdout, "published DSC kid") {
		t.Fatalf("dsc publish: %s", r.stdout)
	}
	w.step("CSCA created, DSC published to the trust bucket")

	// 2. A registry extract, loaded without the people a later update brings.
	people := 150
	if v := os.Getenv(EnvWalkPeople); v != "" {
		fmt.Sscan(v, &people)
	}
	pop := w.generate(people)
	first, n := w.writeRegistry(pop, "registry-first.csv", func(id string) bool { return !pop.late[id] })
	var loaded struct {
		Records, Loaded, Rejected int64
	}
	if err := json.Unmarshal([]byte(w.aws("registry", "load", first, "--checkpoint-dir", w.dir).stdout), &loaded); err != nil || loaded.Loaded != int64(n) || loaded.Rejected != 0 {
		t.Fatalf("registry load: %+v %v, want %d loaded", loaded, err, n)
	}
	w.step("registry load: %d of %d people (%d held back for the update)", n, len(pop.ids), len(pop.ids)-n)

	// 3. A facility (its KMS key) and an ops key.
	apiKey := strings.TrimSpace(w.aws("facility", "add", "--id", facility, "--name", "Trạm Y tế phường Walk", "--actor", "walker").stdout)
	if !strings.HasPrefix(apiKey, "vxp_") {
		t.Fatalf("facility add printed %q", apiKey)
	}
	opsKey := strings.TrimSpace(w.aws("ops", "key", "--actor", "walk-ops").stdout)
	if !strings.HasPrefix(opsKey, "vxo_") {
		t.Fatalf("ops key printed %q", opsKey)
	}
	w.step("facility %s and an ops key", facility)

	// 4. Uploads. One record of a registered person carries a mistyped given name: a
	// MISMATCH the facility corrects later.
	expected := map[string]match.Status{}
	var late []dose.Record
	typo := -1
	for i, r := range pop.records {
		id := pop.truth[i].RegistryID
		switch {
		case pop.late[id]:
			expected[r.SourceID] = match.NotFound
			late = append(late, r)
		case typo < 0 && r.DoseNumber == 1:
			typo = i
			pop.records[i].FullName = strings.TrimSpace(r.FullName) + " Thị"
			expected[r.SourceID] = match.Mismatch
		default:
			expected[r.SourceID] = match.Verified
		}
	}
	if typo < 0 || len(late) == 0 {
		t.Fatal("the generated population has no record for the correction or the registry update")
	}
	var up uploadAnswer
	s.json("POST", "/v1/doses", apiKey, map[string]any{"records": pop.records}, &up, http.StatusOK)
	if up.Accepted != len(pop.records) || up.Rejected != 0 {
		t.Fatalf("upload of %d records: accepted %d, rejected %d", len(pop.records), up.Accepted, up.Rejected)
	}
	eventually(t, "every uploaded record matched", func() (bool, string) {
		f, ok := w.facilityStats(opsKey, facility)
		return ok && f.Doses == len(pop.records) && f.ByStatus[match.Pending] == 0, fmt.Sprintf("%+v", f.Counts)
	})
	got := w.statuses(apiKey, pop.records)
	for sid, want := range expected {
		if got[sid] != want {
			t.Errorf("record %s matched %s, want %s", sid, got[sid], want)
		}
	}
	if t.Failed() {
		t.FailNow()
	}
	w.step("%d records uploaded and matched (%d NOT_FOUND, 1 MISMATCH)", len(pop.records), len(late))

	// 5. Facility signing, then central signing, then the citizen's lookup.
	var signed struct {
		Signed int `json:"signed"`
	}
	s.json("POST", "/v1/signatures", apiKey, nil, &signed, http.StatusOK)
	eligible := eligibleOf(pop, got)
	if signed.Signed != len(eligible) || len(eligible) < 2 {
		t.Fatalf("POST /v1/signatures signed %d people, want the %d eligible (at least 2)", signed.Signed, len(eligible))
	}
	certs := map[string]lookupAnswer{}
	for _, id := range eligible[:2] {
		certs[id] = s.lookup(t, w.person(pop, id))
	}
	w.step("facility signed %d people; their certificates looked up", signed.Signed)

	// 6. Verification with the stack's published trust and revocation lists.
	holder, other := eligible[0], eligible[1]
	var verdict struct {
		Valid  bool   `json:"valid"`
		Reason string `json:"reason"`
	}
	r := w.awsCode(0, "verify", certs[holder].HC1)
	if err := json.Unmarshal([]byte(r.stdout), &verdict); err != nil || !verdict.Valid {
		t.Fatalf("verify --backend aws: %s %v", r.stdout, err)
	}
	w.step("vaxpass verify --backend aws: valid")

	// 7. The facility corrects the mistyped name: the record is matched again.
	typoRec := pop.records[typo]
	fixed := w.person(pop, pop.truth[typo].RegistryID).FullName
	var corr struct {
		Status  string   `json:"status"`
		Changed []string `json:"changed"`
	}
	s.json("PATCH", "/v1/doses/"+typoRec.SourceID, apiKey, map[string]string{"full_name": fixed}, &corr, http.StatusOK)
	if corr.Status != "corrected" || !slices.Equal(corr.Changed, []string{"full_name"}) {
		t.Fatalf("PATCH /v1/doses/%s: %+v", typoRec.SourceID, corr)
	}
	eventually(t, "corrected record matched again", func() (bool, string) {
		var d doseAnswer
		s.json("GET", "/v1/doses/"+typoRec.SourceID, apiKey, nil, &d, http.StatusOK)
		return d.Match.Status == match.Verified, string(d.Match.Status)
	})
	corrections := decodeLines[audit.Entry](t, "audit", w.aws("audit", "--action", audit.ActionCorrection).stdout)
	if !slices.ContainsFunc(corrections, func(e audit.Entry) bool {
		return slices.Contains(e.Doses, audit.DoseKey(facility, typoRec.SourceID)) && e.Actor == "facility:"+facility
	}) {
		t.Errorf("the correction of %s is not in the audit trail", typoRec.SourceID)
	}
	w.step("record corrected (PATCH), matched again, audited")

	// 8. Renewal by the stack's renewal function over a window covering every certificate,
	// once central signing has issued them all (a run renews the certificates issued
	// before the second it starts in).
	eventually(t, "every signed person's certificate issued", func() (bool, string) {
		f, _ := w.facilityStats(opsKey, facility)
		return f.Certificates.Valid >= len(eligible), fmt.Sprintf("%+v", f.Certificates)
	})
	time.Sleep(1100 * time.Millisecond)
	var sum renewal.Summary
	if err := json.Unmarshal([]byte(w.aws("renew", "--within", "400d", "--actor", "walker").stdout), &sum); err != nil {
		t.Fatal(err)
	}
	if sum.Counts.Renewed < int64(len(eligible)) || sum.FinishedAt.IsZero() {
		t.Fatalf("renew: %+v, want at least %d renewed and the run finished", sum, len(eligible))
	}
	renewed := s.lookup(t, w.person(pop, holder))
	if renewed.UVCI != certs[holder].UVCI || renewed.HC1 == certs[holder].HC1 {
		t.Errorf("renewed certificate: UVCI %s -> %s, HC1 changed %v", certs[holder].UVCI, renewed.UVCI, renewed.HC1 != certs[holder].HC1)
	}
	w.step("renew --backend aws: %d renewed", sum.Counts.Renewed)

	// 9. Revocation: audited with the actor, published, refused by verification.
	var rev revocation.Result
	if err := json.Unmarshal([]byte(w.awsCode(0, "revoke", renewed.UVCI, "--reason", "walk: card reported stolen", "--actor", "walker").stdout), &rev); err != nil || rev.Outcome == "" {
		t.Fatalf("revoke: %+v %v", rev, err)
	}
	trail := decodeLines[audit.Entry](t, "audit", w.aws("audit", "--action", audit.ActionRevocation, "--actor", "cli:walker").stdout)
	if !slices.ContainsFunc(trail, func(e audit.Entry) bool {
		return slices.ContainsFunc(e.UVCIs, func(u string) bool { return strings.EqualFold(u, renewed.UVCI) })
	}) {
		t.Errorf("audit --action revocation --actor cli:walker: no entry for the revoked UVCI in %d entries", len(trail))
	}
	list := s.call("GET", "/v1/revocations", "", "", nil)
	set, err := revocation.Parse(list.body)
	if list.status != http.StatusOK || err != nil {
		t.Fatalf("GET /v1/revocations: %d %v", list.status, err)
	}
	if _, listed, _ := set.Revoked(ctx, renewed.UVCI); !listed {
		t.Errorf("GET /v1/revocations does not list the revoked certificate")
	}
	r = w.awsCode(1, "verify", renewed.HC1)
	if err := json.Unmarshal([]byte(r.stdout), &verdict); err != nil || verdict.Valid || verdict.Reason != revocation.ReasonRevoked {
		t.Errorf("verify --backend aws of a revoked certificate: %s", r.stdout)
	}
	if r := w.awsCode(0, "verify", s.lookup(t, w.person(pop, other)).HC1); !strings.Contains(r.stdout, `"valid":true`) {
		t.Errorf("another certificate no longer verifies: %s", r.stdout)
	}
	w.step("revoked %s: audited, listed in GET /v1/revocations, refused by verify", rev.Outcome)

	// 10. The registry update, then the match stage again over the facility's NOT_FOUND
	// records: a dry run lists exactly the held-back people's records, the run changes
	// exactly those -- with the ops function killed in the middle of a batch.
	all, _ := w.writeRegistry(pop, "registry-update.csv", func(string) bool { return true })
	w.aws("registry", "load", all)
	selection := []string{"reprocess", "--stage", "match", "--status", "NOT_FOUND", "--facility", facility}
	dry := w.aws(append(selection, "--dry-run")...)
	var wantIDs, dryIDs []string
	for _, r := range late {
		wantIDs = append(wantIDs, facility+"/"+r.SourceID)
	}
	for line := range strings.Lines(dry.stdout) {
		id, outcome, _ := strings.Cut(strings.TrimSpace(line), "\t")
		if outcome != "verified" {
			t.Errorf("dry run: %s would become %q, want verified", id, outcome)
		}
		dryIDs = append(dryIDs, id)
	}
	slices.Sort(wantIDs)
	slices.Sort(dryIDs)
	if !slices.Equal(dryIDs, wantIDs) {
		t.Fatalf("dry run lists %d records, want the %d held-back records\n%s", len(dryIDs), len(wantIDs), dry.stderr)
	}
	w.step("reprocess --dry-run: %d records would change", len(dryIDs))

	run := w.reprocessKilled(append(selection, "--reason", "registry update", "--actor", "walker", "--poll", "100ms"))
	if run.Counts.Changed != int64(len(late)) || run.Counts.Failed != 0 || run.Counts.Scanned != int64(len(late)) || !run.Done {
		t.Errorf("reprocess summary %+v, want %d scanned and changed, none failed, done", run, len(late))
	}
	for sid, st := range w.statuses(apiKey, late) {
		if st != match.Verified {
			t.Errorf("record %s is %s after the run, want VERIFIED", sid, st)
		}
		got[sid] = st
	}
	got[typoRec.SourceID] = match.Verified
	// The same runs through the ops API: its function starts, dry-runs and reads runs
	// through the ops worker (a direct invoke its role may make), never by itself.
	var apiRuns struct {
		Runs []reprocess.Run `json:"runs"`
	}
	w.json("GET", "/v1/ops/reprocess", opsKey, nil, &apiRuns, http.StatusOK)
	if !slices.ContainsFunc(apiRuns.Runs, func(r reprocess.Run) bool { return r.ID == run.RunID }) {
		t.Errorf("GET /v1/ops/reprocess does not list run %s: %+v", run.RunID, apiRuns.Runs)
	}
	var oneRun reprocess.Run
	w.json("GET", "/v1/ops/reprocess/"+run.RunID, opsKey, nil, &oneRun, http.StatusOK)
	if oneRun.ID != run.RunID || oneRun.State != reprocess.Done {
		t.Errorf("GET /v1/ops/reprocess/%s: %+v, want the run done", run.RunID, oneRun)
	}
	var apiDry reprocess.Summary
	w.json("POST", "/v1/ops/reprocess", opsKey, map[string]any{"stage": "match", "status": []string{"NOT_FOUND"}, "dry_run": true}, &apiDry, http.StatusOK)
	if !apiDry.DryRun {
		t.Errorf("POST /v1/ops/reprocess dry run: %+v", apiDry)
	}
	if r := s.call("GET", "/v1/ops/reprocess/rp-20200101T000000Z-00000000", opsKey, "", nil); r.status != http.StatusNotFound {
		t.Errorf("GET /v1/ops/reprocess of an unknown run: %d, want 404", r.status)
	}
	w.step("the ops API lists, reads and dry-runs reprocessing through the ops worker")
	runs := decodeLines[reprocess.Run](t, "reprocess list", w.aws("reprocess", "list", "--json").stdout)
	i := slices.IndexFunc(runs, func(r reprocess.Run) bool { return r.ID == run.RunID })
	if i < 0 || runs[i].State != reprocess.Done || runs[i].Actor != "cli:walker" {
		t.Errorf("reprocess list: run %s not listed done by cli:walker", run.RunID)
	}
	audited := decodeLines[audit.Entry](t, "audit", w.aws("audit", "--action", audit.ActionReprocess).stdout)
	if !slices.ContainsFunc(audited, func(e audit.Entry) bool { return e.RunID == run.RunID }) {
		t.Errorf("the reprocessing run %s is not in the audit trail", run.RunID)
	}

	// The people the update verified are signed now, and get their certificates.
	s.json("POST", "/v1/signatures", apiKey, nil, &signed, http.StatusOK)
	var lateEligible []string
	for _, id := range eligibleOf(pop, got) {
		if pop.late[id] {
			lateEligible = append(lateEligible, id)
		}
	}
	if signed.Signed < len(lateEligible) || len(lateEligible) == 0 {
		t.Fatalf("signing after the update signed %d, want the %d people it verified", signed.Signed, len(lateEligible))
	}
	s.lookup(t, w.person(pop, lateEligible[0]))
	w.step("the update's people signed (%d) and issued", signed.Signed)

	// 11. Dead letters: the poison message is listed (facility named, body not shown)
	// and redriven; central signing fails it again and it comes back.
	var letter vaxpass.DeadLetter
	eventually(t, "the poison message among the central dead letters", func() (bool, string) {
		letters := decodeLines[vaxpass.DeadLetter](t, "dlq list", w.awsDeadLetters("dlq", "list", "--queue", "central").stdout)
		i := slices.IndexFunc(letters, func(d vaxpass.DeadLetter) bool { return d.FacilityID == poisonFacility })
		if i >= 0 {
			letter = letters[i]
		}
		return i >= 0, fmt.Sprintf("%d letters", len(letters))
	})
	if r := w.awsDeadLetters("dlq", "list", "--queue", "central"); strings.Contains(r.stdout, "001099000001") {
		t.Errorf("dlq list shows the message's person ID")
	}
	w.awsDeadLetters("dlq", "redrive", "--queue", "central", letter.ID, "--actor", "walker")
	eventually(t, "the redriven poison message back among the dead letters", func() (bool, string) {
		letters := decodeLines[vaxpass.DeadLetter](t, "dlq list", w.awsDeadLetters("dlq", "list", "--queue", "central").stdout)
		i := slices.IndexFunc(letters, func(d vaxpass.DeadLetter) bool { return d.FacilityID == poisonFacility && d.ID != letter.ID })
		return i >= 0, fmt.Sprintf("%d letters", len(letters))
	})
	w.awsDeadLetters("dlq", "list", "--queue", "matcher")
	redrives := decodeLines[audit.Entry](t, "audit", w.aws("audit", "--action", audit.ActionRedrive, "--actor", "cli:walker").stdout)
	if len(redrives) == 0 {
		t.Errorf("the redrive is not in the audit trail")
	}
	w.step("dead letter listed, redriven, dead again; redrive audited")

	// 12. The dashboard: its numbers with the ops key (none without), and its page.
	if r := s.call("GET", "/v1/stats", "", "", nil); r.status != http.StatusUnauthorized {
		t.Errorf("GET /v1/stats without a key: %d", r.status)
	}
	row, ok := w.facilityStats(opsKey, facility)
	if !ok || row.Doses != len(pop.records) || row.ByStatus[match.Verified] != len(pop.records) || row.Certificates.Revoked < 1 || row.Certificates.Valid < len(eligible) {
		t.Errorf("GET /v1/stats: facility row %+v, want %d doses all VERIFIED, a revoked certificate, at least %d valid", row, len(pop.records), len(eligible))
	}
	page := s.call("GET", "/ops", "", "", nil)
	if page.status != http.StatusOK || !strings.HasPrefix(page.header.Get("Content-Type"), "text/html") {
		t.Errorf("GET /ops: %d %s", page.status, page.header.Get("Content-Type"))
	}
	w.step("GET /v1/stats (ops key) and GET /ops")
}

// reprocessKilled runs the reprocessing command, follows its progress on stderr and, on
// an emulator, SIGKILLs the ops function's processes once a batch is under way: the work
// message comes back after the work queue's visibility timeout and the run resumes from
// its stored state. It returns the run's summary.
func (w *walk) reprocessKilled(args []string) reprocess.Summary {
	t := w.t
	cmd := w.command(append(args, "--backend", "aws", "--stack", w.name)...)
	var out bytes.Buffer
	cmd.Stdout = &out
	errPipe, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	endpoint := emulatorEndpoint()
	var (
		mu      sync.Mutex
		log     strings.Builder
		killed  []int
		killAt  time.Time
		resumed bool
	)
	done := make(chan struct{})
	go func() {
		defer close(done)
		sc := bufio.NewScanner(errPipe)
		for sc.Scan() {
			line := sc.Text()
			mu.Lock()
			log.WriteString(line + "\n")
			switch {
			case strings.Contains(line, "batch under way") && killed == nil && endpoint != "":
				killed = killFunction(t, endpoint, w.outputs["OpsFunction"])
				killAt = time.Now()
				w.step("ops function killed mid-batch (pids %v): %s", killed, line)
			case strings.Contains(line, "resumed after an interruption"):
				resumed = true
				w.step("%s", line)
			}
			mu.Unlock()
		}
		io.Copy(io.Discard, errPipe)
	}()
	waited := make(chan error, 1)
	go func() {
		<-done
		waited <- cmd.Wait()
	}()
	select {
	case err = <-waited:
	case <-time.After(2*patience + 2*time.Minute):
		cmd.Process.Kill()
		<-waited
		t.Fatalf("reprocess did not finish:\n%s", log.String())
	}
	mu.Lock()
	defer mu.Unlock()
	if err != nil {
		t.Fatalf("reprocess: %v\n%s\n%s", err, out.String(), log.String())
	}
	var sum reprocess.Summary
	if err := json.Unmarshal(out.Bytes(), &sum); err != nil {
		t.Fatalf("reprocess summary: %v: %s", err, out.String())
	}
	if endpoint != "" {
		switch {
		case killed == nil:
			t.Fatalf("no batch was seen under way: the run was too quick to interrupt (raise %s)\n%s", EnvWalkPeople, log.String())
		case len(killed) == 0:
			t.Fatalf("no process of the ops function %s found to kill\n%s", w.outputs["OpsFunction"], log.String())
		case !resumed || !sum.Resumed:
			t.Errorf("the killed run did not resume (summary resumed=%v)\n%s", sum.Resumed, log.String())
		}
		w.step("reprocess done %.0fs after the kill: %d changed", time.Since(killAt).Seconds(), sum.Counts.Changed)
	} else {
		t.Logf("not an emulator on this machine: the run was not interrupted")
	}
	return sum
}
