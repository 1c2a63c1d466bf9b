package faults

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
	// vaxpassBin is the binary built from ./cmd/vaxpass for this run (or VAXPASS_FAULT_BIN).
	vaxpassBin string
	// repoRoot is the module root.
	repoRoot string
)

// TestMain builds the real binary once for the package: the fault runs kill and restart
// the process a user runs.
func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	gomod := strings.TrimSpace(string(out))
	if err != nil || gomod == "" || gomod == os.DevNull {
		fmt.Fprintf(os.Stderr, "faults: cannot find the module root (go env GOMOD: %v)\n", err)
		return 1
	}
	repoRoot = filepath.Dir(gomod)
	if bin := os.Getenv("VAXPASS_FAULT_BIN"); bin != "" {
		if vaxpassBin, err = filepath.Abs(bin); err != nil {
			fmt.Fprintf(os.Stderr, "faults: VAXPASS_FAULT_BIN: %v\n", err)
			return 1
		}
		return m.Run()
	}
	dir, err := os.MkdirTemp("", "vaxpass-faults-bin-")
	if err != nil {
		fmt.Fprintf(os.Stderr, "faults: %v\n", err)
		return 1
	}
	defer os.RemoveAll(dir)
	vaxpassBin = filepath.Join(dir, "vaxpass")
	build := exec.Command("go", "build", "-o", vaxpassBin, "./cmd/vaxpass")
	build.Dir = repoRoot
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "faults: go build ./cmd/vaxpass: %v\n%s", err, out)
		return 1
	}
	return m.Run()
}
