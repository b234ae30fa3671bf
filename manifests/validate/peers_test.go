package validate

// The DICOM peers behind the real Envoy: two Orthancs and a dcmtk storescp
// standing in for the pods of the Services in base/services.yaml, and the
// test PKI (internal/demopki, as in e2e) standing in for the credentialName
// Secrets. The peers are small equivalents of e2e/peers_test.go (another
// module's test files).

import (
	"bytes"
	"crypto/x509/pkix"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dicomgate/dicomgate/internal/demopki"
	"github.com/stretchr/testify/require"
)

// backend is one DICOM peer behind a Service of base/services.yaml.
type backend struct {
	proc *proc
	port int    // DICOM port on 127.0.0.1
	dir  string // storescp: where received objects are written
}

// sawCallingAE reports whether the backend logged an association from the
// calling AE title after mark: Orthanc --verbose logs "Association Received
// from AET <calling> on IP ...", storescp -d logs "Calling Application Name:".
func (b *backend) sawCallingAE(aet string, mark int) bool {
	out := b.proc.since(mark)
	if len(grepLines(out, "Association Received from AET "+aet+" ")) > 0 {
		return true
	}
	for _, l := range grepLines(out, "Calling Application Name:") {
		if strings.TrimSpace(strings.SplitN(l, "Calling Application Name:", 2)[1]) == aet {
			return true
		}
	}
	return false
}

// startOrthanc starts Orthanc (AE ORTHANC, own storage, REST on loopback)
// and waits until GET /system answers. checkCalledAE is Orthanc's
// DicomCheckCalledAet: false is Orthanc's (and Korthweb's) default.
// It returns an error rather than failing t, so that two can start in
// parallel goroutines.
func startOrthanc(dir, label string, checkCalledAE bool, httpPort, dicomPort int) (*backend, error) {
	storage := filepath.Join(dir, label)
	if err := os.MkdirAll(storage, 0o755); err != nil {
		return nil, err
	}
	cfg := map[string]any{
		"Name": "dicomgate-" + label, "StorageDirectory": storage, "IndexDirectory": storage, "Plugins": []string{},
		"HttpServerEnabled": true, "HttpPort": httpPort, "RemoteAccessAllowed": false, "AuthenticationEnabled": false,
		"DicomServerEnabled": true, "DicomAet": "ORTHANC", "DicomPort": dicomPort, "DicomCheckCalledAet": checkCalledAE,
		"DicomAlwaysAllowEcho": true, "DicomAlwaysAllowStore": true, "DicomCheckModalityHost": false,
		"DicomModalities": map[string]any{}, "DicomAssociationCloseDelay": 0, "ExecuteLuaEnabled": false,
	}
	js, err := json.Marshal(cfg)
	if err != nil {
		return nil, err
	}
	cfgPath := filepath.Join(dir, label+".json")
	if err := os.WriteFile(cfgPath, js, 0o644); err != nil {
		return nil, err
	}
	p, err := startProc(label, filepath.Join(dir, label+".log"), "Orthanc", "--verbose", cfgPath)
	if err != nil {
		return nil, err
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/system", httpPort))
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return &backend{proc: p, port: dicomPort}, nil
			}
		}
		if p.exited() || time.Now().After(deadline) {
			return nil, fmt.Errorf("orthanc %s not ready after 60 s (exited: %v); output:\n%s", label, p.exited(), tail(p.output(), 40))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// startStoreSCP starts `storescp -d +xa +B -aet AET -od DIR PORT`: any
// transfer syntax, objects written bit-preserving (exactly as received).
func startStoreSCP(t *testing.T, dir, label, aet string) *backend {
	t.Helper()
	out := filepath.Join(dir, label)
	require.NoError(t, os.MkdirAll(out, 0o755))
	port := freePort(t)
	p, err := startProc(label, filepath.Join(dir, label+".log"), "storescp", "-d", "+xa", "+B", "-aet", aet, "-od", out, strconv.Itoa(port))
	require.NoError(t, err)
	require.NoError(t, waitListening(p, port, 20*time.Second))
	return &backend{proc: p, port: port, dir: out}
}

// requirePeers fails with the install command when dcmtk or Orthanc is
// missing (as the e2e suite does; nothing is skipped).
func requirePeers(t *testing.T) {
	t.Helper()
	for _, b := range []string{"echoscu", "storescu", "storescp", "Orthanc"} {
		_, err := exec.LookPath(b)
		require.NoError(t, err, "%s not found: sudo apt-get update && sudo apt-get install -y dcmtk orthanc (or `make deps` as root)", b)
	}
}

// datasetAfterMeta returns the bytes of a DICOM Part 10 file after its
// File Meta Information group (preamble, "DICM", group 0002 in explicit VR
// little endian, its length from (0002,0000)): the data set as transferred.
func datasetAfterMeta(file []byte) ([]byte, error) {
	if len(file) < 144 || string(file[128:132]) != "DICM" {
		return nil, errors.New("not a DICOM Part 10 file (no DICM at offset 128)")
	}
	// (0002,0000) UL 4 <group length>
	if binary.LittleEndian.Uint16(file[132:]) != 2 || binary.LittleEndian.Uint16(file[134:]) != 0 || string(file[136:138]) != "UL" {
		return nil, errors.New("file meta information does not start with (0002,0000) UL")
	}
	end := 144 + int(binary.LittleEndian.Uint32(file[140:]))
	if end > len(file) {
		return nil, errors.New("file meta group length runs past the end of the file")
	}
	return file[end:], nil
}

// testPKI is the test CA and the certificates the Secrets would hold.
type testPKI struct {
	dir            string
	caPEM          []byte
	serverCertPEM  []byte
	serverKeyPEM   []byte
	CAFile         string
	CT01Cert       string // client, URI SAN ct01SPIFFE
	CT01Key        string
	NoSANCert      string // client, no SAN
	NoSANKey       string
	ServerCertFile string
}

// ct01SPIFFE is the URI SAN base/policy.yaml binds calling AE CT01 to.
const ct01SPIFFE = "spiffe://radiology.example.org/modality/ct01"

// newTestPKI writes a CA, a server certificate for 127.0.0.1/localhost and
// two client certificates (CT01's, and one without SAN) into dir, with
// internal/demopki (this module may import it: its path is below the
// repository's).
func newTestPKI(t *testing.T, dir string) *testPKI {
	t.Helper()
	ca, err := demopki.NewCA(pkix.Name{CommonName: "dicomgate manifests test CA"}, 24*time.Hour)
	require.NoError(t, err)
	p := &testPKI{dir: dir, caPEM: ca.Cert.CertPEM(), CAFile: filepath.Join(dir, "ca.crt"),
		ServerCertFile: filepath.Join(dir, "server.crt"),
		CT01Cert:       filepath.Join(dir, "ct01.crt"), CT01Key: filepath.Join(dir, "ct01.key"),
		NoSANCert: filepath.Join(dir, "nosan.crt"), NoSANKey: filepath.Join(dir, "nosan.key")}
	require.NoError(t, ca.Cert.Write(p.CAFile, ""))
	server, err := ca.Issue(demopki.Spec{Subject: pkix.Name{CommonName: "server"}, Server: true, Hosts: []string{"localhost", "127.0.0.1"}})
	require.NoError(t, err)
	require.NoError(t, server.Write(p.ServerCertFile, filepath.Join(dir, "server.key")))
	p.serverCertPEM, p.serverKeyPEM = server.CertPEM(), server.KeyPEM()
	ct01, err := ca.Issue(demopki.Spec{Subject: pkix.Name{CommonName: "ct01"}, URIs: []string{ct01SPIFFE}})
	require.NoError(t, err)
	require.NoError(t, ct01.Write(p.CT01Cert, p.CT01Key))
	nosan, err := ca.Issue(demopki.Spec{Subject: pkix.Name{CommonName: "nosan"}})
	require.NoError(t, err)
	require.NoError(t, nosan.Write(p.NoSANCert, p.NoSANKey))
	return p
}

// sameBytes reports whether two files hold the same data set, with a
// message naming the first difference.
func sameBytes(a, b []byte) (bool, string) {
	if bytes.Equal(a, b) {
		return true, ""
	}
	n := min(len(a), len(b))
	for i := range n {
		if a[i] != b[i] {
			return false, fmt.Sprintf("first difference at data set byte %d (lengths %d and %d)", i, len(a), len(b))
		}
	}
	return false, fmt.Sprintf("lengths differ: %d and %d", len(a), len(b))
}
