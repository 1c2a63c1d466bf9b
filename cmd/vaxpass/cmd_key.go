package main

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"strings"
	"time"

	"github.com/vaxpass/vaxpass/shared/domain/access"
	"github.com/vaxpass/vaxpass/shared/stage/audit"
	"github.com/vaxpass/vaxpass/shared/store/embedded"
	"github.com/vaxpass/vaxpass/shared/vaxpass"
	"github.com/vaxpass/vaxpass/shared/wire"
	"github.com/vaxpass/vaxpass/shared/wire/local"
)

func init() {
	register("key", "API keys of every role: key add|list|rotate|revoke", runKey)
}

const keyUsage = `usage: vaxpass key add --role facility|clerk|officer|ops --subject S
       vaxpass key list
       vaxpass key rotate ID
       vaxpass key revoke ID
  each with [--actor NAME] [--data DIR | --backend aws --stack NAME]`

const keyHelp = `
API keys, one per role and subject (Authorization: Bearer KEY):
  facility  its own records (upload, read, sign)        --subject a facility ID
  clerk     one commune's worklists and corrections      --subject a commune code
  officer   registry candidates (each answer audited)     --subject the officer's name
  ops       stats, reprocessing, dead letters, ops pages  --subject the operator's name
add prints the new key as the only line on stdout, once: only its SHA-256 is stored (in
<data>/` + local.AccessKeysFile + ` -- the server sees it at once -- or in the stack's ops table).
list prints one JSON line per key: id, role, subject, created_at, revoked_at (null while
valid). rotate makes a new key of the same role and subject, revokes the old one and
prints the new key. revoke stops the key at once (the next request with it gets 401).
ID is a key's id in the list.
`

// runKey is `vaxpass key add|list|rotate|revoke`.
func runKey(ctx context.Context, e env, args []string) int {
	if len(args) == 0 {
		fmt.Fprintln(e.stderr, keyUsage)
		return 2
	}
	sub := args[0]
	switch sub {
	case "add", "list", "rotate", "revoke":
	case "-h", "--help", "help":
		fmt.Fprint(e.stderr, keyUsage+"\n"+keyHelp)
		return 0
	default:
		fmt.Fprintf(e.stderr, "key: unknown subcommand %q\n%s\n", sub, keyUsage)
		return 2
	}
	cmd := "key " + sub
	fs := flag.NewFlagSet(cmd, flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	var g globalFlags
	g.register(fs)
	actorName := actorFlag(fs)
	var role, subject *string
	if sub == "add" {
		role = fs.String("role", "", "the key's role: facility, clerk, officer or ops")
		subject = fs.String("subject", "", "whom the key is for: a facility ID, a commune code, a name")
	}
	fs.Usage = func() {
		fmt.Fprint(e.stderr, keyUsage+"\n"+keyHelp+"\n")
		fs.PrintDefaults()
	}
	// The ID may come before or after the flags.
	pos, err := parseInterspersed(fs, args[1:])
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	var id string
	switch sub {
	case "add", "list":
		if len(pos) > 0 {
			fmt.Fprintf(e.stderr, "%s: unexpected argument %q\n", cmd, pos[0])
			return 2
		}
	default:
		if len(pos) != 1 {
			fmt.Fprintf(e.stderr, "%s: one key ID is required (vaxpass key list shows them)\n", cmd)
			return 2
		}
		id = pos[0]
		if len(id) != access.IDLen || strings.Trim(strings.ToLower(id), "0123456789abcdef") != "" {
			fmt.Fprintf(e.stderr, "%s: key ID %q: must be %d hex digits (vaxpass key list shows them)\n", cmd, id, access.IDLen)
			return 2
		}
	}
	if sub == "add" {
		if *role == "" || *subject == "" {
			fmt.Fprintf(e.stderr, "%s: --role and --subject are required\n", cmd)
			return 2
		}
		if err := access.CheckSubject(access.Role(*role), *subject); err != nil {
			fmt.Fprintf(e.stderr, "%s: %v\n", cmd, strings.TrimPrefix(err.Error(), access.ErrInvalid.Error()+": "))
			return 2
		}
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
	keys, closeKeys, code := openKeys(ctx, e, cmd, g, sub != "list")
	if keys == nil {
		return code
	}
	defer closeKeys()
	ctx = audit.WithActor(ctx, actor)

	switch sub {
	case "add":
		apiKey, _, err := keys.NewKey(ctx, access.Role(*role), *subject)
		if err != nil {
			return keyFailed(e, cmd, err)
		}
		fmt.Fprintln(e.stdout, apiKey)
	case "list":
		list, err := keys.ListKeys(ctx)
		if err != nil {
			return keyFailed(e, cmd, err)
		}
		enc := json.NewEncoder(e.stdout)
		for _, k := range list {
			if err := enc.Encode(keyLine(k)); err != nil {
				return keyFailed(e, cmd, err)
			}
		}
	case "rotate":
		apiKey, k, err := keys.RotateKey(ctx, id)
		if err != nil {
			return keyFailed(e, cmd, err)
		}
		fmt.Fprintf(e.stderr, "%s: key %s replaces %s (%s %s); %s is revoked\n", cmd, k.ID, strings.ToLower(id), k.Role, k.Subject, strings.ToLower(id))
		fmt.Fprintln(e.stdout, apiKey)
	case "revoke":
		k, err := keys.RevokeKey(ctx, id)
		if err != nil {
			return keyFailed(e, cmd, err)
		}
		if err := json.NewEncoder(e.stdout).Encode(keyLine(k)); err != nil {
			return keyFailed(e, cmd, err)
		}
	}
	return 0
}

// keyListLine is a line of `key list`: never the key, nor its hash.
type keyListLine struct {
	ID        string      `json:"id"`
	Role      access.Role `json:"role"`
	Subject   string      `json:"subject"`
	CreatedAt time.Time   `json:"created_at"`
	RevokedAt *time.Time  `json:"revoked_at"`
}

func keyLine(k access.Key) keyListLine {
	l := keyListLine{ID: k.ID, Role: k.Role, Subject: k.Subject, CreatedAt: k.CreatedAt.UTC()}
	if k.Revoked() {
		at := k.RevokedAt.UTC()
		l.RevokedAt = &at
	}
	return l
}

// keyFailed reports err: exit 2 for what the command line got wrong, 1 otherwise.
func keyFailed(e env, cmd string, err error) int {
	fmt.Fprintf(e.stderr, "%s: %v\n", cmd, err)
	if errors.Is(err, vaxpass.ErrInvalid) {
		return 2
	}
	return 1
}

// openKeys opens the key lifecycle of g's backend. On the embedded backend it is the
// system's (audited, facility keys checked against the facilities) unless a server holds
// the database: then, when write, the key file alone -- it is not the database, so keys
// can be made and revoked while the server runs -- and a note says the audit trail, in
// the database, does not record the change. On failure it reports and returns nil.
func openKeys(ctx context.Context, e env, cmd string, g globalFlags, write bool) (*wire.KeyLifecycle, func(), int) {
	if g.backend == backendEmbedded {
		if !write {
			return &wire.KeyLifecycle{Keys: local.NewAccessKeyFile(g.dataDir, time.Now, rand.Reader)}, func() {}, 0
		}
		l, err := local.OpenLocal(local.Options{DataDir: g.dataDir})
		if errors.Is(err, embedded.ErrLocked) {
			fmt.Fprintf(e.stderr, "%s: note: a server holds the database of %s: the key file is changed (the server sees it at once), but the audit trail is not written and a facility key's facility is not checked\n", cmd, g.dataDir)
			return &wire.KeyLifecycle{Keys: local.NewAccessKeyFile(g.dataDir, time.Now, rand.Reader), Now: time.Now, Rand: rand.Reader}, func() {}, 0
		}
		if err != nil {
			fmt.Fprintf(e.stderr, "%s: %v\n", cmd, err)
			return nil, nil, 1
		}
		return l.Sys.Keys(), func() { l.Close() }, 0
	}
	sys, code := openSystem(ctx, e, cmd, g)
	if sys == nil {
		return nil, nil, code
	}
	return sys.Sys.Keys(), sys.Close, 0
}

// parseInterspersed parses fs over args allowing positional arguments between the flags;
// it returns the positional ones.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		if fs.NArg() == 0 {
			return pos, nil
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
}
