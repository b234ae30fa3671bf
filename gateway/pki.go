package gateway

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
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

// DemoPKI is a throw-away certificate authority with one server and one client
// certificate, written as PEM files (what `dicomgate serve` without flags
// uses, and what tests use). Never use it for real traffic.
type DemoPKI struct {
	Dir                  string // directory holding the files
	CACert               string // ca.crt
	ServerCert           string // server.crt (SANs: localhost, 127.0.0.1, ::1 and the extra hosts)
	ServerKey            string // server.key
	ClientCert           string // client.crt (subject CN=<client CN>,O=dicomgate demo)
	ClientKey            string // client.key
	ClientSubject        string // the client certificate's subject as Envoy reports it
	ClientURI            string // the client certificate's URI SAN
	ClientCertificateDER []byte // the client certificate (DER)
}

// PKIOptions tune WriteDemoPKI.
type PKIOptions struct {
	// ClientCN is the client certificate's common name; "" means "DEMO-SCU".
	ClientCN string
	// ClientOrg is its organization; "" means "dicomgate demo".
	ClientOrg string
	// ExtraServerHosts are added to the server certificate's SANs.
	ExtraServerHosts []string
	// Validity is the certificates' lifetime; 0 means 7 days.
	Validity time.Duration
}

// WriteDemoPKI creates a fresh ECDSA P-256 CA, a server certificate and a
// client certificate (TLS client auth, URI SAN spiffe://dicomgate.demo/<CN>)
// and writes them as PEM files into dir (created with mode 0700). Keys are
// written with mode 0600 in PKCS#8 form, which dcmtk and OpenSSL read.
func WriteDemoPKI(dir string, opt PKIOptions) (*DemoPKI, error) {
	if opt.ClientCN == "" {
		opt.ClientCN = "DEMO-SCU"
	}
	if opt.ClientOrg == "" {
		opt.ClientOrg = "dicomgate demo"
	}
	if opt.Validity <= 0 {
		opt.Validity = 7 * 24 * time.Hour
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("demo PKI: %w", err)
	}
	now := time.Now().Add(-time.Hour)
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("demo PKI: CA key: %w", err)
	}
	caTmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{Organization: []string{"dicomgate demo"}, CommonName: "dicomgate demo CA"},
		NotBefore:             now,
		NotAfter:              now.Add(opt.Validity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, caKey.Public(), caKey)
	if err != nil {
		return nil, fmt.Errorf("demo PKI: CA certificate: %w", err)
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		return nil, fmt.Errorf("demo PKI: %w", err)
	}
	p := &DemoPKI{
		Dir:        dir,
		CACert:     filepath.Join(dir, "ca.crt"),
		ServerCert: filepath.Join(dir, "server.crt"),
		ServerKey:  filepath.Join(dir, "server.key"),
		ClientCert: filepath.Join(dir, "client.crt"),
		ClientKey:  filepath.Join(dir, "client.key"),
		ClientURI:  "spiffe://dicomgate.demo/" + url.PathEscape(opt.ClientCN),
	}
	if err := writePEM(p.CACert, "CERTIFICATE", caDER, 0o644); err != nil {
		return nil, err
	}
	server := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{Organization: []string{"dicomgate demo"}, CommonName: "localhost"},
		NotBefore:    now,
		NotAfter:     now.Add(opt.Validity),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:     []string{"localhost"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	}
	for _, h := range opt.ExtraServerHosts {
		if ip := net.ParseIP(h); ip != nil {
			server.IPAddresses = append(server.IPAddresses, ip)
		} else {
			server.DNSNames = append(server.DNSNames, h)
		}
	}
	if _, err := issue(server, ca, caKey, p.ServerCert, p.ServerKey); err != nil {
		return nil, err
	}
	u, _ := url.Parse(p.ClientURI)
	client := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{Organization: []string{opt.ClientOrg}, CommonName: opt.ClientCN},
		NotBefore:    now,
		NotAfter:     now.Add(opt.Validity),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		URIs:         []*url.URL{u},
	}
	der, err := issue(client, ca, caKey, p.ClientCert, p.ClientKey)
	if err != nil {
		return nil, err
	}
	p.ClientCertificateDER = der
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("demo PKI: %w", err)
	}
	p.ClientSubject = RFC2253Subject(leaf)
	return p, nil
}

func serial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		return big.NewInt(time.Now().UnixNano())
	}
	return n
}

// issue signs tmpl with the CA and writes the certificate and a new key.
func issue(tmpl, ca *x509.Certificate, caKey crypto.Signer, certFile, keyFile string) ([]byte, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("demo PKI: key for %s: %w", certFile, err)
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, key.Public(), caKey)
	if err != nil {
		return nil, fmt.Errorf("demo PKI: certificate %s: %w", certFile, err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("demo PKI: key for %s: %w", certFile, err)
	}
	if err := writePEM(certFile, "CERTIFICATE", der, 0o644); err != nil {
		return nil, err
	}
	if err := writePEM(keyFile, "PRIVATE KEY", keyDER, 0o600); err != nil {
		return nil, err
	}
	return der, nil
}

func writePEM(path, typ string, der []byte, mode os.FileMode) error {
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), mode); err != nil {
		return fmt.Errorf("demo PKI: %w", err)
	}
	return nil
}
