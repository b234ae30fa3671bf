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

//go:wasmimport wasi_snapshot_preview1 clock_time_get
func clockTimeGet(clockID uint32, precision uint64, time *uint64) uint32

// logLevelInfo is proxy-wasm LogLevel INFO.
const logLevelInfo = 2

// getProperty reads the property at path (segments separated by NUL, e.g.
// "source\x00address"); ok is false when the host returned a status other
// than OK. The value is guest memory the host allocated for it.
func getProperty(path string) (value []byte, ok bool) {
	var ret *byte
	var size int32
	if proxyGetProperty(unsafe.StringData(path), int32(len(path)), unsafe.Pointer(&ret), &size) != 0 {
		return nil, false
	}
	if ret == nil {
		return nil, true
	}
	return unsafe.Slice(ret, size), true
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

// wallClock is the WASI realtime clock in one host call (time.Now also reads
// the monotonic clock, which the filter does not use).
func wallClock() time.Time {
	var ns uint64
	if clockTimeGet(0, 1, &ns) != 0 {
		return time.Now()
	}
	return time.Unix(0, int64(ns))
}
