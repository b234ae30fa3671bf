//go:build unix

package gateway

import "syscall"

// fdLimit returns the soft RLIMIT_NOFILE (0 when unknown or unlimited). Go
// raises the soft limit to the hard one when a program starts (package os,
// Linux), so this is what the process may really open.
func fdLimit() uint64 {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil || lim.Cur == ^uint64(0) { // RLIM_INFINITY
		return 0
	}
	return lim.Cur
}
