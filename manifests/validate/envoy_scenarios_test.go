package validate

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	cluster "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	networkwasm "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/wasm/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/structpb"
	extensions "istio.io/api/extensions/v1alpha1"
)

// Istio's cluster names for the three DICOM Services (base/services.yaml).
const (
	clusterOrthanc = "outbound|4242||orthanc.orthweb.svc.cluster.local"
	clusterPACSA   = "outbound|4242||pacs-a.orthweb.svc.cluster.local"
	clusterPACSB   = "outbound|4242||pacs-b.orthweb.svc.cluster.local"
)

var dicomClusters = []string{clusterOrthanc, clusterPACSA, clusterPACSB}

// peers are the backends, certificates and registry every gateway of the
// test binary shares (started once).
type peers struct {
	dir string
	pki *testPKI
	// orthanc stands in for Service orthanc (Korthweb's Orthanc:
	// DicomCheckCalledAet false, Orthanc's default); pacsA for pacs-a
	// (storescp, AE PACS_A, bit-preserving); pacsB for pacs-b (Orthanc with
	// DicomCheckCalledAet true: it refuses any called AE but ORTHANC, which
	// proves the rewrite).
	orthanc, pacsA, pacsB *backend
	registry              *wasmRegistry
}

var (
	peersMu  sync.Mutex
	thePeers *peers
	// workDir holds every log of the run; kept (and printed) when a test fails.
	workDir string
)

// setupPeers starts the shared peers on first use.
func setupPeers(t *testing.T) *peers {
	t.Helper()
	peersMu.Lock()
	defer peersMu.Unlock()
	if thePeers != nil {
		return thePeers
	}
	requirePeers(t)
	module, err := filterModule()
	require.NoError(t, err)
	dir, err := os.MkdirTemp("", "dicomgate-manifests-envoy-")
	require.NoError(t, err)
	workDir = dir
	p := &peers{dir: dir, pki: newTestPKI(t, dir)}
	// Orthanc takes a moment to start: both in parallel.
	var wg sync.WaitGroup
	var errA, errB error
	ports := []int{freePort(t), freePort(t), freePort(t), freePort(t)}
	wg.Add(2)
	go func() { defer wg.Done(); p.orthanc, errA = startOrthanc(dir, "orthanc", false, ports[0], ports[1]) }()
	go func() { defer wg.Done(); p.pacsB, errB = startOrthanc(dir, "pacs-b", true, ports[2], ports[3]) }()
	p.pacsA = startStoreSCP(t, dir, "pacs-a", "PACS_A")
	p.registry = startRegistry(t, module)
	wg.Wait()
	require.NoError(t, errA)
	require.NoError(t, errB)
	thePeers = p
	return p
}

// gateway is one Envoy configured by istiod's generation for a rendering.
type gateway struct {
	envoy     *envoy
	xds       *xdsServer
	peers     *peers
	cluster   *fakeCluster
	dicomPort int
	dir       string // logs and the served configuration (xds-N.json)
	version   int
	// served is the initial configuration (version 1).
	served map[resource.Type][]types.Resource
	// statName maps a cluster to the name its Envoy stats carry (istiod
	// sets alt_stat_name, e.g. "outbound|4242||pacs-a.orthweb.svc.cluster.local;").
	statName map[string]string
}

// gatewayOpts change what the test applies, as a user's edit would.
type gatewayOpts struct {
	// keepPlaceholderSHA leaves the manifests' zero sha256 (the image is
	// not pinned: README step 3 skipped).
	keepPlaceholderSHA bool
	// expectRejected: Envoy is expected to NACK the initial ECDS.
	expectRejected bool
}

// startGateway renders nothing itself: objs are a rendering. It runs
// istiod's generation, completes it with clusterProvides, serves it over
// ADS and starts Envoy.
func startGateway(t *testing.T, objs []*Object, o gatewayOpts) *gateway {
	t.Helper()
	bin := requireEnvoy(t)
	p := setupPeers(t)
	sha := p.registry.digest
	if o.keepPlaceholderSHA {
		sha = ""
	}
	pinImage(t, objs, p.registry.ref, sha)
	dir := filepath.Join(p.dir, strings.NewReplacer("/", "_", " ", "_").Replace(t.Name()))
	require.NoError(t, os.MkdirAll(dir, 0o755))
	fc := &fakeCluster{
		listenerPorts: map[uint32]int{11112: freePort(t), 443: freePort(t)},
		endpoints:     map[string]int{clusterOrthanc: p.orthanc.port, clusterPACSA: p.pacsA.port, clusterPACSB: p.pacsB.port},
		pki:           p.pki,
		agentCache:    newAgentCache(t, filepath.Join(dir, "wasm-cache"), p.registry.host),
	}
	g := &gateway{xds: startXDS(t), peers: p, cluster: fc, dicomPort: fc.listenerPorts[11112], dir: dir}
	g.served = g.push(t, objs)
	if !o.keepPlaceholderSHA {
		requireModuleServed(t, g.served, p.registry.module)
	}
	g.envoy = startEnvoy(t, bin, dir, g.xds)
	if !o.expectRejected {
		g.xds.waitAcked(t, "1", resource.ListenerType, resource.ClusterType, resource.ExtensionConfigType)
		require.Empty(t, g.xds.rejections(), "Envoy rejected part of istiod's generation")
	}
	require.NoError(t, waitListening(g.envoy.proc, g.dicomPort, 30*time.Second), "the 11112 listener")
	return g
}

// push generates istiod's configuration for objs and publishes it as the
// next snapshot version.
func (g *gateway) push(t *testing.T, objs []*Object) map[resource.Type][]types.Resource {
	t.Helper()
	res, agentSDS := clusterProvides(t, newIstiodGen(t, objs).generate(), g.cluster)
	g.statName = map[string]string{}
	for _, r := range res[resource.ClusterType] {
		c := r.(*cluster.Cluster)
		g.statName[c.GetName()] = c.GetName()
		if c.GetAltStatName() != "" {
			g.statName[c.GetName()] = c.GetAltStatName()
		}
	}
	g.version++
	g.xds.set(t, strconv.Itoa(g.version), res, agentSDS)
	var out strings.Builder
	for typ, rs := range res {
		for _, r := range rs {
			b, err := protojson.MarshalOptions{Multiline: true}.Marshal(r)
			require.NoError(t, err)
			fmt.Fprintf(&out, "# %s\n%s\n", typ, b)
		}
	}
	require.NoError(t, os.WriteFile(filepath.Join(g.dir, fmt.Sprintf("xds-%d.json", g.version)), []byte(out.String()), 0o644))
	return res
}

// state is a reading of Envoy's counters and Prometheus samples.
type state struct {
	stats, prom map[string]float64
	log         int // Envoy output mark
}

// read takes a reading now.
func (g *gateway) read(t *testing.T) state {
	t.Helper()
	return state{stats: g.envoy.counters(t), prom: g.envoy.prometheus(t), log: g.envoy.proc.mark()}
}

// delta returns after-before of a /stats counter; the counter must exist.
func statDelta(t *testing.T, before, after state, name string) float64 {
	t.Helper()
	a, ok := after.stats[name]
	require.True(t, ok, "Envoy has no stat %s", name)
	return a - before.stats[name]
}

// promDelta returns after-before of a Prometheus sample; it must exist
// after (a series first created by this step was 0 before).
func promDelta(t *testing.T, before, after state, key string) float64 {
	t.Helper()
	a, ok := after.prom[key]
	if !ok {
		var names []string
		for k := range after.prom {
			if strings.HasPrefix(k, "dicomgate_") {
				names = append(names, k)
			}
		}
		require.FailNow(t, fmt.Sprintf("no Prometheus series %s in /stats/prometheus", key), "dicomgate series: %v", names)
	}
	return a - before.prom[key]
}

// requireUpstream checks the upstream connection attempts per DICOM
// cluster since before (Envoy's cluster.<name>.upstream_cx_total).
func (g *gateway) requireUpstream(t *testing.T, before, after state, want map[string]float64) {
	t.Helper()
	for _, c := range dicomClusters {
		require.Equal(t, want[c], statDelta(t, before, after, g.upstreamStat(c)), "upstream connections to %s", c)
	}
}

// upstreamStat is the connection-attempt counter of a cluster.
func (g *gateway) upstreamStat(c string) string {
	return "cluster." + g.statName[c] + ".upstream_cx_total"
}

// echo runs echoscu through the gateway.
func (g *gateway) echo(t *testing.T, tlsArgs []string, calling, called string) toolResult {
	t.Helper()
	args := append([]string{"-v"}, tlsArgs...)
	args = append(args, "-aet", calling, "-aec", called, "127.0.0.1", strconv.Itoa(g.dicomPort))
	return runTool("echoscu", args...)
}

// simpleTLS are dcmtk's options against a SIMPLE server: TLS without a
// client certificate, verifying the gateway's certificate with the test CA.
func (p *peers) simpleTLS() []string { return []string{"+tla", "+cf", p.pki.CAFile} }

// clientTLS presents a client certificate (MUTUAL).
func (p *peers) clientTLS(cert, key string) []string {
	return []string{"+tls", key, cert, "+cf", p.pki.CAFile}
}

// auditLine waits for the filter's audit line of an association (Envoy's
// wasm info log) with the calling and called AE and returns its JSON.
func (g *gateway) auditLine(t *testing.T, since state, calling, called string) string {
	t.Helper()
	l, err := g.envoy.proc.waitFor(since.log, 10*time.Second, `"calling_ae":"`+calling+`"`, `"called_ae":"`+called+`"`)
	require.NoError(t, err)
	return l
}

// waitProm waits until the Prometheus sample key has grown by want since
// before and returns that reading (metrics are
// flushed when the connection closes, a moment after the client exits).
func (g *gateway) waitProm(t *testing.T, before state, key string, want float64) state {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		s := g.read(t)
		if v, ok := s.prom[key]; ok && v-before.prom[key] == want {
			return s
		}
		if time.Now().After(deadline) {
			require.Equal(t, want, promDelta(t, before, s, key), "%s", key)
			return s
		}
		time.Sleep(50 * time.Millisecond)
	}
}

var auditField = regexp.MustCompile(`"(\w+)":("[^"]*"|\w+)`)

// fields returns the audit line's top-level string/number/bool fields.
func fields(line string) map[string]string {
	m := map[string]string{}
	for _, f := range auditField.FindAllStringSubmatch(line, -1) {
		if _, dup := m[f[1]]; !dup {
			m[f[1]] = strings.Trim(f[2], `"`)
		}
	}
	return m
}

// decision is the key of dicomgate_decisions_total{action, rule}.
func decision(action, rule string) string {
	return sample("dicomgate_decisions_total", "action", action, "rule", rule)
}

// denied is the key of dicomgate_denied_total{reason}.
func denied(reason string) string { return sample("dicomgate_denied_total", "reason", reason) }

// dump logs the tail of Envoy's output when the test failed (the whole run
// directory is kept then, and its path printed).
func dump(t *testing.T, g *gateway) {
	if t.Failed() {
		t.Logf("envoy output (last lines):\n%s", tail(g.envoy.proc.output(), 60))
		fmt.Fprintln(os.Stderr, "logs kept in", workDir)
	}
}

// addRouteRule adds a route rule (PACS_A to pacs-a) in front of the
// WasmPlugin's rules, as a user editing the immediate overlay might.
func addRouteRule(t *testing.T, objs []*Object) {
	t.Helper()
	for _, o := range objs {
		if o.Kind != "WasmPlugin" {
			continue
		}
		wp := o.Istio.Spec.(*extensions.WasmPlugin)
		rules := wp.PluginConfig.Fields["rules"].GetListValue()
		require.NotNil(t, rules, "pluginConfig.rules")
		rule, err := structpb.NewValue(map[string]any{
			"name": "route-pacs-a", "match": map[string]any{"calledAETitles": []any{"PACS_A"}}, "action": "route",
			"service": map[string]any{"host": "pacs-a.orthweb.svc.cluster.local", "port": 4242},
		})
		require.NoError(t, err)
		rules.Values = append([]*structpb.Value{rule}, rules.Values...)
		return
	}
	require.FailNow(t, "no WasmPlugin in the rendering")
}

// requireModuleServed checks that ECDS carries the Wasm filter loading,
// from a local file, exactly the module pushed to the registry: the
// istio-agent's fetch succeeded and Envoy runs build/dicomgate.wasm.
func requireModuleServed(t *testing.T, res map[resource.Type][]types.Resource, module []byte) {
	t.Helper()
	exts := res[resource.ExtensionConfigType]
	require.Len(t, exts, 1, "ECDS resources")
	var w networkwasm.Wasm
	require.NoError(t, exts[0].(*core.TypedExtensionConfig).GetTypedConfig().UnmarshalTo(&w),
		"ECDS does not carry the Wasm filter (the istio-agent fell back to its RBAC filter?)")
	f := w.GetConfig().GetVmConfig().GetCode().GetLocal().GetFilename()
	require.NotEmpty(t, f, "the Wasm filter does not load a local file")
	b, err := os.ReadFile(f)
	require.NoError(t, err)
	require.True(t, bytes.Equal(module, b), "the agent's module file differs from the pushed module")
}
