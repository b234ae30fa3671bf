package filtermanager

import (
	"reflect"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/dicomgate/dicomgate/wasm/host/internal/properties"
)

// testChain returns a chain under FAIL_OPEN and a worker without a VM: its connections have
// tcp_proxy alone, enough for the delivery and release machinery (host's tests run it with a VM).
func testChain() (*Chain, *Worker) {
	return &Chain{FailurePolicy: FailOpen, Closed: func() bool { return false },
		ConnsTotal: new(atomic.Uint64), ConnsFailOpen: new(atomic.Uint64), ConnsFailClosed: new(atomic.Uint64)}, &Worker{}
}

// upTransport connects at once and keeps what goes upstream.
type upTransport struct {
	c  *Conn
	up []byte
}

func (t *upTransport) ConnectUpstream(string)         { t.c.UpstreamConnected() }
func (t *upTransport) WriteUpstream(b []byte, _ bool) { t.up = append(t.up, b...) }
func (t *upTransport) WriteDownstream([]byte, bool)   {}
func (t *upTransport) CloseDownstream(string)         {}
func (t *upTransport) CloseUpstream()                 {}
func (t *upTransport) SetDownstreamReadDisabled(bool) {}

func newTestConn(t *testing.T) (*Conn, *upTransport) {
	t.Helper()
	ch, w := testChain()
	c := new(Conn)
	tr := &upTransport{c: c}
	c.Init(ch, w, properties.ConnInfo{ID: 7}, TCPProxyConfig{Cluster: "default", MaxEarlyDataBytes: 1 << 10}, tr)
	return c, tr
}

// Release leaves a Conn alone while it is open or while another goroutine still has to deliver its
// Transport calls (UnlockAndDeliver took it off the dirty list but has not run deliver yet).
func TestConn_ReleaseWaitsForPendingDelivery(t *testing.T) {
	c, tr := newTestConn(t)
	require.False(t, c.Release(), "Release took an open Conn")
	c.DownstreamData([]byte("still works"), false)
	require.Equal(t, "still works", string(tr.up))
	c.DownstreamClosed(true)

	c.w.Mu.Lock()
	c.pendingDeliver++ // as UnlockAndDeliver on another goroutine does
	c.w.Mu.Unlock()
	require.False(t, c.Release(), "Release recycled a Conn another goroutine was about to deliver")
	require.NotEqual(t, "released", c.State().CloseReason)
	c.deliver() // that goroutine delivers: now it may go
	require.True(t, c.Release(), "Release after the delivery did not take the Conn: %+v", c.State())
	require.Equal(t, "released", c.State().CloseReason)
}

// Init does not zero a pooled Conn again: unmarkReleased must turn a released Conn back into the
// zero Conn (but for ch and w) exactly, whatever fields Conn grows.
func TestConn_UnmarkReleasedRestoresZeroConn(t *testing.T) {
	c, _ := newTestConn(t)
	c.DownstreamData([]byte("data"), false)
	c.props.FilterState.Set("k", "v")
	c.DownstreamClosed(true)
	require.True(t, c.Release(), "Release did not take a finished Conn")
	require.True(t, c.released)
	c.unmarkReleased()
	require.True(t, reflect.DeepEqual(Conn{ch: c.ch, w: c.w}, *c), "a released Conn is not the zero Conn after unmarkReleased:\n%+v", *c)
}
