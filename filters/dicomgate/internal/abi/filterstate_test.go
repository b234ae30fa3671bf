package abi

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/encoding/protowire"
)

// decodeFilterStateArgs decodes SetEnvoyFilterStateArguments with the
// protobuf library's wire reader (what Envoy's generated parser reads).
func decodeFilterStateArgs(t *testing.T, b []byte) (path, value string, span uint64) {
	t.Helper()
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		require.GreaterOrEqual(t, n, 0, "field tag")
		b = b[n:]
		switch {
		case (num == 1 || num == 2) && typ == protowire.BytesType:
			v, n := protowire.ConsumeBytes(b)
			require.GreaterOrEqual(t, n, 0, "field %d", num)
			if num == 1 {
				path = string(v)
			} else {
				value = string(v)
			}
			b = b[n:]
		case num == 3 && typ == protowire.VarintType:
			v, n := protowire.ConsumeVarint(b)
			require.GreaterOrEqual(t, n, 0, "field 3")
			span, b = v, b[n:]
		default:
			require.Failf(t, "unexpected field", "field %d wire type %d", num, typ)
		}
	}
	return path, value, span
}

// The wire bytes of SetEnvoyFilterStateArguments (Envoy
// source/extensions/common/wasm/ext/set_envoy_filter_state.proto).
func TestFilterStateArgsWireBytes(t *testing.T) {
	got := AppendFilterStateArgs(nil, "envoy.tcp_proxy.cluster", "c1", LifeSpanDownstreamConnection)
	want := append(append([]byte{0x0a, 23}, "envoy.tcp_proxy.cluster"...), 0x12, 2, 'c', '1', 0x18, 2)
	require.Equal(t, want, got)

	long := strings.Repeat("x", 300) // the length needs a 2-byte varint
	p, v, span := decodeFilterStateArgs(t, AppendFilterStateArgs([]byte("kept"), FilterStateCluster, long, 2)[4:])
	require.Equal(t, FilterStateCluster, p)
	require.Equal(t, long, v)
	require.Equal(t, uint64(2), span)

	// span 0 (FilterChain, the proto default) is left out
	require.Equal(t, []byte{0x0a, 1, 'k', 0x12, 1, 'v'}, AppendFilterStateArgs(nil, "k", "v", 0))
}

// A failed host call names the call and the status by its ABI name, or its
// number when it has none.
func TestStatusErrorNamesTheStatus(t *testing.T) {
	require.EqualError(t, StatusError("proxy_set_buffer_bytes", 2), "proxy_set_buffer_bytes returned BAD_ARGUMENT")
	require.EqualError(t, StatusError("proxy_get_property", 12), "proxy_get_property returned UNIMPLEMENTED")
	require.EqualError(t, StatusError("proxy_log", 99), "proxy_log returned status 99")
}
