package e2e

import (
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"os"
	"path/filepath"
	"time"

	"github.com/dicomgate/dicomgate/internal/demopki"
)

// ct1SPIFFE is the URI SAN of the CT modality's client certificate; the policy binds it to calling AE CT1.
const ct1SPIFFE = "spiffe://hospital/modality/ct1"

// mr1SPIFFE is the URI SAN of the MR modality's client certificate; the policy binds it to calling AE MR1.
const mr1SPIFFE = "spiffe://hospital/modality/mr1"

// keyPair names the PEM files of one certificate and its private key.
type keyPair struct {
	Cert, Key string
	tls       tls.Certificate
}

// pki is the per-run test certificate authority and the certificates it issued, written as PEM files.
type pki struct {
	CAFile string
	caPool *x509.CertPool
	Server keyPair // CN dicomgate.test, SAN IP 127.0.0.1 and DNS localhost, dicomgate.test
	CT1    keyPair // client, URI SAN spiffe://hospital/modality/ct1
	MR1    keyPair // client, URI SAN spiffe://hospital/modality/mr1
	NoSAN  keyPair // client, no SAN at all
}

// newPKI generates a CA and the server/client certificates (internal/demopki) into dir.
func newPKI(dir string) (*pki, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	org := []string{"dicomgate e2e"}
	ca, err := demopki.NewCA(pkix.Name{CommonName: "dicomgate e2e test CA", Organization: org}, 24*time.Hour)
	if err != nil {
		return nil, err
	}
	p := &pki{CAFile: filepath.Join(dir, "ca.crt"), caPool: ca.Pool}
	if err := ca.Cert.Write(p.CAFile, ""); err != nil {
		return nil, err
	}
	for _, c := range []struct {
		kp   *keyPair
		name string
		spec demopki.Spec
	}{
		{&p.Server, "server", demopki.Spec{Subject: pkix.Name{CommonName: "dicomgate.test", Organization: org}, Server: true,
			Hosts: []string{"localhost", "dicomgate.test", "127.0.0.1"}}},
		{&p.CT1, "ct1", demopki.Spec{Subject: pkix.Name{CommonName: "ct1", Organization: org}, URIs: []string{ct1SPIFFE}}},
		{&p.MR1, "mr1", demopki.Spec{Subject: pkix.Name{CommonName: "mr1", Organization: org}, URIs: []string{mr1SPIFFE}}},
		{&p.NoSAN, "nosan", demopki.Spec{Subject: pkix.Name{CommonName: "modality-without-san", Organization: org}}},
	} {
		cert, err := ca.Issue(c.spec)
		if err != nil {
			return nil, err
		}
		*c.kp = keyPair{Cert: filepath.Join(dir, c.name+".crt"), Key: filepath.Join(dir, c.name+".key"), tls: cert.TLS()}
		if err := cert.Write(c.kp.Cert, c.kp.Key); err != nil {
			return nil, err
		}
	}
	return p, nil
}

// clientTLS is a Go TLS client configuration trusting the test CA, optionally presenting kp.
func (p *pki) clientTLS(kp *keyPair) *tls.Config {
	c := &tls.Config{RootCAs: p.caPool, ServerName: "localhost", MinVersion: tls.VersionTLS12}
	if kp != nil {
		c.Certificates = []tls.Certificate{kp.tls}
	}
	return c
}
