package host

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// cpp-host src/shared_queue.cc: enqueue posts proxy_on_queue_ready(root, token) to the registrant's
// worker; dequeue on an empty queue ⇒ EMPTY; resolve of an unknown queue ⇒ NOT_FOUND.
func TestSharedQueue_EnqueueDeliversQueueReady(t *testing.T) {
	e := newTestPlugin(t, `{"probe":"queue"}`, func(c *PluginConfig) { c.VMID = "queue-test" })
	c := e.conn(t, TCPProxyConfig{Cluster: "default", MaxEarlyDataBytes: 10}, &recTransport{})
	c.DownstreamData([]byte("x"), false)
	require.Equal(t, "same=true err=<nil> rerr=<nil> missing=error status returned by host: not found", e.log.probe(t, "queue_register"), "queue_register")
	require.Equal(t, "err=<nil>", e.log.probe(t, "queue_enqueue"), "queue_enqueue")
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if ev := eventsAfter(e, "queue_ready"); len(ev) == 1 {
			require.Equal(t, `queue_ready root=1 data="hello" err=<nil> next=error status returned by host: empty`, ev[0], "queue_ready")
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	require.FailNow(t, "no queue_ready event", "%s", e.log.dump())
}

// Plugin.Start drives proxy_on_tick from real time.
func TestPlugin_Start_TicksWithRealClock(t *testing.T) {
	e := newTestPlugin(t, `{"tick_ms":5}`, func(c *PluginConfig) { c.Clock = nil })
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	e.p.Start(ctx)
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if len(eventsAfter(e, "tick")) >= 2 {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	require.FailNow(t, "fewer than 2 ticks in 5 s")
}

// One goroutine per connection across several worker VMs, concurrently with Tick: every connection
// must see its own bytes exactly once upstream (run with -race).
func TestConn_ConcurrentConnectionsAcrossWorkers(t *testing.T) {
	e := newTestPlugin(t, `{"pause_until":4,"tick_ms":1,"count_metric":"tf.data"}`, func(c *PluginConfig) { c.Workers = 3 })
	const n = 24
	var wg sync.WaitGroup
	stopTicking := e.tickContinuously()
	errs := make(chan error, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			tr := &recTransport{autoConnect: true}
			c := e.p.NewConn(ConnInfo{ID: uint64(i)}, TCPProxyConfig{Cluster: "default"}, tr)
			msg := fmt.Sprintf("m%03d", i)
			c.DownstreamData([]byte(msg[:2]), false)
			c.DownstreamData([]byte(msg[2:]), false)
			c.UpstreamData([]byte("r"), false)
			c.DownstreamClosed(true)
			if tr.upstream() != msg {
				errs <- fmt.Errorf("conn %d: upstream %q want %q (ops %q)", i, tr.upstream(), msg, strings.Join(tr.opsList(), "|"))
			}
		}(i)
	}
	wg.Wait()
	stopTicking()
	close(errs)
	// Every failure is collected, so one run shows all of them.
	var wrong []string
	for err := range errs {
		wrong = append(wrong, err.Error())
	}
	if v, ok := e.p.Metrics().Get("wasm_host_connections_total"); !ok || v != n {
		wrong = append(wrong, fmt.Sprintf("connections_total = %d (series present: %v), want %d", v, ok, n))
	}
	if got := len(eventsAfter(e, "stream_done")); got != n {
		wrong = append(wrong, fmt.Sprintf("stream_done events = %d, want %d", got, n))
	}
	// Host-side state is released: only the root context remains per VM.
	for _, w := range e.p.workers {
		w.Mu.Lock()
		if got := len(w.VM.Contexts); got != 1 {
			wrong = append(wrong, fmt.Sprintf("worker %d: %d live contexts after every connection closed", w.Index, got))
		}
		w.Mu.Unlock()
	}
	require.Empty(t, wrong, "%s", strings.Join(wrong, "\n"))
}
