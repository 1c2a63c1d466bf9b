package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"

	"github.com/vaxpass/vaxpass/shared/edge/httpapi"
	"github.com/vaxpass/vaxpass/shared/stage/audit"
	"github.com/vaxpass/vaxpass/shared/vaxpass"
	"github.com/vaxpass/vaxpass/shared/wire/local"
)

func init() {
	register("dlq", "dead letters of central signing and of the matcher: dlq list|redrive", runDLQ)
}

const dlqUsage = `usage: vaxpass dlq list    [--queue central|matcher] [--limit N] [--data DIR | --backend aws --stack NAME]
       vaxpass dlq redrive [--queue central|matcher] [ID...] [--no-drain] [--actor NAME] [--data DIR | --backend aws --stack NAME]

list prints one JSON object per dead letter: its ID, facility (and source_id for the
matcher), receive count, times and reason -- never the message itself, which holds
personal data.

redrive gives dead letters back to their consumer once the cause is fixed:
  central   the named messages (all without IDs) return to central signing's queue, and
            are processed at once (unless --no-drain: then the server takes them)
  matcher   every dead change is handed to the matcher again, in stream order; those that
            succeed leave the dead letters
With --backend aws: central is the central signing queue's SQS dead-letter queue (redriven
messages go back to the queue and its function takes them); matcher is the doses stream's
on-failure queue (the doses of a failed batch are flagged for the matcher again).
Exit 0 when everything redriven succeeded, 1 otherwise, 2 for usage errors.
`

func runDLQ(ctx context.Context, e env, args []string) int {
	if len(args) == 0 || (args[0] != "list" && args[0] != "redrive") {
		fmt.Fprint(e.stderr, dlqUsage)
		if len(args) > 0 && (args[0] == "-h" || args[0] == "--help") {
			return 0
		}
		return 2
	}
	sub := args[0]
	fs := flag.NewFlagSet("dlq "+sub, flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	var g globalFlags
	g.register(fs)
	queueName := fs.String("queue", local.DeadCentral, "central (central signing) or matcher (the doses stream)")
	limit := fs.Int("limit", 1000, "list at most this many")
	noDrain := fs.Bool("no-drain", false, "redrive central: leave the messages queued for the server")
	actorName := actorFlag(fs)
	fs.Usage = func() {
		fmt.Fprint(e.stderr, dlqUsage+"\nflags:\n")
		fs.PrintDefaults()
	}
	// IDs may come before or after the flags.
	var ids []string
	rest := args[1:]
	for {
		if err := fs.Parse(rest); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return 0
			}
			return 2
		}
		if fs.NArg() == 0 {
			break
		}
		ids = append(ids, fs.Arg(0))
		rest = fs.Args()[1:]
	}
	usageErr := func(format string, a ...any) int {
		fmt.Fprintf(e.stderr, "dlq %s: "+format+"\n", append([]any{sub}, a...)...)
		return 2
	}
	if err := g.check(); err != nil {
		return usageErr("%v", err)
	}
	actor := ""
	if sub == "redrive" {
		var err error
		if actor, err = cliActor(*actorName); err != nil {
			return usageErr("%v", err)
		}
	}
	switch {
	case *queueName != local.DeadCentral && *queueName != local.DeadMatcher:
		return usageErr("--queue must be %s or %s", local.DeadCentral, local.DeadMatcher)
	case sub == "list" && len(ids) > 0:
		return usageErr("unexpected argument %q", ids[0])
	case sub == "list" && (*limit < 1 || *limit > 100_000):
		return usageErr("--limit must be 1..100000")
	case sub == "redrive" && *queueName == local.DeadMatcher && len(ids) > 0:
		return usageErr("the matcher's dead letters are replayed all together: give no IDs")
	}

	sys, code := openSystem(ctx, e, "dlq "+sub, g)
	if sys == nil {
		return code
	}
	defer sys.Close()
	// Redrives through the system are audited with the actor.
	dead, err := sys.Sys.DeadLetters()
	if err != nil {
		fmt.Fprintf(e.stderr, "dlq %s: %v\n", sub, err)
		return 1
	}

	if sub == "list" {
		enc := json.NewEncoder(e.stdout)
		after, n := "", 0
		for n < *limit {
			want := min(*limit-n, httpapi.DeadLetterPage)
			page, err := dead.ListDead(ctx, *queueName, after, want)
			if err != nil {
				fmt.Fprintf(e.stderr, "dlq list: %v\n", err)
				return 1
			}
			for _, d := range page {
				if err := enc.Encode(d); err != nil {
					return 1
				}
			}
			n += len(page)
			if len(page) < want {
				break
			}
			after = page[len(page)-1].ID
		}
		fmt.Fprintf(e.stderr, "dlq list: %d dead letters in %s\n", n, *queueName)
		return 0
	}

	moved, failed, err := dead.Redrive(audit.WithActor(ctx, actor), *queueName, ids)
	if err != nil {
		fmt.Fprintf(e.stderr, "dlq redrive: %v\n", err)
		if errors.Is(err, vaxpass.ErrNotFound) || errors.Is(err, vaxpass.ErrInvalid) {
			return 2
		}
		return 1
	}
	if sys.Admin != nil {
		// On AWS the consumers are functions: the queue's and the stream's triggers take
		// what was handed back.
		what := "messages back in central signing's queue"
		if *queueName == local.DeadMatcher {
			what = "failed batches handed back to the matcher"
		}
		fmt.Fprintf(e.stderr, "dlq redrive: %d %s, %d left in the dead letters (failed to move)\n", moved, what, failed)
		if failed > 0 {
			return 1
		}
		return 0
	}
	if *queueName == local.DeadMatcher {
		fmt.Fprintf(e.stderr, "dlq redrive: %d changes matched again, %d failed again (still dead letters)\n", moved, failed)
		if failed > 0 {
			return 1
		}
		return 0
	}
	fmt.Fprintf(e.stderr, "dlq redrive: %d messages back in central signing's queue\n", moved)
	if *noDrain || moved == 0 {
		return 0
	}
	if err := sys.Local.DrainCentralQueue(ctx); err != nil {
		fmt.Fprintf(e.stderr, "dlq redrive: processing the queue: %v\n", err)
		return 1
	}
	left, err := dead.ListDead(ctx, local.DeadCentral, "", httpapi.DeadLetterPage)
	if err != nil {
		fmt.Fprintf(e.stderr, "dlq redrive: %v\n", err)
		return 1
	}
	if len(left) > 0 {
		fmt.Fprintf(e.stderr, "dlq redrive: processed; %d dead letters now (failed again)\n", len(left))
		return 1
	}
	fmt.Fprintln(e.stderr, "dlq redrive: processed; no dead letters left")
	return 0
}
