//go:build wasip1

package main

import "unsafe"

// Guest memory for values the host returns (proxy_get_property,
// proxy_get_buffer_bytes, ...). The ABI makes the host call the guest's
// allocator for every returned value; Envoy (proxy-wasm-cpp-host
// WasmBase::getFunctions) calls the export "malloc" when the module has one,
// else the SDK's proxy_on_memory_allocate, which is a Go heap allocation
// (make, zeroing, GC work later) on every host call.
//
// While the filter inspects a connection's data (scratchBegin ..
// scratchEnd around OnDownstreamData), blocks come from a fixed scratch
// area that is reused by the next callback: every value the host returns
// there (the RQ bytes, the property values) is used only during that
// callback (see view). Outside that window, and for blocks that do not fit,
// malloc allocates on the Go heap like the SDK does.

// scratchWords is the scratch area (uint64 words: blocks are 8-byte
// aligned); 16 KiB holds the RQ of ordinary associations and the property
// values. A larger RQ falls back to the heap.
var scratchWords [2048]uint64

var (
	scratch    = unsafe.Slice((*byte)(unsafe.Pointer(&scratchWords[0])), len(scratchWords)*8)
	scratchOn  bool
	scratchOff int
)

// scratchBegin starts a callback whose returned blocks may live in scratch.
func scratchBegin() { scratchOn, scratchOff = true, 0 }

// scratchEnd ends it: later blocks come from the heap again.
func scratchEnd() { scratchOn = false }

// malloc is the allocator the host calls for returned values.
//
//go:wasmexport malloc
func malloc(size uint32) *byte {
	if scratchOn && size > 0 {
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
