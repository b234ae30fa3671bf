//go:build !wasip1

package main

import "errors"

// setDownstreamPrefix is unavailable outside the wasm build: the SDK's
// proxytest emulator does not implement set_buffer_bytes on DOWNSTREAM_DATA.
// Native tests install their own hostReplaceDownstreamPrefix.
func setDownstreamPrefix(uint32, int, []byte) error {
	return errors.New("set_buffer_bytes on DOWNSTREAM_DATA is only available in the wasm build")
}
