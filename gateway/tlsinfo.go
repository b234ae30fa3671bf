package gateway

import (
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/hex"
	"fmt"
	"os"
	"strings"
	"sync"

	"github.com/dicomgate/dicomgate/wasm/host"
)

// ServerTLSConfig builds the TLS configuration of the gateway listener from a
// PEM certificate chain and key. With a non-empty clientCAFile the listener
// requires a client certificate that verifies against those CAs (mutual TLS,
// like an Istio Gateway server with tls.mode MUTUAL).
func ServerTLSConfig(certFile, keyFile, clientCAFile string) (*tls.Config, error) {
	if certFile == "" || keyFile == "" {
		return nil, fmt.Errorf("TLS needs both a certificate and a key file (--tls-cert and --tls-key)")
	}
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("loading --tls-cert %s / --tls-key %s: %w", certFile, keyFile, err)
	}
	cfg := &tls.Config{
		Certificates: []tls.Certificate{cert},
		MinVersion:   tls.VersionTLS12,
	}
	if clientCAFile != "" {
		pemBytes, err := os.ReadFile(clientCAFile)
		if err != nil {
			return nil, fmt.Errorf("reading --client-ca: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pemBytes) {
			return nil, fmt.Errorf("--client-ca %s: no PEM CERTIFICATE block found", clientCAFile)
		}
		cfg.ClientCAs = pool
		cfg.ClientAuth = tls.RequireAndVerifyClientCert
	}
	return cfg, nil
}

// localTLSInfo returns the local-certificate half of TLSInfo for a listener
// configuration (its first certificate), or zero values when none is static.
func localTLSInfo(cfg *tls.Config) (subject string, uris, dns []string) {
	if cfg == nil || len(cfg.Certificates) == 0 || len(cfg.Certificates[0].Certificate) == 0 {
		return "", nil, nil
	}
	leaf := cfg.Certificates[0].Leaf
	if leaf == nil {
		var err error
		if leaf, err = x509.ParseCertificate(cfg.Certificates[0].Certificate[0]); err != nil {
			return "", nil, nil
		}
	}
	return RFC2253Subject(leaf), uriSANs(leaf), leaf.DNSNames
}

// tlsInfoFromState builds the properties Envoy's Ssl::ConnectionInfo exposes
// (connection.tls_version, connection.subject_peer_certificate, …) from a
// completed handshake. peers, when not nil, caches the peer certificate's
// derived properties across connections.
func tlsInfoFromState(cs tls.ConnectionState, localSubject string, localURIs, localDNS []string, peers *peerCache) *host.TLSInfo {
	info := &host.TLSInfo{
		Version:      tlsVersionName(cs.Version),
		SubjectLocal: localSubject,
		URISANsLocal: localURIs,
		DNSSANsLocal: localDNS,
	}
	if len(cs.PeerCertificates) > 0 {
		p := peers.get(cs.PeerCertificates[0])
		info.PeerCertPresented = true
		info.SubjectPeer = p.subject
		info.URISANsPeer = p.uris
		info.DNSSANsPeer = p.dns
		info.SHA256PeerDigest = p.digest
	}
	return info
}

// peerProps are the properties derived from one peer certificate.
type peerProps struct {
	subject, digest string
	uris, dns       []string
}

func newPeerProps(c *x509.Certificate) peerProps {
	sum := sha256.Sum256(c.Raw)
	return peerProps{subject: RFC2253Subject(c), digest: hex.EncodeToString(sum[:]), uris: uriSANs(c), dns: c.DNSNames}
}

// peerCacheSize bounds peerCache; when it is full the cache starts over.
const peerCacheSize = 1024

// peerCache maps a certificate's DER bytes to its derived properties, so the
// subject (RFC 2253), SANs and digest of a modality's certificate are computed
// once, not on every association. The slices it hands out are shared and
// never modified.
type peerCache struct {
	mu sync.Mutex
	m  map[string]peerProps
}

// get returns c's properties, from the cache when c was seen before. A nil
// cache computes them every time.
func (pc *peerCache) get(c *x509.Certificate) peerProps {
	if pc == nil {
		return newPeerProps(c)
	}
	pc.mu.Lock()
	p, ok := pc.m[string(c.Raw)]
	pc.mu.Unlock()
	if ok {
		return p
	}
	p = newPeerProps(c)
	pc.mu.Lock()
	if pc.m == nil || len(pc.m) >= peerCacheSize {
		pc.m = make(map[string]peerProps)
	}
	pc.m[string(c.Raw)] = p
	pc.mu.Unlock()
	return p
}

// tlsVersionName spells a TLS version like OpenSSL/BoringSSL SSL_get_version,
// which Envoy returns for connection.tls_version
// (source/common/tls/connection_info_impl.cc ConnectionInfoImplBase::tlsVersion).
func tlsVersionName(v uint16) string {
	switch v {
	case tls.VersionTLS10:
		return "TLSv1"
	case tls.VersionTLS11:
		return "TLSv1.1"
	case tls.VersionTLS12:
		return "TLSv1.2"
	case tls.VersionTLS13:
		return "TLSv1.3"
	}
	return "unknown"
}

func uriSANs(c *x509.Certificate) []string {
	if len(c.URIs) == 0 {
		return nil
	}
	out := make([]string, len(c.URIs))
	for i, u := range c.URIs {
		out[i] = u.String()
	}
	return out
}

// shortNames are the OpenSSL short names (XN_FLAG_FN_SN) of the attribute
// types commonly found in certificate subjects.
var shortNames = map[string]string{
	"2.5.4.3":                    "CN",
	"2.5.4.4":                    "SN",
	"2.5.4.5":                    "serialNumber",
	"2.5.4.6":                    "C",
	"2.5.4.7":                    "L",
	"2.5.4.8":                    "ST",
	"2.5.4.9":                    "street",
	"2.5.4.10":                   "O",
	"2.5.4.11":                   "OU",
	"2.5.4.12":                   "title",
	"2.5.4.17":                   "postalCode",
	"2.5.4.41":                   "name",
	"2.5.4.42":                   "GN",
	"2.5.4.43":                   "initials",
	"2.5.4.44":                   "generationQualifier",
	"2.5.4.46":                   "dnQualifier",
	"2.5.4.65":                   "pseudonym",
	"0.9.2342.19200300.100.1.1":  "UID",
	"0.9.2342.19200300.100.1.25": "DC",
	"1.2.840.113549.1.9.1":       "emailAddress",
}

// RFC2253Subject formats a certificate subject the way Envoy reports
// connection.subject_peer_certificate: BoringSSL X509_NAME_print_ex with
// XN_FLAG_RFC2253 (source/common/tls/utility.cc
// getRFC2253NameFromCertificate): RDNs in reverse order separated by ",",
// multi-valued RDNs joined by "+", OpenSSL short names, RFC 2253 escaping plus
// \XX escapes for control and non-ASCII bytes, and unknown attribute types as
// OID=#hex-of-DER. Example: "CN=CT1,O=Hospital".
func RFC2253Subject(c *x509.Certificate) string {
	var seq pkix.RDNSequence
	if rest, err := asn1.Unmarshal(c.RawSubject, &seq); err != nil || len(rest) != 0 {
		return c.Subject.String()
	}
	var b strings.Builder
	for i := len(seq) - 1; i >= 0; i-- {
		if i != len(seq)-1 {
			b.WriteByte(',')
		}
		for j, atv := range seq[i] {
			if j > 0 {
				b.WriteByte('+')
			}
			oid := atv.Type.String()
			sn, known := shortNames[oid]
			s, isString := atv.Value.(string)
			if !known || !isString {
				// XN_FLAG_DUMP_UNKNOWN_FIELDS / ASN1_STRFLGS_DUMP_UNKNOWN: hex dump of the DER value.
				if known {
					b.WriteString(sn)
				} else {
					b.WriteString(oid)
				}
				b.WriteString("=#")
				der, err := asn1.Marshal(atv.Value)
				if err == nil {
					b.WriteString(strings.ToUpper(hex.EncodeToString(der)))
				}
				continue
			}
			b.WriteString(sn)
			b.WriteByte('=')
			escapeRFC2253(&b, s)
		}
	}
	return b.String()
}

// escapeRFC2253 writes s with ASN1_STRFLGS_ESC_2253 | ESC_CTRL | ESC_MSB
// escaping: the RFC 2253 specials with a backslash, a leading '#' or space and
// a trailing space with a backslash, control and non-ASCII bytes as \XX.
func escapeRFC2253(b *strings.Builder, s string) {
	const hexd = "0123456789ABCDEF"
	for i := 0; i < len(s); i++ {
		ch := s[i]
		switch {
		case ch == ',' || ch == '+' || ch == '"' || ch == '\\' || ch == '<' || ch == '>' || ch == ';':
			b.WriteByte('\\')
			b.WriteByte(ch)
		case (ch == '#' || ch == ' ') && i == 0, ch == ' ' && i == len(s)-1:
			b.WriteByte('\\')
			b.WriteByte(ch)
		case ch < 0x20 || ch >= 0x7f:
			b.WriteByte('\\')
			b.WriteByte(hexd[ch>>4])
			b.WriteByte(hexd[ch&0xf])
		default:
			b.WriteByte(ch)
		}
	}
}
