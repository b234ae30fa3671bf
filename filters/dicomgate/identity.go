package main

import (
	"encoding/binary"
	"net/netip"
	"unsafe"

	"github.com/dicomgate/dicomgate/filters/dicomgate/internal/abi"
	"github.com/dicomgate/dicomgate/sdk/policy"
)

// identity is what the connection's properties say about the peer, read
// once per connection.
type identity struct {
	conn   policy.Conn
	source string
	connID uint64
	hasID  bool
	sha256 string
}

// Property paths (Envoy source/extensions/filters/common/expr/context.h),
// serialized as the ABI expects: segments separated by NUL.
const (
	propSource  = "source\x00address"
	propConnID  = "connection\x00id"
	propURISAN  = "connection\x00uri_san_peer_certificate"
	propDNSSAN  = "connection\x00dns_san_peer_certificate"
	propSubject = "connection\x00subject_peer_certificate"
	propDigest  = "connection\x00sha256_peer_certificate_digest"
)

// reset clears id field by field (see decide).
func (id *identity) reset() {
	id.conn.Source, id.conn.MTLS = netip.Addr{}, false
	id.conn.PeerURISAN, id.conn.PeerDNSSAN, id.conn.PeerSubject = "", "", ""
	id.source, id.connID, id.hasID, id.sha256 = "", 0, false, ""
}

// readIdentity reads the connection properties the policy and the audit
// line need. An absent or failing property means "unknown". The peer
// certificate properties are only read (and trusted) when the client
// presented a certificate, which the digest tells: Envoy's
// sha256PeerCertificateDigest is "" exactly when there is no peer
// certificate (envoy/ssl/connection.h), and connection.mtls is
// peerCertificatePresented() (filters/common/expr/context.cc), so one
// property read answers both. The DNS SAN is read only when a rule matches
// on it (readDNS): the audit line does not carry it.
func readIdentity(id *identity, parseSource, readDNS bool) {
	readSource(id, parseSource)
	if d := propString(propDigest); d != "" {
		id.conn.MTLS, id.sha256 = true, d
		id.conn.PeerURISAN = propString(propURISAN)
		if readDNS {
			id.conn.PeerDNSSAN = propString(propDNSSAN)
		}
		id.conn.PeerSubject = propString(propSubject)
	}
}

// readSource reads source.address and connection.id into the zero id; it
// parses the address into id.conn.Source only when parseSource is set (the
// policy matches on it).
func readSource(id *identity, parseSource bool) {
	if b, ok := abi.GetProperty(propSource); ok {
		id.source = view(b) // the audit line logs the text as Envoy gave it
		if parseSource {
			id.conn.Source = parseSourceAddress(id.source)
		}
	}
	if b, ok := abi.GetProperty(propConnID); ok && len(b) == 8 {
		id.connID, id.hasID = binary.LittleEndian.Uint64(b), true
	}
}

// parseSourceAddress parses source.address ("ip:port", or a bare address)
// into the unmapped IP; the zero Addr when it is neither.
func parseSourceAddress(s string) netip.Addr {
	if a, ok := parseIPv4Port(s); ok {
		return a
	}
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr().Unmap()
	}
	if a, err := netip.ParseAddr(s); err == nil {
		return a.Unmap()
	}
	return netip.Addr{}
}

// parseIPv4Port is the common case of source.address, "a.b.c.d:port",
// without netip's general parser (several times slower in the guest). It
// accepts only what netip.ParseAddrPort accepts with the same result;
// anything else (IPv6, bare addresses, malformed) returns false and goes
// through netip.
func parseIPv4Port(s string) (netip.Addr, bool) {
	var ip [4]byte
	i := 0
	for k := 0; k < 4; k++ {
		n, start := 0, i
		for i < len(s) && i-start < 4 && s[i] >= '0' && s[i] <= '9' {
			n = n*10 + int(s[i]-'0')
			i++
		}
		digits := i - start
		if digits == 0 || digits > 3 || n > 255 || (digits > 1 && s[start] == '0') {
			return netip.Addr{}, false
		}
		ip[k] = byte(n)
		sep := byte('.')
		if k == 3 {
			sep = ':'
		}
		if i >= len(s) || s[i] != sep {
			return netip.Addr{}, false
		}
		i++
	}
	port, start := 0, i
	for i < len(s) && s[i] >= '0' && s[i] <= '9' && port <= 65535 {
		port = port*10 + int(s[i]-'0')
		i++
	}
	if i == start || i != len(s) || port > 65535 {
		return netip.Addr{}, false
	}
	return netip.AddrFrom4(ip), true
}

func propString(path string) string {
	b, ok := abi.GetProperty(path)
	if !ok {
		return ""
	}
	return view(b)
}

// view returns b as a string without copying. Only for bytes that are never
// modified afterwards and strings that do not outlive the callback: the RQ
// and property values (fresh blocks the host allocated for this call), used
// for the decision, the properties and the audit line of this association.
func view(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(&b[0], len(b))
}
