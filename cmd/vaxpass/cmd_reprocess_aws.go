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

// followStale is how long a running run may show no progress before the command says how
// to requeue it (more than the ops function's 15 minutes).
const followStale = 20 * time.Minute

// reprocessAWS runs each selector on the stack, one after another.
func reprocessAWS(ctx context.Context, e env, a *admin.Admin, sels []reprocess.Selector, f awsFollow) int {
	exit := 0
	for _, sel := range sels {
		code := 0
		if sel.DryRun {
			code = reprocessAWSDryRun(ctx, e, a, sel)
		} else {
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

// reprocessAWSDryRun prints what the ops function says sel would change.
func reprocessAWSDryRun(ctx context.Context, e env, a *admin.Admin, sel reprocess.Selector) int {
	fmt.Fprintf(e.stderr, "reprocess %s (dry run): %s: asking the ops function of stack %q\n", sel.Stage, sel.Filter, a.Name)
	sum, err := a.DryRunReprocess(ctx, sel)
	if err != nil {
		return reprocessAWSError(e, err)
	}
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

// reprocessAWSRun starts the run (or finds the one under way, or takes --run-id's) and
// follows it until it is done.
func reprocessAWSRun(ctx context.Context, e env, a *admin.Admin, sel reprocess.Selector, f awsFollow) int {
	var run reprocess.Run
	var err error
	switch {
	case sel.RunID != "" && f.requeue:
		if run, err = a.RequeueReprocess(ctx, sel.RunID); err != nil {
			return reprocessAWSError(e, err)
		}
		fmt.Fprintf(e.stderr, "reprocess: run %s queued again (%s %s)\n", run.ID, run.Stage, run.Filter)
	case sel.RunID != "":
		if run, err = a.ReprocessStatus(ctx, sel.RunID); err != nil {
			return reprocessAWSError(e, err)
		}
		fmt.Fprintf(e.stderr, "reprocess: following run %s (%s %s)\n", run.ID, run.Stage, run.Filter)
	default:
		var started bool
		if run, started, err = a.StartReprocess(ctx, sel); err != nil {
			return reprocessAWSError(e, err)
		}
		if started {
			fmt.Fprintf(e.stderr, "reprocess: run %s started on stack %q (%s %s): %d doses to scan\n", run.ID, a.Name, run.Stage, run.Filter, run.Total)
		} else {
			fmt.Fprintf(e.stderr, "reprocess: run %s of this selection is under way (started %s): following it\n", run.ID, run.StartedAt.Format(time.RFC3339))
		}
	}

	// Plain lines (not a terminal) every 30 s: a run may take hours.
	bar := progress.New(e.stderr, progress.Options{Label: "doses", Total: max(run.Total, 0), Terminal: e.isTerminal, PlainEvery: 30 * time.Second})
	bar.Add(run.Counts.Scanned)
	shown, resumes, inFlight := run.Counts.Scanned, run.Resumes, false
	lastChange, staleSaid := time.Now(), false
	run, err = a.FollowRun(ctx, run, f.poll, func(r reprocess.Run, err error) {
		if err != nil {
			fmt.Fprintf(e.stderr, "reprocess: run %s: reading its state: %v (trying again)\n", r.ID, err)
			return
		}
		if d := r.Counts.Scanned - shown; d > 0 {
			bar.Add(d)
			shown, lastChange, staleSaid = r.Counts.Scanned, time.Now(), false
		}
		if r.Resumes > resumes {
			resumes = r.Resumes
			fmt.Fprintf(e.stderr, "reprocess: run %s resumed after an interruption (%d of %d doses scanned, %d changed before it)\n",
				r.ID, r.Counts.Scanned, r.Total, r.Counts.Changed)
		}
		if now := r.InFlight != nil; now != inFlight {
			inFlight, lastChange = now, time.Now()
			if now {
				fmt.Fprintf(e.stderr, "reprocess: run %s: batch under way (%d of %d doses scanned)\n", r.ID, r.Counts.Scanned, r.Total)
			}
		}
		if !staleSaid && time.Since(lastChange) > followStale {
			staleSaid = true
			fmt.Fprintf(e.stderr, "reprocess: run %s: no progress for %s; if its work message was lost (the work queue's dead letters), queue it again: vaxpass reprocess --run-id %s --requeue --backend aws --stack %s\n",
				r.ID, followStale, r.ID, a.Name)
		}
	})
	bar.Done()
	if err != nil {
		if ctx.Err() != nil {
			fmt.Fprintf(e.stderr, "reprocess: stopped following run %s; it goes on in the stack: vaxpass reprocess --run-id %s --backend aws --stack %s\n",
				run.ID, run.ID, a.Name)
		} else {
			fmt.Fprintf(e.stderr, "reprocess: %v\n", err)
		}
		return 1
	}
	sum := reprocess.Summary{RunID: run.ID, Stage: run.Stage, Filter: run.Filter, Done: run.State == reprocess.Done,
		Resumed: run.Resumes > 0, Counts: run.Counts}
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

// reprocessAWSError reports err; what the ops function refused as a bad request is a
// usage error (2).
func reprocessAWSError(e env, err error) int {
	fmt.Fprintf(e.stderr, "reprocess: %v\n", err)
	var fe *admin.FunctionError
	if errors.Is(err, vaxpass.ErrInvalid) || errors.As(err, &fe) && (strings.Contains(fe.Message, cloud.ErrOpsRequest.Error()) ||
		strings.Contains(fe.Message, vaxpass.ErrInvalid.Error()) || strings.Contains(fe.Message, reprocess.ErrRunFinished.Error())) {
		return 2
	}
	return 1
}
