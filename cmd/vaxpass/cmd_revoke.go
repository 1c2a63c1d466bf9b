package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"

	"github.com/vaxpass/vaxpass/shared/stage/revocation"
	"github.com/vaxpass/vaxpass/shared/vaxpass"
	"github.com/vaxpass/vaxpass/shared/wire/local"
)

func init() {
	register("revoke", "revoke a certificate: revoke UVCI --reason TEXT (lists it on the revocation list)", runRevoke)
}

// runRevoke is `vaxpass revoke UVCI --reason TEXT [--data DIR]`.
func runRevoke(ctx context.Context, e env, args []string) int {
	fs := flag.NewFlagSet("revoke", flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	var g globalFlags
	g.register(fs)
	reason := fs.String("reason", "", "why (required; recorded in the store and the audit trail, never published: no personal data)")
	actorName := actorFlag(fs)
	fs.Usage = func() {
		fmt.Fprintf(e.stderr, "usage: vaxpass revoke UVCI --reason TEXT [--actor NAME] [--data DIR | --backend aws --stack NAME]\n\n"+
			"Revokes the certificate: it is stored revoked, listed on the revocation list (by\n"+
			"hashes of its UVCI, which also revokes every renewal of it) and audited with the\n"+
			"actor, and <data>/%s is rewritten (on AWS, GET /v1/revocations serves it at\n"+
			"once). Prints a JSON result. Revoking a listed certificate again changes nothing\n"+
			"(outcome already_revoked). Exit 0 done, 1 unknown UVCI or failure, 2 usage error.\n"+
			"Stop `vaxpass serve` on the data directory first, or use its ops API\n"+
			"(POST /v1/ops/revocations).\n\n", local.RevocationsFile)
		fs.PrintDefaults()
	}
	// The UVCI may come before or after the flags.
	var rest []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return 0
			}
			return 2
		}
		if fs.NArg() == 0 {
			break
		}
		rest = append(rest, fs.Arg(0))
		args = fs.Args()[1:]
	}
	usageErr := func(format string, a ...any) int {
		fmt.Fprintf(e.stderr, "revoke: "+format+"\n", a...)
		return 2
	}
	if len(rest) != 1 {
		fs.Usage()
		return 2
	}
	if err := g.check(); err != nil {
		return usageErr("%v", err)
	}
	if err := revocation.CheckUVCI(rest[0]); err != nil {
		return usageErr("%q is not a UVCI (URN:UVCI:01:VN:...#C)", rest[0])
	}
	if err := revocation.CheckReason(*reason); err != nil {
		return usageErr("--reason is required: 1 to %d characters, no control characters", revocation.MaxReason)
	}
	actor, err := cliActor(*actorName)
	if err != nil {
		return usageErr("%v", err)
	}
	sys, code := openSystem(ctx, e, "revoke", g)
	if sys == nil {
		return code
	}
	defer sys.Close()
	var res revocation.Result
	if sys.Local != nil {
		// The embedded backend also rewrites the published list file.
		res, err = sys.Local.Ops.Revoke(ctx, actor, rest[0], *reason)
	} else {
		res, err = sys.Sys.Revoke(ctx, actor, rest[0], *reason)
	}
	switch {
	case errors.Is(err, vaxpass.ErrNotFound):
		fmt.Fprintln(e.stderr, "revoke: no certificate has this UVCI")
		return 1
	case err != nil:
		fmt.Fprintf(e.stderr, "revoke: %v\n", err)
		return 1
	}
	enc := json.NewEncoder(e.stdout)
	if err := enc.Encode(res); err != nil {
		fmt.Fprintf(e.stderr, "revoke: %v\n", err)
		return 1
	}
	return 0
}
