package main

import (
	"context"
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"time"

	"github.com/vaxpass/vaxpass/shared/vaxpass"
	"github.com/vaxpass/vaxpass/shared/wire/local"
)

func init() {
	register("ops", "ops credentials: ops key [--actor NAME] creates an ops API key", runOps)
}

// runOps is `vaxpass ops key [--actor NAME] [--data DIR]`.
func runOps(_ context.Context, e env, args []string) int {
	if len(args) == 0 || args[0] != "key" {
		fmt.Fprintln(e.stderr, "usage: vaxpass ops key [--actor NAME] [--data DIR]")
		return 2
	}
	fs := flag.NewFlagSet("ops key", flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	var g globalFlags
	g.register(fs)
	actor := fs.String("actor", "ops", "who holds the key: the name the audit trail records for its actions")
	fs.Usage = func() {
		fmt.Fprintf(e.stderr, "usage: vaxpass ops key [--actor NAME] [--data DIR]\n\n"+
			"Creates an ops API key (Authorization: Bearer KEY on /v1/ops/... and the ops pages)\n"+
			"and prints it as the only line on stdout, once: only its SHA-256 is stored, in\n"+
			"<data>/%s. Works while the server runs; it picks the key up at once.\n\n", local.OpsKeysFile)
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
	if g.backend != "embedded" {
		fmt.Fprintf(e.stderr, "ops key: --backend %s is not supported by this build yet (only embedded)\n", g.backend)
		return 2
	}
	key, err := local.NewOpsKeyFile(g.dataDir, time.Now, rand.Reader).Create(*actor)
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
