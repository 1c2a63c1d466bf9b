package wire

import (
	"context"
	"fmt"

	"github.com/vaxpass/vaxpass/shared/stage/reprocess"
)

// ReprocessRuns is reprocessing as the ops API and the CLI start it: a run begins in the
// request, and the backend's RunStarter works on it in the background, resuming from the
// run's stored cursor.
func (s *System) ReprocessRuns() (*ReprocessRuns, error) {
	svc, err := s.Reprocessor()
	if err != nil {
		return nil, err
	}
	if s.p.Background == nil {
		return nil, fmt.Errorf("%w: Background (reprocessing runs)", ErrNoPort)
	}
	return &ReprocessRuns{svc: svc, bg: s.p.Background}, nil
}

// ReprocessRuns starts, dry-runs and reports reprocessing runs (api.ReprocessRuns).
type ReprocessRuns struct {
	svc *reprocess.Service
	bg  RunStarter
}

// Start begins the run (or finds the unfinished run of the same stage and filter) and has
// it worked on in the background.
func (r *ReprocessRuns) Start(ctx context.Context, sel reprocess.Selector) (reprocess.Run, error) {
	run, created, err := r.svc.BeginOrFind(ctx, sel)
	if err != nil {
		return run, err
	}
	if err := r.bg.StartRun(ctx, run.ID, !created); err != nil {
		return run, fmt.Errorf("start reprocessing run %s: %w", run.ID, err)
	}
	return run, nil
}

func (r *ReprocessRuns) DryRun(ctx context.Context, sel reprocess.Selector) (reprocess.Summary, error) {
	sel.DryRun = true
	return r.svc.Run(ctx, sel, reprocess.Options{})
}

func (r *ReprocessRuns) GetRun(ctx context.Context, id string) (reprocess.Run, error) {
	return r.svc.GetRun(ctx, id)
}

func (r *ReprocessRuns) ListRuns(ctx context.Context) ([]reprocess.Run, error) {
	return r.svc.ListRuns(ctx)
}
