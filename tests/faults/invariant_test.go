package faults

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/vaxpass/vaxpass/shared/domain/match"
	"github.com/vaxpass/vaxpass/shared/hc1/trust"
	"github.com/vaxpass/vaxpass/shared/stage/verification"
	"github.com/vaxpass/vaxpass/shared/store/embedded"
	"github.com/vaxpass/vaxpass/shared/store/embedded/queue"
	"github.com/vaxpass/vaxpass/shared/store/filekeys"
	"github.com/vaxpass/vaxpass/shared/vaxpass"
	"github.com/vaxpass/vaxpass/shared/wire/local"
)

// checkMode says how much of the invariant must hold.
type checkMode int

const (
	// atCrash is the safety half, which must hold at every instant, also right after a
	// SIGKILL: nothing acknowledged lost, nothing stored that was not sent, no status
	// contradicting the truth, never two issued certificates for a person, no certificate
	// that does not verify or that an ineligible person holds.
	atCrash checkMode = iota
	// finished adds the liveness half, once the run has drained: every record matched,
	// every eligible person certified from all their doses, nothing left to sign, the
	// central queue empty and no dead letters.
	finished
)

func (m checkMode) String() string {
	if m == atCrash {
		return "at crash"
	}
	return "finished"
}

// maxListed bounds the violations a report lists (all are counted).
const maxListed = 25

// invariantReport is what checkInvariant found.
type invariantReport struct {
	Stored         int
	ByStatus       map[match.Status]int
	Issued         int
	Revoked        int
	Eligible       int // eligible people by the expectation
	Certified      int // eligible people holding their one issued certificate
	Queue          queue.Counts
	Violations     []string
	ViolationCount int
}

func (r *invariantReport) violate(format string, args ...any) {
	r.ViolationCount++
	if len(r.Violations) < maxListed {
		r.Violations = append(r.Violations, fmt.Sprintf(format, args...))
	}
}

func (r invariantReport) String() string {
	return fmt.Sprintf("%d records stored %v; certificates %d issued, %d revoked; %d of %d eligible people certified; central queue %+v; %d violations",
		r.Stored, r.ByStatus, r.Issued, r.Revoked, r.Certified, r.Eligible, r.Queue, r.ViolationCount)
}

// runState is what the client side of a run knows: what it sent and what the server
// acknowledged.
type runState struct {
	pop   *population
	sent  map[doseKey]bool
	acked map[doseKey]bool
	// trust verifies the certificates; nil: the data directory's trust list file.
	trust *trust.List
}

// checkInvariant opens a stopped server's data directory and checks the invariant. now
// is the time certificates are verified at. It fails only when the data cannot be read;
// broken invariants are the report's violations.
func checkInvariant(ctx context.Context, dataDir string, run runState, mode checkMode, now time.Time) (invariantReport, error) {
	rep := invariantReport{ByStatus: map[match.Status]int{}}
	exp, err := run.pop.expect(run.acked)
	if err != nil {
		return rep, err
	}
	rep.Eligible = exp.eligible()

	// The data directory's own trust list, as a verifier downloads it.
	tl := run.trust
	if tl == nil {
		tlJSON, err := os.ReadFile(filepath.Join(dataDir, filekeys.TrustListJSONFile))
		if err != nil {
			return rep, fmt.Errorf("trust list: %w", err)
		}
		if tl, err = trust.ParseJSON(tlJSON); err != nil {
			return rep, fmt.Errorf("trust list: %w", err)
		}
	}
	verifier := &verification.Service{Trust: tl, Now: func() time.Time { return now }}

	db, err := embedded.Open(dataDir)
	if err != nil {
		return rep, err
	}
	defer db.Close()
	store, err := embedded.OpenStore(db, embedded.StoreOptions{})
	if err != nil {
		return rep, err
	}

	// 1. Records: every acknowledged one stored, matched as the truth says; nothing stored
	// that was never sent; each stored once (the store is keyed by facility + source_id,
	// so a second copy would be a second key, i.e. one not sent).
	stored := map[doseKey]vaxpass.Dose{}
	after := vaxpass.DoseKey{}
	for {
		page, done, err := store.ScanDoses(ctx, nil, nil, after, embedded.ReprocessMaxScan)
		if err != nil {
			return rep, err
		}
		for _, d := range page {
			k := doseKey{d.FacilityID, d.SourceID}
			if _, dup := stored[k]; dup {
				rep.violate("record %s stored twice", k)
			}
			stored[k] = d
			rep.ByStatus[d.Match.Status]++
		}
		if done || len(page) == 0 {
			break
		}
		after = page[len(page)-1].Key()
	}
	rep.Stored = len(stored)
	if n, err := store.CountDoses(ctx, nil, nil); err != nil {
		return rep, err
	} else if int(n) != len(stored) {
		rep.violate("the status index counts %d records, the store holds %d", n, len(stored))
	}
	for k, d := range stored {
		if !run.sent[k] {
			rep.violate("record %s stored but never sent", k)
			continue
		}
		i := run.pop.index[k]
		want := run.pop.truth[i].Status
		switch {
		case d.Match.Status == match.Pending:
			if mode == finished {
				rep.violate("record %s still PENDING", k)
			}
		case d.Match.Status != want:
			rep.violate("record %s matched %s, the truth is %s", k, d.Match.Status, want)
		case want == match.Verified && d.PersonID != run.pop.truth[i].RegistryID:
			rep.violate("record %s verified as another person", k)
		}
	}
	for k := range run.acked {
		if _, ok := stored[k]; !ok {
			rep.violate("acknowledged record %s lost", k)
		}
	}

	// 2. Certificates: per person at most one issued; each verifies with the trust list;
	// only eligible people hold one.
	issued := map[string][]vaxpass.Certificate{}
	cursor := ""
	for {
		page, next, err := store.ListCertificates(ctx, cursor, 1000)
		if err != nil {
			return rep, err
		}
		for _, c := range page {
			switch c.Status {
			case vaxpass.CertIssued:
				rep.Issued++
				issued[c.PersonID] = append(issued[c.PersonID], c)
			case vaxpass.CertRevoked:
				rep.Revoked++
			default:
				rep.violate("certificate %s in status %q", c.UVCI, c.Status)
			}
		}
		if next == "" {
			break
		}
		cursor = next
	}
	counts, err := store.CertificateCounts(ctx, now)
	if err != nil {
		return rep, err
	}
	if counts[vaxpass.CertIssued]+counts[vaxpass.CertExpired] != rep.Issued || counts[vaxpass.CertRevoked] != rep.Revoked {
		rep.violate("certificate counters %v disagree with the %d issued and %d revoked certificates stored", counts, rep.Issued, rep.Revoked)
	}
	persons := make([]string, 0, len(issued))
	for p := range issued {
		persons = append(persons, p)
	}
	sort.Strings(persons)
	for _, person := range persons {
		certs := issued[person]
		if len(certs) > 1 {
			rep.violate("person %s holds %d issued certificates", redact(person), len(certs))
		}
		a, known := exp.assessment[person]
		if !known || !a.Eligible {
			rep.violate("person %s holds a certificate but is not eligible", redact(person))
		}
		for _, c := range certs {
			v := verifier.Verify(ctx, c.HC1)
			switch {
			case !v.Valid:
				rep.violate("certificate %s does not verify with the trust list: %s: %s", c.UVCI, v.Step, v.Reason)
			case v.Fields == nil || !strings.EqualFold(v.Fields.CertificateID, c.UVCI):
				rep.violate("certificate %s carries another UVCI", c.UVCI)
			}
			if known && a.Eligible && c.Fields.DosesReceived > a.DosesReceived {
				rep.violate("certificate %s counts %d doses, the person has %d", c.UVCI, c.Fields.DosesReceived, a.DosesReceived)
			}
			if active, err := store.ActiveCertificate(ctx, person); err != nil || active.UVCI != c.UVCI {
				rep.violate("the active certificate of person %s is not %s (%v)", redact(person), c.UVCI, err)
			}
		}
	}
	for person, a := range exp.assessment {
		if !a.Eligible {
			continue
		}
		certs := issued[person]
		if len(certs) == 1 {
			if certs[0].Fields.DosesReceived == a.DosesReceived {
				rep.Certified++
			} else if mode == finished {
				rep.violate("certificate %s of person %s counts %d doses, the person has %d", certs[0].UVCI, redact(person), certs[0].Fields.DosesReceived, a.DosesReceived)
			}
		}
		if mode != finished {
			continue
		}
		if len(certs) == 0 {
			rep.violate("eligible person %s has no certificate", redact(person))
		}
		for _, k := range exp.verified[person] {
			if d, ok := stored[k]; ok && d.SignedAt.IsZero() {
				rep.violate("verified record %s of eligible person %s never signed by its facility", k, redact(person))
			}
		}
	}

	// 3. The central signing queue: empty once finished, never a dead letter.
	q, err := queue.Open(db.Bolt(), local.CentralQueueName, queue.Config{Now: func() time.Time { return now }})
	if err != nil {
		return rep, err
	}
	if rep.Queue, err = q.Counts(ctx); err != nil {
		return rep, err
	}
	if rep.Queue.Dead > 0 {
		rep.violate("%d central signing messages dead-lettered", rep.Queue.Dead)
	}
	if mode == finished && rep.Queue.Visible+rep.Queue.InFlight+rep.Queue.Delayed > 0 {
		rep.violate("central signing queue not drained: %+v", rep.Queue)
	}
	// The doses change feed: the matcher never gave up on an event.
	fs, err := store.DoseFeed().Stats(ctx)
	if err != nil {
		return rep, err
	}
	if cs := fs.Consumers[local.MatcherConsumer]; cs.Dead > 0 {
		rep.violate("%d change events dead-lettered by the matcher", cs.Dead)
	}
	return rep, nil
}

// redact shortens a registry ID in messages (test data is synthetic, but the habit stays).
func redact(id string) string {
	if len(id) <= 4 {
		return "****"
	}
	return "…" + id[len(id)-4:]
}

// requireInvariant checks the invariant and fails the test on any violation.
func requireInvariant(t *testing.T, dataDir string, run runState, mode checkMode, now time.Time) invariantReport {
	t.Helper()
	rep, err := checkInvariant(context.Background(), dataDir, run, mode, now)
	if err != nil {
		t.Fatalf("invariant check (%s): %v", mode, err)
	}
	t.Logf("invariant (%s): %s", mode, rep)
	if rep.ViolationCount > 0 {
		t.Errorf("invariant (%s) broken %d times:\n  %s", mode, rep.ViolationCount, strings.Join(rep.Violations, "\n  "))
	}
	if mode == finished && rep.Certified != rep.Eligible && rep.ViolationCount == 0 {
		t.Errorf("%d of %d eligible people certified", rep.Certified, rep.Eligible)
	}
	return rep
}

// drain finishes what a killed server left in flight. Messages a killed server had
// received come back only after the visibility timeout (30 s by default); rather than
// sleep, the drain runs the system in process on a clock moved past it -- the same
// local.Local pumps `serve` runs -- until the change feed and the central queue are empty.
func drain(t *testing.T, dataDir string, skew time.Duration) {
	t.Helper()
	drainWith(t, dataDir, skew, nil)
}

// drainWith is drain with the wiring changed by rewire (when not nil).
func drainWith(t *testing.T, dataDir string, skew time.Duration, rewire func(*local.Local)) {
	t.Helper()
	now := func() time.Time { return time.Now().Add(skew) }
	l, err := local.OpenLocal(local.Options{DataDir: dataDir, Now: now, PollInterval: 20 * time.Millisecond, FacilitySignEvery: -1})
	if err != nil {
		t.Fatalf("drain: open: %v", err)
	}
	if rewire != nil {
		rewire(l)
	}
	defer l.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 2)
	go func() { done <- l.RunMatcher(ctx) }()
	go func() { done <- l.RunCentralSigning(ctx) }()
	deadline := time.Now().Add(5 * time.Minute)
	for {
		c, err := l.Queue.Counts(ctx)
		if err != nil {
			t.Fatalf("drain: %v", err)
		}
		st, err := l.Store.DoseFeed().Stats(ctx)
		if err != nil {
			t.Fatalf("drain: %v", err)
		}
		lag := st.LastSeq
		if cs, ok := st.Consumers[local.MatcherConsumer]; ok {
			lag = cs.Lag
		}
		if c.Visible+c.InFlight+c.Delayed == 0 && lag == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("drain: central queue %+v, feed lag %d after 5 minutes", c, lag)
		}
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	for range 2 {
		if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
			t.Fatalf("drain: pump: %v", err)
		}
	}
}
