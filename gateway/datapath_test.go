package gateway

import (
	"bytes"
	"crypto/rand"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dicomgate/dicomgate/wasm/host"
)

// dupFilter passes every read on unchanged (the gateway's read buffer itself:
// the direct path) and then a copy of it (queued for the writer goroutine),
// and records what it wrote, in order.
type dupFilter struct {
	passFilter
	mu    sync.Mutex
	wrote bytes.Buffer
}

func (f *dupFilter) DownstreamData(b []byte, end bool) {
	if !f.connected {
		f.passFilter.DownstreamData(b, end)
		return
	}
	f.mu.Lock()
	f.wrote.Write(b)
	f.wrote.Write(b)
	f.mu.Unlock()
	f.t.WriteUpstream(b, false)
	f.t.WriteUpstream(bytes.Clone(b), end)
}

// TestDirectAndQueuedWritesKeepOrder: bytes written on the reader's goroutine
// without a copy (the filter passes on its read) and bytes queued for the
// writer goroutine (a copy written after them) reach the upstream in the
// order the filter wrote them, and the client's half-close follows them.
func TestDirectAndQueuedWritesKeepOrder(t *testing.T) {
	be := newBackend(t, []byte("done"))
	var mu sync.Mutex
	var filters []*dupFilter
	e := startGateway(t, Config{
		Clusters:       []*Cluster{{Name: "be", Endpoints: []string{be.addr()}}},
		DefaultCluster: "be",
	}, false, false, func(*recorder) NewFilterFunc {
		return func(info host.ConnInfo, proxy host.TCPProxyConfig, t host.Transport) Filter {
			f := &dupFilter{passFilter: passFilter{t: t}}
			mu.Lock()
			filters = append(filters, f)
			mu.Unlock()
			t.ConnectUpstream(proxy.Cluster)
			return f
		}
	})
	c := e.dial(t, false)
	// The upstream is connected before the payload, so every read goes through dupFilter's second branch.
	waitFor(t, "upstream connected", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(filters) == 1 && func() bool { accepted, _, _ := be.snapshot(); return accepted == 1 }()
	})
	payload := make([]byte, 3<<20)
	_, err := rand.Read(payload)
	require.NoError(t, err)
	got, err := exchange(t, c, payload)
	require.NoError(t, err)
	require.Equal(t, "done", string(got))
	_, received, eof := be.snapshot()
	require.Len(t, received, 1)
	require.True(t, eof[0], "the backend saw the client's half-close")
	f := filters[0]
	f.mu.Lock()
	want := f.wrote.Bytes()
	f.mu.Unlock()
	require.Equal(t, 2*len(payload), len(want), "the filter saw every byte once")
	require.True(t, bytes.Equal(want, received[0]), "the backend received the filter's writes in order")
}

// TestPassThroughDoesNotAllocatePerRead: once the filter passes the bytes on
// unchanged, forwarding a read allocates nothing (no per-read copy into the
// write queue).
func TestPassThroughDoesNotAllocatePerRead(t *testing.T) {
	up, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { up.Close() })
	go func() {
		for {
			c, err := up.Accept()
			if err != nil {
				return
			}
			go func() { io.Copy(c, c); c.Close() }()
		}
	}()
	e := startGateway(t, Config{
		Clusters:       []*Cluster{{Name: "echo", Endpoints: []string{up.Addr().String()}}},
		DefaultCluster: "echo",
	}, false, false, func(*recorder) NewFilterFunc {
		return func(info host.ConnInfo, proxy host.TCPProxyConfig, t host.Transport) Filter {
			t.ConnectUpstream(proxy.Cluster)
			return &passFilter{t: t}
		}
	})
	c := e.dial(t, false)
	defer c.Close()
	require.NoError(t, c.SetDeadline(time.Now().Add(30*time.Second)))
	msg := make([]byte, 64<<10)
	back := make([]byte, len(msg))
	roundTrip := func() {
		_, err := c.Write(msg)
		require.NoError(t, err)
		_, err = io.ReadFull(c, back)
		require.NoError(t, err)
	}
	for range 5 { // the read buffers grow to their large size
		roundTrip()
	}
	// 64 KiB each way is at least 4 reads per direction; a copy per read would
	// be >= 8 allocations per round trip. Test helpers allocate nothing here.
	allocs := testing.AllocsPerRun(50, roundTrip)
	require.Less(t, allocs, 1.0, "allocations per 64 KiB round trip through the gateway")
}
