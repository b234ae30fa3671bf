// Package abi is the proxy-wasm ABI 0.2.x imports of module "env" (the proxy_* host functions a
// guest calls): each import reads its arguments from the call stack with vm.Args (the argument
// reader the WASI imports use too), reads or writes guest memory through the VM, does its work
// through packages properties, metrics and shared or on the calling context's stream, and returns
// a proxy_status_t.
//
// It follows proxy-wasm-cpp-host include/proxy-wasm/exports.h (FOR_ALL_HOST_FUNCTIONS) and
// src/exports.cc (argument checks, status codes), src/wasm.cc WasmBase::registerCallbacks (the
// 0.2.x-only continue_stream, close_stream, get_log_level), and Envoy
// source/extensions/common/wasm/context.cc for what each call does on a network filter.
package abi

import (
	"time"

	"github.com/dicomgate/dicomgate/wasm/host/internal/vm"
	"github.com/tetratelabs/wazero/api"
)

// proxy_status_t (proxy-wasm spec; proxy-wasm-cpp-sdk proxy_wasm_common.h).
const (
	statusOK                   = 0
	statusNotFound             = 1
	statusBadArgument          = 2
	statusSerializationFailure = 3
	statusParseFailure         = 4
	statusInvalidMemoryAccess  = 6
	statusEmpty                = 7
	statusCASMismatch          = 8
	statusInternalFailure      = 10
	statusUnimplemented        = 12
)

// Buffer, stream and header-map enums (proxy-wasm spec; cpp-host wasm_enums.h).
const (
	bufHTTPRequestBody     = 0
	bufHTTPResponseBody    = 1
	bufDownstreamData      = 2
	bufUpstreamData        = 3
	bufHTTPCallResponse    = 4
	bufGRPCReceive         = 5
	bufVMConfiguration     = 6
	bufPluginConfiguration = 7
	bufCallData            = 8
	bufMax                 = bufCallData

	streamHTTPRequest  = 0
	streamHTTPResponse = 1
	streamDownstream   = 2
	streamUpstream     = 3
	streamMax          = streamUpstream

	headerMapMax = 7 // HttpCallResponseTrailers
)

var (
	resI32  = []api.ValueType{api.ValueTypeI32}
	resNone = []api.ValueType{}
)

// Funcs is cpp-host FOR_ALL_HOST_FUNCTIONS plus the 0.2.x ABI-specific continue_stream,
// close_stream and get_log_level (src/wasm.cc WasmBase::registerCallbacks), and the two emscripten
// helpers. Semantics follow src/exports.cc and Envoy source/extensions/common/wasm/context.cc.
func Funcs() []*vm.HostFunc {
	// e declares a proxy_* import: counted in VM.HostCalls, its return value the proxy_status_t.
	e := func(name, params string, fn func(v *vm.VM, s []uint64) uint32) *vm.HostFunc {
		return &vm.HostFunc{Module: "env", Name: name, Params: vm.Sig(params), Results: resI32, Fn: vm.Returning(fn), Countable: true}
	}
	log := e("proxy_log", "iii", envLog)
	log.AllowInit, log.AllowAlloc = true, true
	notify := &vm.HostFunc{Module: "env", Name: "emscripten_notify_memory_growth", Params: vm.Sig("i"), Results: resNone,
		Fn: func(*vm.VM, []uint64) {}, AllowInit: true}
	return []*vm.HostFunc{
		log,
		notify,
		{Module: "env", Name: "pthread_equal", Params: vm.Sig("ii"), Results: resI32, Fn: vm.Returning(func(_ *vm.VM, s []uint64) uint32 {
			if s[0] == s[1] {
				return 1
			}
			return 0
		})},
		e("proxy_get_status", "iii", func(v *vm.VM, s []uint64) uint32 {
			// Root context status of the last http/grpc call: none in this host ⇒ (0, "").
			a := vm.ArgsOf(v, s)
			codePtr, msgPtr, msgSize := a.U32(), a.U32(), a.U32()
			return wrote(v.Mem.WriteUint32Le(codePtr, 0) && v.CopyOut(nil, msgPtr, msgSize))
		}),
		e("proxy_set_property", "iiii", envSetProperty),
		e("proxy_get_property", "iiii", envGetProperty),
		// HTTP-only: a network filter has no decoder callbacks, Envoy returns OK and does nothing
		// (Context::sendLocalResponse).
		e("proxy_send_local_response", "iiiiiiii", always(statusOK)),
		e("proxy_get_shared_data", "iiiii", envGetSharedData),
		e("proxy_set_shared_data", "iiiii", envSetSharedData),
		e("proxy_register_shared_queue", "iii", envRegisterSharedQueue),
		e("proxy_resolve_shared_queue", "iiiii", envResolveSharedQueue),
		e("proxy_dequeue_shared_queue", "iii", envDequeueSharedQueue),
		e("proxy_enqueue_shared_queue", "iii", envEnqueueSharedQueue),
		// Header maps do not exist on a network filter: Envoy Context::getMap returns nullptr ⇒
		// BAD_ARGUMENT ("Requested map type is not currently available"); get_header_map_pairs returns
		// OK with no pairs.
		e("proxy_get_header_map_value", "iiiii", always(statusBadArgument)),
		e("proxy_add_header_map_value", "iiiii", always(statusBadArgument)),
		e("proxy_replace_header_map_value", "iiiii", always(statusBadArgument)),
		e("proxy_remove_header_map_value", "iii", always(statusBadArgument)),
		e("proxy_get_header_map_pairs", "iii", func(v *vm.VM, s []uint64) uint32 {
			a := vm.ArgsOf(v, s)
			typ, ptrPtr, sizePtr := a.U32(), a.U32(), a.U32()
			if typ > headerMapMax {
				return statusBadArgument
			}
			return wrote(v.CopyOut(nil, ptrPtr, sizePtr))
		}),
		e("proxy_set_header_map_pairs", "iii", always(statusBadArgument)),
		e("proxy_get_header_map_size", "ii", always(statusBadArgument)),
		e("proxy_get_buffer_status", "iii", envGetBufferStatus),
		e("proxy_get_buffer_bytes", "iiiii", envGetBufferBytes),
		e("proxy_set_buffer_bytes", "iiiii", envSetBufferBytes),
		// No upstream clusters are known to this host: Envoy returns BAD_ARGUMENT for an unknown
		// cluster (Context::httpCall).
		e("proxy_http_call", "iiiiiiiiii", func(v *vm.VM, s []uint64) uint32 {
			a := vm.ArgsOf(v, s)
			a.Skip(9) // upstream, headers, body, trailers, timeout
			if tokenPtr := a.U32(); !v.Mem.WriteUint32Le(tokenPtr, 0) {
				return statusInvalidMemoryAccess
			}
			return statusBadArgument
		}),
		e("proxy_grpc_call", "iiiiiiiiiiii", always(statusBadArgument)),
		e("proxy_grpc_stream", "iiiiiiiii", always(statusBadArgument)),
		e("proxy_grpc_close", "i", always(statusNotFound)),
		e("proxy_grpc_cancel", "i", always(statusNotFound)),
		e("proxy_grpc_send", "iiii", always(statusNotFound)),
		e("proxy_set_tick_period_milliseconds", "i", envSetTickPeriod),
		e("proxy_get_current_time_nanoseconds", "i", func(v *vm.VM, s []uint64) uint32 {
			a := vm.ArgsOf(v, s)
			return wrote(v.Mem.WriteUint64Le(a.U32(), uint64(v.Plugin.Clock.Now().UnixNano())))
		}),
		e("proxy_define_metric", "iiii", envDefineMetric),
		e("proxy_increment_metric", "iI", envIncrementMetric),
		e("proxy_record_metric", "iI", envRecordMetric),
		e("proxy_get_metric", "ii", envGetMetric),
		e("proxy_set_effective_context", "i", func(v *vm.VM, s []uint64) uint32 {
			// cpp-host exports.cc set_effective_context: unknown id ⇒ BAD_ARGUMENT.
			a := vm.ArgsOf(v, s)
			id := a.U32()
			if _, ok := v.Contexts[id]; !ok {
				return statusBadArgument
			}
			v.Effective = id
			return statusOK
		}),
		e("proxy_done", "", func(v *vm.VM, s []uint64) uint32 {
			// cpp-host WasmBase::done: only a root context whose proxy_on_done returned false.
			if v.ContextOrEffective() != v.Root || !v.PendingDone {
				return statusNotFound
			}
			v.PendingDone = false
			return statusOK
		}),
		e("proxy_call_foreign_function", "iiiiii", envCallForeignFunction),
		e("proxy_continue_stream", "i", envContinueStream),
		e("proxy_close_stream", "i", envCloseStream),
		e("proxy_get_log_level", "i", func(v *vm.VM, s []uint64) uint32 {
			a := vm.ArgsOf(v, s)
			return wrote(v.Mem.WriteUint32Le(a.U32(), uint32(v.Plugin.LogLevel)))
		}),
	}
}

// wrote is the status of an import whose last step writes its results into guest memory: OK, or
// INVALID_MEMORY_ACCESS when a write (or the guest allocation of a copy) failed.
func wrote(ok bool) uint32 {
	if !ok {
		return statusInvalidMemoryAccess
	}
	return statusOK
}

// always returns an import that does nothing but return st.
func always(st uint32) func(*vm.VM, []uint64) uint32 {
	return func(*vm.VM, []uint64) uint32 { return st }
}

// envLog is cpp-host exports.cc log: level > LogLevel::Max (critical = 5) ⇒ BAD_ARGUMENT.
func envLog(v *vm.VM, s []uint64) uint32 {
	a := vm.ArgsOf(v, s)
	level := a.U32()
	if level > uint32(vm.LogCritical) {
		return statusBadArgument
	}
	msg := a.View() // a view: LogView copies it unless the Logger is a LogViewer

	if !a.OK() {
		return statusInvalidMemoryAccess
	}
	v.LogView(vm.LogLevel(level), msg)
	return statusOK
}

// envSetTickPeriod is Envoy Wasm::setTimerPeriod: one period per root context per VM; 0 disables.
func envSetTickPeriod(v *vm.VM, s []uint64) uint32 {
	a := vm.ArgsOf(v, s)
	ms := a.U32()
	v.TickPeriod = time.Duration(ms) * time.Millisecond
	if ms > 0 {
		v.NextTick = v.Plugin.Clock.Now().Add(v.TickPeriod)
	}
	return statusOK
}

// envContinueStream is Envoy Context::continueStream for a network filter: DOWNSTREAM ⇒ deferred
// read_callbacks->continueReading(); UPSTREAM ⇒ UNIMPLEMENTED; > UPSTREAM ⇒ BAD_ARGUMENT (cpp-host
// exports.cc); HTTP REQUEST/RESPONSE ⇒ OK and nothing (no decoder/encoder callbacks).
func envContinueStream(v *vm.VM, s []uint64) uint32 {
	a := vm.ArgsOf(v, s)
	t := a.U32()
	if t > streamMax {
		return statusBadArgument
	}
	c := v.ContextOrEffective()
	switch t {
	case streamDownstream:
		if c.Stream != nil {
			v.Defer(c.Stream, vm.DeferContinueDownstream)
		}
		return statusOK
	case streamUpstream:
		return statusUnimplemented
	default:
		return statusOK
	}
}

// envCloseStream is Envoy Context::closeStream: DOWNSTREAM and UPSTREAM both close the downstream
// connection with FlushWrite, deferred (the read and write filter callbacks share one connection);
// HTTP REQUEST/RESPONSE ⇒ OK and nothing on a network filter; > UPSTREAM ⇒ BAD_ARGUMENT.
func envCloseStream(v *vm.VM, s []uint64) uint32 {
	a := vm.ArgsOf(v, s)
	t := a.U32()
	if t > streamMax {
		return statusBadArgument
	}
	c := v.ContextOrEffective()
	switch t {
	case streamDownstream, streamUpstream:
		if c.Stream != nil {
			kind := vm.DeferCloseDownstream
			if t == streamUpstream {
				kind = vm.DeferCloseUpstream
			}
			v.Defer(c.Stream, kind)
		}
		return statusOK
	default:
		return statusOK
	}
}

// bufferOf returns the buffer for get/set_buffer_bytes (Envoy Context::getBuffer). avail=false
// with ok=true means "an empty buffer object" (network buffer without a held pointer); ok=false
// means no buffer at all (NOT_FOUND).
func bufferOf(v *vm.VM, c *vm.Context, t uint32) (buf *[]byte, avail, ok bool) {
	switch t {
	case bufVMConfiguration:
		b := v.Plugin.VMConfig
		return &b, true, true
	case bufPluginConfiguration:
		if v.Configuring {
			b := v.PluginConfig
			return &b, true, true
		}
		return nil, false, false
	case bufDownstreamData:
		if c.Stream == nil {
			return nil, false, true
		}
		b, held := c.Stream.DownstreamBuffer()
		return b, held, true
	case bufUpstreamData:
		if c.Stream == nil {
			return nil, false, true
		}
		b, held := c.Stream.UpstreamBuffer()
		return b, held, true
	case bufHTTPRequestBody, bufHTTPResponseBody, bufGRPCReceive, bufCallData:
		// buffer_.set(nullptr) on a network filter: an empty buffer (get OK with (0,0), set
		// BAD_ARGUMENT). CALL_DATA is Envoy's shared buffer_, only meaningful inside a call that set
		// it; modelled as empty.
		return nil, false, true
	}
	// HTTP_CALL_RESPONSE_BODY without a response, and unknown types ⇒ nullptr ⇒ NOT_FOUND.
	return nil, false, false
}

// buffer is the check get_buffer_status, get_buffer_bytes and set_buffer_bytes start with (cpp-host
// exports.cc): a type above the last one ⇒ BAD_ARGUMENT, no such buffer ⇒ NOT_FOUND; else bufferOf's
// answer on the current-or-effective context and OK.
func buffer(v *vm.VM, t uint32) (buf *[]byte, avail bool, st uint32) {
	if t > bufMax {
		return nil, false, statusBadArgument
	}
	buf, avail, ok := bufferOf(v, v.ContextOrEffective(), t)
	if !ok {
		return nil, false, statusNotFound
	}
	return buf, avail, statusOK
}

// envGetBufferBytes is cpp-host exports.cc get_buffer_bytes.
func envGetBufferBytes(v *vm.VM, s []uint64) uint32 {
	a := vm.ArgsOf(v, s)
	t, start, length, ptrPtr, sizePtr := a.U32(), a.U32(), a.U32(), a.U32(), a.U32()
	buf, avail, status := buffer(v, t)
	if status != statusOK {
		return status
	}
	// cpp-host checks start+length for overflow in 64-bit Words, which 32-bit arguments never reach.
	var data []byte
	if avail {
		data = *buf
	}
	size := uint64(len(data))
	st, ln := uint64(start), uint64(length)
	if st > size {
		ln = 0
	} else if st+ln > size {
		ln = size - st
	}
	var out []byte
	if ln > 0 {
		out = data[st : st+ln]
	}
	return wrote(v.CopyOut(out, ptrPtr, sizePtr))
}

// envGetBufferStatus is cpp-host exports.cc get_buffer_status.
func envGetBufferStatus(v *vm.VM, s []uint64) uint32 {
	a := vm.ArgsOf(v, s)
	t, sizePtr, flagsPtr := a.U32(), a.U32(), a.U32()
	buf, avail, st := buffer(v, t)
	if st != statusOK {
		return st
	}
	n := 0
	if avail {
		n = len(*buf)
	}
	return wrote(v.Mem.WriteUint32Le(sizePtr, uint32(n)) && v.Mem.WriteUint32Le(flagsPtr, 0))
}

// envSetBufferBytes is Envoy Buffer::copyFrom: start 0 ⇒ drain `size` bytes then prepend; start ≥
// length ⇒ append; 0 < start < length ⇒ BAD_ARGUMENT; no held buffer ⇒ BAD_ARGUMENT; immutable
// buffers (configuration) ⇒ BAD_ARGUMENT.
func envSetBufferBytes(v *vm.VM, s []uint64) uint32 {
	a := vm.ArgsOf(v, s)
	t, start, size := a.U32(), a.U32(), a.U32()
	buf, avail, st := buffer(v, t)
	if st != statusOK {
		return st
	}
	data := a.Bytes() // read after the type and buffer checks: their statuses come first
	if !a.OK() {
		return statusInvalidMemoryAccess
	}
	if !avail || t == bufVMConfiguration || t == bufPluginConfiguration {
		return statusBadArgument
	}
	cur := *buf
	switch {
	case start == 0:
		drain := int(size)
		if drain > len(cur) {
			drain = len(cur)
		}
		nb := make([]byte, 0, len(data)+len(cur)-drain)
		nb = append(nb, data...)
		nb = append(nb, cur[drain:]...)
		*buf = nb
	case int(start) >= len(cur):
		*buf = append(cur, data...)
	default:
		return statusBadArgument
	}
	return statusOK
}
