package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"

	"github.com/vaxpass/vaxpass/shared/stage/revocation"
	"github.com/vaxpass/vaxpass/shared/vaxpass"
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
	fs.Usage = func() {
		fmt.Fprintf(e.stderr, "usage: vaxpass revoke UVCI --reason TEXT [--data DIR]\n\n"+
			"Revokes the certificate: it is stored revoked, listed on the revocation list (by\n"+
			"hashes of its UVCI, which also revokes every renewal of it) and audited, and\n"+
			"<data>/%s is rewritten. Prints a JSON result. Revoking a listed certificate\n"+
			"again changes nothing (outcome already_revoked). Exit 0 done, 1 unknown UVCI or\n"+
			"failure, 2 usage error. Stop `vaxpass serve` on the data directory first, or use\n"+
			"its ops API (POST /v1/ops/revocations).\n\n", "revocations.json")
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
	switch {
	case len(rest) != 1:
		fs.Usage()
		return 2
	case g.backend != "embedded":
		return usageErr("--backend %s is not supported by this build yet (only embedded)", g.backend)
	}
	if err := revocation.CheckUVCI(rest[0]); err != nil {
		return usageErr("%q is not a UVCI (URN:UVCI:01:VN:...#C)", rest[0])
	}
	if err := revocation.CheckReason(*reason); err != nil {
		return usageErr("--reason is required: 1 to %d characters, no control characters", revocation.MaxReason)
	}
	sys, ops, code := openOps(e, "revoke", g.dataDir)
	if sys == nil {
		return code
	}
	defer sys.Close()
	res, err := ops.Revoke(ctx, cliActor(), rest[0], *reason)
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
