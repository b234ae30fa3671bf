package e2e

import (
	"fmt"
	"testing"

	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	tcpproxyv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/tcp_proxy/v3"
	wasmfilterv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/wasm/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/wrapperspb"
	"sigs.k8s.io/yaml"

	"github.com/dicomgate/dicomgate/sdk/policy"
	"github.com/stretchr/testify/require"
)

// parsedBootstrap is a rendered bootstrap decoded with Envoy's own API types (go-control-plane/envoy v1.37.0, the
// first release with TcpProxy.max_early_data_bytes) and the typed configs of its listener unpacked.
type parsedBootstrap struct {
	bootstrap *bootstrapv3.Bootstrap
	wasm      *wasmfilterv3.Wasm
	tcpProxy  *tcpproxyv3.TcpProxy
	tls       *tlsv3.DownstreamTlsContext // nil on a plain listener
	policy    string                      // the plugin configuration (StringValue)
}

// validator is implemented by every go-control-plane message (protoc-gen-validate).
type validator interface{ ValidateAll() error }

// parseBootstrap decodes YAML as an Envoy v3 Bootstrap (unknown fields rejected), runs protoc-gen-validate's rules
// on it and on every typed_config it carries (Any contents are not validated by the parent's ValidateAll), and
// returns the listener's filters.
func parseBootstrap(y []byte) (*parsedBootstrap, error) {
	js, err := yaml.YAMLToJSON(y)
	if err != nil {
		return nil, fmt.Errorf("YAML: %w", err)
	}
	out := &parsedBootstrap{bootstrap: &bootstrapv3.Bootstrap{}}
	if err := protojson.Unmarshal(js, out.bootstrap); err != nil {
		return nil, fmt.Errorf("as envoy.config.bootstrap.v3.Bootstrap: %w", err)
	}
	if err := out.bootstrap.ValidateAll(); err != nil {
		return nil, fmt.Errorf("bootstrap: %w", err)
	}
	unpack := func(where string, a *anypb.Any) (proto.Message, error) {
		if a == nil {
			return nil, fmt.Errorf("%s: no typed_config", where)
		}
		m, err := a.UnmarshalNew()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", where, err)
		}
		if v, ok := m.(validator); ok {
			if err := v.ValidateAll(); err != nil {
				return nil, fmt.Errorf("%s: %w", where, err)
			}
		}
		return m, nil
	}
	ls := out.bootstrap.GetStaticResources().GetListeners()
	if len(ls) != 1 || len(ls[0].GetFilterChains()) != 1 {
		return nil, fmt.Errorf("want exactly one listener with one filter chain, got %d listeners", len(ls))
	}
	fc := ls[0].GetFilterChains()[0]
	for i, f := range fc.GetFilters() {
		m, err := unpack(fmt.Sprintf("listener filter %d (%s)", i, f.GetName()), f.GetTypedConfig())
		if err != nil {
			return nil, err
		}
		switch c := m.(type) {
		case *wasmfilterv3.Wasm:
			out.wasm = c
		case *tcpproxyv3.TcpProxy:
			out.tcpProxy = c
		}
	}
	if ts := fc.GetTransportSocket(); ts != nil {
		m, err := unpack("transport_socket", ts.GetTypedConfig())
		if err != nil {
			return nil, err
		}
		tc, ok := m.(*tlsv3.DownstreamTlsContext)
		if !ok {
			return nil, fmt.Errorf("transport_socket is %T, want DownstreamTlsContext", m)
		}
		out.tls = tc
	}
	if out.wasm == nil || out.tcpProxy == nil {
		return nil, fmt.Errorf("the filter chain needs the wasm filter and tcp_proxy, got %v", fc.GetFilters())
	}
	if names := []string{fc.GetFilters()[0].GetName(), fc.GetFilters()[len(fc.GetFilters())-1].GetName()}; names[0] != "envoy.filters.network.wasm" || names[1] != "envoy.filters.network.tcp_proxy" {
		return nil, fmt.Errorf("filter order %v: the wasm filter must come first and tcp_proxy last", names)
	}
	cfg, err := unpack("wasm plugin configuration", out.wasm.GetConfig().GetConfiguration())
	if err != nil {
		return nil, err
	}
	sv, ok := cfg.(*wrapperspb.StringValue)
	if !ok {
		return nil, fmt.Errorf("wasm plugin configuration is %T, want google.protobuf.StringValue (as Istio passes pluginConfig)", cfg)
	}
	out.policy = sv.GetValue()
	return out, nil
}

// TestEnvoyBootstrapValid renders the bootstrap of each Envoy-lane gateway and checks it against Envoy's API
// (go-control-plane Validate), so the opt-in Envoy lane's configuration is checked on every run even where no
// Envoy binary exists: TLS / mutual TLS as intended, the policy passed verbatim and accepted by sdk/policy,
// early data on, clusters resolvable.
func TestEnvoyBootstrapValid(t *testing.T) {
	cl := map[string]string{clusterOrthanc: "127.0.0.1:4242", clusterStoreSCP: "127.0.0.1:11113", clusterSink: "127.0.0.1:9"}
	cases := []struct {
		label        string
		opts         gatewayOpts
		tls, mutual  bool
		defCluster   string
		wantPolicyRe string
	}{
		{"envoy-mtls", gatewayOpts{tls: true, clientCA: true, policy: e2ePolicy("enforce"), clusters: cl, defaultCluster: clusterSink}, true, true, clusterSink, `"mode":"enforce"`},
		{"envoy-plain", gatewayOpts{policy: e2ePolicy("enforce"), clusters: cl, defaultCluster: clusterSink}, false, false, clusterSink, `"mode":"enforce"`},
		{"envoy-dryrun", gatewayOpts{tls: true, clientCA: true, policy: e2ePolicy("dry-run"), clusters: cl, defaultCluster: clusterOrthanc}, true, true, clusterOrthanc, `"mode":"dry-run"`},
	}
	for _, c := range cases {
		t.Run(c.label, func(t *testing.T) {
			b, err := envoyBootstrapFor(c.label, c.opts, 15000, 15001, "/opt/dicomgate/dicomgate.wasm")
			require.NoError(t, err)
			y, err := renderBootstrap(b)
			require.NoError(t, err)
			pb, err := parseBootstrap(y)
			require.NoError(t, err, "rendered bootstrap is not a valid Envoy v3 bootstrap:\n%s", y)
			require.Equal(t, uint32(earlyDataBytes), pb.tcpProxy.GetMaxEarlyDataBytes().GetValue(), "tcp_proxy max_early_data_bytes")
			require.Equal(t, c.defCluster, pb.tcpProxy.GetCluster(), "tcp_proxy cluster")
			require.Equal(t, c.tls, pb.tls != nil, "TLS transport socket present")
			if pb.tls != nil {
				require.Equal(t, c.mutual, pb.tls.GetRequireClientCertificate().GetValue(), "require_client_certificate")
				got := pb.tls.GetCommonTlsContext().GetValidationContext().GetTrustedCa().GetFilename()
				require.Equal(t, c.mutual, got != "", "validation_context.trusted_ca = %q, want set = %v", got, c.mutual)
			}
			require.Equal(t, "/opt/dicomgate/dicomgate.wasm", pb.wasm.GetConfig().GetVmConfig().GetCode().GetLocal().GetFilename(), "wasm code filename")
			require.Contains(t, pb.policy, c.wantPolicyRe, "plugin configuration does not carry it")
			_, diags, err := policy.Load([]byte(pb.policy))
			require.NoError(t, err, "sdk/policy rejects the e2e policy (%v)", diags)
			names := map[string]bool{}
			for _, cl := range pb.bootstrap.GetStaticResources().GetClusters() {
				names[cl.GetName()] = true
			}
			var missing []string
			for n := range cl {
				if !names[n] {
					missing = append(missing, n)
				}
			}
			require.Empty(t, missing, "clusters missing from the bootstrap")
			tags := map[string]string{}
			for _, st := range pb.bootstrap.GetStatsConfig().GetStatsTags() {
				tags[st.GetTagName()] = st.GetRegex()
			}
			wantTags, gotTags := map[string]string{}, map[string]string{}
			for _, k := range envoyStatTags {
				wantTags[k] = `(` + k + `=\.=(.*?);\.;)`
				gotTags[k] = tags[k]
			}
			require.Equal(t, wantTags, gotTags, "stats tag regexes")
		})
	}

	// The validation must be able to fail: max_early_data_bytes above Envoy's 1 MiB limit is rejected.
	b, err := envoyBootstrapFor("too-much-early-data", cases[0].opts, 15000, 15001, "/x.wasm")
	require.NoError(t, err)
	b.EarlyDataBytes = 2 << 20
	y, err := renderBootstrap(b)
	require.NoError(t, err)
	_, err = parseBootstrap(y)
	require.ErrorContains(t, err, "MaxEarlyDataBytes", "max_early_data_bytes 2 MiB accepted; the validation is not effective")
}
