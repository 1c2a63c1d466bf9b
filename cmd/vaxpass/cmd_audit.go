package main

import (
	"context"
	"errors"
	"flag"
	"fmt"

	"github.com/vaxpass/vaxpass/shared/edge/httpapi"
	"github.com/vaxpass/vaxpass/shared/stage/audit"
	"github.com/vaxpass/vaxpass/shared/wire"
)

func init() {
	register("audit", "query and export the audit trail (corrections, revocations, renewals, reprocessing)", runAudit)
}

// runAudit is `vaxpass audit [--from T] [--to T] [--action A] [--actor X] [--format jsonl|csv]`.
func runAudit(ctx context.Context, e env, args []string) int {
	fs := flag.NewFlagSet("audit", flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	var g globalFlags
	g.register(fs)
	from := fs.String("from", "", "only entries at or after this time (RFC 3339 or YYYY-MM-DD)")
	to := fs.String("to", "", "only entries before this time (RFC 3339 or YYYY-MM-DD)")
	action := fs.String("action", "", "only this action: correction, revocation, renewal, renewal_run, reprocess, ...")
	actor := fs.String("actor", "", "only entries of this actor")
	format := fs.String("format", audit.FormatJSONL, "jsonl or csv")
	fs.Usage = func() {
		fmt.Fprintf(e.stderr, "usage: vaxpass audit [--from T] [--to T] [--action A] [--actor X] [--format jsonl|csv] [--data DIR | --backend aws --stack NAME]\n\n"+
			"Writes the matching audit entries to stdout, oldest first. The trail holds IDs\n"+
			"(dose keys, UVCIs, run IDs), never names, dates of birth or HC1 strings. Stop\n"+
			"`vaxpass serve` on the data directory first, or use GET /v1/ops/audit. With\n"+
			"--backend aws it reads the stack's ops table.\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	usageErr := func(format string, a ...any) int {
		fmt.Fprintf(e.stderr, "audit: "+format+"\n", a...)
		return 2
	}
	if fs.NArg() > 0 {
		return usageErr("unexpected argument %q", fs.Arg(0))
	}
	if err := g.check(); err != nil {
		return usageErr("%v", err)
	}
	q := audit.Query{Action: *action, Actor: *actor, Limit: 1000}
	var err error
	if q.From, err = httpapi.ParseAuditTime(*from); err != nil {
		return usageErr("--from: want RFC 3339 or YYYY-MM-DD")
	}
	if q.To, err = httpapi.ParseAuditTime(*to); err != nil {
		return usageErr("--to: want RFC 3339 or YYYY-MM-DD")
	}
	if err := q.Validate(); err != nil {
		return usageErr("%v", err)
	}
	w, err := audit.NewWriter(e.stdout, *format)
	if err != nil {
		return usageErr("--format: want jsonl or csv")
	}
	sys, code := openSystem(ctx, e, "audit", g)
	if sys == nil {
		return code
	}
	defer sys.Close()
	trail := sys.Sys.Ports().Audit
	if trail == nil {
		fmt.Fprintf(e.stderr, "audit: %v: Audit\n", wire.ErrNoPort)
		return 1
	}
	if err := audit.All(ctx, trail, q, w.Write); err != nil {
		fmt.Fprintf(e.stderr, "audit: %v\n", err)
		return 1
	}
	if err := w.Flush(); err != nil {
		fmt.Fprintf(e.stderr, "audit: %v\n", err)
		return 1
	}
	return 0
}
