package host

import (
	"encoding/binary"
	"net/netip"
	"strings"

	"github.com/tetratelabs/wazero/api"
)

// celStatePrefix is the filter-state prefix of set_property values (Envoy context.cc CelStateKeyPrefix).
const celStatePrefix = "wasm."

// errSerialization marks a value that exists but cannot be serialized (CEL null, e.g. an empty SAN
// list) ⇒ SERIALIZATION_FAILURE (Envoy context.cc serializeValue default case).
type propResult struct {
	val    []byte
	status uint32
}

func found(b []byte) propResult        { return propResult{val: b, status: statusOK} }
func foundStr(s string) propResult     { return found([]byte(s)) }
func notFound() propResult             { return propResult{status: statusNotFound} }
func serializationFailure() propResult { return propResult{status: statusSerializationFailure} }

func int64Bytes(v int64) []byte {
	b := make([]byte, 8)
	binary.LittleEndian.PutUint64(b, uint64(v))
	return b
}

func uint64Bytes(v uint64) []byte {
	b := make([]byte, 8)
	binary.LittleEndian.PutUint64(b, v)
	return b
}

func boolBytes(v bool) []byte {
	if v {
		return []byte{1}
	}
	return []byte{0}
}

func addrString(a netip.AddrPort) string {
	if !a.IsValid() {
		return ""
	}
	return a.String()
}

// property resolves a NUL-separated property path for context c (Envoy Context::getProperty /
// findValue, filters/common/expr/context.cc ConnectionLookup, UpstreamLookup, PeerWrapper).
func (v *vm) property(c *wctx, path string) propResult {
	segs := splitPropertyPath(path)
	if len(segs) == 0 {
		// No identifier: Envoy serializes a default (null) CelValue.
		return serializationFailure()
	}
	// Static properties (e.g. xds.node.id) by dot-joined path.
	if b, ok := v.p.cfg.Properties[strings.Join(segs, ".")]; ok {
		return found(append([]byte(nil), b...))
	}
	conn := c.conn
	first := segs[0]
	rest := segs[1:]
	switch first {
	case "plugin_name":
		return leaf(rest, foundStr(v.p.cfg.Name))
	case "plugin_root_id":
		return leaf(rest, foundStr(v.p.cfg.RootID))
	case "plugin_vm_id":
		return leaf(rest, foundStr(v.p.cfg.VMID))
	case "connection_id":
		if conn == nil {
			return notFound()
		}
		return leaf(rest, found(uint64Bytes(conn.info.ID)))
	case "source", "destination":
		if conn == nil || len(rest) != 1 {
			return notFound()
		}
		a := conn.info.Source
		if first == "destination" {
			a = conn.info.Destination
		}
		switch rest[0] {
		case "address":
			return foundStr(addrString(a))
		case "port":
			if !a.IsValid() {
				return notFound()
			}
			return found(int64Bytes(int64(a.Port())))
		}
		return notFound()
	case "connection":
		if conn == nil || len(rest) != 1 {
			return notFound()
		}
		return conn.connectionProperty(rest[0])
	case "upstream":
		if conn == nil || len(rest) != 1 || !conn.upstreamConnected {
			return notFound()
		}
		switch rest[0] {
		case "address":
			if !conn.upRemote.IsValid() {
				return notFound()
			}
			return foundStr(conn.upRemote.String())
		case "port":
			if !conn.upRemote.IsValid() {
				return notFound()
			}
			return found(int64Bytes(int64(conn.upRemote.Port())))
		case "local_address":
			if !conn.upLocal.IsValid() {
				return notFound()
			}
			return foundStr(conn.upLocal.String())
		}
		return notFound()
	case "xds":
		if len(rest) == 1 && rest[0] == "cluster_name" && conn != nil && conn.initialized[filterTCP] && conn.cluster != "" {
			return foundStr(conn.cluster)
		}
		return notFound()
	case "filter_state":
		if conn == nil || len(rest) != 1 {
			return notFound()
		}
		if val, ok := conn.filterState[rest[0]]; ok {
			return foundStr(val)
		}
		return notFound()
	}
	// Wasm CelState written by set_property: filter state "wasm.<first segment>".
	if conn != nil {
		if val, ok := conn.filterState[celStatePrefix+first]; ok {
			return leaf(rest, foundStr(val))
		}
	}
	return notFound()
}

// splitPropertyPath splits like Envoy Context::getProperty: segments end at NUL; a trailing NUL adds
// no empty segment.
func splitPropertyPath(path string) []string {
	var segs []string
	for start := 0; start < len(path); {
		end := strings.IndexByte(path[start:], 0)
		if end < 0 {
			end = len(path)
		} else {
			end += start
		}
		segs = append(segs, path[start:end])
		start = end + 1
	}
	return segs
}

// leaf fails a lookup that tries to index into a scalar.
func leaf(rest []string, r propResult) propResult {
	if len(rest) > 0 {
		return notFound()
	}
	return r
}

// connectionProperty is Envoy expr ConnectionLookup for one connection.* field.
func (c *Conn) connectionProperty(name string) propResult {
	tls := c.info.TLS
	switch name {
	case "id":
		return found(uint64Bytes(c.info.ID))
	case "mtls":
		return found(boolBytes(tls != nil && tls.PeerCertPresented))
	case "requested_server_name":
		return foundStr(c.info.RequestedServerName)
	case "termination_details", "transport_failure_reason":
		return notFound()
	}
	if tls == nil {
		// TLS-only fields need an ssl connection (ConnectionLookup returns {} without one).
		return notFound()
	}
	first := func(list []string) propResult {
		if len(list) == 0 {
			return serializationFailure()
		}
		return foundStr(list[0])
	}
	switch name {
	case "tls_version":
		return foundStr(tls.Version)
	case "subject_local_certificate":
		return foundStr(tls.SubjectLocal)
	case "subject_peer_certificate":
		return foundStr(tls.SubjectPeer)
	case "uri_san_local_certificate":
		return first(tls.URISANsLocal)
	case "uri_san_peer_certificate":
		return first(tls.URISANsPeer)
	case "dns_san_local_certificate":
		return first(tls.DNSSANsLocal)
	case "dns_san_peer_certificate":
		return first(tls.DNSSANsPeer)
	case "sha256_peer_certificate_digest":
		return foundStr(tls.SHA256PeerDigest)
	}
	return notFound()
}

// envGetProperty is cpp-host exports.cc get_property (on the current-or-effective context).
func envGetProperty(v *vm, _ api.Module, s []uint64) {
	path, ok := v.readString(u32(s, 0), u32(s, 1))
	if !ok {
		ret(s, statusInvalidMemoryAccess)
		return
	}
	r := v.property(v.contextOrEffective(), path)
	if r.status != statusOK {
		ret(s, r.status)
		return
	}
	if !v.copyOut(r.val, u32(s, 2), u32(s, 3)) {
		ret(s, statusInvalidMemoryAccess)
		return
	}
	ret(s, statusOK)
}

// envSetProperty is Envoy Context::setProperty: stores a CelState under filter-state key
// "wasm.<path>" on the connection's stream info; no stream info (root context) ⇒ NOT_FOUND.
func envSetProperty(v *vm, _ api.Module, s []uint64) {
	key, ok1 := v.readString(u32(s, 0), u32(s, 1))
	val, ok2 := v.readString(u32(s, 2), u32(s, 3))
	if !ok1 || !ok2 {
		ret(s, statusInvalidMemoryAccess)
		return
	}
	c := v.contextOrEffective()
	if c.conn == nil {
		ret(s, statusNotFound)
		return
	}
	c.conn.filterState[celStatePrefix+key] = val
	ret(s, statusOK)
}
