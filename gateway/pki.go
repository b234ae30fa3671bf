package gateway

import (
	"crypto/x509/pkix"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"time"

	"github.com/dicomgate/dicomgate/internal/demopki"
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
// with internal/demopki and writes them as PEM files into dir (created with
// mode 0700). Keys are written with mode 0600 in PKCS#8 form, which dcmtk and
// OpenSSL read.
func WriteDemoPKI(dir string, opt PKIOptions) (*DemoPKI, error) {
	if opt.ClientCN == "" {
		opt.ClientCN = "DEMO-SCU"
	}
	if opt.ClientOrg == "" {
		opt.ClientOrg = "dicomgate demo"
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("demo PKI: %w", err)
	}
	ca, err := demopki.NewCA(pkix.Name{Organization: []string{"dicomgate demo"}, CommonName: "dicomgate demo CA"}, opt.Validity)
	if err != nil {
		return nil, err
	}
	server, err := ca.Issue(demopki.Spec{
		Subject: pkix.Name{Organization: []string{"dicomgate demo"}, CommonName: "localhost"},
		Server:  true,
		Hosts:   append([]string{"localhost", "127.0.0.1", "::1"}, opt.ExtraServerHosts...),
	})
	if err != nil {
		return nil, err
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
	client, err := ca.Issue(demopki.Spec{
		Subject: pkix.Name{Organization: []string{opt.ClientOrg}, CommonName: opt.ClientCN},
		URIs:    []string{p.ClientURI},
	})
	if err != nil {
		return nil, err
	}
	if err := ca.Cert.Write(p.CACert, ""); err != nil {
		return nil, err
	}
	if err := server.Write(p.ServerCert, p.ServerKey); err != nil {
		return nil, err
	}
	if err := client.Write(p.ClientCert, p.ClientKey); err != nil {
		return nil, err
	}
	p.ClientCertificateDER = client.DER
	p.ClientSubject = RFC2253Subject(client.Leaf)
	return p, nil
}
