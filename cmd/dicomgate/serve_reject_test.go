package main

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dicomgate/dicomgate/sdk/pdu"
)

// closedTCPPort returns a loopback address nothing listens on.
func closedTCPPort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	return addr
}

// scrapePage fetches a /metrics page.
func scrapePage(t *testing.T, addr string) string {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return string(b)
}

// A deny with "respond": "reject" whose rejector is down: the client's
// connection is closed at once (no A-ASSOCIATE-RJ, no hang), the backend
// never sees it, and the operator sees why: the gateway's close line names
// the rejector cluster and its endpoint (with the audit record's conn), and
// the failed connect is counted for that cluster and as close reason
// upstream_connect_failed (issue 13).
func TestServeRejectorUnreachableCloses(t *testing.T) {
	wasm := filterWasm(t)
	backend, accepted := echoBackend(t)
	rejectorAddr := closedTCPPort(t)
	raw := make([]byte, 32)
	_, err := rand.Read(raw)
	require.NoError(t, err)
	policyFile := filepath.Join(t.TempDir(), "policy.json")
	require.NoError(t, os.WriteFile(policyFile, []byte(fmt.Sprintf(`{
  "defaultAction": "deny", "defaultRespond": "reject",
  "rejectCluster": "rejector", "rejectKey": %q,
  "upstreamConnect": "after-decision",
  "rules": [{"name": "ok", "match": {"calledAETitles": ["OK"]}, "action": "allow"}]
}`, base64.StdEncoding.EncodeToString(raw))), 0o644))
	f := serveDefaults()
	f.wasm, f.policyFile, f.workers, f.earlyDataBytes = wasm, policyFile, 1, 65536
	f.clusters = []string{"backend=" + backend, "rejector=" + rejectorAddr}
	f.defaultCluster, f.metrics = "backend", "127.0.0.1:0"
	addr, stderr, stop := startServe(t, f)
	metricsAddr := regexp.MustCompile(`metrics: http://(\S+)/metrics`).FindStringSubmatch(stderr.String())
	require.NotNil(t, metricsAddr)

	echo := readCapture(t, "echo_default.c2s.bin")
	// send writes an association and reads until the gateway closes; with
	// halfClose it half-closes first (the echo backend then ends), without it
	// only the gateway can end the read (a hang shows as a deadline error).
	send := func(called string, halfClose bool) ([]byte, error) {
		c, err := net.Dial("tcp", addr)
		require.NoError(t, err)
		defer c.Close()
		require.NoError(t, c.SetDeadline(time.Now().Add(10*time.Second)))
		_, err = c.Write(withAEs(echo, called, "ECHOSCU"))
		require.NoError(t, err)
		if halfClose {
			require.NoError(t, c.(*net.TCPConn).CloseWrite())
		}
		return io.ReadAll(c)
	}
	// The allowed association reaches the backend: the wiring works.
	got, err := send("OK", true)
	require.NoError(t, err)
	require.Equal(t, withAEs(echo, "OK", "ECHOSCU"), got, "the echo backend returns the association's bytes")
	require.EqualValues(t, 1, accepted.Load())

	// The denied one: closed, nothing sent back, no backend connection.
	got, err = send("NOPE", false)
	require.NoError(t, err, "the gateway must close the connection, not leave it hanging")
	require.Empty(t, got, "no A-ASSOCIATE-RJ can be sent without the rejector")
	require.NotEqual(t, byte(pdu.TypeAssociateRJ), append(got, 0)[0])
	require.EqualValues(t, 1, accepted.Load(), "nothing of a rejected association reaches the backend")

	page := scrapePage(t, metricsAddr[1])
	require.Contains(t, page, `dicomgate_gateway_upstream_connect_failures_total{cluster="rejector"} 1`+"\n")
	require.Contains(t, page, `dicomgate_gateway_upstream_connect_failures_total{cluster="backend"} 0`+"\n")
	require.Contains(t, page, `dicomgate_gateway_downstream_closes_total{reason="upstream_connect_failed"} 1`+"\n")
	require.NoError(t, stop())

	out := stderr.String()
	m := regexp.MustCompile(`gateway: conn (\d+): closing client: upstream_connect_failed: cluster rejector endpoint ` + regexp.QuoteMeta(rejectorAddr) + `: .*refused`).FindStringSubmatch(out)
	require.NotNil(t, m, "the operator's line naming the rejector cluster:\n%s", out)
	require.Regexp(t, `\{"time":"[^"]+","conn":`+m[1]+`,.*"called_ae":"NOPE",.*"decision":"deny",.*"cluster":"rejector",.*"respond":"reject"`, out,
		"the audit record of the same connection says it was sent to the rejector")
}
