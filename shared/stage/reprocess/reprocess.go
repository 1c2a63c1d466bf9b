// Package reprocess is the ops use case that runs a pipeline stage again -- matching,
// facility signing or central signing -- for the dose records a Filter selects: after a
// registry update, a key rotation, a bug fix or a dead-lettered batch.
//
// A run is idempotent: every unit of work (a dose, a person at a facility, a person)
// compares what the stage would produce with what is stored and writes only what differs,
// so running the same selection twice changes nothing the second time. It is resumable:
// the run's position (a cursor in the stable (facility_id, source_id) order of the doses)
// is stored after every batch, and a batch is announced before it is worked on (its units
// and a fingerprint of each unit's state), so a run killed at any point and started again
// redoes at most that batch, finds the work of the units already done, and counts each
// change once. A finished run appends its counts and the changed record IDs to the audit
// trail. The same code runs from the CLI, the local API and the ops Lambda (HandleInvoke).
//
// A large run is cut into parts (parts.go): contiguous facility ranges of the order, each
// with its own cursor, announced batch, counts and journal, worked concurrently --
// goroutines in one process (Run), or one queue message per part on AWS (WorkPart). The
// run finishes, once, when its last part is done, whoever works it.
package reprocess

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/vaxpass/vaxpass/shared/domain/match"
	"github.com/vaxpass/vaxpass/shared/stage/audit"
	"github.com/vaxpass/vaxpass/shared/stage/signing"
	"github.com/vaxpass/vaxpass/shared/vaxpass"
)

// DoseStore is what a run reads and writes of the dose records.
type DoseStore interface {
	// ScanDoses returns, in (facility_id, source_id) byte order after the key after (the
	// zero key: from the start), at most limit doses whose match status is in statuses
	// and whose facility is in facilities (either empty: any); done reports that no dose
	// of that selection follows the last one returned (false may be followed by an empty
	// page). The embedded store has its own; ScanByStatus gives one to other stores.
	ScanDoses(ctx context.Context, statuses []match.Status, facilities []string, after vaxpass.DoseKey, limit int) (doses []vaxpass.Dose, done bool, err error)
	// CountDoses counts the doses ScanDoses would return over the whole selection.
	CountDoses(ctx context.Context, statuses []match.Status, facilities []string) (int64, error)
	GetDose(ctx context.Context, key vaxpass.DoseKey) (vaxpass.Dose, error)
	// PersonDoses returns every dose of the person, all facilities.
	PersonDoses(ctx context.Context, personID string) ([]vaxpass.Dose, error)
	// SaveMatchBatch stores each dose conditional on its Version as read (see
	// matching.MatchWriter); errs[i] is that dose's failure.
	SaveMatchBatch(ctx context.Context, doses []vaxpass.Dose) (errs []error, err error)
	// MarkSigned sets SignedAt on the doses, conditional on their Versions (signing.FacilityStore).
	MarkSigned(ctx context.Context, doses []vaxpass.Dose, at time.Time) error
}

// FacilitySignatures reads the facility signatures central signing stored.
type FacilitySignatures interface {
	FacilitySignatures(ctx context.Context, personID string) ([]vaxpass.FacilitySignature, error)
}

// Certificates reads a person's active certificate (vaxpass.ErrNotFound when none).
type Certificates interface {
	ActiveCertificate(ctx context.Context, personID string) (vaxpass.Certificate, error)
}

// Issuer (re)issues a person's certificate from their stored facility signatures:
// signing.CentralService.
type Issuer interface {
	Issue(ctx context.Context, personID string) (signing.IssueOutcome, *vaxpass.Certificate, error)
}

// RunStore keeps the state of runs. SaveRun must store doc and the changes in one atomic
// write: the changes of a batch and the cursor past it are kept together or not at all.
// The parts of a run are stored as runs of their own (IDs partID(run, i)).
type RunStore interface {
	// SaveRun stores doc as run runID's state and records changes (unit ID -> outcome).
	SaveRun(ctx context.Context, runID string, doc []byte, changes map[string]string) error
	// SwapRun stores doc as run runID's state if the stored state is prev, byte for byte
	// (vaxpass.ErrConflict otherwise): the state of a run cut into parts is changed this
	// way, so that of two workers finishing its last parts at once one finishes it.
	SwapRun(ctx context.Context, runID string, prev, doc []byte) error
	// LoadRun returns a run's state (vaxpass.ErrNotFound when there is none).
	LoadRun(ctx context.Context, runID string) ([]byte, error)
	// ListRuns returns the state of every run, in run ID (start time) order.
	ListRuns(ctx context.Context) ([][]byte, error)
	// RunChanges pages through a run's recorded changes in unit ID order after the ID after.
	RunChanges(ctx context.Context, runID, after string, limit int) (ids, outcomes []string, err error)
}

// Progress hears of the doses scanned (progress.Reporter).
type Progress interface{ Add(n int64) }

// Service is the reprocessing use case. Matcher serves StageMatch; Keys, Queue and
// Signatures serve StageFacilitySign; Issuer, DryRunIssuer and Certificates serve
// StageCentralSign. A stage whose dependencies are nil is refused.
type Service struct {
	Doses DoseStore
	Runs  RunStore
	Audit audit.Appender

	Matcher *match.Matcher

	Keys       signing.FacilityKeys
	Queue      signing.CentralQueue
	Signatures FacilitySignatures

	Issuer Issuer
	// DryRunIssuer decides like Issuer and writes nothing (see DryRunIssuer).
	DryRunIssuer Issuer
	Certificates Certificates

	Now func() time.Time
	// Rand makes run IDs (crypto/rand when nil).
	Rand io.Reader
	// BatchSize is how many doses one batch scans (default 500).
	BatchSize int
	// Pace is a pause after every batch (tests and demonstrations: an interruption lands
	// mid-run); 0 in production.
	Pace time.Duration
	// MaxConsecutiveFailures ends a run whose units keep failing (the store or a key is
	// down, not one bad record); default 100.
	MaxConsecutiveFailures int

	// Parts is the most parts a new run is cut into (default DefaultParts, at most
	// MaxParts; 1: one cursor); MinPartDoses the fewest doses a part is cut for (default
	// DefaultMinPartDoses); Workers how many parts Run works at once (default
	// DefaultWorkers). Facilities lists the facilities a selection without any is cut
	// along (nil: Doses, when it lists them; otherwise one part).
	Parts        int
	MinPartDoses int
	Workers      int
	Facilities   FacilityLister
}

// Errors of a run.
var (
	// ErrStageUnavailable: the service was built without what the stage needs.
	ErrStageUnavailable = errors.New("stage not available in this deployment")
	// ErrTooManyFailures: MaxConsecutiveFailures units failed in a row; the run stops and
	// may be resumed once the cause is fixed.
	ErrTooManyFailures = errors.New("too many consecutive failures")
	// ErrRunFinished: the run named to resume is finished.
	ErrRunFinished = errors.New("run already finished")
)

// RunState is where a run is.
type RunState string

// The states.
const (
	Running   RunState = "running"
	Done      RunState = "done"
	Abandoned RunState = "abandoned"
)

// Run is the stored state of a run. It holds dose keys and fingerprints only; the
// Subject of an in-flight unit is the registry ID the unit's work concerns.
type Run struct {
	ID         string    `json:"id"`
	Stage      Stage     `json:"stage"`
	Filter     Filter    `json:"filter"`
	Actor      string    `json:"actor"`
	Reason     string    `json:"reason,omitempty"`
	State      RunState  `json:"state"`
	StartedAt  time.Time `json:"started_at"`
	UpdatedAt  time.Time `json:"updated_at"`
	FinishedAt time.Time `json:"finished_at,omitzero"`
	// Resumes counts the times the run was started again after an interruption.
	Resumes int `json:"resumes"`
	// Total is the number of doses the scan will look at, counted when the run started.
	Total int64 `json:"total"`
	// Cursor is the last dose key scanned and committed; ScanDone says the scan is over.
	Cursor   vaxpass.DoseKey `json:"cursor"`
	ScanDone bool            `json:"scan_done"`
	Counts   Counts          `json:"counts"`
	// InFlight is the batch being worked on: announced before any of its writes.
	InFlight *Batch `json:"in_flight,omitempty"`
	// Audited says the audit entries of the finished run are appended.
	Audited bool `json:"audited"`

	// Parts is the number of parts the run is cut into (0: one cursor, in this state);
	// Cuts are the first facility IDs of parts 1, 2, ...: part i scans the facilities
	// from Cuts[i-1] (the start for part 0) up to Cuts[i] excluded (the end for the last).
	// While the run is running, Counts are summed from the parts when it is read (GetRun,
	// ListRuns) and PartsDone says how many are done.
	Parts     int      `json:"parts,omitempty"`
	Cuts      []string `json:"cuts,omitempty"`
	PartsDone int      `json:"parts_done,omitempty"`
	// PartOf and Part name the run and part whose state this is; Until is the facility
	// the part's scan stops at ("" at the end).
	PartOf string `json:"part_of,omitempty"`
	Part   int    `json:"part,omitempty"`
	Until  string `json:"until,omitempty"`
}

// Counts count what a run did.
type Counts struct {
	// Scanned doses were looked at; Selected units of work came out of them (a person
	// with several selected doses is one unit of the signing stages).
	Scanned   int64 `json:"scanned"`
	Selected  int64 `json:"selected"`
	Changed   int64 `json:"changed"`
	Unchanged int64 `json:"unchanged"`
	Failed    int64 `json:"failed"`
	// Outcomes counts the units per outcome: what a changed unit became ("verified",
	// "signed", "issued", ...) and why an unchanged one was left ("not_eligible").
	Outcomes map[string]int64 `json:"outcomes,omitempty"`
}

func (c *Counts) add(o Counts) {
	c.Scanned += o.Scanned
	c.Selected += o.Selected
	c.Changed += o.Changed
	c.Unchanged += o.Unchanged
	c.Failed += o.Failed
	for k, n := range o.Outcomes {
		if c.Outcomes == nil {
			c.Outcomes = map[string]int64{}
		}
		c.Outcomes[k] += n
	}
}

func (c *Counts) outcome(label string) {
	if label == "" {
		return
	}
	if c.Outcomes == nil {
		c.Outcomes = map[string]int64{}
	}
	c.Outcomes[label]++
}

// Batch is the in-flight batch of a run.
type Batch struct {
	// Last is the last dose key the batch scanned; ScanDone: no dose follows it.
	Last     vaxpass.DoseKey `json:"last"`
	ScanDone bool            `json:"scan_done"`
	Scanned  int64           `json:"scanned"`
	Units    []Unit          `json:"units"`
}

// Unit is one unit of work: a dose (match), a person at a facility (facility-sign) or a
// person (central-sign). ID is the key of the dose it was found through; Pre is a
// fingerprint of the unit's state before the batch touched it.
type Unit struct {
	ID       string `json:"id"`
	Facility string `json:"facility,omitempty"`
	Subject  string `json:"subject,omitempty"`
	Pre      state  `json:"pre"`

	dose *vaxpass.Dose // the dose as scanned (nil when redoing a batch after a restart)
}

// state is a fingerprint of a unit's state and a label used to name a change found by
// comparing two states (when a batch is redone the action's own answer is lost).
type state struct {
	FP    string `json:"fp"`
	Label string `json:"label,omitempty"`
}

// Change is one changed (or, in a dry run, to be changed) unit.
type Change struct {
	// ID is the dose key (facility_id/source_id) the unit was found through.
	ID      string `json:"id"`
	Outcome string `json:"outcome"`
	// UVCI is the certificate central signing issued (central-sign only).
	UVCI string `json:"uvci,omitempty"`
}

// Summary is what a call to Run or HandleInvoke answers.
type Summary struct {
	RunID  string `json:"run_id,omitempty"`
	Stage  Stage  `json:"stage"`
	Filter Filter `json:"filter"`
	DryRun bool   `json:"dry_run"`
	// Done is false when the call stopped before the end (its time ran out): call again
	// with RunID to continue.
	Done    bool   `json:"done"`
	Resumed bool   `json:"resumed"`
	Counts  Counts `json:"counts"`
	// Changed lists the first MaxSummaryChanges changes of this call (all of them are in
	// the run's journal and the audit trail); Failures the first failed units.
	Changed   []Change `json:"changed,omitempty"`
	Truncated bool     `json:"truncated,omitempty"`
	Failures  []Change `json:"failures,omitempty"`
	// AuditEntries is the number of audit entries the finished run appended.
	AuditEntries int `json:"audit_entries,omitempty"`
	// Part is the part a WorkPart call worked (Done: the part is done, Counts: the
	// part's); RunDone says the run is finished.
	Part    *int `json:"part,omitempty"`
	RunDone bool `json:"run_done,omitempty"`
}

// MaxSummaryChanges bounds Summary.Changed and Summary.Failures.
const MaxSummaryChanges = 1000

// Options tune one call of Run.
type Options struct {
	// Progress hears of scanned doses; Total (from Plan) is what it will reach.
	Progress Progress
	// OnChange hears of every change (in a dry run: every change that would be made) as it
	// is committed, e.g. to print the IDs.
	OnChange func(Change)
	// StopBefore ends the call (Summary.Done false) when a batch would start less than
	// this long before ctx's deadline.
	StopBefore time.Duration
	// Resumed hears of the run being resumed (its ID and committed position) before work
	// starts.
	Resumed func(Run)
}

// Plan says how many doses a run of sel will scan in all and how many a run it would
// resume has scanned already.
func (s *Service) Plan(ctx context.Context, sel Selector) (total, done int64, err error) {
	sel, run, found, err := s.locate(ctx, sel)
	if err != nil {
		return 0, 0, err
	}
	if found {
		if run.Parts > 0 {
			if run, err = s.partsView(ctx, run); err != nil {
				return 0, 0, err
			}
		}
		if run.Total > 0 {
			return run.Total, run.Counts.Scanned, nil
		}
		total, err = s.Doses.CountDoses(ctx, run.Filter.Statuses, run.Filter.Facilities)
		return total, run.Counts.Scanned, err
	}
	total, err = s.Doses.CountDoses(ctx, sel.Statuses, sel.Facilities)
	return total, 0, err
}

// Run executes sel: a dry run, a new run, or the resumption of an unfinished run of the
// same stage and filter (or of sel.RunID). It returns when the run is finished, ctx ends
// (the run stays resumable; the error is ctx's) or a failure stops it.
func (s *Service) Run(ctx context.Context, sel Selector, opt Options) (Summary, error) {
	if err := sel.Normalize(); err != nil {
		return Summary{}, err
	}
	if sel.DryRun {
		if sel.Stage == "" {
			return Summary{}, fmt.Errorf("%w: stage: a dry run needs a stage (it does not continue a run)", vaxpass.ErrInvalid)
		}
		st, err := s.stageFor(sel.Stage)
		if err != nil {
			return Summary{}, err
		}
		return s.dryRun(ctx, sel, st, opt)
	}
	sel, run, found, err := s.locate(ctx, sel)
	if err != nil {
		return Summary{}, err
	}
	stageName := sel.Stage
	if found {
		stageName = run.Stage
	}
	st, err := s.stageFor(stageName)
	if err != nil {
		return Summary{}, err
	}
	if !found {
		if run, err = s.newRun(ctx, sel); err != nil {
			return Summary{}, err
		}
	}
	if run.Parts > 0 {
		return s.runParts(ctx, st, run, found, opt)
	}
	// A run that has done work before is being resumed (one made by Begin has not).
	resumed := found && (run.Counts.Scanned > 0 || run.InFlight != nil || run.State != Running)
	if resumed {
		run.Resumes++
		if opt.Resumed != nil {
			opt.Resumed(run)
		}
	}
	sum := Summary{RunID: run.ID, Stage: run.Stage, Filter: run.Filter, Resumed: resumed}
	r := &runner{s: s, st: st, run: run, opt: opt, col: &collector{sum: &sum, opt: opt}}
	err = r.loop(ctx)
	sum.Counts = r.run.Counts
	return sum, err
}

// Begin creates the run sel asks for, or finds the unfinished one it resumes, without
// working on it: Run with Selector{RunID: run.ID} then does the work (the API starts runs
// this way, to answer with the run's ID at once).
func (s *Service) Begin(ctx context.Context, sel Selector) (Run, error) {
	run, _, err := s.BeginOrFind(ctx, sel)
	return run, err
}

// BeginOrFind is Begin that also tells whether the run was created now (false: an
// unfinished run of the same stage and filter, or the run named, was found), so that a
// caller starts a worker for a new run only and never a second one for a run in progress.
func (s *Service) BeginOrFind(ctx context.Context, sel Selector) (Run, bool, error) {
	if sel.DryRun {
		return Run{}, false, fmt.Errorf("%w: dry_run: a dry run is not stored; run it directly", vaxpass.ErrInvalid)
	}
	sel, run, found, err := s.locate(ctx, sel)
	if err != nil {
		return Run{}, false, err
	}
	if found {
		return run, false, nil
	}
	if _, err := s.stageFor(sel.Stage); err != nil {
		return Run{}, false, err
	}
	run, err = s.newRun(ctx, sel)
	return run, err == nil, err
}

// locate normalises sel and finds the run it continues: sel.RunID, else the newest
// unfinished run of the same stage and filter (abandoned first when sel.Restart).
func (s *Service) locate(ctx context.Context, sel Selector) (Selector, Run, bool, error) {
	if err := sel.Normalize(); err != nil {
		return sel, Run{}, false, err
	}
	if sel.DryRun {
		return sel, Run{}, false, nil
	}
	if sel.RunID != "" {
		run, err := s.loadRun(ctx, sel.RunID)
		if err != nil {
			return sel, run, false, err
		}
		if sel.Stage != "" && !sameWork(sel.Stage, sel.Filter, run.Stage, run.Filter) &&
			!(sel.Filter.IsZero() && sel.Stage == run.Stage) {
			return sel, run, false, fmt.Errorf("%w: run %s is %s %s, not %s %s", vaxpass.ErrInvalid, run.ID, run.Stage, run.Filter, sel.Stage, sel.Filter)
		}
		if run.State != Running && run.Audited {
			return sel, run, false, fmt.Errorf("run %s: %w (%s)", run.ID, ErrRunFinished, run.State)
		}
		return sel, run, true, nil
	}
	runs, err := s.listRuns(ctx)
	if err != nil {
		return sel, Run{}, false, err
	}
	for i := len(runs) - 1; i >= 0; i-- {
		run := runs[i]
		if run.State == Abandoned && !run.Audited && sameWork(sel.Stage, sel.Filter, run.Stage, run.Filter) {
			if _, err := s.auditRun(ctx, &run); err != nil {
				return sel, run, false, fmt.Errorf("run %s: audit: %w", run.ID, err)
			}
			if err := s.markAudited(ctx, &run); err != nil {
				return sel, run, false, err
			}
			continue
		}
		open := run.State == Running || (run.State == Done && !run.Audited)
		if !open || !sameWork(sel.Stage, sel.Filter, run.Stage, run.Filter) {
			continue
		}
		if sel.Restart && run.State == Running && run.Parts > 0 {
			if err := s.abandonParts(ctx, &run); err != nil {
				return sel, run, false, err
			}
			continue
		}
		if sel.Restart && run.State == Running {
			// Abandoned, the run is audited with what it changed so far, the interrupted
			// batch's changes included.
			changes, err := s.settle(ctx, &run)
			if err != nil {
				return sel, run, false, err
			}
			run.State = Abandoned
			run.FinishedAt = s.now()
			run.UpdatedAt = run.FinishedAt
			if err := s.saveRun(ctx, &run, changes); err != nil {
				return sel, run, false, err
			}
			if _, err := s.auditRun(ctx, &run); err != nil {
				return sel, run, false, fmt.Errorf("run %s: audit: %w", run.ID, err)
			}
			run.Audited = true
			if err := s.saveRun(ctx, &run, nil); err != nil {
				return sel, run, false, err
			}
			continue
		}
		return sel, run, true, nil
	}
	return sel, Run{}, false, nil
}

// settle counts the changes the in-flight batch of an interrupted run made, without
// doing its work, and clears it: the run is about to be abandoned.
func (s *Service) settle(ctx context.Context, run *Run) (map[string]string, error) {
	if run.InFlight == nil {
		return nil, nil
	}
	st, err := s.stageFor(run.Stage)
	if err != nil {
		return nil, err
	}
	changes := map[string]string{}
	for i := range run.InFlight.Units {
		u := &run.InFlight.Units[i]
		post, err := st.state(ctx, u)
		if err != nil {
			return nil, fmt.Errorf("run %s: read %s: %w", run.ID, u.ID, err)
		}
		if post.FP == u.Pre.FP {
			continue
		}
		ch := Change{ID: u.ID, Outcome: st.changeLabel(u.Pre, post)}
		if run.Stage == StageCentralSign {
			ch.UVCI = post.Label
		}
		run.Counts.Changed++
		run.Counts.outcome(ch.Outcome)
		changes[u.ID] = encodeJournal(ch)
	}
	run.InFlight = nil
	return changes, nil
}

func (s *Service) newRun(ctx context.Context, sel Selector) (Run, error) {
	now := s.now()
	id, err := s.newRunID(now)
	if err != nil {
		return Run{}, err
	}
	total, err := s.Doses.CountDoses(ctx, sel.Statuses, sel.Facilities)
	if err != nil {
		return Run{}, fmt.Errorf("count the selected doses: %w", err)
	}
	actor := sel.Actor
	if actor == "" {
		actor = "ops"
	}
	run := Run{ID: id, Stage: sel.Stage, Filter: sel.Filter, Actor: actor, Reason: sel.Reason,
		State: Running, StartedAt: now, UpdatedAt: now, Total: total}
	if run.Cuts, err = s.cutRun(ctx, sel.Filter, total); err != nil {
		return Run{}, err
	}
	if len(run.Cuts) > 0 {
		run.Parts = len(run.Cuts) + 1
	}
	if err := s.saveRun(ctx, &run, nil); err != nil {
		return Run{}, err
	}
	return run, nil
}

func (s *Service) newRunID(now time.Time) (string, error) {
	rnd := s.Rand
	if rnd == nil {
		rnd = rand.Reader
	}
	b := make([]byte, 4)
	if _, err := io.ReadFull(rnd, b); err != nil {
		return "", fmt.Errorf("run ID: %w", err)
	}
	return "rp-" + now.UTC().Format("20060102T150405Z") + "-" + hex.EncodeToString(b), nil
}

func (s *Service) now() time.Time {
	if s.Now == nil {
		return time.Now().UTC()
	}
	return s.Now().UTC()
}

func (s *Service) saveRun(ctx context.Context, run *Run, changes map[string]string) error {
	doc, err := json.Marshal(run)
	if err != nil {
		return fmt.Errorf("encode run %s: %w", run.ID, err)
	}
	// The state must be saved even when the caller's ctx just ended: a cancelled run
	// records where it stopped.
	if err := s.Runs.SaveRun(context.WithoutCancel(ctx), run.ID, doc, changes); err != nil {
		return fmt.Errorf("save run %s: %w", run.ID, err)
	}
	return nil
}

func (s *Service) loadRun(ctx context.Context, id string) (Run, error) {
	doc, err := s.Runs.LoadRun(ctx, id)
	if err != nil {
		return Run{}, fmt.Errorf("run %s: %w", id, err)
	}
	return decodeRun(doc)
}

func decodeRun(doc []byte) (Run, error) {
	var run Run
	if err := json.Unmarshal(doc, &run); err != nil {
		return run, fmt.Errorf("decode run: %w", err)
	}
	return run, nil
}

// listRuns returns the stored runs, oldest first, and the stored parts by run ID.
func (s *Service) listRuns(ctx context.Context) ([]Run, error) {
	runs, _, err := s.listRunsAndParts(ctx)
	return runs, err
}

func (s *Service) listRunsAndParts(ctx context.Context) ([]Run, map[string][]Run, error) {
	docs, err := s.Runs.ListRuns(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("list runs: %w", err)
	}
	runs := make([]Run, 0, len(docs))
	parts := map[string][]Run{}
	for _, d := range docs {
		run, err := decodeRun(d)
		if err != nil {
			return nil, nil, err
		}
		if run.PartOf != "" {
			parts[run.PartOf] = append(parts[run.PartOf], run)
			continue
		}
		runs = append(runs, run)
	}
	// Run IDs sort by the second they started; within one second, by start time.
	slices.SortStableFunc(runs, func(a, b Run) int { return a.StartedAt.Compare(b.StartedAt) })
	return runs, parts, nil
}

// ListRuns lists the stored runs, oldest first (a running run's counts summed from its
// parts).
func (s *Service) ListRuns(ctx context.Context) ([]Run, error) {
	runs, parts, err := s.listRunsAndParts(ctx)
	if err != nil {
		return nil, err
	}
	for i := range runs {
		if runs[i].Parts > 0 {
			runs[i] = viewParts(runs[i], parts[runs[i].ID])
		}
	}
	return runs, nil
}

// GetRun returns one stored run (a running run's counts summed from its parts).
func (s *Service) GetRun(ctx context.Context, id string) (Run, error) {
	if !runIDRe.MatchString(id) {
		return Run{}, fmt.Errorf("%w: run_id: %q is not a run ID", vaxpass.ErrInvalid, id)
	}
	run, err := s.loadRun(ctx, id)
	if err != nil || run.Parts == 0 {
		return run, err
	}
	return s.partsView(ctx, run)
}

// runner drives one call of Run over one cursor: a run's, or a part's (run.PartOf set).
type runner struct {
	s   *Service
	st  stage
	run Run
	opt Options
	col *collector
	// failStreak counts units failed in a row.
	failStreak int
}

func (r *runner) loop(ctx context.Context) error {
	s := r.s
	if r.run.InFlight != nil {
		if err := r.work(ctx, *r.run.InFlight); err != nil {
			return err
		}
	}
	limit := s.batchSize()
	for !r.run.ScanDone {
		if err := ctx.Err(); err != nil {
			return err
		}
		if r.outOfTime(ctx) {
			return nil
		}
		if err := r.stillRunning(ctx); err != nil {
			return err
		}
		doses, done, err := s.Doses.ScanDoses(ctx, r.run.Filter.Statuses, r.run.Filter.Facilities, r.run.Cursor, limit)
		if err != nil {
			return fmt.Errorf("run %s: scan doses: %w", r.run.ID, err)
		}
		if r.run.Until != "" {
			// The part ends where the next one starts.
			if i := slices.IndexFunc(doses, func(d vaxpass.Dose) bool { return d.FacilityID >= r.run.Until }); i >= 0 {
				doses, done = doses[:i], true
			}
		}
		b := Batch{Last: r.run.Cursor, ScanDone: done, Scanned: int64(len(doses))}
		if len(doses) > 0 {
			b.Last = doses[len(doses)-1].Key()
		}
		if b.Units, err = r.st.units(ctx, &r.run.Filter, doses); err != nil {
			return fmt.Errorf("run %s: %w", r.run.ID, err)
		}
		for i := range b.Units {
			if b.Units[i].Pre, err = r.st.state(ctx, &b.Units[i]); err != nil {
				return fmt.Errorf("run %s: read %s: %w", r.run.ID, b.Units[i].ID, err)
			}
		}
		if len(b.Units) > 0 {
			// Announce the batch before touching anything.
			r.run.InFlight = &b
			r.run.UpdatedAt = s.now()
			if err := s.saveRun(ctx, &r.run, nil); err != nil {
				return err
			}
		}
		if err := r.work(ctx, b); err != nil {
			return err
		}
		if s.Pace > 0 && !r.run.ScanDone {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(s.Pace):
			}
		}
	}
	if r.run.PartOf != "" {
		return nil // the run is finished by whoever finds its last part done
	}
	return r.finish(ctx)
}

func (r *runner) outOfTime(ctx context.Context) bool {
	if r.opt.StopBefore <= 0 {
		return false
	}
	deadline, ok := ctx.Deadline()
	return ok && time.Until(deadline) < r.opt.StopBefore
}

// work does the units of an announced batch and commits: cursor past the batch, counts,
// the changes journal, no batch in flight -- one write. Whether a unit changed is decided
// by comparing its state now with its announced state, so a batch redone after a restart
// counts the changes its first attempt made.
func (r *runner) work(ctx context.Context, b Batch) error {
	s := r.s
	var c Counts
	c.Scanned = b.Scanned
	c.Selected = int64(len(b.Units))
	changes := map[string]string{}
	var changed []Change
	if len(b.Units) > 0 {
		results, err := r.st.apply(ctx, b.Units, false)
		if err != nil {
			return fmt.Errorf("run %s: %w", r.run.ID, err)
		}
		for i := range b.Units {
			u := &b.Units[i]
			res := results[i]
			if res.err != nil {
				if errors.Is(res.err, context.Canceled) || errors.Is(res.err, context.DeadlineExceeded) {
					return res.err
				}
				c.Failed++
				c.outcome("failed")
				r.failStreak++
				r.col.failure(Change{ID: u.ID, Outcome: "failed: " + res.err.Error()})
				if r.failStreak >= s.maxFailures() {
					return fmt.Errorf("run %s: %w: last: %s: %w", r.run.ID, ErrTooManyFailures, u.ID, res.err)
				}
				continue
			}
			r.failStreak = 0
			post, err := r.st.state(ctx, u)
			if err != nil {
				return fmt.Errorf("run %s: read %s: %w", r.run.ID, u.ID, err)
			}
			if post.FP == u.Pre.FP {
				c.Unchanged++
				c.outcome(res.skip)
				continue
			}
			// Named from the states, not from what apply answered: a batch redone after
			// an interruption finds its units' work done, and must name it as the first
			// attempt would have.
			label := r.st.changeLabel(u.Pre, post)
			ch := Change{ID: u.ID, Outcome: label}
			if r.run.Stage == StageCentralSign {
				ch.UVCI = post.Label
			}
			c.Changed++
			c.outcome(label)
			changes[u.ID] = encodeJournal(ch)
			changed = append(changed, ch)
		}
	}
	r.run.Counts.add(c)
	r.run.Cursor = b.Last
	r.run.ScanDone = b.ScanDone
	r.run.InFlight = nil
	r.run.UpdatedAt = s.now()
	if err := s.saveRun(ctx, &r.run, changes); err != nil {
		return err
	}
	for _, ch := range changed {
		r.col.change(ch)
	}
	r.col.scanned(b.Scanned)
	return nil
}

// collector gathers what the workers of one call found, one at a time: Options'
// callbacks are never called concurrently.
type collector struct {
	mu  sync.Mutex
	sum *Summary
	opt Options
}

func (c *collector) change(ch Change) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.sum.Changed) < MaxSummaryChanges {
		c.sum.Changed = append(c.sum.Changed, ch)
	} else {
		c.sum.Truncated = true
	}
	if c.opt.OnChange != nil {
		c.opt.OnChange(ch)
	}
}

func (c *collector) failure(ch Change) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.sum.Failures) < MaxSummaryChanges {
		c.sum.Failures = append(c.sum.Failures, ch)
	}
}

func (c *collector) scanned(n int64) {
	if c.opt.Progress == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.opt.Progress.Add(n)
}

// finish marks the run done and appends its audit entries (once: a run killed between
// the two is audited when started again).
func (r *runner) finish(ctx context.Context) error {
	s := r.s
	if r.run.State != Done {
		r.run.State = Done
		r.run.FinishedAt = s.now()
		r.run.UpdatedAt = r.run.FinishedAt
		if err := s.saveRun(ctx, &r.run, nil); err != nil {
			return err
		}
	}
	if !r.run.Audited {
		n, err := s.auditRun(ctx, &r.run)
		if err != nil {
			return fmt.Errorf("run %s: audit: %w", r.run.ID, err)
		}
		r.col.sum.AuditEntries = n
		r.run.Audited = true
		if err := s.saveRun(ctx, &r.run, nil); err != nil {
			return err
		}
	}
	r.col.sum.Done = true
	return nil
}

// auditRun appends the run to the audit trail: one entry with the counts, the selector
// and the changed dose keys (and issued UVCIs), continued in further entries of the same
// run ID when there are more than audit.MaxBatchIDs.
func (s *Service) auditRun(ctx context.Context, run *Run) (int, error) {
	if s.Audit == nil {
		return 0, nil
	}
	var all []Change
	for _, journal := range journals(*run) {
		after := ""
		for {
			ids, outs, err := s.Runs.RunChanges(ctx, journal, after, 10_000)
			if err != nil {
				return 0, fmt.Errorf("read the run's changes: %w", err)
			}
			for i, id := range ids {
				all = append(all, decodeJournal(id, outs[i]))
			}
			if len(ids) < 10_000 {
				break
			}
			after = ids[len(ids)-1]
		}
	}
	// In unit ID order, as one journal lists them (the parts' ranges are contiguous in
	// dose key order, which is not quite unit ID order).
	slices.SortFunc(all, func(a, b Change) int { return strings.Compare(a.ID, b.ID) })
	var doses, uvcis []string
	for _, ch := range all {
		doses = append(doses, ch.ID)
		if ch.UVCI != "" {
			uvcis = append(uvcis, ch.UVCI)
		}
	}
	params := map[string]string{"stage": string(run.Stage), "selector": run.Filter.String(), "state": string(run.State)}
	if run.Resumes > 0 {
		params["resumes"] = fmt.Sprint(run.Resumes)
	}
	counts := map[string]int64{
		"scanned": run.Counts.Scanned, "selected": run.Counts.Selected, "changed": run.Counts.Changed,
		"unchanged": run.Counts.Unchanged, "failed": run.Counts.Failed,
	}
	for k, n := range run.Counts.Outcomes {
		if _, taken := counts[k]; !taken && len(counts) < audit.MaxMapKeys {
			counts[k] = n
		}
	}
	// Doses and UVCIs go out in chunks of at most audit.MaxBatchIDs IDs per entry.
	type part struct{ doses, uvcis []string }
	var parts []part
	for len(doses) > 0 || len(uvcis) > 0 || len(parts) == 0 {
		var p part
		n := min(len(doses), audit.MaxBatchIDs)
		p.doses, doses = doses[:n], doses[n:]
		m := min(len(uvcis), audit.MaxBatchIDs-n)
		p.uvcis, uvcis = uvcis[:m], uvcis[m:]
		parts = append(parts, p)
	}
	at := run.FinishedAt
	if at.IsZero() {
		at = s.now()
	}
	// A worker killed between appending and recording it appended: the entries found
	// (they carry the run's FinishedAt) are not appended again.
	already, err := s.auditedEntries(ctx, run)
	if err != nil {
		return 0, err
	}
	for i, p := range parts {
		if i < already {
			continue
		}
		e := audit.Entry{At: at, Actor: run.Actor, Action: audit.ActionReprocess, Reason: run.Reason, RunID: run.ID,
			Doses: p.doses, UVCIs: p.uvcis, Params: maps.Clone(params)}
		if len(parts) > 1 {
			e.Params["part"] = fmt.Sprintf("%d/%d", i+1, len(parts))
		}
		if i == 0 {
			e.Counts = counts
		}
		if err := s.Audit.Append(ctx, e); err != nil {
			return i - min(i, already), err
		}
	}
	return len(parts) - min(len(parts), already), nil
}

// auditedEntries counts the audit entries of a finished run already appended, when the
// trail can be read (0 otherwise).
func (s *Service) auditedEntries(ctx context.Context, run *Run) (int, error) {
	r, ok := s.Audit.(audit.Reader)
	if !ok || run.FinishedAt.IsZero() {
		return 0, nil
	}
	at := run.FinishedAt.UTC()
	n := 0
	q := audit.Query{From: at, To: at.Add(time.Millisecond), Action: audit.ActionReprocess}
	err := audit.All(ctx, r, q, func(e audit.Entry) error {
		if e.RunID == run.ID {
			n++
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("read the audit trail: %w", err)
	}
	return n, nil
}

// encodeJournal renders a change as the journal keeps it: "outcome" or "outcome uvci".
func encodeJournal(ch Change) string {
	if ch.UVCI != "" {
		return ch.Outcome + " " + ch.UVCI
	}
	return ch.Outcome
}

func decodeJournal(id, v string) Change {
	out, uvci, _ := strings.Cut(v, " ")
	return Change{ID: id, Outcome: out, UVCI: uvci}
}

// Changes pages through the changes a stored run recorded, after the unit ID after.
func (s *Service) Changes(ctx context.Context, runID, after string, limit int) ([]Change, error) {
	run, err := s.loadRun(ctx, runID)
	if errors.Is(err, vaxpass.ErrNotFound) {
		run, err = Run{ID: runID}, nil // no state: its journal, if any
	}
	if err != nil {
		return nil, err
	}
	var out []Change
	// A page of each part's journal, merged: the first limit of them are the run's.
	for _, journal := range journals(run) {
		ids, outs, err := s.Runs.RunChanges(ctx, journal, after, limit)
		if err != nil {
			return nil, fmt.Errorf("run %s changes: %w", runID, err)
		}
		for i, id := range ids {
			out = append(out, decodeJournal(id, outs[i]))
		}
	}
	slices.SortFunc(out, func(a, b Change) int { return strings.Compare(a.ID, b.ID) })
	return out[:min(len(out), limit)], nil
}

func (s *Service) batchSize() int {
	if s.BatchSize > 0 {
		return s.BatchSize
	}
	return 500
}

func (s *Service) maxFailures() int {
	if s.MaxConsecutiveFailures > 0 {
		return s.MaxConsecutiveFailures
	}
	return 100
}

// dryRun walks the selection like a run and reports what would change, writing nothing.
func (s *Service) dryRun(ctx context.Context, sel Selector, st stage, opt Options) (Summary, error) {
	sum := Summary{Stage: sel.Stage, Filter: sel.Filter, DryRun: true}
	r := &runner{s: s, st: st, opt: opt, col: &collector{sum: &sum, opt: opt}}
	var c Counts
	after := vaxpass.DoseKey{}
	for {
		if err := ctx.Err(); err != nil {
			sum.Counts = c
			return sum, err
		}
		if r.outOfTime(ctx) {
			sum.Counts = c
			return sum, nil // Done false: the caller's time is up
		}
		doses, done, err := s.Doses.ScanDoses(ctx, sel.Statuses, sel.Facilities, after, s.batchSize())
		if err != nil {
			return sum, fmt.Errorf("dry run: scan doses: %w", err)
		}
		units, err := st.units(ctx, &sel.Filter, doses)
		if err != nil {
			return sum, fmt.Errorf("dry run: %w", err)
		}
		results, err := st.apply(ctx, units, true)
		if err != nil {
			return sum, fmt.Errorf("dry run: %w", err)
		}
		c.Scanned += int64(len(doses))
		c.Selected += int64(len(units))
		for i, res := range results {
			switch {
			case res.err != nil:
				if errors.Is(res.err, context.Canceled) {
					return sum, res.err
				}
				c.Failed++
				c.outcome("failed")
				r.col.failure(Change{ID: units[i].ID, Outcome: "failed: " + res.err.Error()})
			case res.outcome != "":
				c.Changed++
				c.outcome(res.outcome)
				r.col.change(Change{ID: units[i].ID, Outcome: res.outcome})
			default:
				c.Unchanged++
				c.outcome(res.skip)
			}
		}
		r.col.scanned(int64(len(doses)))
		if done || len(doses) == 0 {
			break
		}
		after = doses[len(doses)-1].Key()
	}
	sum.Counts = c
	sum.Done = true
	return sum, nil
}

// doseID is the ID of a dose in journals and the audit trail.
func doseID(k vaxpass.DoseKey) string { return audit.DoseKey(k.FacilityID, k.SourceID) }

// parseDoseID reads a doseID back (facility IDs hold no "/").
func parseDoseID(id string) (vaxpass.DoseKey, error) {
	f, src, ok := strings.Cut(id, "/")
	if !ok || f == "" || src == "" {
		return vaxpass.DoseKey{}, fmt.Errorf("%w: unit ID %q is not facility/source_id", vaxpass.ErrInvalid, id)
	}
	return vaxpass.DoseKey{FacilityID: f, SourceID: src}, nil
}

// keyLess orders dose keys as the store does: facility, then source_id, bytewise.
func keyLess(a, b vaxpass.DoseKey) bool {
	if a.FacilityID != b.FacilityID {
		return a.FacilityID < b.FacilityID
	}
	return a.SourceID < b.SourceID
}
