package validate

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dicomgate/dicomgate/sdk/policy"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"
	networking "istio.io/api/networking/v1alpha3"
	"sigs.k8s.io/yaml"
)

const manifestsDir = ".."

// build renders a kustomization (relative to manifests/) and parses it.
func build(t *testing.T, dir string) []*Object {
	t.Helper()
	y, err := Render(filepath.Join(manifestsDir, dir))
	require.NoError(t, err, "overlay %s does not render", dir)
	objs, err := Parse(y, dir)
	require.NoError(t, err, "%s", dir)
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
	var problems []string
	for _, f := range ValidateIstio(objs) {
		if f.Warning && strings.Contains(f.Err.Error(), envoyFilterWarning) {
			continue
		}
		problems = append(problems, f.String())
	}
	d, errs := CrossCheck(objs)
	for _, e := range errs {
		problems = append(problems, e.Error())
	}
	require.Empty(t, strings.Join(problems, "\n"), "%s: Istio validation findings and cross-check errors", name)
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
	require.NoError(t, err)
	dirs := []string{"base"}
	for _, e := range overlays {
		if e.IsDir() {
			dirs = append(dirs, filepath.Join("overlays", e.Name()))
		}
	}
	expect := map[string]func(t *testing.T, d *Deployment, objs []*Object){
		"base": func(t *testing.T, d *Deployment, objs []*Object) {
			require.Equal(t, networking.ServerTLSSettings_SIMPLE, d.TLSMode, "base DICOM server tls.mode (Korthweb seed)")
			require.Equal(t, policy.ConnectAfterDecision, d.Policy.UpstreamConnect(), "base: upstream connect")
			require.Equal(t, uint32(65536), d.EarlyDataBytes, "base: early data bytes")
			want := []string{
				"outbound|4242||pacs-a.orthweb.svc.cluster.local",
				"outbound|4242||pacs-a.orthweb.svc.cluster.local",
				"outbound|4242||pacs-b.orthweb.svc.cluster.local",
			}
			require.Equal(t, want, d.Clusters, "route clusters")
		},
		"overlays/mutual-tls": func(t *testing.T, d *Deployment, _ []*Object) {
			require.Equal(t, networking.ServerTLSSettings_MUTUAL, d.TLSMode, "tls.mode")
		},
		"overlays/dry-run": func(t *testing.T, d *Deployment, _ []*Object) {
			require.True(t, d.Policy.DryRun(), "policy mode is not dry-run")
		},
		"overlays/immediate": func(t *testing.T, d *Deployment, objs []*Object) {
			require.True(t, kinds(objs)["EnvoyFilter"] == 0 && d.EarlyDataBytes == 0, "immediate must not ship the early-data EnvoyFilter")
			require.Equal(t, policy.ConnectImmediate, d.Policy.UpstreamConnect(), "immediate: upstream connect")
			require.Empty(t, d.Clusters, "immediate: clusters")
		},
	}
	for _, dir := range dirs {
		t.Run(dir, func(t *testing.T) {
			objs := build(t, dir)
			k := kinds(objs)
			require.Equal(t,
				map[string]int{"Gateway": 1, "WasmPlugin": 1, "Service": 3, "DestinationRule": 3, "VirtualService": 2},
				map[string]int{"Gateway": k["Gateway"], "WasmPlugin": k["WasmPlugin"], "Service": k["Service"], "DestinationRule": k["DestinationRule"], "VirtualService": k["VirtualService"]},
				"unexpected resource set %v", k)
			d := mustBeValid(t, dir, objs)
			require.Equal(t, uint32(11112), d.DICOMPort, "DICOM port")
			var warnings []string
			for _, w := range d.PolicyWarnings {
				if !strings.Contains(w.Message, "dry-run") {
					warnings = append(warnings, fmt.Sprint(w))
				}
			}
			require.Empty(t, strings.Join(warnings, "\n"), "policy warnings")
			check, ok := expect[filepath.ToSlash(dir)]
			require.True(t, ok, "new overlay %s: add its expectations to this test", dir)
			check(t, d, objs)
		})
	}
}

func TestPolicyFileIsThePluginConfig(t *testing.T) {
	y, err := os.ReadFile(filepath.Join(manifestsDir, "base", "policy.yaml"))
	require.NoError(t, err)
	js, err := yaml.YAMLToJSON(y)
	require.NoError(t, err)
	d, errs := CrossCheck(build(t, "base"))
	require.Empty(t, errs)
	var a, b any
	_ = json.Unmarshal(js, &a)
	_ = json.Unmarshal(d.PolicyJSON, &b)
	require.Equal(t, a, b, "base/policy.yaml and the WasmPlugin pluginConfig differ:\n%s\n%s", js, d.PolicyJSON)
}

// Every resource file parses on its own, strictly (not only through
// kustomize, which would keep unknown fields).
func TestEveryResourceFileParsesStrictly(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join(manifestsDir, "base", "*.yaml"))
	n := 0
	var problems []string
	for _, f := range files {
		switch filepath.Base(f) {
		case "kustomization.yaml", "policy.yaml":
			continue
		}
		b, err := os.ReadFile(f)
		require.NoError(t, err)
		objs, err := Parse(b, f)
		if err != nil {
			problems = append(problems, err.Error())
		}
		for _, fnd := range ValidateIstio(objs) {
			if fnd.Warning && strings.Contains(fnd.Err.Error(), envoyFilterWarning) {
				continue
			}
			problems = append(problems, fnd.String())
		}
		n += len(objs)
	}
	require.Empty(t, strings.Join(problems, "\n"), "parse errors and Istio findings of base/*.yaml")
	require.Equal(t, 11, n, "objects parsed from base/*.yaml")
}

// mutate renders base, applies a textual replacement that must hit, and
// returns the parse error (if any) and the objects.
func mutate(t *testing.T, old, new string) ([]*Object, error) {
	t.Helper()
	y, err := Render(filepath.Join(manifestsDir, "base"))
	require.NoError(t, err)
	require.Contains(t, string(y), old, "mutation target not in the rendered base")
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
				require.Equal(t, parse, tc.stage, "failed to parse, expected a %v-stage failure: %v", tc.stage, err)
				got = err.Error()
			case tc.stage == parse:
				require.FailNow(t, "strict parse accepted the broken manifest")
			default:
				var all []string
				for _, f := range ValidateIstio(objs) {
					if !f.Warning {
						all = append(all, f.String())
					}
				}
				if tc.stage == istio {
					require.NotEmpty(t, all, "Istio validation accepted the broken manifest")
				}
				if tc.stage == cross {
					require.Empty(t, all, "expected only the cross-check to fail; Istio said")
					_, errs := CrossCheck(objs)
					for _, e := range errs {
						all = append(all, e.Error())
					}
					require.NotEmpty(t, all, "cross-checks accepted the broken manifest")
				}
				got = strings.Join(all, "\n")
			}
			require.Contains(t, got, tc.want, "the failure does not mention it")
		})
	}
}

// weightedRoute splits the DICOM tcp route into two weighted destinations:
// valid for Istio, but it silently disables dicomgate's routing.
func weightedRoute(t *testing.T) {
	y, err := Render(filepath.Join(manifestsDir, "base"))
	require.NoError(t, err)
	objs, err := Parse(y, "base")
	require.NoError(t, err)
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
		require.True(t, f.Warning, "Istio rejects a weighted route (%s); the test needs a valid one", f)
	}
	_, errs := CrossCheck(objs)
	require.Len(t, errs, 1, "cross-check errors %v, want one about weighted_clusters", errs)
	require.ErrorContains(t, errs[0], "weighted_clusters", "cross-check errors: want one about weighted_clusters")
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
	require.Len(t, errs, 1, "errors %v, want one naming the missing early-data EnvoyFilter", errs)
	require.ErrorContains(t, errs[0], "max_early_data_bytes", "want an error naming the missing early-data EnvoyFilter")
}

func TestOverlayThatDoesNotRenderFails(t *testing.T) {
	dir := t.TempDir()
	k := "resources:\n- ../does-not-exist\n"
	require.NoError(t, os.WriteFile(filepath.Join(dir, "kustomization.yaml"), []byte(k), 0o644))
	_, err := Render(dir)
	require.Error(t, err, "Render accepted a kustomization with a missing resource")
}
