// Package abi is the dicomgate filter's one seam to the proxy-wasm host: every
// host call the filter makes on its per-connection path goes through here.
//
// abi_wasip1.go makes the raw ABI calls (//go:wasmimport) with constant,
// NUL-joined property paths and package-level out-parameters, so that the
// hot path allocates nothing, and exports the scratch allocator `malloc` the
// host calls for every value it returns. abi_native.go is the same surface
// over the SDK, so that the SDK's proxytest emulator sees the calls in native
// tests, plus the hooks those tests set for what proxytest cannot emulate
// (close_stream, set_buffer_bytes on DOWNSTREAM_DATA, the clock).
//
// Everything else (the plugin lifecycle, configuration, ticks, the other log
// levels) goes through proxy-wasm-go-sdk directly.
package abi

import (
	"errors"
	"strconv"
)

// ErrEmptyPrefix is returned by ReplaceDownstreamPrefix for empty data: the
// ABI has no way to say "drain only".
var ErrEmptyPrefix = errors.New("empty buffer prefix")

// statusNames are the proxy-wasm status codes (proxy_wasm_common.h).
var statusNames = [...]string{"OK", "NOT_FOUND", "BAD_ARGUMENT", "SERIALIZATION_FAILURE", "PARSE_FAILURE",
	"BAD_EXPRESSION", "INVALID_MEMORY_ACCESS", "EMPTY", "CAS_MISMATCH", "RESULT_MISMATCH", "INTERNAL_FAILURE",
	"BROKEN_CONNECTION", "UNIMPLEMENTED"}

// StatusError names a failed host call and the proxy-wasm status it
// returned, e.g. "proxy_set_buffer_bytes returned BAD_ARGUMENT".
func StatusError(call string, st uint32) error {
	name := "status " + strconv.FormatUint(uint64(st), 10)
	if int(st) < len(statusNames) {
		name = statusNames[st]
	}
	return errors.New(call + " returned " + name)
}
