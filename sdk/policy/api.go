// Package policy is dicomgate's association policy engine: it parses and
// validates the policy configuration (the JSON Istio passes to the filter as
// the WasmPlugin pluginConfig), compiles it into an indexed matcher, and
// decides for each DICOM A-ASSOCIATE-RQ whether the association is allowed,
// denied (with a PS3.8 A-ASSOCIATE-RJ reason) or routed to an upstream
// cluster.
//
// The package uses only the standard library so that it builds for wasip1;
// [Policy.Evaluate] does not allocate. A *Policy is immutable after [Load] and
// safe for concurrent use.
package policy

import (
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// Severity tells whether a [Diagnostic] makes the configuration unusable.
type Severity uint8

const (
	// SeverityError marks a problem that makes [Load] fail.
	SeverityError Severity = iota
	// SeverityWarning marks a suspicious but usable configuration (for
	// example a rule that can never be reached).
	SeverityWarning
)

// String returns "error" or "warning".
func (s Severity) String() string {
	if s == SeverityWarning {
		return "warning"
	}
	return "error"
}

// Diagnostic is one problem found in a policy configuration.
type Diagnostic struct {
	// Path is the JSON path of the offending value, for example
	// "rules[2].match.sourceCIDRs[0]"; "$" is the whole document. It is empty
	// only for JSON syntax errors, whose Message carries the byte offset.
	Path string
	// Message says what is wrong and what is allowed instead.
	Message string
	// Severity is SeverityError or SeverityWarning.
	Severity Severity
}

// ErrorCount returns how many of diags are errors (SeverityError): Load
// fails exactly when it is not 0.
func ErrorCount(diags []Diagnostic) int {
	n := 0
	for _, d := range diags {
		if d.Severity == SeverityError {
			n++
		}
	}
	return n
}

// String returns "path: message" (just the message when Path is empty).
func (d Diagnostic) String() string {
	if d.Path == "" {
		return d.Message
	}
	return d.Path + ": " + d.Message
}

// ValidationError is the error [Load] returns when the configuration has at
// least one error-severity [Diagnostic]. Diagnostics holds every error found
// (and the warnings), in the order [Load] returns them.
type ValidationError struct {
	Diagnostics []Diagnostic
}

// Error lists every error-severity diagnostic, one per line.
func (e *ValidationError) Error() string {
	var b strings.Builder
	n := 0
	for _, d := range e.Diagnostics {
		if d.Severity == SeverityError {
			n++
		}
	}
	if n == 1 {
		b.WriteString("invalid policy: ")
	} else {
		b.WriteString("invalid policy (")
		b.WriteString(itoa(n))
		b.WriteString(" errors):")
	}
	for _, d := range e.Diagnostics {
		if d.Severity != SeverityError {
			continue
		}
		if n != 1 {
			b.WriteString("\n  ")
		}
		b.WriteString(d.String())
	}
	return b.String()
}

// Action is what a policy decides for an association.
type Action uint8

const (
	// ActionAllow lets the association through to the listener's default
	// upstream.
	ActionAllow Action = iota
	// ActionDeny answers the requester with an A-ASSOCIATE-RJ.
	ActionDeny
	// ActionRoute lets the association through to Decision.Cluster.
	ActionRoute
)

// String returns "allow", "deny" or "route".
func (a Action) String() string {
	switch a {
	case ActionAllow:
		return "allow"
	case ActionDeny:
		return "deny"
	case ActionRoute:
		return "route"
	}
	return "action(" + itoa(int(a)) + ")"
}

// ConnectMode says when the filter opens the upstream connection.
type ConnectMode uint8

const (
	// ConnectAfterDecision holds the upstream connection until the
	// A-ASSOCIATE-RQ has been decided (required for route rules).
	ConnectAfterDecision ConnectMode = iota
	// ConnectImmediate lets Envoy connect upstream as soon as the downstream
	// connection arrives; route rules are not possible in this mode.
	ConnectImmediate
)

// String returns the configuration spelling: "after-decision" or "immediate".
func (c ConnectMode) String() string {
	if c == ConnectImmediate {
		return "immediate"
	}
	return "after-decision"
}

// Conn describes the downstream connection an A-ASSOCIATE-RQ arrived on.
type Conn struct {
	// Source is the requester's address; an invalid Addr never matches
	// sourceCIDRs. IPv4-mapped IPv6 addresses are matched as IPv4.
	Source netip.Addr
	// MTLS reports that the requester presented a verified client
	// certificate; without it, no peer* condition matches.
	MTLS bool
	// PeerURISAN, PeerDNSSAN and PeerSubject describe the client
	// certificate (empty when unknown; an empty value never matches).
	PeerURISAN, PeerDNSSAN, PeerSubject string
}

// Decision is the outcome of [Policy.Evaluate].
type Decision struct {
	// Action is allow, deny or route.
	Action Action
	// Rule is the name of the rule that matched; DefaultRule when the
	// default action applied.
	Rule string
	// RuleIndex is the index of that rule in the configuration's rules
	// array, -1 when the default action applied.
	RuleIndex int
	// Cluster is the Envoy cluster for ActionRoute ("" otherwise).
	Cluster string
	// RewriteCalledAETitle and RewriteCallingAETitle, when non-empty, are the
	// AE titles the filter writes into the RQ before forwarding it (allow and
	// route only).
	RewriteCalledAETitle, RewriteCallingAETitle string
	// RejectReason is the A-ASSOCIATE-RJ reason name for ActionDeny (always
	// set for a deny; see [RejectCode]) and "" otherwise.
	RejectReason string
	// Respond is how a deny is carried out: RespondReject (route the
	// association to [Policy.RejectCluster], which answers the
	// A-ASSOCIATE-RJ of RejectReason) or RespondClose (close the
	// connection). It is RespondReject only for a deny whose rule (or the
	// default) says "respond": "reject" in a policy that can carry it out
	// (rejectCluster set, upstreamConnect after-decision); RespondClose for
	// every other decision.
	Respond Respond
	// DryRun is true when the policy runs in mode "dry-run": the decision is
	// only reported, and the filter must let the association through
	// unchanged whatever Action says.
	DryRun bool
}

// Respond is how the filter carries out a deny.
type Respond uint8

const (
	// RespondClose closes the client connection (the requester sees the
	// connection drop; dcmtk: "Peer aborted Association").
	RespondClose Respond = iota
	// RespondReject routes the association to the rejector, which answers
	// with an A-ASSOCIATE-RJ.
	RespondReject
)

// String returns "close" or "reject".
func (r Respond) String() string {
	if r == RespondReject {
		return "reject"
	}
	return "close"
}

// RejectCluster is the rejector's Envoy cluster (rejectCluster) when denies
// can be answered with an A-ASSOCIATE-RJ, "" otherwise (not configured, or
// upstreamConnect immediate).
func (p *Policy) RejectCluster() string {
	if !p.rejectOn {
		return ""
	}
	return p.rejectCluster
}

// RejectKey is rejectKey, the text whose bytes are the HMAC-SHA256 key of
// the reject preamble (see package rejectwire); "" when RejectCluster is "".
func (p *Policy) RejectKey() string {
	if !p.rejectOn {
		return ""
	}
	return p.rejectKey
}

// MatchesSource reports whether a rule has a sourceCIDRs condition. When it
// does not, Evaluate never reads Conn.Source, and a caller may leave it
// unset (the filter then skips parsing source.address).
func (p *Policy) MatchesSource() bool { return p.nCIDR > 0 }

// MatchesDNSSAN reports whether a rule has a peerDNSSANs condition. When it
// does not, Evaluate never reads Conn.PeerDNSSAN, and a caller may leave it
// unset (the filter then skips reading the property).
func (p *Policy) MatchesDNSSAN() bool { return p.nDNS > 0 }

// Mode returns "enforce" or "dry-run".
func (p *Policy) Mode() string {
	if p.dryRun {
		return "dry-run"
	}
	return "enforce"
}

// DryRun reports whether the policy is in mode "dry-run".
func (p *Policy) DryRun() bool { return p.dryRun }

// InspectTimeout is how long the filter waits for a complete
// A-ASSOCIATE-RQ (inspectTimeoutMs, default 10 s).
func (p *Policy) InspectTimeout() time.Duration { return p.inspectTimeout }

// MaxAssociateRQBytes is the largest A-ASSOCIATE-RQ PDU (header included)
// the filter buffers (maxAssociateRQBytes, default 1 MiB).
func (p *Policy) MaxAssociateRQBytes() uint32 { return p.maxRQBytes }

// UpstreamConnect says when the filter lets Envoy connect upstream.
func (p *Policy) UpstreamConnect() ConnectMode { return p.connect }

// RuleNames returns the rule names in configuration order.
func (p *Policy) RuleNames() []string {
	out := make([]string, len(p.rules))
	for i := range p.rules {
		out[i] = p.rules[i].name
	}
	return out
}

// itoa formats an int. Like quote it is kept out of line: the many
// message call sites would otherwise each carry an inlined copy, which
// costs kilobytes in the Wasm module.
//
//go:noinline
func itoa(n int) string { return strconv.Itoa(n) }

// quote is strconv.Quote (the same output as %q for strings), kept out of
// line.
//
//go:noinline
func quote(s string) string { return strconv.Quote(s) }
