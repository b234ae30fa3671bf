package main

import (
	"errors"
	"strconv"
)

var errEmptyPrefix = errors.New("empty buffer prefix")

// statusNames are the proxy-wasm status codes (proxy_wasm_common.h).
var statusNames = [...]string{"OK", "NOT_FOUND", "BAD_ARGUMENT", "SERIALIZATION_FAILURE", "PARSE_FAILURE",
	"BAD_EXPRESSION", "INVALID_MEMORY_ACCESS", "EMPTY", "CAS_MISMATCH", "RESULT_MISMATCH", "INTERNAL_FAILURE",
	"BROKEN_CONNECTION", "UNIMPLEMENTED"}

// statusError names a failed host call and its status.
func statusError(call string, st uint32) error {
	name := "status " + strconv.FormatUint(uint64(st), 10)
	if int(st) < len(statusNames) {
		name = statusNames[st]
	}
	return errors.New(call + " returned " + name)
}

// Filter state written with the foreign function set_envoy_filter_state
// (Envoy source/extensions/common/wasm/foreign.cc).
const (
	foreignSetFilterState = "set_envoy_filter_state"
	// filterStateCluster is read by tcp_proxy's PerConnectionCluster factory
	// (source/common/tcp_proxy/tcp_proxy.cc) when it picks its route.
	filterStateCluster = "envoy.tcp_proxy.cluster"
	// lifeSpanDownstreamConnection is LifeSpan DownstreamConnection in
	// set_envoy_filter_state.proto / declare_property.proto.
	lifeSpanDownstreamConnection = 2
)

// appendFilterStateArgs appends the protobuf encoding of
// envoy.source.extensions.common.wasm.SetEnvoyFilterStateArguments
// {path = 1 (string), value = 2 (string), span = 3 (enum LifeSpan)}.
func appendFilterStateArgs(dst []byte, path, value string, span uint64) []byte {
	dst = append(dst, 0x0a) // field 1, wire type 2 (length-delimited)
	dst = appendVarint(dst, uint64(len(path)))
	dst = append(dst, path...)
	dst = append(dst, 0x12) // field 2, wire type 2
	dst = appendVarint(dst, uint64(len(value)))
	dst = append(dst, value...)
	if span != 0 {
		dst = append(dst, 0x18) // field 3, wire type 0 (varint)
		dst = appendVarint(dst, span)
	}
	return dst
}

// appendVarint appends v as a protobuf base-128 varint.
func appendVarint(dst []byte, v uint64) []byte {
	for v >= 0x80 {
		dst = append(dst, byte(v)|0x80)
		v >>= 7
	}
	return append(dst, byte(v))
}
