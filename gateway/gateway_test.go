package gateway

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dicomgate/dicomgate/wasm/host"
)

// ---- fake filter: a tiny DICOM router in front of a tcp_proxy model ----

// fakeFilter routes on the called AE title of the A-ASSOCIATE-RQ like the real
// filter does with early data (or, without early data, lets tcp_proxy connect
// the default cluster at once and holds the bytes until the RQ is complete).
// Unknown called AEs are denied by closing the client.
type fakeFilter struct {
	t        host.Transport
	info     host.ConnInfo
	proxy    host.TCPProxyConfig
	routes   map[string]string
	noFollow bool // don't close the client on connect failure (tests the gateway's own fallback)

	buf       []byte
	end       bool
	decided   bool
	connected bool
	events    []string

	// tls and sni are set by SetTLS before tlsDone is closed; closed gets the
	// remote flag of DownstreamClosed. info stays as it was at creation.
	tls     *host.TLSInfo
	sni     string
	tlsDone chan struct{}
	closed  chan bool
}

func (f *fakeFilter) ev(s string) { f.events = append(f.events, s) }

func (f *fakeFilter) DownstreamData(b []byte, end bool) {
	f.buf = append(f.buf, b...)
	f.end = f.end || end
	if !f.decided {
		if len(f.buf) < 6 {
			if f.end {
				f.t.CloseDownstream("short")
			}
			return
		}
		n := 6 + int(f.buf[2])<<24 | int(f.buf[3])<<16 | int(f.buf[4])<<8 | int(f.buf[5])
		if len(f.buf) < n || len(f.buf) < 26 {
			return
		}
		called := strings.TrimRight(string(f.buf[10:26]), " ")
		cluster, ok := f.routes[called]
		if !ok {
			f.ev("deny " + called)
			f.t.CloseDownstream("denied: " + called)
			return
		}
		f.ev("route " + called + " " + cluster)
		f.decided = true
		if f.proxy.MaxEarlyDataBytes > 0 {
			f.t.ConnectUpstream(cluster)
		}
	}
	f.flush()
}

func (f *fakeFilter) flush() {
	if f.decided && f.connected && (len(f.buf) > 0 || f.end) {
		f.t.WriteUpstream(f.buf, f.end)
		f.buf = f.buf[:0]
	}
}

func (f *fakeFilter) UpstreamConnected() {
	f.ev("connected")
	f.connected = true
	f.t.SetDownstreamReadDisabled(false)
	f.flush()
}

func (f *fakeFilter) UpstreamConnectFailed(reason string) {
	f.ev("connect failed: " + reason)
	if !f.noFollow {
		f.t.CloseDownstream(reason)
	}
}
func (f *fakeFilter) UpstreamData(b []byte, end bool) { f.t.WriteDownstream(b, end) }
func (f *fakeFilter) DownstreamClosed(remote bool) {
	f.ev(fmt.Sprintf("downstream closed remote=%v", remote))
	select {
	case f.closed <- remote:
	default:
	}
	f.t.CloseUpstream()
}
func (f *fakeFilter) SetTLS(ti *host.TLSInfo, sni string) {
	f.tls, f.sni = ti, sni
	close(f.tlsDone)
}

// tlsInfo waits for SetTLS and returns what it got.
func (f *fakeFilter) tlsInfo(t *testing.T) (*host.TLSInfo, string) {
	t.Helper()
	select {
	case <-f.tlsDone:
		return f.tls, f.sni
	case <-time.After(5 * time.Second):
		require.FailNow(t, "SetTLS was not called")
	}
	return nil, ""
}

// downstreamClosed waits for DownstreamClosed and returns its remote flag.
func (f *fakeFilter) downstreamClosed(t *testing.T) bool {
	t.Helper()
	select {
	case remote := <-f.closed:
		return remote
	case <-time.After(5 * time.Second):
		require.FailNow(t, "DownstreamClosed was not called")
	}
	return false
}
func (f *fakeFilter) UpstreamClosed() {
	f.ev("upstream closed")
	f.t.CloseDownstream("upstream closed")
}

// recorder collects the filters the gateway created.
type recorder struct {
	mu      sync.Mutex
	filters []*fakeFilter
	created chan *fakeFilter
}

func newRecorder() *recorder { return &recorder{created: make(chan *fakeFilter, 16)} }

// next waits for the next filter the gateway creates.
func (r *recorder) next(t *testing.T) *fakeFilter {
	t.Helper()
	select {
	case f := <-r.created:
		return f
	case <-time.After(5 * time.Second):
		require.FailNow(t, "no filter created")
	}
	return nil
}

func (r *recorder) factory(routes map[string]string, noFollow bool) NewFilterFunc {
	return func(info host.ConnInfo, proxy host.TCPProxyConfig, t host.Transport) Filter {
		f := &fakeFilter{t: t, info: info, proxy: proxy, routes: routes, noFollow: noFollow,
			tlsDone: make(chan struct{}), closed: make(chan bool, 1)}
		if proxy.MaxEarlyDataBytes == 0 {
			// tcp_proxy without early data: reads off, connect the configured cluster now.
			t.SetDownstreamReadDisabled(true)
			f.decided = false
			t.ConnectUpstream(proxy.Cluster)
		}
		r.mu.Lock()
		r.filters = append(r.filters, f)
		r.mu.Unlock()
		select {
		case r.created <- f:
		default: // tests that create many connections do not read the channel
		}
		return f
	}
}

// ---- fake upstream: records what it receives and answers with fixed bytes ----

type backend struct {
	ln       net.Listener
	reply    []byte
	mu       sync.Mutex
	accepted int
	received [][]byte
	sawEOF   []bool
}

func newBackend(t *testing.T, reply []byte) *backend {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	b := &backend{ln: ln, reply: reply}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			b.mu.Lock()
			b.accepted++
			idx := len(b.received)
			b.received = append(b.received, nil)
			b.sawEOF = append(b.sawEOF, false)
			b.mu.Unlock()
			go func() {
				defer c.Close()
				// Read until the client's half-close reaches us, then answer and close.
				got, err := io.ReadAll(c)
				b.mu.Lock()
				b.received[idx] = got
				b.sawEOF[idx] = err == nil
				b.mu.Unlock()
				c.Write(b.reply)
			}()
		}
	}()
	return b
}

func (b *backend) addr() string { return b.ln.Addr().String() }

func (b *backend) snapshot() (accepted int, received [][]byte, eof []bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.accepted, append([][]byte(nil), b.received...), append([]bool(nil), b.sawEOF...)
}

func capture(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "sdk", "pdu", "testdata", name))
	require.NoError(t, err)
	return b
}

// ---- gateway setup ----

type env struct {
	g    *Gateway
	addr string
	pki  *DemoPKI
	rec  *recorder
	logs *syncBuf
}

type syncBuf struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuf) logf(format string, args ...any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.b.WriteString(strings.TrimSpace(fmt.Sprintf(format, args...)) + "\n")
}

func (s *syncBuf) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

func startGateway(t *testing.T, cfg Config, withTLS, mtls bool, mk func(rec *recorder) NewFilterFunc) *env {
	t.Helper()
	e := &env{rec: newRecorder(), logs: &syncBuf{}}
	cfg.NewFilter = mk(e.rec)
	if withTLS {
		pki, err := WriteDemoPKI(t.TempDir(), PKIOptions{ClientCN: "CT1", ClientOrg: "Hospital"})
		require.NoError(t, err)
		ca := ""
		if mtls {
			ca = pki.CACert
		}
		cfg.TLS, err = ServerTLSConfig(pki.ServerCert, pki.ServerKey, ca)
		require.NoError(t, err)
		e.pki = pki
	}
	if cfg.Logf == nil {
		cfg.Logf = e.logs.logf
	}
	g, err := New(cfg)
	require.NoError(t, err)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	served := make(chan error, 1)
	go func() { served <- g.Serve(ln) }()
	t.Cleanup(func() {
		g.Close()
		require.ErrorIs(t, <-served, ErrServerClosed)
	})
	e.g, e.addr = g, ln.Addr().String()
	return e
}

func (e *env) dial(t *testing.T, withClientCert bool) net.Conn {
	t.Helper()
	if e.pki == nil {
		c, err := net.Dial("tcp", e.addr)
		require.NoError(t, err)
		return c
	}
	pool := x509.NewCertPool()
	caPEM, err := os.ReadFile(e.pki.CACert)
	require.NoError(t, err)
	pool.AppendCertsFromPEM(caPEM)
	cfg := &tls.Config{RootCAs: pool, ServerName: "localhost"}
	if withClientCert {
		cert, err := tls.LoadX509KeyPair(e.pki.ClientCert, e.pki.ClientKey)
		require.NoError(t, err)
		cfg.Certificates = []tls.Certificate{cert}
	}
	c, err := tls.Dial("tcp", e.addr, cfg)
	require.NoError(t, err)
	return c
}

// exchange sends req, half-closes, and returns everything received until EOF.
func exchange(t *testing.T, c net.Conn, req []byte) ([]byte, error) {
	t.Helper()
	require.NoError(t, c.SetDeadline(time.Now().Add(10*time.Second)))
	_, werr := c.Write(req)
	if werr == nil {
		closeWrite(c)
	}
	got, err := io.ReadAll(c)
	c.Close()
	if err == nil {
		err = werr
	}
	return got, err
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		require.False(t, time.Now().After(deadline), "timed out waiting for %s", what)
		time.Sleep(5 * time.Millisecond)
	}
}

// ---- tests ----

// The association lands on the cluster chosen from its called AE, with the
// client's half-close propagated both ways and the reply delivered intact;
// a denied association never reaches any backend.
func TestRouteAllowDenyOverTLS(t *testing.T) {
	replyA, replyB := []byte("reply from A"), []byte("reply from B")
	a, b := newBackend(t, replyA), newBackend(t, replyB)
	e := startGateway(t, Config{
		Clusters:          []*Cluster{{Name: "pacs-a", Endpoints: []string{a.addr()}}, {Name: "pacs-b", Endpoints: []string{b.addr()}}},
		MaxEarlyDataBytes: 1 << 20,
	}, true, true, func(rec *recorder) NewFilterFunc {
		return rec.factory(map[string]string{"ANY-SCP": "pacs-a", "ORTHANC": "pacs-b"}, false)
	})

	for _, tc := range []struct {
		capture string
		want    []byte
		backend *backend
	}{
		{"echo_default.c2s.bin", replyA, a},
		{"orthanc_echo.c2s.bin", replyB, b},
		{"echo_ppc128_pts38.c2s.bin", replyA, a}, // a 129 KB RQ arrives in many reads
	} {
		t.Run(tc.capture, func(t *testing.T) {
			req := capture(t, tc.capture)
			_, before, _ := tc.backend.snapshot()
			got, err := exchange(t, e.dial(t, true), req)
			require.NoError(t, err)
			require.Equal(t, tc.want, got)
			_, after, eof := tc.backend.snapshot()
			require.Len(t, after, len(before)+1)
			require.Equal(t, req, after[len(after)-1], "backend must receive the client's bytes unchanged")
			require.True(t, eof[len(eof)-1], "client half-close must reach the backend")
		})
	}

	t.Run("deny", func(t *testing.T) {
		na, _, _ := a.snapshot()
		nb, _, _ := b.snapshot()
		start := time.Now()
		got, _ := exchange(t, e.dial(t, true), capture(t, "rj_called_ae.c2s.bin"))
		require.Empty(t, got)
		require.Less(t, time.Since(start), 3*time.Second, "denied client must be closed promptly")
		time.Sleep(50 * time.Millisecond)
		na2, _, _ := a.snapshot()
		nb2, _, _ := b.snapshot()
		require.Equal(t, na, na2, "no connection may reach backend A on deny")
		require.Equal(t, nb, nb2, "no connection may reach backend B on deny")
	})
	waitFor(t, "connections to drain", func() bool { return e.g.ActiveConnections() == 0 })
	m := e.g.Metrics()
	require.EqualValues(t, 4, m.ConnectionsTotal.Load())
	require.EqualValues(t, 2, m.UpstreamConnects("pacs-a"))
	require.EqualValues(t, 1, m.UpstreamConnects("pacs-b"))
	require.EqualValues(t, 0, m.ConnectionsActive.Load())
}

// Without early data (Envoy's default) the filter disables reads and
// tcp_proxy connects the default cluster at once; the gateway must not
// deliver client bytes while reads are disabled.
func TestReadDisableHonoured(t *testing.T) {
	delivered := make(chan []byte, 8)
	var tr host.Transport
	ready := make(chan struct{})
	e := startGateway(t, Config{}, false, false, func(*recorder) NewFilterFunc {
		return func(info host.ConnInfo, proxy host.TCPProxyConfig, t host.Transport) Filter {
			t.SetDownstreamReadDisabled(true)
			tr = t
			close(ready)
			return filterFuncs{data: func(b []byte, end bool) { delivered <- bytes.Clone(b) }}
		}
	})
	c := e.dial(t, false)
	defer c.Close()
	<-ready
	_, err := c.Write([]byte("held back"))
	require.NoError(t, err)
	select {
	case b := <-delivered:
		require.FailNowf(t, "bytes delivered while reads were disabled", "%q", b)
	case <-time.After(200 * time.Millisecond):
	}
	tr.SetDownstreamReadDisabled(false)
	select {
	case b := <-delivered:
		require.Equal(t, "held back", string(b))
	case <-time.After(5 * time.Second):
		require.FailNow(t, "bytes not delivered after reads were enabled again")
	}
}

// filterFuncs is a Filter made of optional callbacks.
type filterFuncs struct {
	data func(b []byte, end bool)
}

func (f filterFuncs) DownstreamData(b []byte, end bool) {
	if f.data != nil {
		f.data(b, end)
	}
}
func (filterFuncs) UpstreamConnected()           {}
func (filterFuncs) UpstreamConnectFailed(string) {}
func (filterFuncs) UpstreamData([]byte, bool)    {}
func (filterFuncs) DownstreamClosed(bool)        {}
func (filterFuncs) UpstreamClosed()              {}
func (filterFuncs) SetTLS(*host.TLSInfo, string) {}

// closedPort returns a loopback address nobody listens on.
func closedPort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// An upstream that refuses connections, or a cluster that does not exist,
// closes the client promptly and is counted — whether or not the filter
// closes the client itself (tcp_proxy.cc Filter::onInitFailure).
func TestUpstreamDownAndUnknownCluster(t *testing.T) {
	for _, tc := range []struct {
		name     string
		noFollow bool
		route    string
	}{
		{"refused", false, "down"},
		{"refused-filter-silent", true, "down"},
		{"unknown-cluster", false, "nope"},
		{"unknown-cluster-filter-silent", true, "nope"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := startGateway(t, Config{
				Clusters:          []*Cluster{{Name: "down", Endpoints: []string{closedPort(t)}}},
				MaxEarlyDataBytes: 1 << 20,
				ConnectTimeout:    2 * time.Second,
			}, false, false, func(rec *recorder) NewFilterFunc {
				return rec.factory(map[string]string{"ANY-SCP": tc.route}, tc.noFollow)
			})
			c := e.dial(t, false)
			start := time.Now()
			got, _ := exchange(t, c, capture(t, "echo_default.c2s.bin"))
			require.Empty(t, got)
			require.Less(t, time.Since(start), 3*time.Second)
			waitFor(t, "connection cleanup", func() bool { return e.g.ActiveConnections() == 0 })
			m := e.g.Metrics()
			if tc.route == "down" {
				require.EqualValues(t, 1, m.UpstreamConnectFailures("down"))
				require.EqualValues(t, 0, m.NoCluster.Load())
				require.EqualValues(t, 1, m.DownstreamCloses(CloseUpstreamConnectFailed))
				require.Regexp(t, `conn 1: closing client: upstream_connect_failed: cluster down endpoint 127\.0\.0\.1:\d+: `, e.logs.String())
			} else {
				require.EqualValues(t, 1, m.NoCluster.Load())
				require.EqualValues(t, 1, m.DownstreamCloses(CloseUnknownCluster))
				require.Contains(t, e.logs.String(), `conn 1: closing client: unknown_cluster: cluster "nope" is not configured`)
			}
			require.Equal(t, 1, strings.Count(e.logs.String(), "closing client:"), "one line per close:\n%s", e.logs.String())
			var sb strings.Builder
			require.NoError(t, e.g.WritePrometheus(&sb))
			if tc.route == "down" {
				require.Contains(t, sb.String(), `dicomgate_gateway_upstream_connect_failures_total{cluster="down"} 1`)
			} else {
				require.Contains(t, sb.String(), "dicomgate_gateway_no_cluster_total 1")
			}
		})
	}
}

// Mutual TLS: the filter is created at accept with an empty TLS session (as
// Envoy builds the chain before the handshake); the peer certificate's
// properties reach it through SetTLS in Envoy's formats. A client without a
// certificate fails the handshake: the filter sees a remote close with no
// data and no SetTLS, and the failure is counted.
func TestMutualTLSProperties(t *testing.T) {
	e := startGateway(t, Config{Clusters: []*Cluster{{Name: "x", Endpoints: []string{closedPort(t)}}}, MaxEarlyDataBytes: 1024}, true, true, func(rec *recorder) NewFilterFunc { return rec.factory(nil, false) })
	c := e.dial(t, true)
	defer c.Close()
	f := e.rec.next(t)
	require.Equal(t, &host.TLSInfo{}, f.info.TLS, "at accept the TLS session exists and is empty")
	require.Empty(t, f.info.RequestedServerName)
	ti, sni := f.tlsInfo(t)
	require.NotNil(t, ti)
	require.Equal(t, "TLSv1.3", ti.Version)
	require.True(t, ti.PeerCertPresented)
	require.Equal(t, "CN=CT1,O=Hospital", ti.SubjectPeer)
	require.Equal(t, []string{"spiffe://dicomgate.demo/CT1"}, ti.URISANsPeer)
	sum := sha256.Sum256(e.pki.ClientCertificateDER)
	require.Equal(t, hex.EncodeToString(sum[:]), ti.SHA256PeerDigest)
	require.Equal(t, "CN=localhost,O=dicomgate demo", ti.SubjectLocal)
	require.Equal(t, []string{"localhost"}, ti.DNSSANsLocal)
	require.Equal(t, "localhost", sni)
	require.True(t, f.info.Source.Addr().IsLoopback())
	require.Equal(t, e.addr, f.info.Destination.String())

	// No client certificate: the handshake fails (TLS 1.3 reports it on the first read).
	c2 := e.dial(t, false)
	f2 := e.rec.next(t)
	c2.SetDeadline(time.Now().Add(5 * time.Second))
	_, err := c2.Read(make([]byte, 1))
	require.Error(t, err)
	c2.Close()
	// Envoy: SslSocket::doRead returns PostIoAction::Close, ConnectionImpl::onReadReady
	// closes with RemoteClose.
	require.True(t, f2.downstreamClosed(t), "a failed handshake is a remote close")
	waitFor(t, "handshake failure count", func() bool { return e.g.Metrics().TLSHandshakeFailures.Load() == 1 })
	require.EqualValues(t, 1, e.g.Metrics().DownstreamCloses(CloseTLSHandshakeFailed))
	require.Contains(t, e.logs.String(), "closing client: tls_handshake_failed: TLS handshake with ")
	select {
	case <-f2.tlsDone:
		require.FailNow(t, "SetTLS was called for a failed handshake")
	default:
	}
	require.Empty(t, f2.buf, "no data reached the filter")
}

// Shutdown stops accepting, lets an open association finish, then returns.
func TestShutdownDrains(t *testing.T) {
	a := newBackend(t, []byte("bye"))
	e := startGateway(t, Config{Clusters: []*Cluster{{Name: "a", Endpoints: []string{a.addr()}}}, DefaultCluster: "a"}, false, false, func(rec *recorder) NewFilterFunc { return rec.factory(map[string]string{"ANY-SCP": "a"}, false) })
	c := e.dial(t, false)
	req := capture(t, "echo_default.c2s.bin")
	_, err := c.Write(req[:100])
	require.NoError(t, err)
	waitFor(t, "connection", func() bool { return e.g.ActiveConnections() == 1 })

	done := make(chan error, 1)
	go func() { done <- e.g.Shutdown(context.Background()) }()
	waitFor(t, "listener closed", func() bool {
		c, err := net.DialTimeout("tcp", e.addr, time.Second)
		if err == nil {
			c.Close()
		}
		return err != nil
	})
	select {
	case err := <-done:
		require.FailNowf(t, "Shutdown returned while a connection was open", "Shutdown returned %v", err)
	case <-time.After(100 * time.Millisecond):
	}
	got, err := exchange(t, c, req[100:])
	require.NoError(t, err)
	require.Equal(t, "bye", string(got))
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(5 * time.Second):
		require.FailNow(t, "Shutdown did not return after the last connection finished")
	}
	_, recv, _ := a.snapshot()
	require.Equal(t, req, recv[0])
}

// Shutdown with an expired context closes the connections that remain.
func TestShutdownDeadlineClosesConnections(t *testing.T) {
	e := startGateway(t, Config{}, false, false, func(rec *recorder) NewFilterFunc {
		return func(info host.ConnInfo, proxy host.TCPProxyConfig, t host.Transport) Filter { return filterFuncs{} }
	})
	c := e.dial(t, false)
	defer c.Close()
	waitFor(t, "connection", func() bool { return e.g.ActiveConnections() == 1 })
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	require.ErrorIs(t, e.g.Shutdown(ctx), context.DeadlineExceeded)
	c.SetDeadline(time.Now().Add(5 * time.Second))
	_, err := c.Read(make([]byte, 1))
	require.True(t, errors.Is(err, io.EOF) || isReset(err), "client must be closed, got %v", err)
	waitFor(t, "cleanup", func() bool { return e.g.ActiveConnections() == 0 })
	require.EqualValues(t, 1, e.g.Metrics().DownstreamCloses(CloseShutdown))
	require.Contains(t, e.logs.String(), "conn 1: closing client: shutdown")
}

func isReset(err error) bool { return err != nil && strings.Contains(err.Error(), "reset") }

func TestRoundRobin(t *testing.T) {
	c, err := ParseCluster("pacs=127.0.0.1:1, 127.0.0.1:2")
	require.NoError(t, err)
	require.Equal(t, "pacs", c.Name)
	var got []string
	for i := 0; i < 4; i++ {
		got = append(got, c.pick())
	}
	require.Equal(t, []string{"127.0.0.1:1", "127.0.0.1:2", "127.0.0.1:1", "127.0.0.1:2"}, got)
}

func TestParseClusterErrors(t *testing.T) {
	for spec, want := range map[string]string{
		"pacs":               "want NAME=HOST:PORT",
		"=1.2.3.4:5":         "want NAME=HOST:PORT",
		"a=1.2.3.4":          "endpoint 1",
		"a=1.2.3.4:1,x:0":    `endpoint 2 "x:0": port "0"`,
		"a=:104":             "empty host",
		"a b=127.0.0.1:104":  "must not contain spaces",
		"a=127.0.0.1:999999": "port",
	} {
		_, err := ParseCluster(spec)
		require.ErrorContains(t, err, want, spec)
	}
}

func TestNewValidates(t *testing.T) {
	f := func(host.ConnInfo, host.TCPProxyConfig, host.Transport) Filter { return filterFuncs{} }
	_, err := New(Config{})
	require.ErrorContains(t, err, "NewFilter")
	_, err = New(Config{NewFilter: f, DefaultCluster: "x"})
	require.ErrorContains(t, err, `default cluster "x" is not defined`)
	_, err = New(Config{NewFilter: f, Clusters: []*Cluster{{Name: "a", Endpoints: []string{"h:1"}}, {Name: "a", Endpoints: []string{"h:2"}}}})
	require.ErrorContains(t, err, "defined twice")
}

// A connection without traffic is closed after IdleTimeout (tcp_proxy
// idle_timeout); one with traffic stays open.
func TestIdleTimeout(t *testing.T) {
	e := startGateway(t, Config{IdleTimeout: 150 * time.Millisecond}, false, false, func(*recorder) NewFilterFunc {
		return func(host.ConnInfo, host.TCPProxyConfig, host.Transport) Filter { return filterFuncs{} }
	})
	busy := e.dial(t, false)
	defer busy.Close()
	quiet := e.dial(t, false)
	defer quiet.Close()
	stop := time.Now().Add(600 * time.Millisecond)
	for time.Now().Before(stop) {
		_, err := busy.Write([]byte("x"))
		require.NoError(t, err, "a connection with traffic must stay open")
		time.Sleep(30 * time.Millisecond)
	}
	quiet.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err := quiet.Read(make([]byte, 1))
	require.Error(t, err)
	require.False(t, errors.Is(err, os.ErrDeadlineExceeded), "the idle connection must be closed by the gateway")
	require.EqualValues(t, 1, e.g.Metrics().IdleTimeouts.Load())
	require.EqualValues(t, 1, e.g.Metrics().DownstreamCloses(CloseIdleTimeout))
	require.Contains(t, e.logs.String(), "closing client: idle_timeout")
	require.Equal(t, 1, e.g.ActiveConnections())
}

// A client that connects but never completes the TLS handshake is closed
// after HandshakeTimeout (Envoy transport_socket_connect_timeout) and counted;
// its filter, created at accept, sees a local close and no data.
func TestHandshakeTimeout(t *testing.T) {
	e := startGateway(t, Config{HandshakeTimeout: 100 * time.Millisecond, MaxEarlyDataBytes: 1024}, true, true, func(rec *recorder) NewFilterFunc {
		return rec.factory(nil, false)
	})
	c, err := net.Dial("tcp", e.addr)
	require.NoError(t, err)
	defer c.Close()
	f := e.rec.next(t)
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err = c.Read(make([]byte, 1))
	require.Error(t, err)
	require.False(t, errors.Is(err, os.ErrDeadlineExceeded), "the gateway must close a stalled handshake")
	// Envoy ServerConnectionImpl::onTransportSocketConnectTimeout: closeConnectionImmediately, LocalClose.
	require.False(t, f.downstreamClosed(t), "the handshake timeout is a local close")
	waitFor(t, "count", func() bool { return e.g.Metrics().TLSHandshakeFailures.Load() == 1 })
	waitFor(t, "cleanup", func() bool { return e.g.ActiveConnections() == 0 })
	require.EqualValues(t, 1, e.g.Metrics().DownstreamCloses(CloseTLSHandshakeTimeout))
	require.EqualValues(t, 0, e.g.Metrics().DownstreamCloses(CloseTLSHandshakeFailed))
	require.Empty(t, f.buf)
}

// The filter runs from accept, so its own deadline covers the handshake: a
// filter that closes the connection while the client stalls the handshake
// closes it at once (well before HandshakeTimeout), as a local close, and
// that is the filter's close, not a handshake failure.
func TestFilterDeadlineCoversHandshake(t *testing.T) {
	e := startGateway(t, Config{HandshakeTimeout: time.Hour, MaxEarlyDataBytes: 1024}, true, true, func(rec *recorder) NewFilterFunc {
		inner := rec.factory(nil, false)
		return func(info host.ConnInfo, proxy host.TCPProxyConfig, tr host.Transport) Filter {
			f := inner(info, proxy, tr)
			time.AfterFunc(50*time.Millisecond, func() { tr.CloseDownstream("wasm_downstream_close") })
			return f
		}
	})
	c, err := net.Dial("tcp", e.addr)
	require.NoError(t, err)
	defer c.Close()
	f := e.rec.next(t)
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, err = c.Read(make([]byte, 1))
	require.Error(t, err)
	require.False(t, errors.Is(err, os.ErrDeadlineExceeded), "the filter's close must end the handshake")
	require.False(t, f.downstreamClosed(t), "the filter's close is a local close")
	waitFor(t, "cleanup", func() bool { return e.g.ActiveConnections() == 0 })
	require.Zero(t, e.g.Metrics().TLSHandshakeFailures.Load())
	var sb strings.Builder
	require.NoError(t, e.g.WritePrometheus(&sb))
	require.Contains(t, sb.String(), `dicomgate_gateway_downstream_closes_total{reason="filter_closed"} 1`)
}

// Every goroutine a connection starts (reader, writers, dialer) ends with it,
// whatever way the connection ends.
func TestNoGoroutineLeak(t *testing.T) {
	a := newBackend(t, []byte("ok"))
	e := startGateway(t, Config{
		Clusters:          []*Cluster{{Name: "a", Endpoints: []string{a.addr()}}, {Name: "down", Endpoints: []string{closedPort(t)}}},
		MaxEarlyDataBytes: 1 << 20,
	}, true, true, func(rec *recorder) NewFilterFunc {
		return rec.factory(map[string]string{"ANY-SCP": "a", "ORTHANC": "down", "STORE SCP": "nope"}, false)
	})
	// One warm-up connection so lazily started runtime goroutines exist before the baseline.
	_, _ = exchange(t, e.dial(t, true), capture(t, "echo_default.c2s.bin"))
	waitFor(t, "drain", func() bool { return e.g.ActiveConnections() == 0 })
	time.Sleep(50 * time.Millisecond)
	base := runtime.NumGoroutine()
	for i := 0; i < 5; i++ {
		for _, name := range []string{"echo_default.c2s.bin", "orthanc_echo.c2s.bin", "echo_custom_ae.c2s.bin", "rj_called_ae.c2s.bin"} {
			_, _ = exchange(t, e.dial(t, true), capture(t, name))
		}
	}
	waitFor(t, "drain", func() bool { return e.g.ActiveConnections() == 0 })
	waitFor(t, "goroutines to end", func() bool { return runtime.NumGoroutine() <= base })
	require.Zero(t, e.g.BufferedBytes(), "every byte held or queued for a finished connection is released")
}
