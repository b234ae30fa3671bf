package host

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// Random event sequences against several filter behaviours: the model must never panic, never
// forward bytes out of order or twice, never write after closing, and run the close callbacks at
// most once per connection.
func TestConn_RandomEventSequences(t *testing.T) {
	configs := []string{
		`{}`,
		`{"pause_until":10}`,
		`{"new_conn":"pause","cluster_on_data":"r","tick_ms":5,"tick_action":"continue"}`,
		`{"continue_in_data":true}`,
		`{"on_data":"pause","tick_ms":5,"tick_action":"continue"}`,
		`{"on_data":"pause","tick_ms":5,"tick_action":"close"}`,
		`{"close_on_data":"upstream"}`,
		`{"pause_upstream":true}`,
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for ci, conf := range configs {
		e := newTestPlugin(t, conf, nil)
		for seq := 0; seq < 25; seq++ {
			name := fmt.Sprintf("config %d seq %d", ci, seq)
			tr := &recTransport{}
			early := 0
			if rng.IntN(2) == 0 {
				early = 1 + rng.IntN(32)
			}
			c := e.p.NewConn(ConnInfo{ID: uint64(seq)}, TCPProxyConfig{Cluster: "default", MaxEarlyDataBytes: early, ReadBufferLimit: 1 + rng.IntN(64)}, tr)
			var sent strings.Builder
			downEnd := false
			connectAsked := func() bool {
				for _, op := range tr.opsList() {
					if strings.HasPrefix(op, "connect ") {
						return true
					}
				}
				return false
			}
			connected := false
			for step := 0; step < 20; step++ {
				switch rng.IntN(8) {
				case 0, 1, 2:
					if !downEnd {
						b := []byte(fmt.Sprintf("<%d.%d>", seq, step))
						end := rng.IntN(10) == 0
						sent.Write(b)
						downEnd = end
						c.DownstreamData(b, end)
					}
				case 3:
					if connectAsked() && !connected {
						connected = true
						c.UpstreamConnected()
					}
				case 4:
					if connected {
						c.UpstreamData([]byte("r"), rng.IntN(8) == 0)
					}
				case 5:
					e.p.Tick(e.clk.Advance(time.Duration(rng.IntN(10)) * time.Millisecond))
				case 6:
					if rng.IntN(6) == 0 {
						c.DownstreamClosed(rng.IntN(2) == 0)
					}
				case 7:
					if rng.IntN(10) == 0 {
						c.UpstreamClosed()
					}
				}
			}
			c.DownstreamClosed(true)
			up := tr.upstream()
			require.True(t, strings.HasPrefix(sent.String(), up), "%s: upstream %q is not a prefix of what the client sent %q\nops %q", name, up, sent.String(), tr.opsList())
			ops := tr.opsList()
			for i, op := range ops {
				if strings.HasPrefix(op, "close_downstream") {
					for _, later := range ops[i+1:] {
						written := strings.HasPrefix(later, "up ") || strings.HasPrefix(later, "down ") || strings.HasPrefix(later, "connect ")
						require.False(t, written, "%s: %q after %q: %q", name, later, op, ops)
					}
				}
			}
			s := c.State()
			require.True(t, s.Closed, "%s: not closed after DownstreamClosed: %+v", name, s)
		}
		// Close callbacks ran at most once per connection (stream ids are unique per VM).
		seen := map[string]int{}
		for _, ev := range eventsAfter(e, "stream_done") {
			seen[ev]++
			require.LessOrEqual(t, seen[ev], 1, "config %d: %q twice", ci, ev)
		}
	}
}
