// Package properties answers what a proxy-wasm network filter can read and write about its
// connection: proxy_get_property paths (source.*, destination.*, connection.*, upstream.*,
// connection_id, plugin_*, xds.cluster_name, filter_state.*, static properties and set_property's
// CelState), the connection's filter state (set_property, and the foreign function
// set_envoy_filter_state with its hand-decoded SetEnvoyFilterStateArguments), and the interning of
// the strings a guest sets.
//
// It follows Envoy source/extensions/filters/common/expr/context.cc (ConnectionLookup,
// UpstreamLookup, PeerWrapper), source/extensions/common/wasm/context.cc (Context::getProperty,
// setProperty, setEnvoyFilterState, serializeValue), source/extensions/common/wasm/foreign.cc and
// the well-known filter-state objects that have an ObjectFactory. The proxy_* imports over it
// (guest memory, status codes) are in package abi.
package properties

import (
	"encoding/binary"
	"net/netip"
	"strings"
)

// CelStatePrefix is the filter-state prefix of set_property values (Envoy context.cc CelStateKeyPrefix).
const CelStatePrefix = "wasm."

// Status is a proxy_status_t value (proxy-wasm spec; cpp-host proxy_wasm_common.h) as the imports
// return it.
type Status = uint32

// The statuses a property lookup or a filter-state write can end with.
const (
	OK                   Status = 0
	NotFound             Status = 1
	BadArgument          Status = 2
	SerializationFailure Status = 3
)

// ConnInfo describes the downstream connection (Envoy StreamInfo / connection info provider); the
// public host.ConnInfo converts to it.
type ConnInfo struct {
	ID                  uint64
	Source, Destination netip.AddrPort
	TLS                 *TLSInfo
	RequestedServerName string
}

// TLSInfo is what Envoy's Ssl::ConnectionInfo exposes (connection.*); the public host.TLSInfo
// converts to it (same fields).
type TLSInfo struct {
	Version                                              string
	PeerCertPresented                                    bool
	SubjectPeer, SubjectLocal                            string
	URISANsPeer, DNSSANsPeer, URISANsLocal, DNSSANsLocal []string
	SHA256PeerDigest                                     string
}

// Plugin is what answers the plugin_* and static properties.
type Plugin struct {
	Name, RootID, VMID string
	// Static are properties keyed by their dot-joined path (e.g. "xds.node.id"), returned verbatim.
	Static map[string][]byte
}

// Conn is what a connection's properties are read from; the filter manager's connection holds one
// and keeps it current.
type Conn struct {
	Info ConnInfo
	// UpstreamConnected is set once tcp_proxy's upstream connected; UpstreamRemote/UpstreamLocal
	// are its addresses (upstream.*), invalid when the owner did not report them.
	UpstreamConnected             bool
	UpstreamRemote, UpstreamLocal netip.AddrPort
	// Cluster is the cluster tcp_proxy picked ("" until it ran onNewConnection; xds.cluster_name).
	Cluster string
	// FilterState holds set_envoy_filter_state and set_property objects.
	FilterState FilterState
	// tlsVersion is the first answer to connection.tls_version, kept for the connection's lifetime:
	// Envoy's TLS connection info caches it, so a read before the handshake pins the pre-handshake
	// answer (see connectionProperty).
	tlsVersion string
}

// Value is a property value (or a status): a string, an 8-byte little-endian integer, a
// 1-byte bool or an address formatted as "ip:port". Values are not materialised as []byte so that
// a lookup does not allocate; abi writes them into the guest.
// A value that exists but cannot be serialized (CEL null, e.g. an empty path) is
// SERIALIZATION_FAILURE (Envoy context.cc serializeValue default case); an empty SAN list or peer
// digest is not a value at all (NOT_FOUND, as Envoy 1.40 answers).
type Value struct {
	Status Status
	kind   uint8
	str    string
	num    uint64
	addr   netip.AddrPort
}

// Str returns the value when it is a string (IsString), without a copy.
func (r *Value) Str() string { return r.str }

// IsString reports whether the value is a string (written into the guest as is).
func (r *Value) IsString() bool { return r.kind == propString }

const (
	propString = iota
	propInt64
	propBool
	propAddr
)

func foundStr(s string) Value   { return Value{str: s} }
func foundBytes(b []byte) Value { return Value{str: string(b)} }
func foundInt(v uint64) Value   { return Value{kind: propInt64, num: v} }
func foundAddr(a netip.AddrPort) Value {
	if !a.IsValid() {
		return foundStr("")
	}
	return Value{kind: propAddr, addr: a}
}
func foundBool(v bool) Value {
	r := Value{kind: propBool}
	if v {
		r.num = 1
	}
	return r
}
func notFound() Value             { return Value{Status: NotFound} }
func serializationFailure() Value { return Value{Status: SerializationFailure} }

// AppendValue appends the serialized value (Envoy context.cc serializeValue) to b.
func (r *Value) AppendValue(b []byte) []byte {
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

// Lookup resolves a NUL-separated property path for a stream context on conn, or for the root
// context when conn is nil (Envoy Context::getProperty / findValue, filters/common/expr/context.cc
// ConnectionLookup, UpstreamLookup, PeerWrapper).
func Lookup(p *Plugin, conn *Conn, path string) Value {
	var segArr [8]string
	segs := splitPropertyPath(path, segArr[:0])
	if len(segs) == 0 {
		// No identifier: Envoy serializes a default (null) CelValue.
		return serializationFailure()
	}
	// Static properties (e.g. xds.node.id) by dot-joined path.
	if len(p.Static) > 0 {
		if b, ok := p.Static[strings.Join(segs, ".")]; ok {
			return foundBytes(b)
		}
	}
	first := segs[0]
	rest := segs[1:]
	switch first {
	case "plugin_name":
		return leaf(rest, foundStr(p.Name))
	case "plugin_root_id":
		return leaf(rest, foundStr(p.RootID))
	case "plugin_vm_id":
		return leaf(rest, foundStr(p.VMID))
	case "connection_id":
		if conn == nil {
			return notFound()
		}
		return leaf(rest, foundInt(conn.Info.ID))
	case "source", "destination":
		if conn == nil || len(rest) != 1 {
			return notFound()
		}
		a := conn.Info.Source
		if first == "destination" {
			a = conn.Info.Destination
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
		if conn == nil || len(rest) != 1 || !conn.UpstreamConnected {
			return notFound()
		}
		switch rest[0] {
		case "address":
			if !conn.UpstreamRemote.IsValid() {
				return notFound()
			}
			return foundAddr(conn.UpstreamRemote)
		case "port":
			if !conn.UpstreamRemote.IsValid() {
				return notFound()
			}
			return foundInt(uint64(conn.UpstreamRemote.Port()))
		case "local_address":
			if !conn.UpstreamLocal.IsValid() {
				return notFound()
			}
			return foundAddr(conn.UpstreamLocal)
		}
		return notFound()
	case "xds":
		if len(rest) == 1 && rest[0] == "cluster_name" && conn != nil && conn.Cluster != "" {
			return foundStr(conn.Cluster)
		}
		return notFound()
	case "filter_state":
		if conn == nil || len(rest) != 1 {
			return notFound()
		}
		if val, ok := conn.FilterState.Get(rest[0]); ok {
			return foundStr(val)
		}
		return notFound()
	}
	// Wasm CelState written by set_property: filter state "wasm.<first segment>".
	if conn != nil {
		if val, ok := conn.FilterState.GetCel(first); ok {
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
func leaf(rest []string, r Value) Value {
	if len(rest) > 0 {
		return notFound()
	}
	return r
}

// preHandshakeTLSVersion is what Envoy reports as connection.tls_version before the TLS handshake.
const preHandshakeTLSVersion = "TLSv1.2"

// connectionProperty is Envoy expr ConnectionLookup for one connection.* field.
func (c *Conn) connectionProperty(name string) Value {
	tls := c.Info.TLS
	switch name {
	case "id":
		return foundInt(c.Info.ID)
	case "mtls":
		return foundBool(tls != nil && tls.PeerCertPresented)
	case "requested_server_name":
		return foundStr(c.Info.RequestedServerName)
	case "termination_details", "transport_failure_reason":
		return notFound()
	}
	if tls == nil {
		// TLS-only fields need an ssl connection (ConnectionLookup returns {} without one).
		return notFound()
	}
	// An empty SAN list or digest is NOT_FOUND: ConnectionLookup only returns these fields when they are
	// non-empty (filters/common/expr/context.cc; checked against Envoy 1.40 by conformance).
	first := func(list []string) Value {
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
