package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

// runCLI runs the CLI in process, as main does with os.Args[1:], reading stdin; it
// returns the exit code and what the command wrote. (The tests that need the built binary
// and its process -- signals, `serve` -- use shared/testkit/cli.)
func runCLI(stdin string, args ...string) (code int, stdout, stderr string) {
	var out, errOut bytes.Buffer
	code = run(context.Background(), env{stdin: strings.NewReader(stdin), stdout: &out, stderr: &errOut}, args)
	return code, out.String(), errOut.String()
}

// runOperatorCmd is runCLI without input, under the name backend_test.go uses.
func runOperatorCmd(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	return runCLI("", args...)
}

func TestRunCLIDispatches(t *testing.T) {
	if code, stdout, stderr := runCLI("", "no-such-command"); code != 2 || stdout != "" || !strings.Contains(stderr, `unknown command "no-such-command"`) {
		t.Errorf("unknown command: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
}
