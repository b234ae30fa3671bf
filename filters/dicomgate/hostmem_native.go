//go:build !wasip1

package main

// Outside the wasm build the SDK's emulator allocates returned values; the
// scratch window is a no-op.

func scratchBegin() {}

func scratchEnd() {}
