package signing

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/vaxpass/vaxpass/shared/vaxpass"
)

// A signing run is one facility's signing as a unit of work that outlives the call that
// started it: POST /v1/signatures signs in the call while the API's time allows and hands
// the rest to a run worked in the background (a queue on AWS, a goroutine locally), page
// by page, its cursor stored after every page, so no invocation has to finish a
// facility's backlog within a time limit and a killed worker's run resumes where it was.

// RunStatus is where a signing run is.
type RunStatus string

const (
	RunRunning RunStatus = "running"
	RunDone    RunStatus = "done"
	RunFailed  RunStatus = "failed"
)

// Priority says whose work a run is: interactive (a facility's call) goes before bulk
// (the daily run over every facility, a backlog) in the KMS budget and in central
// signing's queues.
type Priority string

const (
	Interactive Priority = "interactive"
	Bulk        Priority = "bulk"
)

// Run is a facility signing run's stored state.
type Run struct {
	ID         string    `json:"run_id"`
	FacilityID string    `json:"facility_id"`
	Priority   Priority  `json:"priority"`
	Status     RunStatus `json:"status"`
	Signed     int       `json:"signed"`
	Waiting    int       `json:"waiting"`
	// Cursor is the last person ID of the last finished page ("" before the first).
	Cursor string `json:"cursor,omitempty"`
	// Pages counts finished pages (one facility signature each).
	Pages      int       `json:"pages"`
	Error      string    `json:"error,omitempty"`
	StartedAt  time.Time `json:"started_at"`
	UpdatedAt  time.Time `json:"updated_at"`
	FinishedAt time.Time `json:"finished_at,omitzero"`
	// Version is the stored version (0 before the first save).
	Version int64 `json:"version"`
}

// RunStore keeps signing runs.
type RunStore interface {
	// SaveSigningRun stores run at Version+1 (and sets run.Version), conditional on the
	// stored run being at run.Version (0: none stored); vaxpass.ErrConflict otherwise.
	SaveSigningRun(ctx context.Context, run *Run) error
	// SigningRun reads a run; vaxpass.ErrNotFound if there is none.
	SigningRun(ctx context.Context, id string) (Run, error)
	// LatestSigningRun reads the facility's most recently started run (found false if
	// none): the first save of a run (Version 0) makes it the facility's latest.
	LatestSigningRun(ctx context.Context, facilityID string) (run Run, found bool, err error)
}

// staleAfter is how long a running run may go without a saved page before a new start
// no longer counts on it (its worker was lost, e.g. its message went to the dead letters)
// and starts a fresh one.
const staleAfter = 30 * time.Minute

// RunQueue has a run continued in the background (an SQS message, a goroutine).
type RunQueue interface {
	ContinueSigningRun(ctx context.Context, runID string) error
}

// Runs starts and continues signing runs.
type Runs struct {
	Signer *FacilityService
	Store  RunStore
	Queue  RunQueue
	Now    func() time.Time
	// Rand makes run IDs (crypto/rand.Reader when nil).
	Rand io.Reader
	// PagesInCall, when positive, also bounds the pages Start signs in the call (tests use
	// it to see a run go on in the background whatever the clock).
	PagesInCall int
	// OnPage, when set, is told each signed page (the functions count it as a metric).
	OnPage func(PageResult)
}

// ErrRunOver says a continued run is finished already (a repeated queue message).
var ErrRunOver = errors.New("signing run is over")

// Start begins a run for the facility and works on it for at most inCall; what is left is
// queued and the run is returned running. inCall 0 queues everything.
//
// A facility has one run at a time: while its latest run is running (and saved a page
// within staleAfter), Start returns that run instead of a second one signing the same
// people.
func (r *Runs) Start(ctx context.Context, facilityID string, prio Priority, inCall time.Duration) (Run, error) {
	latest, found, err := r.Store.LatestSigningRun(ctx, facilityID)
	if err != nil {
		return latest, fmt.Errorf("latest signing run: %w", err)
	}
	if found && latest.Status == RunRunning && r.Now().Sub(latest.UpdatedAt) < staleAfter {
		return latest, nil
	}
	id, err := r.newID()
	if err != nil {
		return Run{}, err
	}
	now := r.Now().UTC()
	run := Run{ID: id, FacilityID: facilityID, Priority: prio, Status: RunRunning, StartedAt: now, UpdatedAt: now}
	if err := r.Store.SaveSigningRun(ctx, &run); err != nil {
		return run, fmt.Errorf("store signing run: %w", err)
	}
	if inCall > 0 {
		if err := r.work(ctx, &run, now.Add(inCall), r.PagesInCall); err != nil {
			// The run stays at its last saved page: queued, its worker tries again (and
			// logs what fails); a run that cannot even be queued is the caller's error.
			if qerr := r.Queue.ContinueSigningRun(ctx, run.ID); qerr != nil {
				return run, errors.Join(err, fmt.Errorf("queue signing run: %w", qerr))
			}
			return run, nil
		}
		if run.Status != RunRunning {
			return run, nil
		}
	}
	if err := r.Queue.ContinueSigningRun(ctx, run.ID); err != nil {
		return run, fmt.Errorf("queue signing run: %w", err)
	}
	return run, nil
}

// Continue works on a stored run until deadline (zero: to its end), saving its cursor
// after every page, and queues it again when time ran out first. A finished run is
// ErrRunOver; a run another worker saved meanwhile is vaxpass.ErrConflict (that worker
// goes on with it).
func (r *Runs) Continue(ctx context.Context, runID string, deadline time.Time) (Run, error) {
	run, err := r.Store.SigningRun(ctx, runID)
	if err != nil {
		return run, err
	}
	if run.Status != RunRunning {
		return run, ErrRunOver
	}
	if err := r.work(ctx, &run, deadline, 0); err != nil {
		return run, err
	}
	if run.Status == RunRunning {
		if err := r.Queue.ContinueSigningRun(ctx, run.ID); err != nil {
			return run, fmt.Errorf("queue signing run: %w", err)
		}
	}
	return run, nil
}

// Get reads a run.
func (r *Runs) Get(ctx context.Context, runID string) (Run, error) {
	return r.Store.SigningRun(ctx, runID)
}

// work signs pages until the run is done or the next page would likely end after
// deadline (judged by the slowest page so far); the first page is always signed, so every
// call moves the run on (a page is bounded: PageSize people, one signature). A failed page fails the run when it
// cannot succeed on a retry (the facility has no key); other errors are returned, the
// run stays running at its last cursor, and the queue's redelivery retries it.
func (r *Runs) work(ctx context.Context, run *Run, deadline time.Time, maxPages int) error {
	var slowest time.Duration
	for pages := 0; ; pages++ {
		if pages > 0 && (maxPages > 0 && pages >= maxPages || !deadline.IsZero() && r.Now().Add(slowest).After(deadline)) {
			return nil
		}
		t0 := r.Now()
		page, err := r.Signer.SignPage(ctx, run.FacilityID, run.Cursor, run.Priority)
		if err != nil {
			if errors.Is(err, vaxpass.ErrNotFound) {
				run.Status, run.Error = RunFailed, "facility has no signing key"
				run.FinishedAt = r.Now().UTC()
				return r.save(ctx, run)
			}
			return fmt.Errorf("signing run %s: %w", run.ID, err)
		}
		slowest = max(slowest, r.Now().Sub(t0))
		if r.OnPage != nil {
			r.OnPage(page)
		}
		run.Signed += page.Signed
		run.Waiting += page.Waiting
		run.Pages++
		run.Cursor = page.Next
		if page.Last {
			run.Status = RunDone
			run.FinishedAt = r.Now().UTC()
		}
		if err := r.save(ctx, run); err != nil {
			return err
		}
		if page.Last {
			return nil
		}
	}
}

func (r *Runs) save(ctx context.Context, run *Run) error {
	run.UpdatedAt = r.Now().UTC()
	if err := r.Store.SaveSigningRun(ctx, run); err != nil {
		return fmt.Errorf("store signing run %s: %w", run.ID, err)
	}
	return nil
}

func (r *Runs) newID() (string, error) {
	src := r.Rand
	if src == nil {
		src = rand.Reader
	}
	b := make([]byte, 12)
	if _, err := io.ReadFull(src, b); err != nil {
		return "", fmt.Errorf("signing run id: %w", err)
	}
	return "sr-" + hex.EncodeToString(b), nil
}
