package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/dicomgate/dicomgate/manifests/oci"
	"github.com/spf13/cobra"
)

// pushFlags holds the flags of `dicomgate push`.
type pushFlags struct {
	layout           string
	insecure, docker bool
	// rejector: FILE is a static Linux dicomgate binary; build the
	// rejector's container image instead of the plugin image.
	rejector bool
	// output is the format: text, json or yaml.
	output string
}

// pushResult is the -o json|yaml output of push.
type pushResult struct {
	// Reference is the pushed oci:// reference ("" for --layout without one).
	Reference string `json:"reference,omitempty"`
	// Layout is the OCI layout directory written (--layout).
	Layout string `json:"layout,omitempty"`
	// Format is "oci" or "docker" (media types).
	Format string `json:"format"`
	// Digest is the image manifest digest, "sha256:HEX".
	Digest string `json:"digest"`
	// SHA256 is the WasmPlugin spec.sha256 value (the digest's hex).
	SHA256 string `json:"sha256"`
	// rejector: a rejector image (no WasmPlugin line in the text output).
	rejector bool
}

func init() {
	var f pushFlags
	cmd := &cobra.Command{
		Use:   "push WASM [oci://REGISTRY/REPOSITORY:TAG] [--layout DIR]",
		Short: "Package the filter module as an Istio-ready OCI image and push it",
		Long: `Build the image Istio's agent pulls for a WasmPlugin "url: oci://…": one
gzip-compressed tar layer holding the module as plugin.wasm (OCI media types,
or Docker ones with --docker). The build is reproducible: the same module
always gives the same digest. The command prints the manifest digest, which is
the value of the WasmPlugin's spec.sha256.

With --layout DIR the image is written to an OCI image layout in DIR instead
of being pushed (the reference, if given, names it there). Registry
credentials come from the Docker config (docker login) and its credential
helpers.

With --rejector, FILE is instead a static Linux build of the dicomgate CLI
(CGO_ENABLED=0 GOOS=linux go build ./cmd/dicomgate; make image-reject does
both steps) and the image is the rejector's container image: that binary as
/dicomgate, entrypoint /dicomgate, default arguments "reject", user
65532:65532, nothing else (manifests/components/rejector runs it). It is
reproducible too; its digest is not a WasmPlugin sha256.

Exit status: 0 pushed or written, 1 the registry or the layout directory
failed, 2 bad arguments or a file that is not a WebAssembly module (with
--rejector: not a static Linux amd64/arm64 executable).`,
		Example: `  dicomgate push build/dicomgate.wasm oci://registry.example/dicomgate:0.1.0
  dicomgate push build/dicomgate.wasm oci://localhost:5000/dicomgate:dev --insecure
  dicomgate push build/dicomgate.wasm --layout build/oci
  dicomgate push --rejector build/dicomgate-linux oci://registry.example/dicomgate-reject:0.1.0`,
		Args: func(cmd *cobra.Command, args []string) error {
			switch {
			case len(args) == 0:
				return usage("missing WASM: the filter module to package (make wasm builds build/dicomgate.wasm)")
			case len(args) > 2:
				return usage("unexpected argument %q: push takes WASM and one image reference", args[2])
			}
			return nil
		},
	}
	o := addOutputFlag(cmd, formatText, formatJSON, formatYAML)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		f.output = o.format()
		return runPush(cmd.Context(), cmd.OutOrStdout(), args, f, oci.PushOptions{Insecure: f.insecure})
	}
	cmd.Flags().StringVar(&f.layout, "layout", "", "write an OCI image layout to this directory instead of pushing")
	cmd.Flags().BoolVar(&f.insecure, "insecure", false, "allow a registry served over plain HTTP")
	cmd.Flags().BoolVar(&f.docker, "docker", false, "use Docker media types instead of OCI ones")
	cmd.Flags().BoolVar(&f.rejector, "rejector", false, "FILE is a static Linux dicomgate binary: build the rejector's container image (dicomgate reject)")
	rootCmd.AddCommand(cmd)
}

// runPush implements `dicomgate push`.
func runPush(ctx context.Context, stdout io.Writer, args []string, f pushFlags, popts oci.PushOptions) error {
	if ctx == nil {
		ctx = context.Background()
	}
	ref := ""
	if len(args) > 1 {
		ref = args[1]
	}
	if ref == "" && f.layout == "" {
		return usage("give the image reference (oci://REGISTRY/REPOSITORY:TAG) or --layout DIR")
	}
	if ref != "" {
		if _, err := oci.ParseReference(ref, f.insecure); err != nil {
			return usage("%w", err)
		}
	}
	module, err := os.ReadFile(args[0])
	if err != nil {
		return invalid(err)
	}
	format := oci.FormatOCI
	if f.docker {
		format = oci.FormatDocker
	}
	build := oci.Build
	if f.rejector {
		build = oci.BuildRejector
	}
	img, err := build(module, format)
	if err != nil {
		return invalid(fmt.Errorf("%s: %w", args[0], err))
	}
	if f.layout != "" {
		tag := ""
		if ref != "" {
			r, _ := oci.ParseReference(ref, f.insecure)
			tag = r.Identifier()
		}
		d, err := oci.WriteLayout(f.layout, img, tag)
		if err != nil {
			return &exitError{exitNegative, err}
		}
		return printPush(stdout, f.output, pushResult{Reference: ref, Layout: f.layout, Format: format.String(), Digest: d.String(), SHA256: d.Hex, rejector: f.rejector},
			fmt.Sprintf("wrote %s (%s format) digest %s\n", f.layout, format, d))
	}
	d, err := oci.Push(ctx, img, ref, popts)
	if err != nil {
		return &exitError{exitNegative, err}
	}
	return printPush(stdout, f.output, pushResult{Reference: ref, Format: format.String(), Digest: d.String(), SHA256: d.Hex, rejector: f.rejector},
		fmt.Sprintf("pushed %s (%s format) digest %s\n", strings.TrimPrefix(ref, oci.URLScheme), format, d))
}

// printPush prints push's result: the text line and the spec.sha256 line,
// or the result object.
func printPush(stdout io.Writer, format string, r pushResult, text string) error {
	if format == formatJSON || format == formatYAML {
		return writeStructured(stdout, format, r)
	}
	if r.rejector {
		_, err := io.WriteString(stdout, text)
		return err
	}
	_, err := fmt.Fprintf(stdout, "%sWasmPlugin spec.sha256: %s\n", text, r.SHA256)
	return err
}
