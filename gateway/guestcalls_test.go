package gateway

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dicomgate/dicomgate/internal/guestprof"
	"github.com/dicomgate/dicomgate/internal/wasmbuild"
	"github.com/dicomgate/dicomgate/wasm/host"
)

// TestGatewayGuestCallCounts is a profiling tool, not a check: with DICOMGATE_GUEST_CALLS=1 it runs
// the association of BenchmarkRealFilterAssociation (same policy, plaintext, early data, real
// sockets) with a wazero function listener on every guest function and host import, and logs per
// association: the gateway's Filter callbacks (with the reads' sizes), the host calls, and how
// often each guest function ran with its inclusive time (times include the listener's own cost,
// ~0.1 µs per call: compare them only with each other). wasm/host's TestGuestCallCounts is the
// same for the synchronous micro benchmark (BenchmarkWasmAssociation); bench/RESULTS.md §8.5
// compares the two.
//
//	DICOMGATE_GUEST_CALLS=1 go test -run TestGatewayGuestCallCounts -v ./gateway/
func TestGatewayGuestCallCounts(t *testing.T) {
	if os.Getenv("DICOMGATE_GUEST_CALLS") == "" {
		t.Skip("profiling tool; set DICOMGATE_GUEST_CALLS=1 to run it")
	}
	prof := guestprof.New() // its listener is called from the connections' goroutines
	ctx := prof.Context(context.Background())
	wasm, err := wasmbuild.DicomgateWithNames() // the shipped module has no function names
	require.NoError(t, err)
	// No compilation cache: a module compiled with listeners is not cached with the others.
	eng, err := host.NewEngine(ctx, host.EngineConfig{})
	require.NoError(t, err)
	defer eng.Close(context.Background())
	p, err := eng.NewPlugin(ctx, wasm, host.PluginConfig{
		Name: "dicomgate", RootID: "dicomgate", Workers: 1, Logger: &lineLogger{},
		Configuration: []byte(`{"defaultAction":"deny","rules":[{"name":"r","match":{"calledAETitles":["ANY-SCP"]},"action":"route","cluster":"echo"}]}`),
	})
	require.NoError(t, err)
	defer p.Close(context.Background())
	cb := &callbackCounts{reads: map[string]int{}}
	newFilter := func(info host.ConnInfo, proxy host.TCPProxyConfig, tr host.Transport) Filter {
		cb.mu.Lock()
		cb.open++
		cb.mu.Unlock()
		return &countingFilter{Filter: PluginFilters(p)(info, proxy, tr), c: cb}
	}
	up := echoServer(t)
	g, err := New(Config{Clusters: []*Cluster{{Name: "echo", Endpoints: []string{up}}}, MaxEarlyDataBytes: 1 << 20, NewFilter: newFilter})
	require.NoError(t, err)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	go g.Serve(ln)
	defer g.Close()
	req, err := os.ReadFile(filepath.Join("..", "sdk", "pdu", "testdata", "echo_default.c2s.bin"))
	require.NoError(t, err)
	run := func() {
		c, err := net.Dial("tcp", ln.Addr().String())
		require.NoError(t, err)
		_, err = c.Write(req)
		require.NoError(t, err)
		require.NoError(t, c.(*net.TCPConn).CloseWrite())
		got, err := io.ReadAll(c)
		require.NoError(t, err)
		require.NoError(t, c.Close())
		require.Len(t, got, len(req), "echo through the gateway")
	}
	for i := 0; i < 500; i++ { // warm-up
		run()
	}
	waitIdle := func() { // the gateway's side of the last association finishes after the client's
		require.Eventually(t, func() bool { cb.mu.Lock(); defer cb.mu.Unlock(); return cb.open == 0 }, 5*time.Second, time.Millisecond)
	}
	waitIdle()
	prof.Reset()
	cb.reset()
	hostCalls := p.HostCalls()
	const n = 2000
	for i := 0; i < n; i++ {
		run()
	}
	waitIdle()
	t.Logf("host calls per association: %.2f", float64(p.HostCalls()-hostCalls)/n)
	cb.mu.Lock()
	t.Logf("Filter callbacks per association: %s", cb.describe(n))
	cb.mu.Unlock()
	prof.Report(t.Logf, n)
}

// callbackCounts counts the gateway's Filter callbacks by kind; reads by kind and size.
type callbackCounts struct {
	mu    sync.Mutex
	open  int
	kinds map[string]int
	reads map[string]int
}

func (c *callbackCounts) reset() {
	c.mu.Lock()
	c.kinds = map[string]int{}
	c.reads = map[string]int{}
	c.mu.Unlock()
}

func (c *callbackCounts) add(kind string) {
	c.mu.Lock()
	if c.kinds == nil {
		c.kinds = map[string]int{}
	}
	c.kinds[kind]++
	c.mu.Unlock()
}

func (c *callbackCounts) describe(n int) string {
	var keys []string
	for k := range c.kinds {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	s := ""
	for _, k := range keys {
		s += fmt.Sprintf("%s %.2f; ", k, float64(c.kinds[k])/float64(n))
	}
	keys = keys[:0]
	for k := range c.reads {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	s += "reads by size:"
	for _, k := range keys {
		s += fmt.Sprintf(" %s %.2f", k, float64(c.reads[k])/float64(n))
	}
	return s
}

// countingFilter counts the callbacks the gateway makes into the filter it wraps.
type countingFilter struct {
	Filter
	c *callbackCounts
}

func (f *countingFilter) read(kind string, b []byte, end bool) {
	f.c.mu.Lock()
	if f.c.kinds == nil {
		f.c.kinds = map[string]int{}
	}
	f.c.kinds[kind]++
	f.c.reads[fmt.Sprintf("%s(%d,%v)", kind, len(b), end)]++
	f.c.mu.Unlock()
}

func (f *countingFilter) DownstreamData(b []byte, end bool) {
	f.read("DownstreamData", b, end)
	f.Filter.DownstreamData(b, end)
}

func (f *countingFilter) UpstreamData(b []byte, end bool) {
	f.read("UpstreamData", b, end)
	f.Filter.UpstreamData(b, end)
}

func (f *countingFilter) UpstreamConnected() {
	f.c.add("UpstreamConnected")
	f.Filter.UpstreamConnected()
}

// UpstreamConnectedAddr keeps the gateway's path to *host.Conn's UpstreamConnectedAddr.
func (f *countingFilter) UpstreamConnectedAddr(remote, local netip.AddrPort) {
	f.c.add("UpstreamConnectedAddr")
	f.Filter.(upstreamAddrReporter).UpstreamConnectedAddr(remote, local)
}

func (f *countingFilter) DownstreamClosed(remote bool) {
	f.c.add(fmt.Sprintf("DownstreamClosed(%v)", remote))
	f.Filter.DownstreamClosed(remote)
	f.c.mu.Lock()
	f.c.open--
	f.c.mu.Unlock()
}

func (f *countingFilter) UpstreamClosed() { f.c.add("UpstreamClosed"); f.Filter.UpstreamClosed() }
