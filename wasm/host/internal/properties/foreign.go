package properties

import (
	"errors"
	"net/netip"

	"google.golang.org/protobuf/encoding/protowire"
)

// Filter-state keys that have a registered StreamInfo::FilterState::ObjectFactory in Envoy
// ("Well Known Filter State Objects"); set_envoy_filter_state accepts only these
// (Envoy context.cc Context::setEnvoyFilterState). The function validates the factory input and
// returns false where createFromBytes would return null. Each entry carries its key so that the
// stored filter-state key is this string (no per-call copy or intern lookup).
var filterStateFactories = keyedFactories(map[string]func(value string) bool{
	// tcp_proxy.cc PerConnectionClusterFactory: any bytes are the cluster name.
	"envoy.tcp_proxy.cluster":                  func(string) bool { return true },
	"envoy.udp_proxy.cluster":                  func(string) bool { return true },
	"envoy.network.upstream_server_name":       func(string) bool { return true },
	"envoy.network.application_protocols":      func(string) bool { return true },
	"envoy.network.upstream_subject_alt_names": func(string) bool { return true },
	"envoy.network.transport_socket.original_dst_address": func(s string) bool {
		_, err := netip.ParseAddrPort(s)
		return err == nil
	},
	"envoy.network.ip": func(s string) bool {
		_, err := netip.ParseAddr(s)
		return err == nil
	},
	"envoy.tcp_proxy.disable_tunneling": func(s string) bool { return s == "true" || s == "false" },
	"envoy.string":                      func(string) bool { return true },
})

// filterStateFactory is a well-known filter-state key and its input validation.
type filterStateFactory struct {
	key   string
	valid func(value string) bool
}

func keyedFactories(m map[string]func(value string) bool) map[string]filterStateFactory {
	out := make(map[string]filterStateFactory, len(m))
	for k, f := range m {
		out[k] = filterStateFactory{key: k, valid: f}
	}
	return out
}

// setEnvoyFilterStateArgs is envoy.source.extensions.common.wasm.SetEnvoyFilterStateArguments
// (fields 1 path, 2 value, 3 span).
// path and value alias the encoded message.
type setEnvoyFilterStateArgs struct {
	path, value []byte
	span        uint64
}

var errProto = errors.New("malformed SetEnvoyFilterStateArguments")

// parseSetEnvoyFilterStateArgs decodes the message with protowire: unknown fields are skipped as
// protobuf does; a known field with the wrong wire type, a field number 0 and truncation are errors.
// It allocates nothing (path and value alias b).
func parseSetEnvoyFilterStateArgs(b []byte) (setEnvoyFilterStateArgs, error) {
	var a setEnvoyFilterStateArgs
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return a, errProto
		}
		b = b[n:]
		switch {
		case (num == 1 || num == 2) && typ == protowire.BytesType:
			v, m := protowire.ConsumeBytes(b)
			if m < 0 {
				return a, errProto
			}
			if num == 1 {
				a.path = v
			} else {
				a.value = v
			}
			b = b[m:]
		case num == 3 && typ == protowire.VarintType:
			v, m := protowire.ConsumeVarint(b)
			if m < 0 {
				return a, errProto
			}
			a.span, b = v, b[m:]
		case num <= 3:
			return a, errProto // a known field with another wire type
		default:
			m := protowire.ConsumeFieldValue(num, typ, b)
			if m < 0 {
				return a, errProto
			}
			b = b[m:]
		}
	}
	return a, nil
}

// setEnvoyFilterState is Envoy foreign.cc registerSetEnvoyFilterStateForeignFunction +
// Context::setEnvoyFilterState. It acts on the effective context (the stream chosen with
// proxy_set_effective_context, else the current one): from on_tick after set_effective_context it sets
// the connection's filter state, and tcp_proxy routes by it later — real Envoy 1.40 does so
// (conformance TestCallsFromTick); the caller passes that context's connection. Without a stream
// (root context: conn nil) it is NOT_FOUND. Values are interned with in.
func SetEnvoyFilterState(in *Interner, conn *Conn, args []byte) Status {
	a, err := parseSetEnvoyFilterStateArgs(args)
	if err != nil {
		return BadArgument
	}
	factory, ok := filterStateFactories[string(a.path)]
	if !ok {
		return NotFound
	}
	value := in.Intern(a.value)
	if !factory.valid(value) {
		return BadArgument
	}
	if conn == nil {
		return NotFound
	}
	conn.FilterState.Set(factory.key, value)
	return OK
}
