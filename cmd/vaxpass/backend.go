package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/user"
	"strings"

	"github.com/vaxpass/vaxpass/shared/stage/audit"
	"github.com/vaxpass/vaxpass/shared/store/awsstack"
	"github.com/vaxpass/vaxpass/shared/store/embedded"
	"github.com/vaxpass/vaxpass/shared/wire"
	"github.com/vaxpass/vaxpass/shared/wire/cloud/admin"
	"github.com/vaxpass/vaxpass/shared/wire/local"
)

// The backends of --backend.
const (
	backendEmbedded = "embedded"
	backendAWS      = "aws"
)

// checkBackend is the usage check of --backend (and of --stack for aws, which must be
// known before anything is opened).
func (g *globalFlags) check() error {
	switch g.backend {
	case backendEmbedded:
		return nil
	case backendAWS:
		name, err := awsstack.StackName(g.stack, os.Getenv)
		if err != nil {
			return err
		}
		g.stack = name
		return nil
	}
	return fmt.Errorf("--backend must be %s or %s, not %q", backendEmbedded, backendAWS, g.backend)
}

// system is what a command works on: the same wire.System over the embedded data
// directory (Local) or over a deployed stack (Admin, with the operator's credentials).
type system struct {
	Sys   *wire.System
	Local *local.Local
	Admin *admin.Admin
}

func (s *system) Close() {
	if s.Local != nil {
		s.Local.Close()
	}
}

// openSystem opens the backend of g (g.check must have passed). On failure it reports on
// stderr and returns nil and the exit code.
func openSystem(ctx context.Context, e env, cmd string, g globalFlags) (*system, int) {
	if g.backend == backendAWS {
		a, err := admin.Open(ctx, g.stack)
		if err != nil {
			fmt.Fprintf(e.stderr, "%s: stack %q: %v\n", cmd, g.stack, err)
			return nil, 1
		}
		return &system{Sys: a.Stack.Sys, Admin: a}, 0
	}
	l, err := local.OpenLocal(local.Options{DataDir: g.dataDir})
	if err != nil {
		if errors.Is(err, embedded.ErrLocked) {
			fmt.Fprintf(e.stderr, "%s: %v\n%s: stop `vaxpass serve` on %s first, or use its ops API\n", cmd, err, cmd, g.dataDir)
		} else {
			fmt.Fprintf(e.stderr, "%s: %v\n", cmd, err)
		}
		return nil, 1
	}
	return &system{Sys: l.Sys, Local: l}, 0
}

// actorFlag registers --actor: who runs the command, for the audit trail.
func actorFlag(fs *flag.FlagSet) *string {
	return fs.String("actor", "", "who acts, for the audit trail (recorded as cli:NAME; default $USER)")
}

// cliActor is the audit trail's actor of a command run by hand: "cli:" and --actor, else
// $USER, else the OS user. A name that breaks the ops actor rule is a usage error; no
// name at all is "cli:unknown".
func cliActor(flagValue string) (string, error) {
	name := strings.TrimSpace(flagValue)
	if name == "" {
		name = strings.ToLower(strings.TrimSpace(os.Getenv("USER")))
		if name == "" {
			if u, err := user.Current(); err == nil {
				name = strings.ToLower(u.Username)
			}
		}
		if name == "" {
			return audit.CLIActor(""), nil
		}
		if err := wire.CheckOpsActor(name); err != nil {
			return "", fmt.Errorf("--actor: the user name %q is not a valid actor: pass --actor NAME (1-64 of a-z 0-9 . _ -)", name)
		}
		return audit.CLIActor(name), nil
	}
	if err := wire.CheckOpsActor(name); err != nil {
		return "", fmt.Errorf("--actor: %w", err)
	}
	return audit.CLIActor(name), nil
}
