package validate

import (
	"strings"
	"testing"
	"time"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	networkrbac "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/rbac/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/types/known/structpb"
	extensions "istio.io/api/extensions/v1alpha1"
	istiowasm "istio.io/istio/pkg/wasm"
)

// The failure modes users will meet, shown on a real Envoy configured by
// istiod's generation. manifests/README.md (Troubleshooting) quotes the log
// lines these tests wait for.

// TestEnvoyWithoutEnvoyFilter: base without envoyfilter.yaml (an istiod or
// Envoy that dropped max_early_data_bytes behaves the same). tcp_proxy
// connects the VirtualService destination at once and keeps the client's
// bytes from the filter's decision: a routed association stalls until
// inspectTimeoutMs (5 s) and the filter closes it with an error naming the
// setting.
func TestEnvoyWithoutEnvoyFilter(t *testing.T) {
	var objs []*Object
	for _, o := range build(t, "base") {
		if o.Kind != "EnvoyFilter" {
			objs = append(objs, o)
		}
	}
	g := startGateway(t, objs, gatewayOpts{})
	defer dump(t, g)
	p := g.peers
	b := g.read(t)
	mark := p.orthanc.proc.mark()
	start := time.Now()
	r := g.echo(t, p.simpleTLS(), "TESTER", "PACS_A")
	took := time.Since(start)
	require.NotEqual(t, 0, r.code, "%s", r)
	require.GreaterOrEqual(t, took, 4*time.Second, "the client should stall until inspectTimeoutMs (5 s)")
	line, err := g.envoy.proc.waitFor(b.log, 10*time.Second, "no complete A-ASSOCIATE-RQ within inspectTimeoutMs 5000",
		"tcp_proxy only lets data through early when it has max_early_data_bytes set")
	require.NoError(t, err)
	t.Logf("Envoy: %s (client failed after %v)", line, took.Round(100*time.Millisecond))
	a := g.waitProm(t, b, denied("timeout"), 1)
	// The filter paused the connection before tcp_proxy ran, and tcp_proxy
	// without early data never delivered a byte: no backend was contacted.
	g.requireUpstream(t, b, a, nil)
	require.False(t, p.orthanc.sawCallingAE("TESTER", mark), "the association reached Orthanc")
}

// TestEnvoyWrongSHA256: the WasmPlugin still carries the manifests' zero
// sha256 placeholder (README step 3 skipped). The istio-agent's fetch
// refuses the image (digest mismatch) and, under FAIL_CLOSE, hands Envoy a
// deny-all network RBAC filter (stat prefix wasm-default-deny) in place of
// the module (pkg/wasm/convert.go MaybeConvertWasmExtensionConfig). Envoy
// accepts that: the port stays open, and every connection is closed at its
// first byte. The RBAC filter lets tcp_proxy start, so the VirtualService
// destination (Orthanc) sees a TCP connect, but no association; the module
// never loads.
func TestEnvoyWrongSHA256(t *testing.T) {
	g := startGateway(t, build(t, "base"), gatewayOpts{keepPlaceholderSHA: true})
	defer dump(t, g)
	p := g.peers
	res := g.served
	rbac := ecdsRBAC(t, res)
	require.NotNil(t, rbac, "ECDS does not carry the agent's RBAC fallback")
	require.Equal(t, "wasm-default-deny", rbac.GetStatPrefix())
	require.NotNil(t, rbac.GetRules(), "the fallback must deny (empty rules), not allow")

	// The agent's reason, from its own cache (the conversion logs it at
	// error level as "error in converting the wasm config to local: cannot
	// fetch Wasm module ...: <this>. applying deny RBAC filter").
	_, err := g.cluster.agentCache.Get(p.registry.ref, istiowasm.GetOptions{
		Checksum: strings.Repeat("0", 64), RequestTimeout: 10 * time.Second})
	require.ErrorContains(t, err, "which does not match: "+strings.Repeat("0", 64))
	t.Logf("istio-agent: %v", err)

	b := g.read(t)
	mark := p.orthanc.proc.mark()
	r := g.echo(t, p.simpleTLS(), "TESTER", "PACS_A")
	require.NotEqual(t, 0, r.code, "%s", r)
	t.Logf("%s", r)
	a := g.read(t)
	require.Equal(t, 1.0, statDelta(t, b, a, "wasm-default-deny.rbac.denied"))
	g.requireUpstream(t, b, a, map[string]float64{clusterOrthanc: 1})
	require.False(t, p.orthanc.sawCallingAE("TESTER", mark), "an association reached Orthanc")
	for k := range a.prom {
		require.False(t, strings.HasPrefix(k, "dicomgate_"), "the module loaded: %s", k)
	}
}

// ecdsRBAC returns the network RBAC filter ECDS carries in place of the
// Wasm module (nil when it carries something else).
func ecdsRBAC(t *testing.T, res map[resource.Type][]types.Resource) *networkrbac.RBAC {
	t.Helper()
	for _, ec := range res[resource.ExtensionConfigType] {
		var r networkrbac.RBAC
		if ec.(*core.TypedExtensionConfig).GetTypedConfig().UnmarshalTo(&r) == nil {
			return &r
		}
	}
	return nil
}

// TestEnvoyInvalidPluginConfig: a pluginConfig the policy validator refuses
// (a rule whose action is misspelled) on a gateway that had no dicomgate
// configuration before. The plugin logs the validation error and refuses to
// configure; Envoy rejects the ECDS resource (NACK) and, having no
// configuration for the listener's ECDS filter, closes every connection to
// 11112 at once: the client's TLS handshake ends with EOF, no backend is
// contacted. (On a gateway that had a valid configuration, Envoy keeps it:
// TestEnvoyImmediate/a_route_rule_is_refused.)
func TestEnvoyInvalidPluginConfig(t *testing.T) {
	objs := build(t, "base")
	for _, o := range objs {
		if o.Kind == "WasmPlugin" {
			wp := o.Istio.Spec.(*extensions.WasmPlugin)
			rule := wp.PluginConfig.Fields["rules"].GetListValue().Values[2].GetStructValue()
			require.Equal(t, "route-pacs-a", rule.Fields["name"].GetStringValue())
			rule.Fields["action"] = structpb.NewStringValue("reroute")
		}
	}
	g := startGateway(t, objs, gatewayOpts{expectRejected: true})
	defer dump(t, g)
	line, err := g.envoy.proc.waitFor(0, 20*time.Second, `dicomgate: configuration error: rules[2].action: "reroute" is not allowed`)
	require.NoError(t, err)
	t.Logf("Envoy: %s", line)
	g.xds.waitRejected(t, "Unable to create Wasm plugin istio-ingress.dicomgate~istio-translated-wasmplugin")
	b := g.read(t)
	r := g.echo(t, g.peers.simpleTLS(), "TESTER", "PACS_A")
	require.NotEqual(t, 0, r.code, "%s", r)
	require.Contains(t, r.out, "TLS error", "the connection should close before the TLS handshake completes")
	g.requireUpstream(t, b, g.read(t), nil)
}
