//go:build wasip1

package main

import (
	"time"
	"unsafe"
)

// Raw ABI calls for the per-association hot path. The SDK's GetProperty and
// SetProperty serialize the path (and copy the value) on every call, and
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

//go:wasmimport env proxy_call_foreign_function
func proxyCallForeignFunction(namePtr *byte, nameSize int32, paramPtr *byte, paramSize int32, returnData unsafe.Pointer, returnSize *int32) uint32

//go:wasmimport wasi_snapshot_preview1 clock_time_get
func clockTimeGet(clockID uint32, precision uint64, time *uint64) uint32

// logLevelInfo is proxy-wasm LogLevel INFO.
const logLevelInfo = 2

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
	// call (~180 guest instructions per returned value, 4 per association).
	return (*[1 << 30]byte)(unsafe.Pointer(p))[:n:n]
}

// getProperty reads the property at path (segments separated by NUL, e.g.
// "source\x00address"); ok is false when the host returned a status other
// than OK. The value is guest memory the host allocated for it.
func getProperty(path string) (value []byte, ok bool) {
	st := proxyGetProperty(unsafe.StringData(path), int32(len(path)), unsafe.Pointer(&retData), &retSize)
	b := takeReturned()
	return b, st == 0
}

// getDownstreamData reads up to maxSize bytes of the downstream buffer from
// start (the SDK's GetDownstreamData: OK without data is NOT_FOUND).
func getDownstreamData(start, maxSize int) ([]byte, error) {
	st := proxyGetBufferBytes(bufferTypeDownstreamData, int32(start), int32(maxSize), unsafe.Pointer(&retData), &retSize)
	b := takeReturned()
	if st != 0 {
		return nil, statusError("proxy_get_buffer_bytes(DOWNSTREAM_DATA)", st)
	}
	if b == nil {
		return nil, statusError("proxy_get_buffer_bytes(DOWNSTREAM_DATA)", 1)
	}
	return b, nil
}

// callForeignFunction calls the host's foreign function name with param.
func callForeignFunction(name string, param []byte) error {
	var pp *byte
	if len(param) > 0 {
		pp = &param[0]
	}
	st := proxyCallForeignFunction(unsafe.StringData(name), int32(len(name)), pp, int32(len(param)), unsafe.Pointer(&retData), &retSize)
	takeReturned()
	if st != 0 {
		return statusError("proxy_call_foreign_function("+name+")", st)
	}
	return nil
}

// setProperty sets the property path (one segment, or NUL-separated) to a
// non-empty value; the host copies both.
func setProperty(path, value string) {
	if value == "" {
		return
	}
	_ = proxySetProperty(unsafe.StringData(path), int32(len(path)), unsafe.StringData(value), int32(len(value)))
}

// logInfoBytes logs msg at info level without converting it to a string
// (the host copies it).
func logInfoBytes(msg []byte) {
	if len(msg) == 0 {
		return
	}
	_ = proxyLog(logLevelInfo, &msg[0], int32(len(msg)))
}

// wallClock is the WASI realtime clock in Unix nanoseconds, in one host
// call (time.Now also reads the monotonic clock, which the filter does not
// use, and converting to and from time.Time costs 64-bit divisions).
func wallClock() int64 {
	if clockTimeGet(0, 1, &clockOut) != 0 {
		return time.Now().UnixNano()
	}
	return int64(clockOut)
}
