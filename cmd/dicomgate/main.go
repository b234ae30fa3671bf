// Command dicomgate is the DICOM-aware edge policy toolkit: it decodes DICOM
// Upper Layer traffic, checks and evaluates association policies, runs the
// local TLS gateway with the compiled proxy-wasm filter, and renders and
// pushes the Istio artefacts that deploy it.
package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"
)

// rootCmd is the top-level command; each subcommand lives in its own file and
// registers itself from an init function.
var rootCmd = &cobra.Command{
	Use:           "dicomgate",
	Short:         "DICOM-aware association policy at the service-mesh edge",
	SilenceUsage:  true,
	SilenceErrors: true,
}

func main() {
	if err := rootCmd.Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "dicomgate:", err)
		os.Exit(exitCode(err))
	}
}

// exitError carries a specific process exit status out of a subcommand.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

// exitCode maps an error returned by a subcommand to the process exit status.
func exitCode(err error) int {
	if e, ok := err.(*exitError); ok {
		return e.code
	}
	return 1
}
