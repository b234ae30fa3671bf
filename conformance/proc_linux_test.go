package conformance

import (
	"os/exec"
	"syscall"
)

// dieWithParent makes the kernel kill Envoy when the test binary dies (e.g. at go test's timeout), so no
// Envoy outlives a run.
func dieWithParent(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
