package render

import (
	"encoding/json"
	"fmt"
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/dicomgate/dicomgate/sdk/policy"
	"github.com/stretchr/testify/require"
	"sigs.k8s.io/yaml"
)

// basePolicy is the example policy shipped in manifests/base.
func basePolicy(t *testing.T) []byte {
	t.Helper()
	y, err := os.ReadFile("../base/policy.yaml")
	require.NoError(t, err)
	js, err := yaml.YAMLToJSON(y)
	require.NoError(t, err)
	return js
}

// docs splits rendered YAML into decoded objects.
func docs(t *testing.T, y []byte) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, d := range strings.Split(string(y), "\n---\n") {
		var m map[string]any
		require.NoError(t, yaml.Unmarshal([]byte(d), &m), "rendered YAML does not parse:\n%s", d)
		out = append(out, m)
	}
	return out
}

func field(m map[string]any, path ...string) any {
	var cur any = m
	for _, p := range path {
		mm, ok := cur.(map[string]any)
		if !ok {
			return nil
		}
		cur = mm[p]
	}
	return cur
}

const digest = "4f2a8c1b9e0d3f5a6b7c8d9e0f1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c"

func TestRenderWasmPluginAndEnvoyFilter(t *testing.T) {
	pol := basePolicy(t)
	res, err := Render(Options{PolicyJSON: pol, Image: "oci://registry.example/dicomgate:0.1.0", SHA256: digest, EnvoyFilter: true})
	require.NoError(t, err)
	require.Empty(t, res.Warnings, "unexpected warnings")
	ds := docs(t, res.YAML)
	require.Len(t, ds, 2, "want WasmPlugin + EnvoyFilter")
	wp, ef := ds[0], ds[1]
	var mismatches []string
	for _, c := range []struct {
		got  any
		want any
	}{
		{wp["kind"], "WasmPlugin"},
		{field(wp, "metadata", "namespace"), DefaultNamespace},
		{field(wp, "spec", "type"), "NETWORK"},
		{field(wp, "spec", "phase"), "AUTHN"},
		{field(wp, "spec", "failStrategy"), "FAIL_CLOSE"},
		{field(wp, "spec", "imagePullPolicy"), "IfNotPresent"},
		{field(wp, "spec", "sha256"), digest},
		{field(wp, "spec", "url"), "oci://registry.example/dicomgate:0.1.0"},
		{field(wp, "spec", "selector", "matchLabels", "istio"), "ingressgateway"},
		{ef["kind"], "EnvoyFilter"},
		{field(ef, "metadata", "name"), "dicomgate-early-data"},
	} {
		if !reflect.DeepEqual(c.got, c.want) {
			mismatches = append(mismatches, fmt.Sprintf("got %v, want %v", c.got, c.want))
		}
	}
	require.Empty(t, strings.Join(mismatches, "\n"), "WasmPlugin / EnvoyFilter fields")
	match, _ := field(wp, "spec", "match").([]any)
	require.Equal(t, []any{map[string]any{"mode": "CLIENT", "ports": []any{map[string]any{"number": float64(11112)}}}}, match, "spec.match")
	// pluginConfig is the policy, value for value.
	var want map[string]any
	require.NoError(t, json.Unmarshal(pol, &want))
	require.Equal(t, want, field(wp, "spec", "pluginConfig"), "pluginConfig differs from the policy")
	patches, _ := field(ef, "spec", "configPatches").([]any)
	require.Len(t, patches, 1, "configPatches = %v", patches)
	p := patches[0].(map[string]any)
	require.True(t, field(p, "match", "listener", "portNumber") == float64(11112) && field(p, "patch", "operation") == "MERGE" && field(p, "match", "context") == "GATEWAY",
		"patch = %v", p)
	require.Equal(t, float64(65536), field(p, "patch", "value", "typed_config", "max_early_data_bytes"), "max_early_data_bytes: want the policy's maxAssociateRQBytes 65536")
}

func TestRenderOptions(t *testing.T) {
	pol := basePolicy(t)
	res, err := Render(Options{PolicyJSON: pol, Image: "oci://r.example/dg@sha256:" + digest, Namespace: "istio-system", Name: "dg", Port: 2762})
	require.NoError(t, err)
	wp := docs(t, res.YAML)[0]
	require.Equal(t, digest, field(wp, "spec", "sha256"), "a digest-pinned URL must supply sha256")
	require.True(t, field(wp, "metadata", "namespace") == "istio-system" && field(wp, "metadata", "name") == "dg", "metadata = %v", wp["metadata"])
	require.Contains(t, string(res.YAML), "number: 2762", "port 2762 not rendered")
	require.Len(t, res.Warnings, 1, "after-decision without --envoyfilter must warn, got %v", res.Warnings)
	require.Contains(t, res.Warnings[0], "--envoyfilter", "after-decision without --envoyfilter must warn")

	res, err = Render(Options{PolicyJSON: pol, Image: "oci://r.example/dg:1"})
	require.NoError(t, err)
	require.Contains(t, strings.Join(res.Warnings, "\n"), "no sha256 pinned", "unpinned module must warn")

	for _, tc := range []struct {
		name string
		o    Options
		want string
	}{
		{"digest mismatch", Options{Image: "oci://r.example/dg@sha256:" + digest, SHA256: strings.Repeat("a", 64)}, "pinned to digest"},
		{"bad namespace", Options{Image: "oci://r/x:1", Namespace: "Istio_Ingress"}, "--namespace"},
		{"bad scheme", Options{Image: "ftp://r/x.wasm"}, "--image"},
		{"missing image", Options{}, "--image is required"},
		{"bad sha", Options{Image: "oci://r/x:1", SHA256: "ABC"}, "64 lowercase hex"},
		{"port", Options{Image: "oci://r/x:1", Port: 70000}, "--port"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.o.PolicyJSON = pol
			_, err := Render(tc.o)
			require.ErrorContains(t, err, tc.want, tc.name)
		})
	}
}

func TestRenderRejectsInvalidPolicy(t *testing.T) {
	res, err := Render(Options{PolicyJSON: []byte(`{"defaultAction":"maybe","rules":[{"action":"route"}]}`), Image: "oci://r/x:1"})
	var ve *policy.ValidationError
	require.ErrorAs(t, err, &ve)
	require.NotNil(t, res, "every diagnostic must be returned")
	require.GreaterOrEqual(t, len(res.Diagnostics), 2, "every diagnostic must be returned, got %+v", res)
}

func TestRenderEnvoyFilterConstraints(t *testing.T) {
	immediate := []byte(`{"defaultAction":"deny","upstreamConnect":"immediate","rules":[{"name":"a","match":{"calledAETitles":["ORTHANC"]},"action":"allow"}]}`)
	_, err := Render(Options{PolicyJSON: immediate, Image: "oci://r/x:1", EnvoyFilter: true})
	require.ErrorContains(t, err, "immediate", "immediate + --envoyfilter")
	res, err := Render(Options{PolicyJSON: immediate, Image: "oci://r/x:1", SHA256: digest})
	require.NoError(t, err, "immediate without EnvoyFilter")
	require.Empty(t, res.Warnings, "immediate without EnvoyFilter: warnings")
	big := []byte(`{"defaultAction":"deny","maxAssociateRQBytes":2097152}`)
	_, err = Render(Options{PolicyJSON: big, Image: "oci://r/x:1", EnvoyFilter: true})
	require.ErrorContains(t, err, "maxAssociateRQBytes", "2 MiB RQ with early data")
	_, err = EnvoyFilter(11112, MaxEarlyDataBytes, DefaultSelector)
	require.NoError(t, err, "1 MiB is Envoy's limit and must be accepted")
}
