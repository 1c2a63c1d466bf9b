package renewal_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vaxpass/vaxpass/shared/stage/audit"
	"github.com/vaxpass/vaxpass/shared/stage/renewal"
	"github.com/vaxpass/vaxpass/shared/vaxpass"
)

// echoRuns stores every n-th slice save and then answers a conflict, as a save whose
// answer was lost and that the client retried is refused by its own first attempt.
type echoRuns struct {
	renewal.Runs
	n     int64
	saves atomic.Int64
}

func (r *echoRuns) SaveRenewalSlice(ctx context.Context, sl *renewal.Slice, notes ...audit.Entry) error {
	prev := sl.Version
	if err := r.Runs.SaveRenewalSlice(ctx, sl, notes...); err != nil {
		return err
	}
	if r.saves.Add(1)%r.n == 0 {
		sl.Version = prev
		return fmt.Errorf("retried: %w", vaxpass.ErrConflict)
	}
	return nil
}

func TestRenewSliceSaveRefusedByItsOwnRetryGoesOn(t *testing.T) {
	f := newFixture(t, 12)
	svc := f.service(nil, nil)
	runs := &echoRuns{Runs: f.runs}
	runs.n = 3
	svc.Runs = runs
	sum, err := svc.Run(context.Background(), "ops", 400*24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if sum.Counts.Renewed != 12 || sum.Counts.Total() != 12 || sum.SlicesDone != sum.Slices {
		t.Fatalf("summary %+v", sum)
	}
	f.checkRenewedOnce(t)
	f.checkAuditedOnce(t)

}
