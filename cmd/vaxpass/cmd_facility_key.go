package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"

	"github.com/vaxpass/vaxpass/shared/stage/audit"
	"github.com/vaxpass/vaxpass/shared/vaxpass"
)

const facilityKeyUsage = `usage: vaxpass facility key rotate|revoke --id ID [--actor NAME] [--data DIR | --backend aws --stack NAME]

rotate  gives the facility a new signing key (a key file of the data directory, or a KMS
        key of the stack) and signs with it from now on; what the former key signed
        still verifies (its public key stays with the facility).
revoke  rotates and revokes the former key: central signing refuses what it signed from
        now on, and the key is disabled (its file removed; on AWS the KMS key disabled
        and its deletion scheduled in 30 days). People whose signature by that key had not
        reached central signing yet are refused there (dead-lettered); sign them again
        with the new key, once the central queue has drained:
          vaxpass reprocess --stage facility-sign --facility ID
        (it re-signs everyone whose stored facility signature does not cover their doses).

Prints one JSON line: facility_id, key_id (the new key), former_key_id, revoked, at.
The embedded backend's server must be stopped (the data directory has one user).
Exit 0 done, 1 failure, 2 usage error.
`

// runFacilityKey is `vaxpass facility key rotate|revoke --id F`.
func runFacilityKey(ctx context.Context, e env, args []string) int {
	if len(args) == 0 || (args[0] != "rotate" && args[0] != "revoke") {
		fmt.Fprint(e.stderr, facilityKeyUsage)
		if len(args) > 0 && (args[0] == "-h" || args[0] == "--help") {
			return 0
		}
		return 2
	}
	verb := args[0]
	cmd := "facility key " + verb
	fs := flag.NewFlagSet(cmd, flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	var g globalFlags
	g.register(fs)
	id := fs.String("id", "", "facility ID")
	actorName := actorFlag(fs)
	fs.Usage = func() {
		fmt.Fprint(e.stderr, facilityKeyUsage+"\nflags:\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if *id == "" || fs.NArg() > 0 {
		fmt.Fprintf(e.stderr, "%s: --id is required (and takes no arguments)\n", cmd)
		return 2
	}
	if err := g.check(); err != nil {
		fmt.Fprintf(e.stderr, "%s: %v\n", cmd, err)
		return 2
	}
	actor, err := cliActor(*actorName)
	if err != nil {
		fmt.Fprintf(e.stderr, "%s: %v\n", cmd, err)
		return 2
	}
	sys, code := openSystem(ctx, e, cmd, g)
	if sys == nil {
		return code
	}
	defer sys.Close()
	ctx = audit.WithActor(ctx, actor)
	change := sys.Sys.RotateFacilityKey
	if verb == "revoke" {
		change = sys.Sys.RevokeFacilityKey
	}
	res, err := change(ctx, *id)
	switch {
	case errors.Is(err, vaxpass.ErrNotFound):
		fmt.Fprintf(e.stderr, "%s: no facility %q\n", cmd, *id)
		return 1
	case err != nil:
		fmt.Fprintf(e.stderr, "%s: %v\n", cmd, err)
		return 1
	}
	line, err := json.Marshal(res)
	if err != nil {
		fmt.Fprintf(e.stderr, "%s: %v\n", cmd, err)
		return 1
	}
	fmt.Fprintln(e.stdout, string(line))
	if res.Revoked {
		fmt.Fprintf(e.stderr, "%s: key %s revoked; once the central queue has drained, sign again whom it refused: vaxpass reprocess --stage facility-sign --facility %s\n", cmd, res.FormerKeyID, *id)
	}
	return 0
}
