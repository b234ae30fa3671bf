package properties

import (
	"errors"
	"net/netip"
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

func readVarint(b []byte) (uint64, int, error) {
	if len(b) > 0 && b[0] < 0x80 { // tags and short lengths: one byte
		return uint64(b[0]), 1, nil
	}
	var x uint64
	for i := 0; i < len(b) && i < 10; i++ {
		x |= uint64(b[i]&0x7f) << (7 * i)
		if b[i] < 0x80 {
			return x, i + 1, nil
		}
	}
	return 0, 0, errProto
}

// parseSetEnvoyFilterStateArgs decodes the proto by hand; unknown fields are skipped like protobuf
// does, wrong wire types and truncation are errors.
func parseSetEnvoyFilterStateArgs(b []byte) (setEnvoyFilterStateArgs, error) {
	var a setEnvoyFilterStateArgs
	for len(b) > 0 {
		tag, n, err := readVarint(b)
		if err != nil {
			return a, err
		}
		b = b[n:]
		field, wire := tag>>3, tag&7
		if field == 0 {
			return a, errProto
		}
		switch wire {
		case 0:
			val, n, err := readVarint(b)
			if err != nil {
				return a, err
			}
			b = b[n:]
			if field == 3 {
				a.span = val
			} else if field == 1 || field == 2 {
				return a, errProto
			}
		case 2:
			l, n, err := readVarint(b)
			if err != nil || uint64(len(b)-n) < l {
				return a, errProto
			}
			val := b[n : n+int(l)]
			b = b[n+int(l):]
			switch field {
			case 1:
				a.path = val
			case 2:
				a.value = val
			case 3:
				return a, errProto
			}
		case 1:
			if len(b) < 8 || field <= 3 {
				return a, errProto
			}
			b = b[8:]
		case 5:
			if len(b) < 4 || field <= 3 {
				return a, errProto
			}
			b = b[4:]
		default:
			return a, errProto
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
