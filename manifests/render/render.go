// Package render produces the Istio resources that deploy dicomgate on an
// ingress gateway — the WasmPlugin carrying a validated policy as its
// pluginConfig, and the EnvoyFilter that turns on tcp_proxy early data on the
// DICOM port — from Istio's own API types (istio.io/api), as YAML ready for
// `kubectl apply -f -`. It backs `dicomgate manifest`; the Istio-side
// validation of its output lives in the manifests/validate module.
package render

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/dicomgate/dicomgate/manifests/oci"
	"github.com/dicomgate/dicomgate/sdk/policy"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"
	extensions "istio.io/api/extensions/v1alpha1"
	networking "istio.io/api/networking/v1alpha3"
	typev1beta1 "istio.io/api/type/v1beta1"
	"sigs.k8s.io/yaml"
)

// Defaults of [Options].
const (
	DefaultName      = "dicomgate"
	DefaultNamespace = "istio-ingress"
	DefaultPort      = 11112
	// TCPProxyFilterName is the Envoy name of Istio's terminal TCP filter.
	TCPProxyFilterName = "envoy.filters.network.tcp_proxy"
	// TCPProxyType is the typed_config @type of tcp_proxy.
	TCPProxyType = "type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy"
	// MaxEarlyDataBytes is Envoy's upper bound for tcp_proxy
	// max_early_data_bytes (tcp_proxy.proto, lte 1 MiB).
	MaxEarlyDataBytes = 1 << 20
)

// DefaultSelector is the ingress gateway pod label the resources select.
var DefaultSelector = map[string]string{"istio": "ingressgateway"}

// Options describes the resources to render.
type Options struct {
	// PolicyJSON is the policy document (JSON); it must pass policy.Load.
	PolicyJSON []byte
	// Image is the module URL: oci://REGISTRY/REPOSITORY:TAG (or @sha256:…),
	// http(s):// or file://.
	Image string
	// SHA256 is the value for spec.sha256 (64 lowercase hex): for oci:// the
	// image manifest digest, otherwise the module's sha256. Empty leaves the
	// field unset (and [Render] adds a warning), except that an oci:// URL
	// pinned by digest supplies it.
	SHA256 string
	// Name and Namespace of both resources (defaults DefaultName,
	// DefaultNamespace; the namespace must be the gateway pods').
	Name, Namespace string
	// Port is the Gateway server port of the DICOM TLS server (default
	// DefaultPort).
	Port uint32
	// Selector selects the gateway pods (default DefaultSelector).
	Selector map[string]string
	// EnvoyFilter also renders the early-data EnvoyFilter.
	EnvoyFilter bool
}

// Result is the rendered YAML plus what the caller should tell the user.
type Result struct {
	// YAML holds the WasmPlugin and, if requested, the EnvoyFilter,
	// separated by "---".
	YAML []byte
	// Diagnostics are the policy's diagnostics (warnings only on success).
	Diagnostics []policy.Diagnostic
	// Warnings are deployment hints (unpinned module, missing EnvoyFilter).
	Warnings []string
}

// Render validates the policy and renders the resources. A policy with
// errors yields a *policy.ValidationError (its Diagnostics list every
// problem); bad options yield an error naming the option.
func Render(o Options) (*Result, error) {
	p, diags, err := policy.Load(o.PolicyJSON)
	if err != nil {
		return &Result{Diagnostics: diags}, err
	}
	res := &Result{Diagnostics: diags}
	if o.Name == "" {
		o.Name = DefaultName
	}
	if o.Namespace == "" {
		o.Namespace = DefaultNamespace
	}
	if o.Port == 0 {
		o.Port = DefaultPort
	}
	if o.Port > 65535 {
		return nil, fmt.Errorf("--port %d: a Gateway server port is 1 to 65535", o.Port)
	}
	if o.Selector == nil {
		o.Selector = DefaultSelector
	}
	if err := checkDNSLabel("--name", o.Name); err != nil {
		return nil, err
	}
	if err := checkDNSLabel("--namespace", o.Namespace); err != nil {
		return nil, err
	}
	if o.Image == "" {
		return nil, errors.New("--image is required: oci://REGISTRY/REPOSITORY:TAG (an image from `dicomgate push`)")
	}
	sha := o.SHA256
	if strings.HasPrefix(o.Image, oci.URLScheme) {
		ref, err := oci.ParseReference(o.Image, false)
		if err != nil {
			return nil, fmt.Errorf("--image: %w", err)
		}
		if i := strings.LastIndex(ref.Identifier(), "sha256:"); i == 0 {
			d := strings.TrimPrefix(ref.Identifier(), "sha256:")
			if sha != "" && sha != d {
				return nil, fmt.Errorf("--image is pinned to digest %s but the module's image digest is %s: push this module or fix the URL", d, sha)
			}
			sha = d
		}
	} else if !strings.HasPrefix(o.Image, "http://") && !strings.HasPrefix(o.Image, "https://") && !strings.HasPrefix(o.Image, "file://") {
		return nil, fmt.Errorf("--image %q: use oci://REGISTRY/REPOSITORY:TAG, https://HOST/PATH.wasm or file:///PATH.wasm", o.Image)
	}
	if sha != "" && !isHex64(sha) {
		return nil, fmt.Errorf("sha256 %q: must be 64 lowercase hex characters", sha)
	}
	if sha == "" {
		res.Warnings = append(res.Warnings, "no sha256 pinned: pass --wasm (or --sha256) so that the gateway only runs this exact module")
	}

	var cfg structpb.Struct
	if err := protojson.Unmarshal(o.PolicyJSON, &cfg); err != nil {
		return nil, fmt.Errorf("policy as pluginConfig: %w", err)
	}

	wp := &extensions.WasmPlugin{
		Selector:        &typev1beta1.WorkloadSelector{MatchLabels: o.Selector},
		Url:             o.Image,
		Sha256:          sha,
		ImagePullPolicy: extensions.PullPolicy_IfNotPresent,
		PluginConfig:    &cfg,
		Phase:           extensions.PluginPhase_AUTHN,
		FailStrategy:    extensions.FailStrategy_FAIL_CLOSE,
		Type:            extensions.PluginType_NETWORK,
		Match: []*extensions.WasmPlugin_TrafficSelector{{
			Mode:  typev1beta1.WorkloadMode_CLIENT,
			Ports: []*typev1beta1.PortSelector{{Number: o.Port}},
		}},
	}
	var out bytes.Buffer
	out.WriteString("# Rendered by `dicomgate manifest`. WasmPlugin: the dicomgate network filter on\n")
	fmt.Fprintf(&out, "# gateway server port %d (policy mode %s, upstreamConnect %s).\n", o.Port, p.Mode(), p.UpstreamConnect())
	if err := writeResource(&out, "extensions.istio.io/v1alpha1", "WasmPlugin", o.Name, o.Namespace, wp,
		map[string]any{"failStrategy": "FAIL_CLOSE"}); err != nil {
		return nil, err
	}

	switch {
	case o.EnvoyFilter && p.UpstreamConnect() == policy.ConnectImmediate:
		return nil, errors.New(`--envoyfilter: the policy has "upstreamConnect": "immediate", which does not use tcp_proxy early data; drop --envoyfilter or set "after-decision"`)
	case o.EnvoyFilter:
		ef, err := EnvoyFilter(o.Port, p.MaxAssociateRQBytes(), o.Selector)
		if err != nil {
			return nil, err
		}
		out.WriteString("---\n")
		fmt.Fprintf(&out, "# EnvoyFilter: tcp_proxy early data on port %d so the filter can route by\n", o.Port)
		out.WriteString("# A-ASSOCIATE-RQ (needs Envoy >= 1.37; without it use upstreamConnect: immediate).\n")
		if err := writeResource(&out, "networking.istio.io/v1alpha3", "EnvoyFilter", o.Name+"-early-data", o.Namespace, ef, nil); err != nil {
			return nil, err
		}
	case p.UpstreamConnect() == policy.ConnectAfterDecision:
		res.Warnings = append(res.Warnings, `the policy uses "upstreamConnect": "after-decision", which needs tcp_proxy early data on the gateway: add --envoyfilter (or apply manifests/base/envoyfilter.yaml)`)
	}
	res.YAML = out.Bytes()
	return res, nil
}

// EnvoyFilter returns the EnvoyFilter spec that MERGEs max_early_data_bytes =
// maxRQ into the gateway's tcp_proxy on port (Envoy >= 1.37). maxRQ above
// Envoy's 1 MiB cap is an error: a larger A-ASSOCIATE-RQ could never be
// buffered.
func EnvoyFilter(port, maxRQ uint32, selector map[string]string) (*networking.EnvoyFilter, error) {
	if maxRQ > MaxEarlyDataBytes {
		return nil, fmt.Errorf(`maxAssociateRQBytes %d exceeds tcp_proxy's early-data cap of %d bytes (max_early_data_bytes); lower "maxAssociateRQBytes" to at most %d`, maxRQ, MaxEarlyDataBytes, MaxEarlyDataBytes)
	}
	value, err := structpb.NewStruct(map[string]any{
		"name": TCPProxyFilterName,
		"typed_config": map[string]any{
			"@type":                TCPProxyType,
			"max_early_data_bytes": float64(maxRQ),
		},
	})
	if err != nil {
		return nil, err
	}
	return &networking.EnvoyFilter{
		WorkloadSelector: &networking.WorkloadSelector{Labels: selector},
		ConfigPatches: []*networking.EnvoyFilter_EnvoyConfigObjectPatch{{
			ApplyTo: networking.EnvoyFilter_NETWORK_FILTER,
			Match: &networking.EnvoyFilter_EnvoyConfigObjectMatch{
				Context: networking.EnvoyFilter_GATEWAY,
				ObjectTypes: &networking.EnvoyFilter_EnvoyConfigObjectMatch_Listener{
					Listener: &networking.EnvoyFilter_ListenerMatch{
						PortNumber: port,
						FilterChain: &networking.EnvoyFilter_ListenerMatch_FilterChainMatch{
							Filter: &networking.EnvoyFilter_ListenerMatch_FilterMatch{Name: TCPProxyFilterName},
						},
					},
				},
			},
			Patch: &networking.EnvoyFilter_Patch{
				Operation: networking.EnvoyFilter_Patch_MERGE,
				Value:     value,
			},
		}},
	}, nil
}

// writeResource appends one Kubernetes object (apiVersion, kind, metadata,
// spec) as YAML. extraSpec adds fields protojson omits as zero values (e.g.
// failStrategy FAIL_CLOSE) so that the output says them explicitly.
func writeResource(w *bytes.Buffer, apiVersion, kind, name, namespace string, spec proto.Message, extraSpec map[string]any) error {
	js, err := protojson.Marshal(spec)
	if err != nil {
		return fmt.Errorf("encoding the %s spec: %w", kind, err)
	}
	var specMap map[string]any
	if err := json.Unmarshal(js, &specMap); err != nil {
		return fmt.Errorf("encoding the %s spec: %w", kind, err)
	}
	for k, v := range extraSpec {
		if _, ok := specMap[k]; !ok {
			specMap[k] = v
		}
	}
	obj := map[string]any{
		"apiVersion": apiVersion,
		"kind":       kind,
		"metadata":   map[string]any{"name": name, "namespace": namespace},
		"spec":       specMap,
	}
	y, err := yaml.Marshal(obj)
	if err != nil {
		return fmt.Errorf("writing the %s as YAML: %w", kind, err)
	}
	w.Write(y)
	return nil
}

// checkDNSLabel reports whether s is a Kubernetes DNS-1123 label.
func checkDNSLabel(flag, s string) error {
	ok := len(s) > 0 && len(s) <= 63
	for i := 0; ok && i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9':
		case c == '-' && i > 0 && i < len(s)-1:
		default:
			ok = false
		}
	}
	if !ok {
		return fmt.Errorf("%s %q: must be a DNS label (lowercase letters, digits and '-', at most 63, starting and ending alphanumeric)", flag, s)
	}
	return nil
}

// isHex64 reports whether s is 64 lowercase hex characters.
func isHex64(s string) bool {
	if len(s) != 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}
