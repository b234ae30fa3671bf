package main

import "github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm"

// Host calls the filter makes that the SDK's proxytest emulator cannot
// observe or does not implement (close_stream is a no-op there, and
// set_buffer_bytes on DOWNSTREAM_DATA panics). Native tests replace them;
// the wasm build uses the real host calls.
var (
	// hostCloseDownstream closes the client connection of context id, which
	// is the current context or was made effective with
	// proxywasm.SetEffectiveContext (Envoy context.cc Context::closeStream).
	hostCloseDownstream = func(id uint32) error { return proxywasm.CloseDownstream() }
	// hostReplaceDownstreamPrefix replaces the first n bytes of the paused
	// downstream buffer of context id by data: set_buffer_bytes(DOWNSTREAM,
	// 0, n, data), which Envoy implements as drain n bytes, then prepend
	// (context.cc Buffer::copyFrom; only offset 0 is supported there).
	hostReplaceDownstreamPrefix = setDownstreamPrefix
	// now is the wall clock in Unix nanoseconds (one WASI clock_time_get
	// realtime call in the wasm build, see wallClock).
	now = wallClock
)
