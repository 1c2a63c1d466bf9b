package cli

import (
	"os/exec"
	"syscall"
)

// setDeathSignal makes the kernel kill the command when the test process dies.
func setDeathSignal(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
