package deployed

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs"

	"github.com/vaxpass/vaxpass/shared/domain/dose"
	"github.com/vaxpass/vaxpass/shared/domain/match"
	"github.com/vaxpass/vaxpass/shared/edge/emf"
	"github.com/vaxpass/vaxpass/shared/stage/stats"
	"github.com/vaxpass/vaxpass/shared/testkit/awstest"
	"github.com/vaxpass/vaxpass/shared/tool/registry"
	"github.com/vaxpass/vaxpass/shared/tool/synth"
	"github.com/vaxpass/vaxpass/shared/vaxpass"
	"github.com/vaxpass/vaxpass/shared/wire/cloud"
)

// TestDeployedScale is the national backlog in small (it runs last: its renewal renews
// every certificate of the stack). One facility has VAXPASS_BACKLOG_BIG people waiting
// (default 20,000: VAXPASS_BACKLOG_ELIGIBLE of them (default 7,000) with a complete
// course, the others with a first dose only, the `waiting` of the answer), three others
// VAXPASS_BACKLOG_SMALL people each (default 1,000, a tenth of them vaccinated at two
// facilities), all verified and unsigned at once. The big facility's POST
// /v1/signatures answers at once with a run; the schedule's payload starts the others';
// the runs fan out from the signing queue, central signing reads its two queues, every
// KMS call draws on the stack's one budget (KmsSignsPerSecond, VAXPASS_BACKLOG_KMS_BUDGET
// here). In the middle the central and facility signing functions are killed. At the end
// every eligible person has exactly one valid certificate, the KMS Sign calls per
// certificate are counted from the metrics the functions emitted, and the rate is
// measured against the budget. Then a renewal of every certificate fans out from the
// renewal queue: each person keeps one valid certificate, same UVCI, later expiry.
func TestDeployedScale(t *testing.T) {
	s := openStack(t)
	ctx := context.Background()
	start := time.Now()
	step := func(format string, a ...any) {
		t.Logf("%6.1fs %s", time.Since(start).Seconds(), fmt.Sprintf(format, a...))
	}
	big, small := envPositive(t, "VAXPASS_BACKLOG_BIG", 20000), envPositive(t, "VAXPASS_BACKLOG_SMALL", 1000)
	bigEligible := min(big, envPositive(t, "VAXPASS_BACKLOG_ELIGIBLE", 7000))
	budget := envPositive(t, "VAXPASS_BACKLOG_KMS_BUDGET", 50) // the stack's KmsSignsPerSecond

	pop := backlogPopulation(t, big, bigEligible, small)
	tag := strconv.FormatInt(time.Now().UnixNano()%1e9, 36)
	keys := make([]string, len(pop.facilities))
	for i := range pop.facilities {
		pop.facilities[i] = "bl-" + tag + "-" + strconv.Itoa(i)
		key, err := s.sys.AddFacility(ctx, pop.facilities[i], "Backlog site "+strconv.Itoa(i))
		if err != nil {
			t.Fatalf("register facility: %v", err)
		}
		keys[i] = key
		// The facility's public key is kept with its record: central signing's instances
		// read it there, not from KMS's GetPublicKey.
		f, err := s.sys.Store.GetFacility(ctx, pop.facilities[i])
		if err != nil {
			t.Fatal(err)
		}
		stored, err := x509.ParsePKIXPublicKey(f.PublicKey)
		kmsKey, kerr := s.sys.Keys.PublicKeyOf(ctx, f.KeyID)
		if err != nil || kerr != nil || !kmsKey.Equal(stored) {
			t.Fatalf("facility %s: stored public key %v (%v) is not its KMS key's (%v)", f.ID, stored, err, kerr)
		}
	}
	if n, err := s.sys.LoadRegistry(ctx, slices.Values(pop.people)); err != nil || n != len(pop.people) {
		t.Fatalf("load registry: %d of %d, %v", n, len(pop.people), err)
	}
	opsKey, err := s.sys.Sys.NewOpsKey(ctx, "backlog-test")
	if err != nil {
		t.Fatal(err)
	}
	step("%d facilities, %d people in the registry", len(pop.facilities), len(pop.people))

	// Upload every facility's records, four requests at a time, and wait for the matcher.
	var wg sync.WaitGroup
	var failed atomic.Value
	sem := make(chan struct{}, 4)
	for f, records := range pop.records {
		for from := 0; from < len(records); from += 1000 {
			batch := records[from:min(from+1000, len(records))]
			wg.Add(1)
			sem <- struct{}{}
			go func() {
				defer func() { <-sem; wg.Done() }()
				r := s.call("POST", "/v1/doses", keys[f], "application/json", mustJSON(t, map[string]any{"records": batch}))
				if r.status != http.StatusOK || !strings.Contains(string(r.body), fmt.Sprintf(`"accepted":%d`, len(batch))) {
					failed.Store(fmt.Sprintf("upload: %d %.300s", r.status, r.body))
				}
			}()
		}
	}
	wg.Wait()
	if msg := failed.Load(); msg != nil {
		t.Fatal(msg)
	}
	step("%d records uploaded", pop.recordCount())
	s.waitFacilities(t, opsKey, pop.facilities, "every record verified", func(i int, f stats.Facility) bool {
		return f.Counts.ByStatus[match.Verified] == len(pop.records[i])
	})
	step("every record matched VERIFIED through the stream")

	// The backlog: the big facility asks, the schedule starts the rest.
	t0 := time.Now()
	asked := time.Now()
	r := s.call("POST", "/v1/signatures", keys[0], "application/json", nil)
	answered := time.Since(asked)
	if r.status != http.StatusAccepted || !strings.Contains(string(r.body), `"status":"running"`) {
		t.Fatalf("POST /v1/signatures with %d waiting: %d %s, want 202 and a running run", big, r.status, r.body)
	}
	if answered > 29*time.Second {
		t.Errorf("POST /v1/signatures answered after %s: past API Gateway's 29-second limit", answered)
	}
	var bigRun struct {
		RunID string `json:"run_id"`
	}
	mustUnmarshal(t, r.body, &bigRun)
	step("POST /v1/signatures with %d people waiting answered 202 in %s (run %s)", big, answered.Round(time.Millisecond), bigRun.RunID)
	var sched cloud.SigningRun
	s.invoke("FacilitySigningFunction", map[string]string{"action": cloud.ActionSignAllFacilities}, &sched)
	if len(sched.Failed) != 0 || !slices.Contains(sched.Runs, bigRun.RunID) {
		t.Fatalf("scheduled signing: %+v; want the big facility's running run among its runs", sched)
	}
	step("the schedule started %d runs (the big facility's own run among them)", len(sched.Runs))

	// Kill the signing functions once a third of the certificates are issued.
	eligible := pop.eligibleCount()
	killed := false
	var killedAt time.Duration
	var certsAtKill int
	progress := func() int {
		n := 0
		for _, f := range s.facilityStats(t, opsKey, pop.facilities) {
			n += f.Counts.Certificates.Valid
		}
		return n
	}
	deadline := time.Now().Add(time.Duration(3*eligible/budget+600) * time.Second)
	for {
		n := progress()
		if n >= pop.certifiedAtFacilities() {
			break
		}
		if !killed && n >= pop.certifiedAtFacilities()/3 && os.Getenv("VAXPASS_BACKLOG_KILL") != "0" {
			if ep := emulatorEndpoint(); ep != "" {
				c := killFunction(t, ep, s.outputs["CentralSigningFunction"])
				f := killFunction(t, ep, s.outputs["FacilitySigningFunction"])
				step("killed central signing (%d processes) and facility signing (%d) at %d certificates", len(c), len(f), n)
			}
			killed, killedAt, certsAtKill = true, time.Since(t0), n
		}
		if time.Now().After(deadline) {
			t.Fatalf("backlog not certified in time: %d of %d facility certificates", n, pop.certifiedAtFacilities())
		}
		// A dashboard read is ~40 strongly consistent queries: polled every 5 s, not 2, so
		// that the measurement does not load the single-process emulator it measures (the
		// rate is taken from the certificates' IssuedAt, not from the polls).
		time.Sleep(5 * time.Second)
	}
	step("every eligible person certified")

	// Exactly one valid certificate each.
	certs, last := s.checkOneEach(t, pop)
	step("%d people, %d certificates, each one issued and valid, no UVCI twice", eligible, len(certs))
	var run struct {
		Status  string `json:"status"`
		Signed  int    `json:"signed"`
		Waiting int    `json:"waiting"`
	}
	s.json("GET", "/v1/signatures/"+bigRun.RunID, keys[0], nil, &run, http.StatusOK)
	// A page signed by a killed invocation that did not save it is not counted again by
	// the run (its people are signed already): the counts are at most the truth then.
	if run.Status != "done" || run.Signed > bigEligible || run.Waiting > big-bigEligible || !killed && (run.Signed != bigEligible || run.Waiting != big-bigEligible) {
		t.Errorf("the big facility's run: %+v, want done with %d signed and %d waiting", run, bigEligible, big-bigEligible)
	}
	// The rate, against the budget, and the KMS calls per certificate from the metrics.
	took := last.Add(time.Second).Sub(t0).Seconds() // IssuedAt is whole seconds
	rate := float64(eligible) / took
	// The last invocations' metric lines reach the logs after their certificates reach
	// the table: read until they are all there, or 20 s.
	var totals map[string]float64
	for wait := time.Now().Add(20 * time.Second); ; time.Sleep(2 * time.Second) {
		if totals, err = awstest.EMFTotals(ctx, cloudwatchlogs.NewFromConfig(s.cfg), "/aws/lambda/", t0.Add(-time.Second)); err != nil {
			t.Fatal(err)
		}
		if totals[emf.CertificatesIssued] >= float64(eligible) || time.Now().After(wait) {
			break
		}
	}
	facilitySigns := totals[emf.SumKey(emf.KMSSign, emf.DimPurpose, emf.PurposeFacility)]
	centralSigns := totals[emf.SumKey(emf.KMSSign, emf.DimPurpose, emf.PurposeCentral)]
	issued := totals[emf.CertificatesIssued]
	perCert := (facilitySigns + centralSigns) / float64(eligible)
	beforeKill := 0.0
	if killed {
		// Facility-certificate counts at the kill: a person of two facilities counts twice.
		beforeKill = float64(certsAtKill) * float64(eligible) / float64(pop.certifiedAtFacilities()) / killedAt.Seconds()
	}
	step("BACKLOG people=%d facilities=%d budget=%d/s took=%.1fs rate=%.1f certificates/s (%.2f of the budget; %.1f/s = %.2f before the kill at %.0fs) kms_sign facility=%.0f central=%.0f issued_metric=%.0f throttles=%.0f sign_calls_per_certificate=%.3f post_answer=%s killed=%v",
		eligible, len(pop.facilities), budget, took, rate, rate/float64(budget), beforeKill, beforeKill/float64(budget), killedAt.Seconds(),
		facilitySigns, centralSigns, issued, totals[emf.KMSThrottle], perCert, answered.Round(time.Millisecond), killed)
	// A killed invocation's metrics die with it (it flushes when it answers): at most its
	// batch in flight is missing then.
	if lost := float64(eligible) - min(issued, centralSigns); lost > 0 && (!killed || lost > 0.05*float64(eligible)) {
		t.Errorf("the functions' metrics count %.0f certificates and %.0f central KMS signs for %d people: metrics missing", issued, centralSigns, eligible)
	}
	if perCert > 1.1 {
		t.Errorf("%.3f KMS Sign calls per certificate, want at most 1.1", perCert)
	}
	// Central signing makes one KMS call a certificate: issuing faster than the budget
	// would mean the budget is not kept (the emulator does not throttle KMS).
	if rate > float64(budget)*1.05 {
		t.Errorf("%.1f certificates/s with a KMS budget of %d/s: the budget is not kept", rate, budget)
	}

	// Renewal of every certificate of the stack, fanned out from the renewal queue.
	renewStart := time.Now()
	sum := s.renewAll(t, "400d", "scale-test")
	renewTook := sum.FinishedAt.Sub(sum.StartedAt).Seconds()
	after, _ := s.checkOneEach(t, pop)
	for id, c := range after {
		before := certs[id]
		if !strings.EqualFold(c.UVCI, before.UVCI) || !c.ExpiresAt.After(before.ExpiresAt) {
			t.Fatalf("person %d after renewal: UVCI %s -> %s, expiry %s -> %s; want the same UVCI and a later expiry",
				pop.index[id], before.UVCI, c.UVCI, before.ExpiresAt, c.ExpiresAt)
		}
	}
	renewTotals, err := awstest.EMFTotals(ctx, cloudwatchlogs.NewFromConfig(s.cfg), "/aws/lambda/", renewStart.Add(-time.Second))
	if err != nil {
		t.Fatal(err)
	}
	renewRate := float64(sum.Counts.Renewed) / renewTook
	step("RENEWAL renewed=%d (ours %d) slices=%d took=%.1fs rate=%.1f renewals/s (%.2f of the budget) kms_sign renewal=%.0f renewed_metric=%.0f",
		sum.Counts.Renewed, len(after), sum.Slices, renewTook, renewRate, renewRate/float64(budget),
		renewTotals[emf.SumKey(emf.KMSSign, emf.DimPurpose, emf.PurposeRenewal)], renewTotals[emf.CertificatesRenewed])
	if sum.Counts.Renewed < int64(eligible) || sum.Counts.Failed != 0 {
		t.Errorf("renewal: %+v, want at least %d renewed and none failed", sum.Counts, eligible)
	}
	if renewRate > float64(budget)*1.05 {
		t.Errorf("%.1f renewals/s with a KMS budget of %d/s: the budget is not kept", renewRate, budget)
	}
}

// checkOneEach reads every eligible person's certificate: exactly one, issued, valid (a
// sample verified through the API), no UVCI shared; it returns them by person and the
// latest IssuedAt.
func (s *stack) checkOneEach(t *testing.T, pop backlog) (map[string]vaxpass.Certificate, time.Time) {
	t.Helper()
	ctx := context.Background()
	var (
		mu       sync.Mutex
		wg       sync.WaitGroup
		last     time.Time
		certs    = map[string]vaxpass.Certificate{}
		uvcis    = map[string]string{}
		problems []string
	)
	ids := make(chan string)
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for id := range ids {
				c, err := s.sys.Store.ActiveCertificate(ctx, id)
				mu.Lock()
				switch {
				case err != nil:
					problems = append(problems, fmt.Sprintf("person %d: %v", pop.index[id], err))
				case c.Status != vaxpass.CertIssued:
					problems = append(problems, fmt.Sprintf("person %d: certificate %s", pop.index[id], c.Status))
				case c.Replaces != "" && !pop.twoSites[id]:
					problems = append(problems, fmt.Sprintf("person %d of one facility has a certificate that replaced another (issued twice)", pop.index[id]))
				default:
					if other, dup := uvcis[strings.ToUpper(c.UVCI)]; dup {
						problems = append(problems, fmt.Sprintf("UVCI shared by people %d and %d", pop.index[other], pop.index[id]))
					}
					uvcis[strings.ToUpper(c.UVCI)] = id
					certs[id] = c
					if c.IssuedAt.After(last) {
						last = c.IssuedAt
					}
				}
				mu.Unlock()
			}
		}()
	}
	for _, id := range pop.eligible {
		ids <- id
	}
	close(ids)
	wg.Wait()
	if len(problems) > 0 {
		t.Fatalf("%d problems, first: %s", len(problems), strings.Join(problems[:min(5, len(problems))], "; "))
	}
	for i, id := range pop.eligible {
		if i%(len(pop.eligible)/40+1) != 0 {
			continue
		}
		var verdict struct {
			Valid  bool   `json:"valid"`
			Reason string `json:"reason"`
		}
		s.json("POST", "/v1/verify", "", map[string]string{"hc1": certs[id].HC1}, &verdict, http.StatusOK)
		if !verdict.Valid {
			t.Errorf("person %d's certificate does not verify: %s", pop.index[id], verdict.Reason)
		}
	}
	return certs, last
}

// backlog is the generated population: the registry, each facility's records, and who
// is vaccinated where.
type backlog struct {
	people     []match.Person
	index      map[string]int
	facilities []string
	records    [][]dose.Record // by facility
	twoSites   map[string]bool // vaccinated at two facilities
	eligible   []string        // IDs of the people with a complete course
}

func (b backlog) recordCount() int {
	n := 0
	for _, r := range b.records {
		n += len(r)
	}
	return n
}

func (b backlog) eligibleCount() int { return len(b.eligible) }

// certifiedAtFacilities is the sum over facilities of the certified people with doses
// there (the dashboard counts a certificate at every facility that signed for it).
func (b backlog) certifiedAtFacilities() int { return len(b.eligible) + len(b.twoSites) }

// backlogPopulation makes big people at facility 0, the first bigEligible with one
// Janssen dose (a complete course), the others with a first AstraZeneca dose only (they
// wait for their second); and, for each of facilities 1-3, small people with two
// AstraZeneca doses, the second of a tenth of them given at the next facility.
func backlogPopulation(t *testing.T, big, bigEligible, small int) backlog {
	t.Helper()
	dir := t.TempDir()
	n := big + 3*small
	var seed [8]byte
	for i := range seed {
		seed[i] = byte(rand.IntN(256))
	}
	if _, err := synth.WriteDir(context.Background(), dir, synth.Config{People: n, Records: 1, Seed: uint64(seed[0]) | uint64(seed[1])<<8 | uint64(seed[2])<<16}, nil); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(filepath.Join(dir, synth.RegistryFile))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	mem, _, err := registry.LoadMemory(f, func(err error) { t.Fatalf("registry line: %v", err) }, nil)
	if err != nil {
		t.Fatal(err)
	}
	b := backlog{index: map[string]int{}, facilities: make([]string, 4), records: make([][]dose.Record, 4), twoSites: map[string]bool{}}
	for p := range mem.All {
		b.index[p.IDNumber] = len(b.people)
		b.people = append(b.people, p)
	}
	if len(b.people) != n {
		t.Fatalf("registry of %d people, want %d", len(b.people), n)
	}
	rec := func(p match.Person, sid, vaccine string, doseNumber int, on string) dose.Record {
		return dose.Record{SourceID: sid, FullName: p.FullName, DOB: p.DOB, Gender: p.Gender, IDNumber: p.IDNumber,
			Nationality: "VN", Vaccine: vaccine, DoseNumber: doseNumber, VaccinatedOn: on, Lot: "BL1"}
	}
	for i, p := range b.people[:big] {
		if (i+1)*bigEligible/big != i*bigEligible/big { // spread evenly over the pages
			b.records[0] = append(b.records[0], rec(p, fmt.Sprintf("b%d", i), "JANSSEN", 1, "2021-09-01"))
			b.eligible = append(b.eligible, p.IDNumber)
		} else {
			b.records[0] = append(b.records[0], rec(p, fmt.Sprintf("b%d", i), "ASTRAZENECA", 1, "2021-09-01"))
		}
	}
	for i, p := range b.people[big:] {
		b.eligible = append(b.eligible, p.IDNumber)
		site := 1 + i/small
		second := site
		if i%10 == 0 {
			second = 1 + (site % 3)
			b.twoSites[p.IDNumber] = true
		}
		b.records[site] = append(b.records[site], rec(p, fmt.Sprintf("a%d-1", i), "ASTRAZENECA", 1, "2021-06-01"))
		b.records[second] = append(b.records[second], rec(p, fmt.Sprintf("a%d-2", i), "ASTRAZENECA", 2, "2021-08-15"))
	}
	return b
}

// facilityStats reads the dashboard's rows of the given facilities.
func (s *stack) facilityStats(t *testing.T, opsKey string, facilities []string) []stats.Facility {
	t.Helper()
	var snap stats.Snapshot
	s.json("GET", "/v1/stats", opsKey, nil, &snap, http.StatusOK)
	out := make([]stats.Facility, len(facilities))
	for i, id := range facilities {
		for _, f := range snap.Facilities {
			if f.ID == id {
				out[i] = f
			}
		}
	}
	return out
}

// waitFacilities polls the dashboard until done holds for every facility.
func (s *stack) waitFacilities(t *testing.T, opsKey string, facilities []string, what string, done func(i int, f stats.Facility) bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Minute)
	for {
		rows := s.facilityStats(t, opsKey, facilities)
		all := true
		var state []string
		for i, f := range rows {
			if !done(i, f) {
				all = false
			}
			state = append(state, fmt.Sprintf("%s %v", f.ID, f.Counts.ByStatus))
		}
		if all {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not done (%s)", what, strings.Join(state, "; "))
		}
		time.Sleep(2 * time.Second)
	}
}

func envPositive(t *testing.T, name string, def int) int {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		t.Fatalf("%s=%q: want a positive whole number", name, v)
	}
	return n
}

func mustUnmarshal(t *testing.T, b []byte, v any) {
	t.Helper()
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%v: %.300s", err, b)
	}
}
