//go:build !wasip1

package wasmtest

import (
	"context"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dicomgate/dicomgate/internal/filtertable"
	"github.com/dicomgate/dicomgate/internal/wasmbuild"
	"github.com/dicomgate/dicomgate/wasm/host"
	"github.com/stretchr/testify/require"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/experimental"
)

// mallocCounter counts calls of the guest's runtime.mallocgc.
type mallocCounter struct{ n atomic.Int64 }

func (m *mallocCounter) Before(context.Context, api.Module, api.FunctionDefinition, []uint64, experimental.StackIterator) {
	m.n.Add(1)
}
func (m *mallocCounter) After(context.Context, api.Module, api.FunctionDefinition, []uint64) {}
func (m *mallocCounter) Abort(context.Context, api.Module, api.FunctionDefinition, error)    {}

// A routed association allocates nothing on the guest's Go heap: in the
// guest every allocation costs far more than mallocgc itself (GC cycles at
// GOGC=15, span refills), and a filter that allocates per association grows
// the VM. Escape-analysis accidents (a pointer stored through a parameter
// moves a caller's local to the heap) show up here first. The count comes
// from a wazero function listener on runtime.mallocgc in the compiled
// module; configuring the policy allocates, which proves the probe works.
func TestWasmRoutedAssociationAllocatesNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the wasm module; skipped in -short mode")
	}
	const policy = `{"defaultAction": "deny", "rules": [{"name": "any-scp", "match": {"calledAETitles": ["ANY-SCP"]},
		"action": "route", "cluster": "pacs-a"}]}`
	wasmAssociationsAllocateNothing(t, policy, "pacs-a", 0)
}

// A denied association answered with an A-ASSOCIATE-RJ (routed to the
// rejector with a signed preamble) allocates nothing either.
func TestWasmRejectedAssociationAllocatesNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the wasm module; skipped in -short mode")
	}
	const policy = `{"defaultAction": "allow", "rejectCluster": "rejector", "rejectKey": "` + filtertable.RejectKey + `",
		"rules": [{"name": "any-scp", "match": {"calledAETitles": ["ANY-SCP"]}, "action": "deny", "respond": "reject"}]}`
	wasmAssociationsAllocateNothing(t, policy, "rejector", 56)
}

// wasmAssociationsAllocateNothing runs 250 echo associations through a
// plugin configured with policy, each of which must go to cluster with
// extra bytes put before the client's, and requires that the last 200
// did not call runtime.mallocgc in the guest.
func wasmAssociationsAllocateNothing(t *testing.T, policy, cluster string, extra int) {
	// The shipped module has no name section; this build of the same
	// source keeps it, so that the listener can find runtime.mallocgc.
	wasm, err := wasmbuild.DicomgateWithNames()
	require.NoError(t, err, "the filter built with its name section")
	counter := &mallocCounter{}
	attached := false
	factory := experimental.FunctionListenerFactoryFunc(func(def api.FunctionDefinition) experimental.FunctionListener {
		if strings.HasSuffix(def.DebugName(), "runtime.mallocgc") {
			attached = true
			return counter
		}
		return nil
	})
	ctx := experimental.WithFunctionListenerFactory(context.Background(), factory)
	// An Engine without a compilation cache: a module compiled with listeners must not share the
	// others' cache.
	engine, err := host.NewEngine(ctx, host.EngineConfig{})
	require.NoError(t, err)
	defer engine.Close(context.Background())
	p, err := engine.NewPlugin(ctx, wasm, host.PluginConfig{
		Name: "istio-ingress.dicomgate", RootID: "dicomgate", Configuration: []byte(policy), Workers: 1,
		Clock:  host.NewManualClock(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)),
		Logger: &levelLogger{lines: map[filtertable.Level][]string{}},
	})
	require.NoError(t, err)
	defer p.Close(context.Background())
	require.True(t, attached, "no runtime.mallocgc in the module: the probe cannot see allocations")
	require.NotZero(t, counter.n.Load(), "configuring a policy allocated nothing: the probe does not count")

	echo := captures(t)["echo_default"]
	rq := filtertable.FirstPDU(echo)
	rest := echo[len(rq):]
	associate := func(id uint64) *wasmTransport {
		tr := &wasmTransport{}
		info := host.ConnInfo{ID: id, Source: netip.MustParseAddrPort("10.1.2.3:40000"),
			Destination: netip.MustParseAddrPort("10.0.0.1:11112")}
		tr.conn = p.NewConn(info, host.TCPProxyConfig{Cluster: filtertable.DefaultCluster, MaxEarlyDataBytes: 2 << 20}, tr)
		tr.Data(rq, false)
		tr.Data(rest, false)
		tr.ClientClose()
		return tr
	}
	for i := uint64(1); i <= 50; i++ { // warm-up: the filter's reusable buffers reach their size
		associate(i)
	}
	before := counter.n.Load()
	for i := uint64(51); i <= 250; i++ {
		if tr := associate(i); tr.cluster != cluster || tr.closed || len(tr.forwarded) != extra+len(echo) {
			require.FailNowf(t, "association not routed", "association %d not routed: cluster %q closed %v forwarded %d", i, tr.cluster, tr.closed, len(tr.forwarded))
		}
	}
	require.Zero(t, counter.n.Load()-before, "200 associations to %s: calls of runtime.mallocgc in the guest", cluster)
}
