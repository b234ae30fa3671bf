package render

import (
	"encoding/json"
	"errors"
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/dicomgate/dicomgate/sdk/policy"
	"sigs.k8s.io/yaml"
)

// basePolicy is the example policy shipped in manifests/base.
func basePolicy(t *testing.T) []byte {
	t.Helper()
	y, err := os.ReadFile("../base/policy.yaml")
	if err != nil {
		t.Fatal(err)
	}
	js, err := yaml.YAMLToJSON(y)
	if err != nil {
		t.Fatal(err)
	}
	return js
}

// docs splits rendered YAML into decoded objects.
func docs(t *testing.T, y []byte) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, d := range strings.Split(string(y), "\n---\n") {
		var m map[string]any
		if err := yaml.Unmarshal([]byte(d), &m); err != nil {
			t.Fatalf("rendered YAML does not parse: %v\n%s", err, d)
		}
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
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Warnings) != 0 {
		t.Errorf("unexpected warnings %v", res.Warnings)
	}
	ds := docs(t, res.YAML)
	if len(ds) != 2 {
		t.Fatalf("got %d documents, want WasmPlugin + EnvoyFilter", len(ds))
	}
	wp, ef := ds[0], ds[1]
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
			t.Errorf("got %v, want %v", c.got, c.want)
		}
	}
	match, _ := field(wp, "spec", "match").([]any)
	if len(match) != 1 || !reflect.DeepEqual(match[0], map[string]any{"mode": "CLIENT", "ports": []any{map[string]any{"number": float64(11112)}}}) {
		t.Errorf("match = %v", match)
	}
	// pluginConfig is the policy, value for value.
	var want map[string]any
	if err := json.Unmarshal(pol, &want); err != nil {
		t.Fatal(err)
	}
	if got := field(wp, "spec", "pluginConfig"); !reflect.DeepEqual(got, want) {
		t.Errorf("pluginConfig differs from the policy:\n got %v\nwant %v", got, want)
	}
	patches, _ := field(ef, "spec", "configPatches").([]any)
	if len(patches) != 1 {
		t.Fatalf("configPatches = %v", patches)
	}
	p := patches[0].(map[string]any)
	if field(p, "match", "listener", "portNumber") != float64(11112) || field(p, "patch", "operation") != "MERGE" || field(p, "match", "context") != "GATEWAY" {
		t.Errorf("patch = %v", p)
	}
	if got := field(p, "patch", "value", "typed_config", "max_early_data_bytes"); got != float64(65536) {
		t.Errorf("max_early_data_bytes = %v, want the policy's maxAssociateRQBytes 65536", got)
	}
}

func TestRenderOptions(t *testing.T) {
	pol := basePolicy(t)
	res, err := Render(Options{PolicyJSON: pol, Image: "oci://r.example/dg@sha256:" + digest, Namespace: "istio-system", Name: "dg", Port: 2762})
	if err != nil {
		t.Fatal(err)
	}
	wp := docs(t, res.YAML)[0]
	if field(wp, "spec", "sha256") != digest {
		t.Errorf("a digest-pinned URL must supply sha256, got %v", field(wp, "spec", "sha256"))
	}
	if field(wp, "metadata", "namespace") != "istio-system" || field(wp, "metadata", "name") != "dg" {
		t.Errorf("metadata = %v", wp["metadata"])
	}
	if !strings.Contains(string(res.YAML), "number: 2762") {
		t.Error("port 2762 not rendered")
	}
	if len(res.Warnings) != 1 || !strings.Contains(res.Warnings[0], "--envoyfilter") {
		t.Errorf("after-decision without --envoyfilter must warn, got %v", res.Warnings)
	}

	res, err = Render(Options{PolicyJSON: pol, Image: "oci://r.example/dg:1"})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(strings.Join(res.Warnings, "\n"), "no sha256 pinned") {
		t.Errorf("unpinned module must warn, got %v", res.Warnings)
	}

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
		tc.o.PolicyJSON = pol
		if _, err := Render(tc.o); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want %q", tc.name, err, tc.want)
		}
	}
}

func TestRenderRejectsInvalidPolicy(t *testing.T) {
	res, err := Render(Options{PolicyJSON: []byte(`{"defaultAction":"maybe","rules":[{"action":"route"}]}`), Image: "oci://r/x:1"})
	var ve *policy.ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("err = %v, want *policy.ValidationError", err)
	}
	if res == nil || len(res.Diagnostics) < 2 {
		t.Fatalf("every diagnostic must be returned, got %+v", res)
	}
}

func TestRenderEnvoyFilterConstraints(t *testing.T) {
	immediate := []byte(`{"defaultAction":"deny","upstreamConnect":"immediate","rules":[{"name":"a","match":{"calledAETitles":["ORTHANC"]},"action":"allow"}]}`)
	if _, err := Render(Options{PolicyJSON: immediate, Image: "oci://r/x:1", EnvoyFilter: true}); err == nil || !strings.Contains(err.Error(), "immediate") {
		t.Errorf("immediate + --envoyfilter: err = %v", err)
	}
	res, err := Render(Options{PolicyJSON: immediate, Image: "oci://r/x:1", SHA256: digest})
	if err != nil || len(res.Warnings) != 0 {
		t.Errorf("immediate without EnvoyFilter: err %v warnings %v", err, res.Warnings)
	}
	big := []byte(`{"defaultAction":"deny","maxAssociateRQBytes":2097152}`)
	if _, err := Render(Options{PolicyJSON: big, Image: "oci://r/x:1", EnvoyFilter: true}); err == nil || !strings.Contains(err.Error(), "maxAssociateRQBytes") {
		t.Errorf("2 MiB RQ with early data: err = %v", err)
	}
	if _, err := EnvoyFilter(11112, MaxEarlyDataBytes, DefaultSelector); err != nil {
		t.Errorf("1 MiB is Envoy's limit and must be accepted: %v", err)
	}
}
