package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/vaxpass/vaxpass/shared/stage/reprocess"
	"github.com/vaxpass/vaxpass/shared/tool/progress"
	"github.com/vaxpass/vaxpass/shared/vaxpass"
	"github.com/vaxpass/vaxpass/shared/wire/cloud"
	"github.com/vaxpass/vaxpass/shared/wire/cloud/admin"
)

// awsFollow tunes how a run on the stack is followed.
type awsFollow struct {
	poll    time.Duration
	requeue bool
}

// Following a run on the stack: the state is read through the ops function, which may
// itself be briefly unavailable (a cold start, a killed instance); these bound the wait.
const (
	followFailures = 10
	// followStale is how long a running run may show no progress before the command
	// says how to requeue it (more than the ops function's 15 minutes).
	followStale = 20 * time.Minute
)

// reprocessAWS runs each selector on the stack, one after another.
func reprocessAWS(ctx context.Context, e env, a *admin.Admin, sels []reprocess.Selector, f awsFollow) int {
	exit := 0
	for _, sel := range sels {
		var code int
		switch {
		case sel.DryRun:
			code = reprocessAWSDryRun(ctx, e, a, sel)
		default:
			code = reprocessAWSRun(ctx, e, a, sel, f)
		}
		if code != 0 {
			exit = code
			if ctx.Err() != nil || code == 2 {
				break
			}
		}
	}
	return exit
}

// reprocessAWSDryRun is one invocation: the ops function decides as a run would and
// writes nothing.
func reprocessAWSDryRun(ctx context.Context, e env, a *admin.Admin, sel reprocess.Selector) int {
	fmt.Fprintf(e.stderr, "reprocess %s (dry run): %s: asking the ops function of stack %q\n", sel.Stage, sel.Filter, a.Name)
	res, err := a.InvokeOps(ctx, cloud.OpsRequest{Action: cloud.ActionReprocess, Selector: &sel})
	if err != nil {
		return reprocessAWSError(e, err)
	}
	if res.Summary == nil {
		fmt.Fprintln(e.stderr, "reprocess: the ops function answered without a summary")
		return 1
	}
	sum := *res.Summary
	for _, ch := range sum.Changed {
		fmt.Fprintf(e.stdout, "%s\t%s\n", ch.ID, ch.Outcome)
	}
	io.WriteString(e.stderr, describeSummary(sum))
	if sum.Truncated {
		fmt.Fprintf(e.stderr, "  only the first %d changes are listed\n", len(sum.Changed))
	}
	if sum.Counts.Failed > 0 {
		return 1
	}
	return 0
}

// reprocessAWSRun starts the run on the ops function's work queue (or finds the one
// already under way) and follows it until it is done.
func reprocessAWSRun(ctx context.Context, e env, a *admin.Admin, sel reprocess.Selector, f awsFollow) int {
	var run reprocess.Run
	switch {
	case sel.RunID != "" && !f.requeue:
		res, err := a.InvokeOps(ctx, cloud.OpsRequest{Action: cloud.ActionReprocessStatus, RunID: sel.RunID})
		if err != nil {
			return reprocessAWSError(e, err)
		}
		run = *res.Run
		fmt.Fprintf(e.stderr, "reprocess: following run %s (%s %s)\n", run.ID, run.Stage, run.Filter)
	default:
		if sel.RunID == "" && !sel.Restart {
			// Starting the same selection again would queue a second worker on the
			// run under way (the ops function resumes the unfinished run of a
			// selection): follow that run instead.
			res, err := a.InvokeOps(ctx, cloud.OpsRequest{Action: cloud.ActionReprocessRuns})
			if err != nil {
				return reprocessAWSError(e, err)
			}
			for _, r := range res.Runs {
				if r.State == reprocess.Running && r.Stage == sel.Stage && r.Filter.String() == sel.Filter.String() {
					run = r
				}
			}
		}
		if run.ID != "" {
			fmt.Fprintf(e.stderr, "reprocess: run %s of this selection is under way (started %s): following it\n",
				run.ID, run.StartedAt.Format(time.RFC3339))
			break
		}
		res, err := a.InvokeOps(ctx, cloud.OpsRequest{Action: cloud.ActionReprocess, Selector: &sel})
		if err != nil {
			return reprocessAWSError(e, err)
		}
		if res.Run == nil {
			fmt.Fprintln(e.stderr, "reprocess: the ops function answered without a run")
			return 1
		}
		run = *res.Run
		verb := "started"
		if sel.RunID != "" {
			verb = "queued again"
		}
		fmt.Fprintf(e.stderr, "reprocess: run %s %s on stack %q (%s %s): %d doses to scan\n", run.ID, verb, a.Name, run.Stage, run.Filter, run.Total)
	}
	run, err := followRun(ctx, e, a, run, f.poll)
	sum := reprocess.Summary{RunID: run.ID, Stage: run.Stage, Filter: run.Filter, Done: run.State == reprocess.Done,
		Resumed: run.Resumes > 0, Counts: run.Counts}
	if err != nil {
		if ctx.Err() != nil {
			fmt.Fprintf(e.stderr, "reprocess: stopped following run %s; it goes on in the stack: vaxpass reprocess --run-id %s --backend aws --stack %s\n",
				run.ID, run.ID, a.Name)
			return 1
		}
		fmt.Fprintf(e.stderr, "reprocess: run %s: %v\n", run.ID, err)
		return 1
	}
	io.WriteString(e.stderr, describeSummary(sum))
	if run.Resumes > 0 {
		fmt.Fprintf(e.stderr, "  resumed %d time(s) after an interruption\n", run.Resumes)
	}
	if err := json.NewEncoder(e.stdout).Encode(sum); err != nil {
		fmt.Fprintf(e.stderr, "reprocess: write summary: %v\n", err)
		return 1
	}
	switch {
	case run.State == reprocess.Abandoned:
		fmt.Fprintf(e.stderr, "reprocess: run %s was abandoned (a --restart of its selection)\n", run.ID)
		return 1
	case run.Counts.Failed > 0:
		fmt.Fprintf(e.stderr, "reprocess: %d failed; see `vaxpass audit --action reprocess`\n", run.Counts.Failed)
		return 1
	}
	return 0
}

// followRun reads the run's state every poll until it is finished and audited, showing
// progress. A line on stderr tells each change of state that matters: a batch under way,
// a resumption after an interruption, the end.
func followRun(ctx context.Context, e env, a *admin.Admin, run reprocess.Run, poll time.Duration) (reprocess.Run, error) {
	// Plain lines (not a terminal) every 30 s: a run may take hours.
	bar := progress.New(e.stderr, progress.Options{Label: "doses", Total: max(run.Total, 0), Terminal: e.isTerminal, PlainEvery: 30 * time.Second})
	defer bar.Done()
	bar.Add(run.Counts.Scanned)
	shown := run.Counts.Scanned
	resumes := run.Resumes
	inFlight := false
	failures := 0
	lastChange, lastScanned := time.Now(), run.Counts.Scanned
	staleSaid := false
	for {
		if finished(run) {
			return run, nil
		}
		select {
		case <-ctx.Done():
			return run, ctx.Err()
		case <-time.After(poll):
		}
		res, err := a.InvokeOps(ctx, cloud.OpsRequest{Action: cloud.ActionReprocessStatus, RunID: run.ID})
		if err != nil || res.Run == nil {
			if ctx.Err() != nil {
				return run, ctx.Err()
			}
			if failures++; failures >= followFailures {
				return run, fmt.Errorf("reading its state failed %d times in a row: %w", failures, err)
			}
			fmt.Fprintf(e.stderr, "reprocess: run %s: reading its state: %v (trying again)\n", run.ID, err)
			continue
		}
		failures = 0
		run = *res.Run
		if d := run.Counts.Scanned - shown; d > 0 {
			bar.Add(d)
			shown = run.Counts.Scanned
		}
		if run.Resumes > resumes {
			resumes = run.Resumes
			fmt.Fprintf(e.stderr, "reprocess: run %s resumed after an interruption (%d of %d doses scanned, %d changed before it)\n",
				run.ID, run.Counts.Scanned, run.Total, run.Counts.Changed)
		}
		if now := run.InFlight != nil; now != inFlight {
			inFlight = now
			if now {
				fmt.Fprintf(e.stderr, "reprocess: run %s: batch under way (%d of %d doses scanned)\n", run.ID, run.Counts.Scanned, run.Total)
			}
		}
		if run.Counts.Scanned != lastScanned || run.InFlight != nil {
			lastChange, lastScanned, staleSaid = time.Now(), run.Counts.Scanned, false
		} else if !staleSaid && time.Since(lastChange) > followStale {
			staleSaid = true
			fmt.Fprintf(e.stderr, "reprocess: run %s: no progress for %s; if its work message was lost (the work queue's dead letters), queue it again: vaxpass reprocess --run-id %s --requeue --backend aws --stack %s\n",
				run.ID, followStale, run.ID, a.Name)
		}
	}
}

// finished: done (or abandoned) and its audit entries written.
func finished(run reprocess.Run) bool {
	return run.State != reprocess.Running && run.Audited
}

func reprocessAWSError(e env, err error) int {
	fmt.Fprintf(e.stderr, "reprocess: %v\n", err)
	var fe *admin.FunctionError
	if errors.As(err, &fe) && (strings.Contains(fe.Message, cloud.ErrOpsRequest.Error()) ||
		strings.Contains(fe.Message, vaxpass.ErrInvalid.Error()) || strings.Contains(fe.Message, reprocess.ErrRunFinished.Error())) {
		return 2
	}
	return 1
}
