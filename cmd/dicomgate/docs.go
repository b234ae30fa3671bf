package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"
)

// cliReferenceHeader opens docs/cli.md; it names how to regenerate the file.
const cliReferenceHeader = `# dicomgate CLI reference

<!-- Generated from the commands' help by "go run ./cmd/dicomgate docs > docs/cli.md"; do not edit by hand.
     "go test ./cmd/dicomgate" fails when this file is stale; "go test ./cmd/dicomgate -run TestCLIReference -update"
     rewrites it. -->

Generated from ` + "`dicomgate <command> --help`" + `; regenerate with ` + "`go run ./cmd/dicomgate docs > docs/cli.md`" + `
(` + "`go test ./cmd/dicomgate`" + ` fails when this page is stale). What the messages mean:
[troubleshooting.md](troubleshooting.md).
`

func init() {
	rootCmd.AddCommand(&cobra.Command{
		Use:    "docs",
		Short:  "Print the one-page CLI reference (docs/cli.md) generated from the commands",
		Hidden: true,
		Args:   exactArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return writeCLIReference(cmd.OutOrStdout(), rootCmd)
		},
	})
}

// writeCLIReference writes the Markdown reference of root and every
// available subcommand: synopsis, description, examples and flags, exactly
// as --help shows them.
func writeCLIReference(w io.Writer, root *cobra.Command) error {
	var b strings.Builder
	b.WriteString(cliReferenceHeader)
	cmds := visibleCommands(root)
	b.WriteString("\nCommands:")
	for i, c := range cmds[1:] {
		if i > 0 {
			b.WriteString(" ·")
		}
		fmt.Fprintf(&b, " [%s](#%s)", strings.TrimPrefix(c.CommandPath(), "dicomgate "), anchor(c.CommandPath()))
	}
	b.WriteString("\n\n")
	for _, c := range cmds {
		// cobra adds -h/--help to a command when it first runs it; add it
		// to all, so that the page does not depend on what ran before.
		c.InitDefaultHelpFlag()
		fmt.Fprintf(&b, "## %s\n\n%s\n\n", c.CommandPath(), c.Short)
		if c.Runnable() {
			fmt.Fprintf(&b, "```\n%s\n```\n\n", c.UseLine())
		}
		if long := strings.TrimSpace(c.Long); long != "" {
			fmt.Fprintf(&b, "```text\n%s\n```\n\n", long)
		}
		if ex := strings.TrimRight(c.Example, " \n"); ex != "" {
			fmt.Fprintf(&b, "Examples:\n\n```\n%s\n```\n\n", ex)
		}
		if c.HasAvailableLocalFlags() {
			fmt.Fprintf(&b, "Flags:\n\n```\n%s```\n\n", c.LocalFlags().FlagUsagesWrapped(0))
		}
	}
	_, err := io.WriteString(w, strings.TrimRight(b.String(), "\n")+"\n")
	return err
}

// visibleCommands returns root and its available subcommands, depth first
// in name order.
func visibleCommands(root *cobra.Command) []*cobra.Command {
	out := []*cobra.Command{root}
	for _, c := range root.Commands() {
		if c.IsAvailableCommand() {
			out = append(out, visibleCommands(c)...)
		}
	}
	return out
}

// anchor returns the GitHub heading anchor of "## TEXT".
func anchor(text string) string {
	return strings.ReplaceAll(strings.ToLower(text), " ", "-")
}
