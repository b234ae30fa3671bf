package main

import (
	"strings"
	"testing"
	"time"

	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/encoding/protojson"
	"sigs.k8s.io/yaml"

	// The typed configs the bootstrap carries must be registered for protojson to resolve their Any types.
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/tcp_proxy/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/wasm/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	_ "google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/dicomgate/dicomgate/sdk/policy"
)

// The program's pieces without Envoy: the bootstrap (decoded with Envoy's own API types), the policy, the log and
// /proc parsers (the DICOM client is internal/scu, tested there). Nothing here is timed.

func TestBootstrapDecodesAsEnvoyConfig(t *testing.T) {
	for _, uri := range []string{"spiffe://dicomgate.demo/AB-SCU", ""} {
		pol, err := benchPolicy(uri)
		require.NoError(t, err)
		_, diags, err := policy.Load([]byte(pol))
		require.NoError(t, err, "benchmark policy: %v", diags)
		require.Equal(t, uri != "", strings.Contains(pol, "peerURISANs"))
	}
	pol, err := benchPolicy("spiffe://dicomgate.demo/AB-SCU")
	require.NoError(t, err)
	for _, withFilter := range []bool{true, false} {
		// The plain-only case also checks server-only TLS (-mtls=false): no client CA, no client certificate required.
		ca := "/ca"
		if !withFilter {
			ca = ""
		}
		before := ""
		if withFilter {
			before = "/x/before.wasm"
		}
		y, err := renderBootstrap(bootstrapValues{AdminPort: 1, FilterPort: 2, PlainPort: 3, BackendPort: 4, UnroutedPort: 5,
			BeforeWasmFile: before, BeforePort: 10, Filter: withFilter, Early: withFilter, EarlyPort: 6, NoopListeners: noops(withFilter), NoopWasmFile: "/x/noop.wasm", WasmFile: "/x/dicomgate.wasm", PolicyJSON: pol, EarlyDataBytes: 1 << 20,
			CertFile: "/c", KeyFile: "/k", ClientCAFile: ca})
		require.NoError(t, err)
		js, err := yaml.YAMLToJSON(y)
		require.NoError(t, err)
		var b bootstrapv3.Bootstrap
		require.NoError(t, protojson.Unmarshal(js, &b))
		require.NoError(t, b.ValidateAll())
		ls := b.GetStaticResources().GetListeners()
		if withFilter {
			require.Len(t, ls, 8)
			require.Equal(t, "filter", ls[0].GetName())
			require.Equal(t, "envoy.filters.network.wasm", ls[0].GetFilterChains()[0].GetFilters()[0].GetName())
			require.Contains(t, string(js), `"name":"dicomgate","root_id":"dicomgate"`, "the filter's plugin is named as in the manifests")
			require.Equal(t, "before", ls[1].GetName())
			require.Contains(t, string(js), `"filename":"/x/before.wasm"`)
			require.Contains(t, string(js), `"name":"dicomgate-before"`)
			require.Equal(t, "early", ls[2].GetName())
			require.Len(t, ls[2].GetFilterChains()[0].GetFilters(), 1, "the early listener has tcp_proxy only")
			require.Equal(t, 4, strings.Count(string(js), `"max_early_data_bytes":1048576`), "filter, before, early and held only")
			require.Equal(t, "noop", ls[3].GetName())
			require.Equal(t, "envoy.filters.network.wasm", ls[3].GetFilterChains()[0].GetFilters()[0].GetName())
			require.Contains(t, string(js), `"filename":"/x/noop.wasm"`)
			require.Equal(t, "calls", ls[4].GetName())
			require.Contains(t, string(js), `"value":"20"`)
			require.Equal(t, "held", ls[5].GetName())
			require.Contains(t, string(js), `"value":"pause"`)
			require.Equal(t, "watnoop", ls[6].GetName())
			require.Contains(t, string(js), `"filename":"/x/watnoop.wasm"`)
		} else {
			require.Len(t, ls, 1)
			require.NotContains(t, string(js), "max_early_data_bytes")
		}
		require.Equal(t, "plain", ls[len(ls)-1].GetName())
		require.Equal(t, len(ls)*map[bool]int{true: 1, false: 0}[withFilter], strings.Count(string(js), `"require_client_certificate":true`))
		require.Equal(t, withFilter, strings.Contains(string(js), "trusted_ca"))
		require.Len(t, ls[len(ls)-1].GetFilterChains()[0].GetFilters(), 1, "the plain listener has tcp_proxy only")
	}
}

func noops(on bool) []noopListener {
	if !on {
		return nil
	}
	return []noopListener{{Name: "noop", Port: 7}, {Name: "calls", Port: 8, Config: "20"}, {Name: "held", Port: 9, Config: "pause", EarlyData: true}, {Name: "watnoop", Port: 11, WasmFile: "/x/watnoop.wasm"}}
}

// A log of a real 2-worker start (Envoy 1.40.0, wasm:debug), shortened.
const startLog = `[2026-12-06 04:39:03.439304][20457][debug][wasm] Base Wasm created 1 now active
[2026-12-06 04:39:10.419914][20457][debug][wasm] Thread-Local Wasm created 2 now active
[2026-12-06 04:39:10.425588][20457][info][wasm] wasm log dicomgate: dicomgate: configured: 0 rule(s), mode enforce
[2026-12-06 04:39:10.431283][20457][debug][wasm] Thread-Local Wasm created 2 now active
[2026-12-06 04:39:10.436242][20457][info][wasm] wasm log dicomgate: dicomgate: configured: 0 rule(s), mode enforce
[2026-12-06 04:39:10.437190][20457][warning][main] There is no configured limit
[2026-12-06 04:39:10.454555][20550][debug][wasm] Thread-Local Wasm created 3 now active
[2026-12-06 04:39:10.466839][20550][info][wasm] wasm log dicomgate: dicomgate: configured: 0 rule(s), mode enforce
[2026-12-06 04:39:10.469402][20552][debug][wasm] Thread-Local Wasm created 4 now active
[2026-12-06 04:39:10.483622][20552][info][wasm] wasm log dicomgate: dicomgate: configured: 0 rule(s), mode enforce
`

func TestColdStartFromLog(t *testing.T) {
	cs, err := parseColdStart(strings.NewReader(startLog))
	require.NoError(t, err)
	require.Equal(t, 20457, cs.BaseThread)
	require.Len(t, cs.Configured, 4)
	started := time.Date(2026, 12, 6, 4, 39, 3, 0, time.Local)

	var res startResult
	require.ErrorContains(t, res.fillColdStart(cs, started, 3), "2 of 3 workers configured")
	require.NoError(t, res.fillColdStart(cs, started, 2))
	require.Equal(t, 6986284*time.Microsecond, res.compile) // 03.439304 -> 10.425588
	require.Equal(t, []time.Duration{12284 * time.Microsecond, 14220 * time.Microsecond}, res.perWorker)
	require.Equal(t, 7483622*time.Microsecond, res.lastWorker)
}

func TestParseStats(t *testing.T) {
	m := parseStats([]byte("tcp.plain.downstream_cx_total: 12\nwasmcustom.action=.=route;.;rule=.=bench;.;dicomgate_decisions_total: 3\nserver.initialization_time_ms: P0(nan,1.0)\n"))
	require.Equal(t, map[string]int64{"tcp.plain.downstream_cx_total": 12, statRouted: 3}, m)
}

func TestPercentiles(t *testing.T) {
	xs := make([]float64, 100)
	for i := range xs {
		xs[i] = float64(100 - i) // 100..1, unsorted
	}
	require.Equal(t, 50.0, pct(xs, 50))
	require.Equal(t, 99.0, pct(xs, 99))
	require.Equal(t, 100.0, pct(xs, 100))
	require.Equal(t, 2.5, median([]float64{4, 1, 3, 2}))
}

func TestParsePerfDSO(t *testing.T) {
	out := `# Samples: 2K of event 'cpu-clock:pppH'
#
# Overhead  Shared Object
# ........  .................
#
    78.32%  envoy
    14.52%  [kernel.kallsyms]
     2.00%  [JIT] tid 31918
     1.54%  [JIT] tid 31920
     3.37%  libc.so.6
     0.25%  [vdso]
`
	got, err := parsePerfDSO([]byte(out))
	require.NoError(t, err)
	require.Len(t, got, 5)
	require.Equal(t, "envoy", got[0].dso)
	require.InDelta(t, 0.7832, got[0].share, 1e-9)
	for _, s := range got {
		if s.dso == "[JIT]" {
			require.InDelta(t, 0.0354, s.share, 1e-9, "JIT lines of all threads are summed")
		}
	}
	_, err = parsePerfDSO([]byte("# nothing\n"))
	require.ErrorContains(t, err, "no samples")
}
