package main

import (
	"context"
	"errors"
	"flag"
	"fmt"

	"github.com/vaxpass/vaxpass/shared/vaxpass"
	"github.com/vaxpass/vaxpass/shared/wire/local"
)

func init() {
	register("facility", "manage vaccination sites: facility add --id ID --name NAME", runFacility)
}

func runFacility(ctx context.Context, e env, args []string) int {
	if len(args) == 0 || args[0] != "add" {
		fmt.Fprintln(e.stderr, "usage: vaxpass facility add --id ID --name NAME [--data DIR]")
		return 2
	}
	fs := flag.NewFlagSet("facility add", flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	var g globalFlags
	g.register(fs)
	id := fs.String("id", "", "facility ID: 1-64 of A-Z a-z 0-9 _ -")
	name := fs.String("name", "", "facility name")
	if err := fs.Parse(args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if *id == "" || *name == "" || fs.NArg() > 0 {
		fmt.Fprintln(e.stderr, "facility add: --id and --name are required")
		return 2
	}
	if g.backend != "embedded" {
		fmt.Fprintln(e.stderr, "facility add: --backend aws is not supported by this build yet")
		return 2
	}
	sys, err := local.OpenLocal(local.Options{DataDir: g.dataDir})
	if err != nil {
		fmt.Fprintf(e.stderr, "facility add: %v\n", err)
		return 1
	}
	defer sys.Close()
	key, err := sys.AddFacility(ctx, *id, *name)
	switch {
	case errors.Is(err, vaxpass.ErrConflict):
		fmt.Fprintf(e.stderr, "facility add: facility %q exists already\n", *id)
		return 1
	case errors.Is(err, vaxpass.ErrInvalid):
		fmt.Fprintf(e.stderr, "facility add: %v\n", err)
		return 2
	case err != nil:
		fmt.Fprintf(e.stderr, "facility add: %v\n", err)
		return 1
	}
	fmt.Fprintln(e.stdout, key)
	return 0
}
