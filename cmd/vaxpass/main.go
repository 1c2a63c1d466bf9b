// Command vaxpass is the CLI and local runner of the vaccine-passport system.
// Each subcommand lives in its own file and registers itself in init.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"

	"github.com/vaxpass/vaxpass/shared/store/awsstack"
)

// env is what a subcommand may touch of the outside world; tests pass their own.
type env struct {
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
	// isTerminal reports whether stderr is a terminal (progress bars) or not (plain lines).
	isTerminal bool
}

// globalFlags are the flags every command accepts (contract: --data, --backend, and
// --stack for --backend aws).
type globalFlags struct {
	dataDir string
	backend string
	stack   string
}

func (g *globalFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&g.dataDir, "data", "./data", "data directory of the embedded backend")
	fs.StringVar(&g.backend, "backend", backendEmbedded, "embedded|aws")
	fs.StringVar(&g.stack, "stack", "", "the deployed stack of --backend aws (default $"+awsstack.EnvStack+")")
}

// command is one subcommand. run gets the arguments after the command name
// (for "registry load X", name is "registry" and args are ["load", "X"]).
type command struct {
	summary string
	run     func(ctx context.Context, e env, args []string) int
}

var commands = map[string]command{}

func register(name, summary string, run func(ctx context.Context, e env, args []string) int) {
	if _, dup := commands[name]; dup {
		panic("vaxpass: command registered twice: " + name)
	}
	commands[name] = command{summary: summary, run: run}
}

// errUsage marks a mistake in the command line; commands exit 2 for it.
var errUsage = errors.New("usage")

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	e := env{stdin: os.Stdin, stdout: os.Stdout, stderr: os.Stderr, isTerminal: isTerminal(os.Stderr)}
	os.Exit(run(ctx, e, os.Args[1:]))
}

func run(ctx context.Context, e env, args []string) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(e.stderr)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	c, ok := commands[args[0]]
	if !ok {
		fmt.Fprintf(e.stderr, "vaxpass: unknown command %q\n\n", args[0])
		usage(e.stderr)
		return 2
	}
	return c.run(ctx, e, args[1:])
}

func usage(w io.Writer) {
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	var b strings.Builder
	b.WriteString("usage: vaxpass COMMAND [flags] [args]\n\ncommands:\n")
	for _, n := range names {
		fmt.Fprintf(&b, "  %-10s %s\n", n, commands[n].summary)
	}
	b.WriteString("\nEvery command takes --data DIR (default ./data) and --backend embedded|aws; with\n" +
		"--backend aws, --stack NAME (default $" + awsstack.EnvStack + ") names the deployed stack, and the AWS\n" +
		"SDK's environment gives credentials, region and endpoint (AWS_ENDPOINT_URL for an emulator).\n")
	io.WriteString(w, b.String())
}

func isTerminal(f *os.File) bool {
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}
