//go:build wasip1

package abi

import (
	"strconv"
	"time"
	"unsafe"

	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm"
)

// Raw ABI calls for the per-association hot path. The SDK's GetProperty and
// SetProperty serialize the path (and copy the value) on every call, its
// metric calls format their panic messages with fmt (~360 KB of module), it
// offers set_buffer_bytes only as append, prepend and replace-all, and
// time.Now makes two WASI clock calls (wall and monotonic); in the guest each
// allocation costs about as much as the host call itself. Paths here are
// constants already joined with NUL separators.

//go:wasmimport env proxy_get_property
func proxyGetProperty(pathData *byte, pathSize int32, returnValueData unsafe.Pointer, returnValueSize *int32) uint32

//go:wasmimport env proxy_set_property
func proxySetProperty(pathData *byte, pathSize int32, valueData *byte, valueSize int32) uint32

//go:wasmimport env proxy_log
func proxyLog(level int32, messageData *byte, messageSize int32) uint32

//go:wasmimport env proxy_get_buffer_bytes
func proxyGetBufferBytes(bufferType uint32, start, maxSize int32, returnBufferData unsafe.Pointer, returnBufferSize *int32) uint32

//go:wasmimport env proxy_set_buffer_bytes
func proxySetBufferBytes(bufferType uint32, start, size int32, data *byte, dataLen int32) uint32

//go:wasmimport env proxy_call_foreign_function
func proxyCallForeignFunction(namePtr *byte, nameSize int32, paramPtr *byte, paramSize int32, returnData unsafe.Pointer, returnSize *int32) uint32

//go:wasmimport env proxy_define_metric
func proxyDefineMetric(metricType uint32, name *byte, nameLen int32, returnID *uint32) uint32

//go:wasmimport env proxy_increment_metric
func proxyIncrementMetric(id uint32, delta int64) uint32

//go:wasmimport wasi_snapshot_preview1 clock_time_get
func clockTimeGet(clockID uint32, precision uint64, time *uint64) uint32

// ABI constants (proxy_wasm_common.h).
const (
	logLevelInfo             = 2 // LogLevel INFO
	bufferTypeDownstreamData = 2 // BufferType DOWNSTREAM_DATA
	metricTypeCounter        = 0 // MetricType COUNTER
)

// Out-parameters of the calls above. Passing the address of a local to a
// wasmimport moves the local to the heap (two allocations per call); a VM
// runs one callback at a time, so package-level slots can be reused. retData
// is cleared after each call so it does not keep the block alive.
var (
	retData  *byte
	retSize  int32
	clockOut uint64
)

// takeReturned returns the block the host wrote to retData/retSize.
func takeReturned() []byte {
	p, n := retData, retSize
	retData, retSize = nil, 0
	if p == nil {
		return nil
	}
	// An array-pointer slice: unsafe.Slice checks its length with a runtime
	// call on every returned value (bench/RESULTS.md §1.11).
	return (*[1 << 30]byte)(unsafe.Pointer(p))[:n:n]
}

// GetProperty reads the property at path (segments separated by NUL, e.g.
// "source\x00address"); ok is false when the host returned a status other
// than OK. The value is guest memory the host allocated for it (in the
// scratch area between ScratchBegin and ScratchEnd).
func GetProperty(path string) (value []byte, ok bool) {
	st := proxyGetProperty(unsafe.StringData(path), int32(len(path)), unsafe.Pointer(&retData), &retSize)
	b := takeReturned()
	return b, st == 0
}

// SetProperty sets the property path (one segment, or NUL-separated) to a
// non-empty value (an empty one is not set); the host copies both.
func SetProperty(path, value string) {
	if value == "" {
		return
	}
	_ = proxySetProperty(unsafe.StringData(path), int32(len(path)), unsafe.StringData(value), int32(len(value)))
}

// GetDownstreamData reads up to maxSize bytes of the downstream buffer from
// start (as the SDK's GetDownstreamData: OK without data is NOT_FOUND).
func GetDownstreamData(start, maxSize int) ([]byte, error) {
	st := proxyGetBufferBytes(bufferTypeDownstreamData, int32(start), int32(maxSize), unsafe.Pointer(&retData), &retSize)
	b := takeReturned()
	if st != 0 {
		return nil, StatusError("proxy_get_buffer_bytes(DOWNSTREAM_DATA)", st)
	}
	if b == nil {
		return nil, StatusError("proxy_get_buffer_bytes(DOWNSTREAM_DATA)", 1)
	}
	return b, nil
}

// ReplaceDownstreamPrefix replaces the first n bytes of the paused
// downstream buffer of the current context by data (n = 0: prepend):
// set_buffer_bytes(DOWNSTREAM_DATA, 0, n, data), which Envoy implements as
// drain n bytes, then prepend (context.cc Buffer::copyFrom; only offset 0 is
// supported there). ctx is used by the native tests' emulation only.
func ReplaceDownstreamPrefix(ctx uint32, n int, data []byte) error {
	if len(data) == 0 {
		return ErrEmptyPrefix
	}
	if st := proxySetBufferBytes(bufferTypeDownstreamData, 0, int32(n), &data[0], int32(len(data))); st != 0 {
		return StatusError("proxy_set_buffer_bytes(DOWNSTREAM_DATA, 0, "+strconv.Itoa(n)+")", st)
	}
	return nil
}

// CloseDownstream closes the client connection of the current context (or
// the one made effective with proxywasm.SetEffectiveContext; Envoy
// context.cc Context::closeStream). ctx is used by the native tests'
// emulation only.
func CloseDownstream(ctx uint32) error { return proxywasm.CloseDownstream() }

// CallForeignFunction calls the host's foreign function name with param.
func CallForeignFunction(name string, param []byte) error {
	var pp *byte
	if len(param) > 0 {
		pp = &param[0]
	}
	st := proxyCallForeignFunction(unsafe.StringData(name), int32(len(name)), pp, int32(len(param)), unsafe.Pointer(&retData), &retSize)
	takeReturned()
	if st != 0 {
		return StatusError("proxy_call_foreign_function("+name+")", st)
	}
	return nil
}

// LogInfo logs msg at info level without converting it to a string (the
// host copies it); an empty msg is not logged.
func LogInfo(msg []byte) {
	if len(msg) == 0 {
		return
	}
	_ = proxyLog(logLevelInfo, &msg[0], int32(len(msg)))
}

// Now is the WASI realtime clock in Unix nanoseconds, in one host call
// (time.Now also reads the monotonic clock, which the filter does not use,
// and converting to and from time.Time costs 64-bit divisions).
func Now() int64 {
	if clockTimeGet(0, 1, &clockOut) != 0 {
		return time.Now().UnixNano()
	}
	return int64(clockOut)
}

// Counter is a defined proxy-wasm counter.
type Counter uint32

// DefineCounter defines (or finds) the counter name; an error names the
// metric and the host status.
func DefineCounter(name string) (Counter, error) {
	b := []byte(name)
	var id uint32
	if len(b) == 0 {
		return 0, StatusError("proxy_define_metric(\"\")", 2)
	}
	if st := proxyDefineMetric(metricTypeCounter, &b[0], int32(len(b)), &id); st != 0 {
		return 0, StatusError("proxy_define_metric("+name+")", st)
	}
	return Counter(id), nil
}

// Inc adds 1; a failure is ignored (a metric must not fail a connection).
func (c Counter) Inc() { _ = proxyIncrementMetric(uint32(c), 1) }

// Guest memory for values the host returns (proxy_get_property,
// proxy_get_buffer_bytes, ...). The ABI makes the host call the guest's
// allocator for every returned value; Envoy (proxy-wasm-cpp-host
// WasmBase::getFunctions) calls the export "malloc" when the module has one,
// else the SDK's proxy_on_memory_allocate, which is a Go heap allocation
// (make, zeroing, GC work later) on every host call.
//
// Between ScratchBegin and ScratchEnd (the filter brackets its inspection of
// a connection's data with them), blocks come from a fixed scratch area that
// the next window reuses: every value the host returns there (the RQ bytes,
// the property values) must be used only during that callback. Outside that
// window, and for blocks that do not fit, malloc allocates on the Go heap like
// the SDK does.

// scratchWords is the scratch area (uint64 words: blocks are 8-byte
// aligned); 16 KiB holds the RQ of ordinary associations and the property
// values. A larger RQ falls back to the heap.
var scratchWords [2048]uint64

// scratchOn: a window is open; scratchOff: the bytes of scratchWords
// handed out in it.
var (
	scratchOn  bool
	scratchOff int
)

// ScratchBegin starts a callback whose returned blocks may live in scratch.
func ScratchBegin() { scratchOn, scratchOff = true, 0 }

// ScratchEnd ends it: later blocks come from the heap again.
func ScratchEnd() { scratchOn = false }

// malloc is the allocator the host calls for returned values. The export is
// kept by the linker because package main imports this package.
//
//go:wasmexport malloc
func malloc(size uint32) *byte {
	if scratchOn && size > 0 {
		// The area as bytes (a conversion, not a package-level slice,
		// which would need an init function).
		scratch := (*[len(scratchWords) * 8]byte)(unsafe.Pointer(&scratchWords))
		n := (int(size) + 7) &^ 7
		if n <= len(scratch)-scratchOff {
			p := &scratch[scratchOff]
			scratchOff += n
			return p
		}
	}
	if size == 0 {
		size = 1
	}
	buf := make([]byte, size)
	return &buf[0]
}
