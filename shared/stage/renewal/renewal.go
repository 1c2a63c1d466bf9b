// Package renewal is the renewal use case: every certificate expiring within a window is
// re-signed with a new iat/exp -- the same DCC (same content, same UVCI, same fnt/gnt),
// byte for byte -- and stored in place of the old copy (same UVCI), so one revocation of
// the UVCI covers every renewal (design.md, "Decisions already taken").
//
// A run is cut into slices: key ranges of the expiry index (Run.Cuts), times the index's
// partitions when the store has them (Run.Shards, ExpiryShards), each a work item
// with its own stored state (cursor, batch in progress, counts), worked in parallel --
// by goroutines in one process (Run), or one slice per queue message on AWS (WorkSlice).
// The run is finished, with its counts summed, when every slice is done. A run is paced by
// a signing budget shared by every slice, and is resumable: a slice interrupted at any
// point -- even by SIGKILL -- is continued by whoever works it next, and each certificate
// is renewed exactly once:
//   - a run renews only certificates issued before it started (StartedAt, a whole
//     second); a renewed certificate is issued at or after that, so the run never renews
//     it again, even when its new expiry still falls inside a wide window (400d) or
//     another slice's range;
//   - the slices' ranges are disjoint, so a certificate is listed by one slice;
//   - each batch's UVCIs are stored (Slice.Pending) before its first signature, and the
//     batch's outcome (counts, cursor, audit entries) is stored in one transaction after
//     its last, conditional on the slice's version, so a batch cut short is finished on
//     resume and counted and audited once, also when two workers took the same slice
//     (the second one's save is refused);
//   - each renewal is a conditional write on the certificate's version.
package renewal

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"sync"
	"time"

	"github.com/vaxpass/vaxpass/shared/stage/audit"
	"github.com/vaxpass/vaxpass/shared/stage/internal/workpool"
	"github.com/vaxpass/vaxpass/shared/vaxpass"
)

// Certs is the certificate store as renewal needs it.
type Certs interface {
	// CertificatesExpiringBetween lists issued certificates with from <= ExpiresAt < to
	// (from zero: no lower bound), by expiry, at most limit, from cursor ("" first; then
	// a previous next; next "" at the end).
	CertificatesExpiringBetween(ctx context.Context, from, to time.Time, cursor string, limit int) ([]vaxpass.Certificate, string, error)
	// LatestExpiryBefore is the latest ExpiresAt of an issued certificate expiring
	// before t (false: none).
	LatestExpiryBefore(ctx context.Context, t time.Time) (time.Time, bool, error)
	// CertificateByUVCI reads one certificate (any status); vaxpass.ErrNotFound if none.
	CertificateByUVCI(ctx context.Context, uvci string) (vaxpass.Certificate, error)
	// ReplaceCertificate with next.UVCI == prev.UVCI renews prev in place, conditional on
	// prev being the person's active certificate at prev.Version (vaxpass.ErrConflict).
	ReplaceCertificate(ctx context.Context, next vaxpass.Certificate, prev *vaxpass.Certificate) error
}

// ExpiryShards is what a Certs may also do: list its expiry index one partition at a
// time (awsddb spreads each month over partitions by a hash of the UVCI). A run then cuts
// each time range into one slice per partition, so a slice's page reads one partition
// and not the whole range's.
type ExpiryShards interface {
	// ExpiryShards is the number of partitions, 0 to ExpiryShards-1.
	ExpiryShards() int
	// CertificatesExpiringInShard is CertificatesExpiringBetween over one partition.
	CertificatesExpiringInShard(ctx context.Context, shard int, from, to time.Time, cursor string, limit int) ([]vaxpass.Certificate, string, error)
}

// Runs stores renewal runs and their slices.
type Runs interface {
	// UnfinishedRenewalRun returns the run not finished yet, if any (at most one exists).
	UnfinishedRenewalRun(ctx context.Context) (Run, bool, error)
	// RenewalRun reads a run by ID (vaxpass.ErrNotFound if none).
	RenewalRun(ctx context.Context, id string) (Run, error)
	// SaveRenewalRun stores run at Version+1 (and sets run.Version), conditional on the
	// stored run being at run.Version (0: no run of that ID stored yet, and no other run
	// unfinished), and appends notes to the audit trail in the same transaction;
	// vaxpass.ErrConflict otherwise.
	SaveRenewalRun(ctx context.Context, run *Run, notes ...audit.Entry) error
	// RenewalSlice reads one slice of a run (vaxpass.ErrNotFound if not stored yet).
	RenewalSlice(ctx context.Context, runID string, index int) (Slice, error)
	// RenewalSlices reads the stored slices of a run, by index.
	RenewalSlices(ctx context.Context, runID string) ([]Slice, error)
	// SaveRenewalSlice stores sl at Version+1 (and sets sl.Version), conditional on the
	// stored slice being at sl.Version (0: not stored yet), and appends notes to the
	// audit trail in the same transaction; vaxpass.ErrConflict otherwise.
	SaveRenewalSlice(ctx context.Context, sl *Slice, notes ...audit.Entry) error
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

// RevocationsAmong is what a Revocations may also do: tell which of a batch's UVCIs are
// listed in one read (awsops: a TransactGetItems of up to 100 keys) instead of one each. listed holds the
// UVCIs as given; one not in it is not listed.
type RevocationsAmong interface {
	RevokedAmong(ctx context.Context, uvcis []string) (listed map[string]bool, err error)
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
	// Slices is how many key ranges a new run is cut into (default 1, at most MaxSlices).
	Slices int
	// Workers is how many slices Run works at once in this process (default Slices).
	Workers int
	// InFlight is how many certificates of a batch one worker re-signs at once (default
	// 8): one KMS Sign takes ~20 ms, so one at a time would hold a worker to ~50/s.
	InFlight int
	// Progress, when set, is called once per certificate looked at (from one goroutine
	// at a time).
	Progress func(n int64)
	// OnBatch, when set, is told each stored batch's counts (the functions emit them as
	// metrics).
	OnBatch func(Counts)
	// OnRun, when set, is called before a run is worked (resumed: it was interrupted
	// before), for example to size a progress bar with Remaining.
	OnRun func(ctx context.Context, run Run, resumed bool)

	progressMu sync.Mutex
}

// MaxSlices bounds the slices of a run (a run's cut points are stored in its item).
const MaxSlices = 256

// Run is one renewal run's stored state; its progress is in its slices.
type Run struct {
	ID     string        `json:"id"`
	Actor  string        `json:"actor"`
	Window time.Duration `json:"window"`
	// Cutoff is StartedAt + Window: the run renews certificates expiring before it.
	Cutoff time.Time `json:"cutoff"`
	// StartedAt (a whole second): the run renews only certificates issued before it.
	StartedAt time.Time `json:"started_at"`
	// Cuts are the time ranges' bounds, increasing: range r covers expiries in
	// [Cuts[r-1], Cuts[r]), range 0 from the start of the index, the last one up to
	// Cutoff; len(Cuts)+1 ranges.
	Cuts []time.Time `json:"cuts,omitempty"`
	// Shards, when not 0, is the expiry index's partitions (ExpiryShards) each range is
	// cut into: slice i reads partition i % Shards of range i / Shards. 0: a slice is a
	// range, listed whole (a store without partitions, or a run started before them).
	Shards int `json:"shards,omitempty"`
	// Counts are the slices' counts summed, stored when the run finishes (Status sums
	// them while it runs).
	Counts Counts `json:"counts"`
	// Resumes counts how often the run was continued after an interruption.
	Resumes    int       `json:"resumes"`
	FinishedAt time.Time `json:"finished_at,omitzero"`
	Version    int64     `json:"version"`
}

// SliceCount is the number of the run's slices.
func (r Run) SliceCount() int { return (len(r.Cuts) + 1) * max(r.Shards, 1) }

// Shard is the expiry index partition slice i reads (false: it reads its range whole).
func (r Run) Shard(i int) (int, bool) {
	if r.Shards <= 0 {
		return 0, false
	}
	return i % r.Shards, true
}

// Bounds is slice i's range of expiries: [from, to), from zero for the first range.
func (r Run) Bounds(i int) (from, to time.Time) {
	i /= max(r.Shards, 1)
	if i > 0 {
		from = r.Cuts[i-1]
	}
	if i < len(r.Cuts) {
		return from, r.Cuts[i]
	}
	return from, r.Cutoff
}

// Slice is one key range of a run, worked on its own.
type Slice struct {
	RunID string `json:"run_id"`
	Index int    `json:"index"`
	// Cursor is the position in the expiry index after the last finished batch.
	Cursor string `json:"cursor,omitempty"`
	// Pending are the UVCIs of the batch in progress, stored before its first signature;
	// PendingNext is the cursor after it, PendingLast whether it is the range's last page.
	Pending     []string `json:"pending,omitempty"`
	PendingNext string   `json:"pending_next,omitempty"`
	PendingLast bool     `json:"pending_last,omitempty"`
	Counts      Counts   `json:"counts"`
	// Done: every certificate of the range was looked at.
	Done      bool      `json:"done,omitempty"`
	UpdatedAt time.Time `json:"updated_at"`
	Version   int64     `json:"version"`
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

// Summary is what a call of Run did, or where a run is (Status); the CLI prints it as
// JSON.
type Summary struct {
	RunID      string    `json:"run_id"`
	Window     string    `json:"window"`
	Cutoff     time.Time `json:"cutoff"`
	StartedAt  time.Time `json:"started_at"`
	FinishedAt time.Time `json:"finished_at"`
	// Resumed: this call continued a run an interruption had cut short.
	Resumed bool   `json:"resumed"`
	Counts  Counts `json:"counts"`
	// Slices is the run's number of slices, SlicesDone how many are done.
	Slices     int `json:"slices,omitempty"`
	SlicesDone int `json:"slices_done,omitempty"`
	// Previous is an interrupted run of another window that this call finished first.
	Previous *Summary `json:"previous_run,omitempty"`
}

func summaryOf(r Run, resumed bool) Summary {
	return Summary{RunID: r.ID, Window: FormatWindow(r.Window), Cutoff: r.Cutoff, StartedAt: r.StartedAt,
		FinishedAt: r.FinishedAt, Resumed: resumed, Counts: r.Counts, Slices: r.SliceCount()}
}

// ErrInvalidWindow: a window that is not positive or longer than MaxWindow.
var ErrInvalidWindow = errors.New("invalid renewal window")

// Run renews every issued certificate expiring within window from now, working the run's
// slices in this process (Workers at once). An interrupted run is finished first: with
// the same window it is this run (Summary.Resumed); with another it is finished
// (Summary.Previous) and then a new run starts. actor is recorded in the audit trail.
func (s *Service) Run(ctx context.Context, actor string, window time.Duration) (Summary, error) {
	if window <= 0 || window > MaxWindow {
		return Summary{}, fmt.Errorf("%w: %v", ErrInvalidWindow, window)
	}
	var prev *Summary
	run, found, err := s.Resume(ctx)
	if err != nil {
		return Summary{}, err
	}
	if found {
		if s.OnRun != nil {
			s.OnRun(ctx, run, true)
		}
		err := s.Continue(ctx, &run)
		sum, serr := s.summary(ctx, run, true)
		if err == nil {
			err = serr
		}
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
	sum, serr := s.summary(ctx, run, false)
	if err == nil {
		err = serr
	}
	sum.Previous = prev
	return sum, err
}

// Resume returns the unfinished run, if any, counting the resume in it.
func (s *Service) Resume(ctx context.Context) (Run, bool, error) {
	run, found, err := s.Runs.UnfinishedRenewalRun(ctx)
	if err != nil {
		return Run{}, false, fmt.Errorf("renewal: read unfinished run: %w", err)
	}
	if !found {
		return Run{}, false, nil
	}
	run.Resumes++
	if err := s.Runs.SaveRenewalRun(ctx, &run); err != nil {
		return Run{}, false, fmt.Errorf("renewal: resume run %s: %w", run.ID, err)
	}
	return run, true, nil
}

// Start stores a new run cut into Slices key ranges (it does not renew anything yet:
// Continue or WorkSlice do).
func (s *Service) Start(ctx context.Context, actor string, window time.Duration) (Run, error) {
	if window <= 0 || window > MaxWindow {
		return Run{}, fmt.Errorf("%w: %v", ErrInvalidWindow, window)
	}
	id, err := s.newRunID()
	if err != nil {
		return Run{}, err
	}
	start := s.Now().UTC().Truncate(time.Second)
	run := Run{ID: id, Actor: actor, Window: window, StartedAt: start, Cutoff: start.Add(window)}
	if sh, ok := s.Certs.(ExpiryShards); ok && sh.ExpiryShards() > 1 && sh.ExpiryShards() <= MaxSlices {
		run.Shards = sh.ExpiryShards()
	}
	if run.Cuts, err = s.cuts(ctx, run); err != nil {
		return Run{}, fmt.Errorf("renewal: start run: %w", err)
	}
	if err := s.Runs.SaveRenewalRun(ctx, &run); err != nil {
		return Run{}, fmt.Errorf("renewal: start run: %w", err)
	}
	return run, nil
}

// cuts cuts the expiries the run will meet, from the first to the last in the index
// (two reads), into Slices equal time ranges. Certificates already expired all fall into
// the first slice when later ones exist: they are few (renewal runs daily), and equal
// ranges over years of them would leave the window itself in one slice.
//
// With partitions (Run.Shards) the Slices are shared out: Slices/Shards ranges (rounded,
// at least 1) of Shards slices each.
func (s *Service) cuts(ctx context.Context, run Run) ([]time.Time, error) {
	k := min(max(s.Slices, 1), MaxSlices)
	if run.Shards > 0 {
		k = min(max((k+run.Shards/2)/run.Shards, 1), MaxSlices/run.Shards)
	}
	if k == 1 {
		return nil, nil
	}
	first, _, err := s.Certs.CertificatesExpiringBetween(ctx, time.Time{}, run.Cutoff, "", 1)
	if err != nil {
		return nil, fmt.Errorf("first expiry: %w", err)
	}
	last, ok, err := s.Certs.LatestExpiryBefore(ctx, run.Cutoff)
	if err != nil {
		return nil, fmt.Errorf("last expiry: %w", err)
	}
	if len(first) == 0 || !ok {
		return nil, nil
	}
	return Cut(first[0].ExpiresAt, last, run.StartedAt, k), nil
}

// Cut returns the k-1 bounds that cut the expiries [lo, hi] into k equal ranges, from
// start on when hi is after it (see cuts). Bounds are strictly increasing and after lo;
// fewer are returned when the range is too short to cut.
func Cut(lo, hi, start time.Time, k int) []time.Time {
	if lo.Before(start) && hi.After(start) {
		lo = start
	}
	span := hi.Sub(lo) + 1 // hi itself falls into the last range
	var out []time.Time
	for i := 1; i < k; i++ {
		c := lo.Add(time.Duration(float64(span) * float64(i) / float64(k)))
		if !c.After(lo) || (len(out) > 0 && !c.After(out[len(out)-1])) {
			continue
		}
		out = append(out, c)
	}
	return out
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

func (s *Service) inFlight() int {
	if s.InFlight <= 0 {
		return 8
	}
	return s.InFlight
}

// Continue works every unfinished slice of a stored run in this process (Workers at
// once) until the run is finished (or ctx ends, or a failure that renewing other
// certificates cannot avoid: the store or the signer failing).
func (s *Service) Continue(ctx context.Context, run *Run) error {
	if !run.FinishedAt.IsZero() {
		return nil
	}
	todo, err := s.UnfinishedSlices(ctx, *run, time.Time{})
	if err != nil {
		return err
	}
	workers := s.Workers
	if workers <= 0 {
		workers = run.SliceCount()
	}
	err = workpool.Each(ctx, workers, todo, func(ctx context.Context, i int) error {
		_, err := s.workSlice(ctx, *run, i, time.Time{})
		return err
	})
	if err != nil {
		return fmt.Errorf("renewal run %s: %w", run.ID, err)
	}
	if _, err := s.finishIfDone(ctx, run); err != nil {
		return fmt.Errorf("renewal run %s: %w", run.ID, err)
	}
	if run.FinishedAt.IsZero() {
		return fmt.Errorf("renewal run %s: %w: a slice was taken by another worker", run.ID, vaxpass.ErrConflict)
	}
	return nil
}

// UnfinishedSlices lists the indices of the run's slices that are not done and were not
// stored since staleBefore (zero: every slice not done). A slice never stored is listed
// too: no worker has shown it took it (its message may have been lost).
func (s *Service) UnfinishedSlices(ctx context.Context, run Run, staleBefore time.Time) ([]int, error) {
	stored, err := s.Runs.RenewalSlices(ctx, run.ID)
	if err != nil {
		return nil, fmt.Errorf("renewal run %s: read slices: %w", run.ID, err)
	}
	byIndex := map[int]Slice{}
	for _, sl := range stored {
		byIndex[sl.Index] = sl
	}
	var out []int
	for i := range run.SliceCount() {
		sl, ok := byIndex[i]
		if !ok || !sl.Done && (staleBefore.IsZero() || sl.UpdatedAt.Before(staleBefore)) {
			out = append(out, i)
		}
	}
	return out, nil
}

// ErrSliceTaken: another worker saved the slice in the meantime (a duplicate message):
// it works the slice on, this worker lets it go.
var ErrSliceTaken = errors.New("renewal slice taken by another worker")

// WorkSlice works slice index of run runID until it is done (true), or until stopAt
// (not zero) has passed at the end of a batch (false), and finishes the run when it was
// the last slice not done. An error stops it anywhere; the slice's stored state lets the
// next call go on. A finished or unknown run has nothing to work (true).
func (s *Service) WorkSlice(ctx context.Context, runID string, index int, stopAt time.Time) (bool, error) {
	run, err := s.Runs.RenewalRun(ctx, runID)
	switch {
	case errors.Is(err, vaxpass.ErrNotFound):
		return true, nil
	case err != nil:
		return false, fmt.Errorf("renewal run %s: %w", runID, err)
	case !run.FinishedAt.IsZero():
		return true, nil
	case index < 0 || index >= run.SliceCount():
		return false, fmt.Errorf("renewal run %s: %w: slice %d of %d", runID, vaxpass.ErrInvalid, index, run.SliceCount())
	}
	done, err := s.workSlice(ctx, run, index, stopAt)
	if err != nil || !done {
		return done, err
	}
	if _, err := s.finishIfDone(ctx, &run); err != nil {
		return true, fmt.Errorf("renewal run %s: %w", runID, err)
	}
	return true, nil
}

func (s *Service) workSlice(ctx context.Context, run Run, index int, stopAt time.Time) (bool, error) {
	sl, err := s.Runs.RenewalSlice(ctx, run.ID, index)
	if errors.Is(err, vaxpass.ErrNotFound) {
		sl = Slice{RunID: run.ID, Index: index, UpdatedAt: s.Now().UTC()}
		if err = s.Runs.SaveRenewalSlice(ctx, &sl); errors.Is(err, vaxpass.ErrConflict) {
			sl, err = s.Runs.RenewalSlice(ctx, run.ID, index)
		}
	}
	if err != nil {
		return false, fmt.Errorf("slice %d: %w", index, err)
	}
	for !sl.Done {
		if !stopAt.IsZero() && !s.Now().Before(stopAt) {
			return false, nil
		}
		if err := s.step(ctx, run, &sl); err != nil {
			if errors.Is(err, vaxpass.ErrConflict) {
				err = fmt.Errorf("%w: %w", ErrSliceTaken, err)
			}
			return false, fmt.Errorf("slice %d: %w", index, err)
		}
	}
	return true, nil
}

// step plans a batch of the slice (when none is pending) and works it.
func (s *Service) step(ctx context.Context, run Run, sl *Slice) error {
	// listed are the page's certificates as the index holds them (every attribute is
	// projected): the first attempt renews from them, saving a read each. A resumed
	// batch has only its UVCIs and reads them.
	var listed map[string]vaxpass.Certificate
	if sl.Pending == nil {
		page, next, err := s.list(ctx, run, sl.Index, sl.Cursor, s.batchSize())
		if err != nil {
			return fmt.Errorf("list expiring certificates: %w", err)
		}
		if len(page) == 0 {
			sl.Done, sl.UpdatedAt = true, s.Now().UTC()
			return s.saveSlice(ctx, sl)
		}
		pending := []string{}
		listed = make(map[string]vaxpass.Certificate, len(page))
		for _, c := range page {
			// Issued at or after the run's start: renewed by this run (or brand new).
			if c.IssuedAt.Before(run.StartedAt) {
				pending = append(pending, c.UVCI)
				listed[c.UVCI] = c
			}
		}
		sl.Pending, sl.PendingLast = pending, next == ""
		if sl.PendingNext = next; next == "" {
			sl.PendingNext = sl.Cursor
		}
		if len(pending) > 0 {
			// Write-ahead: the batch is known before its first signature.
			sl.UpdatedAt = s.Now().UTC()
			if err := s.saveSlice(ctx, sl); err != nil {
				return fmt.Errorf("store batch: %w", err)
			}
		}
	}

	outcomes, err := s.renewAll(ctx, run, sl.Pending, listed)
	if err != nil {
		return err
	}
	var batch Counts
	var renewed, failed []string
	for i, id := range sl.Pending {
		switch outcomes[i] {
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
	sl.Counts.add(batch)
	sl.Cursor, sl.Pending = sl.PendingNext, nil
	sl.Done = sl.PendingLast
	sl.PendingNext, sl.PendingLast = "", false
	sl.UpdatedAt = now
	// Also a page of certificates this run renewed already is stored (only the cursor
	// moved), so a resumed slice does not read it again.
	if err := s.saveSlice(ctx, sl, notes...); err != nil {
		return fmt.Errorf("store batch outcome: %w", err)
	}
	if s.OnBatch != nil {
		s.OnBatch(batch)
	}
	return nil
}

// list reads a page of slice index: its partition of its range, or its range whole.
func (s *Service) list(ctx context.Context, run Run, index int, cursor string, limit int) ([]vaxpass.Certificate, string, error) {
	from, to := run.Bounds(index)
	shard, ok := run.Shard(index)
	if !ok {
		return s.Certs.CertificatesExpiringBetween(ctx, from, to, cursor, limit)
	}
	sh, ok := s.Certs.(ExpiryShards)
	if !ok || sh.ExpiryShards() != run.Shards {
		return nil, "", fmt.Errorf("%w: run %s is cut into %d expiry partitions, the store has others", vaxpass.ErrInvalid, run.ID, run.Shards)
	}
	return sh.CertificatesExpiringInShard(ctx, shard, from, to, cursor, limit)
}

// saveSlice stores sl; on a failure its version stays, so a retry is conditional on the
// same stored state.
func (s *Service) saveSlice(ctx context.Context, sl *Slice, notes ...audit.Entry) error {
	err := s.Runs.SaveRenewalSlice(ctx, sl, notes...)
	if !errors.Is(err, vaxpass.ErrConflict) {
		return err
	}
	// A save whose answer was lost and that the client sent again (the SDK retries) is
	// refused by its own first attempt: then the stored slice is exactly what this save
	// wrote, and the worker goes on instead of letting its slice go (it would wait for
	// the stale-slice requeue).
	stored, rerr := s.Runs.RenewalSlice(ctx, sl.RunID, sl.Index)
	if rerr != nil || stored.Version != sl.Version+1 {
		return err
	}
	want := *sl
	want.Version = stored.Version
	a, aerr := json.Marshal(stored)
	b, berr := json.Marshal(want)
	if aerr != nil || berr != nil || !bytes.Equal(a, b) {
		return err
	}
	sl.Version = stored.Version
	return nil
}

// renewAll renews the batch's certificates, InFlight at once, and returns their outcomes
// in order; its error is the first that stops the run (the others are then cut short).
// listed are the certificates as listed (nil: read each).
func (s *Service) renewAll(ctx context.Context, run Run, ids []string, listed map[string]vaxpass.Certificate) ([]outcome, error) {
	out := make([]outcome, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	revoked, err := s.revokedAmong(ctx, ids)
	if err != nil {
		return nil, err
	}
	idx := make([]int, len(ids))
	for i := range idx {
		idx[i] = i
	}
	err = workpool.Each(ctx, s.inFlight(), idx, func(ctx context.Context, i int) error {
		var cp *vaxpass.Certificate
		if c, ok := listed[ids[i]]; ok {
			cp = &c
		}
		o, err := s.renew(ctx, run, ids[i], cp, revoked)
		if err != nil {
			return err
		}
		out[i] = o
		s.progress()
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

func (s *Service) progress() {
	if s.Progress == nil {
		return
	}
	s.progressMu.Lock()
	defer s.progressMu.Unlock()
	s.Progress(1)
}

// finishIfDone stores the run finished, with its slices' counts summed and its audit
// entry, when every slice is done; it reports whether the run is finished (by this call
// or another worker's).
func (s *Service) finishIfDone(ctx context.Context, run *Run) (bool, error) {
	for attempt := 0; ; attempt++ {
		if !run.FinishedAt.IsZero() {
			return true, nil
		}
		slices, err := s.Runs.RenewalSlices(ctx, run.ID)
		if err != nil {
			return false, fmt.Errorf("read slices: %w", err)
		}
		counts, done := sumSlices(slices)
		if done < run.SliceCount() {
			return false, nil
		}
		fin := *run
		fin.Counts, fin.FinishedAt = counts, s.Now().UTC()
		note := audit.Entry{At: fin.FinishedAt, Actor: run.Actor, Action: audit.ActionRenewalRun, RunID: run.ID,
			Counts: counts.audit(), Params: map[string]string{
				"window": FormatWindow(run.Window), "cutoff": run.Cutoff.Format(time.RFC3339),
				"started_at": run.StartedAt.Format(time.RFC3339), "resumes": strconv.Itoa(run.Resumes),
				"slices": strconv.Itoa(run.SliceCount()),
			}}
		err = s.Runs.SaveRenewalRun(ctx, &fin, note)
		if err == nil {
			*run = fin
			return true, nil
		}
		if !errors.Is(err, vaxpass.ErrConflict) || attempt == 2 {
			return false, fmt.Errorf("store finished run: %w", err)
		}
		// Another worker finished it, or resumed it (Resumes): read it again.
		if *run, err = s.Runs.RenewalRun(ctx, run.ID); err != nil {
			return false, fmt.Errorf("read run: %w", err)
		}
	}
}

func sumSlices(slices []Slice) (Counts, int) {
	var c Counts
	done := 0
	for _, sl := range slices {
		c.add(sl.Counts)
		if sl.Done {
			done++
		}
	}
	return c, done
}

// Status is where run runID is: its slices' counts summed, how many are done, and
// FinishedAt once every one is (vaxpass.ErrNotFound for an unknown run).
func (s *Service) Status(ctx context.Context, runID string) (Summary, error) {
	run, err := s.Runs.RenewalRun(ctx, runID)
	if err != nil {
		return Summary{}, fmt.Errorf("renewal run %s: %w", runID, err)
	}
	return s.summary(ctx, run, false)
}

func (s *Service) summary(ctx context.Context, run Run, resumed bool) (Summary, error) {
	sum := summaryOf(run, resumed)
	slices, err := s.Runs.RenewalSlices(ctx, run.ID)
	if err != nil {
		return sum, fmt.Errorf("renewal run %s: read slices: %w", run.ID, err)
	}
	counts, done := sumSlices(slices)
	if run.FinishedAt.IsZero() {
		sum.Counts = counts
	}
	sum.SlicesDone = done
	return sum, nil
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

// revokedAmong tells which of ids are on the revocation list, in one read when the list
// can (RevocationsAmong); nil when renew must ask per certificate.
func (s *Service) revokedAmong(ctx context.Context, ids []string) (map[string]bool, error) {
	among, ok := s.Revocations.(RevocationsAmong)
	if !ok {
		return nil, nil
	}
	listed, err := among.RevokedAmong(ctx, ids)
	if err != nil {
		return nil, fmt.Errorf("revocation list: %w", err)
	}
	if listed == nil {
		listed = map[string]bool{}
	}
	return listed, nil
}

// renew renews one certificate of the pending batch: from listed (its copy in the expiry
// index) on the first attempt when given, read again after a conflict. revoked is the
// batch's revocation check (nil: ask per certificate). Its error is one that stops the
// run.
func (s *Service) renew(ctx context.Context, run Run, uvci string, listed *vaxpass.Certificate, revoked map[string]bool) (outcome, error) {
	for attempt := 0; attempt < maxAttempts; attempt++ {
		var c vaxpass.Certificate
		var err error
		if attempt == 0 && listed != nil {
			// ReplaceCertificate is conditional on its version: a stale copy (the index
			// lags) is refused, and the next attempt reads the stored one.
			c = *listed
		} else {
			c, err = s.Certs.CertificateByUVCI(ctx, uvci)
		}
		switch {
		case errors.Is(err, vaxpass.ErrNotFound):
			return outcomeGone, nil
		case err != nil:
			return 0, fmt.Errorf("read certificate: %w", err)
		case c.Status != vaxpass.CertIssued:
			return outcomeGone, nil
		case !c.IssuedAt.Before(run.StartedAt):
			// It was pending, so it was issued before the run started: this run renewed
			// it already, before an interruption (or another worker of the same slice).
			return outcomeRenewed, nil
		case !c.ExpiresAt.Before(run.Cutoff):
			return outcomeGone, nil
		}
		switch {
		case revoked != nil:
			// Checked for the whole batch before its first signature. A UVCI listed since
			// then is revoked in the store too (revocation.Service retries on a version
			// this write moved), as with the check per certificate.
			if revoked[uvci] {
				return outcomeRevoked, nil
			}
		case s.Revocations != nil:
			_, onList, err := s.Revocations.Revoked(ctx, c.UVCI)
			if err != nil {
				return 0, fmt.Errorf("revocation list: %w", err)
			}
			if onList {
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

// Remaining counts the certificates run has still to look at (for a progress bar's
// total; it reads the expiry index, so it is not free on a large store).
func (s *Service) Remaining(ctx context.Context, run Run) (int64, error) {
	stored, err := s.Runs.RenewalSlices(ctx, run.ID)
	if err != nil {
		return 0, fmt.Errorf("renewal: count: %w", err)
	}
	byIndex := map[int]Slice{}
	for _, sl := range stored {
		byIndex[sl.Index] = sl
	}
	var n int64
	for i := range run.SliceCount() {
		sl := byIndex[i]
		if sl.Done {
			continue
		}
		n += int64(len(sl.Pending))
		cursor := sl.Cursor
		if sl.Pending != nil {
			if sl.PendingLast {
				continue
			}
			cursor = sl.PendingNext
		}
		for {
			page, next, err := s.list(ctx, run, i, cursor, 1000)
			if err != nil {
				return 0, fmt.Errorf("renewal: count: %w", err)
			}
			for _, c := range page {
				if c.IssuedAt.Before(run.StartedAt) {
					n++
				}
			}
			if next == "" {
				break
			}
			cursor = next
		}
	}
	return n, nil
}
