package validate

import (
	cluster "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	listener "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	route "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	"google.golang.org/protobuf/types/known/anypb"
	"istio.io/istio/pilot/pkg/features"
	"istio.io/istio/pilot/pkg/util/protoconv"
)

// gatewayXDS is the ingress gateway's configuration exactly as istiod
// generates it: what its LDS, CDS, RDS and ECDS responses carry.
type gatewayXDS struct {
	Listeners []*listener.Listener
	Clusters  []*cluster.Cluster
	Routes    []*route.RouteConfiguration
	// Extensions are the ECDS resources (core.v3.TypedExtensionConfig in an
	// Any, as istiod's EcdsGenerator sends them) for every filter a listener
	// takes from config_discovery.
	Extensions []*anypb.Any
}

// generate runs istiod's LDS, CDS, RDS and ECDS generators for the gateway.
// ECDS is asked for exactly the names the listeners subscribe to, as Envoy
// does (pilot/pkg/xds/ecds.go EcdsGenerator.Generate ->
// BuildExtensionConfiguration, no image pull secrets).
//
// istiod runs as installed with PILOT_ENABLE_METADATA_EXCHANGE=false and
// PILOT_ENABLE_ALPN_FILTER=false (istiod environment settings): by default
// it adds filters only the istio-proxy build of Envoy implements, which
// build/envoy (upstream Envoy) rejects with "Didn't find a registered
// implementation for 'istio.metadata_exchange'" / "'istio.alpn'":
// istio.metadata_exchange on every cluster and io.istio.http.peer_metadata
// on HTTP listeners (peer identity for Istio's own telemetry), and
// istio.alpn on HTTP listeners (ALPN override for Istio mTLS to HTTP
// backends). None is on the DICOM path; nothing else is changed.
func (g *istiodGen) generate() *gatewayXDS {
	defer func(mx, alpn bool) { features.MetadataExchange, features.ALPNFilter = mx, alpn }(features.MetadataExchange, features.ALPNFilter)
	features.MetadataExchange, features.ALPNFilter = false, false
	x := &gatewayXDS{
		Listeners: g.cg.Listeners(g.proxy),
		Clusters:  g.cg.Clusters(g.proxy),
	}
	x.Routes = g.cg.RoutesFromListeners(g.proxy, x.Listeners)
	for _, ec := range g.cg.ConfigGen.BuildExtensionConfiguration(g.proxy, g.cg.PushContext(), ecdsNames(x.Listeners), nil) {
		x.Extensions = append(x.Extensions, protoconv.MessageToAny(ec))
	}
	return x
}

// ecdsNames returns the names of the network filters the listeners take
// from ECDS (filters with config_discovery instead of typed_config).
func ecdsNames(ls []*listener.Listener) []string {
	var names []string
	for _, l := range ls {
		for _, fc := range l.GetFilterChains() {
			for _, f := range fc.GetFilters() {
				if f.GetConfigDiscovery() != nil {
					names = append(names, f.GetName())
				}
			}
		}
	}
	return names
}
