// Package demopki issues throw-away X.509 certificates for demos and tests:
// a certificate authority, server and client certificates with chosen
// subjects and SANs, ECDSA P-256 keys, written as PEM files with PKCS#8 keys
// (which Go, Envoy, dcmtk and OpenSSL all read). Files are written atomically
// (a temporary file renamed into place), so a process that watches or reads
// them never sees half a certificate. `dicomgate serve`'s demo
// (gateway.WriteDemoPKI), e2e and the manifests tests use it. Never use its
// certificates for real traffic.
package demopki

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"time"
)

// DefaultValidity is the lifetime of a CA's certificates when NewCA is
// given 0.
const DefaultValidity = 7 * 24 * time.Hour

// backdate is how long before now certificates become valid, so that a
// peer whose clock is a little behind accepts them.
const backdate = time.Hour

// CA is a certificate authority that issues certificates valid as long as
// its own.
type CA struct {
	// Cert is the CA's self-signed certificate and key.
	Cert *Cert
	// Pool holds Cert.Leaf, for a tls.Config's RootCAs or ClientCAs.
	Pool *x509.CertPool

	notBefore, notAfter time.Time
}

// Cert is an issued certificate with its private key.
type Cert struct {
	// DER is the certificate; Leaf the same, parsed.
	DER  []byte
	Leaf *x509.Certificate
	// Key is the certificate's private key.
	Key *ecdsa.PrivateKey

	keyDER []byte // PKCS#8
}

// Spec describes a certificate to issue.
type Spec struct {
	// Subject is the certificate's subject.
	Subject pkix.Name
	// RawSubject, when set, is the DER of the subject's RDN sequence in
	// wire order and replaces Subject (for subjects pkix.Name cannot
	// express: multi-valued RDNs, any attribute order).
	RawSubject []byte
	// Server makes a TLS server certificate; otherwise a client one.
	Server bool
	// Hosts are the DNS names and IP addresses (SANs) of a server.
	Hosts []string
	// URIs are URI SANs (e.g. a SPIFFE ID a policy binds to an AE title).
	URIs []string
}

// NewCA creates a CA with the given subject whose certificates are valid
// from an hour ago for validity (DefaultValidity when 0).
func NewCA(subject pkix.Name, validity time.Duration) (*CA, error) {
	if validity <= 0 {
		validity = DefaultValidity
	}
	now := time.Now()
	ca := &CA{notBefore: now.Add(-backdate), notAfter: now.Add(validity)}
	tmpl := &x509.Certificate{
		Subject:               subject,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	c, err := ca.sign(tmpl, nil)
	if err != nil {
		return nil, fmt.Errorf("demo PKI: CA %q: %w", subject.CommonName, err)
	}
	ca.Cert = c
	ca.Pool = x509.NewCertPool()
	ca.Pool.AddCert(c.Leaf)
	return ca, nil
}

// Issue creates a certificate for s signed by the CA.
func (ca *CA) Issue(s Spec) (*Cert, error) {
	tmpl := &x509.Certificate{
		Subject:     s.Subject,
		RawSubject:  s.RawSubject,
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	if s.Server {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
	}
	for _, h := range s.Hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	for _, u := range s.URIs {
		pu, err := url.Parse(u)
		if err != nil {
			return nil, fmt.Errorf("demo PKI: certificate %q: URI SAN %q: %w", s.Subject.CommonName, u, err)
		}
		tmpl.URIs = append(tmpl.URIs, pu)
	}
	c, err := ca.sign(tmpl, ca.Cert)
	if err != nil {
		return nil, fmt.Errorf("demo PKI: certificate %q: %w", s.Subject.CommonName, err)
	}
	return c, nil
}

// sign completes tmpl (serial, validity), generates its key and signs it
// with parent (nil: self-signed).
func (ca *CA) sign(tmpl *x509.Certificate, parent *Cert) (*Cert, error) {
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		return nil, err
	}
	tmpl.SerialNumber, tmpl.NotBefore, tmpl.NotAfter = serial, ca.notBefore, ca.notAfter
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	issuer, signer := tmpl, key
	if parent != nil {
		issuer, signer = parent.Leaf, parent.Key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, issuer, key.Public(), signer)
	if err != nil {
		return nil, err
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, err
	}
	return &Cert{DER: der, Leaf: leaf, Key: key, keyDER: keyDER}, nil
}

// TLS returns the certificate and key for a tls.Config's Certificates.
func (c *Cert) TLS() tls.Certificate {
	return tls.Certificate{Certificate: [][]byte{c.DER}, PrivateKey: c.Key, Leaf: c.Leaf}
}

// CertPEM is the certificate as a PEM "CERTIFICATE" block.
func (c *Cert) CertPEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.DER})
}

// KeyPEM is the private key as a PEM "PRIVATE KEY" (PKCS#8) block.
func (c *Cert) KeyPEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: c.keyDER})
}

// Write writes the certificate to certFile (mode 0644) and, unless keyFile
// is "", the key to keyFile (mode 0600), each atomically.
func (c *Cert) Write(certFile, keyFile string) error {
	if err := WriteFile(certFile, c.CertPEM(), 0o644); err != nil {
		return err
	}
	if keyFile == "" {
		return nil
	}
	return WriteFile(keyFile, c.KeyPEM(), 0o600)
}

// WriteFile writes data to path with mode perm through a temporary file in
// the same directory renamed into place: a reader sees the old file or the
// whole new one, never a part. The directory must exist.
func WriteFile(path string, data []byte, perm os.FileMode) (err error) {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("demo PKI: %w", err)
	}
	defer func() {
		if err != nil {
			os.Remove(f.Name())
			err = fmt.Errorf("demo PKI: writing %s: %w", path, err)
		}
	}()
	_, err = f.Write(data)
	err = errors.Join(err, f.Chmod(perm), f.Close())
	if err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}
