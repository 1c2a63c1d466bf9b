package local

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/vaxpass/vaxpass/shared/edge/httpapi"
	"github.com/vaxpass/vaxpass/shared/stage/audit"
	"github.com/vaxpass/vaxpass/shared/stage/renewal"
	"github.com/vaxpass/vaxpass/shared/stage/revocation"
	"github.com/vaxpass/vaxpass/shared/store/embedded"
	"github.com/vaxpass/vaxpass/shared/vaxpass"
)

// RevocationsFile is the published revocation list in the data directory, beside the
// trust list (what GET /v1/revocations serves).
const RevocationsFile = "revocations.json"

// Defaults of the certificate's life on the embedded backend.
const (
	// DefaultRenewEvery: the scheduled renewal runs daily.
	DefaultRenewEvery = 24 * time.Hour
	// DefaultRenewRate is the signing budget of bulk renewal (signatures per second),
	// far below a KMS account's ECC quota so interactive issuance keeps headroom.
	DefaultRenewRate = 50
	// DefaultPublishEvery: how often the published revocation list is brought up to date
	// (central signing lists superseded certificates as it goes).
	DefaultPublishEvery = 2 * time.Second
)

// Ops is the certificate's life on the embedded backend: corrections, revocation and its
// published list, renewal and the audit trail, plus the ops credential.
type Ops struct {
	l *Local

	Audit       *embedded.AuditLog
	Revocations *embedded.RevocationList
	RenewalRuns *embedded.RenewalRuns
	Revoker     *revocation.Service
	Publisher   *revocation.Publisher
	OpsKeys     *OpsKeyFile
	OpsAuth     *httpapi.OpsAuth

	// RenewEvery is the period of RunRenewal (negative disables it); RenewWindow its
	// window; RenewRate its signing budget per second. PublishEvery paces
	// RunRevocationPublisher. Set them before Run.
	RenewEvery   time.Duration
	RenewWindow  time.Duration
	RenewRate    float64
	PublishEvery time.Duration
}

// AttachOps returns the certificate's life of a Local (OpenLocal builds it: the audit trail,
// the revocation list and the renewal runs in the same database, the ops routes).
func AttachOps(l *Local) (*Ops, error) { return l.Ops, nil }

// AuditAppender is the audit trail for other use cases (reprocessing).
func (o *Ops) AuditAppender() audit.Appender { return o.Audit }

// Renewal returns the renewal use case paced at rate signatures per second (<= 0: the
// default) by one token bucket its slices share; progress, when set, is called per
// certificate looked at. Runs are cut into LocalRenewSlices worked by as many goroutines:
// the embedded backend renews as the stack does, only in one process.
func (o *Ops) Renewal(rate float64, progress func(int64)) (*renewal.Service, error) {
	if rate <= 0 {
		rate = o.RenewRate
	}
	if !(rate > 0) {
		return nil, fmt.Errorf("%w: renewal rate %v: must be positive", vaxpass.ErrInvalid, rate)
	}
	budget, err := renewal.NewTokenBucket(rate, max(1, int(rate/10)), o.l.opt.Now)
	if err != nil {
		return nil, err
	}
	svc, err := o.l.Sys.Renewal(budget, progress)
	if err != nil {
		return nil, err
	}
	svc.Slices, svc.Workers, svc.InFlight = LocalRenewSlices, LocalRenewSlices, LocalRenewInFlight
	return svc, nil
}

// LocalRenewSlices and LocalRenewInFlight: how the embedded backend cuts and works a
// renewal run (slices worked at once, certificates in flight in each).
const (
	LocalRenewSlices   = 4
	LocalRenewInFlight = 4
)

// WriteRevocationsFile brings <data>/revocations.json up to date with the list.
func (o *Ops) WriteRevocationsFile(ctx context.Context) error {
	body, _, err := o.Publisher.Current(ctx)
	if err != nil {
		return err
	}
	path := filepath.Join(o.l.opt.DataDir, RevocationsFile)
	if old, err := os.ReadFile(path); err == nil && sameRevocations(old, body) {
		return nil
	}
	if err := opsWriteFile(path, body, 0o644); err != nil {
		return fmt.Errorf("write %s: %w", RevocationsFile, err)
	}
	return nil
}

// sameRevocations compares two published lists ignoring generated_at, so an unchanged
// list is not rewritten.
func sameRevocations(a, b []byte) bool {
	strip := func(x []byte) []byte {
		i := bytes.Index(x, []byte(`"generated_at":`))
		if i < 0 {
			return x
		}
		j := bytes.Index(x[i:], []byte(`,"partitions"`))
		if j < 0 {
			return x
		}
		return append(bytes.Clone(x[:i]), x[i+j:]...)
	}
	return bytes.Equal(strip(a), strip(b))
}

// Revoke revokes a certificate on an operator's word and publishes the list file.
func (o *Ops) Revoke(ctx context.Context, actor, uvci, reason string) (revocation.Result, error) {
	res, err := o.Revoker.Revoke(ctx, actor, uvci, reason)
	if err != nil {
		return res, err
	}
	return res, o.WriteRevocationsFile(ctx)
}

// RunRenewal is the scheduled renewal inside `vaxpass serve`: at start (which also
// finishes a run an interruption cut short) and then every RenewEvery, it renews the
// certificates expiring within RenewWindow. Failures are logged and retried on the next
// tick; it returns when ctx ends.
func (o *Ops) RunRenewal(ctx context.Context) error {
	if o.RenewEvery < 0 {
		return nil
	}
	log := o.l.opt.Log
	for {
		svc, err := o.Renewal(o.RenewRate, nil)
		if err != nil {
			return err
		}
		sum, err := svc.Run(ctx, "scheduler", o.RenewWindow)
		switch {
		case ctx.Err() != nil:
			return nil
		case err != nil:
			log.Warn("scheduled renewal", "err", err)
		default:
			log.Info("scheduled renewal", "run", sum.RunID, "renewed", sum.Counts.Renewed, "failed", sum.Counts.Failed)
		}
		t := time.NewTimer(o.RenewEvery)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
	}
}

// RunRevocationPublisher keeps <data>/revocations.json up to date while the server runs
// (and once more as it stops); failures are logged and retried.
func (o *Ops) RunRevocationPublisher(ctx context.Context) error {
	every := o.PublishEvery
	if every <= 0 {
		every = DefaultPublishEvery
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		if err := o.WriteRevocationsFile(ctx); err != nil && ctx.Err() == nil {
			o.l.opt.Log.Warn("publish revocation list", "err", err)
		}
		select {
		case <-ctx.Done():
			// The last superseded certificates of a stopping server are published too.
			final, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if err := o.WriteRevocationsFile(final); err != nil && !errors.Is(err, context.Canceled) {
				o.l.opt.Log.Warn("publish revocation list", "err", err)
			}
			return nil
		case <-t.C:
		}
	}
}
