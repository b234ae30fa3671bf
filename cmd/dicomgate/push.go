package main

import (
	"context"
	"errors"
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
}

func init() {
	var f pushFlags
	cmd := &cobra.Command{
		Use:   "push WASM [oci://REGISTRY/REPOSITORY:TAG]",
		Short: "Package the filter module as an Istio-ready OCI image and push it",
		Long: `Build the image Istio's agent pulls for a WasmPlugin "url: oci://…": one
gzip-compressed tar layer holding the module as plugin.wasm (OCI media types,
or Docker ones with --docker). The build is reproducible: the same module
always gives the same digest. The command prints the manifest digest, which is
the value of the WasmPlugin's spec.sha256.

With --layout DIR the image is written to an OCI image layout in DIR instead
of being pushed (the reference, if given, names it there). Registry
credentials come from the Docker config (docker login) and its credential
helpers.`,
		Example: `  dicomgate push build/dicomgate.wasm oci://registry.example/dicomgate:0.1.0
  dicomgate push build/dicomgate.wasm oci://localhost:5000/dicomgate:dev --insecure
  dicomgate push build/dicomgate.wasm --layout build/oci`,
		Args: cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runPush(cmd.Context(), cmd.OutOrStdout(), args, f, oci.PushOptions{Insecure: f.insecure})
		},
	}
	cmd.Flags().StringVar(&f.layout, "layout", "", "write an OCI image layout to this directory instead of pushing")
	cmd.Flags().BoolVar(&f.insecure, "insecure", false, "allow a registry served over plain HTTP")
	cmd.Flags().BoolVar(&f.docker, "docker", false, "use Docker media types instead of OCI ones")
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
		return &exitError{2, errors.New("give the image reference (oci://REGISTRY/REPOSITORY:TAG) or --layout DIR")}
	}
	if ref != "" {
		if _, err := oci.ParseReference(ref, f.insecure); err != nil {
			return &exitError{2, err}
		}
	}
	module, err := os.ReadFile(args[0])
	if err != nil {
		return &exitError{1, err}
	}
	format := oci.FormatOCI
	if f.docker {
		format = oci.FormatDocker
	}
	img, err := oci.Build(module, format)
	if err != nil {
		return &exitError{1, fmt.Errorf("%s: %w", args[0], err)}
	}
	if f.layout != "" {
		tag := ""
		if ref != "" {
			r, _ := oci.ParseReference(ref, f.insecure)
			tag = r.Identifier()
		}
		d, err := oci.WriteLayout(f.layout, img, tag)
		if err != nil {
			return &exitError{1, err}
		}
		fmt.Fprintf(stdout, "wrote %s (%s format) digest %s\n", f.layout, format, d)
		fmt.Fprintf(stdout, "WasmPlugin spec.sha256: %s\n", d.Hex)
		return nil
	}
	d, err := oci.Push(ctx, img, ref, popts)
	if err != nil {
		return &exitError{1, err}
	}
	fmt.Fprintf(stdout, "pushed %s (%s format) digest %s\n", strings.TrimPrefix(ref, oci.URLScheme), format, d)
	fmt.Fprintf(stdout, "WasmPlugin spec.sha256: %s\n", d.Hex)
	return nil
}
