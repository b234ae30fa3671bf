package main

import (
	"encoding/json"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
	"sigs.k8s.io/yaml"
)

// Output formats of -o.
const (
	formatText = "text"
	formatJSON = "json"
	formatYAML = "yaml"
)

// outputFormat is the value of a command's -o/--output flag; --json sets it
// to json (the older spelling, kept as an alias).
type outputFormat struct {
	value   string
	allowed []string
	// json is set by --json; resolve checks it against an explicit -o.
	json bool
	// effective is the format the command prints, set by resolve.
	effective string
	// fileFlag names the flag that writes a file, for the hint when -o is
	// given a file name ("" when the command has none).
	fileFlag string
}

// String implements pflag.Value.
func (o *outputFormat) String() string { return o.value }

// Type implements pflag.Value.
func (o *outputFormat) Type() string { return "format" }

// Set implements pflag.Value: one of the allowed formats.
func (o *outputFormat) Set(s string) error {
	if !slices.Contains(o.allowed, s) {
		msg := fmt.Sprintf("-o takes the output format, one of %s", strings.Join(o.allowed, ", "))
		if o.fileFlag != "" && (strings.ContainsAny(s, `./\`) || filepath.Ext(s) != "") {
			msg += fmt.Sprintf("; to write the result to a file use --%s %s", o.fileFlag, s)
		}
		return fmt.Errorf("%s (got %q)", msg, s)
	}
	o.value = s
	return nil
}

// resolve applies --json and refuses it next to a different -o.
func (o *outputFormat) resolve(cmd *cobra.Command) error {
	o.effective = o.value
	if !o.json {
		return nil
	}
	if cmd.Flags().Changed("output") && o.value != formatJSON {
		return usage("--json and -o %s contradict each other: keep one (--json is -o json)", o.value)
	}
	o.effective = formatJSON
	return nil
}

// format returns the output format the command prints in.
func (o *outputFormat) format() string {
	if o.effective == "" {
		return o.value
	}
	return o.effective
}

// jsonAlias is the --json flag: a boolean that selects -o json.
type jsonAlias struct{ o *outputFormat }

func (j jsonAlias) String() string   { return strconv.FormatBool(j.o.json) }
func (j jsonAlias) Type() string     { return "bool" }
func (j jsonAlias) IsBoolFlag() bool { return true }
func (j jsonAlias) Set(s string) error {
	v, err := strconv.ParseBool(s)
	if err != nil {
		return err
	}
	j.o.json = v
	return nil
}

// outputs remembers each command's -o flag for preRun.
var outputs = map[*cobra.Command]*outputFormat{}

// addOutputFlag registers -o/--output (default: the first allowed format)
// and the --json alias on cmd.
func addOutputFlag(cmd *cobra.Command, allowed ...string) *outputFormat {
	o := &outputFormat{value: allowed[0], allowed: allowed}
	cmd.Flags().VarP(o, "output", "o", "output format: "+strings.Join(allowed, ", "))
	cmd.Flags().Var(jsonAlias{o}, "json", "same as -o json")
	cmd.Flags().Lookup("json").NoOptDefVal = "true"
	_ = cmd.RegisterFlagCompletionFunc("output", func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
		return allowed, cobra.ShellCompDirectiveNoFileComp
	})
	outputs[cmd] = o
	return o
}

// outputOf returns cmd's output flag, nil when it has none.
func outputOf(cmd *cobra.Command) *outputFormat { return outputs[cmd] }

// writeJSON writes v as one line of JSON (no HTML escaping).
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}

// writeYAML writes v as one YAML document; with separate a "---" line
// precedes it (for streams of several documents).
func writeYAML(w io.Writer, v any, separate bool) error {
	b, err := yaml.Marshal(v)
	if err != nil {
		return err
	}
	if separate {
		if _, err := io.WriteString(w, "---\n"); err != nil {
			return err
		}
	}
	_, err = w.Write(b)
	return err
}

// writeStructured writes v in a structured format (json or yaml).
func writeStructured(w io.Writer, format string, v any) error {
	if format == formatYAML {
		return writeYAML(w, v, false)
	}
	return writeJSON(w, v)
}

// yamlDocsToJSON converts a stream of YAML documents to JSON objects.
func yamlDocsToJSON(stream []byte) ([]json.RawMessage, error) {
	docs, _, err := yamlDocs(stream)
	if err != nil {
		return nil, err
	}
	out := make([]json.RawMessage, len(docs))
	for i, d := range docs {
		out[i] = d
	}
	return out, nil
}
