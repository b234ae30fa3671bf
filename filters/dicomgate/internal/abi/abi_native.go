//go:build !wasip1

package abi

import (
	"errors"
	"strings"
	"time"

	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm"
)

// Outside the wasm build every call goes through the SDK, so that its
// proxytest emulator sees it, except what proxytest cannot emulate, which
// native tests supply in Emulated.

// Emulation holds the native tests' stand-ins for what the SDK's proxytest
// emulator lacks. A nil field keeps the default.
type Emulation struct {
	// CloseDownstream closes the client connection of context ctx
	// (proxytest's close_stream is a no-op). Default: the SDK's call.
	CloseDownstream func(ctx uint32) error
	// ReplaceDownstreamPrefix is set_buffer_bytes(DOWNSTREAM_DATA, 0, n,
	// data) on context ctx (proxytest panics on it). Default: an error.
	ReplaceDownstreamPrefix func(ctx uint32, n int, data []byte) error
	// Now is the clock in Unix nanoseconds. Default: time.Now.
	Now func() int64
}

// Emulated is the current emulation (native build only); tests set it and
// restore the previous value when they end.
var Emulated Emulation

// GetProperty reads the property at path (segments separated by NUL).
func GetProperty(path string) ([]byte, bool) {
	b, err := proxywasm.GetProperty(strings.Split(path, "\x00"))
	return b, err == nil
}

// SetProperty sets the property path to a non-empty value (an empty one is
// not set).
func SetProperty(path, value string) {
	if value == "" {
		return
	}
	_ = proxywasm.SetProperty(strings.Split(path, "\x00"), []byte(value))
}

// GetDownstreamData reads up to maxSize bytes of the downstream buffer.
func GetDownstreamData(start, maxSize int) ([]byte, error) {
	return proxywasm.GetDownstreamData(start, maxSize)
}

// ReplaceDownstreamPrefix is Emulated.ReplaceDownstreamPrefix (proxytest
// does not implement set_buffer_bytes on DOWNSTREAM_DATA).
func ReplaceDownstreamPrefix(ctx uint32, n int, data []byte) error {
	if Emulated.ReplaceDownstreamPrefix != nil {
		return Emulated.ReplaceDownstreamPrefix(ctx, n, data)
	}
	return errors.New("set_buffer_bytes on DOWNSTREAM_DATA is only available in the wasm build (native tests set abi.Emulated)")
}

// CloseDownstream closes the client connection of context ctx.
func CloseDownstream(ctx uint32) error {
	if Emulated.CloseDownstream != nil {
		return Emulated.CloseDownstream(ctx)
	}
	return proxywasm.CloseDownstream()
}

// CallForeignFunction calls the host's foreign function name with param.
func CallForeignFunction(name string, param []byte) error {
	_, err := proxywasm.CallForeignFunction(name, param)
	return err
}

// LogInfo logs msg at info level; an empty msg is not logged.
func LogInfo(msg []byte) {
	if len(msg) > 0 {
		proxywasm.LogInfo(string(msg))
	}
}

// Now is the wall clock in Unix nanoseconds.
func Now() int64 {
	if Emulated.Now != nil {
		return Emulated.Now()
	}
	return time.Now().UnixNano()
}

// Counter is a defined proxy-wasm counter (through the SDK, so that
// proxytest records it).
type Counter proxywasm.MetricCounter

// DefineCounter defines (or finds) the counter name.
func DefineCounter(name string) (c Counter, err error) {
	defer func() {
		if r := recover(); r != nil {
			msg := "panic"
			switch v := r.(type) {
			case string:
				msg = v
			case error:
				msg = v.Error()
			}
			err = StatusError("proxy_define_metric("+name+"): "+msg, 10)
		}
	}()
	return Counter(proxywasm.DefineCounterMetric(name)), nil
}

// Inc adds 1; a failure is ignored (a metric must not fail a connection).
func (c Counter) Inc() {
	defer func() { _ = recover() }()
	proxywasm.MetricCounter(c).Increment(1)
}

// ScratchBegin is a no-op outside the wasm build: the SDK's emulator
// allocates returned values.
func ScratchBegin() {}

// ScratchEnd is a no-op outside the wasm build.
func ScratchEnd() {}
