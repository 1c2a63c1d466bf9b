package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/vaxpass/vaxpass/shared/wire/local"
)

func init() {
	register("serve", "run the whole system in one process (API, matcher, signing, queues, lookup page)", runServe)
}

// runServe is `vaxpass serve --addr 127.0.0.1:8080 [--demo]`.
func runServe(ctx context.Context, e env, args []string) int {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	var g globalFlags
	g.register(fs)
	addr := fs.String("addr", "127.0.0.1:8080", "address to listen on")
	demo := fs.Bool("demo", false, "load a generated registry and a demo facility on first start (synthetic people)")
	seed := fs.Uint64("seed", 1, "seed of the demo population")
	signEvery := fs.Duration("sign-every", 24*time.Hour, "period of the automatic facility signing run (0 disables)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(e.stderr, "serve: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	if g.backend != "embedded" {
		fmt.Fprintln(e.stderr, "serve: --backend aws is not supported: serve runs the embedded backend; on AWS the deployed stack (template.yaml) is the server")
		return 2
	}
	log := slog.New(slog.NewJSONHandler(e.stderr, nil))
	every := *signEvery
	if every == 0 {
		every = -1
	}
	sys, err := local.OpenLocal(local.Options{DataDir: g.dataDir, Log: log, FacilitySignEvery: every})
	if err != nil {
		fmt.Fprintf(e.stderr, "serve: %v\n", err)
		return 1
	}
	defer sys.Close()
	if *demo {
		d, err := sys.SetupDemo(ctx, *seed)
		if err != nil {
			fmt.Fprintf(e.stderr, "serve: demo set-up: %v\n", err)
			return 1
		}
		fmt.Fprintf(e.stderr, "demo: facility %q, API key on stdout; sample upload %s/doses.json, sample lookup %s/lookup.json\n", local.DemoFacility, d.Dir, d.Dir)
		fmt.Fprintln(e.stdout, d.APIKey)
	}
	err = sys.Run(ctx, *addr, func(a net.Addr) {
		log.Info("listening on " + a.String())
	})
	if err != nil {
		fmt.Fprintf(e.stderr, "serve: %v\n", err)
		return 1
	}
	return 0
}
