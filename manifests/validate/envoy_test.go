package validate

// From `kubectl apply` to a real Envoy: istiod's own generation for the
// rendered manifests (xdsgen_test.go), completed with only what a Kubernetes
// cluster would provide (clusterProvides, the one place the generated config
// is touched), served over ADS by go-control-plane's server and snapshot
// cache to the pinned Envoy 1.40 (build/envoy), with dcmtk and Orthanc as
// clients and backends.

import (
	"context"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dicomgate/dicomgate/manifests/oci"
	cluster "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpoint "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listener "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	discoverygrpc "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	secretgrpc "github.com/envoyproxy/go-control-plane/envoy/service/secret/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	cachev3 "github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	serverv3 "github.com/envoyproxy/go-control-plane/pkg/server/v3"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	extensions "istio.io/api/extensions/v1alpha1"
	"istio.io/istio/pkg/util/sets"
	istiowasm "istio.io/istio/pkg/wasm"
)

// extraStatTags are the stat tags manifests/README.md tells users to declare
// (meshConfig.defaultConfig.extraStatTags={action,rule,reason}).
var extraStatTags = []string{"action", "rule", "reason"}

// ---------------------------------------------------------------------------
// What the cluster provides.

// fakeCluster is what a Kubernetes cluster with Istio would provide around
// istiod's generation, in this test's terms.
type fakeCluster struct {
	// listenerPorts maps a gateway server port (11112, 443) to the free
	// loopback port its listener binds here.
	listenerPorts map[uint32]int
	// endpoints maps an Istio cluster name to the loopback port of the
	// backend standing in for the Service's pods.
	endpoints map[string]int
	// pki holds the certificates the credentialName Secrets would hold.
	pki *testPKI
	// agentCache is the istio-agent's Wasm module cache, pulling from the
	// in-process registry (insecureRegistry, plain HTTP).
	agentCache       istiowasm.Cache
	insecureRegistry string
}

// clusterProvides turns istiod's generation into the resources the
// gateway's Envoy receives in a cluster. It is the ONLY place the generated
// configuration is changed; each replacement stands in for a piece of the
// cluster:
//
//  1. Listener addresses. istiod binds each Gateway server to
//     0.0.0.0:<server port> inside the gateway pod; here every listener's
//     address becomes 127.0.0.1:<free port> (listenerPorts). Nothing else in
//     a listener changes.
//  2. EDS. istiod's EDS answers with the pods behind each Service; here the
//     ClusterLoadAssignment of every EDS cluster lists the local backend
//     (endpoints), or no endpoint for a Service this test runs no pod for
//     (the web UI port 8042), as for a Service without ready pods.
//  3. SDS for credentialName. istiod reads the Kubernetes Secret named by a
//     Gateway's credentialName and serves it over ADS as kubernetes://NAME
//     (and, for MUTUAL, the client CA as kubernetes://NAME-cacert); here
//     those Secrets hold the test certificates (pki). Any other secret name
//     fails the test.
//  4. SDS for the mesh identity. The istio-agent serves the workload
//     certificate (`default`) and the mesh root (`ROOTCA`) over its SDS
//     socket (bootstrap cluster sds-grpc); istiod's clusters name them for
//     Istio's auto mTLS to sidecar'ed backends. Here they are test
//     certificates; the backends here carry no sidecar (their endpoints have
//     no tlsMode label), so Envoy connects them in plaintext and these
//     certificates only let the clusters warm.
//  5. ECDS: the Wasm module. istiod's ECDS names the WasmPlugin's oci://
//     URL; the istio-agent pulls the image, checks spec.sha256 against the
//     image manifest digest and rewrites the resource to a local file (or,
//     when that fails, to a deny-all RBAC filter under FAIL_CLOSE). That is
//     done here by the istio-agent's own code (pkg/wasm
//     MaybeConvertWasmExtensionConfig with a LocalFileCache), pulling from an
//     in-process registry that holds the image `dicomgate push` builds from
//     build/dicomgate.wasm. (The WasmPlugin's url and sha256 themselves are
//     pinned before generation by pinImage, as README step 3 tells users.)
//
// It returns what istiod's ADS stream carries and, separately, what the
// istio-agent's own SDS server (bootstrap cluster sds-grpc) serves.
func clusterProvides(t *testing.T, x *gatewayXDS, c *fakeCluster) (ads map[resource.Type][]types.Resource, agentSDS []types.Resource) {
	t.Helper()
	res := map[resource.Type][]types.Resource{}
	secretNames := map[string]bool{}
	for _, l := range x.Listeners {
		l = proto.Clone(l).(*listener.Listener)
		sa := l.GetAddress().GetSocketAddress()
		require.NotNil(t, sa, "listener %s has no socket address", l.GetName())
		port, ok := c.listenerPorts[sa.GetPortValue()]
		require.True(t, ok, "listener %s on port %d: no loopback port assigned", l.GetName(), sa.GetPortValue())
		// (1) the address only.
		l.Address = &core.Address{Address: &core.Address_SocketAddress{SocketAddress: &core.SocketAddress{
			Address: "127.0.0.1", PortSpecifier: &core.SocketAddress_PortValue{PortValue: uint32(port)}}}}
		require.Empty(t, l.GetAdditionalAddresses(), "listener %s has additional addresses", l.GetName())
		for _, fc := range l.GetFilterChains() {
			for _, n := range sdsNames(t, fc.GetTransportSocket()) {
				secretNames[n] = true
			}
		}
		res[resource.ListenerType] = append(res[resource.ListenerType], l)
	}
	for _, cl := range x.Clusters {
		res[resource.ClusterType] = append(res[resource.ClusterType], cl)
		for _, m := range cl.GetTransportSocketMatches() {
			for _, n := range upstreamSDSNames(t, m.GetTransportSocket()) {
				secretNames[n] = true
			}
		}
		for _, n := range upstreamSDSNames(t, cl.GetTransportSocket()) {
			secretNames[n] = true
		}
		if cl.GetType() != cluster.Cluster_EDS {
			continue
		}
		// (2) endpoints.
		name := cl.GetEdsClusterConfig().GetServiceName()
		if name == "" {
			name = cl.GetName()
		}
		cla := &endpoint.ClusterLoadAssignment{ClusterName: name}
		if port, ok := c.endpoints[cl.GetName()]; ok {
			cla.Endpoints = []*endpoint.LocalityLbEndpoints{{LbEndpoints: []*endpoint.LbEndpoint{{
				HostIdentifier: &endpoint.LbEndpoint_Endpoint{Endpoint: &endpoint.Endpoint{Address: &core.Address{
					Address: &core.Address_SocketAddress{SocketAddress: &core.SocketAddress{
						Address: "127.0.0.1", PortSpecifier: &core.SocketAddress_PortValue{PortValue: uint32(port)}}}}}},
			}}}}
		}
		res[resource.EndpointType] = append(res[resource.EndpointType], cla)
	}
	for _, r := range x.Routes {
		res[resource.RouteType] = append(res[resource.RouteType], r)
	}
	// (3) credentialName secrets.
	for n := range secretNames {
		s := &tlsv3.Secret{Name: n}
		switch {
		case strings.HasSuffix(n, "-cacert"):
			s.Type = &tlsv3.Secret_ValidationContext{ValidationContext: &tlsv3.CertificateValidationContext{
				TrustedCa: &core.DataSource{Specifier: &core.DataSource_InlineBytes{InlineBytes: c.pki.caPEM}}}}
		case n == "ROOTCA":
			s.Type = &tlsv3.Secret_ValidationContext{ValidationContext: &tlsv3.CertificateValidationContext{
				TrustedCa: &core.DataSource{Specifier: &core.DataSource_InlineBytes{InlineBytes: c.pki.caPEM}}}}
		case n == "kubernetes://dicom-credential" || n == "kubernetes://web-credential" || n == "default":
			s.Type = &tlsv3.Secret_TlsCertificate{TlsCertificate: &tlsv3.TlsCertificate{
				CertificateChain: &core.DataSource{Specifier: &core.DataSource_InlineBytes{InlineBytes: c.pki.serverCertPEM}},
				PrivateKey:       &core.DataSource{Specifier: &core.DataSource_InlineBytes{InlineBytes: c.pki.serverKeyPEM}}}}
		default:
			require.FailNow(t, fmt.Sprintf("the generated listeners ask for secret %q, which no Secret of the manifests provides", n))
		}
		if strings.HasPrefix(n, "kubernetes://") {
			res[resource.SecretType] = append(res[resource.SecretType], s)
		} else {
			agentSDS = append(agentSDS, s)
		}
	}
	// (5) the Wasm module, by the istio-agent's own conversion.
	exts := make([]*anypb.Any, len(x.Extensions))
	for i, e := range x.Extensions {
		exts[i] = proto.Clone(e).(*anypb.Any)
	}
	require.NoError(t, istiowasm.MaybeConvertWasmExtensionConfig(exts, c.agentCache), "istio-agent ECDS conversion")
	for _, e := range exts {
		ec := &core.TypedExtensionConfig{}
		require.NoError(t, e.UnmarshalTo(ec))
		res[resource.ExtensionConfigType] = append(res[resource.ExtensionConfigType], ec)
	}
	return res, agentSDS
}

// upstreamSDSNames returns the SDS secret names an upstream TLS transport
// socket asks for (the mesh certificates of Istio's auto mTLS).
func upstreamSDSNames(t *testing.T, ts *core.TransportSocket) []string {
	t.Helper()
	if ts == nil || ts.GetName() != "envoy.transport_sockets.tls" {
		return nil
	}
	var u tlsv3.UpstreamTlsContext
	require.NoError(t, ts.GetTypedConfig().UnmarshalTo(&u))
	ctx := u.GetCommonTlsContext()
	var names []string
	for _, s := range ctx.GetTlsCertificateSdsSecretConfigs() {
		names = append(names, s.GetName())
	}
	if v := ctx.GetCombinedValidationContext().GetValidationContextSdsSecretConfig(); v != nil {
		names = append(names, v.GetName())
	}
	if v := ctx.GetValidationContextSdsSecretConfig(); v != nil {
		names = append(names, v.GetName())
	}
	return names
}

// sdsNames returns the SDS secret names a downstream TLS transport socket
// asks for.
func sdsNames(t *testing.T, ts *core.TransportSocket) []string {
	t.Helper()
	if ts == nil {
		return nil
	}
	var d tlsv3.DownstreamTlsContext
	require.NoError(t, ts.GetTypedConfig().UnmarshalTo(&d))
	ctx := d.GetCommonTlsContext()
	var names []string
	for _, s := range ctx.GetTlsCertificateSdsSecretConfigs() {
		names = append(names, s.GetName())
	}
	if v := ctx.GetValidationContextSdsSecretConfig(); v != nil {
		names = append(names, v.GetName())
	}
	if v := ctx.GetCombinedValidationContext().GetValidationContextSdsSecretConfig(); v != nil {
		names = append(names, v.GetName())
	}
	return names
}

// pinImage points the WasmPlugin at the image in the in-process registry
// and, unless sha256 is empty, pins its digest: what README step 3 has users
// do with `dicomgate manifest --wasm` or a kustomize patch. With sha256 ""
// the manifests' own value (the zero placeholder) stays.
func pinImage(t *testing.T, objs []*Object, ref, sha256 string) {
	t.Helper()
	n := 0
	for _, o := range objs {
		if o.Kind != "WasmPlugin" {
			continue
		}
		wp := o.Istio.Spec.(*extensions.WasmPlugin)
		wp.Url = ref
		if sha256 != "" {
			wp.Sha256 = sha256
		}
		n++
	}
	require.Equal(t, 1, n, "WasmPlugins in the rendering")
}

// ---------------------------------------------------------------------------
// The image registry (what the cluster pulls from).

// wasmRegistry is an in-process OCI registry holding the image `dicomgate
// push` builds from the compiled filter.
type wasmRegistry struct {
	host   string // 127.0.0.1:PORT
	ref    string // oci://HOST/dicomgate:0.1.0
	digest string // the image manifest digest (WasmPlugin spec.sha256)
	module []byte
}

// startRegistry serves the image of module (OCI format, as `dicomgate push`
// builds it) from a loopback registry for the rest of the test binary.
func startRegistry(t *testing.T, module []byte) *wasmRegistry {
	t.Helper()
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	u, err := url.Parse(srv.URL)
	require.NoError(t, err)
	img, err := oci.Build(module, oci.FormatOCI)
	require.NoError(t, err)
	r := &wasmRegistry{host: u.Host, ref: "oci://" + u.Host + "/dicomgate:0.1.0", module: module}
	_, err = oci.Push(context.Background(), img, r.ref, oci.PushOptions{Insecure: true, Keychain: authn.NewMultiKeychain()})
	require.NoError(t, err)
	r.digest, err = oci.Digest(module, oci.FormatOCI)
	require.NoError(t, err)
	return r
}

// ---------------------------------------------------------------------------
// The xDS server.

// xdsServer is go-control-plane's gRPC xDS server with a snapshot cache in
// ADS mode, on loopback, serving one node: the gateway Envoy.
type xdsServer struct {
	port  int
	cache cachev3.SnapshotCache
	// agentCache serves the istio-agent's SDS stream (non-ADS: Envoy asks
	// for each secret on its own, which an ADS-mode cache never answers).
	agentCache cachev3.SnapshotCache
	grpc       *grpc.Server

	mu sync.Mutex
	// nacks are the rejections Envoy sent: "TYPE: message".
	nacks []string
	// acked maps a type URL to the last version Envoy accepted.
	acked map[string]string
}

// startXDS starts the server; it stops at the end of the test.
func startXDS(t *testing.T) *xdsServer {
	t.Helper()
	s := &xdsServer{
		cache:      cachev3.NewSnapshotCache(true, cachev3.IDHash{}, dbgLogger{}),
		agentCache: cachev3.NewSnapshotCache(false, cachev3.IDHash{}, dbgLogger{}),
		acked:      map[string]string{},
	}
	cb := serverv3.CallbackFuncs{StreamRequestFunc: func(_ int64, req *discoverygrpc.DiscoveryRequest) error {
		s.mu.Lock()
		defer s.mu.Unlock()
		if os.Getenv("DICOMGATE_XDS_DEBUG") != "" {
			fmt.Fprintf(os.Stderr, "xds request: %s %v v=%q node=%q err=%v\n", req.GetTypeUrl(), req.GetResourceNames(), req.GetVersionInfo(), req.GetNode().GetId(), req.GetErrorDetail())
		}
		if e := req.GetErrorDetail(); e != nil {
			if n := req.GetTypeUrl() + ": " + e.GetMessage(); !slices.Contains(s.nacks, n) {
				s.nacks = append(s.nacks, n)
			}
		} else if req.GetVersionInfo() != "" {
			s.acked[req.GetTypeUrl()] = req.GetVersionInfo()
		}
		return nil
	}}
	s.grpc = grpc.NewServer()
	discoverygrpc.RegisterAggregatedDiscoveryServiceServer(s.grpc, serverv3.NewServer(context.Background(), s.cache, cb))
	secretgrpc.RegisterSecretDiscoveryServiceServer(s.grpc, serverv3.NewServer(context.Background(), s.agentCache, cb))
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	s.port = l.Addr().(*net.TCPAddr).Port
	go func() { _ = s.grpc.Serve(l) }()
	t.Cleanup(s.grpc.Stop)
	return s
}

// set publishes a snapshot (version v) for the gateway node: res on ADS,
// agentSDS on the agent's SDS stream.
func (s *xdsServer) set(t *testing.T, v string, res map[resource.Type][]types.Resource, agentSDS []types.Resource) {
	t.Helper()
	snap, err := cachev3.NewSnapshot(v, res)
	require.NoError(t, err)
	require.NoError(t, snap.Consistent(), "snapshot %s is not self-consistent", v)
	require.NoError(t, s.cache.SetSnapshot(context.Background(), gatewayNodeID, snap))
	sds, err := cachev3.NewSnapshot(v, map[resource.Type][]types.Resource{resource.SecretType: agentSDS})
	require.NoError(t, err)
	require.NoError(t, s.agentCache.SetSnapshot(context.Background(), gatewayNodeID, sds))
}

// rejections returns the NACKs so far.
func (s *xdsServer) rejections() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.nacks...)
}

// waitRejected waits until Envoy rejected a resource with a message
// containing msg.
func (s *xdsServer) waitRejected(t *testing.T, msg string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		for _, n := range s.rejections() {
			if strings.Contains(n, msg) {
				return
			}
		}
		if time.Now().After(deadline) {
			require.FailNow(t, fmt.Sprintf("Envoy did not reject a resource with %q within 30 s", msg), "rejections: %q", s.rejections())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitAcked waits until Envoy acknowledged version v of every type in types.
func (s *xdsServer) waitAcked(t *testing.T, v string, typeURLs ...string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		s.mu.Lock()
		missing := []string{}
		for _, u := range typeURLs {
			if s.acked[u] != v {
				missing = append(missing, u+" (acked "+s.acked[u]+")")
			}
		}
		nacks := append([]string(nil), s.nacks...)
		s.mu.Unlock()
		if len(missing) == 0 {
			return
		}
		if time.Now().After(deadline) {
			require.FailNow(t, fmt.Sprintf("Envoy did not acknowledge version %s of %v within 30 s", v, missing), "rejections: %q", nacks)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// ---------------------------------------------------------------------------
// Envoy.

// gatewayNodeID is the node id the Envoy announces, in the form pilot-agent
// gives a router proxy: router~IP~POD.NAMESPACE~NAMESPACE.svc.cluster.local.
const gatewayNodeID = "router~127.0.0.1~" + gatewayPodID + "~istio-ingress.svc." + DomainSuffix

// bootstrapYAML is the minimal bootstrap: the node as an Istio router proxy
// (id and the metadata istiod reads: NAMESPACE, LABELS, ISTIO_VERSION,
// CLUSTER_ID), ADS to the in-process server over gRPC (cluster xds-grpc, as
// pilot-agent's bootstrap names it), the istio-agent's SDS (cluster
// sds-grpc, which istiod's clusters name for the mesh certificates) served by
// the same server, admin on loopback, and the stat tags
// Istio's bootstrap template renders for each extraStatTags entry
// (tools/packaging/common/envoy_bootstrap.json: regex
// "({{ $tag }}=\\.=(.*?);\\.;)").
func bootstrapYAML(adminPort, xdsPort int) string {
	var tags strings.Builder
	for _, tag := range extraStatTags {
		fmt.Fprintf(&tags, "  - tag_name: %q\n    regex: %q\n", tag, "("+tag+`=\.=(.*?);\.;)`)
	}
	return fmt.Sprintf(`node:
  id: %q
  cluster: istio-ingressgateway.istio-ingress
  metadata:
    NAMESPACE: istio-ingress
    CLUSTER_ID: Kubernetes
    ISTIO_VERSION: %q
    LABELS: {istio: ingressgateway}
admin:
  address: {socket_address: {address: 127.0.0.1, port_value: %d}}
dynamic_resources:
  ads_config:
    api_type: GRPC
    transport_api_version: V3
    grpc_services: [{envoy_grpc: {cluster_name: xds-grpc}}]
  lds_config: {ads: {}, resource_api_version: V3}
  cds_config: {ads: {}, resource_api_version: V3}
static_resources:
  clusters:
  - name: xds-grpc
    type: STATIC
    connect_timeout: 1s
    typed_extension_protocol_options:
      envoy.extensions.upstreams.http.v3.HttpProtocolOptions:
        "@type": type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions
        explicit_http_config: {http2_protocol_options: {}}
    load_assignment:
      cluster_name: xds-grpc
      endpoints: [{lb_endpoints: [{endpoint: {address: {socket_address: {address: 127.0.0.1, port_value: %[4]d}}}}]}]
  - name: sds-grpc
    type: STATIC
    connect_timeout: 1s
    typed_extension_protocol_options:
      envoy.extensions.upstreams.http.v3.HttpProtocolOptions:
        "@type": type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions
        explicit_http_config: {http2_protocol_options: {}}
    load_assignment:
      cluster_name: sds-grpc
      endpoints: [{lb_endpoints: [{endpoint: {address: {socket_address: {address: 127.0.0.1, port_value: %[4]d}}}}]}]
stats_config:
  stats_tags:
%[5]s`, gatewayNodeID, gatewayIstioVersion, adminPort, xdsPort, tags.String())
}

// envoyBin is $ENVOY_BIN, else <repo root>/build/envoy (the module lives at
// manifests/validate); missing is a failure naming `make envoy`.
func envoyBin(t *testing.T) string {
	t.Helper()
	if b := os.Getenv("ENVOY_BIN"); b != "" {
		_, err := os.Stat(b)
		require.NoError(t, err, "ENVOY_BIN=%s; unset it to use the pinned Envoy (`make envoy`)", b)
		return b
	}
	b, err := filepath.Abs(filepath.Join("..", "..", "build", "envoy"))
	require.NoError(t, err)
	_, err = os.Stat(b)
	require.NoError(t, err, "no Envoy at %s (ENVOY_BIN unset): run `make envoy` (or make deps) to install the pinned Envoy, "+
		"or set ENVOY_BIN=/path/to/envoy (>= 1.37, V8 Wasm runtime); DICOMGATE_NO_ENVOY=1 skips the real-Envoy tests", b)
	return b
}

// requireEnvoy skips (loudly) only when DICOMGATE_NO_ENVOY=1.
func requireEnvoy(t *testing.T) string {
	t.Helper()
	if os.Getenv("DICOMGATE_NO_ENVOY") == "1" {
		t.Skip("REAL ENVOY NOT RUN: DICOMGATE_NO_ENVOY=1 skips serving istiod's generation to Envoy and every " +
			"dcmtk/Orthanc association through it; unset it (and `make envoy`) to run them")
	}
	return envoyBin(t)
}

// envoy is a running gateway Envoy.
type envoy struct {
	proc      *proc
	adminPort int
}

// startEnvoy starts Envoy with the minimal bootstrap against xds and waits
// until its admin reports ready (initial xDS applied).
func startEnvoy(t *testing.T, bin, dir string, xds *xdsServer) *envoy {
	t.Helper()
	adminPort := freePort(t)
	cfg := filepath.Join(dir, "bootstrap.yaml")
	require.NoError(t, os.WriteFile(cfg, []byte(bootstrapYAML(adminPort, xds.port)), 0o644))
	p, err := startProc("envoy", filepath.Join(dir, "envoy.log"), bin, "-c", cfg, "--disable-hot-restart", "--concurrency", "1",
		"-l", "warning", "--component-log-level", "wasm:info")
	require.NoError(t, err)
	t.Cleanup(p.stop)
	e := &envoy{proc: p, adminPort: adminPort}
	deadline := time.Now().Add(60 * time.Second)
	for {
		if b, err := e.admin("/ready"); err == nil && strings.TrimSpace(b) == "LIVE" {
			return e
		}
		if p.exited() || time.Now().After(deadline) {
			var warming []string
			if st, err := e.admin("/stats"); err == nil {
				for _, l := range strings.Split(st, "\n") {
					if strings.Contains(l, "warming") || strings.Contains(l, "init_fetch_timeout") || strings.Contains(l, "server.state") ||
						strings.Contains(l, "update_rejected") || strings.Contains(l, "update_success") {
						warming = append(warming, l)
					}
				}
			}
			xds.mu.Lock()
			acked := fmt.Sprint(xds.acked)
			xds.mu.Unlock()
			require.FailNow(t, "envoy not ready after 60 s", "exited: %v; acknowledged %s; rejections %q; stats:\n%s\noutput:\n%s",
				p.exited(), acked, xds.rejections(), strings.Join(warming, "\n"), tail(p.output(), 40))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

var adminClient = &http.Client{Timeout: 10 * time.Second}

// admin GETs an admin path; a status other than 200 is an error.
func (e *envoy) admin(path string) (string, error) {
	resp, err := adminClient.Get(fmt.Sprintf("http://127.0.0.1:%d%s", e.adminPort, path))
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return string(b), fmt.Errorf("GET %s: HTTP %d", path, resp.StatusCode)
	}
	return string(b), nil
}

// counters returns Envoy's plain /stats counters and gauges by full name
// (unambiguous: Istio cluster names contain dots).
func (e *envoy) counters(t *testing.T) map[string]float64 {
	t.Helper()
	b, err := e.admin("/stats")
	require.NoError(t, err)
	m := map[string]float64{}
	for _, l := range strings.Split(b, "\n") {
		k, v, ok := strings.Cut(l, ": ")
		if !ok {
			continue
		}
		if f, err := strconv.ParseFloat(v, 64); err == nil {
			m[k] = f
		}
	}
	return m
}

// prometheus returns /stats/prometheus samples keyed `name{k="v",...}`
// with labels sorted, as the manifests document them.
func (e *envoy) prometheus(t *testing.T) map[string]float64 {
	t.Helper()
	b, err := e.admin("/stats/prometheus")
	require.NoError(t, err)
	m := map[string]float64{}
	for _, l := range strings.Split(b, "\n") {
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		i := strings.LastIndexByte(l, ' ')
		if i < 0 {
			continue
		}
		f, err := strconv.ParseFloat(l[i+1:], 64)
		if err != nil {
			continue
		}
		m[normalizeSample(l[:i])] = f
	}
	return m
}

// normalizeSample sorts the labels of `name{a="1",b="2"}`.
func normalizeSample(s string) string {
	name, labels, ok := strings.Cut(s, "{")
	if !ok || labels == "}" { // Envoy prints an unlabelled series as name{}
		return name
	}
	parts := strings.Split(strings.TrimSuffix(labels, "}"), ",")
	sort.Strings(parts)
	return name + "{" + strings.Join(parts, ",") + "}"
}

// sample builds a normalised sample key: sample("x", "a", "1") = x{a="1"}.
func sample(name string, kv ...string) string {
	if len(kv) == 0 {
		return name
	}
	var parts []string
	for i := 0; i+1 < len(kv); i += 2 {
		parts = append(parts, kv[i]+`="`+kv[i+1]+`"`)
	}
	return normalizeSample(name + "{" + strings.Join(parts, ",") + "}")
}

// ---------------------------------------------------------------------------
// The filter module.

// filterModule returns the compiled filter: $DICOMGATE_WASM, else a build of
// ../../filters/dicomgate with the `make wasm` recipe (internal/wasmbuild's;
// that package is internal to the main module): GOOS=wasip1 GOARCH=wasm go
// build -buildmode=c-shared -trimpath -ldflags=-s.
var filterModule = sync.OnceValues(func() ([]byte, error) {
	if p := os.Getenv("DICOMGATE_WASM"); p != "" {
		return os.ReadFile(p)
	}
	dir, err := os.MkdirTemp("", "dicomgate-wasm-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	out := filepath.Join(dir, "dicomgate.wasm")
	cmd := exec.Command(filepath.Join(runtime.GOROOT(), "bin", "go"), "build", "-buildmode=c-shared", "-trimpath", "-ldflags=-s", "-o", out, "./filters/dicomgate")
	cmd.Dir = filepath.Join("..", "..")
	cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm")
	if msg, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("building the filter (GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -trimpath -ldflags=-s ./filters/dicomgate in the repo root): %v\n%s; or set DICOMGATE_WASM (make wasm)", err, msg)
	}
	return os.ReadFile(out)
})

// newAgentCache is the istio-agent's Wasm module cache in dir, allowing
// plain HTTP to the in-process registry (WASM_INSECURE_REGISTRIES).
func newAgentCache(t *testing.T, dir, insecureHost string) istiowasm.Cache {
	t.Helper()
	require.NoError(t, os.MkdirAll(dir, 0o755))
	c := istiowasm.NewLocalFileCache(dir, istiowasm.Options{InsecureRegistries: sets.New(insecureHost)})
	t.Cleanup(c.Cleanup)
	return c
}

// dbgLogger prints go-control-plane's cache log with DICOMGATE_XDS_DEBUG=1.
type dbgLogger struct{}

func (dbgLogger) Debugf(f string, a ...any) { dbg("D "+f, a...) }
func (dbgLogger) Infof(f string, a ...any)  { dbg("I "+f, a...) }
func (dbgLogger) Warnf(f string, a ...any)  { dbg("W "+f, a...) }
func (dbgLogger) Errorf(f string, a ...any) { dbg("E "+f, a...) }
func dbg(f string, a ...any) {
	if os.Getenv("DICOMGATE_XDS_DEBUG") != "" {
		fmt.Fprintf(os.Stderr, "xds cache: "+f+"\n", a...)
	}
}

// TestBootstrapStatTagsAreIstios: the stat tags of the test bootstrap are
// the ones Istio's own bootstrap template renders for extraStatTags (read
// from the istio.io/istio module this module builds against), so the
// Prometheus labels the tests assert are the ones a gateway installed with
// meshConfig.defaultConfig.extraStatTags={action,rule,reason} exposes.
func TestBootstrapStatTagsAreIstios(t *testing.T) {
	out, err := exec.Command(filepath.Join(runtime.GOROOT(), "bin", "go"), "list", "-m", "-f", "{{.Dir}}", "istio.io/istio").Output()
	require.NoError(t, err, "go list -m istio.io/istio")
	tmpl, err := os.ReadFile(filepath.Join(strings.TrimSpace(string(out)), "tools", "packaging", "common", "envoy_bootstrap.json"))
	require.NoError(t, err)
	require.Contains(t, string(tmpl), `"regex": "({{ $tag }}=\\.=(.*?);\\.;)",`+"\n"+`        "tag_name": "{{ $tag }}"`,
		"Istio's bootstrap template no longer renders extraStatTags this way; update bootstrapYAML")
	b := bootstrapYAML(1, 2)
	for _, tag := range extraStatTags {
		require.Contains(t, b, fmt.Sprintf("tag_name: %q\n    regex: %q", tag, "("+tag+`=\.=(.*?);\.;)`))
	}
}
