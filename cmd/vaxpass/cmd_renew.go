package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os/user"
	"time"

	"github.com/vaxpass/vaxpass/shared/stage/audit"
	"github.com/vaxpass/vaxpass/shared/stage/renewal"
	"github.com/vaxpass/vaxpass/shared/store/embedded"
	"github.com/vaxpass/vaxpass/shared/tool/progress"
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
	fs.Usage = func() {
		fmt.Fprintf(e.stderr, "usage: vaxpass renew [--within 30d] [--rate N] [--data DIR]\n\n"+
			"Re-signs every issued certificate expiring within the window: the same DCC (same\n"+
			"UVCI, same names) with a new issue date and expiry. Resumable: a run that was\n"+
			"interrupted is finished by the next call, and no certificate is renewed twice by one\n"+
			"run (a run renews only certificates issued before the second it started in: one\n"+
			"issued in that second could not get a later expiry). Progress goes to stderr, a\n"+
			"JSON summary to stdout. Exit 0 when every certificate looked at was renewed or\n"+
			"rightly skipped, 1 otherwise.\n\n"+
			"The server (vaxpass serve) holds the database and renews daily by itself: stop it\n"+
			"before running this on the same data directory.\n\n")
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
	if g.backend != "embedded" {
		return usageErr("--backend %s is not supported by this build yet (only embedded)", g.backend)
	}
	window, err := renewal.ParseWindow(*within)
	if err != nil {
		return usageErr("--within: %v", err)
	}
	switch {
	case *pace < 0:
		return usageErr("--pace must not be negative")
	case *pace > 0:
		*rate = float64(time.Second) / float64(*pace)
	case !(*rate > 0):
		return usageErr("--rate must be positive")
	}

	sys, ops, code := openOps(e, "renew", g.dataDir)
	if sys == nil {
		return code
	}
	defer sys.Close()

	var bar *progress.Reporter
	svc, err := ops.Renewal(*rate, func(n int64) {
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
	sum, err := svc.Run(ctx, cliActor(), window)
	if bar != nil {
		bar.Done()
	}
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

// openOps opens the data directory with the certificate-lifecycle parts attached. On
// failure it reports and returns a nil Local and the exit code.
func openOps(e env, cmd, dataDir string) (*local.Local, *local.Ops, int) {
	sys, err := local.OpenLocal(local.Options{DataDir: dataDir})
	if err != nil {
		if errors.Is(err, embedded.ErrLocked) {
			fmt.Fprintf(e.stderr, "%s: %v\n%s: stop `vaxpass serve` on %s first, or use its ops API\n", cmd, err, cmd, dataDir)
		} else {
			fmt.Fprintf(e.stderr, "%s: %v\n", cmd, err)
		}
		return nil, nil, 1
	}
	ops, err := local.AttachOps(sys)
	if err != nil {
		sys.Close()
		fmt.Fprintf(e.stderr, "%s: %v\n", cmd, err)
		return nil, nil, 1
	}
	return sys, ops, 0
}

// cliActor is who runs a command by hand, for the audit trail: "cli:<OS user>".
func cliActor() string {
	name := ""
	if u, err := user.Current(); err == nil {
		name = u.Username
	}
	return audit.CLIActor(name)
}
