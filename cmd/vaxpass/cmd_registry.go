package main

import (
	"context"
	"fmt"
	"io"
)

func init() {
	register("registry", "population registry: load FILE.csv | generate (synthetic data)", runRegistry)
}

// runRegistry dispatches `vaxpass registry SUBCOMMAND`.
func runRegistry(ctx context.Context, e env, args []string) int {
	if len(args) == 0 {
		registryUsage(e.stderr)
		return 2
	}
	switch args[0] {
	case "load":
		return runRegistryLoad(ctx, e, args[1:])
	case "generate":
		return runRegistryGenerate(ctx, e, args[1:])
	case "-h", "--help", "help":
		registryUsage(e.stderr)
		return 0
	}
	fmt.Fprintf(e.stderr, "vaxpass registry: unknown subcommand %q\n\n", args[0])
	registryUsage(e.stderr)
	return 2
}

func registryUsage(w io.Writer) {
	io.WriteString(w, "usage: vaxpass registry load FILE.csv [--data DIR]\n"+
		"       vaxpass registry load FILE.csv --backend aws --stack NAME [--writers N]\n"+
		"       vaxpass registry generate --people N [--records M] [--seed S] [--out DIR]\n\n"+
		"load      loads a population-registry extract (CSV header id_number,full_name,dob,gender)\n"+
		"          into the embedded database or the stack's registry table (parallel writers,\n"+
		"          resumable); loading a file again is safe\n"+
		"generate  writes a synthetic registry, dose records and their ground truth\n")
}
