package validate

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/dicomgate/dicomgate/internal/rejector"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// renderWithRejector renders base (relative to manifests/) plus the rejector
// component through a kustomization in a temporary directory.
func renderWithRejector(t *testing.T, base string) []*Object {
	t.Helper()
	dir := t.TempDir()
	// kustomize refuses absolute resource paths: name them relative to dir.
	abs := func(p string) string {
		a, err := filepath.Abs(filepath.Join(manifestsDir, p))
		require.NoError(t, err)
		r, err := filepath.Rel(dir, a)
		require.NoError(t, err)
		return r
	}
	k := "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources: [" + abs(base) +
		"]\ncomponents: [" + abs("components/rejector") + "]\n"
	require.NoError(t, os.WriteFile(filepath.Join(dir, "kustomization.yaml"), []byte(k), 0o644))
	y, err := Render(dir)
	require.NoError(t, err)
	objs, err := Parse(y, base+"+components/rejector")
	require.NoError(t, err)
	return objs
}

// TestRejectorComponent: the opt-in component (manifests/components/rejector)
// on every overlay with after-decision routing renders resources Istio and
// Kubernetes accept, turns the policy's default deny into a reject through a
// rejectCluster that is the component's Service port, and its Deployment
// serves that port, mounts the key where --key-file reads it and probes
// /healthz on the metrics port.
func TestRejectorComponent(t *testing.T) {
	for _, base := range []string{"base", "overlays/mutual-tls", "overlays/dry-run"} {
		t.Run(base, func(t *testing.T) {
			objs := renderWithRejector(t, base)
			k := kinds(objs)
			require.Equal(t, 1, k["Deployment"])
			require.Equal(t, 4, k["Service"])
			require.Equal(t, 4, k["DestinationRule"])
			d := mustBeValid(t, base, objs)
			require.False(t, t.Failed())
			require.Equal(t, "outbound|11112||dicomgate-reject.orthweb.svc.cluster.local", d.RejectCluster)
			require.NotEmpty(t, d.Policy.RejectKey())
			for _, w := range d.PolicyWarnings {
				require.Contains(t, w.Message, "dry-run", "unexpected policy warning %s", w)
			}

			var dep *Object
			var svc *corev1.Service
			for _, o := range objs {
				if o.Deployment != nil {
					dep = o
				}
				if o.Service != nil && o.Meta.Name == "dicomgate-reject" {
					svc = o.Service
				}
			}
			require.NotNil(t, svc)
			pod := dep.Deployment.Spec.Template
			for k, v := range svc.Spec.Selector {
				require.Equal(t, v, pod.Labels[k], "the Service must select the rejector pods")
			}
			require.Len(t, pod.Spec.Containers, 1)
			c := pod.Spec.Containers[0]
			ports := map[int32]bool{}
			for _, p := range c.Ports {
				ports[p.ContainerPort] = true
			}
			for _, p := range svc.Spec.Ports {
				require.Equal(t, intstr.Int, p.TargetPort.Type)
				require.True(t, ports[p.TargetPort.IntVal], "Service port %d targets %d, which the container does not expose", p.Port, p.TargetPort.IntVal)
			}
			require.Equal(t, []string{"reject", "--listen=0.0.0.0:11112", "--key-file=/etc/dicomgate-reject/reject.key", "--metrics=0.0.0.0:9090"}, c.Args)
			require.Len(t, c.VolumeMounts, 1)
			require.Equal(t, "/etc/dicomgate-reject", c.VolumeMounts[0].MountPath)
			require.Equal(t, "dicomgate-reject-key", pod.Spec.Volumes[0].Secret.SecretName)
			require.Equal(t, "/healthz", c.ReadinessProbe.HTTPGet.Path)
			require.Equal(t, "http-metrics", c.ReadinessProbe.HTTPGet.Port.StrVal)

			// The placeholder key in the component is what the rejector would
			// accept, so a deployment that forgets to replace it in one of the
			// two places fails visibly ("forged" refusals), never silently.
			_, err := rejector.New(rejector.Config{Keys: []string{d.Policy.RejectKey()}})
			require.NoError(t, err)
		})
	}
}

// TestRejectorComponentImmediate: with overlays/immediate the component's
// rejectCluster is ignored (every deny closes) and the policy says so.
func TestRejectorComponentImmediate(t *testing.T) {
	objs := renderWithRejector(t, "overlays/immediate")
	d, errs := CrossCheck(objs)
	require.Empty(t, errs)
	require.Equal(t, "", d.RejectCluster)
	found := false
	for _, w := range d.PolicyWarnings {
		if w.Path == "rejectCluster" {
			found = true
		}
	}
	require.True(t, found, "want the policy warning that rejectCluster is ignored in mode immediate; got %v", d.PolicyWarnings)
}
