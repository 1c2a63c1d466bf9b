//go:build !linux

package e2e

import "os/exec"

// setDeathSignal: only Linux can tie the server's life to the test process; elsewhere the
// tests' cleanup kills it.
func setDeathSignal(cmd *exec.Cmd) {}
