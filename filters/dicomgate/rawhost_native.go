//go:build !wasip1

package main

import (
	"strings"
	"time"

	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm"
)

// Outside the wasm build the raw ABI helpers go through the SDK, so that the
// proxytest emulator sees them.

// getProperty reads the property at path (segments separated by NUL).
func getProperty(path string) ([]byte, bool) {
	b, err := proxywasm.GetProperty(strings.Split(path, "\x00"))
	return b, err == nil
}

// setProperty sets the property path to a non-empty value.
func setProperty(path, value string) {
	if value == "" {
		return
	}
	_ = proxywasm.SetProperty(strings.Split(path, "\x00"), []byte(value))
}

// getDownstreamData reads up to maxSize bytes of the downstream buffer.
func getDownstreamData(start, maxSize int) ([]byte, error) {
	return proxywasm.GetDownstreamData(start, maxSize)
}

// callForeignFunction calls the host's foreign function name with param.
func callForeignFunction(name string, param []byte) error {
	_, err := proxywasm.CallForeignFunction(name, param)
	return err
}

// logInfoBytes logs msg at info level.
func logInfoBytes(msg []byte) { proxywasm.LogInfo(string(msg)) }

// wallClock is the wall clock in Unix nanoseconds.
func wallClock() int64 { return time.Now().UnixNano() }
