//go:build !linux

package cli

import (
	"os/exec"
	"syscall"
)

// setDeathSignal: only Linux ties a child's life to the test process; elsewhere the
// tests' cleanup kills what they started.
func setDeathSignal(cmd *exec.Cmd) { cmd.SysProcAttr = &syscall.SysProcAttr{} }
