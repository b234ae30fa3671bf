//go:build tfmalloc

package main

import "os"

// malloc is preferred over proxy_on_memory_allocate by cpp-host WasmBase::getFunctions. With
// TF_MALLOC_HOSTCALL=1 it calls a host function that is restricted during the allocator
// (include/proxy-wasm/wasm.h WasmBase::allocMemory), which must trap.
//
//go:wasmexport malloc
func malloc(size uint32) *byte {
	if os.Getenv("TF_MALLOC_HOSTCALL") == "1" {
		rawSetEffectiveContext(1)
	}
	buf := make([]byte, size)
	return &buf[0]
}
