package validate

import (
	"fmt"
	"os"
	"strings"
	"testing"

	listener "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	tcpproxy "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/tcp_proxy/v3"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"
	networking "istio.io/api/networking/v1alpha3"
	"istio.io/istio/pilot/pkg/config/kube/extensions"
	"istio.io/istio/pilot/pkg/model"
	"istio.io/istio/pilot/pkg/networking/core"
	"istio.io/istio/pkg/config"
	"istio.io/istio/pkg/config/host"
	"istio.io/istio/pkg/config/protocol"
	istiolog "istio.io/istio/pkg/log"
)

// istiodGen is istiod's own config generation (pilot/pkg/networking/core
// ConfigGeneratorImpl, the code that answers the gateway's LDS/CDS/RDS/ECDS)
// over the rendered manifests, for an ingress gateway pod labelled
// istio=ingressgateway in namespace istio-ingress.
type istiodGen struct {
	cg    *core.ConfigGenTest
	proxy *model.Proxy
}

// newIstiodGen feeds the rendered objects to istiod's generator: Istio
// configs into its config store (WasmPlugins through the TrafficExtension
// controller istiod wires in), Services into its service registry.
func newIstiodGen(t *testing.T, objs []*Object) *istiodGen {
	t.Helper()
	var cfgs []config.Config
	var svcs []*model.Service
	for _, o := range objs {
		if o.Istio != nil {
			cfgs = append(cfgs, *o.Istio)
			continue
		}
		s := o.Service
		ms := &model.Service{
			Hostname:       host.Name(s.Name + "." + s.Namespace + ".svc." + DomainSuffix),
			DefaultAddress: "10.96.0." + string(rune('1'+len(svcs))),
			Resolution:     model.ClientSideLB,
			Attributes:     model.ServiceAttributes{Name: s.Name, Namespace: s.Namespace},
		}
		for _, p := range s.Spec.Ports {
			ms.Ports = append(ms.Ports, &model.Port{Name: p.Name, Port: int(p.Port), Protocol: protocol.Parse(strings.SplitN(p.Name, "-", 2)[0])})
		}
		svcs = append(svcs, ms)
	}
	cg := core.NewConfigGenTest(t, core.TestOptions{
		Configs:  cfgs,
		Services: svcs,
		// As istiod's bootstrap (configcontroller.go): WasmPlugins reach the
		// listener builder as TrafficExtensions through this controller.
		CreateConfigStore: func(c model.ConfigStoreController) model.ConfigStoreController {
			return extensions.NewController(c, nil, nil)
		},
	})
	labels := map[string]string{"istio": "ingressgateway"}
	proxy := cg.SetupProxy(&model.Proxy{
		Type:            model.Router,
		ID:              gatewayPodID,
		ConfigNamespace: "istio-ingress",
		Labels:          labels,
		Metadata:        &model.NodeMetadata{Namespace: "istio-ingress", Labels: labels, IstioVersion: gatewayIstioVersion},
	})
	return &istiodGen{cg: cg, proxy: proxy}
}

// gatewayPodID and gatewayIstioVersion describe the gateway proxy istiod
// generates for (and the node the real Envoy announces itself as).
const (
	gatewayPodID        = "istio-ingressgateway-0.istio-ingress"
	gatewayIstioVersion = "1.28.0"
)

// gatewayListeners returns istiod's listeners for the gateway and the names
// of the clusters it pushes.
func gatewayListeners(t *testing.T, objs []*Object) ([]*listener.Listener, map[string]bool) {
	t.Helper()
	g := newIstiodGen(t, objs)
	clusters := map[string]bool{}
	for _, c := range g.cg.Clusters(g.proxy) {
		clusters[c.GetName()] = true
	}
	return g.cg.Listeners(g.proxy), clusters
}

func findListener(ls []*listener.Listener, port uint32) *listener.Listener {
	for _, l := range ls {
		if l.GetAddress().GetSocketAddress().GetPortValue() == port {
			return l
		}
	}
	return nil
}

// TestIstiodGeneratesTheIntendedGatewayConfig checks, in the Envoy config
// istiod would push to the gateway: the dicomgate Wasm filter sits on the
// 11112 chain before tcp_proxy (and not on 443), tcp_proxy names one cluster
// (no weighted_clusters), the EnvoyFilter MERGE put max_early_data_bytes into
// it (absent in the immediate overlay), and every cluster a rule routes to is
// pushed to the gateway.
func TestIstiodGeneratesTheIntendedGatewayConfig(t *testing.T) {
	for _, dir := range []string{"base", "overlays/immediate", "overlays/mutual-tls"} {
		t.Run(dir, func(t *testing.T) {
			objs := build(t, dir)
			d, errs := CrossCheck(objs)
			require.Empty(t, errs)
			ls, clusters := gatewayListeners(t, objs)
			l := findListener(ls, 11112)
			require.NotNil(t, l, "no listener on 11112 among %d listeners", len(ls))
			require.Len(t, l.GetFilterChains(), 1, "filter chains of listener 11112")
			fc := l.GetFilterChains()[0]
			wasmAt, tcpAt := -1, -1
			var names []string
			for i, f := range fc.GetFilters() {
				names = append(names, f.GetName())
				switch {
				// Released Istio names it extensions.istio.io/wasmplugin/NS.NAME; this
				// istiod translates WasmPlugins into TrafficExtensions first
				// (extensions.istio.io/trafficextension/NS.NAME~istio-translated-wasmplugin).
				case strings.HasPrefix(f.GetName(), "extensions.istio.io/") && strings.Contains(f.GetName(), "/istio-ingress.dicomgate"):
					wasmAt = i
					require.NotNil(t, f.GetConfigDiscovery(), "the Wasm filter is not delivered through ECDS config discovery")
				case f.GetName() == "envoy.filters.network.tcp_proxy":
					tcpAt = i
				}
			}
			require.True(t, wasmAt >= 0 && tcpAt >= 0 && wasmAt < tcpAt, "filters on 11112 = %v: want the dicomgate Wasm filter before tcp_proxy", names)
			var tp tcpproxy.TcpProxy
			require.NoError(t, fc.GetFilters()[tcpAt].GetTypedConfig().UnmarshalTo(&tp))
			require.True(t, tp.GetWeightedClusters() == nil && tp.GetCluster() == "outbound|4242||orthanc.orthweb.svc.cluster.local",
				"tcp_proxy route = %v, want the single cluster outbound|4242||orthanc.orthweb.svc.cluster.local", tp.GetClusterSpecifier())
			want := d.EarlyDataBytes
			got := tp.GetMaxEarlyDataBytes()
			if want != 0 {
				require.NotNil(t, got, "tcp_proxy max_early_data_bytes, want %d", want)
			}
			require.Equal(t, want, got.GetValue(), "tcp_proxy max_early_data_bytes = %v", got)
			https := findListener(ls, 443)
			require.NotNil(t, https, "no HTTPS listener on 443")
			var leaked []string
			for _, fc := range https.GetFilterChains() {
				for _, f := range fc.GetFilters() {
					if strings.Contains(f.GetName(), "wasmplugin") {
						leaked = append(leaked, f.GetName())
					}
				}
			}
			require.Empty(t, leaked, "the dicomgate plugin leaked onto the 443 chain")
			var notPushed []string
			for _, c := range d.Clusters {
				if !clusters[c] {
					notPushed = append(notPushed, c)
				}
			}
			require.Empty(t, notPushed, "rule clusters not pushed to the gateway (would be NoClusterFound)")
		})
	}
}

// The trap the VirtualService comment warns about, shown in istiod's own
// output: two weighted destinations turn tcp_proxy's `cluster` into
// `weighted_clusters`, which Envoy's tcp_proxy prefers over the filter-state
// cluster dicomgate sets (tcp_proxy.cc Config::getRegularRouteFromEntries).
func TestWeightedDestinationsBecomeWeightedClusters(t *testing.T) {
	objs := build(t, "base")
	for _, o := range objs {
		if o.Kind == "VirtualService" && o.Meta.Name == "dicom" {
			vs := o.Istio.Spec.(*networking.VirtualService)
			r := vs.Tcp[0]
			second := proto.Clone(r.Route[0].Destination).(*networking.Destination)
			second.Host = "pacs-a.orthweb.svc.cluster.local"
			r.Route[0].Weight = 50
			r.Route = append(r.Route, &networking.RouteDestination{Destination: second, Weight: 50})
		}
	}
	ls, _ := gatewayListeners(t, objs)
	l := findListener(ls, 11112)
	require.True(t, l != nil && len(l.GetFilterChains()) == 1, "no single-chain listener on 11112")
	for _, f := range l.GetFilterChains()[0].GetFilters() {
		if f.GetName() != "envoy.filters.network.tcp_proxy" {
			continue
		}
		var tp tcpproxy.TcpProxy
		require.NoError(t, f.GetTypedConfig().UnmarshalTo(&tp))
		require.NotNil(t, tp.GetWeightedClusters(), "tcp_proxy route = %v; expected weighted_clusters", tp.GetClusterSpecifier())
		return
	}
	require.FailNow(t, "no tcp_proxy on 11112")
}

// TestMain silences istiod's informational logging (krt sync chatter) and,
// after the run, stops every peer process the real-Envoy tests started; their
// logs are kept (and the directory printed) when a test failed.
func TestMain(m *testing.M) {
	for _, s := range istiolog.Scopes() {
		s.SetOutputLevel(istiolog.NoneLevel)
	}
	code := m.Run()
	stopAllProcs()
	if workDir != "" {
		if code != 0 {
			fmt.Fprintln(os.Stderr, "real-Envoy test logs kept in", workDir)
		} else {
			_ = os.RemoveAll(workDir)
		}
	}
	os.Exit(code)
}
