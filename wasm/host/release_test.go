package host

import (
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
)

// Conn.Release: a finished connection is reused by a later NewConn with nothing left over from
// the previous one (filter state, counters, close reason, Transport); a released Conn that was not
// handed out again does nothing; releasing twice never hands one Conn to two connections.
func TestConn_ReleaseReusesFinishedConnFresh(t *testing.T) {
	e := newTestPlugin(t, `{"cluster_on_new":"routed"}`, nil)
	early := TCPProxyConfig{Cluster: "default", MaxEarlyDataBytes: 1 << 10}
	reused := 0
	for i := 0; i < 20; i++ {
		tr := &recTransport{autoConnect: true}
		c := e.p.NewConn(ConnInfo{ID: uint64(100 + i)}, early, tr)
		s := c.State()
		fresh := s.ID == uint64(100+i) && !s.Closed && s.CloseReason == "" && s.BytesToUpstream == 0 && s.Buffered == 0 &&
			s.Cluster == "routed" && len(s.FilterState) == 1 && s.FilterInstalled
		require.True(t, fresh, "connection %d starts with stale or wrong state: %+v", i, s)
		c.DownstreamData([]byte(fmt.Sprintf("bytes %d", i)), false)
		c.DownstreamClosed(true)
		require.Equal(t, fmt.Sprintf("bytes %d", i), tr.upstream(), "connection %d forwarded", i)
		c.Release()
		ops := len(tr.opsList())
		c.DownstreamData([]byte("late"), false) // a released Conn does nothing
		c.UpstreamConnected()
		c.UpstreamClosed()
		require.True(t, len(tr.opsList()) == ops && c.State().Closed, "a released Conn still acted: %q, %+v", tr.opsList()[ops:], c.State())
		c.Release() // harmless
		next1 := e.p.NewConn(ConnInfo{ID: 1}, early, &recTransport{autoConnect: true})
		next2 := e.p.NewConn(ConnInfo{ID: 2}, early, &recTransport{autoConnect: true})
		require.NotSame(t, next1, next2, "a Conn released twice was handed out twice")
		if next1 == c || next2 == c {
			reused++
		}
		next1.DownstreamClosed(true)
		next2.DownstreamClosed(true)
	}
	if !raceEnabled {
		require.NotZero(t, reused, "no released Conn was reused in 20 connections")
	}
}

// Release leaves a Conn alone while it is open and takes it once it is finished (a Conn another
// goroutine still has to deliver: filtermanager TestConn_ReleaseWaitsForPendingDelivery).
func TestConn_ReleaseKeepsConnInUse(t *testing.T) {
	e := newTestPlugin(t, `{}`, nil)
	tr := &recTransport{autoConnect: true}
	c := e.p.NewConn(ConnInfo{ID: 7}, TCPProxyConfig{Cluster: "default", MaxEarlyDataBytes: 1 << 10}, tr)
	c.Release() // open: no effect
	c.DownstreamData([]byte("still works"), false)
	require.Equal(t, "still works", tr.upstream(), "after Release of an open Conn: upstream")
	c.DownstreamClosed(true)
	c.Release()
	require.Equal(t, "released", c.State().CloseReason, "Release of a finished Conn did not take it: %+v", c.State())
}

// Connections released and reused on several workers while Tick closes connections from its own
// goroutine (set_effective_context + close_stream ⇒ the Tick goroutine delivers their
// CloseDownstream): each Transport only ever sees its own connection (run with -race).
func TestConn_ReleaseConcurrentWithTickDeliveries(t *testing.T) {
	e := newTestPlugin(t, `{"pause_until":1000,"tick_ms":1,"tick_action":"close"}`, func(c *PluginConfig) { c.Workers = 2 })
	stopTicking := e.tickContinuously()
	const goroutines, perG = 4, 150
	var wg sync.WaitGroup
	errs := make(chan error, goroutines)
	for g := 0; g < goroutines; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; i < perG; i++ {
				tr := &recTransport{autoConnect: true}
				c := e.p.NewConn(ConnInfo{ID: uint64(g*perG + i)}, TCPProxyConfig{Cluster: "default"}, tr)
				msg := fmt.Sprintf("g%d-%d", g, i)
				c.DownstreamData([]byte(msg), false)
				c.DownstreamClosed(true)
				c.Release()
				for _, op := range tr.opsList() {
					if strings.HasPrefix(op, "up ") && !strings.Contains(op, msg) {
						errs <- fmt.Errorf("connection %s got another connection's bytes: %q", msg, tr.opsList())
						return
					}
				}
				if n := strings.Count(strings.Join(tr.opsList(), "|"), "close_downstream"); n > 1 {
					errs <- fmt.Errorf("connection %s closed %d times: %q", msg, n, tr.opsList())
					return
				}
			}
		}(g)
	}
	wg.Wait()
	stopTicking()
	close(errs)
	// Every failure is collected, so one run shows all of them.
	var wrong []string
	for err := range errs {
		wrong = append(wrong, err.Error())
	}
	for _, w := range e.p.workers {
		w.Mu.Lock()
		if got := len(w.VM.Contexts); got != 1 {
			wrong = append(wrong, fmt.Sprintf("worker %d: %d live contexts after every connection closed", w.Index, got))
		}
		w.Mu.Unlock()
	}
	require.Empty(t, wrong, "%s", strings.Join(wrong, "\n"))
}
