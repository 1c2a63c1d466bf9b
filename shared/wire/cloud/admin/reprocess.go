package admin

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/vaxpass/vaxpass/shared/stage/reprocess"
	"github.com/vaxpass/vaxpass/shared/wire/cloud"
)

// Reprocessing on the stack: the ops function starts runs on its work queue, where each
// invocation works on a run until its time is nearly up and queues the rest; a killed
// invocation's message comes back after the queue's visibility timeout and the run resumes
// from its stored state. The operator starts, follows and lists runs through direct
// invokes (cloud.HandleOps).

// DryRunReprocess asks the ops function what sel would change (one invocation; nothing is
// written).
func (a *Admin) DryRunReprocess(ctx context.Context, sel reprocess.Selector) (reprocess.Summary, error) {
	sel.DryRun = true
	res, err := a.InvokeOps(ctx, cloud.OpsRequest{Action: cloud.ActionReprocess, Selector: &sel})
	if err != nil {
		return reprocess.Summary{}, err
	}
	if res.Summary == nil {
		return reprocess.Summary{}, errors.New("the ops function answered a dry run without a summary")
	}
	return *res.Summary, nil
}

// StartReprocess starts the run sel asks for on the work queue. When an unfinished run of
// the same stage and selection is under way it is returned instead (started false) and
// not queued again: two invocations must never work on one run at once. sel.Restart
// abandons such a run and starts afresh.
func (a *Admin) StartReprocess(ctx context.Context, sel reprocess.Selector) (run reprocess.Run, started bool, err error) {
	if err := sel.Normalize(); err != nil {
		return run, false, err
	}
	if sel.DryRun || sel.RunID != "" {
		return run, false, fmt.Errorf("start a run: want a stage and a selection, not a dry run or a run ID (RequeueReprocess)")
	}
	if !sel.Restart {
		runs, err := a.ReprocessRuns(ctx)
		if err != nil {
			return run, false, err
		}
		for _, r := range runs {
			if r.State == reprocess.Running && r.Stage == sel.Stage && r.Filter.String() == sel.Filter.String() {
				return r, false, nil
			}
		}
	}
	run, err = a.queue(ctx, sel)
	return run, err == nil, err
}

// RequeueReprocess queues run id's work again: for a run whose work message was lost (it
// went to the work queue's dead letters), never for one an invocation works on.
func (a *Admin) RequeueReprocess(ctx context.Context, id string) (reprocess.Run, error) {
	res, err := a.InvokeOps(ctx, cloud.OpsRequest{Action: cloud.ActionReprocessRequeue, RunID: id})
	if err != nil {
		return reprocess.Run{}, err
	}
	if res.Run == nil {
		return reprocess.Run{}, errors.New("the ops function answered without a run")
	}
	return *res.Run, nil
}

func (a *Admin) queue(ctx context.Context, sel reprocess.Selector) (reprocess.Run, error) {
	res, err := a.InvokeOps(ctx, cloud.OpsRequest{Action: cloud.ActionReprocess, Selector: &sel})
	if err != nil {
		return reprocess.Run{}, err
	}
	if res.Run == nil {
		return reprocess.Run{}, errors.New("the ops function answered without a run")
	}
	return *res.Run, nil
}

// ReprocessStatus is where run id is.
func (a *Admin) ReprocessStatus(ctx context.Context, id string) (reprocess.Run, error) {
	res, err := a.InvokeOps(ctx, cloud.OpsRequest{Action: cloud.ActionReprocessStatus, RunID: id})
	if err != nil {
		return reprocess.Run{}, err
	}
	if res.Run == nil {
		return reprocess.Run{}, errors.New("the ops function answered without a run")
	}
	return *res.Run, nil
}

// ReprocessRuns lists the stack's runs.
func (a *Admin) ReprocessRuns(ctx context.Context) ([]reprocess.Run, error) {
	res, err := a.InvokeOps(ctx, cloud.OpsRequest{Action: cloud.ActionReprocessRuns})
	return res.Runs, err
}

// FollowFailures is how many state reads in a row may fail before FollowRun gives up
// (the ops function may be briefly unavailable: a cold start, a killed instance).
const FollowFailures = 10

// Finished reports whether a run is over: done or abandoned, its audit entries written.
func Finished(run reprocess.Run) bool {
	return run.State != reprocess.Running && run.Audited
}

// FollowRun reads run's state every poll until it is Finished, handing each read to seen
// (a failed read with its error; FollowFailures in a row end the wait). It returns the
// last state read; ctx ending stops the wait, not the run.
func (a *Admin) FollowRun(ctx context.Context, run reprocess.Run, poll time.Duration, seen func(reprocess.Run, error)) (reprocess.Run, error) {
	failures := 0
	for !Finished(run) {
		select {
		case <-ctx.Done():
			return run, ctx.Err()
		case <-time.After(poll):
		}
		next, err := a.ReprocessStatus(ctx, run.ID)
		if err != nil {
			if ctx.Err() != nil {
				return run, ctx.Err()
			}
			if failures++; failures >= FollowFailures {
				return run, fmt.Errorf("run %s: reading its state failed %d times in a row: %w", run.ID, failures, err)
			}
			if seen != nil {
				seen(run, err)
			}
			continue
		}
		failures = 0
		run = next
		if seen != nil {
			seen(run, nil)
		}
	}
	return run, nil
}
