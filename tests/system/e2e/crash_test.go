package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vaxpass/vaxpass/shared/domain/match"
	"github.com/vaxpass/vaxpass/shared/testkit/cli"
	"github.com/vaxpass/vaxpass/shared/testkit/server"
	"github.com/vaxpass/vaxpass/shared/vaxpass"
)

// visibilityTimeout is the server's central-queue visibility timeout (the default of
// app.Options.VisibilityTimeout; `serve` has no flag for it): a message being handled when
// the server is killed is delivered again only this long after it was received.
const visibilityTimeout = 30 * time.Second

// crashFacility is the facility of the crash test.
const crashFacility = "e2e-crash-site"

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

// TestCrashSafety kills the server (SIGKILL): right after a large upload, while the matcher
// works through it and the next upload is in flight; in the middle of a signing run, while
// the central signing queue holds messages; and right after a signing run has answered,
// while central signing still works through them. After each restart on the same data directory the work must
// finish with nothing lost and nothing done twice: every uploaded record stored and
// matched as the truth says, exactly one certificate per eligible person.
//
// Size: VAXPASS_E2E_CRASH_UPLOADS uploads of 1,000 records (default 20) from a registry of
// 750 people per upload.
func TestCrashSafety(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("crash test skipped in -short mode (it waits out the queue's visibility timeout)")
	}
	start := time.Now()
	uploads := envInt(t, "VAXPASS_E2E_CRASH_UPLOADS", 20)
	gen := generate(t, uploads*750, uploads*1000, 9, "")
	total := len(gen.records)
	data := server.ScratchDir(t)
	cli.Must(t, "registry", "load", gen.file("registry.csv"), "--data", data)
	key := strings.TrimSpace(cli.Must(t, "facility", "add", "--id", crashFacility, "--name", "Crash test site", "--data", data).Stdout)
	everything := func(string) bool { return true }

	// --- 1. SIGKILL while matching, with the last upload in flight.
	srv := server.Spawn(t, data)
	c := newClient(t, srv, key)
	lastFrom := (total - 1) / 1000 * 1000
	for from := 0; from < lastFrom; from += 1000 {
		if rep := c.upload(gen.raw[from : from+1000]); rep.Accepted != 1000 {
			t.Fatalf("upload %d..%d: %d accepted", from, from+1000, rep.Accepted)
		}
	}
	acknowledged := lastFrom
	last := gen.raw[lastFrom:]
	lastBody, _ := json.Marshal(map[string]any{"records": last})
	inFlight := make(chan string, 1)
	go func() {
		status, _, _, err := c.try("POST", "/v1/doses", lastBody, "application/json")
		inFlight <- fmt.Sprintf("status %d, error %v", status, err)
	}()
	srv.Kill()
	lastAnswer := <-inFlight
	st := openStored(t, data)
	byStatus := st.countByStatus(t)
	st.close(t)
	stored := sum(byStatus)
	t.Logf("killed after %d acknowledged uploads with one in flight (%s), %s: stored records by status %v",
		acknowledged/1000, lastAnswer, time.Since(start).Round(time.Millisecond), byStatus)
	switch {
	case stored < acknowledged || stored > total:
		t.Fatalf("%d records stored after the crash; %d were acknowledged, %d sent", stored, acknowledged, total)
	case strings.HasPrefix(lastAnswer, "status 200") && stored != total:
		t.Fatalf("%d records stored after the crash, but all %d were acknowledged", stored, total)
	case byStatus[match.Pending] == 0:
		t.Fatalf("matching had finished before the kill: raise VAXPASS_E2E_CRASH_UPLOADS so that the crash hits the matcher at work")
	}

	// Restart; the facility re-sends the upload it got no answer for.
	srv = server.Spawn(t, data)
	c = newClient(t, srv, key)
	if rep := c.upload(last); rep.Accepted != total-stored || rep.Duplicates != stored-acknowledged {
		t.Errorf("re-sent upload: %d accepted, %d duplicates; want %d and %d", rep.Accepted, rep.Duplicates, total-stored, stored-acknowledged)
	}
	all := waitMatched(t, c, total, 5*time.Minute)
	checkMatches(t, gen, all, everything)
	t.Logf("every record matched after the restart, %s since start", time.Since(start).Round(time.Millisecond))
	if t.Failed() {
		return
	}

	// --- 2. SIGKILL in the middle of signing.
	people := gen.people(t, everything)
	var eligible []*person
	for _, p := range people {
		if p.Eligible {
			eligible = append(eligible, p)
		}
	}
	// Facility signing goes through people in person ID order.
	slices.SortFunc(eligible, func(x, y *person) int { return strings.Compare(x.ID, y.ID) })

	var killedAt time.Time
	var pendingEligible int
	certified := map[string]bool{}
	for attempt := 1; ; attempt++ {
		var left []*person
		for _, p := range eligible {
			if !certified[p.ID] {
				left = append(left, p)
			}
		}
		if len(left) < 100 {
			t.Fatalf("attempt %d: only %d eligible people left without a certificate: too few to crash in the middle", attempt, len(left))
		}
		early, late := left[:5], left[len(left)-5:]
		answer := make(chan string, 1)
		go func() {
			status, body, _, err := c.try("POST", "/v1/signatures", nil, "")
			answer <- fmt.Sprintf("status %d %s %v", status, body, err)
		}()
		// Kill once central signing has issued for the first people of the run, and before
		// it reaches the last ones.
		caught := false
		deadline := time.Now().Add(3 * time.Minute)
		for !caught {
			if hasCertificate(c, late) {
				break
			}
			caught = hasCertificate(c, early)
			if time.Now().After(deadline) {
				t.Fatalf("attempt %d: no certificate for the first people of the signing run within 3 minutes", attempt)
			}
			if !caught {
				time.Sleep(10 * time.Millisecond)
			}
		}
		srv.Kill()
		killedAt = time.Now()
		ans := <-answer

		st := openStored(t, data)
		qc := st.queues(t)
		certs := st.certificates(t)
		pendingEligible = st.signPendingAmong(t, eligible)
		st.close(t)
		for _, p := range eligible {
			if len(certs[p.ID]) > 0 {
				certified[p.ID] = true
			}
		}
		queued := qc.Visible + qc.InFlight + qc.Delayed
		t.Logf("attempt %d: killed %s after start; POST /v1/signatures: %.80s; central queue %+v; %d of %d eligible people certified, %d still to be signed by the facility",
			attempt, killedAt.Sub(start).Round(time.Millisecond), ans, qc, len(certified), len(eligible), pendingEligible)
		if qc.Dead != 0 {
			t.Errorf("%d central signing messages dead-lettered", qc.Dead)
		}
		if caught && queued > 0 && len(certified) < len(eligible) {
			break
		}
		if attempt == 3 {
			t.Fatalf("3 attempts did not kill the server with messages in the central queue and certificates missing")
		}
		srv = server.Spawn(t, data)
		c = newClient(t, srv, key)
	}

	// Restart; the facility re-sends its interrupted request.
	srv = server.Spawn(t, data)
	c = newClient(t, srv, key)
	// The facility's run interrupted by the crash is the one its request finds again (one
	// run at a time per facility) and resumes; its count then includes the pages it
	// signed before the crash.
	signed := c.Sign(t, 5*time.Minute)
	if signed.Signed < pendingEligible {
		t.Errorf("POST /v1/signatures after the restart signed %d people, want at least the %d eligible people not signed before the crash", signed.Signed, pendingEligible)
	}

	// --- 3. SIGKILL as soon as that signing run has answered, while central signing is
	// still working through its messages: the last people signed have no certificate yet.
	// Central signing can keep pace with facility signing, so this state is not certain;
	// the log says whether it was hit.
	tail := eligible[len(eligible)-20:]
	if n := countCertificates(c, tail); n < len(tail) {
		srv.Kill()
		killedAt = time.Now()
		st := openStored(t, data)
		qc := st.queues(t)
		certs := st.certificates(t)
		st.close(t)
		n := 0
		for _, p := range eligible {
			if len(certs[p.ID]) > 0 {
				n++
			}
		}
		t.Logf("killed right after POST /v1/signatures answered signed %d: central queue %+v, %d of %d eligible people certified",
			signed.Signed, qc, n, len(eligible))
		srv = server.Spawn(t, data)
		c = newClient(t, srv, key)
		signed = c.Sign(t, 5*time.Minute)
		if signed.Signed != 0 {
			t.Errorf("POST /v1/signatures after the third restart signed %d people, want 0: the crash lost the facility's record of its signatures", signed.Signed)
		}
	} else {
		t.Logf("central signing had issued the last certificates by the time POST /v1/signatures answered: no kill after the answer in this run")
	}
	uvcis := waitCertificates(t, c, eligible, 5*time.Minute)
	t.Logf("every eligible person certified after the restart, %s since start", time.Since(start).Round(time.Millisecond))

	// The messages in flight at the kill come back after the visibility timeout; wait until
	// the queue is empty (it can only be read with the server stopped).
	var certs map[string][]vaxpass.Certificate
	var restartedAt time.Time
	waitFor(t, "central signing queue drained", 5*time.Minute, func() (bool, string) {
		if wait := time.Until(killedAt.Add(visibilityTimeout + time.Second)); wait > 0 {
			return false, fmt.Sprintf("waiting %s for in-flight messages to come back", wait.Round(time.Second))
		}
		if time.Since(restartedAt) < 2*time.Second {
			return false, "giving the restarted server time to work"
		}
		srv.Stop()
		st := openStored(t, data)
		qc := st.queues(t)
		if qc.Visible+qc.InFlight+qc.Delayed == 0 {
			certs = st.certificates(t)
			st.close(t)
			if qc.Dead != 0 {
				t.Errorf("%d central signing messages dead-lettered", qc.Dead)
			}
			return true, ""
		}
		st.close(t)
		srv = server.Spawn(t, data)
		c = newClient(t, srv, key)
		restartedAt = time.Now()
		return false, fmt.Sprintf("queue %+v", qc)
	})
	checkOneCertificateEach(t, certs, people, uvcis)

	// Nothing lost, nothing changed: the records as matched, nothing left to sign.
	srv = server.Spawn(t, data)
	c = newClient(t, srv, key)
	checkMatches(t, gen, c.allDoses(), everything)
	c.call("POST", "/v1/signatures", nil, http.StatusOK, &signed)
	if signed.Signed != 0 {
		t.Errorf("a last POST /v1/signatures signed %d people, want 0", signed.Signed)
	}
	for _, p := range eligible[:min(50, len(eligible))] {
		if v := c.dose(p.Sources[len(p.Sources)-1]); v.Certificate == nil || v.Certificate.UVCI != uvcis[p.ID] {
			t.Errorf("record %s shows certificate %+v after the last restart", p.Sources[len(p.Sources)-1], v.Certificate)
		}
	}
	srv.Stop()
	t.Logf("crash safety done in %s", time.Since(start).Round(time.Millisecond))
}

// hasCertificate reports whether any of the people has a certificate (a transport error,
// as when the server is gone, counts as no).
func hasCertificate(c *client, people []*person) bool {
	for _, p := range people {
		status, body, _, err := c.try("GET", "/v1/doses/"+p.Sources[0], nil, "")
		if err != nil || status != http.StatusOK {
			continue
		}
		var v doseView
		if json.Unmarshal(body, &v) == nil && v.Certificate != nil {
			return true
		}
	}
	return false
}

// countCertificates counts the people whose first record shows a certificate.
func countCertificates(c *client, people []*person) int {
	n := 0
	for _, p := range people {
		if hasCertificate(c, []*person{p}) {
			n++
		}
	}
	return n
}

// countByStatus counts the crash facility's stored records by match status.
func (s *stored) countByStatus(t *testing.T) map[match.Status]int {
	t.Helper()
	out := map[match.Status]int{}
	for _, st := range statuses {
		after := ""
		for {
			ds, err := s.store.ListByStatus(context.Background(), crashFacility, match.Status(st), after, 5000)
			if err != nil {
				t.Fatal(err)
			}
			out[match.Status(st)] += len(ds)
			if len(ds) < 5000 {
				break
			}
			after = ds[len(ds)-1].SourceID
		}
	}
	return out
}

// signPendingAmong counts the people that the crash facility has verified doses of not
// signed yet, among the given people.
func (s *stored) signPendingAmong(t *testing.T, people []*person) int {
	t.Helper()
	want := map[string]bool{}
	for _, p := range people {
		want[p.ID] = true
	}
	n, after := 0, ""
	for {
		ids, err := s.store.SignPendingPersons(context.Background(), crashFacility, after, 1000)
		if err != nil {
			t.Fatal(err)
		}
		for _, id := range ids {
			if want[id] {
				n++
			}
		}
		if len(ids) < 1000 {
			return n
		}
		after = ids[len(ids)-1]
	}
}

func sum(m map[match.Status]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}
