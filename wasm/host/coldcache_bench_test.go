package host_test

import (
	"strconv"
	"testing"

	"github.com/stretchr/testify/require"
)

// BenchmarkWasmAssociationColdCache is BenchmarkWasmAssociation with the CPU caches disturbed
// before each callback, as a gateway's socket work does between the guest calls of a real
// association: with the timer stopped, evict=N writes one byte per 64-byte line of an N-byte
// buffer (evict=0 only stops and starts the timer, which disturbs the caches a little itself;
// evict=none does not stop the timer: the warm baseline; the L2 of the machine of bench/RESULTS.md §8.5 is 2 MiB per core). seq=micro is
// BenchmarkWasmAssociation's sequence (new connection, RQ read, post-decision read, client
// close: 4 steps); seq=gateway is what the gateway delivers for BenchmarkRealFilterAssociation's
// association in gateway/ (new connection; the whole client stream in one read; the client's FIN
// as an empty read; the upstream's answer and its FIN; upstream close; downstream close: 7 steps,
// counted by gateway/TestGatewayGuestCallCounts). A profiling tool for bench/RESULTS.md §8.5
// ("The filter's 34 µs per association: where it goes").
func BenchmarkWasmAssociationColdCache(b *testing.B) {
	p, logs := loadFilter(b, routePolicy)
	rq, rest := echoCapture(b)
	all := append(append([]byte(nil), rq...), rest...)
	t := &syncTransport{}
	associate(p, t, 1, rq, rest, 1)
	require.True(b, t.routed(len(rq)+len(rest)), "association not routed to %s: %s; last log: %s", routedCluster, t.describe(), logs.last)
	id := uint64(1)
	for _, seq := range []string{"micro", "gateway"} {
		for _, size := range []int{-1, 0, 1 << 20, 4 << 20, 32 << 20} {
			name := "none"
			if size >= 0 {
				name = strconv.Itoa(size>>10) + "KiB"
			}
			b.Run("seq="+seq+"/evict="+name, func(b *testing.B) {
				buf := make([]byte, max(size, 0))
				step := func() {
					if size < 0 {
						return
					}
					b.StopTimer()
					for i := 0; i < len(buf); i += 64 {
						buf[i]++
					}
					b.StartTimer()
				}
				for i := 0; i < b.N; i++ {
					id++
					step()
					t.reset()
					c := p.NewConn(connInfo(id), earlyData, t)
					if seq == "micro" {
						step()
						c.DownstreamData(rq, false)
						step()
						c.DownstreamData(rest, false)
						step()
						c.DownstreamClosed(true)
					} else {
						step()
						c.DownstreamData(all, false)
						step()
						c.DownstreamData(nil, true)
						step()
						c.UpstreamData(all, false)
						step()
						c.UpstreamData(nil, true)
						step()
						c.UpstreamClosed()
						step()
						c.DownstreamClosed(false)
					}
					t.c = nil
					c.Release()
				}
				b.StopTimer()
				require.True(b, t.cluster == routedCluster && t.forwarded == len(all), "last association not routed: %s", t.describe())
			})
		}
	}
}
