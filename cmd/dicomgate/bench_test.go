package main

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/dicomgate/dicomgate/gateway"
	"github.com/dicomgate/dicomgate/internal/demopacs"
)

// `dicomgate bench` and `bench compare` against the demo acceptor, plain and behind mutual TLS. Nothing here is
// timed: the tests check what is counted.

// tlsPACS serves a demo acceptor behind mutual TLS with the demo PKI and returns its address and the PKI.
func tlsPACS(t *testing.T) (string, *gateway.DemoPKI) {
	pki, err := gateway.WriteDemoPKI(filepath.Join(t.TempDir(), "pki"), gateway.PKIOptions{ClientCN: "BENCH-SCU"})
	require.NoError(t, err)
	cert, err := tls.LoadX509KeyPair(pki.ServerCert, pki.ServerKey)
	require.NoError(t, err)
	caPEM, err := os.ReadFile(pki.CACert)
	require.NoError(t, err)
	pool := x509.NewCertPool()
	require.True(t, pool.AppendCertsFromPEM(caPEM))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	s := demopacs.New(demopacs.Config{})
	go func() {
		_ = s.Serve(tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{cert}, ClientCAs: pool, ClientAuth: tls.RequireAndVerifyClientCert}))
	}()
	t.Cleanup(func() { s.Close() })
	return ln.Addr().String(), pki
}

func plainPACS(t *testing.T, cfg demopacs.Config) string {
	s, err := demopacs.Start("127.0.0.1:0", cfg)
	require.NoError(t, err)
	t.Cleanup(func() { s.Close() })
	return s.Addr().String()
}

// benchJSON is the part of the JSON result the tests read.
type benchJSON struct {
	Scenario     string           `json:"scenario"`
	Attempts     int64            `json:"attempts"`
	Associations int64            `json:"associations"`
	Errors       int64            `json:"errors"`
	ErrorsByKind map[string]int64 `json:"errors_by_kind"`
	Operations   int64            `json:"operations"`
	Latency      struct {
		P50 float64 `json:"p50_ms"`
		P99 float64 `json:"p99_ms"`
	} `json:"latency"`
}

func TestBenchEchoOverMutualTLS(t *testing.T) {
	addr, pki := tlsPACS(t)
	stdout, stderr, code := runCLI(t, nil, "bench", addr, "--tls-ca", pki.CACert, "--tls-cert", pki.ClientCert, "--tls-key", pki.ClientKey,
		"-c", "2", "-n", "6", "-o", "json")
	require.Equal(t, exitOK, code, stderr)
	var res benchJSON
	require.NoError(t, json.Unmarshal([]byte(stdout), &res))
	require.Equal(t, benchJSON{Scenario: "echo", Attempts: 6, Associations: 6, Operations: 6, Latency: res.Latency}, res)
	require.Positive(t, res.Latency.P50)
	require.Empty(t, stderr, "no progress line when standard error is not a terminal")

	// Without the client certificate the acceptor refuses the handshake: every association fails, of kind tls.
	stdout, stderr, code = runCLI(t, nil, "bench", addr, "--tls-ca", pki.CACert, "-n", "3", "-o", "json")
	require.Equal(t, exitNegative, code)
	require.Contains(t, stderr, "3 of 3 associations failed (tls 3)")
	require.NoError(t, json.Unmarshal([]byte(stdout), &res))
	require.Equal(t, map[string]int64{"tls": 3}, res.ErrorsByKind)
	require.Zero(t, res.Associations)
}

func TestBenchStoreText(t *testing.T) {
	var stored []demopacs.Stored
	addr := plainPACS(t, demopacs.Config{Dir: t.TempDir(), OnStored: func(s demopacs.Stored) { stored = append(stored, s) }})
	stdout, stderr, code := runCLI(t, nil, "bench", addr, "-s", "store", "--size", "64KiB", "-n", "3", "--stores-per-assoc", "2")
	require.Equal(t, exitOK, code, stderr)
	require.Contains(t, stdout, "store against "+addr+" (TCP), 1 worker: 3 associations")
	require.Contains(t, stdout, "stored     6 instances, 0.3932 MB of data set")
	require.Len(t, stored, 6)
	require.Equal(t, int64(64<<10), stored[0].DataSetBytes)

	file := filepath.Join(t.TempDir(), "sample.dcm")
	inst, err := demopacs.WriteSample(file)
	require.NoError(t, err)
	_, stderr, code = runCLI(t, nil, "bench", addr, "-s", "store", "-f", file, "-n", "1")
	require.Equal(t, exitOK, code, stderr)
	require.Equal(t, inst, stored[6].SOPInstanceUID)
	require.Equal(t, demopacs.ExplicitVRLittleEndian, stored[6].TransferSyntaxUID, "the file's transfer syntax is proposed and used")
}

// A failing C-STORE status is reported as an error (exit 1), never counted as stored.
func TestBenchFailingStatus(t *testing.T) {
	notDir := filepath.Join(t.TempDir(), "file")
	require.NoError(t, os.WriteFile(notDir, nil, 0o600))
	addr := plainPACS(t, demopacs.Config{Dir: notDir})
	stdout, stderr, code := runCLI(t, nil, "bench", addr, "-s", "store", "--size", "4KiB", "-n", "5")
	require.Equal(t, exitNegative, code)
	require.Contains(t, stderr, "5 of 5 associations failed (status 5)")
	require.Contains(t, stdout, "succeeded  0, failed 5")
	require.Contains(t, stdout, "stored     0 instances")
	require.Contains(t, stdout, "error      status × 5, first: store: C-STORE-RSP status 0xa700")
}

func TestBenchUsage(t *testing.T) {
	addr := "127.0.0.1:1"
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"bench"}, "missing HOST:PORT"},
		{[]string{"bench", "nohost"}, `"nohost" is not HOST:PORT`},
		{[]string{"bench", addr, "-s", "find"}, `--scenario "find": want echo, store, reject or hold`},
		{[]string{"bench", addr, "--tls-cert", "c.pem"}, "--tls-cert and --tls-key go together"},
		{[]string{"bench", addr, "--tls=false", "--tls-ca", "ca.pem"}, "--tls=false contradicts"},
		{[]string{"bench", addr, "-s", "store", "--size", "12 parsecs"}, "--size \"12 parsecs\": want a number of bytes"},
		{[]string{"bench", addr, "-s", "store", "--size", "101"}, "want an even size"},
		{[]string{"bench", addr, "--size", "1MiB"}, "--file and --size belong to --scenario store"},
		{[]string{"bench", addr, "-s", "store", "-f", "/nonexistent.dcm"}, "--file: open /nonexistent.dcm"},
		{[]string{"bench", addr, "--passcode", "x"}, "--passcode without --username"},
		{[]string{"bench", addr, "--calling-ae", "SEVENTEEN-CHARS-X"}, "an AE title has 1 to 16 characters"},
		{[]string{"bench", addr, "-c", "0"}, "--concurrency 0: want 1 or more"},
		{[]string{"bench", addr, "-o", "yaml"}, "-o takes the output format, one of text, json"},
		{[]string{"bench", "compare"}, "no --target"},
		{[]string{"bench", "compare", "-t", "a"}, "want NAME=HOST:PORT"},
		{[]string{"bench", "compare", "-t", "a=127.0.0.1:1", "--baseline", "b"}, `baseline "b" is not a target`},
		{[]string{"bench", "compare", "-t", "a=127.0.0.1:1", "--rounds", "0"}, "--rounds 0: want 1 or more"},
		{[]string{"bench", "compare", "-t", "a=127.0.0.1:1", "-t", "b=localhost:2", "--tls"}, "give --tls-server-name"},
	} {
		_, stderr, code := runCLI(t, nil, tc.args...)
		require.Equal(t, exitUsage, code, "%v: %s", tc.args, stderr)
		require.Contains(t, stderr, tc.want, tc.args)
	}
}

func TestBenchCompare(t *testing.T) {
	a, b := plainPACS(t, demopacs.Config{}), plainPACS(t, demopacs.Config{})
	svg := filepath.Join(t.TempDir(), "compare.svg")
	stdout, stderr, code := runCLI(t, nil, "bench", "compare", "-t", "one="+a, "-t", "two="+b, "--baseline", "two",
		"--rounds", "2", "-n", "4", "--svg", svg, "-o", "json")
	require.Equal(t, exitOK, code, stderr)
	var cmp struct {
		Baseline string     `json:"baseline"`
		Orders   [][]string `json:"orders"`
		Targets  []struct {
			Name   string               `json:"name"`
			Ratios map[string][]float64 `json:"ratios_to_baseline"`
		} `json:"targets"`
	}
	require.NoError(t, json.Unmarshal([]byte(stdout), &cmp))
	require.Equal(t, "two", cmp.Baseline)
	require.Equal(t, [][]string{{"one", "two"}, {"two", "one"}}, cmp.Orders)
	require.Len(t, cmp.Targets, 2)
	require.Equal(t, []float64{1, 1}, cmp.Targets[1].Ratios["p50_ms"])
	require.Equal(t, 4, strings.Count(stderr, "round "), "one progress line per target and round")
	chart, err := os.ReadFile(svg)
	require.NoError(t, err)
	require.Equal(t, 2, strings.Count(string(chart), `<g class="series"`))

	stdout, stderr, code = runCLI(t, nil, "bench", "compare", "-t", "one="+a, "--rounds", "1", "-n", "2", "-q")
	require.Equal(t, exitOK, code, stderr)
	require.Empty(t, stderr, "-q drops the per-round lines")
	require.Contains(t, stdout, "| one |")
}
