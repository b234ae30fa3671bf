package demopki

import (
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestMutualTLS: a server certificate for localhost/127.0.0.1 and a client
// certificate with a URI SAN, both from one CA, complete a mutual TLS
// handshake, and each side sees the other's identity.
func TestMutualTLS(t *testing.T) {
	ca, err := NewCA(pkix.Name{CommonName: "test CA"}, time.Hour)
	require.NoError(t, err)
	srv, err := ca.Issue(Spec{Subject: pkix.Name{CommonName: "server"}, Server: true, Hosts: []string{"localhost", "127.0.0.1", "::1"}})
	require.NoError(t, err)
	cli, err := ca.Issue(Spec{Subject: pkix.Name{CommonName: "CT1", Organization: []string{"Hospital"}}, URIs: []string{"spiffe://hospital/ct1"}})
	require.NoError(t, err)

	require.Equal(t, []string{"localhost"}, srv.Leaf.DNSNames)
	require.Len(t, srv.Leaf.IPAddresses, 2)
	require.Equal(t, "spiffe://hospital/ct1", cli.Leaf.URIs[0].String())
	require.Equal(t, "CN=CT1,O=Hospital", cli.Leaf.Subject.String())
	require.True(t, ca.Cert.Leaf.IsCA)

	a, b := net.Pipe()
	server := tls.Server(a, &tls.Config{Certificates: []tls.Certificate{srv.TLS()}, ClientCAs: ca.Pool,
		ClientAuth: tls.RequireAndVerifyClientCert, MinVersion: tls.VersionTLS13})
	client := tls.Client(b, &tls.Config{Certificates: []tls.Certificate{cli.TLS()}, RootCAs: ca.Pool,
		ServerName: "127.0.0.1", MinVersion: tls.VersionTLS13})
	done := make(chan error, 1)
	go func() { done <- server.Handshake() }()
	require.NoError(t, client.Handshake())
	require.NoError(t, <-done)
	require.Equal(t, "server", client.ConnectionState().PeerCertificates[0].Subject.CommonName)
	require.Equal(t, "CT1", server.ConnectionState().PeerCertificates[0].Subject.CommonName)
	a.Close() // not the TLS conns: their close_notify would block on the unread pipe
	b.Close()

	// A client certificate is not a server certificate.
	_, err = cli.Leaf.Verify(x509.VerifyOptions{Roots: ca.Pool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}})
	require.Error(t, err)
}

// TestRawSubject: a raw RDN sequence is the certificate's subject byte for
// byte (wire order and multi-valued RDNs kept).
func TestRawSubject(t *testing.T) {
	ca, err := NewCA(pkix.Name{CommonName: "test CA"}, 0)
	require.NoError(t, err)
	cn, o := asn1.ObjectIdentifier{2, 5, 4, 3}, asn1.ObjectIdentifier{2, 5, 4, 10}
	raw, err := asn1.Marshal(pkix.RDNSequence{
		{{Type: cn, Value: "first"}},
		{{Type: o, Value: "a"}, {Type: cn, Value: "b"}},
	})
	require.NoError(t, err)
	c, err := ca.Issue(Spec{RawSubject: raw})
	require.NoError(t, err)
	require.Equal(t, raw, c.Leaf.RawSubject)
	require.WithinDuration(t, time.Now().Add(DefaultValidity), c.Leaf.NotAfter, time.Minute)
}

// TestWrite: PEM files that tls.LoadX509KeyPair reads, a PKCS#8 key, modes
// 0644 and 0600, no temporary file left, and an existing file replaced.
func TestWrite(t *testing.T) {
	dir := t.TempDir()
	ca, err := NewCA(pkix.Name{CommonName: "test CA"}, time.Hour)
	require.NoError(t, err)
	c, err := ca.Issue(Spec{Subject: pkix.Name{CommonName: "server"}, Server: true, Hosts: []string{"localhost"}})
	require.NoError(t, err)
	certFile, keyFile := filepath.Join(dir, "server.crt"), filepath.Join(dir, "server.key")
	require.NoError(t, os.WriteFile(certFile, []byte("old"), 0o600))
	require.NoError(t, c.Write(certFile, keyFile))
	require.NoError(t, ca.Cert.Write(filepath.Join(dir, "ca.crt"), ""))

	pair, err := tls.LoadX509KeyPair(certFile, keyFile)
	require.NoError(t, err)
	require.Equal(t, c.DER, pair.Certificate[0])
	require.Contains(t, string(c.KeyPEM()), "-----BEGIN PRIVATE KEY-----")
	for name, mode := range map[string]os.FileMode{"server.crt": 0o644, "server.key": 0o600, "ca.crt": 0o644} {
		fi, err := os.Stat(filepath.Join(dir, name))
		require.NoError(t, err)
		require.Equal(t, mode, fi.Mode().Perm(), name)
	}
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	require.Len(t, entries, 3, "only ca.crt, server.crt and server.key")

	err = WriteFile(filepath.Join(dir, "missing", "x.crt"), []byte("x"), 0o644)
	require.ErrorContains(t, err, "demo PKI")
	require.ErrorIs(t, err, os.ErrNotExist)
}
