package renewal_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vaxpass/vaxpass/shared/domain/dcc"
	"github.com/vaxpass/vaxpass/shared/domain/uvci"
	"github.com/vaxpass/vaxpass/shared/domain/vaccine"
	"github.com/vaxpass/vaxpass/shared/stage/audit"
	"github.com/vaxpass/vaxpass/shared/stage/renewal"
	"github.com/vaxpass/vaxpass/shared/stage/revocation"
	"github.com/vaxpass/vaxpass/shared/stage/signing"
	"github.com/vaxpass/vaxpass/shared/stage/verification"
	"github.com/vaxpass/vaxpass/shared/store/embedded"
	"github.com/vaxpass/vaxpass/shared/store/filekeys"
	"github.com/vaxpass/vaxpass/shared/vaxpass"
)

// clock is a settable test clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

type fixture struct {
	clock   *clock
	db      *embedded.DB
	store   *embedded.Store
	runs    *embedded.RenewalRuns
	log     *embedded.AuditLog
	list    *embedded.RevocationList
	central *filekeys.Central
	certs   []vaxpass.Certificate
}

func newFixture(t testing.TB, n int) *fixture {
	t.Helper()
	dir := t.TempDir()
	f := &fixture{clock: &clock{t: time.Now().UTC().Truncate(time.Second)}}
	var err error
	if f.db, err = embedded.Open(dir); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.db.Close() })
	if f.store, err = embedded.OpenStore(f.db, embedded.StoreOptions{Now: f.clock.Now}); err != nil {
		t.Fatal(err)
	}
	if f.runs, err = embedded.OpenRenewalRuns(f.db); err != nil {
		t.Fatal(err)
	}
	if f.log, err = embedded.OpenAuditLog(f.db, f.clock.Now); err != nil {
		t.Fatal(err)
	}
	if f.list, err = embedded.OpenRevocationList(f.db); err != nil {
		t.Fatal(err)
	}
	if f.central, err = filekeys.EnsureCentral(dir, f.clock.Now()); err != nil {
		t.Fatal(err)
	}
	sealer := &signing.HC1Sealer{Signer: f.central.Signer, DSC: f.central.DSC}
	a, err := vaccine.Assess([]vaccine.Dose{
		{Vaccine: vaccine.Pfizer, DoseNumber: 1, VaccinatedOn: "2021-08-01"},
		{Vaccine: vaccine.Pfizer, DoseNumber: 2, VaccinatedOn: "2021-09-01"},
	})
	if err != nil || !a.Eligible {
		t.Fatal(a, err)
	}
	names := []string{"Nguyễn Văn An", "Trần Thị Bích Ngọc", "Lê Quang Nhật Toàn"}
	for i := range n {
		ci, err := uvci.New(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		d, err := dcc.Build(dcc.Person{FullName: names[i%len(names)], DOB: "1990-01-02"}, a.Certified, ci)
		if err != nil {
			t.Fatal(err)
		}
		// Issued over the past minutes, so expiries differ.
		iat := f.clock.Now().Add(-time.Duration(n-i) * time.Minute)
		hc1, exp, kid, err := sealer.Seal(context.Background(), d, maxTime(iat, f.central.DSC.NotBefore))
		if err != nil {
			t.Fatal(err)
		}
		c := vaxpass.Certificate{UVCI: ci, PersonID: fmt.Sprintf("0790959%05d", i), HC1: hc1, Status: vaxpass.CertIssued,
			IssuedAt: maxTime(iat, f.central.DSC.NotBefore), ExpiresAt: exp, KID: kid, Version: 1}
		if err := f.store.ReplaceCertificate(context.Background(), c, nil); err != nil {
			t.Fatal(err)
		}
		f.certs = append(f.certs, c)
	}
	f.clock.Add(2 * time.Second) // the renewal runs later than every issue
	return f
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b.Truncate(time.Second).Add(time.Second)
}

func (f *fixture) service(budget renewal.Budget, certs renewal.Certs) *renewal.Service {
	if certs == nil {
		certs = f.store
	}
	return &renewal.Service{
		Certs: certs, Runs: f.runs, Budget: budget,
		Sealer:      &renewal.HC1Resealer{Signer: f.central.Signer, DSC: f.central.DSC},
		Revocations: revocation.Lookup{List: f.list},
		Now:         f.clock.Now, Rand: rand.Reader, BatchSize: 4, Slices: 3, InFlight: 3,
	}
}

func (f *fixture) audit(t *testing.T, action string) []audit.Entry {
	t.Helper()
	var out []audit.Entry
	err := audit.All(context.Background(), f.log, audit.Query{Action: action}, func(e audit.Entry) error {
		out = append(out, e)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// checkRenewedOnce checks every certificate of the fixture: renewed exactly once, same
// UVCI and DCC bytes, later expiry, and the new HC1 verifies.
func (f *fixture) checkRenewedOnce(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	verifier := verification.Service{Trust: f.central.TrustList, Now: f.clock.Now}
	for _, old := range f.certs {
		c, err := f.store.CertificateByUVCI(ctx, old.UVCI)
		if err != nil {
			t.Fatal(err)
		}
		if c.Version != old.Version+1 {
			t.Errorf("%s: version %d, want %d (renewed exactly once)", old.UVCI, c.Version, old.Version+1)
		}
		if c.Status != vaxpass.CertIssued || c.UVCI != old.UVCI || c.PersonID != old.PersonID {
			t.Errorf("%s: %s %s %s", old.UVCI, c.Status, c.UVCI, c.PersonID)
		}
		if !c.ExpiresAt.After(old.ExpiresAt) || !c.IssuedAt.After(old.IssuedAt) {
			t.Errorf("%s: iat %s exp %s, was %s %s", old.UVCI, c.IssuedAt, c.ExpiresAt, old.IssuedAt, old.ExpiresAt)
		}
		oldDCC, _, err := renewal.StoredDCC(old.HC1)
		if err != nil {
			t.Fatal(err)
		}
		newDCC, ci, err := renewal.StoredDCC(c.HC1)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(oldDCC, newDCC) || ci != old.UVCI {
			t.Errorf("%s: the renewed DCC differs from the original", old.UVCI)
		}
		v := verifier.Verify(ctx, c.HC1)
		if !v.Valid {
			t.Errorf("%s: renewed HC1 does not verify: %s %s", old.UVCI, v.Step, v.Reason)
		}
		if want := c.ExpiresAt.UTC().Format(time.RFC3339); v.ExpiresAt != want {
			t.Errorf("%s: HC1 exp %s, stored %s", old.UVCI, v.ExpiresAt, want)
		}
	}
}

func TestRenewWideWindowRenewsEachOnceThenNothing(t *testing.T) {
	f := newFixture(t, 10)
	ctx := context.Background()
	sum, err := f.service(nil, nil).Run(ctx, "cli:test", 400*24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if sum.Counts.Renewed != 10 || sum.Counts.Total() != 10 || sum.Resumed || sum.Previous != nil {
		t.Fatalf("summary %+v", sum)
	}
	f.checkRenewedOnce(t)

	// The renewed certificates expire in 12 months: a 30-day run finds nothing.
	f.clock.Add(time.Second)
	sum, err = f.service(nil, nil).Run(ctx, "cli:test", 30*24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if sum.Counts.Total() != 0 {
		t.Fatalf("second run %+v", sum.Counts)
	}

	var renewed []string
	for _, e := range f.audit(t, audit.ActionRenewal) {
		renewed = append(renewed, e.UVCIs...)
		if e.RunID == "" || e.Actor != "cli:test" {
			t.Errorf("audit entry %+v", e)
		}
	}
	if len(renewed) != 10 {
		t.Errorf("audit names %d renewed UVCIs, want 10", len(renewed))
	}
	runs := f.audit(t, audit.ActionRenewalRun)
	if len(runs) != 2 || runs[0].Counts["renewed"] != 10 || runs[1].Counts["renewed"] != 0 || runs[0].Params["window"] != "400d" {
		t.Errorf("run entries %+v", runs)
	}
}

func TestRenewWindowSelects(t *testing.T) {
	f := newFixture(t, 3)
	// Move the clock so that only the first certificate expires within 30 days of it.
	f.clock.Add(f.certs[0].ExpiresAt.Sub(f.clock.Now()) - 30*24*time.Hour + 30*time.Second)
	sum, err := f.service(nil, nil).Run(context.Background(), "scheduler", 30*24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if sum.Counts.Renewed != 1 {
		t.Fatalf("renewed %d, want 1", sum.Counts.Renewed)
	}
	c, _ := f.store.CertificateByUVCI(context.Background(), f.certs[1].UVCI)
	if c.Version != 1 {
		t.Error("a certificate outside the window was renewed")
	}
}

func TestRenewSkipsListedAndFailsUnreadable(t *testing.T) {
	f := newFixture(t, 4)
	ctx := context.Background()
	svc := revocation.Service{List: f.list, Certs: f.store, Issuer: "VN", Now: f.clock.Now}
	// Listed (a revocation interrupted before the store change): never renewed.
	if _, err := f.list.AddRevocation(ctx, svc.NewEntry(f.certs[0].UVCI, "fraud", "ops", f.clock.Now()), nil); err != nil {
		t.Fatal(err)
	}
	// An unreadable stored HC1.
	broken := f.certs[1]
	next := broken
	next.HC1 = "HC1:garbage"
	if err := f.store.ReplaceCertificate(ctx, next, &broken); err != nil {
		t.Fatal(err)
	}
	sum, err := f.service(nil, nil).Run(ctx, "ops", 400*24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	want := renewal.Counts{Renewed: 2, SkippedRevoked: 1, Failed: 1}
	if sum.Counts != want {
		t.Fatalf("counts %+v, want %+v", sum.Counts, want)
	}
	var failed []string
	for _, e := range f.audit(t, audit.ActionRenewal) {
		if e.Params["outcome"] == "failed" {
			failed = append(failed, e.UVCIs...)
		}
	}
	if len(failed) != 1 || failed[0] != broken.UVCI {
		t.Errorf("failed UVCIs audited: %v", failed)
	}
}

// failAfter is a certificate store that dies (returns errDie) right after its n-th
// successful renewal write, and on every write after it, as a process killed between two
// writes would.
type failAfter struct {
	renewal.Certs
	n atomic.Int64
}

func newFailAfter(c renewal.Certs, n int) *failAfter {
	f := &failAfter{Certs: c}
	f.n.Store(int64(n))
	return f
}

var errDie = errors.New("killed")

func (s *failAfter) ReplaceCertificate(ctx context.Context, next vaxpass.Certificate, prev *vaxpass.Certificate) error {
	if s.n.Load() <= 0 {
		return errDie
	}
	if err := s.Certs.ReplaceCertificate(ctx, next, prev); err != nil {
		return err
	}
	if s.n.Add(-1) <= 0 {
		return errDie
	}
	return nil
}

func TestRenewInterruptedAndResumedRenewsEachOnce(t *testing.T) {
	for _, dieAfter := range []int{1, 3, 4, 5, 9} { // mid-batch, batch end (4), last
		t.Run(fmt.Sprint(dieAfter), func(t *testing.T) {
			f := newFixture(t, 10)
			ctx := context.Background()
			_, err := f.service(nil, newFailAfter(f.store, dieAfter)).Run(ctx, "cli:test", 400*24*time.Hour)
			if !errors.Is(err, errDie) {
				t.Fatalf("first run: %v", err)
			}
			f.clock.Add(3 * time.Second)
			sum, err := f.service(nil, nil).Run(ctx, "cli:test", 400*24*time.Hour)
			if err != nil {
				t.Fatal(err)
			}
			if !sum.Resumed || sum.Counts.Renewed != 10 || sum.Counts.Total() != 10 {
				t.Fatalf("resumed run %+v", sum)
			}
			f.checkRenewedOnce(t)
			var audited []string
			for _, e := range f.audit(t, audit.ActionRenewal) {
				audited = append(audited, e.UVCIs...)
			}
			if len(audited) != 10 {
				t.Errorf("%d UVCIs audited as renewed, want each of the 10 once", len(audited))
			}
			if runs := f.audit(t, audit.ActionRenewalRun); len(runs) != 1 || runs[0].Params["resumes"] != "1" {
				t.Errorf("run entries %+v", runs)
			}
		})
	}
}

func TestRenewFinishesAnInterruptedRunOfAnotherWindowFirst(t *testing.T) {
	f := newFixture(t, 6)
	ctx := context.Background()
	if _, err := f.service(nil, newFailAfter(f.store, 2)).Run(ctx, "a", 400*24*time.Hour); !errors.Is(err, errDie) {
		t.Fatal(err)
	}
	sum, err := f.service(nil, nil).Run(ctx, "b", 30*24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if sum.Previous == nil || sum.Previous.Counts.Renewed != 6 || sum.Previous.Window != "400d" || sum.Counts.Total() != 0 {
		t.Fatalf("summary %+v previous %+v", sum, sum.Previous)
	}
	f.checkRenewedOnce(t)
}

func TestRenewStopsWhenContextEnds(t *testing.T) {
	f := newFixture(t, 5)
	ctx, cancel := context.WithCancel(context.Background())
	n := 0
	svc := f.service(nil, nil)
	svc.Progress = func(int64) {
		if n++; n == 2 {
			cancel()
		}
	}
	if _, err := svc.Run(ctx, "x", 400*24*time.Hour); !errors.Is(err, context.Canceled) {
		t.Fatalf("Run = %v, want context.Canceled", err)
	}
	run, found, err := f.runs.UnfinishedRenewalRun(context.Background())
	if err != nil || !found {
		t.Fatalf("no unfinished run stored: %v", err)
	}
	if rem, err := f.service(nil, nil).Remaining(context.Background(), run); err != nil || rem < 3 {
		t.Errorf("Remaining = %d, %v", rem, err)
	}
}

func TestRenewRejectsBadWindow(t *testing.T) {
	f := newFixture(t, 0)
	for _, w := range []time.Duration{0, -time.Hour, renewal.MaxWindow + 1} {
		if _, err := f.service(nil, nil).Run(context.Background(), "x", w); !errors.Is(err, renewal.ErrInvalidWindow) {
			t.Errorf("window %v: %v", w, err)
		}
	}
}

// countingBudget counts Wait calls: one per signature.
type countingBudget struct{ n atomic.Int64 }

func (b *countingBudget) Wait(context.Context) error { b.n.Add(1); return nil }

func TestRenewDrawsOnTheBudgetPerSignature(t *testing.T) {
	f := newFixture(t, 7)
	b := &countingBudget{}
	if _, err := f.service(b, nil).Run(context.Background(), "x", 400*24*time.Hour); err != nil {
		t.Fatal(err)
	}
	if b.n.Load() != 7 {
		t.Errorf("budget drawn %d times for 7 signatures", b.n.Load())
	}
}

func FuzzStoredDCC(f *testing.F) {
	fx := newFixture(f, 1)
	f.Add(fx.certs[0].HC1)
	f.Add("HC1:")
	f.Add("HC1:6BFOXN*TS0BI$ZD4N9:9S6RCVN5+O30K3/XIV0W23NTDEXWK G2EP4J0B")
	f.Fuzz(func(t *testing.T, hc1 string) {
		doc, ci, err := renewal.StoredDCC(hc1)
		if err != nil {
			if !errors.Is(err, renewal.ErrStoredHC1) {
				t.Fatalf("error not wrapping ErrStoredHC1: %v", err)
			}
			return
		}
		if len(doc) == 0 || ci == "" {
			t.Fatal("success without a DCC and a ci")
		}
	})
}
