package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"time"

	"github.com/vaxpass/vaxpass/shared/stage/renewal"
	"github.com/vaxpass/vaxpass/shared/tool/progress"
	"github.com/vaxpass/vaxpass/shared/wire/cloud"
	"github.com/vaxpass/vaxpass/shared/wire/local"
)

func init() {
	register("renew", "re-sign every certificate expiring within a window (same UVCI, new expiry)", runRenew)
}

// runRenew is `vaxpass renew [--within 30d] [--rate N] [--data DIR]`.
func runRenew(ctx context.Context, e env, args []string) int {
	fs := flag.NewFlagSet("renew", flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	var g globalFlags
	g.register(fs)
	within := fs.String("within", renewal.FormatWindow(renewal.DefaultWindow), "renew certificates expiring within this window: days (30d, 400d) or a Go duration (720h)")
	rate := fs.Float64("rate", local.DefaultRenewRate, "signing budget: at most this many signatures per second")
	// --pace is for tests and demonstrations: it slows the run down to one signature per
	// pace (overrides --rate), so an interruption lands mid-run. Left out of the usage.
	pace := fs.Duration("pace", 0, "")
	actorName := actorFlag(fs)
	fs.Usage = func() {
		fmt.Fprintf(e.stderr, "usage: vaxpass renew [--within 30d] [--rate N] [--actor NAME] [--data DIR]\n"+
			"       vaxpass renew [--within 30d] [--actor NAME] --backend aws --stack NAME\n\n"+
			"Re-signs every issued certificate expiring within the window: the same DCC (same\n"+
			"UVCI, same names) with a new issue date and expiry. Resumable: a run that was\n"+
			"interrupted is finished by the next call, and no certificate is renewed twice by one\n"+
			"run (a run renews only certificates issued before the second it started in: one\n"+
			"issued in that second could not get a later expiry). Progress goes to stderr, a\n"+
			"JSON summary to stdout. Exit 0 when every certificate looked at was renewed or\n"+
			"rightly skipped, 1 otherwise.\n\n"+
			"The server (vaxpass serve) holds the database and renews daily by itself: stop it\n"+
			"before running this on the same data directory. With --backend aws the stack's\n"+
			"renewal function starts the run and its queue fans the run's slices out to the\n"+
			"function's workers (at the stack's KmsSignsPerSecond, less what interactive signing takes); the command follows\n"+
			"the run until every slice is done (interrupting it leaves the run going on).\n\n")
		fs.VisitAll(func(f *flag.Flag) {
			if f.Name != "pace" {
				fmt.Fprintf(e.stderr, "  --%s\n    \t%s (default %q)\n", f.Name, f.Usage, f.DefValue)
			}
		})
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	usageErr := func(format string, a ...any) int {
		fmt.Fprintf(e.stderr, "renew: "+format+"\n", a...)
		return 2
	}
	if fs.NArg() > 0 {
		return usageErr("unexpected argument %q", fs.Arg(0))
	}
	if err := g.check(); err != nil {
		return usageErr("%v", err)
	}
	window, err := renewal.ParseWindow(*within)
	if err != nil {
		return usageErr("--within: %v", err)
	}
	actor, err := cliActor(*actorName)
	if err != nil {
		return usageErr("%v", err)
	}
	if g.backend == backendAWS {
		explicit := false
		fs.Visit(func(f *flag.Flag) { explicit = explicit || f.Name == "rate" || f.Name == "pace" })
		if explicit {
			return usageErr("--rate and --pace are the embedded backend's: the stack's renewal function signs at its KmsSignsPerSecond parameter")
		}
		return renewAWS(ctx, e, g, actor, window)
	}
	switch {
	case *pace < 0:
		return usageErr("--pace must not be negative")
	case *pace > 0:
		*rate = float64(time.Second) / float64(*pace)
	case !(*rate > 0):
		return usageErr("--rate must be positive")
	}

	sys, code := openSystem(ctx, e, "renew", g)
	if sys == nil {
		return code
	}
	defer sys.Close()

	var bar *progress.Reporter
	svc, err := sys.Local.Ops.Renewal(*rate, func(n int64) {
		if bar != nil {
			bar.Add(n)
		}
	})
	if err != nil {
		fmt.Fprintf(e.stderr, "renew: %v\n", err)
		return 1
	}
	svc.OnRun = func(ctx context.Context, run renewal.Run, resumed bool) {
		if bar != nil {
			bar.Done()
		}
		total, err := svc.Remaining(ctx, run)
		if err != nil {
			total = 0 // no total: the bar shows count and rate only
		}
		if resumed {
			fmt.Fprintf(e.stderr, "renew: resuming run %s (window %s, %d renewed before the interruption)\n",
				run.ID, renewal.FormatWindow(run.Window), run.Counts.Renewed)
		}
		bar = progress.New(e.stderr, progress.Options{Label: "certificates", Total: total, Terminal: e.isTerminal})
	}
	sum, err := svc.Run(ctx, actor, window)
	if bar != nil {
		bar.Done()
	}
	return renewReport(e, sum, err)
}

// renewAWS starts the run in the stack's renewal function (or joins the unfinished one),
// whose slices the renewal queue fans out to its workers, and follows it in the ops
// table until every slice is done. A joined run of another window is followed to its
// end first, then the run asked for starts (Summary.Previous), as on the embedded backend.
func renewAWS(ctx context.Context, e env, g globalFlags, actor string, window time.Duration) int {
	sys, code := openSystem(ctx, e, "renew", g)
	if sys == nil {
		return code
	}
	defer sys.Close()
	svc, err := sys.Admin.Stack.Renewal(ctx)
	if err != nil {
		fmt.Fprintf(e.stderr, "renew: %v\n", err)
		return 1
	}
	fmt.Fprintf(e.stderr, "renew: the renewal function of stack %q renews certificates expiring within %s, its slices fanned out by the renewal queue\n",
		g.stack, renewal.FormatWindow(window))
	var prev *renewal.Summary
	for {
		start := time.Now()
		sum, err := sys.Admin.Renew(ctx, cloud.RenewalRequest{Action: cloud.ActionRenew, Window: renewal.FormatWindow(window), Actor: actor, Detach: true})
		if err != nil {
			sum.Previous = prev
			return renewReport(e, sum, err)
		}
		if sum.Resumed {
			fmt.Fprintf(e.stderr, "renew: following the unfinished run %s (window %s, %d renewed so far)\n", sum.RunID, sum.Window, sum.Counts.Renewed)
		} else {
			fmt.Fprintf(e.stderr, "renew: run %s started in %d slices\n", sum.RunID, sum.Slices)
		}
		sum, err = followRenewal(ctx, e, svc, sum)
		resumed := sum.Resumed
		sum.Previous = prev
		if err == nil {
			el := time.Since(start)
			fmt.Fprintf(e.stderr, "renew: run %s: %d renewed in %s (%.1f/s)\n", sum.RunID, sum.Counts.Renewed, el.Round(time.Millisecond),
				float64(sum.Counts.Renewed)/max(el.Seconds(), 1e-3))
		}
		if err != nil || !resumed || sum.Window == renewal.FormatWindow(window) || prev != nil {
			return renewReport(e, sum, err)
		}
		p := sum
		prev = &p
	}
}

// renewPoll is how often `renew --backend aws` reads its run's state.
const renewPoll = time.Second

// followRenewal reads the run's state until it is finished, showing its progress.
func followRenewal(ctx context.Context, e env, svc *renewal.Service, start renewal.Summary) (sum renewal.Summary, err error) {
	sum = start
	bar := progress.New(e.stderr, progress.Options{Label: "certificates", Terminal: e.isTerminal})
	defer bar.Done()
	seen := sum.Counts.Total()
	bar.Add(seen)
	resumed := sum.Resumed
	defer func() { sum.Resumed = resumed }()
	for sum.FinishedAt.IsZero() {
		t := time.NewTimer(renewPoll)
		select {
		case <-ctx.Done():
			t.Stop()
			return sum, fmt.Errorf("renewal run %s: %d of %d slices done: %w (it goes on in the stack)", sum.RunID, sum.SlicesDone, sum.Slices, ctx.Err())
		case <-t.C:
		}
		next, err := svc.Status(ctx, sum.RunID)
		if err != nil {
			return sum, err
		}
		bar.Add(next.Counts.Total() - seen)
		seen = next.Counts.Total()
		sum = next
	}
	return sum, nil
}

// renewReport prints the run's summary and answers the exit code.
func renewReport(e env, sum renewal.Summary, err error) int {
	enc := json.NewEncoder(e.stdout)
	enc.SetIndent("", "  ")
	if encErr := enc.Encode(sum); encErr != nil {
		fmt.Fprintf(e.stderr, "renew: write summary: %v\n", encErr)
		return 1
	}
	if err != nil {
		fmt.Fprintf(e.stderr, "renew: %v (run it again to resume)\n", err)
		return 1
	}
	if sum.Counts.Failed > 0 || sum.Counts.Conflicts > 0 {
		fmt.Fprintf(e.stderr, "renew: %d certificates failed and %d kept changing; see `vaxpass audit --action renewal`\n", sum.Counts.Failed, sum.Counts.Conflicts)
		return 1
	}
	return 0
}
