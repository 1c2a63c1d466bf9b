package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/vaxpass/vaxpass/shared/domain/match"
	"github.com/vaxpass/vaxpass/shared/stage/reprocess"
	"github.com/vaxpass/vaxpass/shared/tool/progress"
	"github.com/vaxpass/vaxpass/shared/vaxpass"
	"github.com/vaxpass/vaxpass/shared/wire/local"
)

func init() {
	register("reprocess", "run a pipeline stage again for selected records (match, facility-sign, central-sign)", runReprocess)
}

// listFlag is a comma-separated flag that may also be repeated.
type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, ",") }

func (l *listFlag) Set(v string) error {
	for _, p := range strings.Split(v, ",") {
		if p = strings.TrimSpace(p); p != "" {
			*l = append(*l, p)
		}
	}
	return nil
}

const reprocessUsage = `usage: vaxpass reprocess --stage STAGE[,STAGE...] [selection] [--dry-run] [--reason TEXT] [--actor NAME] [--data DIR]
       vaxpass reprocess --run-id RUN [--data DIR]
       vaxpass reprocess list [--data DIR]
       (each also with --backend aws --stack NAME instead of --data DIR)

Runs a pipeline stage again for the dose records the selection picks:
  match          match the records against the registry again; write where the result differs
  facility-sign  sign, per facility, the verified and fully vaccinated people whose doses are
                 unsigned or whose stored facility signature no longer covers them, send them to
                 central signing, and (embedded backend) process central signing's queue
  central-sign   issue again each selected person's certificate from the stored facility
                 signatures (nothing happens when its content is unchanged)
Stages given together run in the order given, each as its own run.

Selection (lists are comma separated; flags combine with AND):
  --status S     match status: PENDING VERIFIED NO_ID INVALID_ID NOT_FOUND MISMATCH
  --facility F   facility ID
  --commune C    commune code
  --from DAY --to DAY   days YYYY-MM-DD, both included, of --date (default vaccinated_on:
                 the day the dose was given; received_at: the day the record arrived, Viet Nam time)

A run is idempotent (running it again changes nothing) and resumable: interrupted (Ctrl-C, a
crash, SIGKILL), the same command continues it where it stopped, and counts each change once.
--dry-run writes nothing and prints, on stdout, one line "facility_id/source_id<TAB>outcome"
per record that would change. Otherwise stdout gets one JSON summary per stage, and each
finished run is appended to the audit trail (vaxpass audit --action reprocess).
Progress goes to stderr. Exit 0 when done with no failed record, 1 otherwise, 2 for usage errors.

The server (vaxpass serve) holds the database: stop it first, or use POST /v1/ops/reprocess.

With --backend aws the stack's ops function does the work: a dry run is one invocation
(its summary lists up to 1,000 changes); a run is started on the ops function's work queue
and followed here (--poll) until it is done. The run does not depend on this command: it
goes on if the command is interrupted (follow it again with --run-id RUN), and an
invocation killed in the middle comes back from the work queue and resumes it. A run of the
same selection already under way is followed rather than started twice. --requeue (with
--run-id) queues a run whose work message was lost (the work queue's dead letters):
only then, since two invocations must never work on one run at once.

flags:
`

func runReprocess(ctx context.Context, e env, args []string) int {
	if len(args) > 0 && args[0] == "list" {
		return runReprocessList(ctx, e, args[1:])
	}
	fs := flag.NewFlagSet("reprocess", flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	var g globalFlags
	g.register(fs)
	var stages, statuses, facilities, communes listFlag
	fs.Var(&stages, "stage", "stage(s) to run: match, facility-sign, central-sign (required)")
	fs.Var(&statuses, "status", "select records in these match statuses")
	fs.Var(&facilities, "facility", "select records of these facilities")
	fs.Var(&communes, "commune", "select records of these communes")
	from := fs.String("from", "", "first day (YYYY-MM-DD) of --date")
	to := fs.String("to", "", "last day (YYYY-MM-DD) of --date")
	dateField := fs.String("date", string(reprocess.VaccinatedOn), "what --from/--to bound: vaccinated_on or received_at")
	dryRun := fs.Bool("dry-run", false, "print what would change; write nothing")
	reason := fs.String("reason", "", "why (kept in the audit trail; no personal data)")
	runID := fs.String("run-id", "", "continue (--backend aws: follow) this run (see `vaxpass reprocess list`)")
	fs.StringVar(runID, "run", "", "the same as --run-id")
	actorName := actorFlag(fs)
	poll := fs.Duration("poll", 2*time.Second, "--backend aws: how often the run's state is read")
	requeue := fs.Bool("requeue", false, "--backend aws, with --run-id: queue the run's work again (its work message was lost)")
	restart := fs.Bool("restart", false, "abandon an unfinished run of the same selection and start afresh")
	batch := fs.Int("batch", 500, "records scanned per batch (one committed step)")
	noDrain := fs.Bool("no-drain", false, "after facility-sign, leave central signing's queue to the server")
	// --pace is for tests and demonstrations: a pause after every batch, so that an
	// interruption lands mid-run. Left out of the usage.
	pace := fs.Duration("pace", 0, "")
	fs.Usage = func() {
		io.WriteString(e.stderr, reprocessUsage)
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
		fmt.Fprintf(e.stderr, "reprocess: "+format+"\n", a...)
		return 2
	}
	if err := g.check(); err != nil {
		return usageErr("%v", err)
	}
	actor, err := cliActor(*actorName)
	if err != nil {
		return usageErr("%v", err)
	}
	embeddedOnly, awsOnly := "", ""
	fs.Visit(func(f *flag.Flag) {
		switch f.Name {
		case "batch", "no-drain", "pace":
			embeddedOnly = f.Name
		case "poll", "requeue":
			awsOnly = f.Name
		}
	})
	switch {
	case fs.NArg() > 0:
		return usageErr("unexpected argument %q", fs.Arg(0))
	case g.backend == backendAWS && embeddedOnly != "":
		return usageErr("--%s is the embedded backend's (on AWS the ops function batches and central signing follows by itself)", embeddedOnly)
	case g.backend != backendAWS && awsOnly != "":
		return usageErr("--%s is for --backend aws", awsOnly)
	case *requeue && *runID == "":
		return usageErr("--requeue needs --run-id")
	case *poll < 100*time.Millisecond:
		return usageErr("--poll must be at least 100ms")
	case len(stages) == 0 && *runID == "":
		return usageErr("--stage is required (match, facility-sign, central-sign)")
	case *runID != "" && len(stages) > 1:
		return usageErr("--run-id continues one run: give at most one --stage")
	case *batch < 1 || *batch > 10_000:
		return usageErr("--batch must be 1..10000")
	case *pace < 0:
		return usageErr("--pace must not be negative")
	case *dryRun && *runID != "":
		return usageErr("--dry-run does not continue a run: drop --run-id")
	}
	base := reprocess.Selector{
		Filter: reprocess.Filter{Facilities: facilities, Communes: communes, DateField: reprocess.DateField(*dateField), From: *from, To: *to},
		DryRun: *dryRun, Reason: *reason, RunID: *runID, Restart: *restart, Actor: actor,
	}
	for _, s := range statuses {
		base.Statuses = append(base.Statuses, match.Status(s))
	}
	if len(stages) == 0 {
		stages = listFlag{""}
	}
	sels := make([]reprocess.Selector, len(stages))
	for i, st := range stages {
		sel := base
		sel.Filter.Statuses = append([]match.Status(nil), base.Statuses...)
		sel.Filter.Facilities = append([]string(nil), base.Facilities...)
		sel.Filter.Communes = append([]string(nil), base.Communes...)
		sel.Stage = reprocess.Stage(st)
		if err := sel.Normalize(); err != nil {
			return usageErr("%v", err)
		}
		sels[i] = sel
	}

	sys, code := openSystem(ctx, e, "reprocess", g)
	if sys == nil {
		return code
	}
	defer sys.Close()
	if sys.Admin != nil {
		return reprocessAWS(ctx, e, sys.Admin, sels, awsFollow{poll: *poll, requeue: *requeue})
	}
	svc := sys.Local.NewReprocessor(sys.Local.Ops.AuditAppender())
	svc.BatchSize = *batch
	svc.Pace = *pace

	exit := 0
	for _, sel := range sels {
		code := reprocessOne(ctx, e, sys.Local, svc, sel, !*noDrain)
		if code != 0 {
			exit = code
			if ctx.Err() != nil || code == 2 {
				break
			}
		}
	}
	return exit
}

// reprocessOne runs one stage and reports it.
func reprocessOne(ctx context.Context, e env, sys *local.Local, svc *reprocess.Service, sel reprocess.Selector, drain bool) int {
	total, done, err := svc.Plan(ctx, sel)
	if err != nil {
		fmt.Fprintf(e.stderr, "reprocess: %v\n", err)
		if errors.Is(err, vaxpass.ErrInvalid) || errors.Is(err, reprocess.ErrRunFinished) {
			return 2
		}
		return 1
	}
	label := "doses"
	stageName := string(sel.Stage)
	if stageName == "" {
		stageName = "run " + sel.RunID
	}
	what := "reprocess " + stageName
	if sel.DryRun {
		what += " (dry run)"
	}
	fmt.Fprintf(e.stderr, "%s: %s: %d doses to scan\n", what, sel.Filter, total-done)
	bar := progress.New(e.stderr, progress.Options{Label: label, Total: max(total-done, 0), Terminal: e.isTerminal})
	opt := reprocess.Options{
		Progress: bar,
		Resumed: func(run reprocess.Run) {
			fmt.Fprintf(e.stderr, "reprocess: resuming run %s (%s %s): %d of %d doses scanned, %d changed before the interruption\n",
				run.ID, run.Stage, run.Filter, run.Counts.Scanned, run.Total, run.Counts.Changed)
		},
	}
	if sel.DryRun {
		opt.OnChange = func(ch reprocess.Change) {
			fmt.Fprintf(e.stdout, "%s\t%s\n", ch.ID, ch.Outcome)
		}
	}
	signing := !sel.DryRun && drain && (sel.Stage == reprocess.StageFacilitySign || sel.RunID != "")
	if signing {
		// Signatures an interrupted run (or drain) left in the queue are handled first, one
		// at a time in send order, so that this run finds them stored rather than signing
		// those people again.
		if err := sys.DrainCentralQueue(ctx); err != nil {
			bar.Done()
			fmt.Fprintf(e.stderr, "reprocess: central signing's queue: %v\n", err)
			return 1
		}
	}
	sum, err := svc.Run(ctx, sel, opt)
	bar.Done()
	if err == nil && signing && sum.Stage == reprocess.StageFacilitySign {
		fmt.Fprintln(e.stderr, "reprocess: processing central signing's queue")
		err = sys.DrainCentralQueue(ctx)
	}
	io.WriteString(e.stderr, describeSummary(sum))
	if !sel.DryRun {
		enc := json.NewEncoder(e.stdout)
		if encErr := enc.Encode(sum); encErr != nil {
			fmt.Fprintf(e.stderr, "reprocess: write summary: %v\n", encErr)
			return 1
		}
	}
	switch {
	case err != nil && ctx.Err() != nil:
		fmt.Fprintf(e.stderr, "reprocess: interrupted; run %s keeps its place: run the same command again to finish it\n", sum.RunID)
		return 1
	case err != nil:
		fmt.Fprintf(e.stderr, "reprocess: %v\n", err)
		if sum.RunID != "" {
			fmt.Fprintf(e.stderr, "reprocess: run %s keeps its place: run the same command again once the cause is fixed\n", sum.RunID)
		}
		return 1
	case sum.Counts.Failed > 0:
		for _, f := range sum.Failures[:min(len(sum.Failures), 10)] {
			fmt.Fprintf(e.stderr, "  %s: %s\n", f.ID, f.Outcome)
		}
		return 1
	}
	return 0
}

// describeSummary is the human summary on stderr.
func describeSummary(s reprocess.Summary) string {
	var b strings.Builder
	verb := "changed"
	if s.DryRun {
		verb = "would change"
	}
	name := string(s.Stage)
	if s.RunID != "" {
		name += " (run " + s.RunID + ")"
	}
	c := s.Counts
	fmt.Fprintf(&b, "reprocess %s: %d doses scanned, %d selected, %d %s, %d unchanged, %d failed\n",
		name, c.Scanned, c.Selected, c.Changed, verb, c.Unchanged, c.Failed)
	keys := make([]string, 0, len(c.Outcomes))
	for k := range c.Outcomes {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(&b, "  %-14s %d\n", k, c.Outcomes[k])
	}
	if !s.Done && !s.DryRun {
		fmt.Fprintf(&b, "  not finished: run the same command again to continue\n")
	}
	if s.AuditEntries > 0 {
		fmt.Fprintf(&b, "  audited: %d entr%s (vaxpass audit --action reprocess)\n", s.AuditEntries, map[bool]string{true: "y", false: "ies"}[s.AuditEntries == 1])
	}
	return b.String()
}

// runReprocessList is `vaxpass reprocess list`: the stored runs, oldest first.
func runReprocessList(ctx context.Context, e env, args []string) int {
	fs := flag.NewFlagSet("reprocess list", flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	var g globalFlags
	g.register(fs)
	asJSON := fs.Bool("json", false, "one JSON object per run")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(e.stderr, "reprocess list: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	if err := g.check(); err != nil {
		fmt.Fprintf(e.stderr, "reprocess list: %v\n", err)
		return 2
	}
	sys, code := openSystem(ctx, e, "reprocess list", g)
	if sys == nil {
		return code
	}
	defer sys.Close()
	var runs []reprocess.Run
	var err error
	if sys.Admin != nil {
		runs, err = sys.Admin.ReprocessRuns(ctx)
	} else {
		runs, err = sys.Local.NewReprocessor(sys.Local.Ops.AuditAppender()).ListRuns(ctx)
	}
	if err != nil {
		fmt.Fprintf(e.stderr, "reprocess list: %v\n", err)
		return 1
	}
	if *asJSON {
		enc := json.NewEncoder(e.stdout)
		for _, r := range runs {
			r.InFlight = nil // names people by registry ID
			if err := enc.Encode(r); err != nil {
				return 1
			}
		}
		return 0
	}
	tw := tabwriter.NewWriter(e.stdout, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "RUN\tSTAGE\tSTATE\tSCANNED\tCHANGED\tFAILED\tRESUMES\tSELECTION")
	for _, r := range runs {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d/%d\t%d\t%d\t%d\t%s\n", r.ID, r.Stage, r.State, r.Counts.Scanned, r.Total,
			r.Counts.Changed, r.Counts.Failed, r.Resumes, r.Filter)
	}
	tw.Flush()
	return 0
}
