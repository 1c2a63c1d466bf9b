package renewal_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vaxpass/vaxpass/shared/stage/renewal"
	"github.com/vaxpass/vaxpass/shared/stage/revocation"
	"github.com/vaxpass/vaxpass/shared/vaxpass"
)

// countingCerts counts the reads of single certificates; with lag, it lists every
// certificate as the index held it one version earlier (a stale copy).
type countingCerts struct {
	renewal.Certs
	reads atomic.Int64
	lag   bool
}

func (c *countingCerts) CertificateByUVCI(ctx context.Context, uvci string) (vaxpass.Certificate, error) {
	c.reads.Add(1)
	return c.Certs.CertificateByUVCI(ctx, uvci)
}

func (c *countingCerts) CertificatesExpiringBetween(ctx context.Context, from, to time.Time, cursor string, limit int) ([]vaxpass.Certificate, string, error) {
	page, next, err := c.Certs.CertificatesExpiringBetween(ctx, from, to, cursor, limit)
	if c.lag {
		for i := range page {
			page[i].Version--
		}
	}
	return page, next, err
}

func TestRenewFromTheListedCopyWithoutReadingEach(t *testing.T) {
	f := newFixture(t, 9)
	certs := &countingCerts{Certs: f.store}
	sum, err := f.service(nil, certs).Run(context.Background(), "ops", 400*24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if sum.Counts.Renewed != 9 || sum.Counts.Total() != 9 {
		t.Fatalf("counts %+v", sum.Counts)
	}
	if n := certs.reads.Load(); n != 0 {
		t.Errorf("%d certificates read one by one, want 0 (renewed from the listed copies)", n)
	}
	f.checkRenewedOnce(t)
}

func TestRenewAStaleListedCopyReadsItAgain(t *testing.T) {
	f := newFixture(t, 5)
	certs := &countingCerts{Certs: f.store, lag: true}
	sum, err := f.service(nil, certs).Run(context.Background(), "ops", 400*24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if sum.Counts.Renewed != 5 || sum.Counts.Conflicts != 0 {
		t.Fatalf("counts %+v", sum.Counts)
	}
	if n := certs.reads.Load(); n != 5 {
		t.Errorf("%d certificates read again, want 5 (each stale copy refused once)", n)
	}
	f.checkRenewedOnce(t)
}

func TestRenewResumedBatchReadsItsCertificates(t *testing.T) {
	f := newFixture(t, 6)
	ctx := context.Background()
	// Killed after the first renewal: the batch (4) is stored pending, UVCIs only.
	if _, err := f.service(nil, newFailAfter(f.store, 1)).Run(ctx, "ops", 400*24*time.Hour); err == nil {
		t.Fatal("the killed run succeeded")
	}
	certs := &countingCerts{Certs: f.store}
	sum, err := f.service(nil, certs).Run(ctx, "ops", 400*24*time.Hour)
	if err != nil || !sum.Resumed {
		t.Fatal(sum, err)
	}
	if sum.Counts.Renewed != 6 || sum.Counts.Total() != 6 {
		t.Fatalf("counts %+v", sum.Counts)
	}
	if n := certs.reads.Load(); n == 0 {
		t.Error("the resumed batch was renewed without reading its certificates")
	}
	f.checkRenewedOnce(t)
}

// revocationCalls counts the lookups of a revocation list; among hides the batch lookup
// when false.
type revocationCalls struct {
	l             revocation.Lookup
	single, batch atomic.Int64
}

func (r *revocationCalls) Revoked(ctx context.Context, uvci string) (string, bool, error) {
	r.single.Add(1)
	return r.l.Revoked(ctx, uvci)
}

type revocationBatch struct{ *revocationCalls }

func (r revocationBatch) RevokedAmong(ctx context.Context, uvcis []string) (map[string]bool, error) {
	r.batch.Add(1)
	return r.l.RevokedAmong(ctx, uvcis)
}

func TestRenewChecksRevocationsPerBatch(t *testing.T) {
	for _, batch := range []bool{true, false} {
		f := newFixture(t, 10)
		ctx := context.Background()
		rs := revocation.Service{List: f.list, Certs: f.store, Issuer: "VN", Now: f.clock.Now}
		for _, i := range []int{0, 5, 9} {
			if _, err := f.list.AddRevocation(ctx, rs.NewEntry(f.certs[i].UVCI, "fraud", "ops", f.clock.Now()), nil); err != nil {
				t.Fatal(err)
			}
		}
		calls := &revocationCalls{l: revocation.Lookup{List: f.list}}
		svc := f.service(nil, nil)
		svc.Slices, svc.BatchSize = 1, 4
		svc.Revocations = calls
		if batch {
			svc.Revocations = revocationBatch{calls}
		}
		sum, err := svc.Run(ctx, "ops", 400*24*time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		if want := (renewal.Counts{Renewed: 7, SkippedRevoked: 3}); sum.Counts != want {
			t.Errorf("batch %v: counts %+v, want %+v", batch, sum.Counts, want)
		}
		switch single, batches := calls.single.Load(), calls.batch.Load(); {
		case batch && (single != 0 || batches != 3):
			t.Errorf("batch lookup: %d single and %d batch lookups, want 0 and 3 (10 in batches of 4)", single, batches)
		case !batch && single != 10:
			t.Errorf("single lookups: %d, want 10", single)
		}
	}
}
