package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// Set by TestMain.
var (
	// vaxpassBin is the binary built from ./cmd/vaxpass for this run.
	vaxpassBin string
	// repoRoot is the module root (where go.mod is).
	repoRoot string
)

// TestMain builds the real binary once for every test of the package (or takes the one
// VAXPASS_E2E_BIN names).
func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil || strings.TrimSpace(string(out)) == "" || strings.TrimSpace(string(out)) == os.DevNull {
		fmt.Fprintf(os.Stderr, "e2e: cannot find the module root (go env GOMOD: %v)\n", err)
		return 1
	}
	repoRoot = filepath.Dir(strings.TrimSpace(string(out)))
	if bin := os.Getenv("VAXPASS_E2E_BIN"); bin != "" {
		// A binary built elsewhere (CI's build step), tested as is.
		if vaxpassBin, err = filepath.Abs(bin); err != nil {
			fmt.Fprintf(os.Stderr, "e2e: VAXPASS_E2E_BIN: %v\n", err)
			return 1
		}
		return m.Run()
	}
	dir, err := os.MkdirTemp("", "vaxpass-e2e-bin-")
	if err != nil {
		fmt.Fprintf(os.Stderr, "e2e: %v\n", err)
		return 1
	}
	defer os.RemoveAll(dir)
	vaxpassBin = filepath.Join(dir, "vaxpass")
	build := exec.Command("go", "build", "-o", vaxpassBin, "./cmd/vaxpass")
	build.Dir = repoRoot
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "e2e: go build ./cmd/vaxpass: %v\n%s", err, out)
		return 1
	}
	return m.Run()
}
