package host

import (
	"encoding/binary"
	"net/netip"
	"strings"
	"unsafe"
)

// celStatePrefix is the filter-state prefix of set_property values (Envoy context.cc CelStateKeyPrefix).
const celStatePrefix = "wasm."

// propResult is a property value (or a status): a string, an 8-byte little-endian integer, a
// 1-byte bool or an address formatted as "ip:port". Values are not materialised as []byte so that
// a lookup does not allocate; envGetProperty writes them into the guest.
// A value that exists but cannot be serialized (CEL null, e.g. an empty path) is
// SERIALIZATION_FAILURE (Envoy context.cc serializeValue default case); an empty SAN list or peer
// digest is not a value at all (NOT_FOUND, as Envoy 1.40 answers).
type propResult struct {
	status uint32
	kind   uint8
	str    string
	num    uint64
	addr   netip.AddrPort
}

const (
	propString = iota
	propInt64
	propBool
	propAddr
)

func foundStr(s string) propResult   { return propResult{str: s} }
func foundBytes(b []byte) propResult { return propResult{str: string(b)} }
func foundInt(v uint64) propResult   { return propResult{kind: propInt64, num: v} }
func foundAddr(a netip.AddrPort) propResult {
	if !a.IsValid() {
		return foundStr("")
	}
	return propResult{kind: propAddr, addr: a}
}
func foundBool(v bool) propResult {
	r := propResult{kind: propBool}
	if v {
		r.num = 1
	}
	return r
}
func notFound() propResult             { return propResult{status: statusNotFound} }
func serializationFailure() propResult { return propResult{status: statusSerializationFailure} }

// appendValue appends the serialized value (Envoy context.cc serializeValue) to b.
func (r *propResult) appendValue(b []byte) []byte {
	switch r.kind {
	case propInt64:
		return binary.LittleEndian.AppendUint64(b, r.num)
	case propBool:
		return append(b, byte(r.num))
	case propAddr:
		return r.addr.AppendTo(b)
	}
	return append(b, r.str...)
}

// property resolves a NUL-separated property path for context c (Envoy Context::getProperty /
// findValue, filters/common/expr/context.cc ConnectionLookup, UpstreamLookup, PeerWrapper).
func (v *vm) property(c *wctx, path string) propResult {
	var segArr [8]string
	segs := splitPropertyPath(path, segArr[:0])
	if len(segs) == 0 {
		// No identifier: Envoy serializes a default (null) CelValue.
		return serializationFailure()
	}
	// Static properties (e.g. xds.node.id) by dot-joined path.
	if len(v.p.cfg.Properties) > 0 {
		if b, ok := v.p.cfg.Properties[strings.Join(segs, ".")]; ok {
			return foundBytes(b)
		}
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
		return leaf(rest, foundInt(conn.info.ID))
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
			return foundAddr(a)
		case "port":
			if !a.IsValid() {
				return notFound()
			}
			return foundInt(uint64(a.Port()))
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
			return foundAddr(conn.upRemote)
		case "port":
			if !conn.upRemote.IsValid() {
				return notFound()
			}
			return foundInt(uint64(conn.upRemote.Port()))
		case "local_address":
			if !conn.upLocal.IsValid() {
				return notFound()
			}
			return foundAddr(conn.upLocal)
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
		if val, ok := conn.filterState.get(rest[0]); ok {
			return foundStr(val)
		}
		return notFound()
	}
	// Wasm CelState written by set_property: filter state "wasm.<first segment>".
	if conn != nil {
		if val, ok := conn.filterState.getCel(first); ok {
			return leaf(rest, foundStr(val))
		}
	}
	return notFound()
}

// splitPropertyPath splits like Envoy Context::getProperty: segments end at NUL; a trailing NUL adds
// no empty segment.
func splitPropertyPath(path string, segs []string) []string {
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

// preHandshakeTLSVersion is what Envoy reports as connection.tls_version before the TLS handshake.
const preHandshakeTLSVersion = "TLSv1.2"

// connectionProperty is Envoy expr ConnectionLookup for one connection.* field.
func (c *Conn) connectionProperty(name string) propResult {
	tls := c.info.TLS
	switch name {
	case "id":
		return foundInt(c.info.ID)
	case "mtls":
		return foundBool(tls != nil && tls.PeerCertPresented)
	case "requested_server_name":
		return foundStr(c.info.RequestedServerName)
	case "termination_details", "transport_failure_reason":
		return notFound()
	}
	if tls == nil {
		// TLS-only fields need an ssl connection (ConnectionLookup returns {} without one).
		return notFound()
	}
	// An empty SAN list or digest is NOT_FOUND: ConnectionLookup only returns these fields when they are
	// non-empty (filters/common/expr/context.cc; checked against Envoy 1.40 by conformance).
	first := func(list []string) propResult {
		if len(list) == 0 {
			return notFound()
		}
		return foundStr(list[0])
	}
	switch name {
	case "tls_version":
		// Envoy caches the first answer (Ssl ConnectionInfoImplBase::tlsVersion, cached_tls_version_);
		// before the handshake BoringSSL reports "TLSv1.2", so a filter that reads the version in
		// on_new_connection keeps seeing "TLSv1.2" after a TLS 1.3 handshake. Observed with Envoy 1.40
		// (conformance TestPropertiesOnRealConnections).
		if c.tlsVersion == "" {
			c.tlsVersion = tls.Version
			if c.tlsVersion == "" {
				c.tlsVersion = preHandshakeTLSVersion
			}
		}
		return foundStr(c.tlsVersion)
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
		if tls.SHA256PeerDigest == "" {
			return notFound()
		}
		return foundStr(tls.SHA256PeerDigest)
	}
	return notFound()
}

// envGetProperty is cpp-host exports.cc get_property (on the current-or-effective context).
func envGetProperty(v *vm, s []uint64) {
	// The path is only looked at, never kept, and is done with before copyOut runs the guest.
	raw, ok := v.view(u32(s, 0), u32(s, 1))
	if !ok {
		ret(s, statusInvalidMemoryAccess)
		return
	}
	r := v.property(v.contextOrEffective(), unsafe.String(unsafe.SliceData(raw), len(raw)))
	if r.status != statusOK {
		ret(s, r.status)
		return
	}
	var okOut bool
	if r.kind == propString {
		okOut = v.copyOutString(r.str, u32(s, 2), u32(s, 3))
	} else {
		v.scratch = r.appendValue(v.scratch[:0])
		okOut = v.copyOut(v.scratch, u32(s, 2), u32(s, 3))
	}
	if !okOut {
		ret(s, statusInvalidMemoryAccess)
		return
	}
	ret(s, statusOK)
}

// envSetProperty is Envoy Context::setProperty: stores a CelState under filter-state key
// "wasm.<path>" on the connection's stream info; no stream info (root context) ⇒ NOT_FOUND.
func envSetProperty(v *vm, s []uint64) {
	key, ok1 := v.view(u32(s, 0), u32(s, 1))
	val, ok2 := v.view(u32(s, 2), u32(s, 3))
	if !ok1 || !ok2 {
		ret(s, statusInvalidMemoryAccess)
		return
	}
	c := v.contextOrEffective()
	if c.conn == nil {
		ret(s, statusNotFound)
		return
	}
	c.conn.filterState.set(v.celStateKey(key), v.intern(val))
	ret(s, statusOK)
}
