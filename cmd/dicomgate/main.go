// Command dicomgate is the DICOM-aware edge policy toolkit: it decodes DICOM
// Upper Layer traffic, checks and evaluates association policies, runs the
// local TLS gateway with the compiled proxy-wasm filter, and renders and
// pushes the Istio artefacts that deploy it.
package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// Exit statuses, the same for every command (rootCmd's help documents them;
// keep the two in step).
const (
	// exitOK: the command did what was asked and the answer is yes.
	exitOK = 0
	// exitNegative: the command ran and the answer is no (eval decided
	// deny, check --strict found warnings), or it failed at run time for a
	// reason outside its input (registry, network, listener, disk).
	exitNegative = 1
	// exitUsage: bad usage or invalid input: unknown command or flag,
	// missing or extra argument, unreadable or empty input, a policy or
	// manifest that does not validate, a malformed PDU stream.
	exitUsage = 2
)

// rootCmd is the top-level command; each subcommand lives in its own file and
// registers itself from an init function.
var rootCmd = &cobra.Command{
	Use:   "dicomgate",
	Short: "DICOM-aware association policy at the service-mesh edge",
	Long: `dicomgate decodes DICOM Upper Layer traffic, checks and evaluates
association policies, runs the local TLS gateway with the compiled proxy-wasm
filter, and renders and pushes the Istio artefacts that deploy it.

Output: commands that print results take -o text|json|yaml (--json is short
for -o json; manifest prints yaml or json). Results go to standard output;
diagnostics, progress and summaries go to standard error, so
"dicomgate check policy.json >/dev/null" still tells whether the policy is
valid.

Exit status, for every command:
  0  success (check: the policy is valid; eval: allow or route)
  1  a negative answer, or a failure at run time outside the input: eval
     decided deny, check --strict found warnings, push could not reach the
     registry, serve could not listen or a filter VM failed to load
  2  usage or invalid input: unknown command or flag, a missing or extra
     argument, an unreadable or empty input file, a policy or manifest that
     does not validate, a PDU stream that does not decode

Shell completion: dicomgate completion bash|zsh|fish|powershell --help.`,
	SilenceUsage:      true,
	SilenceErrors:     true,
	PersistentPreRunE: preRun,
}

func init() {
	rootCmd.SetFlagErrorFunc(func(_ *cobra.Command, err error) error {
		return &exitError{exitUsage, &usageError{err}}
	})
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// run executes the command line args with the given standard streams, prints
// a failure on stderr (with a usage hint for usage errors) and returns the
// exit status. Flags are reset to their defaults afterwards, so that tests
// can run several command lines in one process.
func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	rootCmd.SetArgs(args)
	rootCmd.SetIn(stdin)
	rootCmd.SetOut(stdout)
	rootCmd.SetErr(stderr)
	defer func() {
		rootCmd.SetArgs(nil)
		rootCmd.SetIn(nil)
		rootCmd.SetOut(nil)
		rootCmd.SetErr(nil)
		resetFlags(rootCmd)
	}()
	cmd, err := rootCmd.ExecuteC()
	if err == nil {
		return exitOK
	}
	var ee *exitError
	if !errors.As(err, &ee) {
		// Errors that are not exitErrors come from cobra itself (unknown
		// command, argument count): every RunE is wrapped by preRun.
		ee = &exitError{exitUsage, &usageError{err}}
	}
	var reported *reportedError
	if errors.As(ee.err, &reported) { // already on stderr (serve --log-format json)
		return ee.code
	}
	fmt.Fprintln(stderr, "dicomgate:", ee.err)
	var ue *usageError
	if errors.As(ee.err, &ue) && cmd != nil {
		_, _ = io.WriteString(stderr, usageHint(cmd)) // nothing to do if stderr is gone
	}
	return ee.code
}

// exitError carries a specific process exit status out of a subcommand.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

// usageError marks an error in how the command was called: run prints the
// command's usage line and an example after it.
type usageError struct{ err error }

func (e *usageError) Error() string { return e.err.Error() }
func (e *usageError) Unwrap() error { return e.err }

// usage returns a usage error (exit status 2) with a formatted message.
func usage(format string, args ...any) error {
	return &exitError{exitUsage, &usageError{fmt.Errorf(format, args...)}}
}

// invalid returns an invalid-input error (exit status 2), e.g. a policy that
// does not validate or a file that cannot be read.
func invalid(err error) error { return &exitError{exitUsage, err} }

// exitCode maps an error returned by a subcommand to the process exit status.
// An error that is not an exitError can only come from cobra's own parsing
// (see run), hence a usage error.
func exitCode(err error) int {
	if err == nil {
		return exitOK
	}
	var e *exitError
	if errors.As(err, &e) {
		return e.code
	}
	return exitUsage
}

// usageHint renders the usage line, the first example and where to read
// more, printed after a usage error.
func usageHint(cmd *cobra.Command) string {
	var b strings.Builder
	b.WriteString("Usage: " + cmd.UseLine() + "\n")
	if cmd.HasAvailableSubCommands() {
		names := []string{}
		for _, c := range cmd.Commands() {
			if c.IsAvailableCommand() {
				names = append(names, c.Name())
			}
		}
		b.WriteString("Commands: " + strings.Join(names, ", ") + "\n")
	}
	if ex := strings.TrimSpace(cmd.Example); ex != "" {
		b.WriteString("Example:\n  " + ex + "\n")
	}
	b.WriteString("Run '" + cmd.CommandPath() + " --help' for every flag.\n")
	return b.String()
}

// preRun runs before every command: it refuses negative durations (no
// timeout flag means anything below zero) and the output-format conflicts
// of -o and --json, and makes the command's own errors exit 1 unless they
// chose a status (see exitCode).
func preRun(cmd *cobra.Command, _ []string) error {
	var bad error
	cmd.Flags().VisitAll(func(f *pflag.Flag) {
		if bad != nil || f.Value.Type() != "duration" {
			return
		}
		if d, err := time.ParseDuration(f.Value.String()); err == nil && d < 0 {
			bad = usage("--%s %s: a duration cannot be negative (give 0 or more, e.g. --%s %s)", f.Name, f.Value, f.Name, f.DefValue)
		}
	})
	if bad != nil {
		return bad
	}
	if o := outputOf(cmd); o != nil {
		if err := o.resolve(cmd); err != nil {
			return err
		}
	}
	if run := cmd.RunE; run != nil && cmd.Annotations[annotationWrapped] == "" {
		if cmd.Annotations == nil {
			cmd.Annotations = map[string]string{}
		}
		cmd.Annotations[annotationWrapped] = "1"
		cmd.RunE = func(c *cobra.Command, args []string) error {
			err := run(c, args)
			var ee *exitError
			if err != nil && !errors.As(err, &ee) {
				return &exitError{exitNegative, err}
			}
			return err
		}
	}
	return nil
}

// annotationWrapped marks a command whose RunE preRun has wrapped.
const annotationWrapped = "dicomgate/runE-wrapped"

// resetFlags sets every flag of cmd and its subcommands back to its default
// and unchanged state.
func resetFlags(cmd *cobra.Command) {
	reset := func(f *pflag.Flag) {
		if !f.Changed {
			return
		}
		if sv, ok := f.Value.(pflag.SliceValue); ok {
			_ = sv.Replace(nil)
		} else {
			_ = f.Value.Set(f.DefValue)
		}
		f.Changed = false
	}
	cmd.Flags().VisitAll(reset)
	cmd.PersistentFlags().VisitAll(reset)
	for _, c := range cmd.Commands() {
		resetFlags(c)
	}
}

// exactArgs is an Args validator that names what is missing or extra and
// how to give it, instead of cobra's "accepts 1 arg(s), received 0".
func exactArgs(names ...string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		switch {
		case len(args) < len(names):
			return usage("missing %s", strings.Join(names[len(args):], " and "))
		case len(args) > len(names):
			return usage("unexpected argument %q: %s takes %s", args[len(names)], cmd.CommandPath(), argCount(len(names)))
		}
		return nil
	}
}

// argCount renders "no arguments", "one argument" or "N arguments".
func argCount(n int) string {
	switch n {
	case 0:
		return "no arguments (everything is given with flags)"
	case 1:
		return "one argument"
	}
	return fmt.Sprintf("%d arguments", n)
}
