package main

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dicomgate/dicomgate/gateway"
	"github.com/dicomgate/dicomgate/internal/wasmbuild"
	"github.com/dicomgate/dicomgate/wasm/host"
)

// A route rule naming a cluster no --cluster defines is a configuration
// error found at start: serve exits 2 naming the rule and the cluster.
func TestServeRefusesUndeclaredCluster(t *testing.T) {
	dir := t.TempDir()
	policyFile := filepath.Join(dir, "policy.yaml")
	require.NoError(t, os.WriteFile(policyFile, []byte(`defaultAction: deny
rules:
  - name: to-a
    match: {calledAETitles: [PACS_A]}
    action: route
    cluster: pacs-a
  - name: to-c
    match: {calledAETitles: [PACS_C]}
    action: route
    cluster: pacs-c
`), 0o644))
	f := serveDefaults()
	f.policyFile, f.clusters = policyFile, []string{"pacs-a=127.0.0.1:1", "pacs-b=127.0.0.1:2"}
	var stderr lockedBuf
	err := runServe(context.Background(), nil, &stderr, f)
	var ee *exitError
	require.True(t, errors.As(err, &ee), "want an exitError, got %T: %v", err, err)
	require.Equal(t, 2, ee.code)
	require.ErrorContains(t, err, `rule "to-c" (rules[1]) routes to cluster "pacs-c", which no --cluster defines (defined: pacs-a, pacs-b)`)
	require.ErrorContains(t, err, "add --cluster pacs-c=HOST:PORT")
	require.NotContains(t, err.Error(), `"to-a"`)
	require.NotContains(t, stderr.String(), "listening on")
}

// echoBackend is a TCP echo server that counts the connections it accepted.
func echoBackend(t *testing.T) (addr string, accepted *atomic.Int64) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { ln.Close() })
	accepted = new(atomic.Int64)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted.Add(1)
			go func() { defer c.Close(); io.Copy(c, c) }()
		}
	}()
	return ln.Addr().String(), accepted
}

// trapServe runs serveRun with the probe filter wasm/testdata/testfilter
// configured to trap on a client sending "TRAP", one worker, the given fail
// policy, a plaintext listener and an echo backend as default cluster. It
// returns the listener and metrics addresses and the backend's accept count.
func trapServe(t *testing.T, failPolicy string) (addr, metrics string, accepted *atomic.Int64) {
	t.Helper()
	wasm, err := wasmbuild.TestFilter("")
	require.NoError(t, err)
	fp, err := serveFailPolicy(failPolicy)
	require.NoError(t, err)
	backend, accepted := echoBackend(t)
	f := serveDefaults()
	f.failPolicy, f.workers = failPolicy, 1
	setup := &serveSetup{
		policyJSON: []byte(`{"panic_on_match":"TRAP"}`), // the probe filter's configuration
		clusters:   []*gateway.Cluster{{Name: "echo", Endpoints: []string{backend}}},
		defCluster: "echo",
		metrics:    "127.0.0.1:0",
	}
	stderr := &lockedBuf{}
	log := &serveLog{w: stderr, min: host.LogInfo}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- serveRun(ctx, log, f, setup, wasm, fp) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			require.FailNow(t, "serve did not stop")
		}
	})
	listening := regexp.MustCompile(`(?m)^dicomgate: listening on (\S+)$`)
	metricsLine := regexp.MustCompile(`metrics: http://(\S+)/metrics`)
	deadline := time.Now().Add(30 * time.Second)
	for {
		if m, mm := listening.FindStringSubmatch(stderr.String()), metricsLine.FindStringSubmatch(stderr.String()); m != nil && mm != nil {
			return m[1], mm[1], accepted
		}
		select {
		case err := <-done:
			require.FailNowf(t, "serve exited", "%v\n%s", err, stderr.String())
		case <-time.After(20 * time.Millisecond):
		}
		require.False(t, time.Now().After(deadline), "serve did not start:\n%s", stderr.String())
	}
}

// probe returns the status code of GET http://metrics/path.
func probe(t *testing.T, metrics, path string) int {
	t.Helper()
	resp, err := http.Get("http://" + metrics + path)
	require.NoError(t, err)
	resp.Body.Close()
	return resp.StatusCode
}

// echoThrough sends msg on a new connection and returns what comes back
// before the connection closes (at most len(msg) bytes).
func echoThrough(t *testing.T, addr, msg string) string {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	defer c.Close()
	require.NoError(t, c.SetDeadline(time.Now().Add(10*time.Second)))
	if _, err := c.Write([]byte(msg)); err != nil {
		return ""
	}
	b := make([]byte, len(msg))
	n, err := io.ReadFull(c, b)
	require.False(t, errors.Is(err, os.ErrDeadlineExceeded), "the connection must be answered or closed")
	return string(b[:n])
}

// trap makes the filter's only VM trap.
func trap(t *testing.T, addr string) {
	t.Helper()
	require.Empty(t, echoThrough(t, addr, "TRAP"), "the trapping connection is closed")
}

// After the filter's VM trapped under FAIL_CLOSED, every association is
// refused: /readyz fails (the gateway must leave the load balancer) while
// /healthz stays OK (a restart, not a liveness kill loop, is wanted… but the
// process is alive and serving HTTP).
func TestReadyzFailsAfterTrapUnderFailClosed(t *testing.T) {
	addr, metrics, _ := trapServe(t, "close")
	require.Equal(t, "hello", echoThrough(t, addr, "hello"))
	require.Equal(t, http.StatusOK, probe(t, metrics, "/readyz"))
	require.Equal(t, http.StatusOK, probe(t, metrics, "/healthz"))
	trap(t, addr)
	require.Equal(t, http.StatusServiceUnavailable, probe(t, metrics, "/readyz"))
	require.Equal(t, http.StatusOK, probe(t, metrics, "/healthz"))
	resp, err := http.Get("http://" + metrics + "/readyz")
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Contains(t, string(body), "1 of 1 filter VM(s) trapped under FAIL_CLOSED")
}

// --fail-policy reaches the host: after a trap, FAIL_CLOSED refuses a new
// association without connecting upstream, FAIL_OPEN passes it through
// unfiltered (and stays ready).
func TestServeFailPolicyIsApplied(t *testing.T) {
	t.Run("close", func(t *testing.T) {
		addr, _, accepted := trapServe(t, "close")
		trap(t, addr)
		before := accepted.Load()
		require.Empty(t, echoThrough(t, addr, "after"), "FAIL_CLOSED refuses every association after the trap")
		require.Equal(t, before, accepted.Load(), "a refused association never reaches the backend")
	})
	t.Run("open", func(t *testing.T) {
		addr, metrics, _ := trapServe(t, "open")
		trap(t, addr)
		require.Equal(t, "after", echoThrough(t, addr, "after"), "FAIL_OPEN passes the association through")
		require.Equal(t, http.StatusOK, probe(t, metrics, "/readyz"))
	})
}

// --max-connections: 0 sizes the limit from the file descriptor limit,
// negative disables it, a positive value is taken as given.
func TestServeMaxConnectionsFlag(t *testing.T) {
	require.Equal(t, gateway.DefaultMaxConnections(), serveMaxConnections(0))
	require.Positive(t, serveMaxConnections(0), "Linux has a file descriptor limit")
	require.Equal(t, 0, serveMaxConnections(-1))
	require.Equal(t, 5, serveMaxConnections(5))
}
