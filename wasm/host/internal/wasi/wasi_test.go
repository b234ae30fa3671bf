package wasi

import (
	"context"
	"encoding/binary"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/tetratelabs/wazero"

	"github.com/dicomgate/dicomgate/wasm/host/internal/vm"
)

// memModule is a module with one exported page of memory and nothing else.
var memModule = []byte("\x00asm\x01\x00\x00\x00" +
	"\x05\x03\x01\x00\x01" + // memory section: one memory, min 1 page, no max
	"\x07\x0a\x01\x06memory\x02\x00") // export section: "memory", memory 0

const (
	pageSize = 65536
	outside  = pageSize + 100 // a pointer outside guest memory
)

type fixedClock struct{}

func (fixedClock) Now() time.Time           { return time.Unix(1700000000, 5) }
func (fixedClock) Monotonic() time.Duration { return 42 * time.Second }

// newVM returns a VM with one page of zeroed guest memory, the environment env and a logger that
// collects "[level] line" strings into lines.
func newVM(t *testing.T, env []string, lines *[]string) *vm.VM {
	t.Helper()
	ctx := context.Background()
	r := wazero.NewRuntime(ctx)
	t.Cleanup(func() { _ = r.Close(ctx) })
	mod, err := r.Instantiate(ctx, memModule)
	require.NoError(t, err)
	log := func(level vm.LogLevel, msg string) { *lines = append(*lines, fmt.Sprintf("[%d] %s", level, msg)) }
	return &vm.VM{Plugin: &vm.Plugin{Env: env, Clock: fixedClock{}, Log: log}, Mem: mod.Memory()}
}

// call runs the WASI function name (as registered for wasi_snapshot_preview1) with args and
// returns its errno.
func call(t *testing.T, v *vm.VM, name string, args ...uint64) uint32 {
	t.Helper()
	for _, hf := range Funcs() {
		if hf.Module == "wasi_snapshot_preview1" && hf.Name == name {
			require.Len(t, args, len(hf.Params), "%s takes %d arguments", name, len(hf.Params))
			stack := make([]uint64, max(len(args), 1))
			copy(stack, args)
			hf.Fn(v, stack)
			return uint32(stack[0])
		}
	}
	require.FailNow(t, "no such WASI function", name)
	return 0
}

func u32At(t *testing.T, v *vm.VM, p uint32) uint32 {
	t.Helper()
	x, ok := v.Mem.ReadUint32Le(p)
	require.True(t, ok)
	return x
}

func u64At(t *testing.T, v *vm.VM, p uint32) uint64 {
	t.Helper()
	x, ok := v.Mem.ReadUint64Le(p)
	require.True(t, ok)
	return x
}

// Every WASI function, with the errno cpp-host src/exports.cc returns and the results it writes:
// a pointer outside guest memory for a result gives EFAULT, a descriptor other than stdout and
// stderr EBADF.
func TestFuncs_ErrnosAndResults(t *testing.T) {
	var lines []string
	v := newVM(t, []string{"A=1", "BC=22"}, &lines)
	fill := func(p uint32) { // a non-zero pattern, so that a written zero is seen
		require.True(t, v.Mem.Write(p, []byte{0xAA, 0xAA, 0xAA, 0xAA, 0xAA, 0xAA, 0xAA, 0xAA}))
	}

	// Files, directories and sockets do not exist.
	for name, want := range map[string]uint32{
		"fd_read": errnoNosys, "fd_fdstat_set_flags": errnoNosys, "fd_pread": errnoNosys, "fd_prestat_dir_name": errnoNosys,
		"path_create_directory": errnoNotsup, "path_filestat_set_times": errnoNotsup, "path_link": errnoNotsup,
		"path_remove_directory": errnoNotsup, "path_rename": errnoNotsup, "path_symlink": errnoNotsup,
		"path_unlink_file": errnoNotsup, "sock_shutdown": errnoNotsup, "path_filestat_get": errnoNotsup,
		"path_open": errnoNoent, "fd_prestat_get": errnoBadf, "fd_filestat_get": errnoBadf,
		"args_get": errnoSuccess, "fd_advise": errnoSuccess, "sched_yield": errnoSuccess,
	} {
		var args []uint64
		for _, hf := range Funcs() {
			if hf.Name == name {
				args = make([]uint64, len(hf.Params))
			}
		}
		require.Equal(t, want, call(t, v, name, args...), name)
	}

	// stdout/stderr only: EBADF for any other descriptor.
	for _, name := range []string{"fd_fdstat_set_rights", "fd_allocate", "fd_datasync", "fd_filestat_set_size", "fd_filestat_set_times", "fd_sync"} {
		n := 0
		for _, hf := range Funcs() {
			if hf.Name == name {
				n = len(hf.Params)
			}
		}
		for fd, want := range map[uint64]uint32{0: errnoBadf, 1: errnoSuccess, 2: errnoSuccess, 3: errnoBadf} {
			args := make([]uint64, n)
			args[0] = fd
			require.Equal(t, want, call(t, v, name, args...), "%s(fd %d)", name, fd)
		}
	}

	// Results written to guest memory; EFAULT when the result pointer is outside it.
	fill(100)
	require.Equal(t, uint32(errnoNotdir), call(t, v, "fd_readdir", 1, 0, 0, 0, 100))
	require.Zero(t, u32At(t, v, 100), "fd_readdir bufused")
	require.Equal(t, uint32(errnoFault), call(t, v, "fd_readdir", 1, 0, 0, 0, outside))
	fill(100)
	require.Equal(t, uint32(errnoNotsup), call(t, v, "path_readlink", 3, 0, 0, 0, 0, 100))
	require.Zero(t, u32At(t, v, 100), "path_readlink bufused")
	require.Equal(t, uint32(errnoFault), call(t, v, "path_readlink", 3, 0, 0, 0, 0, outside))
	fill(100)
	require.Equal(t, uint32(errnoNotsup), call(t, v, "sock_send", 3, 0, 0, 0, 100))
	require.Zero(t, u32At(t, v, 100), "sock_send datalen")
	require.Equal(t, uint32(errnoFault), call(t, v, "sock_send", 3, 0, 0, 0, outside))
	fill(100)
	require.Equal(t, uint32(errnoNotsup), call(t, v, "sock_accept", 3, 0, 100))
	require.Zero(t, u64At(t, v, 100), "sock_accept writes a 64-bit zero")
	require.Equal(t, uint32(errnoFault), call(t, v, "sock_accept", 3, 0, outside))
	fill(100)
	fill(108)
	require.Equal(t, uint32(errnoNotsup), call(t, v, "sock_recv", 3, 0, 0, 0, 100, 108))
	require.Zero(t, u32At(t, v, 100), "sock_recv datalen")
	require.Equal(t, uint32(0xAAAA0000), u32At(t, v, 108), "sock_recv flags: a 16-bit zero")
	require.Equal(t, uint32(errnoFault), call(t, v, "sock_recv", 3, 0, 0, 0, 100, outside))
	fill(100)
	require.Equal(t, uint32(errnoSuccess), call(t, v, "poll_oneoff", 0, 0, 1, 100))
	require.Zero(t, u32At(t, v, 100), "poll_oneoff nevents")
	require.Equal(t, uint32(errnoFault), call(t, v, "poll_oneoff", 0, 0, 1, outside))
	fill(100)
	fill(108)
	require.Equal(t, uint32(errnoSuccess), call(t, v, "args_sizes_get", 100, 108))
	require.Zero(t, u32At(t, v, 100), "argc")
	require.Zero(t, u32At(t, v, 108), "argv_buf_size")
	require.Equal(t, uint32(errnoFault), call(t, v, "args_sizes_get", 100, outside))
	fill(100)
	require.Equal(t, uint32(errnoBadf), call(t, v, "fd_tell", 3, 100))
	require.Equal(t, uint32(errnoSuccess), call(t, v, "fd_tell", 1, 100))
	require.Zero(t, u64At(t, v, 100), "fd_tell offset")
	require.Equal(t, uint32(errnoFault), call(t, v, "fd_tell", 2, outside))
	require.Equal(t, uint32(errnoBadf), call(t, v, "fd_fdstat_get", 0, 100))
	require.Equal(t, uint32(errnoSuccess), call(t, v, "fd_fdstat_get", 1, 100))
	require.Equal(t, uint64(64), u64At(t, v, 108), "fd_fdstat_get fs_rights_base: FD_WRITE")
	for _, fd := range [][2]uint64{{0, 1}, {1, 3}} {
		require.Equal(t, uint32(errnoBadf), call(t, v, "fd_renumber", fd[0], fd[1]), "fd_renumber(%d, %d)", fd[0], fd[1])
	}
	require.Equal(t, uint32(errnoNotsup), call(t, v, "fd_renumber", 1, 2))

	// Clocks from the plugin's Clock: realtime (0), monotonic (1), nothing else.
	require.Equal(t, uint32(errnoSuccess), call(t, v, "clock_time_get", 0, 1, 100))
	require.Equal(t, uint64(1700000000_000000005), u64At(t, v, 100), "realtime")
	require.Equal(t, uint32(errnoSuccess), call(t, v, "clock_time_get", 1, 1, 100))
	require.Equal(t, uint64(42e9), u64At(t, v, 100), "monotonic")
	require.Equal(t, uint32(errnoNotsup), call(t, v, "clock_time_get", 2, 1, 100))
	require.Equal(t, uint32(errnoFault), call(t, v, "clock_time_get", 0, 1, outside))
	require.Equal(t, uint32(errnoSuccess), call(t, v, "clock_res_get", 1, 100))
	require.Equal(t, uint64(1), u64At(t, v, 100), "resolution")
	require.Equal(t, uint32(errnoNotsup), call(t, v, "clock_res_get", 3, 100))
	require.Equal(t, uint32(errnoFault), call(t, v, "clock_res_get", 0, outside))

	// The environment: sizes, then the pointer array and the NUL-terminated strings.
	require.Equal(t, uint32(errnoSuccess), call(t, v, "environ_sizes_get", 100, 104))
	require.Equal(t, uint32(2), u32At(t, v, 100), "environ count")
	require.Equal(t, uint32(len("A=1\x00BC=22\x00")), u32At(t, v, 104), "environ buffer size")
	require.Equal(t, uint32(errnoFault), call(t, v, "environ_sizes_get", outside, 104))
	require.Equal(t, uint32(errnoSuccess), call(t, v, "environ_get", 200, 300))
	require.Equal(t, []uint32{300, 304}, []uint32{u32At(t, v, 200), u32At(t, v, 204)}, "environ pointers")
	buf, _ := v.Mem.Read(300, 10)
	require.Equal(t, "A=1\x00BC=22\x00", string(buf))
	require.Equal(t, uint32(errnoFault), call(t, v, "environ_get", outside, 300))

	// random_get: up to 64 KiB, EINVAL above; EFAULT outside memory.
	require.Equal(t, uint32(errnoSuccess), call(t, v, "random_get", 1000, 64))
	rnd, _ := v.Mem.Read(1000, 64)
	require.NotEqual(t, make([]byte, 64), rnd, "random_get left 64 zero bytes")
	require.Equal(t, uint32(errnoSuccess), call(t, v, "random_get", outside, 0), "an empty request touches no memory")
	require.Equal(t, uint32(errnoInval), call(t, v, "random_get", 0, maxRandomGetSize+1))
	require.Equal(t, uint32(errnoFault), call(t, v, "random_get", pageSize-10, 64))

	// fd_seek, fd_close and proc_exit log at trace and succeed (proc_exit returns, no result).
	lines = nil
	require.Equal(t, uint32(errnoSuccess), call(t, v, "fd_seek", 3, 0, 0, 100))
	require.Equal(t, uint32(errnoSuccess), call(t, v, "fd_close", 3))
	call(t, v, "proc_exit", 1)
	require.Equal(t, []string{"[0] wasi_unstable fd_seek", "[0] wasi_unstable fd_close", "[0] wasi_unstable proc_exit"}, lines)
}

// fd_write and fd_pwrite: the iovecs of one call are one log line (fd 1 info, fd 2 error) without
// its trailing newline, nwritten is the byte count; EBADF for other descriptors, EFAULT for an
// iovec or nwritten outside memory.
func TestFdWrite(t *testing.T) {
	var lines []string
	v := newVM(t, nil, &lines)
	iov := make([]byte, 16)
	binary.LittleEndian.PutUint32(iov[0:], 500)
	binary.LittleEndian.PutUint32(iov[4:], 6)
	binary.LittleEndian.PutUint32(iov[8:], 600)
	binary.LittleEndian.PutUint32(iov[12:], 4)
	require.True(t, v.Mem.Write(400, iov))
	require.True(t, v.Mem.WriteString(500, "hello "))
	require.True(t, v.Mem.WriteString(600, "you\n"))

	require.Equal(t, uint32(errnoSuccess), call(t, v, "fd_write", 1, 400, 2, 100))
	require.Equal(t, uint32(10), u32At(t, v, 100), "nwritten")
	require.Equal(t, uint32(errnoSuccess), call(t, v, "fd_pwrite", 2, 400, 1, 0, 104))
	require.Equal(t, uint32(6), u32At(t, v, 104), "nwritten")
	require.Equal(t, []string{fmt.Sprintf("[%d] hello you", vm.LogInfo), fmt.Sprintf("[%d] hello ", vm.LogError)}, lines)

	require.Equal(t, uint32(errnoBadf), call(t, v, "fd_write", 3, 400, 2, 100))
	require.Equal(t, uint32(errnoBadf), call(t, v, "fd_pwrite", 0, 400, 2, 0, 100))
	require.Len(t, lines, 2, "the rejected descriptors logged: %s", strings.Join(lines, "\n"))
	// As in cpp-host writevImpl, the line is logged before nwritten is written.
	require.Equal(t, uint32(errnoFault), call(t, v, "fd_write", 1, 400, 2, outside), "nwritten outside memory")
	require.Len(t, lines, 3, "%s", strings.Join(lines, "\n"))
	require.Equal(t, uint32(errnoFault), call(t, v, "fd_write", 1, pageSize-4, 1, 100), "iovec outside memory")
	require.Equal(t, uint32(errnoFault), call(t, v, "fd_write", 1, 400, pageSize, 100), "more iovecs than memory holds")
	require.Len(t, lines, 3, "an iovec outside memory logged: %s", strings.Join(lines, "\n"))
}
