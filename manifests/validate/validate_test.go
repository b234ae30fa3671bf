package validate

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/dicomgate/dicomgate/sdk/policy"
	"google.golang.org/protobuf/proto"
	networking "istio.io/api/networking/v1alpha3"
	"sigs.k8s.io/yaml"
)

const manifestsDir = ".."

// build renders a kustomization (relative to manifests/) and parses it.
func build(t *testing.T, dir string) []*Object {
	t.Helper()
	y, err := Render(filepath.Join(manifestsDir, dir))
	if err != nil {
		t.Fatalf("overlay %s does not render: %v", dir, err)
	}
	objs, err := Parse(y, dir)
	if err != nil {
		t.Fatalf("%s: %v", dir, err)
	}
	return objs
}

// envoyFilterWarning is the warning Istio attaches to every EnvoyFilter
// (pkg/config/validation/envoyfilter ValidateEnvoyFilter); it is the only
// warning accepted.
const envoyFilterWarning = "EnvoyFilter exposes internal implementation details"

// mustBeValid runs Istio's validation and the cross-checks and fails on any
// error or Istio warning (except the generic EnvoyFilter one).
func mustBeValid(t *testing.T, name string, objs []*Object) *Deployment {
	t.Helper()
	for _, f := range ValidateIstio(objs) {
		if f.Warning && strings.Contains(f.Err.Error(), envoyFilterWarning) {
			continue
		}
		t.Errorf("%s: %s", name, f)
	}
	d, errs := CrossCheck(objs)
	for _, e := range errs {
		t.Errorf("%s: %v", name, e)
	}
	return d
}

func kinds(objs []*Object) map[string]int {
	m := map[string]int{}
	for _, o := range objs {
		m[o.Kind]++
	}
	return m
}

func TestBaseAndOverlays(t *testing.T) {
	overlays, err := os.ReadDir(filepath.Join(manifestsDir, "overlays"))
	if err != nil {
		t.Fatal(err)
	}
	dirs := []string{"base"}
	for _, e := range overlays {
		if e.IsDir() {
			dirs = append(dirs, filepath.Join("overlays", e.Name()))
		}
	}
	expect := map[string]func(t *testing.T, d *Deployment, objs []*Object){
		"base": func(t *testing.T, d *Deployment, objs []*Object) {
			if d.TLSMode != networking.ServerTLSSettings_SIMPLE {
				t.Errorf("base DICOM server tls.mode = %v, want SIMPLE (Korthweb seed)", d.TLSMode)
			}
			if d.Policy.UpstreamConnect() != policy.ConnectAfterDecision || d.EarlyDataBytes != 65536 {
				t.Errorf("base: connect %v early data %d", d.Policy.UpstreamConnect(), d.EarlyDataBytes)
			}
			want := []string{
				"outbound|4242||pacs-a.orthweb.svc.cluster.local",
				"outbound|4242||pacs-a.orthweb.svc.cluster.local",
				"outbound|4242||pacs-b.orthweb.svc.cluster.local",
			}
			if !reflect.DeepEqual(d.Clusters, want) {
				t.Errorf("route clusters %v, want %v", d.Clusters, want)
			}
		},
		"overlays/mutual-tls": func(t *testing.T, d *Deployment, _ []*Object) {
			if d.TLSMode != networking.ServerTLSSettings_MUTUAL {
				t.Errorf("tls.mode = %v, want MUTUAL", d.TLSMode)
			}
		},
		"overlays/dry-run": func(t *testing.T, d *Deployment, _ []*Object) {
			if !d.Policy.DryRun() {
				t.Error("policy mode is not dry-run")
			}
		},
		"overlays/immediate": func(t *testing.T, d *Deployment, objs []*Object) {
			if kinds(objs)["EnvoyFilter"] != 0 || d.EarlyDataBytes != 0 {
				t.Error("immediate must not ship the early-data EnvoyFilter")
			}
			if d.Policy.UpstreamConnect() != policy.ConnectImmediate || len(d.Clusters) != 0 {
				t.Errorf("immediate: connect %v, clusters %v", d.Policy.UpstreamConnect(), d.Clusters)
			}
		},
	}
	for _, dir := range dirs {
		t.Run(dir, func(t *testing.T) {
			objs := build(t, dir)
			k := kinds(objs)
			if k["Gateway"] != 1 || k["WasmPlugin"] != 1 || k["Service"] != 3 || k["DestinationRule"] != 3 || k["VirtualService"] != 2 {
				t.Errorf("unexpected resource set %v", k)
			}
			d := mustBeValid(t, dir, objs)
			if t.Failed() {
				return
			}
			if d.DICOMPort != 11112 {
				t.Errorf("DICOM port %d, want 11112", d.DICOMPort)
			}
			for _, w := range d.PolicyWarnings {
				if !strings.Contains(w.Message, "dry-run") {
					t.Errorf("policy warning: %s", w)
				}
			}
			check, ok := expect[filepath.ToSlash(dir)]
			if !ok {
				t.Fatalf("new overlay %s: add its expectations to this test", dir)
			}
			check(t, d, objs)
		})
	}
}

func TestPolicyFileIsThePluginConfig(t *testing.T) {
	y, err := os.ReadFile(filepath.Join(manifestsDir, "base", "policy.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	js, err := yaml.YAMLToJSON(y)
	if err != nil {
		t.Fatal(err)
	}
	d, errs := CrossCheck(build(t, "base"))
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	var a, b any
	_ = json.Unmarshal(js, &a)
	_ = json.Unmarshal(d.PolicyJSON, &b)
	if !reflect.DeepEqual(a, b) {
		t.Errorf("base/policy.yaml and the WasmPlugin pluginConfig differ:\n%s\n%s", js, d.PolicyJSON)
	}
}

// Every resource file parses on its own, strictly (not only through
// kustomize, which would keep unknown fields).
func TestEveryResourceFileParsesStrictly(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join(manifestsDir, "base", "*.yaml"))
	n := 0
	for _, f := range files {
		switch filepath.Base(f) {
		case "kustomization.yaml", "policy.yaml":
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		objs, err := Parse(b, f)
		if err != nil {
			t.Errorf("%v", err)
		}
		for _, fnd := range ValidateIstio(objs) {
			if fnd.Warning && strings.Contains(fnd.Err.Error(), envoyFilterWarning) {
				continue
			}
			t.Errorf("%s", fnd)
		}
		n += len(objs)
	}
	if n != 11 {
		t.Errorf("parsed %d objects from base/*.yaml, want 11", n)
	}
}

// mutate renders base, applies a textual replacement that must hit, and
// returns the parse error (if any) and the objects.
func mutate(t *testing.T, old, new string) ([]*Object, error) {
	t.Helper()
	y, err := Render(filepath.Join(manifestsDir, "base"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(y), old) {
		t.Fatalf("mutation target %q not in the rendered base", old)
	}
	return Parse([]byte(strings.Replace(string(y), old, new, 1)), "mutated")
}

func TestChecksCatchBrokenManifests(t *testing.T) {
	type stage int
	const (
		parse stage = iota
		istio
		cross
	)
	cases := []struct {
		name     string
		old, new string
		stage    stage
		want     string
	}{
		{"unknown Gateway field", "credentialName: dicom-credential", "credentialName: dicom-credential\n      cipherSuite: x", parse, "unknown field"},
		{"misspelled WasmPlugin field", "imagePullPolicy: IfNotPresent", "imagePullPolcy: IfNotPresent", parse, "imagePullPolcy"},
		{"unknown top-level key", "kind: WasmPlugin", "kind: WasmPlugin\nspecs: {}", parse, "specs"},
		{"bad enum", "phase: AUTHN", "phase: FIRST", parse, "FIRST"},
		{"sha256 not hex", `sha256: "0000000000000000000000000000000000000000000000000000000000000000"`, `sha256: "00000000000000000000000000000000000000000000000000000000000000zz"`, istio, "sha256"},
		{"sha256 as a YAML number", `sha256: "0000000000000000000000000000000000000000000000000000000000000000"`, `sha256: 0000000000000000000000000000000000000000000000000000000000000000`, parse, "cannot unmarshal number"},
		{"gateway server without hosts", "  servers:\n", "  servers:\n  - port: {number: 2762, name: tls-x, protocol: TLS}\n    tls: {mode: SIMPLE, credentialName: c}\n", istio, "at least one host"},
		{"weighted DICOM route", "        port:\n          number: 4242\n  tcp:", "        port:\n          number: 4242\n  tcp:", cross, ""},
		{"rule cluster without Service", "cluster: outbound|4242||pacs-b.orthweb.svc.cluster.local", "cluster: outbound|4242||pacs-c.orthweb.svc.cluster.local", cross, "no Service pacs-c.orthweb.svc.cluster.local"},
		{"rule cluster wrong port", "cluster: outbound|4242||pacs-b.orthweb.svc.cluster.local", "cluster: outbound|104||pacs-b.orthweb.svc.cluster.local", cross, "has no port 104"},
		{"invalid policy", "defaultAction: deny", "defaultAction: maybe", cross, "not a valid dicomgate policy"},
		{"early data too large for Envoy", "max_early_data_bytes: 65536", "max_early_data_bytes: 2097152", cross, "MaxEarlyDataBytes"},
		{"early data below maxAssociateRQBytes", "max_early_data_bytes: 65536", "max_early_data_bytes: 4096", cross, "maxAssociateRQBytes"},
		{"unknown tcp_proxy field", "max_early_data_bytes: 65536", "max_early_data_bytes: 65536\n          early_data: true", cross, "early_data"},
		{"EnvoyFilter on another port", "portNumber: 11112", "portNumber: 11113", cross, "port 11113"},
		{"WasmPlugin on a non-Gateway port", "- number: 11112", "- number: 11113", cross, "not a server port"},
		{"HTTP plugin type", "type: NETWORK", "type: HTTP", cross, "NETWORK"},
		{"SERVER mode never matches a gateway", "mode: CLIENT", "mode: SERVER", cross, "CLIENT"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if tc.name == "weighted DICOM route" {
				weightedRoute(t)
				return
			}
			objs, err := mutate(t, tc.old, tc.new)
			var got string
			switch {
			case err != nil:
				if tc.stage != parse {
					t.Fatalf("failed to parse, expected a %v-stage failure: %v", tc.stage, err)
				}
				got = err.Error()
			case tc.stage == parse:
				t.Fatal("strict parse accepted the broken manifest")
			default:
				var all []string
				for _, f := range ValidateIstio(objs) {
					if !f.Warning {
						all = append(all, f.String())
					}
				}
				if tc.stage == istio && len(all) == 0 {
					t.Fatal("Istio validation accepted the broken manifest")
				}
				if tc.stage == cross {
					if len(all) > 0 {
						t.Fatalf("expected only the cross-check to fail, Istio said %v", all)
					}
					_, errs := CrossCheck(objs)
					for _, e := range errs {
						all = append(all, e.Error())
					}
					if len(all) == 0 {
						t.Fatal("cross-checks accepted the broken manifest")
					}
				}
				got = strings.Join(all, "\n")
			}
			if !strings.Contains(got, tc.want) {
				t.Errorf("failure %q does not mention %q", got, tc.want)
			}
		})
	}
}

// weightedRoute splits the DICOM tcp route into two weighted destinations:
// valid for Istio, but it silently disables dicomgate's routing.
func weightedRoute(t *testing.T) {
	y, err := Render(filepath.Join(manifestsDir, "base"))
	if err != nil {
		t.Fatal(err)
	}
	objs, err := Parse(y, "base")
	if err != nil {
		t.Fatal(err)
	}
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
	for _, f := range ValidateIstio(objs) {
		if !f.Warning {
			t.Fatalf("Istio rejects a weighted route (%s); the test needs a valid one", f)
		}
	}
	_, errs := CrossCheck(objs)
	if len(errs) != 1 || !strings.Contains(errs[0].Error(), "weighted_clusters") {
		t.Fatalf("cross-check errors %v, want one about weighted_clusters", errs)
	}
}

func TestAfterDecisionNeedsTheEnvoyFilter(t *testing.T) {
	objs := build(t, "base")
	var kept []*Object
	for _, o := range objs {
		if o.Kind != "EnvoyFilter" {
			kept = append(kept, o)
		}
	}
	_, errs := CrossCheck(kept)
	if len(errs) != 1 || !strings.Contains(errs[0].Error(), "max_early_data_bytes") {
		t.Fatalf("errors %v, want one naming the missing early-data EnvoyFilter", errs)
	}
}

func TestOverlayThatDoesNotRenderFails(t *testing.T) {
	dir := t.TempDir()
	k := "resources:\n- ../does-not-exist\n"
	if err := os.WriteFile(filepath.Join(dir, "kustomization.yaml"), []byte(k), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Render(dir); err == nil {
		t.Fatal("Render accepted a kustomization with a missing resource")
	}
}
