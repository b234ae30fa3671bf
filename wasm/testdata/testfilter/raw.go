package main

import "unsafe"

// Raw host imports (same names as the SDK's) so probes see exact proxy_status_t values.

//go:wasmimport env proxy_log
func rawProxyLog(level int32, msg *byte, msgLen int32) int32

//go:wasmimport env proxy_get_buffer_bytes
func rawProxyGetBufferBytes(t int32, start int32, max int32, ret unsafe.Pointer, retLen *int32) int32

//go:wasmimport env proxy_set_buffer_bytes
func rawProxySetBufferBytes(t int32, start int32, size int32, data *byte, dataLen int32) int32

//go:wasmimport env proxy_call_foreign_function
func rawProxyCallForeign(name *byte, nameLen int32, arg *byte, argLen int32, ret unsafe.Pointer, retLen *int32) int32

//go:wasmimport env proxy_get_property
func rawProxyGetProperty(path *byte, pathLen int32, ret unsafe.Pointer, retLen *int32) int32

//go:wasmimport env proxy_define_metric
func rawProxyDefineMetric(t int32, name *byte, nameLen int32, id *uint32) int32

//go:wasmimport env proxy_increment_metric
func rawProxyIncrementMetric(id uint32, delta int64) int32

//go:wasmimport env proxy_record_metric
func rawProxyRecordMetric(id uint32, value uint64) int32

//go:wasmimport env proxy_get_metric
func rawProxyGetMetric(id uint32, value *uint64) int32

//go:wasmimport env proxy_continue_stream
func rawProxyContinueStream(t int32) int32

//go:wasmimport env proxy_close_stream
func rawProxyCloseStream(t int32) int32

//go:wasmimport env proxy_set_effective_context
func rawProxySetEffectiveContext(id uint32) int32

//go:wasmimport env proxy_get_header_map_value
func rawProxyGetHeaderMapValue(t int32, key *byte, keyLen int32, ret unsafe.Pointer, retLen *int32) int32

func ptr(b []byte) *byte {
	if len(b) == 0 {
		return nil
	}
	return &b[0]
}

func rawLog(level int32, msg string) int32 {
	b := []byte(msg)
	return rawProxyLog(level, ptr(b), int32(len(b)))
}

func rawGetBuffer(t, start, max int32) ([]byte, int32) {
	var p *byte
	var n int32
	st := rawProxyGetBufferBytes(t, start, max, unsafe.Pointer(&p), &n)
	if st != 0 || p == nil {
		return nil, st
	}
	return append([]byte(nil), unsafe.Slice(p, n)...), st
}

func rawSetBuffer(t, start, size int32, data []byte) int32 {
	return rawProxySetBufferBytes(t, start, size, ptr(data), int32(len(data)))
}

func rawForeign(name string, arg []byte) int32 {
	nb := []byte(name)
	var p *byte
	var n int32
	return rawProxyCallForeign(ptr(nb), int32(len(nb)), ptr(arg), int32(len(arg)), unsafe.Pointer(&p), &n)
}

func rawGetProperty(path string) ([]byte, int32) {
	pb := []byte(path)
	var p *byte
	var n int32
	st := rawProxyGetProperty(ptr(pb), int32(len(pb)), unsafe.Pointer(&p), &n)
	if st != 0 || p == nil {
		return nil, st
	}
	return append([]byte(nil), unsafe.Slice(p, n)...), st
}

type metricResult struct {
	id     uint32
	status int32
}

func rawDefineMetric(t int32, name string) metricResult {
	nb := []byte(name)
	var id uint32
	st := rawProxyDefineMetric(t, ptr(nb), int32(len(nb)), &id)
	return metricResult{id: id, status: st}
}

func rawIncrementMetric(id uint32, delta int64) int32 { return rawProxyIncrementMetric(id, delta) }
func rawRecordMetric(id uint32, v uint64) int32       { return rawProxyRecordMetric(id, v) }

func rawGetMetric(id uint32) (uint64, int32) {
	var v uint64
	st := rawProxyGetMetric(id, &v)
	return v, st
}

func rawContinueStream(t int32) int32        { return rawProxyContinueStream(t) }
func rawCloseStream(t int32) int32           { return rawProxyCloseStream(t) }
func rawSetEffectiveContext(id uint32) int32 { return rawProxySetEffectiveContext(id) }

func rawGetHeader() int32 {
	k := []byte("host")
	var p *byte
	var n int32
	return rawProxyGetHeaderMapValue(0, ptr(k), int32(len(k)), unsafe.Pointer(&p), &n)
}
