package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/dicomgate/dicomgate/manifests/oci"
	"github.com/dicomgate/dicomgate/manifests/render"
	"github.com/dicomgate/dicomgate/sdk/policy"
	"github.com/spf13/cobra"
	"sigs.k8s.io/yaml"
)

// manifestFlags holds the flags of `dicomgate manifest`.
type manifestFlags struct {
	config, image, wasm, sha, namespace, name, output string
	port                                              uint32
	envoyFilter, docker                               bool
}

func init() {
	var f manifestFlags
	cmd := &cobra.Command{
		Use:   "manifest --config POLICY --image oci://REGISTRY/REPOSITORY:TAG [--wasm FILE]",
		Short: "Render the Istio WasmPlugin (and EnvoyFilter) that deploy dicomgate with a policy",
		Long: `Render the WasmPlugin that loads the dicomgate filter on the ingress gateway's
DICOM port, with the policy (JSON or YAML) as its pluginConfig, and with
--envoyfilter the EnvoyFilter that turns on tcp_proxy early data there (needed
for upstreamConnect "after-decision", Envoy >= 1.37).

The policy is validated first: every diagnostic is printed and the command
exits 1 if there is an error. With --wasm the module is pinned: for an oci://
image spec.sha256 is the digest of the image 'dicomgate push' builds from that
module (Istio compares it with the image manifest digest); for http(s):// and
file:// URLs it is the module's own sha256.`,
		Example: `  dicomgate manifest --config manifests/base/policy.yaml \
    --image oci://registry.example/dicomgate:0.1.0 --wasm build/dicomgate.wasm \
    --envoyfilter | kubectl apply -f -`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runManifest(cmd.OutOrStdout(), cmd.ErrOrStderr(), f)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.config, "config", "", "policy file (JSON or YAML; the value of spec.pluginConfig)")
	fl.StringVar(&f.image, "image", "", "module URL: oci://REGISTRY/REPOSITORY:TAG (or @sha256:DIGEST), https://… or file://…")
	fl.StringVar(&f.wasm, "wasm", "", "the module (build/dicomgate.wasm) whose digest spec.sha256 pins")
	fl.StringVar(&f.sha, "sha256", "", "spec.sha256 as 64 hex digits, instead of --wasm")
	fl.BoolVar(&f.envoyFilter, "envoyfilter", false, "also render the EnvoyFilter that enables tcp_proxy early data (max_early_data_bytes)")
	fl.BoolVar(&f.docker, "docker", false, "the image was pushed with Docker media types (dicomgate push --docker)")
	fl.StringVar(&f.namespace, "namespace", render.DefaultNamespace, "namespace of the resources: the ingress gateway pods' namespace")
	fl.StringVar(&f.name, "name", render.DefaultName, "name of the WasmPlugin (the EnvoyFilter is NAME-early-data)")
	fl.Uint32Var(&f.port, "port", render.DefaultPort, "the Gateway server port of the DICOM TLS server")
	fl.StringVarP(&f.output, "output", "o", "", "write the YAML to this file instead of standard output")
	rootCmd.AddCommand(cmd)
}

// runManifest implements `dicomgate manifest`.
func runManifest(stdout, stderr io.Writer, f manifestFlags) error {
	if f.config == "" {
		return &exitError{2, errors.New("--config is required: the policy file (JSON or YAML)")}
	}
	if f.image == "" {
		return &exitError{2, errors.New("--image is required: oci://REGISTRY/REPOSITORY:TAG")}
	}
	if f.wasm != "" && f.sha != "" {
		return &exitError{2, errors.New("--wasm and --sha256 are mutually exclusive: keep one")}
	}
	raw, err := os.ReadFile(f.config)
	if err != nil {
		return &exitError{1, fmt.Errorf("--config: %w", err)}
	}
	js, err := policyJSON(raw)
	if err != nil {
		return &exitError{1, fmt.Errorf("--config %s: %w", f.config, err)}
	}
	sha := strings.ToLower(f.sha)
	if f.wasm != "" {
		module, err := os.ReadFile(f.wasm)
		if err != nil {
			return &exitError{1, fmt.Errorf("--wasm: %w", err)}
		}
		if err := oci.CheckModule(module); err != nil {
			return &exitError{1, fmt.Errorf("--wasm %s: %w", f.wasm, err)}
		}
		if strings.HasPrefix(f.image, oci.URLScheme) {
			format := oci.FormatOCI
			if f.docker {
				format = oci.FormatDocker
			}
			if sha, err = oci.Digest(module, format); err != nil {
				return &exitError{1, fmt.Errorf("--wasm %s: %w", f.wasm, err)}
			}
		} else {
			sha = oci.ModuleSHA256(module)
		}
	}
	res, err := render.Render(render.Options{
		PolicyJSON:  js,
		Image:       f.image,
		SHA256:      sha,
		Name:        f.name,
		Namespace:   f.namespace,
		Port:        f.port,
		EnvoyFilter: f.envoyFilter,
	})
	if res != nil {
		printDiagnostics(stderr, f.config, res.Diagnostics)
	}
	if err != nil {
		var ve *policy.ValidationError
		if errors.As(err, &ve) {
			return &exitError{1, fmt.Errorf("%s: policy is invalid (%d problem(s) listed above)", f.config, countErrors(ve.Diagnostics))}
		}
		return &exitError{1, err}
	}
	for _, w := range res.Warnings {
		fmt.Fprintln(stderr, "warning:", w)
	}
	if f.output != "" {
		if err := os.WriteFile(f.output, res.YAML, 0o644); err != nil {
			return &exitError{1, fmt.Errorf("--output: %w", err)}
		}
		return nil
	}
	_, err = stdout.Write(res.YAML)
	return err
}

// policyJSON returns the policy as JSON: JSON input unchanged (so that
// diagnostics' byte offsets refer to the file), YAML converted.
func policyJSON(raw []byte) ([]byte, error) {
	t := bytes.TrimSpace(raw)
	if len(t) > 0 && (t[0] == '{' || t[0] == '[') {
		return raw, nil
	}
	js, err := yaml.YAMLToJSON(raw)
	if err != nil {
		return nil, fmt.Errorf("neither JSON nor valid YAML: %w", err)
	}
	return js, nil
}

// printDiagnostics writes each policy diagnostic as "FILE: PATH: message".
func printDiagnostics(w io.Writer, file string, diags []policy.Diagnostic) {
	for _, d := range diags {
		fmt.Fprintf(w, "%s: %s: %s\n", file, d.Severity, d)
	}
}

// countErrors counts the error-severity diagnostics.
func countErrors(diags []policy.Diagnostic) int {
	n := 0
	for _, d := range diags {
		if d.Severity == policy.SeverityError {
			n++
		}
	}
	return n
}
