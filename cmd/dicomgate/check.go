package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"strings"

	"github.com/spf13/cobra"
	"sigs.k8s.io/yaml"

	"github.com/dicomgate/dicomgate/sdk/policy"
)

func init() {
	cmd := &cobra.Command{
		Use:   "check CONFIG",
		Short: "Validate a dicomgate policy and print its compiled rules",
		Long: `Validate a dicomgate association policy and print the compiled rules.

CONFIG is a policy in JSON or YAML (the value of the WasmPlugin's
spec.pluginConfig), or an Istio WasmPlugin manifest (kind: WasmPlugin, JSON or
YAML, possibly among other documents separated by "---"), whose
spec.pluginConfig is checked; "-" reads standard input.

Every problem is printed as "CONFIG: error: PATH: message" (paths inside a
manifest start with spec.pluginConfig). Warnings (for example rules that can
never be reached) are printed too but do not fail the check.

Exit status: 0 valid (possibly with warnings), 1 invalid or unreadable.`,
		Example: `  dicomgate check sdk/policy/testdata/example.json
  dicomgate check manifests/base/wasmplugin.yaml`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runCheck(cmd.InOrStdin(), cmd.OutOrStdout(), args[0])
		},
	}
	rootCmd.AddCommand(cmd)
}

// runCheck implements `dicomgate check`.
func runCheck(stdin io.Reader, stdout io.Writer, name string) error {
	data, display, err := readConfigFile(stdin, name)
	if err != nil {
		return &exitError{1, err}
	}
	docs, err := policyDocs(data)
	if err != nil {
		return &exitError{1, fmt.Errorf("%s: %w", display, err)}
	}
	nerr := 0
	for i, doc := range docs {
		if i > 0 {
			fmt.Fprintln(stdout)
		}
		where := display
		if doc.label != "" {
			where += " (" + doc.label + ")"
		}
		p, diags, _ := policy.Load(doc.json)
		for _, d := range diags {
			fmt.Fprintf(stdout, "%s: %s: %s\n", where, d.Severity, doc.diagnostic(d))
			if d.Severity == policy.SeverityError {
				nerr++
			}
		}
		if p == nil {
			continue
		}
		fmt.Fprintf(stdout, "%s: policy is valid (%s, %s)\n", where, countNoun(len(p.RuleNames()), "rule"), countNoun(len(diags), "warning"))
		io.WriteString(stdout, p.Summary())
	}
	if nerr > 0 {
		return &exitError{1, fmt.Errorf("%s: policy is invalid: %d error(s), listed above", display, nerr)}
	}
	return nil
}

// readConfigFile reads a configuration file, or standard input for "-".
func readConfigFile(stdin io.Reader, name string) (data []byte, display string, err error) {
	if name == "-" {
		data, err = io.ReadAll(stdin)
		return data, "stdin", err
	}
	data, err = os.ReadFile(name)
	return data, name, err
}

// configDoc is one policy found in a configuration file.
type configDoc struct {
	// label names the manifest the policy came from ("" for a bare policy).
	label string
	// prefix is prepended to diagnostic paths ("spec.pluginConfig" inside a
	// manifest).
	prefix string
	// json is the policy as JSON.
	json []byte
	// fromYAML is set when the policy was converted from YAML.
	fromYAML bool
}

// yamlTypeHint explains YAML's implicit typing next to type errors.
const yamlTypeHint = ` (in YAML, quote values such as "NO", "ON", "Y", "0123" or "1.2" that would otherwise be read as booleans or numbers)`

// diagnostic renders d with the document's path prefix and, for YAML
// input, a hint on implicit typing when a string was expected.
func (c configDoc) diagnostic(d policy.Diagnostic) string {
	path := d.Path
	if c.prefix != "" && path != "" {
		switch {
		case path == "$":
			path = c.prefix
		case strings.HasPrefix(path, "["):
			path = c.prefix + path
		default:
			path = c.prefix + "." + path
		}
	}
	msg := d.Message
	if c.fromYAML && strings.Contains(msg, "must be a string, got ") && !strings.Contains(msg, "got string") {
		msg += yamlTypeHint
	}
	if path == "" {
		return msg
	}
	return path + ": " + msg
}

// yamlDocSep splits a YAML stream into documents.
var yamlDocSep = regexp.MustCompile(`(?m)^---[ \t\r]*(?:#[^\n]*)?$`)

// policyDocs finds the policies in a configuration file: a bare policy
// (JSON or YAML) or the spec.pluginConfig of each WasmPlugin manifest.
// JSON input is passed through unchanged so that syntax error offsets refer
// to the file.
func policyDocs(data []byte) ([]configDoc, error) {
	trimmed := bytes.TrimSpace(data)
	if len(trimmed) > 0 && trimmed[0] == '{' {
		var probe map[string]json.RawMessage
		if json.Unmarshal(data, &probe) != nil {
			return []configDoc{{json: data}}, nil // policy.Load reports the syntax error with its offset
		}
		doc, isManifest, err := manifestPolicy(probe, false)
		switch {
		case err != nil:
			return nil, err
		case doc != nil:
			return []configDoc{*doc}, nil
		case isManifest:
			return nil, errors.New("is a Kubernetes resource but not a WasmPlugin (kind: WasmPlugin) whose spec.pluginConfig is the policy")
		}
		return []configDoc{{json: data}}, nil
	}
	var docs []configDoc
	var bare [][]byte
	skipped := 0
	for i, part := range yamlDocSep.Split(string(data), -1) {
		js, err := yaml.YAMLToJSON([]byte(part))
		if err != nil {
			return nil, fmt.Errorf("YAML document %d: %w", i+1, err)
		}
		js = bytes.TrimSpace(js)
		if bytes.Equal(js, []byte("null")) {
			continue // empty document
		}
		var probe map[string]json.RawMessage
		if json.Unmarshal(js, &probe) != nil {
			bare = append(bare, js) // not an object: policy.Load names the problem
			continue
		}
		doc, isManifest, err := manifestPolicy(probe, true)
		if err != nil {
			return nil, fmt.Errorf("YAML document %d: %w", i+1, err)
		}
		switch {
		case doc != nil:
			docs = append(docs, *doc)
		case isManifest:
			skipped++ // another Kubernetes resource (EnvoyFilter, ...)
		default:
			bare = append(bare, js)
		}
	}
	switch {
	case len(docs) > 0 && len(bare) > 0:
		return nil, errors.New("mixes WasmPlugin manifests with documents that are neither a manifest nor a policy")
	case len(docs) > 0:
		return docs, nil
	case len(bare) > 1:
		return nil, fmt.Errorf("holds %d YAML documents that are not WasmPlugin manifests; a policy file holds one policy", len(bare))
	case len(bare) == 1:
		return []configDoc{{json: bare[0], fromYAML: true}}, nil
	case skipped > 0:
		return nil, fmt.Errorf("holds %s but no WasmPlugin (kind: WasmPlugin) whose spec.pluginConfig is the policy", countNoun(skipped, "Kubernetes resource"))
	}
	return nil, errors.New("is empty; expected a policy or a WasmPlugin manifest")
}

// manifestPolicy inspects a top-level object: a policy (doc nil, isManifest
// false), a WasmPlugin (its pluginConfig), or another Kubernetes resource
// (doc nil, isManifest true).
func manifestPolicy(obj map[string]json.RawMessage, fromYAML bool) (doc *configDoc, isManifest bool, err error) {
	kindRaw, hasKind := obj["kind"]
	_, hasAPI := obj["apiVersion"]
	if !hasKind && !hasAPI {
		return nil, false, nil
	}
	var kind string
	_ = json.Unmarshal(kindRaw, &kind)
	if kind != "WasmPlugin" {
		return nil, true, nil
	}
	var m struct {
		Metadata struct {
			Name string `json:"name"`
		} `json:"metadata"`
		Spec map[string]json.RawMessage `json:"spec"`
	}
	if err := json.Unmarshal(mustMarshal(obj), &m); err != nil {
		return nil, true, fmt.Errorf("WasmPlugin: %w", err)
	}
	label := "WasmPlugin " + m.Metadata.Name
	cfg, ok := m.Spec["pluginConfig"]
	if !ok {
		return nil, true, fmt.Errorf("%s: spec.pluginConfig is missing; the WasmPlugin carries no dicomgate policy", label)
	}
	return &configDoc{label: label, prefix: "spec.pluginConfig", json: cfg, fromYAML: fromYAML}, true, nil
}

// countNoun renders "1 rule" or "3 rules".
func countNoun(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

// mustMarshal re-encodes a decoded object (cannot fail for RawMessage values
// that came from json.Unmarshal).
func mustMarshal(v any) []byte {
	b, _ := json.Marshal(v)
	return b
}
