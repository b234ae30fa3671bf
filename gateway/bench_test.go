package gateway

import (
	"context"
	"io"
	"net"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/dicomgate/dicomgate/wasm/host"
)

// passFilter is a pass-through tcp_proxy: connect the configured cluster at
// once, forward both directions.
type passFilter struct {
	t          host.Transport
	connected  bool
	pending    []byte
	pendingEnd bool
}

func (f *passFilter) DownstreamData(b []byte, end bool) {
	if !f.connected {
		f.pending = append(f.pending, b...)
		f.pendingEnd = f.pendingEnd || end
		return
	}
	f.t.WriteUpstream(b, end)
}
func (f *passFilter) UpstreamConnected() {
	f.connected = true
	f.t.WriteUpstream(f.pending, f.pendingEnd)
	f.pending = nil
}
func (f *passFilter) UpstreamConnectFailed(reason string) { f.t.CloseDownstream(reason) }
func (f *passFilter) UpstreamData(b []byte, end bool)     { f.t.WriteDownstream(b, end) }
func (f *passFilter) DownstreamClosed(bool)               { f.t.CloseUpstream() }
func (f *passFilter) UpstreamClosed()                     { f.t.CloseDownstream("upstream_closed") }
func (f *passFilter) SetTLS(*host.TLSInfo, string)        {}

// echoServer echoes every connection until EOF.
func echoServer(tb testing.TB) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(tb, err)
	tb.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { io.Copy(c, c); c.Close() }()
		}
	}()
	return ln.Addr().String()
}

// BenchmarkProxyEcho64K measures the socket path (reader, filter call,
// writer queue, both directions) with a pass-through filter: 64 KiB out and
// back per op over one plaintext connection.
func BenchmarkProxyEcho64K(b *testing.B) {
	up := echoServer(b)
	g, err := New(Config{
		Clusters:       []*Cluster{{Name: "echo", Endpoints: []string{up}}},
		DefaultCluster: "echo",
		NewFilter: func(info host.ConnInfo, proxy host.TCPProxyConfig, t host.Transport) Filter {
			f := &passFilter{t: t}
			t.ConnectUpstream(proxy.Cluster)
			return f
		},
	})
	require.NoError(b, err)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(b, err)
	go g.Serve(ln)
	b.Cleanup(func() { g.Close() })
	c, err := net.Dial("tcp", ln.Addr().String())
	require.NoError(b, err)
	defer c.Close()
	msg := make([]byte, 64<<10)
	back := make([]byte, len(msg))
	b.SetBytes(int64(2 * len(msg)))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		// require only on failure: the measured loop does not pay for b.Helper.
		if _, err := c.Write(msg); err != nil {
			require.NoError(b, err)
		}
		if _, err := io.ReadFull(c, back); err != nil {
			require.NoError(b, err)
		}
	}
}

// BenchmarkRealFilterAssociation measures one whole association through the
// gateway with the real filter (plaintext, early data): connect, the
// captured echo A-ASSOCIATE-RQ and the rest of the echo session, routing on
// the called AE, the upstream's reply, both closes. BenchmarkPassFilterAssociation
// is the same association with a pass-through Go filter: the difference is
// what the Wasm filter and the host cost per association (warm caches, one
// association at a time).
func BenchmarkRealFilterAssociation(b *testing.B) {
	up := echoServer(b)
	p, err := testEngine(b).NewPlugin(context.Background(), filterModule(b), host.PluginConfig{
		Name: "dicomgate", RootID: "dicomgate", Workers: 1, Logger: &lineLogger{},
		Configuration: []byte(`{"defaultAction":"deny","rules":[{"name":"r","match":{"calledAETitles":["ANY-SCP"]},"action":"route","cluster":"echo"}]}`),
	})
	require.NoError(b, err)
	b.Cleanup(func() { p.Close(context.Background()) })
	benchAssociation(b, up, PluginFilters(p))
}

// BenchmarkPassFilterAssociation is BenchmarkRealFilterAssociation with
// passFilter instead of the Wasm filter.
func BenchmarkPassFilterAssociation(b *testing.B) {
	up := echoServer(b)
	benchAssociation(b, up, func(info host.ConnInfo, proxy host.TCPProxyConfig, t host.Transport) Filter {
		t.ConnectUpstream("echo")
		return &passFilter{t: t}
	})
}

// benchAssociation runs the echo association of the capture through a
// gateway whose connections get newFilter, upstream up.
func benchAssociation(b *testing.B, up string, newFilter NewFilterFunc) {
	g, err := New(Config{
		Clusters:          []*Cluster{{Name: "echo", Endpoints: []string{up}}},
		MaxEarlyDataBytes: 1 << 20,
		NewFilter:         newFilter,
	})
	require.NoError(b, err)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(b, err)
	go g.Serve(ln)
	b.Cleanup(func() { g.Close() })
	req, err := os.ReadFile(filepath.Join("..", "sdk", "pdu", "testdata", "echo_default.c2s.bin"))
	require.NoError(b, err)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		// require only on failure: the measured loop does not pay for b.Helper.
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			require.NoError(b, err)
		}
		if _, err := c.Write(req); err != nil {
			require.NoError(b, err)
		}
		c.(*net.TCPConn).CloseWrite()
		got, err := io.ReadAll(c)
		c.Close()
		if err != nil || len(got) != len(req) {
			require.NoError(b, err, "echo through the gateway: %d bytes", len(got))
			require.Len(b, got, len(req), "echo through the gateway: %d bytes", len(got))
		}
	}
}
