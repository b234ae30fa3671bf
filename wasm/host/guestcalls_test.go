package host_test

import (
	"context"
	"os"
	"sort"
	"testing"
	"time"

	"github.com/dicomgate/dicomgate/internal/wasmbuild"
	"github.com/dicomgate/dicomgate/wasm/host"
	"github.com/stretchr/testify/require"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/experimental"
)

// TestGuestCallCounts is a profiling tool, not a check: with DICOMGATE_GUEST_CALLS=1 it runs
// routed associations of the real filter (like BenchmarkWasmAssociation) with a wazero function
// listener on every guest function and host import, and logs per association how often each is
// called and its inclusive time. The counts are exact; the times include the listener's own cost
// (~0.1 µs per call), so compare them only with each other. A CPU profile of the host process
// cannot see inside the guest (it is runtime._ExternalCode there).
//
//	DICOMGATE_GUEST_CALLS=1 go test -run TestGuestCallCounts -v ./wasm/host/
func TestGuestCallCounts(t *testing.T) {
	if os.Getenv("DICOMGATE_GUEST_CALLS") == "" {
		t.Skip("profiling tool; set DICOMGATE_GUEST_CALLS=1 to run it")
	}
	stats := map[string]*callStat{}
	factory := experimental.FunctionListenerFactoryFunc(func(def api.FunctionDefinition) experimental.FunctionListener {
		s := &callStat{name: def.DebugName()}
		stats[s.name] = s
		return s
	})
	ctx := experimental.WithFunctionListenerFactory(context.Background(), factory)
	wasm, err := wasmbuild.DicomgateWithNames() // the shipped module has no function names
	require.NoError(t, err)
	// An Engine without a compilation cache: a module compiled with listeners is not cached with
	// the others.
	eng, err := host.NewEngine(ctx, host.EngineConfig{})
	require.NoError(t, err)
	defer eng.Close(context.Background())
	p, err := eng.NewPlugin(ctx, wasm, host.PluginConfig{
		Name: "istio-ingress.dicomgate", RootID: "dicomgate", Configuration: []byte(routePolicy), Workers: 1,
		Clock: &benchClock{now: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}, Logger: &countLogger{},
	})
	require.NoError(t, err)
	defer p.Close(context.Background())
	rq, rest := echoCapture(t)
	tr := &syncTransport{}
	for i := 0; i < 1000; i++ { // warm-up
		associate(p, tr, uint64(i+1), rq, rest, 1)
	}
	for _, s := range stats {
		s.calls, s.incl = 0, 0
	}
	const n = 2000
	for i := 0; i < n; i++ {
		associate(p, tr, uint64(i+2000), rq, rest, 1)
		require.True(t, tr.routed(len(rq)+len(rest)), "association not routed: %s", tr.describe())
	}
	var list []*callStat
	total := 0
	for _, s := range stats {
		if s.calls > 0 {
			list = append(list, s)
			total += s.calls
		}
	}
	sort.Slice(list, func(i, j int) bool {
		if list[i].calls != list[j].calls {
			return list[i].calls > list[j].calls
		}
		return list[i].incl > list[j].incl
	})
	t.Logf("%.1f function calls per association", float64(total)/n)
	for _, s := range list {
		t.Logf("%7.1f calls %9.0f ns incl.  %s", float64(s.calls)/n, float64(s.incl.Nanoseconds())/n, s.name)
	}
}

// callStat counts one function's calls and sums their inclusive time.
type callStat struct {
	name  string
	calls int
	incl  time.Duration
	start []time.Time // entry times of the active (possibly recursive) calls
}

func (s *callStat) Before(context.Context, api.Module, api.FunctionDefinition, []uint64, experimental.StackIterator) {
	s.calls++
	s.start = append(s.start, time.Now())
}

func (s *callStat) After(context.Context, api.Module, api.FunctionDefinition, []uint64) {
	if n := len(s.start) - 1; n >= 0 {
		s.incl += time.Since(s.start[n])
		s.start = s.start[:n]
	}
}

func (s *callStat) Abort(context.Context, api.Module, api.FunctionDefinition, error) {
	if n := len(s.start) - 1; n >= 0 {
		s.start = s.start[:n]
	}
}
