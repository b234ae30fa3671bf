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

func ret(stack []uint64, v uint32) { stack[0] = uint64(v) }

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

func funcs() []*vm.HostFunc {
	w := func(name, params string, res []api.ValueType, init, alloc bool, fn func(v *vm.VM, s []uint64)) *vm.HostFunc {
		return &vm.HostFunc{Module: "wasi_snapshot_preview1", Name: name, Params: vm.Sig(params), Results: res, Fn: fn, AllowInit: init, AllowAlloc: alloc}
	}
	const (
		deny  = false
		allow = true
	)
	constErr := func(e uint32) func(v *vm.VM, s []uint64) {
		return func(_ *vm.VM, s []uint64) { ret(s, e) }
	}
	stdioOnly := func(okErr uint32) func(v *vm.VM, s []uint64) {
		return func(_ *vm.VM, s []uint64) {
			fd := uint32(s[0])
			if fd != 1 && fd != 2 {
				ret(s, errnoBadf)
				return
			}
			ret(s, okErr)
		}
	}
	return []*vm.HostFunc{
		w("fd_write", "iiii", resI32, allow, allow, wasiFdWrite),
		w("fd_read", "iiii", resI32, deny, deny, constErr(errnoNosys)),
		w("fd_seek", "iIii", resI32, deny, deny, func(v *vm.VM, s []uint64) {
			v.Plugin.Log(vm.LogTrace, "wasi_unstable fd_seek")
			ret(s, errnoSuccess)
		}),
		w("fd_close", "i", resI32, deny, deny, func(v *vm.VM, s []uint64) {
			v.Plugin.Log(vm.LogTrace, "wasi_unstable fd_close")
			ret(s, errnoSuccess)
		}),
		w("fd_fdstat_get", "ii", resI32, allow, deny, func(v *vm.VM, s []uint64) {
			fd, out := uint32(s[0]), uint32(s[1])
			if fd != 1 && fd != 2 {
				ret(s, errnoBadf)
				return
			}
			var st [24]byte
			st[8] = 64 // fs_rights_base = __WASI_RIGHTS_FD_WRITE
			v.Mem.Write(out, st[:])
			ret(s, errnoSuccess)
		}),
		w("fd_fdstat_set_flags", "ii", resI32, allow, deny, constErr(errnoNosys)),
		w("fd_fdstat_set_rights", "iII", resI32, allow, deny, stdioOnly(errnoSuccess)),
		w("environ_get", "ii", resI32, allow, deny, wasiEnvironGet),
		w("environ_sizes_get", "ii", resI32, allow, deny, wasiEnvironSizesGet),
		w("args_get", "ii", resI32, allow, deny, constErr(errnoSuccess)),
		w("args_sizes_get", "ii", resI32, allow, deny, func(v *vm.VM, s []uint64) {
			if !v.Mem.WriteUint32Le(uint32(s[0]), 0) || !v.Mem.WriteUint32Le(uint32(s[1]), 0) {
				ret(s, errnoFault)
				return
			}
			ret(s, errnoSuccess)
		}),
		w("clock_time_get", "iIi", resI32, allow, allow, func(v *vm.VM, s []uint64) {
			var t uint64
			switch uint32(s[0]) {
			case 0:
				t = uint64(v.Plugin.Clock.Now().UnixNano())
			case 1:
				t = uint64(v.Plugin.Clock.Monotonic().Nanoseconds())
			default:
				ret(s, errnoNotsup)
				return
			}
			if !v.Mem.WriteUint64Le(uint32(s[2]), t) {
				ret(s, errnoFault)
				return
			}
			ret(s, errnoSuccess)
		}),
		w("clock_res_get", "ii", resI32, allow, deny, func(v *vm.VM, s []uint64) {
			if id := uint32(s[0]); id != 0 && id != 1 {
				ret(s, errnoNotsup)
				return
			}
			if !v.Mem.WriteUint64Le(uint32(s[1]), 1) {
				ret(s, errnoFault)
				return
			}
			ret(s, errnoSuccess)
		}),
		w("fd_advise", "iIIi", resI32, allow, deny, constErr(errnoSuccess)),
		w("fd_allocate", "iII", resI32, allow, deny, stdioOnly(errnoSuccess)),
		w("fd_datasync", "i", resI32, allow, deny, stdioOnly(errnoSuccess)),
		w("fd_filestat_set_size", "iI", resI32, allow, deny, stdioOnly(errnoSuccess)),
		w("fd_filestat_set_times", "iIIi", resI32, allow, deny, stdioOnly(errnoSuccess)),
		w("fd_pread", "iiiIi", resI32, allow, deny, constErr(errnoNosys)),
		w("fd_pwrite", "iiiIi", resI32, allow, deny, func(v *vm.VM, s []uint64) {
			fd := uint32(s[0])
			if fd != 1 && fd != 2 {
				ret(s, errnoBadf)
				return
			}
			n, e := writev(v, fd, uint32(s[1]), uint32(s[2]))
			if e != errnoSuccess {
				ret(s, e)
				return
			}
			if !v.Mem.WriteUint32Le(uint32(s[4]), n) {
				ret(s, errnoFault)
				return
			}
			ret(s, errnoSuccess)
		}),
		w("fd_readdir", "iiiIi", resI32, allow, deny, func(v *vm.VM, s []uint64) {
			if !v.Mem.WriteUint32Le(uint32(s[4]), 0) {
				ret(s, errnoFault)
				return
			}
			ret(s, errnoNotdir)
		}),
		w("fd_renumber", "ii", resI32, allow, deny, func(_ *vm.VM, s []uint64) {
			fd, to := uint32(s[0]), uint32(s[1])
			if (fd != 1 && fd != 2) || (to != 1 && to != 2) {
				ret(s, errnoBadf)
				return
			}
			ret(s, errnoNotsup)
		}),
		w("fd_sync", "i", resI32, allow, deny, stdioOnly(errnoSuccess)),
		w("fd_tell", "ii", resI32, allow, deny, func(v *vm.VM, s []uint64) {
			if fd := uint32(s[0]); fd != 1 && fd != 2 {
				ret(s, errnoBadf)
				return
			}
			if !v.Mem.WriteUint64Le(uint32(s[1]), 0) {
				ret(s, errnoFault)
				return
			}
			ret(s, errnoSuccess)
		}),
		w("path_create_directory", "iii", resI32, allow, deny, constErr(errnoNotsup)),
		w("path_filestat_set_times", "iiiiIIi", resI32, allow, deny, constErr(errnoNotsup)),
		// WASI signature (7 params); cpp-host declares 6, which V8 would reject at link time.
		w("path_link", "iiiiiii", resI32, allow, deny, constErr(errnoNotsup)),
		w("path_readlink", "iiiiii", resI32, allow, deny, func(v *vm.VM, s []uint64) {
			if !v.Mem.WriteUint32Le(uint32(s[5]), 0) {
				ret(s, errnoFault)
				return
			}
			ret(s, errnoNotsup)
		}),
		w("path_remove_directory", "iii", resI32, allow, deny, constErr(errnoNotsup)),
		w("path_rename", "iiiiii", resI32, allow, deny, constErr(errnoNotsup)),
		// WASI signature (5 params); cpp-host declares 4.
		w("path_symlink", "iiiii", resI32, allow, deny, constErr(errnoNotsup)),
		w("path_unlink_file", "iii", resI32, allow, deny, constErr(errnoNotsup)),
		w("sock_accept", "iii", resI32, allow, deny, func(v *vm.VM, s []uint64) {
			// cpp-host writes a 64-bit zero (setDatatype(retptr0, 0UL)).
			if !v.Mem.WriteUint64Le(uint32(s[2]), 0) {
				ret(s, errnoFault)
				return
			}
			ret(s, errnoNotsup)
		}),
		w("sock_recv", "iiiiii", resI32, allow, deny, func(v *vm.VM, s []uint64) {
			if !v.Mem.WriteUint32Le(uint32(s[4]), 0) || !v.Mem.WriteUint16Le(uint32(s[5]), 0) {
				ret(s, errnoFault)
				return
			}
			ret(s, errnoNotsup)
		}),
		w("sock_send", "iiiii", resI32, allow, deny, func(v *vm.VM, s []uint64) {
			if !v.Mem.WriteUint32Le(uint32(s[4]), 0) {
				ret(s, errnoFault)
				return
			}
			ret(s, errnoNotsup)
		}),
		w("sock_shutdown", "ii", resI32, allow, deny, constErr(errnoNotsup)),
		w("random_get", "ii", resI32, allow, deny, func(v *vm.VM, s []uint64) {
			ptr, n := uint32(s[0]), uint32(s[1])
			if n > maxRandomGetSize {
				ret(s, errnoInval)
				return
			}
			if n == 0 {
				ret(s, errnoSuccess)
				return
			}
			buf := make([]byte, n)
			_, _ = rand.Read(buf)
			if !v.Mem.Write(ptr, buf) {
				ret(s, errnoFault)
				return
			}
			ret(s, errnoSuccess)
		}),
		w("sched_yield", "", resI32, deny, deny, constErr(errnoSuccess)),
		w("poll_oneoff", "iiii", resI32, allow, allow, func(v *vm.VM, s []uint64) {
			// No polling: nevents = 0, success at once (Go requires success; cpp-host issue #497).
			if !v.Mem.WriteUint32Le(uint32(s[3]), 0) {
				ret(s, errnoFault)
				return
			}
			ret(s, errnoSuccess)
		}),
		w("proc_exit", "i", resNone, deny, deny, func(v *vm.VM, _ []uint64) {
			// cpp-host logs and returns; it does not trap.
			v.Plugin.Log(vm.LogTrace, "wasi_unstable proc_exit")
		}),
		w("path_open", "iiiiiIIii", resI32, deny, deny, constErr(errnoNoent)),
		w("fd_prestat_get", "ii", resI32, allow, deny, constErr(errnoBadf)),
		w("fd_prestat_dir_name", "iii", resI32, allow, deny, constErr(errnoNosys)),
		w("path_filestat_get", "iiiii", resI32, allow, deny, constErr(errnoNotsup)),
		w("fd_filestat_get", "ii", resI32, allow, deny, constErr(errnoBadf)),
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

func wasiFdWrite(v *vm.VM, s []uint64) {
	fd := uint32(s[0])
	if fd != 1 && fd != 2 {
		ret(s, errnoBadf)
		return
	}
	n, e := writev(v, fd, uint32(s[1]), uint32(s[2]))
	if e != errnoSuccess {
		ret(s, e)
		return
	}
	if !v.Mem.WriteUint32Le(uint32(s[3]), n) {
		ret(s, errnoFault)
		return
	}
	ret(s, errnoSuccess)
}

func wasiEnvironSizesGet(v *vm.VM, s []uint64) {
	env := v.Plugin.Env
	size := 0
	for _, e := range env {
		size += len(e) + 1
	}
	if !v.Mem.WriteUint32Le(uint32(s[0]), uint32(len(env))) || !v.Mem.WriteUint32Le(uint32(s[1]), uint32(size)) {
		ret(s, errnoFault)
		return
	}
	ret(s, errnoSuccess)
}

func wasiEnvironGet(v *vm.VM, s []uint64) {
	arr, buf := uint32(s[0]), uint32(s[1])
	for _, e := range v.Plugin.Env {
		if !v.Mem.WriteUint32Le(arr, buf) {
			ret(s, errnoFault)
			return
		}
		data := append([]byte(e), 0)
		if !v.Mem.Write(buf, data) {
			ret(s, errnoFault)
			return
		}
		buf += uint32(len(data))
		arr += 4
	}
	ret(s, errnoSuccess)
}
