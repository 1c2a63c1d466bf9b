package main

import (
	"context"
	"errors"
	"flag"
	"fmt"

	"github.com/vaxpass/vaxpass/shared/stage/audit"
	"github.com/vaxpass/vaxpass/shared/vaxpass"
)

func init() {
	register("facility", "manage vaccination sites: facility add --id ID --name NAME", runFacility)
}

const facilityUsage = "usage: vaxpass facility add --id ID --name NAME [--actor NAME] [--data DIR | --backend aws --stack NAME]\n       vaxpass facility key rotate|revoke --id ID [--actor NAME] [--data DIR | --backend aws --stack NAME]"

func runFacility(ctx context.Context, e env, args []string) int {
	if len(args) > 0 && args[0] == "key" {
		return runFacilityKey(ctx, e, args[1:])
	}
	if len(args) == 0 || args[0] != "add" {
		fmt.Fprintln(e.stderr, facilityUsage)
		return 2
	}
	fs := flag.NewFlagSet("facility add", flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	var g globalFlags
	g.register(fs)
	id := fs.String("id", "", "facility ID: 1-64 of A-Z a-z 0-9 _ -")
	name := fs.String("name", "", "facility name")
	actorName := actorFlag(fs)
	fs.Usage = func() {
		fmt.Fprint(e.stderr, facilityUsage+"\n\n"+
			"Registers a vaccination site and creates its signing key (a key file of the data\n"+
			"directory, or a KMS key of the stack); prints its API key as the only line on stdout.\n\n")
		fs.PrintDefaults()
	}
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
	if err := g.check(); err != nil {
		fmt.Fprintf(e.stderr, "facility add: %v\n", err)
		return 2
	}
	actor, err := cliActor(*actorName)
	if err != nil {
		fmt.Fprintf(e.stderr, "facility add: %v\n", err)
		return 2
	}
	sys, code := openSystem(ctx, e, "facility add", g)
	if sys == nil {
		return code
	}
	defer sys.Close()
	key, err := sys.Sys.AddFacility(audit.WithActor(ctx, actor), *id, *name)
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
