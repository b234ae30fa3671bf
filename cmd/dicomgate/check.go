package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/dicomgate/dicomgate/sdk/policy"
)

// checkFlags are the options of `dicomgate check`.
type checkFlags struct {
	// output is the format: text, json or yaml.
	output string
	// strict makes warnings fail the check (exit status 1).
	strict bool
}

func init() {
	var f checkFlags
	cmd := &cobra.Command{
		Use:   "check CONFIG",
		Short: "Validate a dicomgate policy and print its compiled rules",
		Long: `Validate a dicomgate association policy and print the compiled rules.

CONFIG is a policy in JSON or YAML (the value of the WasmPlugin's
spec.pluginConfig), or an Istio WasmPlugin manifest (kind: WasmPlugin, JSON or
YAML, possibly among other documents separated by "---"), whose
spec.pluginConfig is checked; "-" reads standard input.

The findings go to standard output: every problem as
"CONFIG: error: PATH: message" or "CONFIG: warning: PATH: message" (paths
inside a manifest start with spec.pluginConfig), then, for a valid policy,
its compiled rules. Warnings (rules that can never be reached, peerSubjects
written in a form Envoy never reports, ...) do not make the policy invalid.
When the policy is invalid, standard error says so with the first error.

Exit status: 0 valid (warnings allowed unless --strict), 1 valid but with
warnings under --strict, 2 invalid, unreadable or empty.`,
		Example: `  dicomgate check sdk/policy/testdata/example.json
  dicomgate check manifests/base/wasmplugin.yaml
  dicomgate check -o json policy.yaml`,
		Args:              exactArgs("CONFIG: the policy (JSON or YAML) or WasmPlugin manifest to check, \"-\" for standard input"),
		ValidArgsFunction: configFileCompletion,
	}
	o := addOutputFlag(cmd, formatText, formatJSON, formatYAML)
	cmd.Flags().BoolVar(&f.strict, "strict", false, "warnings fail the check too (exit status 1)")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		f.output = o.format()
		return runCheck(cmd.InOrStdin(), cmd.OutOrStdout(), args[0], f)
	}
	rootCmd.AddCommand(cmd)
}

// configFileCompletion completes policy and manifest file names.
func configFileCompletion(_ *cobra.Command, args []string, _ string) ([]string, cobra.ShellCompDirective) {
	if len(args) > 0 {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	return []string{"json", "yaml", "yml"}, cobra.ShellCompDirectiveFilterFileExt
}

// checkResult is the -o json|yaml output of check. Field names are part of
// the CLI's contract (docs/cli.md).
type checkResult struct {
	// File is the CONFIG argument ("stdin" for "-").
	File string `json:"file"`
	// Valid is true when every policy in the file is valid.
	Valid bool `json:"valid"`
	// Policies holds one entry per policy (one per WasmPlugin manifest).
	Policies []checkPolicy `json:"policies"`
}

// checkPolicy is one policy's result in checkResult.
type checkPolicy struct {
	Source      string           `json:"source,omitempty"`
	Valid       bool             `json:"valid"`
	Errors      int              `json:"errors"`
	Warnings    int              `json:"warnings"`
	Diagnostics []checkDiag      `json:"diagnostics"`
	Mode        string           `json:"mode,omitempty"`
	Rules       []checkRuleEntry `json:"rules,omitempty"`
	Default     string           `json:"defaultAction,omitempty"`
	Summary     string           `json:"summary,omitempty"`
}

// checkDiag is one diagnostic in checkPolicy.
type checkDiag struct {
	Severity string `json:"severity"`
	Path     string `json:"path"`
	Message  string `json:"message"`
}

// checkRuleEntry names a compiled rule and its action.
type checkRuleEntry struct {
	Name   string `json:"name"`
	Action string `json:"action"`
}

// runCheck implements `dicomgate check`: the findings (diagnostics, the
// compiled rules) go to stdout; the returned error, which main prints on
// stderr, states the verdict on its own.
func runCheck(stdin io.Reader, stdout io.Writer, name string, f checkFlags) error {
	data, display, err := readConfigFile(stdin, name)
	if err != nil {
		return invalid(err)
	}
	docs, err := policyDocs(data)
	if err != nil {
		return invalid(fmt.Errorf("%s: %w", display, err))
	}
	res := checkResult{File: display, Valid: true}
	nerr, nwarn := 0, 0
	firstErr := ""
	for i, doc := range docs {
		where := display
		if doc.label != "" {
			where += " (" + doc.label + ")"
		}
		p, diags, _ := policy.Load(doc.json)
		diags = append(diags, lintPolicy(doc.json)...)
		cp := checkPolicy{Source: doc.label, Diagnostics: []checkDiag{}}
		var text strings.Builder
		if i > 0 {
			text.WriteString("\n")
		}
		for _, d := range diags {
			fmt.Fprintf(&text, "%s: %s: %s\n", where, d.Severity, doc.diagnostic(d))
			cp.Diagnostics = append(cp.Diagnostics, checkDiag{Severity: d.Severity.String(), Path: doc.path(d.Path), Message: doc.message(d)})
			if d.Severity == policy.SeverityError {
				cp.Errors++
				if firstErr == "" {
					firstErr = doc.diagnostic(d)
				}
			} else {
				cp.Warnings++
			}
		}
		nerr += cp.Errors
		nwarn += cp.Warnings
		if p != nil {
			cp.Valid = true
			cp.Mode = p.Mode()
			actions, def := p.Actions()
			for j, n := range p.RuleNames() {
				cp.Rules = append(cp.Rules, checkRuleEntry{Name: n, Action: actions[j].String()})
			}
			cp.Default = def.String()
			cp.Summary = p.Summary()
			fmt.Fprintf(&text, "%s: policy is valid (%s, %s)\n", where, countNoun(len(cp.Rules), "rule"), countNoun(cp.Warnings, "warning"))
			text.WriteString(cp.Summary)
		} else {
			res.Valid = false
		}
		res.Policies = append(res.Policies, cp)
		if f.output == formatText || f.output == "" {
			if _, err := io.WriteString(stdout, text.String()); err != nil {
				return err
			}
		}
	}
	if f.output == formatJSON || f.output == formatYAML {
		if err := writeStructured(stdout, f.output, res); err != nil {
			return err
		}
	}
	switch {
	case nerr > 0:
		return invalid(fmt.Errorf("%s: policy is invalid: %s; the first: %s", display, countNoun(nerr, "error"), firstErr))
	case nwarn > 0 && f.strict:
		return &exitError{exitNegative, fmt.Errorf("%s: policy is valid but has %s (--strict)", display, countNoun(nwarn, "warning"))}
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
	path, msg := c.path(d.Path), c.message(d)
	if path == "" {
		return msg
	}
	return path + ": " + msg
}

// path returns a diagnostic path with the document's prefix.
func (c configDoc) path(path string) string {
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
	return path
}

// message returns a diagnostic message with, for YAML input, a hint on
// implicit typing when a string was expected.
func (c configDoc) message(d policy.Diagnostic) string {
	msg := d.Message
	if c.fromYAML && strings.Contains(msg, "must be a string, got ") && !strings.Contains(msg, "got string") {
		msg += yamlTypeHint
	}
	return msg
}

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
	jsDocs, docNum, err := yamlDocs(data)
	if err != nil {
		return nil, err
	}
	for k, js := range jsDocs {
		i := docNum[k] - 1
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
