package validate

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/dicomgate/dicomgate/sdk/policy"
	tcpproxy "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/tcp_proxy/v3"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	extensions "istio.io/api/extensions/v1alpha1"
	networking "istio.io/api/networking/v1alpha3"
	"istio.io/istio/pkg/config"
	"istio.io/istio/pkg/config/schema/collections"
	"istio.io/istio/pkg/config/schema/resource"
	"istio.io/istio/pkg/config/validation"
	"istio.io/istio/pkg/config/validation/envoyfilter"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8sschema "k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"
)

// DomainSuffix is the cluster domain used for cluster names and host
// resolution (Istio's default).
const DomainSuffix = "cluster.local"

// Object is one parsed Kubernetes resource.
type Object struct {
	// Source names where the object came from, for error messages.
	Source string
	// APIVersion and Kind as written.
	APIVersion, Kind string
	// Meta is the object's metadata, decoded strictly.
	Meta metav1.ObjectMeta
	// Istio is set for Istio kinds: the config istiod would build from the
	// object (crd.ConvertObject equivalent, with a strict spec decode).
	Istio *config.Config
	// Service is set for core/v1 Services.
	Service *corev1.Service
	// Deployment is set for apps/v1 Deployments (the rejector component).
	Deployment *appsv1.Deployment
}

// ID returns "Kind namespace/name".
func (o *Object) ID() string { return o.Kind + " " + o.Meta.Namespace + "/" + o.Meta.Name }

// Render builds a kustomization directory with kustomize's krusty (the
// engine behind `kubectl apply -k`) and returns the rendered YAML stream.
func Render(dir string) ([]byte, error) {
	k := krusty.MakeKustomizer(krusty.MakeDefaultOptions())
	m, err := k.Run(filesys.MakeFsOnDisk(), dir)
	if err != nil {
		return nil, fmt.Errorf("kustomize build %s: %w", dir, err)
	}
	return m.AsYaml()
}

// envelope is the top level of a Kubernetes object; unknown top-level keys
// are rejected as istiod's webhook does (server.go checkFields).
type envelope struct {
	APIVersion string          `json:"apiVersion"`
	Kind       string          `json:"kind"`
	Metadata   json.RawMessage `json:"metadata"`
	Spec       json.RawMessage `json:"spec"`
	Status     json.RawMessage `json:"status,omitempty"`
}

// Parse splits a YAML stream and decodes every document strictly: Istio
// kinds into their istio.io/api spec (Istio's own strict JSON decoding, so an
// unknown or misspelled field is an error), Services into core/v1 Service,
// Deployments (the rejector component) into apps/v1 Deployment. Any other
// kind is an error: the manifests contain nothing else.
func Parse(stream []byte, source string) ([]*Object, error) {
	var out []*Object
	var errs []error
	for i, doc := range splitYAML(stream) {
		src := fmt.Sprintf("%s#%d", source, i)
		o, err := parseOne(doc, src)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", src, err))
			continue
		}
		if o != nil {
			out = append(out, o)
		}
	}
	return out, errors.Join(errs...)
}

// splitYAML splits a multi-document YAML stream on "---" lines.
func splitYAML(b []byte) [][]byte {
	var docs [][]byte
	var cur bytes.Buffer
	flush := func() {
		if len(bytes.TrimSpace(stripComments(cur.Bytes()))) > 0 {
			docs = append(docs, append([]byte(nil), cur.Bytes()...))
		}
		cur.Reset()
	}
	for _, line := range bytes.SplitAfter(b, []byte("\n")) {
		if t := bytes.TrimRight(line, " \t\r\n"); bytes.Equal(t, []byte("---")) {
			flush()
			continue
		}
		cur.Write(line)
	}
	flush()
	return docs
}

// stripComments drops full-line comments (to detect comment-only documents).
func stripComments(b []byte) []byte {
	var out bytes.Buffer
	for _, line := range bytes.Split(b, []byte("\n")) {
		if t := bytes.TrimSpace(line); len(t) > 0 && t[0] == '#' {
			continue
		}
		out.Write(line)
		out.WriteByte('\n')
	}
	return out.Bytes()
}

func parseOne(doc []byte, src string) (*Object, error) {
	js, err := yaml.YAMLToJSON(doc)
	if err != nil {
		return nil, fmt.Errorf("not YAML: %w", err)
	}
	var env envelope
	dec := json.NewDecoder(bytes.NewReader(js))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&env); err != nil {
		return nil, fmt.Errorf("top level: %w (allowed: apiVersion, kind, metadata, spec, status)", err)
	}
	o := &Object{Source: src, APIVersion: env.APIVersion, Kind: env.Kind}
	if len(env.Metadata) > 0 {
		md := json.NewDecoder(bytes.NewReader(env.Metadata))
		md.DisallowUnknownFields()
		if err := md.Decode(&o.Meta); err != nil {
			return nil, fmt.Errorf("metadata: %w", err)
		}
	}
	if o.Meta.Name == "" {
		return nil, fmt.Errorf("%s without metadata.name", env.Kind)
	}
	gv, err := k8sschema.ParseGroupVersion(env.APIVersion)
	if err != nil {
		return nil, fmt.Errorf("apiVersion %q: %w", env.APIVersion, err)
	}
	if gv.Group == "" && gv.Version == "v1" && env.Kind == "Service" {
		var svc corev1.Service
		if err := yaml.UnmarshalStrict(doc, &svc); err != nil {
			return nil, fmt.Errorf("Service %s: %w", o.Meta.Name, err)
		}
		o.Service = &svc
		return o, nil
	}
	if gv.Group == "apps" && gv.Version == "v1" && env.Kind == "Deployment" {
		var dep appsv1.Deployment
		if err := yaml.UnmarshalStrict(doc, &dep); err != nil {
			return nil, fmt.Errorf("Deployment %s: %w", o.Meta.Name, err)
		}
		o.Deployment = &dep
		return o, nil
	}
	gvk := k8sschema.GroupVersionKind{Group: gv.Group, Version: gv.Version, Kind: env.Kind}
	// As istiod's webhook: look the schema up by group and kind (any version).
	s, ok := collections.Pilot.FindByGroupKind(resource.FromKubernetesGVK(&gvk))
	if !ok {
		return nil, fmt.Errorf("unsupported kind %s (%s): the manifests hold only Istio resources and Services", env.Kind, env.APIVersion)
	}
	if !versionServed(s, gv.Version) {
		return nil, fmt.Errorf("%s: apiVersion %s is not served by Istio (versions: %s)", env.Kind, env.APIVersion, strings.Join(versions(s), ", "))
	}
	spec, err := s.NewInstance()
	if err != nil {
		return nil, err
	}
	if len(env.Spec) == 0 {
		return nil, fmt.Errorf("%s %s has no spec", env.Kind, o.Meta.Name)
	}
	if err := config.ApplyJSONStrict(spec, string(env.Spec)); err != nil {
		return nil, fmt.Errorf("%s %s spec (decoded strictly into %T): %w", env.Kind, o.Meta.Name, spec, err)
	}
	o.Istio = &config.Config{
		Meta: config.Meta{
			GroupVersionKind: s.GroupVersionKind(),
			Name:             o.Meta.Name,
			Namespace:        o.Meta.Namespace,
			Domain:           DomainSuffix,
			Labels:           o.Meta.Labels,
			Annotations:      o.Meta.Annotations,
		},
		Spec: spec,
	}
	return o, nil
}

func versionServed(s resource.Schema, v string) bool {
	for _, x := range versions(s) {
		if x == v {
			return true
		}
	}
	return false
}

func versions(s resource.Schema) []string {
	var out []string
	for _, g := range s.GroupVersionAliasKinds() {
		out = append(out, g.Version)
	}
	return out
}

// namedValidators are the validation functions istiod's webhook reaches (via
// the collection schema's ValidateConfig) for the kinds the manifests use;
// ValidateIstio runs them explicitly as well, so a kind silently losing its
// validator would show.
var namedValidators = map[string]validation.ValidateFunc{
	"Gateway":         validation.ValidateGateway,
	"VirtualService":  validation.ValidateVirtualService,
	"DestinationRule": validation.ValidateDestinationRule,
	"WasmPlugin":      validation.ValidateWasmPlugin,
	"EnvoyFilter":     envoyfilter.ValidateEnvoyFilter,
}

// Finding is one problem: an error, or an Istio validation warning.
type Finding struct {
	Object  string
	Warning bool
	Err     error
}

func (f Finding) String() string {
	kind := "error"
	if f.Warning {
		kind = "warning"
	}
	return f.Object + ": " + kind + ": " + f.Err.Error()
}

// ValidateIstio runs Istio's validation on every Istio object: the
// collection schema's ValidateConfig (what istiod's validation webhook runs)
// and the named Validate* function of the kind.
func ValidateIstio(objs []*Object) []Finding {
	var out []Finding
	for _, o := range objs {
		if o.Istio == nil {
			continue
		}
		gvk := o.Istio.GroupVersionKind
		s, ok := collections.Pilot.FindByGroupVersionAliasesKind(gvk)
		if !ok {
			out = append(out, Finding{o.ID(), false, fmt.Errorf("no Istio schema for %v", gvk)})
			continue
		}
		warn, err := s.ValidateConfig(*o.Istio)
		out = appendResult(out, o.ID()+" (schema validation)", warn, err)
		fn, ok := namedValidators[o.Kind]
		if !ok {
			out = append(out, Finding{o.ID(), false, fmt.Errorf("no named validator for kind %s", o.Kind)})
			continue
		}
		warn, err = fn(*o.Istio)
		out = appendResult(out, o.ID()+" ("+validatorName(o.Kind)+")", warn, err)
	}
	return out
}

func validatorName(kind string) string { return "Validate" + kind }

func appendResult(out []Finding, id string, warn validation.Warning, err error) []Finding {
	if err != nil {
		out = append(out, Finding{id, false, err})
	}
	if warn != nil {
		out = append(out, Finding{id, true, warn})
	}
	return out
}

// Cluster is a parsed Istio cluster name outbound|PORT|SUBSET|HOST.
type Cluster struct {
	Port   int
	Subset string
	Host   string
}

// ParseCluster parses an Istio outbound cluster name (BuildSubsetKey form).
func ParseCluster(s string) (Cluster, error) {
	parts := strings.Split(s, "|")
	if len(parts) != 4 || parts[0] != "outbound" {
		return Cluster{}, fmt.Errorf("cluster %q is not an Istio outbound cluster name outbound|PORT|SUBSET|HOST", s)
	}
	port, err := strconv.Atoi(parts[1])
	if err != nil || port < 1 || port > 65535 {
		return Cluster{}, fmt.Errorf("cluster %q: port %q is not 1..65535", s, parts[1])
	}
	return Cluster{Port: port, Subset: parts[2], Host: parts[3]}, nil
}

// PolicyClusters returns, in rule order, the cluster each route rule of the
// policy document names ("cluster", or "service" turned into
// outbound|PORT|SUBSET|HOST as sdk/policy does).
func PolicyClusters(policyJSON []byte) ([]string, error) {
	var doc struct {
		Rules []struct {
			Name    string `json:"name"`
			Action  string `json:"action"`
			Cluster string `json:"cluster"`
			Service *struct {
				Host   string `json:"host"`
				Port   int    `json:"port"`
				Subset string `json:"subset"`
			} `json:"service"`
		} `json:"rules"`
	}
	if err := json.Unmarshal(policyJSON, &doc); err != nil {
		return nil, err
	}
	var out []string
	for _, r := range doc.Rules {
		switch {
		case r.Cluster != "":
			out = append(out, r.Cluster)
		case r.Service != nil:
			out = append(out, "outbound|"+strconv.Itoa(r.Service.Port)+"|"+r.Service.Subset+"|"+r.Service.Host)
		}
	}
	return out, nil
}

// Deployment is what CrossCheck learned about the dicomgate deployment.
type Deployment struct {
	// DICOMPort is the Gateway server port of the TLS server the WasmPlugin
	// matches.
	DICOMPort uint32
	// TLSMode is that server's tls.mode.
	TLSMode networking.ServerTLSSettings_TLSmode
	// Policy is the compiled pluginConfig.
	Policy *policy.Policy
	// PolicyJSON is the pluginConfig as JSON.
	PolicyJSON []byte
	// PolicyWarnings are sdk/policy's warnings for the pluginConfig.
	PolicyWarnings []policy.Diagnostic
	// EarlyDataBytes is max_early_data_bytes from the EnvoyFilter (0: none).
	EarlyDataBytes uint32
	// Clusters are the clusters the policy's route rules name.
	Clusters []string
	// RejectCluster is the policy's rejectCluster when denies can be
	// answered with an A-ASSOCIATE-RJ ("" otherwise).
	RejectCluster string
}

// CrossCheck checks the objects against each other and the dicomgate
// policy; it returns what it found and every violation.
func CrossCheck(objs []*Object) (*Deployment, []error) {
	var errs []error
	fail := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	var wps, efs, gws, vss, drs []*Object
	services := map[string]*corev1.Service{} // host -> Service
	for _, o := range objs {
		switch {
		case o.Service != nil:
			services[o.Meta.Name+"."+o.Meta.Namespace+".svc."+DomainSuffix] = o.Service
		case o.Kind == "WasmPlugin":
			wps = append(wps, o)
		case o.Kind == "EnvoyFilter":
			efs = append(efs, o)
		case o.Kind == "Gateway":
			gws = append(gws, o)
		case o.Kind == "VirtualService":
			vss = append(vss, o)
		case o.Kind == "DestinationRule":
			drs = append(drs, o)
		}
	}
	d := &Deployment{}
	if len(wps) != 1 {
		fail("want exactly one WasmPlugin, found %d", len(wps))
		return d, errs
	}
	wpObj := wps[0]
	wp := wpObj.Istio.Spec.(*extensions.WasmPlugin)
	if wp.Type != extensions.PluginType_NETWORK {
		fail("%s: type is %v, must be NETWORK (an HTTP plugin never sees the DICOM TCP stream)", wpObj.ID(), wp.Type)
	}
	if len(wp.Match) != 1 || len(wp.Match[0].Ports) != 1 {
		fail("%s: match must name exactly one port (the DICOM server port), got %v", wpObj.ID(), wp.Match)
		return d, errs
	}
	d.DICOMPort = wp.Match[0].Ports[0].Number
	if m := wp.Match[0].Mode.String(); m != "CLIENT" && m != "UNDEFINED" {
		fail("%s: match mode %s never matches a gateway listener (Istio treats gateways as CLIENT)", wpObj.ID(), m)
	}
	if wp.GetSelector() == nil || len(wp.GetSelector().GetMatchLabels()) == 0 {
		fail("%s: needs selector.matchLabels selecting the ingress gateway pods", wpObj.ID())
	}

	// The WasmPlugin's port must be a TLS-terminating Gateway server on the
	// same pods.
	var server *networking.Server
	for _, g := range gws {
		gw := g.Istio.Spec.(*networking.Gateway)
		if !sameLabels(gw.GetSelector(), wp.GetSelector().GetMatchLabels()) {
			continue
		}
		for _, s := range gw.Servers {
			if s.GetPort().GetNumber() == d.DICOMPort {
				server = s
			}
		}
	}
	if server == nil {
		fail("%s: match port %d is not a server port of any Gateway selecting %v", wpObj.ID(), d.DICOMPort, wp.GetSelector().GetMatchLabels())
	} else {
		d.TLSMode = server.GetTls().GetMode()
		if server.GetPort().GetProtocol() != "TLS" {
			fail("Gateway server port %d has protocol %s; the DICOM server must be TLS", d.DICOMPort, server.GetPort().GetProtocol())
		}
		if mode := d.TLSMode; mode != networking.ServerTLSSettings_SIMPLE && mode != networking.ServerTLSSettings_MUTUAL {
			fail("Gateway server port %d has tls.mode %v: dicomgate needs Envoy to terminate TLS (SIMPLE or MUTUAL)", d.DICOMPort, mode)
		}
		if server.GetTls().GetCredentialName() == "" {
			fail("Gateway server port %d has no tls.credentialName", d.DICOMPort)
		}
	}

	// pluginConfig must be a valid dicomgate policy.
	js, err := protojson.Marshal(wp.GetPluginConfig())
	if err != nil {
		fail("%s: pluginConfig: %v", wpObj.ID(), err)
		return d, errs
	}
	d.PolicyJSON = js
	p, diags, err := policy.Load(js)
	if err != nil {
		fail("%s: pluginConfig is not a valid dicomgate policy: %v", wpObj.ID(), err)
		return d, errs
	}
	d.Policy = p
	for _, dg := range diags {
		if dg.Severity == policy.SeverityWarning {
			d.PolicyWarnings = append(d.PolicyWarnings, dg)
		}
	}

	// Early data: after-decision needs the EnvoyFilter on the same port,
	// immediate must not rely on it.
	for _, e := range efs {
		n, port, err := EarlyDataPatch(e.Istio.Spec.(*networking.EnvoyFilter))
		if err != nil {
			fail("%s: %v", e.ID(), err)
			continue
		}
		if port != d.DICOMPort {
			fail("%s: patches listener port %d, but the WasmPlugin matches port %d", e.ID(), port, d.DICOMPort)
		}
		if e.Meta.Namespace != wpObj.Meta.Namespace {
			fail("%s: namespace %q differs from the WasmPlugin's %q (both must be the gateway pods' namespace)", e.ID(), e.Meta.Namespace, wpObj.Meta.Namespace)
		}
		if !sameLabels(e.Istio.Spec.(*networking.EnvoyFilter).GetWorkloadSelector().GetLabels(), wp.GetSelector().GetMatchLabels()) {
			fail("%s: workloadSelector differs from the WasmPlugin's selector", e.ID())
		}
		d.EarlyDataBytes = n
	}
	switch p.UpstreamConnect() {
	case policy.ConnectAfterDecision:
		if d.EarlyDataBytes == 0 {
			fail(`policy has "upstreamConnect": "after-decision" but no EnvoyFilter sets tcp_proxy max_early_data_bytes on port %d: the filter would stall every connection`, d.DICOMPort)
		} else if d.EarlyDataBytes < p.MaxAssociateRQBytes() {
			fail("max_early_data_bytes %d < the policy's maxAssociateRQBytes %d: a large A-ASSOCIATE-RQ could never be read whole", d.EarlyDataBytes, p.MaxAssociateRQBytes())
		}
	case policy.ConnectImmediate:
		if d.EarlyDataBytes != 0 {
			fail(`policy has "upstreamConnect": "immediate" but an EnvoyFilter enables early data; drop the EnvoyFilter or use "after-decision"`)
		}
	}

	// Every cluster a rule names must be a Service port (and subset) here.
	d.Clusters, err = PolicyClusters(js)
	if err != nil {
		fail("%s: pluginConfig rules: %v", wpObj.ID(), err)
	}
	subsets := map[string]map[string]bool{}
	for _, o := range drs {
		dr := o.Istio.Spec.(*networking.DestinationRule)
		h := qualify(dr.GetHost(), o.Meta.Namespace)
		if subsets[h] == nil {
			subsets[h] = map[string]bool{}
		}
		for _, s := range dr.GetSubsets() {
			subsets[h][s.GetName()] = true
		}
	}
	for _, c := range d.Clusters {
		pc, err := ParseCluster(c)
		if err != nil {
			fail("%s: %v", wpObj.ID(), err)
			continue
		}
		if err := servicePort(services, pc.Host, pc.Port); err != nil {
			fail("%s: rule cluster %s: %v", wpObj.ID(), c, err)
		}
		if pc.Subset != "" && !subsets[pc.Host][pc.Subset] {
			fail("%s: rule cluster %s: no DestinationRule defines subset %q for %s", wpObj.ID(), c, pc.Subset, pc.Host)
		}
	}

	// The rejector cluster, like a route cluster, must be a Service port.
	if d.RejectCluster = p.RejectCluster(); d.RejectCluster != "" {
		if pc, err := ParseCluster(d.RejectCluster); err != nil {
			fail("%s: rejectCluster: %v", wpObj.ID(), err)
		} else if err := servicePort(services, pc.Host, pc.Port); err != nil {
			fail("%s: rejectCluster %s: %v", wpObj.ID(), d.RejectCluster, err)
		}
	}

	// VirtualServices: destinations exist; the DICOM tcp route has exactly one
	// destination (weighted_clusters would make tcp_proxy ignore the
	// filter-state cluster).
	dicomRoutes := 0
	for _, o := range vss {
		vs := o.Istio.Spec.(*networking.VirtualService)
		for i, r := range vs.GetTcp() {
			onPort := len(r.GetMatch()) == 0
			for _, m := range r.GetMatch() {
				if m.GetPort() == d.DICOMPort {
					onPort = true
				}
			}
			if !onPort {
				continue
			}
			dicomRoutes++
			if len(r.GetRoute()) != 1 {
				fail("%s: tcp[%d] on the DICOM port has %d destinations; with 2 or more Istio emits weighted_clusters and tcp_proxy ignores the cluster dicomgate sets, so route rules stop working: keep exactly one", o.ID(), i, len(r.GetRoute()))
			}
		}
		for _, dest := range allDestinations(vs) {
			h := qualify(dest.GetHost(), o.Meta.Namespace)
			if err := servicePort(services, h, int(dest.GetPort().GetNumber())); err != nil {
				fail("%s: destination %s:%d: %v", o.ID(), dest.GetHost(), dest.GetPort().GetNumber(), err)
			}
		}
	}
	if dicomRoutes == 0 {
		fail("no VirtualService has a tcp route for the DICOM port %d", d.DICOMPort)
	}
	for _, o := range drs {
		dr := o.Istio.Spec.(*networking.DestinationRule)
		h := qualify(dr.GetHost(), o.Meta.Namespace)
		if _, ok := services[h]; !ok {
			fail("%s: host %s is not a Service in the manifests", o.ID(), h)
		}
	}
	return d, errs
}

// EarlyDataPatch checks the EnvoyFilter's tcp_proxy patch: one
// NETWORK_FILTER MERGE on a GATEWAY listener port, matching
// envoy.filters.network.tcp_proxy, whose typed_config is a TcpProxy (resolved
// by @type with go-control-plane's registry, unknown fields rejected). The
// patch is merged into a tcp_proxy shaped like the one Istio generates for a
// single-destination route (stat_prefix and cluster set) and the result must
// pass go-control-plane's Validate(), Envoy's own constraints (e.g.
// max_early_data_bytes <= 1 MiB). It returns max_early_data_bytes and the port.
func EarlyDataPatch(ef *networking.EnvoyFilter) (uint32, uint32, error) {
	if len(ef.GetConfigPatches()) != 1 {
		return 0, 0, fmt.Errorf("want exactly one config patch, got %d", len(ef.GetConfigPatches()))
	}
	cp := ef.GetConfigPatches()[0]
	if cp.GetApplyTo() != networking.EnvoyFilter_NETWORK_FILTER {
		return 0, 0, fmt.Errorf("applyTo %v, want NETWORK_FILTER", cp.GetApplyTo())
	}
	if cp.GetPatch().GetOperation() != networking.EnvoyFilter_Patch_MERGE {
		return 0, 0, fmt.Errorf("patch operation %v, want MERGE (the rest of Istio's tcp_proxy must stay)", cp.GetPatch().GetOperation())
	}
	if cp.GetMatch().GetContext() != networking.EnvoyFilter_GATEWAY {
		return 0, 0, fmt.Errorf("match context %v, want GATEWAY", cp.GetMatch().GetContext())
	}
	l := cp.GetMatch().GetListener()
	if l == nil || l.GetPortNumber() == 0 {
		return 0, 0, errors.New("match.listener.portNumber is required: patch only the DICOM listener")
	}
	if n := l.GetFilterChain().GetFilter().GetName(); n != "envoy.filters.network.tcp_proxy" {
		return 0, 0, fmt.Errorf("match.listener.filterChain.filter.name %q, want envoy.filters.network.tcp_proxy", n)
	}
	value := cp.GetPatch().GetValue().GetFields()
	tc := value["typed_config"].GetStructValue()
	if tc == nil {
		return 0, 0, errors.New("patch.value.typed_config is missing")
	}
	tcJSON, err := protojson.Marshal(tc)
	if err != nil {
		return 0, 0, err
	}
	var anyMsg anypb.Any
	if err := (protojson.UnmarshalOptions{DiscardUnknown: false}).Unmarshal(tcJSON, &anyMsg); err != nil {
		return 0, 0, fmt.Errorf("patch.value.typed_config is not a valid %s: %w", "envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy", err)
	}
	msg, err := anyMsg.UnmarshalNew()
	if err != nil {
		return 0, 0, err
	}
	patch, ok := msg.(*tcpproxy.TcpProxy)
	if !ok {
		return 0, 0, fmt.Errorf("patch.value.typed_config is %T, want TcpProxy", msg)
	}
	generated := &tcpproxy.TcpProxy{
		StatPrefix:       "outbound|4242||orthanc.orthweb.svc.cluster.local",
		ClusterSpecifier: &tcpproxy.TcpProxy_Cluster{Cluster: "outbound|4242||orthanc.orthweb.svc.cluster.local"},
	}
	proto.Merge(generated, patch)
	if err := generated.ValidateAll(); err != nil {
		return 0, 0, fmt.Errorf("tcp_proxy after the MERGE fails Envoy's constraints: %w", err)
	}
	if generated.GetMaxEarlyDataBytes() == nil {
		return 0, 0, errors.New("the patch does not set max_early_data_bytes")
	}
	return generated.GetMaxEarlyDataBytes().GetValue(), l.GetPortNumber(), nil
}

func sameLabels(got, want map[string]string) bool {
	if len(got) != len(want) {
		return false
	}
	for k, v := range want {
		if got[k] != v {
			return false
		}
	}
	return true
}

// qualify turns a short host into NAME.NAMESPACE.svc.cluster.local the way
// Istio resolves VirtualService / DestinationRule hosts.
func qualify(host, ns string) string {
	if strings.Contains(host, ".") {
		return host
	}
	return host + "." + ns + ".svc." + DomainSuffix
}

func servicePort(services map[string]*corev1.Service, host string, port int) error {
	svc, ok := services[host]
	if !ok {
		known := make([]string, 0, len(services))
		for h := range services {
			known = append(known, h)
		}
		sort.Strings(known)
		return fmt.Errorf("no Service %s in the manifests (have %s)", host, strings.Join(known, ", "))
	}
	for _, p := range svc.Spec.Ports {
		if int(p.Port) == port {
			return nil
		}
	}
	return fmt.Errorf("Service %s has no port %d", host, port)
}

func allDestinations(vs *networking.VirtualService) []*networking.Destination {
	var out []*networking.Destination
	for _, r := range vs.GetTcp() {
		for _, d := range r.GetRoute() {
			out = append(out, d.GetDestination())
		}
	}
	for _, r := range vs.GetTls() {
		for _, d := range r.GetRoute() {
			out = append(out, d.GetDestination())
		}
	}
	for _, r := range vs.GetHttp() {
		for _, d := range r.GetRoute() {
			out = append(out, d.GetDestination())
		}
	}
	return out
}
