package cli_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vaxpass/vaxpass/shared/testkit/cli"
)

func TestModuleRoot(t *testing.T) {
	root := cli.ModuleRoot(t)
	b, err := os.ReadFile(filepath.Join(root, "go.mod"))
	if err != nil || !strings.Contains(string(b), "module github.com/vaxpass/vaxpass\n") {
		t.Fatalf("module root %s: go.mod %v", root, err)
	}
}

func TestBinBuiltOnce(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the CLI")
	}
	a := cli.Bin(t)
	fi, err := os.Stat(a)
	if err != nil || fi.Mode().Perm()&0o100 == 0 {
		t.Fatalf("binary %s: %v %v", a, fi, err)
	}
	if b := cli.Bin(t); b != a {
		t.Errorf("second Bin %s, first %s: built twice", b, a)
	}
}

func TestRunExitCodeAndOutput(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the CLI")
	}
	// Usage errors exit 2 (cmd/vaxpass), naming the problem on stderr.
	r := cli.Run(t, "no-such-command")
	if r.Code == 0 || r.Stdout != "" || !strings.Contains(r.Stderr, "no-such-command") {
		t.Errorf("unknown command: %+v", r)
	}
	// Stdin reaches the command: verify reads the HC1 from "-".
	v := cli.Runner{Stdin: "HC1:NOT-A-CERTIFICATE"}.Run(t, "verify", "--trust", filepath.Join(t.TempDir(), "none.json"), "-")
	if v.Code == 0 {
		t.Errorf("verify of garbage exited 0: %+v", v)
	}
	// Must returns the output of a successful run.
	dir := t.TempDir()
	out := cli.Must(t, "registry", "generate", "--people", "20", "--seed", "3", "--out", dir).Stdout
	if !strings.Contains(out, `"records"`) {
		t.Errorf("registry generate printed %q", out)
	}
}

func TestRunnerEnvAndSetup(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the CLI")
	}
	var seen *exec.Cmd
	r := cli.Runner{Env: []string{"AWS_ENDPOINT_URL=http://127.0.0.1:1"}, Setup: func(c *exec.Cmd) { seen = c }}
	cmd := r.Command(t, "version")
	if seen != cmd || !slices.Contains(cmd.Env, "AWS_ENDPOINT_URL=http://127.0.0.1:1") || cmd.Path != cli.Bin(t) {
		t.Errorf("command %s %v: env or setup not applied", cmd.Path, cmd.Env)
	}
	// A later entry wins over the test's own environment.
	t.Setenv("VAXPASS_TESTKIT_PROBE", "outer")
	cmd = cli.Runner{Env: []string{"VAXPASS_TESTKIT_PROBE=inner"}}.Command(t)
	if i, j := slices.Index(cmd.Env, "VAXPASS_TESTKIT_PROBE=outer"), slices.Index(cmd.Env, "VAXPASS_TESTKIT_PROBE=inner"); i < 0 || j < i {
		t.Errorf("env order: outer at %d, inner at %d", i, j)
	}
}

func TestTimeout(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the CLI")
	}
	// serve runs until stopped: the timeout must end it and say so.
	_, err := cli.Runner{Timeout: 2 * time.Second}.Try(t, "serve", "--data", t.TempDir(), "--addr", "127.0.0.1:0")
	if err == nil || !strings.Contains(err.Error(), "did not finish within 2s") {
		t.Errorf("serve under a 2s timeout: %v", err)
	}
}

func TestKillWhen(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the CLI")
	}
	lines := cli.KillWhen(t, "once it listens", func(line string) bool { return strings.Contains(line, "listening on") },
		"serve", "--data", t.TempDir(), "--addr", "127.0.0.1:0")
	if len(lines) == 0 || !strings.Contains(lines[len(lines)-1], "listening on") {
		t.Errorf("lines read: %q", lines)
	}
}

func TestTail(t *testing.T) {
	for _, c := range []struct {
		in   string
		n    int
		want string
	}{
		{"a\nb\nc\n", 2, "b\nc"},
		{"a\nb", 5, "a\nb"},
		{"", 3, ""},
	} {
		if got := cli.Tail(c.in, c.n); got != c.want {
			t.Errorf("Tail(%q, %d) = %q, want %q", c.in, c.n, got, c.want)
		}
	}
}
