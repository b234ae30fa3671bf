package validate

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dicomgate/dicomgate/manifests/render"
	"sigs.k8s.io/yaml"
)

// What `dicomgate manifest` renders passes the same Istio validation and,
// combined with the base's Gateway/routes/Services, the same cross-checks.
func TestDicomgateManifestOutputIsValid(t *testing.T) {
	y, err := os.ReadFile(filepath.Join(manifestsDir, "base", "policy.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	js, err := yaml.YAMLToJSON(y)
	if err != nil {
		t.Fatal(err)
	}
	res, err := render.Render(render.Options{
		PolicyJSON:  js,
		Image:       "oci://registry.example/dicomgate:0.1.0",
		SHA256:      strings.Repeat("0123456789abcdef", 4),
		EnvoyFilter: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	rendered, err := Parse(res.YAML, "dicomgate manifest")
	if err != nil {
		t.Fatalf("%v\n%s", err, res.YAML)
	}
	objs := rendered
	for _, o := range build(t, "base") {
		if o.Kind != "WasmPlugin" && o.Kind != "EnvoyFilter" {
			objs = append(objs, o)
		}
	}
	d := mustBeValid(t, "dicomgate manifest + base", objs)
	if d.EarlyDataBytes != 65536 || len(d.Clusters) != 3 {
		t.Errorf("rendered deployment: early data %d, clusters %v", d.EarlyDataBytes, d.Clusters)
	}
}
