package e2e

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"time"
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
	Server keyPair // CN dicomgate.test, SAN IP 127.0.0.1 and DNS localhost
	CT1    keyPair // client, URI SAN spiffe://hospital/modality/ct1
	MR1    keyPair // client, URI SAN spiffe://hospital/modality/mr1
	NoSAN  keyPair // client, no SAN at all
}

// newPKI generates a CA and the server/client certificates into dir.
func newPKI(dir string) (*pki, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "dicomgate e2e test CA", Organization: []string{"dicomgate e2e"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return nil, err
	}
	caCert, err := x509.ParseCertificate(caDER)
	if err != nil {
		return nil, err
	}
	p := &pki{CAFile: filepath.Join(dir, "ca.crt"), caPool: x509.NewCertPool()}
	p.caPool.AddCert(caCert)
	if err := writePEM(p.CAFile, "CERTIFICATE", caDER); err != nil {
		return nil, err
	}
	serial := int64(2)
	issue := func(name, cn string, server bool, uris []string) (keyPair, error) {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return keyPair{}, err
		}
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(serial),
			Subject:      pkix.Name{CommonName: cn, Organization: []string{"dicomgate e2e"}},
			NotBefore:    now.Add(-time.Hour),
			NotAfter:     now.Add(24 * time.Hour),
			KeyUsage:     x509.KeyUsageDigitalSignature,
		}
		serial++
		if server {
			tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
			tmpl.DNSNames = []string{"localhost", "dicomgate.test"}
			tmpl.IPAddresses = []net.IP{net.IPv4(127, 0, 0, 1)}
		} else {
			tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
		}
		for _, u := range uris {
			pu, err := url.Parse(u)
			if err != nil {
				return keyPair{}, fmt.Errorf("URI SAN %q: %w", u, err)
			}
			tmpl.URIs = append(tmpl.URIs, pu)
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &key.PublicKey, caKey)
		if err != nil {
			return keyPair{}, err
		}
		keyDER, err := x509.MarshalPKCS8PrivateKey(key)
		if err != nil {
			return keyPair{}, err
		}
		kp := keyPair{Cert: filepath.Join(dir, name+".crt"), Key: filepath.Join(dir, name+".key")}
		if err := writePEM(kp.Cert, "CERTIFICATE", der); err != nil {
			return keyPair{}, err
		}
		if err := writePEM(kp.Key, "PRIVATE KEY", keyDER); err != nil {
			return keyPair{}, err
		}
		kp.tls = tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
		return kp, nil
	}
	if p.Server, err = issue("server", "dicomgate.test", true, nil); err != nil {
		return nil, err
	}
	if p.CT1, err = issue("ct1", "ct1", false, []string{ct1SPIFFE}); err != nil {
		return nil, err
	}
	if p.MR1, err = issue("mr1", "mr1", false, []string{mr1SPIFFE}); err != nil {
		return nil, err
	}
	if p.NoSAN, err = issue("nosan", "modality-without-san", false, nil); err != nil {
		return nil, err
	}
	return p, nil
}

func writePEM(path, typ string, der []byte) error {
	return os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600)
}

// clientTLS is a Go TLS client configuration trusting the test CA, optionally presenting kp.
func (p *pki) clientTLS(kp *keyPair) *tls.Config {
	c := &tls.Config{RootCAs: p.caPool, ServerName: "localhost", MinVersion: tls.VersionTLS12}
	if kp != nil {
		c.Certificates = []tls.Certificate{kp.tls}
	}
	return c
}
