package main

import (
	"context"
	"crypto/tls"
	"net"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dicomgate/dicomgate/gateway"
	"github.com/dicomgate/dicomgate/internal/demopacs"
	"github.com/dicomgate/dicomgate/internal/loadgen"
	"github.com/dicomgate/dicomgate/internal/scu"
)

// The bare proxy relays checked DICOM associations (C-ECHO and C-STORE) over mutual TLS to a plain backend,
// and refuses a client without a certificate.
func TestRelaysDICOMOverMutualTLS(t *testing.T) {
	backend, err := demopacs.Start("127.0.0.1:0", demopacs.Config{})
	require.NoError(t, err)
	defer backend.Close()
	pki, err := gateway.WriteDemoPKI(filepath.Join(t.TempDir(), "pki"), gateway.PKIOptions{})
	require.NoError(t, err)
	cfg, err := serverTLS(pki.ServerCert, pki.ServerKey, pki.CACert)
	require.NoError(t, err)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	go func() { _ = serve(tls.NewListener(ln, cfg), backend.Addr().String()) }()
	defer ln.Close()

	client, err := scu.ClientTLS(pki.CACert, pki.ClientCert, pki.ClientKey)
	require.NoError(t, err)
	client.ServerName = "localhost"
	in, err := scu.GenerateInstance(256<<10, demopacs.NewUID())
	require.NoError(t, err)
	run := loadgen.Config{SCU: scu.Config{Addr: ln.Addr().String(), TLS: client, CallingAE: "A", CalledAE: "B", Timeout: 10 * time.Second},
		Concurrency: 2, Count: 6, Instances: []*scu.Instance{in}}
	for _, sc := range []loadgen.Scenario{loadgen.Echo, loadgen.Store} {
		run.Scenario = sc
		res, err := loadgen.Run(context.Background(), run)
		require.NoError(t, err)
		require.Equal(t, int64(6), res.Associations, "%s: %v", sc, res.FirstError)
	}
	run.SCU.TLS, err = scu.ClientTLS(pki.CACert, "", "")
	require.NoError(t, err)
	run.SCU.TLS.ServerName = "localhost"
	run.Scenario = loadgen.Echo
	res, err := loadgen.Run(context.Background(), run)
	require.NoError(t, err)
	require.Equal(t, map[string]int64{"tls": 6}, res.ErrorsByKind)
}
