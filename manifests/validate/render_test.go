package validate

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dicomgate/dicomgate/manifests/render"
	"github.com/stretchr/testify/require"
	"sigs.k8s.io/yaml"
)

// What `dicomgate manifest` renders passes the same Istio validation and,
// combined with the base's Gateway/routes/Services, the same cross-checks.
func TestDicomgateManifestOutputIsValid(t *testing.T) {
	y, err := os.ReadFile(filepath.Join(manifestsDir, "base", "policy.yaml"))
	require.NoError(t, err)
	js, err := yaml.YAMLToJSON(y)
	require.NoError(t, err)
	res, err := render.Render(render.Options{
		PolicyJSON:  js,
		Image:       "oci://registry.example/dicomgate:0.1.0",
		SHA256:      strings.Repeat("0123456789abcdef", 4),
		EnvoyFilter: true,
	})
	require.NoError(t, err)
	rendered, err := Parse(res.YAML, "dicomgate manifest")
	require.NoError(t, err, "%s", res.YAML)
	objs := rendered
	for _, o := range build(t, "base") {
		if o.Kind != "WasmPlugin" && o.Kind != "EnvoyFilter" {
			objs = append(objs, o)
		}
	}
	d := mustBeValid(t, "dicomgate manifest + base", objs)
	require.Equal(t, uint32(65536), d.EarlyDataBytes, "rendered deployment: early data")
	require.Len(t, d.Clusters, 3, "rendered deployment: clusters")
}
