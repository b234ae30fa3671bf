package abi

// Filter state written with the foreign function set_envoy_filter_state
// (Envoy source/extensions/common/wasm/foreign.cc).
const (
	// ForeignSetFilterState is the name of the foreign function.
	ForeignSetFilterState = "set_envoy_filter_state"
	// FilterStateCluster is read by tcp_proxy's PerConnectionCluster factory
	// (source/common/tcp_proxy/tcp_proxy.cc) when it picks its route.
	FilterStateCluster = "envoy.tcp_proxy.cluster"
	// LifeSpanDownstreamConnection is LifeSpan DownstreamConnection in
	// set_envoy_filter_state.proto / declare_property.proto.
	LifeSpanDownstreamConnection = 2
)

// SetFilterState calls set_envoy_filter_state with args, the encoding
// AppendFilterStateArgs made. Envoy acts on the current connection (the one
// whose callback is running, not an effective context set from a tick).
func SetFilterState(args []byte) error {
	return CallForeignFunction(ForeignSetFilterState, args)
}

// AppendFilterStateArgs appends the protobuf encoding of
// envoy.source.extensions.common.wasm.SetEnvoyFilterStateArguments
// {path = 1 (string), value = 2 (string), span = 3 (enum LifeSpan)}; a span
// of 0 (FilterChain, the default) is left out.
func AppendFilterStateArgs(dst []byte, path, value string, span uint64) []byte {
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
