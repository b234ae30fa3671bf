package host

import (
	"context"
	"errors"
	"testing"

	"github.com/stretchr/testify/require"
)

// runMiscProbe loads the test filter on eng and runs its "misc" probe once: it reads shared data key
// tf.k, sets it to "v1" and reads it back (testdata/testfilter probeMisc).
func runMiscProbe(t *testing.T, eng *Engine) *captureLogger {
	t.Helper()
	log := &captureLogger{}
	p, err := eng.NewPlugin(context.Background(), testFilter(t, ""), PluginConfig{
		Name: "ns.testfilter", RootID: "testfilter", Configuration: []byte(`{"probe":"misc"}`), Workers: 1,
		Clock: newFakeClock(), Logger: log,
	})
	require.NoError(t, err, "log:\n%s", log.dump())
	t.Cleanup(func() { _ = p.Close(context.Background()) })
	c := p.NewConn(ConnInfo{ID: 1}, TCPProxyConfig{Cluster: "default", MaxEarlyDataBytes: 10}, &recTransport{})
	c.DownstreamData([]byte("x"), false)
	return log
}

const (
	sharedMissing = "err=error status returned by host: not found len=0"
	sharedFound   = "err=<nil> len=2" // "v1", set by the first plugin
)

// Shared data is the Engine's, like Envoy's is the process's: a second plugin (same vm_id) on the
// same Engine reads what the first one set; a plugin on another Engine does not.
func TestEngine_SharedDataIsPerEngine(t *testing.T) {
	eng := testEngine(t)
	require.Equal(t, sharedMissing, runMiscProbe(t, eng).probe(t, "shared_get_missing"))
	require.Equal(t, sharedFound, runMiscProbe(t, eng).probe(t, "shared_get_missing"))
	require.Equal(t, sharedMissing, runMiscProbe(t, testEngine(t)).probe(t, "shared_get_missing"))
}

// Engine.Close closes the plugins still open (their VMs count as failed) and refuses new ones.
func TestEngine_CloseClosesPluginsAndRefusesNewOnes(t *testing.T) {
	eng := testEngine(t)
	p, err := eng.NewPlugin(context.Background(), testFilter(t, ""), PluginConfig{Name: "x", Workers: 2, Logger: &captureLogger{}})
	require.NoError(t, err)
	require.Equal(t, 0, p.FailedVMs())
	require.NoError(t, eng.Close(context.Background()))
	require.Equal(t, 2, p.FailedVMs(), "a plugin of a closed Engine still has live VMs")
	_, err = eng.NewPlugin(context.Background(), testFilter(t, ""), PluginConfig{Name: "y", Workers: 1, Logger: &captureLogger{}})
	require.True(t, errors.Is(err, ErrEngineClosed), "NewPlugin after Close: %v", err)
}
