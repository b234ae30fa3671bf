//go:build !linux

package conformance

import "os/exec"

// dieWithParent has no portable equivalent off Linux; TestMain still stops Envoy on a normal exit.
func dieWithParent(*exec.Cmd) {}
