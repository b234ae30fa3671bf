package host_test

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/dicomgate/dicomgate/internal/guestprof"
	"github.com/dicomgate/dicomgate/internal/wasmbuild"
	"github.com/dicomgate/dicomgate/wasm/host"
	"github.com/stretchr/testify/require"
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
	prof := guestprof.New()
	ctx := prof.Context(context.Background())
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
	prof.Reset()
	const n = 2000
	for i := 0; i < n; i++ {
		associate(p, tr, uint64(i+2000), rq, rest, 1)
		require.True(t, tr.routed(len(rq)+len(rest)), "association not routed: %s", tr.describe())
	}
	prof.Report(t.Logf, n)
}
