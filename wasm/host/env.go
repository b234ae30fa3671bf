package host

import (
	"time"
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

func u32(s []uint64, i int) uint32 { return uint32(s[i]) }

// envFuncs is cpp-host FOR_ALL_HOST_FUNCTIONS plus the 0.2.x ABI-specific continue_stream,
// close_stream and get_log_level (src/wasm.cc WasmBase::registerCallbacks), and the two emscripten
// helpers. Semantics follow src/exports.cc and Envoy source/extensions/common/wasm/context.cc.
func envFuncs() []*hostFunc {
	e := func(name, params string, fn func(v *vm, s []uint64)) *hostFunc {
		return &hostFunc{module: "env", name: name, params: sig(params), results: resI32, fn: fn, countable: true}
	}
	log := e("proxy_log", "iii", envLog)
	log.allowInit, log.allowAlloc = true, true
	notify := &hostFunc{module: "env", name: "emscripten_notify_memory_growth", params: sig("i"), results: resNone,
		fn: func(*vm, []uint64) {}, allowInit: true}
	return []*hostFunc{
		log,
		notify,
		{module: "env", name: "pthread_equal", params: sig("ii"), results: resI32, fn: func(_ *vm, s []uint64) {
			if s[0] == s[1] {
				ret(s, 1)
			} else {
				ret(s, 0)
			}
		}},
		e("proxy_get_status", "iii", func(v *vm, s []uint64) {
			// Root context status of the last http/grpc call: none in this host ⇒ (0, "").
			if !v.mem.WriteUint32Le(u32(s, 0), 0) || !v.copyOut(nil, u32(s, 1), u32(s, 2)) {
				ret(s, statusInvalidMemoryAccess)
				return
			}
			ret(s, statusOK)
		}),
		e("proxy_set_property", "iiii", envSetProperty),
		e("proxy_get_property", "iiii", envGetProperty),
		// HTTP-only: a network filter has no decoder callbacks, Envoy returns OK and does nothing
		// (Context::sendLocalResponse).
		e("proxy_send_local_response", "iiiiiiii", func(_ *vm, s []uint64) { ret(s, statusOK) }),
		e("proxy_get_shared_data", "iiiii", envGetSharedData),
		e("proxy_set_shared_data", "iiiii", envSetSharedData),
		e("proxy_register_shared_queue", "iii", envRegisterSharedQueue),
		e("proxy_resolve_shared_queue", "iiiii", envResolveSharedQueue),
		e("proxy_dequeue_shared_queue", "iii", envDequeueSharedQueue),
		e("proxy_enqueue_shared_queue", "iii", envEnqueueSharedQueue),
		// Header maps do not exist on a network filter: Envoy Context::getMap returns nullptr ⇒
		// BAD_ARGUMENT ("Requested map type is not currently available"); get_header_map_pairs returns
		// OK with no pairs.
		e("proxy_get_header_map_value", "iiiii", headerMapBadArgument),
		e("proxy_add_header_map_value", "iiiii", headerMapBadArgument),
		e("proxy_replace_header_map_value", "iiiii", headerMapBadArgument),
		e("proxy_remove_header_map_value", "iii", headerMapBadArgument),
		e("proxy_get_header_map_pairs", "iii", func(v *vm, s []uint64) {
			if u32(s, 0) > headerMapMax {
				ret(s, statusBadArgument)
				return
			}
			if !v.copyOut(nil, u32(s, 1), u32(s, 2)) {
				ret(s, statusInvalidMemoryAccess)
				return
			}
			ret(s, statusOK)
		}),
		e("proxy_set_header_map_pairs", "iii", headerMapBadArgument),
		e("proxy_get_header_map_size", "ii", headerMapBadArgument),
		e("proxy_get_buffer_status", "iii", envGetBufferStatus),
		e("proxy_get_buffer_bytes", "iiiii", envGetBufferBytes),
		e("proxy_set_buffer_bytes", "iiiii", envSetBufferBytes),
		// No upstream clusters are known to this host: Envoy returns BAD_ARGUMENT for an unknown
		// cluster (Context::httpCall).
		e("proxy_http_call", "iiiiiiiiii", func(v *vm, s []uint64) {
			if !v.mem.WriteUint32Le(u32(s, 9), 0) {
				ret(s, statusInvalidMemoryAccess)
				return
			}
			ret(s, statusBadArgument)
		}),
		e("proxy_grpc_call", "iiiiiiiiiiii", func(_ *vm, s []uint64) { ret(s, statusBadArgument) }),
		e("proxy_grpc_stream", "iiiiiiiii", func(_ *vm, s []uint64) { ret(s, statusBadArgument) }),
		e("proxy_grpc_close", "i", func(_ *vm, s []uint64) { ret(s, statusNotFound) }),
		e("proxy_grpc_cancel", "i", func(_ *vm, s []uint64) { ret(s, statusNotFound) }),
		e("proxy_grpc_send", "iiii", func(_ *vm, s []uint64) { ret(s, statusNotFound) }),
		e("proxy_set_tick_period_milliseconds", "i", envSetTickPeriod),
		e("proxy_get_current_time_nanoseconds", "i", func(v *vm, s []uint64) {
			if !v.mem.WriteUint64Le(u32(s, 0), uint64(v.p.clock.Now().UnixNano())) {
				ret(s, statusInvalidMemoryAccess)
				return
			}
			ret(s, statusOK)
		}),
		e("proxy_define_metric", "iiii", envDefineMetric),
		e("proxy_increment_metric", "iI", envIncrementMetric),
		e("proxy_record_metric", "iI", envRecordMetric),
		e("proxy_get_metric", "ii", envGetMetric),
		e("proxy_set_effective_context", "i", func(v *vm, s []uint64) {
			// cpp-host exports.cc set_effective_context: unknown id ⇒ BAD_ARGUMENT.
			if _, ok := v.contexts[u32(s, 0)]; !ok {
				ret(s, statusBadArgument)
				return
			}
			v.effective = u32(s, 0)
			ret(s, statusOK)
		}),
		e("proxy_done", "", func(v *vm, s []uint64) {
			// cpp-host WasmBase::done: only a root context whose proxy_on_done returned false.
			if v.contextOrEffective() != v.root || !v.pendingDone {
				ret(s, statusNotFound)
				return
			}
			v.pendingDone = false
			ret(s, statusOK)
		}),
		e("proxy_call_foreign_function", "iiiiii", envCallForeignFunction),
		e("proxy_continue_stream", "i", envContinueStream),
		e("proxy_close_stream", "i", envCloseStream),
		e("proxy_get_log_level", "i", func(v *vm, s []uint64) {
			if !v.mem.WriteUint32Le(u32(s, 0), uint32(v.p.logLevel)) {
				ret(s, statusInvalidMemoryAccess)
				return
			}
			ret(s, statusOK)
		}),
	}
}

func headerMapBadArgument(_ *vm, s []uint64) { ret(s, statusBadArgument) }

// envLog is cpp-host exports.cc log: level > LogLevel::Max (critical = 5) ⇒ BAD_ARGUMENT.
func envLog(v *vm, s []uint64) {
	level := u32(s, 0)
	if level > uint32(LogCritical) {
		ret(s, statusBadArgument)
		return
	}
	// A view: guestLogView copies it unless the Logger is a LogViewer.
	msg, ok := v.view(u32(s, 1), u32(s, 2))
	if !ok {
		ret(s, statusInvalidMemoryAccess)
		return
	}
	v.guestLogView(LogLevel(level), msg)
	ret(s, statusOK)
}

// envSetTickPeriod is Envoy Wasm::setTimerPeriod: one period per root context per VM; 0 disables.
func envSetTickPeriod(v *vm, s []uint64) {
	ms := u32(s, 0)
	v.tickPeriod = time.Duration(ms) * time.Millisecond
	if ms > 0 {
		v.nextTick = v.p.clock.Now().Add(v.tickPeriod)
	}
	ret(s, statusOK)
}

// envContinueStream is Envoy Context::continueStream for a network filter: DOWNSTREAM ⇒ deferred
// read_callbacks->continueReading(); UPSTREAM ⇒ UNIMPLEMENTED; > UPSTREAM ⇒ BAD_ARGUMENT (cpp-host
// exports.cc); HTTP REQUEST/RESPONSE ⇒ OK and nothing (no decoder/encoder callbacks).
func envContinueStream(v *vm, s []uint64) {
	t := u32(s, 0)
	if t > streamMax {
		ret(s, statusBadArgument)
		return
	}
	c := v.contextOrEffective()
	switch t {
	case streamDownstream:
		if c.conn != nil {
			v.deferred = append(v.deferred, deferredAction{conn: c.conn, kind: deferContinueDownstream})
		}
		ret(s, statusOK)
	case streamUpstream:
		ret(s, statusUnimplemented)
	default:
		ret(s, statusOK)
	}
}

// envCloseStream is Envoy Context::closeStream: DOWNSTREAM and UPSTREAM both close the downstream
// connection with FlushWrite, deferred (the read and write filter callbacks share one connection);
// HTTP REQUEST/RESPONSE ⇒ OK and nothing on a network filter; > UPSTREAM ⇒ BAD_ARGUMENT.
func envCloseStream(v *vm, s []uint64) {
	t := u32(s, 0)
	if t > streamMax {
		ret(s, statusBadArgument)
		return
	}
	c := v.contextOrEffective()
	switch t {
	case streamDownstream, streamUpstream:
		if c.conn != nil {
			kind := deferCloseDownstream
			if t == streamUpstream {
				kind = deferCloseUpstream
			}
			v.deferred = append(v.deferred, deferredAction{conn: c.conn, kind: kind})
		}
		ret(s, statusOK)
	default:
		ret(s, statusOK)
	}
}

// bufferOf returns the buffer for get/set_buffer_bytes (Envoy Context::getBuffer). avail=false
// with ok=true means "an empty buffer object" (network buffer without a held pointer); ok=false
// means no buffer at all (NOT_FOUND).
func (v *vm) bufferOf(c *wctx, t uint32) (buf *[]byte, avail, ok bool) {
	switch t {
	case bufVMConfiguration:
		b := v.p.cfg.VMConfig
		return &b, true, true
	case bufPluginConfiguration:
		if v.configuring {
			b := v.pluginConfig
			return &b, true, true
		}
		return nil, false, false
	case bufDownstreamData:
		if c.conn == nil {
			return nil, false, true
		}
		if !c.conn.dsAvail {
			return nil, false, true
		}
		return &c.conn.readBuf, true, true
	case bufUpstreamData:
		if c.conn == nil || !c.conn.usAvail {
			return nil, false, true
		}
		return &c.conn.usBuf, true, true
	case bufHTTPRequestBody, bufHTTPResponseBody, bufGRPCReceive, bufCallData:
		// buffer_.set(nullptr) on a network filter: an empty buffer (get OK with (0,0), set
		// BAD_ARGUMENT). CALL_DATA is Envoy's shared buffer_, only meaningful inside a call that set
		// it; modelled as empty.
		return nil, false, true
	}
	// HTTP_CALL_RESPONSE_BODY without a response, and unknown types ⇒ nullptr ⇒ NOT_FOUND.
	return nil, false, false
}

// envGetBufferBytes is cpp-host exports.cc get_buffer_bytes.
func envGetBufferBytes(v *vm, s []uint64) {
	t, start, length, ptrPtr, sizePtr := u32(s, 0), u32(s, 1), u32(s, 2), u32(s, 3), u32(s, 4)
	if t > bufMax {
		ret(s, statusBadArgument)
		return
	}
	buf, avail, ok := v.bufferOf(v.contextOrEffective(), t)
	if !ok {
		ret(s, statusNotFound)
		return
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
	if !v.copyOut(out, ptrPtr, sizePtr) {
		ret(s, statusInvalidMemoryAccess)
		return
	}
	ret(s, statusOK)
}

// envGetBufferStatus is cpp-host exports.cc get_buffer_status.
func envGetBufferStatus(v *vm, s []uint64) {
	t := u32(s, 0)
	if t > bufMax {
		ret(s, statusBadArgument)
		return
	}
	buf, avail, ok := v.bufferOf(v.contextOrEffective(), t)
	if !ok {
		ret(s, statusNotFound)
		return
	}
	n := 0
	if avail {
		n = len(*buf)
	}
	if !v.mem.WriteUint32Le(u32(s, 1), uint32(n)) || !v.mem.WriteUint32Le(u32(s, 2), 0) {
		ret(s, statusInvalidMemoryAccess)
		return
	}
	ret(s, statusOK)
}

// envSetBufferBytes is Envoy Buffer::copyFrom: start 0 ⇒ drain `size` bytes then prepend; start ≥
// length ⇒ append; 0 < start < length ⇒ BAD_ARGUMENT; no held buffer ⇒ BAD_ARGUMENT; immutable
// buffers (configuration) ⇒ BAD_ARGUMENT.
func envSetBufferBytes(v *vm, s []uint64) {
	t, start, size, dataPtr, dataLen := u32(s, 0), u32(s, 1), u32(s, 2), u32(s, 3), u32(s, 4)
	if t > bufMax {
		ret(s, statusBadArgument)
		return
	}
	buf, avail, ok := v.bufferOf(v.contextOrEffective(), t)
	if !ok {
		ret(s, statusNotFound)
		return
	}
	data, ok := v.read(dataPtr, dataLen)
	if !ok {
		ret(s, statusInvalidMemoryAccess)
		return
	}
	if !avail || t == bufVMConfiguration || t == bufPluginConfiguration {
		ret(s, statusBadArgument)
		return
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
		ret(s, statusBadArgument)
		return
	}
	ret(s, statusOK)
}
