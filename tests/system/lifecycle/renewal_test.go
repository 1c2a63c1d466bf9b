package lifecycle

import (
	"encoding/json"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/vaxpass/vaxpass/shared/stage/renewal"
	"github.com/vaxpass/vaxpass/shared/testkit/cli"
	"github.com/vaxpass/vaxpass/shared/vaxpass"
)

func parseSummary(t *testing.T, out string) renewal.Summary {
	t.Helper()
	var s renewal.Summary
	if err := json.Unmarshal([]byte(out), &s); err != nil {
		t.Fatalf("renew summary %q: %v", out, err)
	}
	return s
}

// Issue 6, acceptance 1: `renew --within 400d` re-issues every certificate (same UVCI and
// fnt/gnt, later expiry, verifies); `renew --within 30d` right after re-issues nothing; a
// run killed with SIGKILL and started again renews each certificate exactly once.
func TestRenewal(t *testing.T) {
	w := issue(t, envInt(t, "VAXPASS_LIFECYCLE_PEOPLE", 200), 11)
	n := len(w.certs)
	if n < 10 {
		t.Fatalf("only %d certificates issued: too few to prove anything", n)
	}
	t.Logf("%d certificates issued", n)

	before := map[string]verdict{}
	for pid, c := range w.certs {
		v, code := verify(t, w.data, c.HC1)
		if code != 0 || !v.Valid {
			t.Fatalf("issued certificate does not verify: %+v", v)
		}
		before[pid] = v
	}
	nextSecond(w.certs)

	sum := parseSummary(t, cli.Must(t, "renew", "--within", "400d", "--data", w.data).Stdout)
	if sum.Counts.Renewed != int64(n) || sum.Counts.Total() != int64(n) || sum.Resumed {
		t.Fatalf("renew --within 400d: %+v, want %d renewed", sum, n)
	}
	renewed := w.readCerts(t)
	if len(renewed) != n {
		t.Fatalf("%d active certificates after renewal, want %d", len(renewed), n)
	}
	for pid, old := range w.certs {
		c := renewed[pid]
		if c.UVCI != old.UVCI || c.Version != old.Version+1 || c.HC1 == old.HC1 {
			t.Errorf("person's certificate after renewal: UVCI %s (was %s), version %d (was %d)", c.UVCI, old.UVCI, c.Version, old.Version)
			continue
		}
		v, code := verify(t, w.data, c.HC1)
		b := before[pid]
		switch {
		case code != 0 || !v.Valid:
			t.Errorf("renewed HC1 does not verify: %s %s", v.Step, v.Reason)
		case len(v.DCC.V) != 1 || v.DCC.V[0].CI != old.UVCI:
			t.Errorf("renewed HC1 carries ci %v, want %s", v.DCC.V, old.UVCI)
		case v.DCC.Nam != b.DCC.Nam:
			t.Errorf("renewed names %+v, were %+v", v.DCC.Nam, b.DCC.Nam)
		case !(v.ExpiresAt > b.ExpiresAt) || !(v.IssuedAt > b.IssuedAt):
			t.Errorf("renewed iat/exp %s/%s, were %s/%s: not later", v.IssuedAt, v.ExpiresAt, b.IssuedAt, b.ExpiresAt)
		}
	}

	sum = parseSummary(t, cli.Must(t, "renew", "--within", "30d", "--data", w.data).Stdout)
	if sum.Counts.Total() != 0 {
		t.Fatalf("renew --within 30d right after: %+v, want nothing", sum.Counts)
	}
	if again := w.readCerts(t); !sameVersions(again, renewed) {
		t.Fatal("renew --within 30d changed certificates")
	}

	// SIGKILL mid-run, then the same command again: each certificate renewed exactly once
	// more (version +1), every one of them.
	nextSecond(renewed)
	killed := w.killRenewMidRun(t, n)
	partial := 0
	for pid, c := range w.readCerts(t) {
		if c.Version == renewed[pid].Version+1 {
			partial++
		} else if c.Version != renewed[pid].Version {
			t.Fatalf("version %d after the killed run, was %d", c.Version, renewed[pid].Version)
		}
	}
	if partial == 0 || partial == n {
		t.Fatalf("the killed run renewed %d of %d: the kill did not land mid-run", partial, n)
	}
	sum = parseSummary(t, cli.Must(t, "renew", "--within", "400d", "--data", w.data).Stdout)
	if !sum.Resumed || sum.Counts.Renewed != int64(n) || sum.Counts.Total() != int64(n) {
		t.Fatalf("resumed run: %+v, want resumed with %d renewed", sum, n)
	}
	final := w.readCerts(t)
	for pid, c := range final {
		if c.Version != renewed[pid].Version+1 || c.UVCI != renewed[pid].UVCI {
			t.Errorf("after the killed and resumed run: version %d, want %d (renewed exactly once)", c.Version, renewed[pid].Version+1)
		}
	}
	t.Logf("the kill landed after %d of %d renewals (progress showed %d)", partial, n, killed)

	// The audit trail names every renewed UVCI once per run.
	perRun := map[string]map[string]int{}
	for _, line := range strings.Split(strings.TrimSpace(cli.Must(t, "audit", "--action", "renewal", "--data", w.data).Stdout), "\n") {
		var e struct {
			RunID  string            `json:"run_id"`
			UVCIs  []string          `json:"uvcis"`
			Params map[string]string `json:"params"`
		}
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Fatalf("audit line %q: %v", line, err)
		}
		if perRun[e.RunID] == nil {
			perRun[e.RunID] = map[string]int{}
		}
		for _, u := range e.UVCIs {
			perRun[e.RunID][u]++
		}
	}
	if len(perRun) != 2 {
		t.Fatalf("renewal entries of %d runs, want 2 (400d, killed and resumed 400d)", len(perRun))
	}
	for run, uvcis := range perRun {
		if len(uvcis) != n {
			t.Errorf("run %s: %d UVCIs audited, want %d", run, len(uvcis), n)
		}
		for u, k := range uvcis {
			if k != 1 {
				t.Errorf("run %s audits %s %d times", run, u, k)
			}
		}
	}
}

func sameVersions(a, b map[string]vaxpass.Certificate) bool {
	if len(a) != len(b) {
		return false
	}
	for k, c := range a {
		if b[k].Version != c.Version || b[k].HC1 != c.HC1 {
			return false
		}
	}
	return true
}

var progressCount = regexp.MustCompile(`certificates\s+\d+% (\d+)/(\d+)`)

// killRenewMidRun starts a slowed renewal, kills it with SIGKILL once its progress shows
// some but not all certificates done, and returns how many were done then. The store must
// then show a partial run: some certificates renewed, some not.
func (w *world) killRenewMidRun(t *testing.T, n int) int {
	t.Helper()
	done := 0
	cli.KillWhen(t, "with some but not all certificates done", func(line string) bool {
		if m := progressCount.FindStringSubmatch(line); m != nil {
			if k, _ := strconv.Atoi(m[1]); k > 0 && k < n {
				done = k
				return true
			}
		}
		return false
	}, "renew", "--within", "400d", "--pace", "60ms", "--data", w.data)
	return done
}
