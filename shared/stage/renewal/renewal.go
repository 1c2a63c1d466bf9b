// Package renewal is the renewal use case: every certificate expiring within a window is
// re-signed with a new iat/exp -- the same DCC (same content, same UVCI, same fnt/gnt),
// byte for byte -- and stored in place of the old copy (same UVCI), so one revocation of
// the UVCI covers every renewal (design.md, "Decisions already taken").
//
// A run is paced by a signing budget and is resumable: its state (window, cut-off, start,
// position in the expiry index, the batch in progress) is stored, and a run interrupted
// at any point -- even by SIGKILL -- is continued by the next call, renewing each
// certificate exactly once:
//   - a run renews only certificates issued before it started (StartedAt, a whole
//     second); a renewed certificate is issued at or after that, so the run never renews
//     it again, even when its new expiry still falls inside a wide window (400d);
//   - each batch's UVCIs are stored (Pending) before its first signature, and the batch's
//     outcome (counts, cursor, audit entries) is stored in one transaction after its last,
//     so a batch cut short is finished on resume and counted and audited once;
//   - each renewal is a conditional write on the certificate's version.
package renewal

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/vaxpass/vaxpass/shared/stage/audit"
	"github.com/vaxpass/vaxpass/shared/vaxpass"
)

// Certs is the certificate store as renewal needs it.
type Certs interface {
	// CertificatesExpiringBefore lists issued certificates with ExpiresAt before t, by
	// expiry, at most limit, from cursor ("" first; then a previous next; next "" at the end).
	CertificatesExpiringBefore(ctx context.Context, t time.Time, cursor string, limit int) ([]vaxpass.Certificate, string, error)
	// CertificateByUVCI reads one certificate (any status); vaxpass.ErrNotFound if none.
	CertificateByUVCI(ctx context.Context, uvci string) (vaxpass.Certificate, error)
	// ReplaceCertificate with next.UVCI == prev.UVCI renews prev in place, conditional on
	// prev being the person's active certificate at prev.Version (vaxpass.ErrConflict).
	ReplaceCertificate(ctx context.Context, next vaxpass.Certificate, prev *vaxpass.Certificate) error
}

// Runs stores renewal runs.
type Runs interface {
	// UnfinishedRenewalRun returns the run not finished yet, if any (at most one exists).
	UnfinishedRenewalRun(ctx context.Context) (Run, bool, error)
	// SaveRenewalRun stores run at Version+1 (and sets run.Version), conditional on the
	// stored run being at run.Version (0: no run of that ID stored yet), and appends notes
	// to the audit trail in the same transaction; vaxpass.ErrConflict otherwise.
	SaveRenewalRun(ctx context.Context, run *Run, notes ...audit.Entry) error
}

// Sealer re-signs a DCC's CBOR with new iat/exp (HC1Resealer).
type Sealer interface {
	Reseal(ctx context.Context, dccCBOR []byte, issuedAt time.Time) (hc1 string, expiresAt time.Time, kid string, err error)
}

// Revocations tells whether a UVCI is on the revocation list: a listed certificate is
// never renewed (verification.Revocations has this shape).
type Revocations interface {
	Revoked(ctx context.Context, uvci string) (reason string, revoked bool, err error)
}

// Service runs renewals.
type Service struct {
	Certs       Certs
	Runs        Runs
	Sealer      Sealer
	Budget      Budget
	Revocations Revocations
	Now         func() time.Time
	// Rand makes run IDs (crypto/rand.Reader in production).
	Rand io.Reader
	// BatchSize is how many certificates one stored step holds (default 100, at most
	// audit.MaxBatchIDs).
	BatchSize int
	// Progress, when set, is called once per certificate looked at.
	Progress func(n int64)
	// OnRun, when set, is called before a run is worked (resumed: it was interrupted
	// before), for example to size a progress bar with Remaining.
	OnRun func(ctx context.Context, run Run, resumed bool)
}

// Run is one renewal run's stored state.
type Run struct {
	ID     string        `json:"id"`
	Actor  string        `json:"actor"`
	Window time.Duration `json:"window"`
	// Cutoff is StartedAt + Window: the run renews certificates expiring before it.
	Cutoff time.Time `json:"cutoff"`
	// StartedAt (a whole second): the run renews only certificates issued before it.
	StartedAt time.Time `json:"started_at"`
	// Cursor is the position in the expiry index after the last finished batch.
	Cursor string `json:"cursor,omitempty"`
	// Pending are the UVCIs of the batch in progress, stored before its first signature;
	// PendingNext is the cursor after it, PendingLast whether it is the index's last page.
	Pending     []string `json:"pending,omitempty"`
	PendingNext string   `json:"pending_next,omitempty"`
	PendingLast bool     `json:"pending_last,omitempty"`
	Counts      Counts   `json:"counts"`
	// Resumes counts how often the run was continued after an interruption.
	Resumes    int       `json:"resumes"`
	FinishedAt time.Time `json:"finished_at,omitzero"`
	Version    int64     `json:"version"`
}

// Counts are a run's outcomes, one per certificate looked at.
type Counts struct {
	Renewed int64 `json:"renewed"`
	// SkippedRevoked: listed on the revocation list (never renewed).
	SkippedRevoked int64 `json:"skipped_revoked"`
	// SkippedGone: revoked, superseded or removed between the listing and the renewal.
	SkippedGone int64 `json:"skipped_gone"`
	// SkippedNotLater: re-signing now would not push the expiry later.
	SkippedNotLater int64 `json:"skipped_not_later"`
	// Conflicts: changed concurrently on every attempt; the next run picks it up.
	Conflicts int64 `json:"conflicts"`
	// Failed: the stored HC1 could not be decoded (see the run's audit entries).
	Failed int64 `json:"failed"`
}

func (c *Counts) add(o Counts) {
	c.Renewed += o.Renewed
	c.SkippedRevoked += o.SkippedRevoked
	c.SkippedGone += o.SkippedGone
	c.SkippedNotLater += o.SkippedNotLater
	c.Conflicts += o.Conflicts
	c.Failed += o.Failed
}

// Total is the number of certificates looked at.
func (c Counts) Total() int64 {
	return c.Renewed + c.SkippedRevoked + c.SkippedGone + c.SkippedNotLater + c.Conflicts + c.Failed
}

func (c Counts) audit() map[string]int64 {
	return map[string]int64{
		"renewed": c.Renewed, "skipped_revoked": c.SkippedRevoked, "skipped_gone": c.SkippedGone,
		"skipped_not_later": c.SkippedNotLater, "conflicts": c.Conflicts, "failed": c.Failed,
	}
}

// Summary is what a call of Run did (the CLI prints it as JSON).
type Summary struct {
	RunID      string    `json:"run_id"`
	Window     string    `json:"window"`
	Cutoff     time.Time `json:"cutoff"`
	StartedAt  time.Time `json:"started_at"`
	FinishedAt time.Time `json:"finished_at"`
	// Resumed: this call continued a run an interruption had cut short.
	Resumed bool   `json:"resumed"`
	Counts  Counts `json:"counts"`
	// Previous is an interrupted run of another window that this call finished first.
	Previous *Summary `json:"previous_run,omitempty"`
}

func summaryOf(r Run, resumed bool) Summary {
	return Summary{RunID: r.ID, Window: FormatWindow(r.Window), Cutoff: r.Cutoff, StartedAt: r.StartedAt,
		FinishedAt: r.FinishedAt, Resumed: resumed, Counts: r.Counts}
}

// ErrInvalidWindow: a window that is not positive or longer than MaxWindow.
var ErrInvalidWindow = errors.New("invalid renewal window")

// Run renews every issued certificate expiring within window from now. An interrupted
// run is finished first: with the same window it is this run (Summary.Resumed); with
// another it is finished (Summary.Previous) and then a new run starts. actor is recorded
// in the audit trail.
func (s *Service) Run(ctx context.Context, actor string, window time.Duration) (Summary, error) {
	if window <= 0 || window > MaxWindow {
		return Summary{}, fmt.Errorf("%w: %v", ErrInvalidWindow, window)
	}
	var prev *Summary
	run, found, err := s.Runs.UnfinishedRenewalRun(ctx)
	if err != nil {
		return Summary{}, fmt.Errorf("renewal: read unfinished run: %w", err)
	}
	if found {
		run.Resumes++
		if err := s.Runs.SaveRenewalRun(ctx, &run); err != nil {
			return Summary{}, fmt.Errorf("renewal: resume run %s: %w", run.ID, err)
		}
		if s.OnRun != nil {
			s.OnRun(ctx, run, true)
		}
		err := s.Continue(ctx, &run)
		sum := summaryOf(run, true)
		if err != nil || run.Window == window {
			return sum, err
		}
		prev = &sum
	}
	if run, err = s.Start(ctx, actor, window); err != nil {
		return Summary{Previous: prev}, err
	}
	if s.OnRun != nil {
		s.OnRun(ctx, run, false)
	}
	err = s.Continue(ctx, &run)
	sum := summaryOf(run, false)
	sum.Previous = prev
	return sum, err
}

// Start stores a new run (it does not renew anything yet: Continue does).
func (s *Service) Start(ctx context.Context, actor string, window time.Duration) (Run, error) {
	id, err := s.newRunID()
	if err != nil {
		return Run{}, err
	}
	start := s.Now().UTC().Truncate(time.Second)
	run := Run{ID: id, Actor: actor, Window: window, StartedAt: start, Cutoff: start.Add(window)}
	if err := s.Runs.SaveRenewalRun(ctx, &run); err != nil {
		return Run{}, fmt.Errorf("renewal: start run: %w", err)
	}
	return run, nil
}

func (s *Service) newRunID() (string, error) {
	var b [6]byte
	if _, err := io.ReadFull(s.Rand, b[:]); err != nil {
		return "", fmt.Errorf("renewal: run id: %w", err)
	}
	return "renew-" + s.Now().UTC().Format("20060102T150405Z") + "-" + hex.EncodeToString(b[:]), nil
}

func (s *Service) batchSize() int {
	if s.BatchSize <= 0 {
		return 100
	}
	return min(s.BatchSize, audit.MaxBatchIDs)
}

// Continue works a stored run until it is finished (or ctx ends, or a failure that
// renewing other certificates cannot avoid: the store or the signer failing).
func (s *Service) Continue(ctx context.Context, run *Run) error {
	for run.FinishedAt.IsZero() {
		if err := s.step(ctx, run); err != nil {
			return fmt.Errorf("renewal run %s: %w", run.ID, err)
		}
	}
	return nil
}

// step plans a batch (when none is pending) and works it.
func (s *Service) step(ctx context.Context, run *Run) error {
	if run.Pending == nil {
		page, next, err := s.Certs.CertificatesExpiringBefore(ctx, run.Cutoff, run.Cursor, s.batchSize())
		if err != nil {
			return fmt.Errorf("list expiring certificates: %w", err)
		}
		if len(page) == 0 {
			return s.finish(ctx, run, nil)
		}
		pending := []string{}
		for _, c := range page {
			// Issued at or after the run's start: renewed by this run (or brand new).
			if c.IssuedAt.Before(run.StartedAt) {
				pending = append(pending, c.UVCI)
			}
		}
		run.Pending, run.PendingLast = pending, next == ""
		if run.PendingNext = next; next == "" {
			run.PendingNext = run.Cursor
		}
		if len(pending) > 0 {
			// Write-ahead: the batch is known before its first signature.
			if err := s.Runs.SaveRenewalRun(ctx, run); err != nil {
				return fmt.Errorf("store batch: %w", err)
			}
		}
	}

	var batch Counts
	var renewed, failed []string
	for _, id := range run.Pending {
		outcome, err := s.renew(ctx, run, id)
		if err != nil {
			return err
		}
		switch outcome {
		case outcomeRenewed:
			batch.Renewed++
			renewed = append(renewed, id)
		case outcomeRevoked:
			batch.SkippedRevoked++
		case outcomeGone:
			batch.SkippedGone++
		case outcomeNotLater:
			batch.SkippedNotLater++
		case outcomeConflict:
			batch.Conflicts++
		case outcomeFailed:
			batch.Failed++
			failed = append(failed, id)
		}
		if s.Progress != nil {
			s.Progress(1)
		}
	}
	now := s.Now().UTC()
	var notes []audit.Entry
	if len(renewed) > 0 {
		notes = append(notes, audit.Entry{At: now, Actor: run.Actor, Action: audit.ActionRenewal, RunID: run.ID,
			UVCIs: renewed, Params: map[string]string{"outcome": "renewed"}, Counts: batch.audit()})
	}
	if len(failed) > 0 {
		notes = append(notes, audit.Entry{At: now, Actor: run.Actor, Action: audit.ActionRenewal, RunID: run.ID,
			UVCIs: failed, Params: map[string]string{"outcome": "failed"}, Reason: "stored HC1 could not be decoded"})
	}
	run.Counts.add(batch)
	run.Cursor, run.Pending = run.PendingNext, nil
	last := run.PendingLast
	run.PendingNext, run.PendingLast = "", false
	if last {
		return s.finish(ctx, run, notes)
	}
	// Also a page of certificates this run renewed already is stored (only the cursor
	// moved), so a resumed run does not read it again.
	if err := s.Runs.SaveRenewalRun(ctx, run, notes...); err != nil {
		return fmt.Errorf("store batch outcome: %w", err)
	}
	return nil
}

func (s *Service) finish(ctx context.Context, run *Run, notes []audit.Entry) error {
	run.FinishedAt = s.Now().UTC()
	notes = append(notes, audit.Entry{At: run.FinishedAt, Actor: run.Actor, Action: audit.ActionRenewalRun, RunID: run.ID,
		Counts: run.Counts.audit(), Params: map[string]string{
			"window": FormatWindow(run.Window), "cutoff": run.Cutoff.Format(time.RFC3339),
			"started_at": run.StartedAt.Format(time.RFC3339), "resumes": strconv.Itoa(run.Resumes),
		}})
	if err := s.Runs.SaveRenewalRun(ctx, run, notes...); err != nil {
		return fmt.Errorf("store finished run: %w", err)
	}
	return nil
}

type outcome int

const (
	outcomeRenewed outcome = iota
	outcomeRevoked
	outcomeGone
	outcomeNotLater
	outcomeConflict
	outcomeFailed
)

// maxAttempts bounds the retries of one certificate that keeps changing under the run.
const maxAttempts = 3

// renew renews one certificate of the pending batch. Its error is one that stops the run.
func (s *Service) renew(ctx context.Context, run *Run, uvci string) (outcome, error) {
	for attempt := 0; attempt < maxAttempts; attempt++ {
		c, err := s.Certs.CertificateByUVCI(ctx, uvci)
		switch {
		case errors.Is(err, vaxpass.ErrNotFound):
			return outcomeGone, nil
		case err != nil:
			return 0, fmt.Errorf("read certificate: %w", err)
		case c.Status != vaxpass.CertIssued:
			return outcomeGone, nil
		case !c.IssuedAt.Before(run.StartedAt):
			// It was pending, so it was issued before the run started: this run renewed
			// it already, before an interruption.
			return outcomeRenewed, nil
		case !c.ExpiresAt.Before(run.Cutoff):
			return outcomeGone, nil
		}
		if s.Revocations != nil {
			_, listed, err := s.Revocations.Revoked(ctx, c.UVCI)
			if err != nil {
				return 0, fmt.Errorf("revocation list: %w", err)
			}
			if listed {
				return outcomeRevoked, nil
			}
		}
		dccCBOR, ci, err := StoredDCC(c.HC1)
		if err == nil && ci != c.UVCI {
			err = fmt.Errorf("%w: its DCC carries another ci", ErrStoredHC1)
		}
		if err != nil {
			return outcomeFailed, nil
		}
		if s.Budget != nil {
			if err := s.Budget.Wait(ctx); err != nil {
				return 0, err
			}
		}
		iat := s.Now().UTC().Truncate(time.Second)
		if iat.Before(run.StartedAt) { // a clock stepped back
			iat = run.StartedAt
		}
		hc1, exp, kid, err := s.Sealer.Reseal(ctx, dccCBOR, iat)
		if err != nil {
			return 0, fmt.Errorf("re-sign: %w", err)
		}
		if !exp.After(c.ExpiresAt) {
			return outcomeNotLater, nil
		}
		next := c
		next.HC1, next.IssuedAt, next.ExpiresAt, next.KID = hc1, iat, exp, kid
		err = s.Certs.ReplaceCertificate(ctx, next, &c)
		switch {
		case err == nil:
			return outcomeRenewed, nil
		case errors.Is(err, vaxpass.ErrConflict):
			continue
		default:
			return 0, fmt.Errorf("store renewed certificate: %w", err)
		}
	}
	return outcomeConflict, nil
}

// Remaining counts the certificates run has still to look at from its cursor (for a
// progress bar's total; it reads the expiry index, so it is not free on a large store).
func (s *Service) Remaining(ctx context.Context, run Run) (int64, error) {
	n := int64(len(run.Pending))
	cursor := run.Cursor
	if run.Pending != nil {
		if run.PendingLast {
			return n, nil
		}
		cursor = run.PendingNext
	}
	for {
		page, next, err := s.Certs.CertificatesExpiringBefore(ctx, run.Cutoff, cursor, 1000)
		if err != nil {
			return 0, fmt.Errorf("renewal: count: %w", err)
		}
		for _, c := range page {
			if c.IssuedAt.Before(run.StartedAt) {
				n++
			}
		}
		if next == "" {
			return n, nil
		}
		cursor = next
	}
}
