package main

import (
	"errors"
	"fmt"
	"io"
	"net/netip"
	"strings"

	"github.com/spf13/cobra"

	"github.com/dicomgate/dicomgate/sdk/pdu"
	"github.com/dicomgate/dicomgate/sdk/policy"
)

// evalFlags are the options of `dicomgate eval`.
type evalFlags struct {
	config      string
	stream      string
	source      string
	peerURISAN  string
	peerDNSSAN  string
	peerSubject string
	// output is the format: text, json or yaml.
	output string
}

func init() {
	var f evalFlags
	cmd := &cobra.Command{
		Use:   "eval CONFIG STREAM [--source IP[:PORT]] [--peer-uri-san S] [--peer-dns-san S] [--peer-subject S] [-o text|json|yaml]",
		Short: "Decide what a policy does with a recorded A-ASSOCIATE-RQ",
		Long: `Decode the first PDU of FILE (the bytes a DICOM requester sent, e.g. a
capture's NAME.c2s.bin; "-" reads standard input), which must be an
A-ASSOCIATE-RQ, evaluate it against the policy in CONFIG (a policy or a
WasmPlugin manifest, JSON or YAML, as for "dicomgate check") and print the
decision and why. CONFIG and FILE are given either as the two arguments or
with --config and --stream.

The connection is described by flags: --source is the requester's address
(without it, sourceCIDRs never match); any --peer-* flag means the requester
presented a verified client certificate with that identity (without them,
peer* conditions never match, as for a connection without mTLS).
--peer-subject is compared as Envoy reports it: RFC 2253, last RDN first,
e.g. "O=Hospital,CN=CT1" for a certificate made with -subj
"/CN=CT1/O=Hospital" (see docs/peer-identity.md).

With -o json (or --json) exactly one JSON object is printed, with the keys
action ("allow", "deny" or "route"), rule (the matching rule's name, "default" for
the default action), cluster, rewriteCalledAETitle, rejectReason and
explanation; on a deny the key respond says what the client receives:
"reject" (the rejector at rejectCluster answers with the A-ASSOCIATE-RJ of
rejectReason) or "close" (the connection is closed, no A-ASSOCIATE-RJ: a Wasm
network filter cannot write one itself). The key dryRun (true) is added only
when the policy is in mode "dry-run" (the filter would then let the
association through whatever action says; respond is then absent). -o yaml
prints the same keys as YAML.

Exit status: 0 allow or route, 1 deny (also in mode "dry-run": the status is
the policy's decision, not what the filter enforces), 2 on bad flags, an
invalid policy or a stream that does not start with a decodable
A-ASSOCIATE-RQ.`,
		Example: `  dicomgate eval sdk/policy/testdata/example.json sdk/pdu/testdata/uid_username.c2s.bin \
    --source 10.1.2.3:40000 -o json`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) > 2 {
				return usage("unexpected argument %q: eval takes CONFIG and STREAM (or --config and --stream)", args[2])
			}
			return nil
		},
		ValidArgsFunction: func(_ *cobra.Command, args []string, _ string) ([]string, cobra.ShellCompDirective) {
			if len(args) == 0 {
				return []string{"json", "yaml", "yml"}, cobra.ShellCompDirectiveFilterFileExt
			}
			if len(args) == 1 {
				return nil, cobra.ShellCompDirectiveDefault
			}
			return nil, cobra.ShellCompDirectiveNoFileComp
		},
	}
	o := addOutputFlag(cmd, formatText, formatJSON, formatYAML)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		f := f // the flags stay as parsed; positional arguments fill a copy
		if len(args) > 0 {
			if f.config != "" {
				return usage("the policy is given twice (argument %q and --config %q): keep one", args[0], f.config)
			}
			f.config = args[0]
		}
		if len(args) > 1 {
			if f.stream != "" {
				return usage("the stream is given twice (argument %q and --stream %q): keep one", args[1], f.stream)
			}
			f.stream = args[1]
		}
		f.output = o.format()
		return runEval(cmd.InOrStdin(), cmd.OutOrStdout(), cmd.ErrOrStderr(), f)
	}
	fl := cmd.Flags()
	fl.StringVar(&f.config, "config", "", "policy file or WasmPlugin manifest (JSON or YAML); or the first argument")
	fl.StringVar(&f.stream, "stream", "", "file whose first PDU is the A-ASSOCIATE-RQ (\"-\" = standard input); or the second argument")
	fl.StringVar(&f.source, "source", "", "requester address, IP or IP:PORT (e.g. 10.1.2.3:40000 or [fd00::7]:40000)")
	fl.StringVar(&f.peerURISAN, "peer-uri-san", "", "URI SAN of the requester's client certificate (implies mTLS)")
	fl.StringVar(&f.peerDNSSAN, "peer-dns-san", "", "DNS SAN of the requester's client certificate (implies mTLS)")
	fl.StringVar(&f.peerSubject, "peer-subject", "", "subject of the requester's client certificate as Envoy prints it (RFC 2253, last RDN first), e.g. O=Hospital,CN=CT1 (implies mTLS)")
	rootCmd.AddCommand(cmd)
}

// evalResult is the -o json|yaml output. Field order and names are part of the
// CLI's contract (see the command help).
type evalResult struct {
	Action               string `json:"action"`
	Rule                 string `json:"rule"`
	Cluster              string `json:"cluster"`
	RewriteCalledAETitle string `json:"rewriteCalledAETitle"`
	RejectReason         string `json:"rejectReason"`
	// Respond is what the client receives on a deny: "reject" (the
	// rejector's A-ASSOCIATE-RJ) or "close"; absent for allow, route and
	// in dry-run.
	Respond     string `json:"respond,omitempty"`
	Explanation string `json:"explanation"`
	DryRun      bool   `json:"dryRun,omitempty"`
}

// runEval implements `dicomgate eval`.
func runEval(stdin io.Reader, stdout, stderr io.Writer, f evalFlags) error {
	if f.config == "" {
		return usage("missing CONFIG: the policy file or WasmPlugin manifest (first argument, or --config)")
	}
	if f.stream == "" {
		return usage("missing STREAM: a file whose first PDU is an A-ASSOCIATE-RQ, e.g. a capture's NAME.c2s.bin (second argument, or --stream)")
	}
	if f.config == "-" && f.stream == "-" {
		return usage("CONFIG and STREAM cannot both read standard input (\"-\")")
	}
	conn := &policy.Conn{}
	if f.source != "" {
		a, err := parseSource(f.source)
		if err != nil {
			return usage("--source %q: %w", f.source, err)
		}
		conn.Source = a
	}
	if f.peerURISAN != "" || f.peerDNSSAN != "" || f.peerSubject != "" {
		conn.MTLS = true
		conn.PeerURISAN, conn.PeerDNSSAN, conn.PeerSubject = f.peerURISAN, f.peerDNSSAN, f.peerSubject
	}

	p, err := loadEvalPolicy(stdin, stderr, f.config)
	if err != nil {
		return err
	}
	data, display, err := readConfigFile(stdin, f.stream)
	if err != nil {
		return invalid(fmt.Errorf("STREAM: %w", err))
	}
	var rq pdu.AssociateRQ
	if err := firstAssociateRQ(data, p.MaxAssociateRQBytes(), &rq); err != nil {
		return invalid(fmt.Errorf("%s: %w", display, err))
	}

	d := p.Evaluate(&rq, conn)
	expl := p.Explain(&rq, conn, d)
	if err := printDecision(stdout, f.output, d, expl); err != nil {
		return err
	}
	if d.Action == policy.ActionDeny {
		// The decision is the answer; say it on stderr too, so that the
		// exit status is not the only trace when stdout is discarded.
		return &exitError{exitNegative, fmt.Errorf("%s: denied (%s)", display, denyWhy(d))}
	}
	return nil
}

// denyWhy names the rule or default and reason of a deny.
func denyWhy(d policy.Decision) string {
	who := "default action"
	if d.RuleIndex >= 0 {
		who = fmt.Sprintf("rule %q", d.Rule)
	}
	if d.RejectReason != "" {
		who += ", " + d.RejectReason
	}
	if d.DryRun {
		who += "; mode dry-run: the filter would let it through"
	}
	return who
}

// respondOf is what the client of a deny receives ("" when the
// association goes through).
func respondOf(d policy.Decision) string {
	if d.Action != policy.ActionDeny || d.DryRun {
		return ""
	}
	return d.Respond.String()
}

// printDecision writes a decision and its explanation in the output format.
func printDecision(stdout io.Writer, format string, d policy.Decision, expl string) error {
	if format == formatJSON || format == formatYAML {
		return writeStructured(stdout, format, evalResult{
			Action:               d.Action.String(),
			Rule:                 d.Rule,
			Cluster:              d.Cluster,
			RewriteCalledAETitle: d.RewriteCalledAETitle,
			RejectReason:         d.RejectReason,
			Respond:              respondOf(d),
			Explanation:          expl,
			DryRun:               d.DryRun,
		})
	}
	var b strings.Builder
	fmt.Fprintf(&b, "action: %s\n", d.Action)
	if d.RuleIndex >= 0 {
		fmt.Fprintf(&b, "rule: %s (rules[%d])\n", d.Rule, d.RuleIndex)
	} else {
		b.WriteString("rule: (none: default action)\n")
	}
	if d.Cluster != "" {
		fmt.Fprintf(&b, "cluster: %s\n", d.Cluster)
	}
	if d.RewriteCalledAETitle != "" {
		fmt.Fprintf(&b, "rewriteCalledAETitle: %s\n", d.RewriteCalledAETitle)
	}
	if d.RewriteCallingAETitle != "" {
		fmt.Fprintf(&b, "rewriteCallingAETitle: %s\n", d.RewriteCallingAETitle)
	}
	if d.RejectReason != "" {
		res, src, code, _ := policy.RejectCode(d.RejectReason)
		fmt.Fprintf(&b, "rejectReason: %s (A-ASSOCIATE-RJ result %d, source %d, reason %d)\n", d.RejectReason, res, src, code)
	}
	switch respondOf(d) {
	case "reject":
		b.WriteString("respond: reject (the rejector answers with this A-ASSOCIATE-RJ)\n")
	case "close":
		b.WriteString("respond: close (the connection is closed; the client receives no A-ASSOCIATE-RJ)\n")
	}
	if d.DryRun {
		b.WriteString("dryRun: true (the filter lets the association through unchanged)\n")
	}
	b.WriteString("explanation:\n")
	for _, line := range strings.Split(expl, "\n") {
		b.WriteString("  " + line + "\n")
	}
	_, err := io.WriteString(stdout, b.String())
	return err
}

// loadEvalPolicy reads and compiles the policy for eval, printing its
// diagnostics on stderr when it is invalid (warnings are not repeated: eval
// is about the decision; `dicomgate check` shows them).
func loadEvalPolicy(stdin io.Reader, stderr io.Writer, name string) (*policy.Policy, error) {
	data, display, err := readConfigFile(stdin, name)
	if err != nil {
		return nil, invalid(fmt.Errorf("CONFIG: %w", err))
	}
	docs, err := policyDocs(data)
	if err != nil {
		return nil, invalid(fmt.Errorf("%s: %w", display, err))
	}
	if len(docs) > 1 {
		return nil, invalid(fmt.Errorf("%s: holds %d WasmPlugin manifests; eval needs exactly one policy", display, len(docs)))
	}
	doc := docs[0]
	p, diags, err := policy.Load(doc.json)
	if err != nil {
		n := 0
		for _, d := range diags {
			if d.Severity == policy.SeverityError {
				fmt.Fprintf(stderr, "%s: error: %s\n", display, doc.diagnostic(d))
				n++
			}
		}
		return nil, invalid(fmt.Errorf("%s: policy is invalid: %s, listed above (see dicomgate check)", display, countNoun(n, "error")))
	}
	return p, nil
}

// parseSource parses IP or IP:PORT (IPv6 with a port in brackets).
func parseSource(s string) (netip.Addr, error) {
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr(), nil
	}
	a, err := netip.ParseAddr(strings.TrimSuffix(strings.TrimPrefix(s, "["), "]"))
	if err != nil {
		return netip.Addr{}, errors.New("not an IP address or IP:PORT (e.g. 10.1.2.3:40000, [fd00::7]:40000 or fd00::7)")
	}
	return a, nil
}

// firstAssociateRQ frames and decodes the first PDU of a stream, which must
// be an A-ASSOCIATE-RQ no larger than maxBytes (the policy's
// maxAssociateRQBytes, header included), into rq.
func firstAssociateRQ(data []byte, maxBytes uint32, rq *pdu.AssociateRQ) error {
	if len(data) == 0 {
		return errors.New("the stream is empty; expected an A-ASSOCIATE-RQ PDU first")
	}
	fr := pdu.Framer{MaxPDULength: pdu.DefaultMaxPDULength * 16}
	h, need, err := fr.Peek(data)
	if err != nil {
		return fmt.Errorf("first PDU: %w", err)
	}
	if need > 0 {
		if len(data) < pdu.HeaderLen {
			return fmt.Errorf("the stream ends inside the first PDU header (%d of 6 bytes)", len(data))
		}
		return fmt.Errorf("the stream ends inside the first PDU (%s): have %d of %d bytes (truncated capture?)", h.Type, len(data), h.Total())
	}
	if h.Type != pdu.TypeAssociateRQ {
		return fmt.Errorf("the first PDU is %s (type 0x%02x), not an A-ASSOCIATE-RQ (0x01); is this the requester's direction (NAME.c2s.bin)?", h.Type, uint8(h.Type))
	}
	if uint64(h.Total()) > uint64(maxBytes) {
		return fmt.Errorf("the A-ASSOCIATE-RQ is %d bytes, more than the policy's maxAssociateRQBytes (%d); the filter does not evaluate an A-ASSOCIATE-RQ that large", h.Total(), maxBytes)
	}
	dec := pdu.Decoder{MaxPDULength: h.Length}
	if err := dec.DecodeAssociateRQ(data[:h.Total()], rq); err != nil {
		return fmt.Errorf("A-ASSOCIATE-RQ: %w", err)
	}
	return nil
}
