package main

import (
	"context"
	"errors"
	"flag"
	"fmt"

	"github.com/vaxpass/vaxpass/shared/domain/access"
	"github.com/vaxpass/vaxpass/shared/stage/audit"
	"github.com/vaxpass/vaxpass/shared/vaxpass"
	"github.com/vaxpass/vaxpass/shared/wire/local"
)

func init() {
	register("ops", "ops credentials: ops key [--actor NAME] creates an ops API key", runOps)
}

const opsUsage = "usage: vaxpass ops key [--actor NAME] [--data DIR | --backend aws --stack NAME]"

// runOps is `vaxpass ops key [--actor NAME]`.
func runOps(ctx context.Context, e env, args []string) int {
	if len(args) == 0 || args[0] != "key" {
		fmt.Fprintln(e.stderr, opsUsage)
		return 2
	}
	fs := flag.NewFlagSet("ops key", flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	var g globalFlags
	g.register(fs)
	actor := fs.String("actor", "ops", "who holds the key: the name the audit trail records for its actions")
	fs.Usage = func() {
		fmt.Fprintf(e.stderr, opsUsage+"\n\n"+
			"Creates an ops API key (Authorization: Bearer KEY on /v1/ops/..., /v1/stats and the\n"+
			"ops pages) and prints it as the only line on stdout, once: only its SHA-256 is stored,\n"+
			"in <data>/%s (the server picks it up at once), or in the stack's ops table.\n"+
			"It is `vaxpass key add --role ops --subject NAME`.\n\n", local.AccessKeysFile)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(e.stderr, "ops key: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	if err := g.check(); err != nil {
		fmt.Fprintf(e.stderr, "ops key: %v\n", err)
		return 2
	}
	// `key add --role ops --subject NAME`. The audit entry names who made the key ($USER);
	// --actor is whose key it is.
	by, aerr := cliActor("")
	if aerr != nil {
		by = audit.CLIActor("")
	}
	keys, closeKeys, code := openKeys(ctx, e, "ops key", g, true)
	if keys == nil {
		return code
	}
	defer closeKeys()
	key, _, err := keys.NewKey(audit.WithActor(ctx, by), access.Ops, *actor)
	switch {
	case errors.Is(err, vaxpass.ErrInvalid):
		fmt.Fprintf(e.stderr, "ops key: %v\n", err)
		return 2
	case err != nil:
		fmt.Fprintf(e.stderr, "ops key: %v\n", err)
		return 1
	}
	fmt.Fprintln(e.stdout, key)
	return 0
}
