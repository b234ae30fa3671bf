package host

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"
)

// nopTransport discards every instruction; it connects synchronously.
type nopTransport struct{ c *Conn }

func (n *nopTransport) Bind(c *Conn)                   { n.c = c }
func (n *nopTransport) ConnectUpstream(string)         { n.c.UpstreamConnected() }
func (n *nopTransport) WriteUpstream([]byte, bool)     {}
func (n *nopTransport) WriteDownstream([]byte, bool)   {}
func (n *nopTransport) CloseDownstream(string)         {}
func (n *nopTransport) CloseUpstream()                 {}
func (n *nopTransport) SetDownstreamReadDisabled(bool) {}

// BenchmarkConn_Association runs one connection through the test filter: new connection, a
// 200-byte request in two reads, a response, close. It reports host calls per association.
func BenchmarkConn_Association(b *testing.B) {
	p, err := testEngine(b).NewPlugin(context.Background(), testFilter(b, ""), PluginConfig{
		Name: "bench", Workers: 1, Configuration: []byte(`{"pause_until":200}`),
		Logger: discardLogger{},
	})
	require.NoError(b, err)
	defer p.Close(context.Background())
	req := make([]byte, 200)
	resp := make([]byte, 100)
	start := p.HostCalls()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		c := p.NewConn(ConnInfo{ID: uint64(i)}, TCPProxyConfig{Cluster: "default"}, &nopTransport{})
		c.DownstreamData(req[:100], false)
		c.DownstreamData(req[100:], false)
		c.UpstreamData(resp, false)
		c.DownstreamClosed(true)
	}
	b.StopTimer()
	b.ReportMetric(float64(p.HostCalls()-start)/float64(b.N), "hostcalls/assoc")
	b.ReportMetric(float64(p.GuestMemoryBytes()), "guest-mem-bytes")
}

type discardLogger struct{}

func (discardLogger) Log(LogLevel, string, string) {}
