// Package wasi is the WASI imports a proxy-wasm guest gets (modules wasi_snapshot_preview1 and
// wasi_unstable): stdout/stderr writes become log lines, clocks come from the plugin's Clock, the
// environment from its configuration, random bytes from crypto/rand, and everything that would
// touch files or sockets fails with the errno cpp-host returns.
//
// It follows proxy-wasm-cpp-host include/proxy-wasm/exports.h (FOR_ALL_WASI_FUNCTIONS) and
// src/exports.cc (wasi_unstable_*), with the start-up and allocator allow lists of src/wasm.cc
// WasmBase::startVm and include/proxy-wasm/wasm.h WasmBase::allocMemory.
package wasi

import (
	"crypto/rand"

	"github.com/dicomgate/dicomgate/wasm/host/internal/vm"
	"github.com/tetratelabs/wazero/api"
)

// WASI errno values used by cpp-host src/exports.cc.
const (
	errnoSuccess     = 0
	errnoBadf        = 8
	errnoFault       = 21
	errnoInval       = 28
	errnoNotdir      = 20
	errnoNoent       = 44
	errnoNosys       = 52
	errnoNotsup      = 58
	maxRandomGetSize = 64 * 1024 // cpp-host include/proxy-wasm/limits.h PROXY_WASM_HOST_WASI_RANDOM_GET_MAX_SIZE_BYTES
)

var (
	resI32  = []api.ValueType{api.ValueTypeI32}
	resNone = []api.ValueType{}
)

// Funcs is cpp-host include/proxy-wasm/exports.h FOR_ALL_WASI_FUNCTIONS with the behaviour of
// src/exports.cc wasi_unstable_*; allowInit mirrors WasmBase::startVm's allow list, allowAlloc
// WasmBase::allocMemory's.
func Funcs() []*vm.HostFunc {
	var out []*vm.HostFunc
	for _, hf := range funcs() {
		// cpp-host registers every WASI function under both module names (WasmBase::registerCallbacks).
		for _, mod := range []string{"wasi_snapshot_preview1", "wasi_unstable"} {
			c := *hf
			c.Module = mod
			out = append(out, &c)
		}
	}
	return out
}

// stdio reports whether fd is one of the two descriptors a guest has: stdout (1) and stderr (2).
func stdio(fd uint32) bool { return fd == 1 || fd == 2 }

// wrote is the errno of a call whose results are written into guest memory: e, or EFAULT when the
// write failed (cpp-host: a failed setDatatype or setMemory returns __WASI_EFAULT).
func wrote(ok bool, e uint32) uint32 {
	if !ok {
		return errnoFault
	}
	return e
}

func funcs() []*vm.HostFunc {
	// w declares a WASI import returning its errno (proc_exit, the one without a result, is declared
	// directly).
	w := func(name, params string, init, alloc bool, fn func(v *vm.VM, s []uint64) uint32) *vm.HostFunc {
		return &vm.HostFunc{Module: "wasi_snapshot_preview1", Name: name, Params: vm.Sig(params), Results: resI32, Fn: vm.Returning(fn), AllowInit: init, AllowAlloc: alloc}
	}
	const (
		deny  = false
		allow = true
	)
	constErr := func(e uint32) func(v *vm.VM, s []uint64) uint32 {
		return func(*vm.VM, []uint64) uint32 { return e }
	}
	// stdioOnly: EBADF unless the first argument is stdout or stderr, else okErr.
	stdioOnly := func(okErr uint32) func(v *vm.VM, s []uint64) uint32 {
		return func(v *vm.VM, s []uint64) uint32 {
			a := vm.ArgsOf(v, s)
			if !stdio(a.U32()) {
				return errnoBadf
			}
			return okErr
		}
	}
	// zeroOut: writes a 32-bit zero (a count or size the guest reads back) to argument out, skipping
	// the arguments before it, then returns e.
	zeroOut := func(out int, e uint32) func(v *vm.VM, s []uint64) uint32 {
		return func(v *vm.VM, s []uint64) uint32 {
			a := vm.ArgsOf(v, s)
			a.Skip(out)
			return wrote(v.Mem.WriteUint32Le(a.U32(), 0), e)
		}
	}
	return []*vm.HostFunc{
		w("fd_write", "iiii", allow, allow, wasiFdWrite),
		w("fd_read", "iiii", deny, deny, constErr(errnoNosys)),
		w("fd_seek", "iIii", deny, deny, func(v *vm.VM, s []uint64) uint32 {
			v.Plugin.Log(vm.LogTrace, "wasi_unstable fd_seek")
			return errnoSuccess
		}),
		w("fd_close", "i", deny, deny, func(v *vm.VM, s []uint64) uint32 {
			v.Plugin.Log(vm.LogTrace, "wasi_unstable fd_close")
			return errnoSuccess
		}),
		w("fd_fdstat_get", "ii", allow, deny, func(v *vm.VM, s []uint64) uint32 {
			a := vm.ArgsOf(v, s)
			fd, out := a.U32(), a.U32()
			if !stdio(fd) {
				return errnoBadf
			}
			var st [24]byte
			st[8] = 64 // fs_rights_base = __WASI_RIGHTS_FD_WRITE
			v.Mem.Write(out, st[:])
			return errnoSuccess
		}),
		w("fd_fdstat_set_flags", "ii", allow, deny, constErr(errnoNosys)),
		w("fd_fdstat_set_rights", "iII", allow, deny, stdioOnly(errnoSuccess)),
		w("environ_get", "ii", allow, deny, wasiEnvironGet),
		w("environ_sizes_get", "ii", allow, deny, wasiEnvironSizesGet),
		w("args_get", "ii", allow, deny, constErr(errnoSuccess)),
		w("args_sizes_get", "ii", allow, deny, func(v *vm.VM, s []uint64) uint32 {
			a := vm.ArgsOf(v, s)
			argc, argvBufSize := a.U32(), a.U32()
			return wrote(v.Mem.WriteUint32Le(argc, 0) && v.Mem.WriteUint32Le(argvBufSize, 0), errnoSuccess)
		}),
		w("clock_time_get", "iIi", allow, allow, func(v *vm.VM, s []uint64) uint32 {
			a := vm.ArgsOf(v, s)
			id := a.U32()
			a.Skip(1) // precision
			var t uint64
			switch id {
			case 0:
				t = uint64(v.Plugin.Clock.Now().UnixNano())
			case 1:
				t = uint64(v.Plugin.Clock.Monotonic().Nanoseconds())
			default:
				return errnoNotsup
			}
			return wrote(v.Mem.WriteUint64Le(a.U32(), t), errnoSuccess)
		}),
		w("clock_res_get", "ii", allow, deny, func(v *vm.VM, s []uint64) uint32 {
			a := vm.ArgsOf(v, s)
			if id := a.U32(); id != 0 && id != 1 {
				return errnoNotsup
			}
			return wrote(v.Mem.WriteUint64Le(a.U32(), 1), errnoSuccess)
		}),
		w("fd_advise", "iIIi", allow, deny, constErr(errnoSuccess)),
		w("fd_allocate", "iII", allow, deny, stdioOnly(errnoSuccess)),
		w("fd_datasync", "i", allow, deny, stdioOnly(errnoSuccess)),
		w("fd_filestat_set_size", "iI", allow, deny, stdioOnly(errnoSuccess)),
		w("fd_filestat_set_times", "iIIi", allow, deny, stdioOnly(errnoSuccess)),
		w("fd_pread", "iiiIi", allow, deny, constErr(errnoNosys)),
		w("fd_pwrite", "iiiIi", allow, deny, func(v *vm.VM, s []uint64) uint32 {
			a := vm.ArgsOf(v, s)
			fd, iovs, iovsLen := a.U32(), a.U32(), a.U32()
			a.Skip(1) // offset
			return writevTo(v, fd, iovs, iovsLen, a.U32())
		}),
		w("fd_readdir", "iiiIi", allow, deny, zeroOut(4, errnoNotdir)),
		w("fd_renumber", "ii", allow, deny, func(v *vm.VM, s []uint64) uint32 {
			a := vm.ArgsOf(v, s)
			if fd, to := a.U32(), a.U32(); !stdio(fd) || !stdio(to) {
				return errnoBadf
			}
			return errnoNotsup
		}),
		w("fd_sync", "i", allow, deny, stdioOnly(errnoSuccess)),
		w("fd_tell", "ii", allow, deny, func(v *vm.VM, s []uint64) uint32 {
			a := vm.ArgsOf(v, s)
			if !stdio(a.U32()) {
				return errnoBadf
			}
			return wrote(v.Mem.WriteUint64Le(a.U32(), 0), errnoSuccess)
		}),
		w("path_create_directory", "iii", allow, deny, constErr(errnoNotsup)),
		w("path_filestat_set_times", "iiiiIIi", allow, deny, constErr(errnoNotsup)),
		// WASI signature (7 params); cpp-host declares 6, which V8 would reject at link time.
		w("path_link", "iiiiiii", allow, deny, constErr(errnoNotsup)),
		w("path_readlink", "iiiiii", allow, deny, zeroOut(5, errnoNotsup)),
		w("path_remove_directory", "iii", allow, deny, constErr(errnoNotsup)),
		w("path_rename", "iiiiii", allow, deny, constErr(errnoNotsup)),
		// WASI signature (5 params); cpp-host declares 4.
		w("path_symlink", "iiiii", allow, deny, constErr(errnoNotsup)),
		w("path_unlink_file", "iii", allow, deny, constErr(errnoNotsup)),
		w("sock_accept", "iii", allow, deny, func(v *vm.VM, s []uint64) uint32 {
			// cpp-host writes a 64-bit zero (setDatatype(retptr0, 0UL)).
			a := vm.ArgsOf(v, s)
			a.Skip(2)
			return wrote(v.Mem.WriteUint64Le(a.U32(), 0), errnoNotsup)
		}),
		w("sock_recv", "iiiiii", allow, deny, func(v *vm.VM, s []uint64) uint32 {
			a := vm.ArgsOf(v, s)
			a.Skip(4)
			return wrote(v.Mem.WriteUint32Le(a.U32(), 0) && v.Mem.WriteUint16Le(a.U32(), 0), errnoNotsup)
		}),
		w("sock_send", "iiiii", allow, deny, zeroOut(4, errnoNotsup)),
		w("sock_shutdown", "ii", allow, deny, constErr(errnoNotsup)),
		w("random_get", "ii", allow, deny, func(v *vm.VM, s []uint64) uint32 {
			a := vm.ArgsOf(v, s)
			ptr, n := a.U32(), a.U32()
			if n > maxRandomGetSize {
				return errnoInval
			}
			if n == 0 {
				return errnoSuccess
			}
			buf := make([]byte, n)
			_, _ = rand.Read(buf)
			return wrote(v.Mem.Write(ptr, buf), errnoSuccess)
		}),
		w("sched_yield", "", deny, deny, constErr(errnoSuccess)),
		// No polling: nevents = 0, success at once (Go requires success; cpp-host issue #497).
		w("poll_oneoff", "iiii", allow, allow, zeroOut(3, errnoSuccess)),
		{Module: "wasi_snapshot_preview1", Name: "proc_exit", Params: vm.Sig("i"), Results: resNone, Fn: func(v *vm.VM, _ []uint64) {
			// cpp-host logs and returns; it does not trap.
			v.Plugin.Log(vm.LogTrace, "wasi_unstable proc_exit")
		}},
		w("path_open", "iiiiiIIii", deny, deny, constErr(errnoNoent)),
		w("fd_prestat_get", "ii", allow, deny, constErr(errnoBadf)),
		w("fd_prestat_dir_name", "iii", allow, deny, constErr(errnoNosys)),
		w("path_filestat_get", "iiiii", allow, deny, constErr(errnoNotsup)),
		w("fd_filestat_get", "ii", allow, deny, constErr(errnoBadf)),
	}
}

// writev is cpp-host exports.cc writevImpl: fd 1 ⇒ info, fd 2 ⇒ error, one log line per call with
// one trailing newline stripped.
func writev(v *vm.VM, fd, iovs, iovsLen uint32) (uint32, uint32) {
	level := vm.LogInfo
	if fd == 2 {
		level = vm.LogError
	}
	if uint64(iovsLen)*8 > uint64(v.Mem.Size()) {
		return 0, errnoFault
	}
	sb := v.LogBuf[:0]
	for i := uint32(0); i < iovsLen; i++ {
		iov, ok := v.Mem.Read(iovs+i*8, 8)
		if !ok {
			return 0, errnoFault
		}
		buf := uint32(iov[0]) | uint32(iov[1])<<8 | uint32(iov[2])<<16 | uint32(iov[3])<<24
		n := uint32(iov[4]) | uint32(iov[5])<<8 | uint32(iov[6])<<16 | uint32(iov[7])<<24
		if n == 0 {
			continue
		}
		b, ok := v.Mem.Read(buf, n)
		if !ok {
			return 0, errnoFault
		}
		sb = append(sb, b...)
	}
	written := uint32(len(sb))
	if written > 0 {
		if sb[len(sb)-1] == '\n' {
			sb = sb[:len(sb)-1]
		}
		v.LogView(level, sb)
	}
	if cap(sb) <= 64<<10 {
		v.LogBuf = sb[:0] // reused for the next line; a huge one is left to the GC
	}
	return written, errnoSuccess
}

// writevTo is fd_write/fd_pwrite after their arguments: EBADF unless fd is stdout or stderr, the
// iovecs as one log line, the byte count written to nwritten.
func writevTo(v *vm.VM, fd, iovs, iovsLen, nwritten uint32) uint32 {
	if !stdio(fd) {
		return errnoBadf
	}
	n, e := writev(v, fd, iovs, iovsLen)
	if e != errnoSuccess {
		return e
	}
	return wrote(v.Mem.WriteUint32Le(nwritten, n), errnoSuccess)
}

func wasiFdWrite(v *vm.VM, s []uint64) uint32 {
	a := vm.ArgsOf(v, s)
	return writevTo(v, a.U32(), a.U32(), a.U32(), a.U32())
}

func wasiEnvironSizesGet(v *vm.VM, s []uint64) uint32 {
	a := vm.ArgsOf(v, s)
	env := v.Plugin.Env
	size := 0
	for _, e := range env {
		size += len(e) + 1
	}
	return wrote(v.Mem.WriteUint32Le(a.U32(), uint32(len(env))) && v.Mem.WriteUint32Le(a.U32(), uint32(size)), errnoSuccess)
}

func wasiEnvironGet(v *vm.VM, s []uint64) uint32 {
	a := vm.ArgsOf(v, s)
	arr, buf := a.U32(), a.U32()
	for _, e := range v.Plugin.Env {
		if !v.Mem.WriteUint32Le(arr, buf) {
			return errnoFault
		}
		data := append([]byte(e), 0)
		if !v.Mem.Write(buf, data) {
			return errnoFault
		}
		buf += uint32(len(data))
		arr += 4
	}
	return errnoSuccess
}
