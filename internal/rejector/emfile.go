package rejector

import "syscall"

// syscallEMFILE: out of file descriptors at accept is retried, not fatal.
var syscallEMFILE = syscall.EMFILE
