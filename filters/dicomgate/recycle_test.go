package main

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// TestConnRecycledAfterStreamDone: the context whose stream is done (proxy_on_log ⇒ OnStreamDone,
// the last call Envoy makes into it before proxy_on_delete, Context::onCloseTCP) is handed out
// again by NewTcpContext, fully reset and under the new id; a context that is still open is not;
// and the free list is bounded.
func TestConnRecycledAfterStreamDone(t *testing.T) {
	p := &plugin{}
	a := p.NewTcpContext(2).(*conn)
	b := p.NewTcpContext(3).(*conn)
	a.st, a.total, a.seen, a.start, a.firstData = uint8(statePassed), 301, 301, 5, 6
	a.OnStreamDone()
	c := p.NewTcpContext(4).(*conn)
	require.Same(t, a, c, "the done context was not reused")
	require.True(t, *c == (conn{p: p, id: 4}), "reused context not reset: %+v", *c)
	d := p.NewTcpContext(5).(*conn)
	require.NotSame(t, a, d, "a context was handed out twice")
	require.NotSame(t, b, d, "a context was handed out twice")
	for i := 0; i < 2*maxFreeConns; i++ {
		(&conn{p: p}).OnStreamDone()
	}
	require.Len(t, p.free, maxFreeConns, "free list: bound %d", maxFreeConns)
}

// A connection leaves inspect only through conn.to, which also takes it off
// the inspect deadline's list: a stream that ends while inspecting is closed
// and no longer pending, and the other connections stay pending.
func TestStreamDoneWhileInspectingLeavesPending(t *testing.T) {
	p := &plugin{}
	a := p.NewTcpContext(2).(*conn)
	b := p.NewTcpContext(3).(*conn)
	p.addPending(a)
	p.addPending(b)
	require.Equal(t, stateInspect, a.state())
	a.OnStreamDone()
	require.Equal(t, "closed", a.state().String())
	require.Equal(t, []*conn{b}, p.pending)
	require.Equal(t, 1, b.pendingAt)
	b.to(statePassed)
	require.Equal(t, "passed", b.state().String())
	require.Empty(t, p.pending)
	require.Equal(t, "invalid", state(7).String())
}
