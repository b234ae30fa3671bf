package gateway

import (
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"testing"
	"time"

	"github.com/dicomgate/dicomgate/internal/demopki"
	"github.com/stretchr/testify/require"
)

// withSubject returns a certificate whose subject is exactly rdns (wire order).
func withSubject(t *testing.T, rdns pkix.RDNSequence) *x509.Certificate {
	t.Helper()
	raw, err := asn1.Marshal(rdns)
	require.NoError(t, err)
	ca, err := demopki.NewCA(pkix.Name{CommonName: "tlsinfo test CA"}, time.Hour)
	require.NoError(t, err)
	c, err := ca.Issue(demopki.Spec{RawSubject: raw})
	require.NoError(t, err)
	return c.Leaf
}

func atv(oid asn1.ObjectIdentifier, v any) pkix.AttributeTypeAndValue {
	return pkix.AttributeTypeAndValue{Type: oid, Value: v}
}

// Envoy (BoringSSL X509_NAME_print_ex, XN_FLAG_RFC2253) prints the subject in
// reverse wire order with short names and RFC 2253 escaping.
func TestRFC2253Subject(t *testing.T) {
	var (
		cn    = asn1.ObjectIdentifier{2, 5, 4, 3}
		o     = asn1.ObjectIdentifier{2, 5, 4, 10}
		ou    = asn1.ObjectIdentifier{2, 5, 4, 11}
		c     = asn1.ObjectIdentifier{2, 5, 4, 6}
		email = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 1}
		odd   = asn1.ObjectIdentifier{1, 2, 3, 4}
	)
	for _, tc := range []struct {
		rdns pkix.RDNSequence
		want string
	}{
		{pkix.RDNSequence{{atv(o, "Hospital")}, {atv(cn, "CT1")}}, "CN=CT1,O=Hospital"},
		// Wire order is kept (not Go's canonical C,O,OU,CN order), then reversed.
		{pkix.RDNSequence{{atv(cn, "CT1")}, {atv(c, "DE")}}, "C=DE,CN=CT1"},
		// Multi-valued RDN joined with '+'.
		{pkix.RDNSequence{{atv(c, "US")}, {atv(o, "Widget Inc.")}, {atv(ou, "Sales"), atv(cn, "J. Smith")}}, "OU=Sales+CN=J. Smith,O=Widget Inc.,C=US"},
		// Specials, leading '#', trailing space, non-ASCII bytes.
		{pkix.RDNSequence{{atv(o, "Sue, Grabbit and Runn")}, {atv(cn, "#L. Eagle ")}}, `CN=\#L. Eagle\ ,O=Sue\, Grabbit and Runn`},
		{pkix.RDNSequence{{atv(cn, "Müller")}}, `CN=M\C3\BCller`},
		{pkix.RDNSequence{{atv(email, "a@b.example")}}, "emailAddress=a@b.example"},
		// Unknown attribute types are dumped as OID=#hex(DER).
		{pkix.RDNSequence{{atv(odd, "x")}}, "1.2.3.4=#130178"},
	} {
		require.Equal(t, tc.want, RFC2253Subject(withSubject(t, tc.rdns)))
	}
}

func TestTLSVersionName(t *testing.T) {
	require.Equal(t, "TLSv1.2", tlsVersionName(0x0303))
	require.Equal(t, "TLSv1.3", tlsVersionName(0x0304))
}

// The peer-certificate cache answers each certificate with its own
// properties (keyed by the whole DER, not by the subject), also after it
// started over when full.
func TestPeerCacheKeyedByCertificate(t *testing.T) {
	cn := asn1.ObjectIdentifier{2, 5, 4, 3}
	a := withSubject(t, pkix.RDNSequence{{atv(cn, "CT1")}})
	b := withSubject(t, pkix.RDNSequence{{atv(cn, "CT1")}}) // same subject, another key and issuer
	var pc peerCache
	for range 2 {
		require.Equal(t, newPeerProps(a), pc.get(a))
		require.Equal(t, newPeerProps(b), pc.get(b))
	}
	require.NotEqual(t, pc.get(a).digest, pc.get(b).digest)
	for i := range peerCacheSize { // fill it with other keys: a new certificate starts it over
		pc.m[string(rune(i))] = peerProps{}
	}
	c := withSubject(t, pkix.RDNSequence{{atv(cn, "CT2")}})
	require.Equal(t, newPeerProps(c), pc.get(c))
	require.Equal(t, 1, len(pc.m), "entries after the cache started over")
	require.Equal(t, newPeerProps(a), pc.get(a))
}

// BenchmarkTLSInfoFromState measures the per-connection TLS properties of a
// mutual-TLS client: computed every time (nocache) or from the peer cache.
func BenchmarkTLSInfoFromState(b *testing.B) {
	ca, err := demopki.NewCA(pkix.Name{CommonName: "bench CA"}, time.Hour)
	require.NoError(b, err)
	leaf, err := ca.Issue(demopki.Spec{Subject: pkix.Name{CommonName: "CT1", Organization: []string{"Hospital"}}})
	require.NoError(b, err)
	cs := tls.ConnectionState{Version: tls.VersionTLS13, PeerCertificates: []*x509.Certificate{leaf.Leaf}}
	for _, bc := range []struct {
		name string
		pc   *peerCache
	}{{"nocache", nil}, {"cache", &peerCache{}}} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				tlsInfoFromState(cs, "CN=server", nil, nil, bc.pc)
			}
		})
	}
}
