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
)

// manifestFlags holds the flags of `dicomgate manifest`.
type manifestFlags struct {
	config, image, wasm, sha, namespace, name string
	// output is the format: yaml (a "---"-separated stream) or json (a
	// kind: List holding the resources).
	output string
	// outputFile is where to write the result instead of stdout.
	outputFile          string
	port                uint32
	envoyFilter, docker bool
}

func init() {
	var f manifestFlags
	cmd := &cobra.Command{
		Use:   "manifest --config CONFIG --image oci://REGISTRY/REPOSITORY:TAG [--wasm FILE] [-o yaml|json] [--output-file FILE]",
		Short: "Render the Istio WasmPlugin (and EnvoyFilter) that deploy dicomgate with a policy",
		Long: `Render the WasmPlugin that loads the dicomgate filter on the ingress gateway's
DICOM port, with the policy as its pluginConfig, and with --envoyfilter the
EnvoyFilter that turns on tcp_proxy early data there (needed for
upstreamConnect "after-decision", Envoy >= 1.37).

CONFIG is read as by "dicomgate check": a policy (JSON or YAML) or a
WasmPlugin manifest, whose spec.pluginConfig becomes the new WasmPlugin's
pluginConfig (its other fields are not carried over: the flags set them).

The policy is validated first: every diagnostic is printed on standard error
and the command exits 2 if there is an error. With --wasm the module is
pinned: for an oci:// image spec.sha256 is the digest of the image
'dicomgate push' builds from that module (Istio compares it with the image
manifest digest); for http(s):// and file:// URLs it is the module's own
sha256.

The resources go to standard output, or to --output-file: YAML documents
separated by "---" (-o yaml, the default), or with -o json one
"kind: List" object holding them (kubectl apply -f accepts both).`,
		Example: `  dicomgate manifest --config manifests/base/policy.yaml \
    --image oci://registry.example/dicomgate:0.1.0 --wasm build/dicomgate.wasm \
    --envoyfilter | kubectl apply -f -`,
		Args: exactArgs(),
	}
	o := addOutputFlag(cmd, formatYAML, formatJSON)
	o.fileFlag = "output-file"
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		f.output = o.format()
		return runManifest(cmd.OutOrStdout(), cmd.ErrOrStderr(), f)
	}
	fl := cmd.Flags()
	fl.StringVar(&f.config, "config", "", "policy file (JSON or YAML; the value of spec.pluginConfig) or a WasmPlugin manifest holding it")
	fl.StringVar(&f.image, "image", "", "module URL: oci://REGISTRY/REPOSITORY:TAG (or @sha256:DIGEST), https://… or file://…")
	fl.StringVar(&f.wasm, "wasm", "", "the module (build/dicomgate.wasm) whose digest spec.sha256 pins")
	fl.StringVar(&f.sha, "sha256", "", "spec.sha256 as 64 hex digits, instead of --wasm")
	fl.BoolVar(&f.envoyFilter, "envoyfilter", false, "also render the EnvoyFilter that enables tcp_proxy early data (max_early_data_bytes)")
	fl.BoolVar(&f.docker, "docker", false, "the image was pushed with Docker media types (dicomgate push --docker)")
	fl.StringVar(&f.namespace, "namespace", render.DefaultNamespace, "namespace of the resources: the ingress gateway pods' namespace")
	fl.StringVar(&f.name, "name", render.DefaultName, "name of the WasmPlugin (the EnvoyFilter is NAME-early-data)")
	fl.Uint32Var(&f.port, "port", render.DefaultPort, "the Gateway server port of the DICOM TLS server")
	fl.StringVar(&f.outputFile, "output-file", "", "write the resources to this file instead of standard output")
	_ = cmd.MarkFlagFilename("config", "json", "yaml", "yml")
	_ = cmd.MarkFlagFilename("wasm", "wasm")
	rootCmd.AddCommand(cmd)
}

// runManifest implements `dicomgate manifest`.
func runManifest(stdout, stderr io.Writer, f manifestFlags) error {
	if f.config == "" {
		return usage("--config is required: the policy file (JSON or YAML) or a WasmPlugin manifest")
	}
	if f.image == "" {
		return usage("--image is required: oci://REGISTRY/REPOSITORY:TAG")
	}
	if f.wasm != "" && f.sha != "" {
		return usage("--wasm and --sha256 are mutually exclusive: keep one")
	}
	raw, err := os.ReadFile(f.config)
	if err != nil {
		return invalid(fmt.Errorf("--config: %w", err))
	}
	docs, err := policyDocs(raw)
	if err != nil {
		return invalid(fmt.Errorf("--config %s: %w", f.config, err))
	}
	if len(docs) > 1 {
		return invalid(fmt.Errorf("--config %s: holds %d WasmPlugin manifests; manifest renders one policy", f.config, len(docs)))
	}
	doc := docs[0]
	sha := strings.ToLower(f.sha)
	if f.wasm != "" {
		module, err := os.ReadFile(f.wasm)
		if err != nil {
			return invalid(fmt.Errorf("--wasm: %w", err))
		}
		if err := oci.CheckModule(module); err != nil {
			return invalid(fmt.Errorf("--wasm %s: %w", f.wasm, err))
		}
		if strings.HasPrefix(f.image, oci.URLScheme) {
			format := oci.FormatOCI
			if f.docker {
				format = oci.FormatDocker
			}
			if sha, err = oci.Digest(module, format); err != nil {
				return invalid(fmt.Errorf("--wasm %s: %w", f.wasm, err))
			}
		} else {
			sha = oci.ModuleSHA256(module)
		}
	}
	res, err := render.Render(render.Options{
		PolicyJSON:  doc.json,
		Image:       f.image,
		SHA256:      sha,
		Name:        f.name,
		Namespace:   f.namespace,
		Port:        f.port,
		EnvoyFilter: f.envoyFilter,
	})
	if res != nil {
		diags := res.Diagnostics
		if err == nil {
			diags = append(diags, lintPolicy(doc.json)...)
		}
		for _, d := range diags {
			fmt.Fprintf(stderr, "%s: %s: %s\n", f.config, d.Severity, doc.diagnostic(d))
		}
	}
	if err != nil {
		var ve *policy.ValidationError
		if errors.As(err, &ve) {
			return invalid(fmt.Errorf("%s: policy is invalid: %s, listed above", f.config, countNoun(policy.ErrorCount(ve.Diagnostics), "error")))
		}
		return usage("%w", err)
	}
	for _, w := range res.Warnings {
		fmt.Fprintln(stderr, "warning:", w)
	}
	out := res.YAML
	if f.output == formatJSON {
		items, err := yamlDocsToJSON(res.YAML)
		if err != nil {
			return err
		}
		var b bytes.Buffer
		if err := writeJSON(&b, map[string]any{"apiVersion": "v1", "kind": "List", "items": items}); err != nil {
			return err
		}
		out = b.Bytes()
	}
	if f.outputFile != "" {
		if err := os.WriteFile(f.outputFile, out, 0o644); err != nil {
			return fmt.Errorf("--output-file: %w", err)
		}
		return nil
	}
	_, err = stdout.Write(out)
	return err
}

// policyJSON returns the policy a configuration file holds, as JSON, for
// serve: JSON input unchanged (so that diagnostics' byte offsets refer to
// the file), YAML converted, and the spec.pluginConfig of a WasmPlugin
// manifest, as check, eval and manifest read it.
func policyJSON(raw []byte) ([]byte, error) {
	docs, err := policyDocs(raw)
	if err != nil {
		return nil, err
	}
	if len(docs) > 1 {
		return nil, fmt.Errorf("holds %d WasmPlugin manifests; give one policy", len(docs))
	}
	return docs[0].json, nil
}

// printDiagnostics writes each policy diagnostic as "FILE: SEVERITY: PATH: message".
func printDiagnostics(w io.Writer, file string, diags []policy.Diagnostic) {
	for _, d := range diags {
		fmt.Fprintf(w, "%s: %s: %s\n", file, d.Severity, d)
	}
}
