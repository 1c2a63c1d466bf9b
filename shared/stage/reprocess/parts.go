package reprocess

// Runs cut into parts. A new run of more than MinPartDoses doses is cut along the sorted
// facilities of its selection (the registered ones when the filter names none) into at
// most Parts contiguous ranges of about as many facilities each. Each part is a run state
// of its own in the RunStore (ID partID(run, i), PartOf set): cursor, announced batch,
// counts and change journal, saved as a single-cursor run's are, so everything a run
// guarantees holds per part -- a part killed anywhere redoes at most its announced batch,
// and counts each change once. Parts never share a unit: a unit is found through its
// first selected dose in key order, which lies in one range.
//
// The run's own state holds the cut and, once finished, the summed counts. It is changed
// only by SwapRun (a compare-and-swap), so when two workers find the last parts done at
// once, one of them finishes the run and appends its audit entries. A run stored before
// parts existed (Parts 0) is one part: its cursor is in its own state, worked as before.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	"github.com/vaxpass/vaxpass/shared/stage/internal/workpool"
	"github.com/vaxpass/vaxpass/shared/vaxpass"
)

// Fan-out defaults and limits.
const (
	// DefaultParts: enough ranges that a worker finishing a short one takes another, few
	// enough that reading every part's state (status, finishing) stays cheap.
	DefaultParts = 16
	// MaxParts bounds the parts of a run (their first facilities are in its state).
	MaxParts = 64
	// DefaultMinPartDoses: a part costs a state item, a message and a read of the run's
	// state per batch -- worth it from half a default batch on.
	DefaultMinPartDoses = 250
	// DefaultWorkers is how many parts Run works at once in one process.
	DefaultWorkers = 4
	// swapAttempts bounds the retries of a run state change that lost a race.
	swapAttempts = 16
)

// FacilityLister lists the registered facilities (the store's).
type FacilityLister interface {
	ListFacilities(ctx context.Context) ([]vaxpass.Facility, error)
}

// partID is the ID the state of part i of run runID is stored under.
func partID(runID string, i int) string { return fmt.Sprintf("%s.p%03d", runID, i) }

// journals are the IDs under which a run's changes are recorded.
func journals(run Run) []string {
	if run.Parts == 0 {
		return []string{run.ID}
	}
	out := make([]string, run.Parts)
	for i := range out {
		out[i] = partID(run.ID, i)
	}
	return out
}

func (s *Service) maxParts() int {
	if s.Parts > 0 {
		return min(s.Parts, MaxParts)
	}
	return DefaultParts
}

func (s *Service) minPartDoses() int64 {
	if s.MinPartDoses > 0 {
		return int64(s.MinPartDoses)
	}
	return DefaultMinPartDoses
}

func (s *Service) workers() int {
	if s.Workers > 0 {
		return s.Workers
	}
	return DefaultWorkers
}

// cutRun returns the first facility of each part after the first for a new run of total
// doses (none: one part).
func (s *Service) cutRun(ctx context.Context, f Filter, total int64) ([]string, error) {
	k := int64(s.maxParts())
	k = min(k, total/s.minPartDoses())
	if k <= 1 {
		return nil, nil
	}
	facs := slices.Clone(f.Facilities)
	if len(facs) == 0 {
		lister := s.Facilities
		if lister == nil {
			lister, _ = s.Doses.(FacilityLister)
		}
		if lister == nil {
			return nil, nil
		}
		all, err := lister.ListFacilities(ctx)
		if err != nil {
			return nil, fmt.Errorf("cut the run: %w", err)
		}
		for _, fac := range all {
			facs = append(facs, fac.ID)
		}
	}
	slices.Sort(facs)
	facs = slices.Compact(facs)
	n := int64(len(facs))
	k = min(k, n)
	if k <= 1 {
		return nil, nil
	}
	// i*n/k increases strictly with i when k <= n: the cuts are distinct and sorted.
	cuts := make([]string, 0, k-1)
	for i := int64(1); i < k; i++ {
		cuts = append(cuts, facs[i*n/k])
	}
	return cuts, nil
}

// freshPart is the state of part i of run before any work on it: its cursor before the
// first dose of its first facility ((facility, ""): ScanDoses starts with that facility).
func (s *Service) freshPart(run Run, i int) Run {
	now := s.now()
	p := Run{ID: partID(run.ID, i), PartOf: run.ID, Part: i, Stage: run.Stage, Filter: run.Filter,
		Actor: run.Actor, State: Running, StartedAt: now, UpdatedAt: now}
	if i > 0 {
		p.Cursor = vaxpass.DoseKey{FacilityID: run.Cuts[i-1]}
	}
	if i < len(run.Cuts) {
		p.Until = run.Cuts[i]
	}
	return p
}

// loadPart returns the stored state of part i, or its fresh state (stored false).
func (s *Service) loadPart(ctx context.Context, run Run, i int) (part Run, stored bool, err error) {
	doc, err := s.Runs.LoadRun(ctx, partID(run.ID, i))
	if errors.Is(err, vaxpass.ErrNotFound) {
		return s.freshPart(run, i), false, nil
	}
	if err != nil {
		return Run{}, false, fmt.Errorf("run %s part %d: %w", run.ID, i, err)
	}
	part, err = decodeRun(doc)
	return part, true, err
}

// loadParts returns every part's state (fresh for those not stored) and how many are stored.
func (s *Service) loadParts(ctx context.Context, run Run) ([]Run, int, error) {
	parts := make([]Run, run.Parts)
	stored := 0
	for i := range parts {
		p, ok, err := s.loadPart(ctx, run, i)
		if err != nil {
			return nil, 0, err
		}
		parts[i] = p
		if ok {
			stored++
		}
	}
	return parts, stored, nil
}

// sumParts sums the parts' counts and counts the parts done.
func sumParts(parts []Run) (Counts, int) {
	var c Counts
	done := 0
	for _, p := range parts {
		c.add(p.Counts)
		if p.ScanDone {
			done++
		}
	}
	return c, done
}

// partResumes counts the parts' own resumes (WorkPart's: a part found with its batch
// interrupted).
func partResumes(parts []Run) int {
	n := 0
	for _, p := range parts {
		n += p.Resumes
	}
	return n
}

// viewParts is run as reported while it runs: its parts' counts summed.
func viewParts(run Run, parts []Run) Run {
	c, done := sumParts(parts)
	if run.State == Running {
		run.Counts = c
		run.PartsDone = done
		run.Resumes += partResumes(parts)
	} else {
		run.PartsDone = run.Parts
	}
	return run
}

func (s *Service) partsView(ctx context.Context, run Run) (Run, error) {
	if run.State != Running {
		return viewParts(run, nil), nil
	}
	parts, _, err := s.loadParts(ctx, run)
	if err != nil {
		return run, err
	}
	return viewParts(run, parts), nil
}

// UnfinishedParts lists the parts of a running run whose scan is not done (all of them
// for a run of one cursor: [0]).
func (s *Service) UnfinishedParts(ctx context.Context, run Run) ([]int, error) {
	if run.Parts == 0 {
		if run.ScanDone {
			return nil, nil
		}
		return []int{0}, nil
	}
	parts, _, err := s.loadParts(ctx, run)
	if err != nil {
		return nil, err
	}
	var out []int
	for i, p := range parts {
		if !p.ScanDone {
			out = append(out, i)
		}
	}
	return out, nil
}

// changeRun applies f to the stored state of run id and stores the result if that state
// did not change in between (else again, from a fresh read). f answers false: nothing to
// store. It returns the state as stored after it, and whether f's change was stored.
func (s *Service) changeRun(ctx context.Context, id string, f func(*Run) (bool, error)) (Run, bool, error) {
	for attempt := 1; ; attempt++ {
		prev, err := s.Runs.LoadRun(ctx, id)
		if err != nil {
			return Run{}, false, fmt.Errorf("run %s: %w", id, err)
		}
		run, err := decodeRun(prev)
		if err != nil {
			return run, false, err
		}
		ok, err := f(&run)
		if err != nil || !ok {
			return run, false, err
		}
		doc, err := json.Marshal(run)
		if err != nil {
			return run, false, fmt.Errorf("encode run %s: %w", id, err)
		}
		// As saveRun: a cancelled call still records what it decided.
		err = s.Runs.SwapRun(context.WithoutCancel(ctx), id, prev, doc)
		if err == nil {
			return run, true, nil
		}
		if !errors.Is(err, vaxpass.ErrConflict) || attempt == swapAttempts {
			return run, false, fmt.Errorf("save run %s: %w", id, err)
		}
	}
}

// markAudited records that a finished run's audit entries are appended.
func (s *Service) markAudited(ctx context.Context, run *Run) error {
	if run.Parts == 0 {
		run.Audited = true
		return s.saveRun(ctx, run, nil)
	}
	got, _, err := s.changeRun(ctx, run.ID, func(r *Run) (bool, error) {
		if r.Audited {
			return false, nil
		}
		r.Audited = true
		return true, nil
	})
	if err == nil {
		*run = got
	}
	return err
}

// finishParts finishes run runID if every part is done: the counts summed, the state
// done, then the audit entries appended by the worker whose change made it done (and, with
// recovering, by this call for a run found done but not audited: its finisher died before
// appending). It returns the run's state and the entries appended.
func (s *Service) finishParts(ctx context.Context, runID string, recovering bool) (Run, int, error) {
	run, won, err := s.changeRun(ctx, runID, func(r *Run) (bool, error) {
		if r.State != Running {
			return false, nil
		}
		parts, _, err := s.loadParts(ctx, *r)
		if err != nil {
			return false, err
		}
		c, done := sumParts(parts)
		if done < r.Parts {
			return false, nil
		}
		now := s.now()
		r.Counts, r.State, r.ScanDone, r.FinishedAt, r.UpdatedAt = c, Done, true, now, now
		r.Resumes += partResumes(parts)
		return true, nil
	})
	if err != nil || run.State == Running || run.Audited || !won && !recovering {
		return run, 0, err
	}
	n, err := s.auditRun(ctx, &run)
	if err != nil {
		return run, n, fmt.Errorf("run %s: audit: %w", run.ID, err)
	}
	return run, n, s.markAudited(ctx, &run)
}

// abandonParts abandons a running run cut into parts (Selector.Restart): each part's
// interrupted batch settled, the run abandoned with the parts' counts and audited. A
// worker still on a part stops at its next batch (it sees the run is not running).
func (s *Service) abandonParts(ctx context.Context, run *Run) error {
	for i := range run.Parts {
		p, stored, err := s.loadPart(ctx, *run, i)
		if err != nil {
			return err
		}
		if !stored || p.InFlight == nil {
			continue
		}
		changes, err := s.settle(ctx, &p)
		if err != nil {
			return err
		}
		p.UpdatedAt = s.now()
		if err := s.saveRun(ctx, &p, changes); err != nil {
			return err
		}
	}
	got, _, err := s.changeRun(ctx, run.ID, func(r *Run) (bool, error) {
		if r.State != Running {
			return false, nil
		}
		parts, _, err := s.loadParts(ctx, *r)
		if err != nil {
			return false, err
		}
		r.Counts, _ = sumParts(parts)
		r.State, r.FinishedAt = Abandoned, s.now()
		r.UpdatedAt = r.FinishedAt
		return true, nil
	})
	if err != nil {
		return err
	}
	*run = got
	if run.Audited {
		return nil
	}
	if _, err := s.auditRun(ctx, run); err != nil {
		return fmt.Errorf("run %s: audit: %w", run.ID, err)
	}
	return s.markAudited(ctx, run)
}

// runParts is Run for a run cut into parts: its unfinished parts worked Workers at once,
// then the run finished.
func (s *Service) runParts(ctx context.Context, st stage, run Run, found bool, opt Options) (Summary, error) {
	sum := Summary{RunID: run.ID, Stage: run.Stage, Filter: run.Filter}
	parts, stored, err := s.loadParts(ctx, run)
	if err != nil {
		return sum, err
	}
	if found && (stored > 0 || run.State != Running) {
		sum.Resumed = true
		if run, _, err = s.changeRun(ctx, run.ID, func(r *Run) (bool, error) { r.Resumes++; return true, nil }); err != nil {
			return sum, err
		}
		if opt.Resumed != nil {
			opt.Resumed(viewParts(run, parts))
		}
	}
	var todo []int
	for i, p := range parts {
		if !p.ScanDone {
			todo = append(todo, i)
		}
	}
	if run.State == Running && len(todo) > 0 {
		col := &collector{sum: &sum, opt: opt}
		workers := s.workers()
		if run.Stage == StageFacilitySign {
			// One part after the other: central signing's queue gets the signatures in key
			// order, as from one cursor, and the embedded backend's drain works them in
			// send order, so that an interrupted run ends as an uninterrupted one (a person
			// signed at two facilities gets the same certificates). On AWS the parts are
			// WorkPart's, one message each, and central signing is concurrent anyway.
			workers = 1
		}
		if err := s.workParts(ctx, st, run, todo, col, workers); err != nil {
			sum.Counts = s.partCounts(ctx, run)
			return sum, err
		}
	}
	fin, n, err := s.finishParts(ctx, run.ID, true)
	sum.AuditEntries = n
	if err != nil {
		return sum, err
	}
	sum.Counts = fin.Counts
	if fin.State == Running {
		// Parts left: this call's time ran out, or another worker holds one.
		sum.Counts = s.partCounts(ctx, fin)
		return sum, nil
	}
	sum.Done = fin.Audited
	return sum, nil
}

func (s *Service) partCounts(ctx context.Context, run Run) Counts {
	parts, _, err := s.loadParts(context.WithoutCancel(ctx), run)
	if err != nil {
		return Counts{}
	}
	c, _ := sumParts(parts)
	return c
}

// workParts works the parts todo, workers at once; the first failure stops the others
// (each keeps its state: the next call goes on from there).
func (s *Service) workParts(ctx context.Context, st stage, run Run, todo []int, col *collector, workers int) error {
	return workpool.Each(ctx, workers, todo, func(ctx context.Context, i int) error {
		_, err := s.workPart(ctx, st, run, i, col, false)
		return err
	})
}

// workPart works part i of run until it is done or the call's time is up; it returns the
// part's state. countResume counts a part found with its batch interrupted as resumed
// (a worker of one part; Run counts the resumes of the whole run itself).
func (s *Service) workPart(ctx context.Context, st stage, run Run, i int, col *collector, countResume bool) (Run, error) {
	part, _, err := s.loadPart(ctx, run, i)
	if err != nil || part.ScanDone {
		return part, err
	}
	if countResume && part.InFlight != nil {
		part.Resumes++ // stored with the batch's commit
	}
	r := &runner{s: s, st: st, run: part, opt: col.opt, col: col}
	err = r.loop(ctx)
	return r.run, err
}

// stillRunning stops a part's worker when its run was abandoned or finished meanwhile.
func (r *runner) stillRunning(ctx context.Context) error {
	if r.run.PartOf == "" {
		return nil
	}
	run, err := r.s.loadRun(ctx, r.run.PartOf)
	if err != nil {
		return err
	}
	if run.State != Running {
		return fmt.Errorf("run %s: %w (%s)", run.ID, ErrRunFinished, run.State)
	}
	return nil
}

// WorkPart works part index of run runID -- the ops function's work queue sends one
// message per part -- until the part is done (Summary.Done) or the call's time is up
// (Options.StopBefore), and finishes the run when it finds every part done
// (Summary.RunDone). Summary.Counts are the part's. ErrRunFinished: the run is not
// running (finished or abandoned); vaxpass.ErrInvalid: no such part.
func (s *Service) WorkPart(ctx context.Context, runID string, index int, opt Options) (Summary, error) {
	run, err := s.loadRun(ctx, runID)
	if err != nil {
		return Summary{}, err
	}
	sum := Summary{RunID: run.ID, Stage: run.Stage, Filter: run.Filter, Part: &index}
	switch {
	case run.Parts == 0 || index < 0 || index >= run.Parts:
		return sum, fmt.Errorf("%w: run %s has no part %d (%d parts)", vaxpass.ErrInvalid, run.ID, index, run.Parts)
	case run.State != Running:
		return sum, fmt.Errorf("run %s: %w (%s)", run.ID, ErrRunFinished, run.State)
	}
	st, err := s.stageFor(run.Stage)
	if err != nil {
		return sum, err
	}
	part, err := s.workPart(ctx, st, run, index, &collector{sum: &sum, opt: opt}, true)
	sum.Resumed = part.Resumes > 0
	sum.Counts = part.Counts
	if err != nil || !part.ScanDone {
		return sum, err
	}
	sum.Done = true
	fin, n, err := s.finishParts(ctx, run.ID, false)
	sum.AuditEntries, sum.RunDone = n, fin.State == Done
	return sum, err
}
