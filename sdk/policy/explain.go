package policy

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/dicomgate/dicomgate/sdk/pdu"
)

// explainLimit bounds how many non-matching rules Explain describes.
const explainLimit = 10

// Explain describes in plain words why the policy reached decision d for rq
// on conn: the rule that matched and how, or why each earlier rule did not
// (at most 10 are listed), then the action. d is normally the result of
// Evaluate for the same arguments. It allocates; use it for logs and the CLI.
func (p *Policy) Explain(rq *pdu.AssociateRQ, conn *Conn, d Decision) string {
	var b1, b2 [foldBufLen]byte
	in := prepare(rq, conn)
	in.calledUp = foldInto(&b1, in.called)
	in.callingUp = foldInto(&b2, in.calling)
	var lines []string
	lines = append(lines, fmt.Sprintf("association: called AE %q, calling AE %q, source %s%s",
		in.called, in.calling, addrString(&in), peerString(in.conn)))

	last := len(p.rules)
	if d.RuleIndex >= 0 && d.RuleIndex < len(p.rules) {
		last = d.RuleIndex
	}
	shown := 0
	for i := 0; i < last; i++ {
		r := p.rules[i]
		f := matchRule(r, &in)
		if f == matched {
			// Only happens when d does not come from Evaluate for these arguments.
			lines = append(lines, fmt.Sprintf("note: rules[%d] %q also matches; the decision given does not correspond to this association", i, r.name))
			continue
		}
		if shown == explainLimit {
			lines = append(lines, fmt.Sprintf("... %d more rules did not match", last-i))
			break
		}
		shown++
		lines = append(lines, fmt.Sprintf("rules[%d] %q did not match: %s", i, r.name, p.failText(r, f, &in)))
	}
	if d.RuleIndex >= 0 && d.RuleIndex < len(p.rules) {
		r := p.rules[d.RuleIndex]
		lines = append(lines, fmt.Sprintf("rules[%d] %q matched: %s", d.RuleIndex, r.name, matchText(r, &in)))
	} else {
		lines = append(lines, fmt.Sprintf("no rule matched (%d rules); the default action applies", len(p.rules)))
	}
	lines = append(lines, "decision: "+p.actionText(d, &in))
	if d.DryRun {
		lines = append(lines, `mode "dry-run": the decision is only reported; the association is let through unchanged`)
	}
	return strings.Join(lines, "\n")
}

// actionText renders the decision's action.
func (p *Policy) actionText(d Decision, in *input) string {
	var s string
	switch d.Action {
	case ActionDeny:
		res, src, code, _ := RejectCode(d.RejectReason)
		s = fmt.Sprintf("deny with A-ASSOCIATE-RJ %s (result %d, source %d, reason %d)", d.RejectReason, res, src, code)
		explicit := d.RuleIndex >= 0 && d.RuleIndex < len(p.rules) && p.rules[d.RuleIndex].rejectReason != ""
		if d.RuleIndex < 0 && p.defaultReason != "" {
			explicit = true
		}
		if !explicit {
			if p.calledKnown(in) {
				s += "; reason chosen because the called AE title is accepted by the policy but the association did not meet the conditions"
			} else {
				s += fmt.Sprintf("; reason chosen because no allow or route rule accepts called AE %q", in.called)
			}
		}
	case ActionRoute:
		s = fmt.Sprintf("route to cluster %q", d.Cluster)
	default:
		s = "allow"
	}
	if d.RewriteCalledAETitle != "" {
		s += fmt.Sprintf("; rewrite called AE title to %q", d.RewriteCalledAETitle)
	}
	if d.RewriteCallingAETitle != "" {
		s += fmt.Sprintf("; rewrite calling AE title to %q", d.RewriteCallingAETitle)
	}
	if d.RuleIndex < 0 {
		s += " (default action)"
	}
	return s
}

func addrString(in *input) string {
	if !in.src.IsValid() {
		return "unknown"
	}
	return in.src.String()
}

func peerString(c *Conn) string {
	if !c.MTLS {
		return ", no client certificate"
	}
	var parts []string
	if c.PeerURISAN != "" {
		parts = append(parts, "URI SAN "+strconv.Quote(c.PeerURISAN))
	}
	if c.PeerDNSSAN != "" {
		parts = append(parts, "DNS SAN "+strconv.Quote(c.PeerDNSSAN))
	}
	if c.PeerSubject != "" {
		parts = append(parts, "subject "+strconv.Quote(c.PeerSubject))
	}
	if len(parts) == 0 {
		return ", client certificate without identity"
	}
	return ", client certificate " + strings.Join(parts, ", ")
}

// failText says why condition f of r failed.
func (p *Policy) failText(r *rule, f int, in *input) string {
	switch f {
	case failCalled:
		return fmt.Sprintf("called AE %q is not in %s%s", in.called, listText(r.called.source), caseNote(r))
	case failCalling:
		return fmt.Sprintf("calling AE %q is not in %s%s", in.calling, listText(r.calling.source), caseNote(r))
	case failSource:
		return fmt.Sprintf("source %s is not in %s", addrString(in), prefixList(r))
	case failURISAN:
		return peerFail(in.conn, in.conn.PeerURISAN, "URI SAN", r.uriSANs)
	case failDNSSAN:
		return peerFail(in.conn, in.conn.PeerDNSSAN, "DNS SAN", r.dnsSANs)
	case failSubject:
		return peerFail(in.conn, in.conn.PeerSubject, "subject", r.subjects)
	case failUsername:
		ui := &in.rq.UserInformation
		switch {
		case !ui.HasUserIdentity:
			return "no user identity was sent; needs username " + listText(r.usernames)
		case ui.UserIdentity.Type != pdu.UserIdentityUsername && ui.UserIdentity.Type != pdu.UserIdentityUsernamePasscode:
			return fmt.Sprintf("user identity type %d is not a username (types 1 and 2); needs username %s", ui.UserIdentity.Type, listText(r.usernames))
		}
		return fmt.Sprintf("username %q is not in %s", ui.UserIdentity.Primary, listText(r.usernames))
	case failAbstract:
		return fmt.Sprintf("no proposed abstract syntax is in %s", listText(r.anyAbstract.list))
	case failOnlyAbstract:
		if len(in.rq.PresentationContexts) == 0 {
			return "no presentation context was proposed"
		}
		for _, pc := range in.rq.PresentationContexts {
			if !r.onlyAbstract.has(pc.AbstractSyntax) {
				return fmt.Sprintf("proposed abstract syntax %q (context %d) is not in %s", trimNUL(pc.AbstractSyntax), pc.ID, listText(r.onlyAbstract.list))
			}
		}
	}
	return "condition failed"
}

func peerFail(c *Conn, v, what string, list []string) string {
	if !c.MTLS {
		return fmt.Sprintf("needs a client certificate (mTLS) with %s in %s", what, listText(list))
	}
	if v == "" {
		return fmt.Sprintf("the client certificate has no %s; needs one of %s", what, listText(list))
	}
	return fmt.Sprintf("peer %s %q is not in %s", what, v, listText(list))
}

func caseNote(r *rule) string {
	if r.fold {
		return " (case-insensitive)"
	}
	return ""
}

func prefixList(r *rule) string {
	s := make([]string, len(r.cidrs))
	for i, p := range r.cidrs {
		s[i] = p.String()
	}
	return "[" + strings.Join(s, ", ") + "]"
}

func trimNUL(b []byte) []byte {
	for len(b) > 0 && b[len(b)-1] == 0 {
		b = b[:len(b)-1]
	}
	return b
}

// matchText says how r matched.
func matchText(r *rule, in *input) string {
	var parts []string
	if r.called != nil {
		parts = append(parts, fmt.Sprintf("called AE %q matches %q%s", in.called, r.called.whichMatch(in.called, in.calledUp), caseNote(r)))
	}
	if r.calling != nil {
		parts = append(parts, fmt.Sprintf("calling AE %q matches %q%s", in.calling, r.calling.whichMatch(in.calling, in.callingUp), caseNote(r)))
	}
	if r.hasCIDRs {
		for _, p := range r.cidrs {
			if p.Contains(in.src) {
				parts = append(parts, fmt.Sprintf("source %s is in %s", in.src, p))
				break
			}
		}
	}
	if r.hasURI {
		parts = append(parts, fmt.Sprintf("peer URI SAN %q is listed", in.conn.PeerURISAN))
	}
	if r.hasDNS {
		parts = append(parts, fmt.Sprintf("peer DNS SAN %q is listed", in.conn.PeerDNSSAN))
	}
	if r.hasSubject {
		parts = append(parts, fmt.Sprintf("peer subject %q is listed", in.conn.PeerSubject))
	}
	if r.hasUsername {
		parts = append(parts, fmt.Sprintf("username %q is listed", in.rq.UserInformation.UserIdentity.Primary))
	}
	if r.anyAbstract != nil {
		for _, pc := range in.rq.PresentationContexts {
			if r.anyAbstract.has(pc.AbstractSyntax) {
				parts = append(parts, fmt.Sprintf("proposed abstract syntax %s is listed", trimNUL(pc.AbstractSyntax)))
				break
			}
		}
	}
	if r.onlyAbstract != nil {
		parts = append(parts, fmt.Sprintf("all %d proposed abstract syntaxes are listed", len(in.rq.PresentationContexts)))
	}
	if len(parts) == 0 {
		return "it matches every association"
	}
	return strings.Join(parts, "; ")
}

// Summary renders the compiled policy for `dicomgate check`: settings, each
// rule with its conditions and action, the default action, and how rules
// are indexed.
func (p *Policy) Summary() string {
	var b strings.Builder
	fmt.Fprintf(&b, "mode: %s\n", p.Mode())
	fmt.Fprintf(&b, "upstreamConnect: %s\n", p.connect)
	fmt.Fprintf(&b, "inspectTimeout: %s\n", p.inspectTimeout)
	fmt.Fprintf(&b, "maxAssociateRQBytes: %d\n", p.maxRQBytes)
	fmt.Fprintf(&b, "rules: %d\n", len(p.rules))
	for i, r := range p.rules {
		fmt.Fprintf(&b, "  [%d] %s: %s\n", i, r.name, ruleActionText(r))
		if c := conditionsText(r); c != "" {
			fmt.Fprintf(&b, "      when %s\n", c)
		} else {
			b.WriteString("      always (matches every association)\n")
		}
	}
	b.WriteString("default: ")
	if p.defaultAction == ActionAllow {
		b.WriteString("allow\n")
	} else if p.defaultReason != "" {
		fmt.Fprintf(&b, "deny (%s)\n", p.defaultReason)
	} else {
		b.WriteString("deny (called-ae-not-recognized when no allow/route rule accepts the called AE title, else calling-ae-not-recognized)\n")
	}
	fmt.Fprintf(&b, "index: %d rules filtered by called AE, %d by calling AE, %d by source CIDR, %d by username; %d checked for every association\n",
		p.nCalled, p.nCalling, p.nCIDR, p.nUser, p.nUnfiltered)
	return b.String()
}

func ruleActionText(r *rule) string {
	var s string
	switch r.action {
	case ActionDeny:
		if r.rejectReason != "" {
			s = "deny (" + r.rejectReason + ")"
		} else {
			s = "deny (reason chosen like the default: called or calling AE not recognized)"
		}
	case ActionRoute:
		s = "route to " + strconv.Quote(r.cluster)
	default:
		s = "allow"
	}
	if r.rewriteCalled != "" {
		s += ", rewrite called AE to " + strconv.Quote(r.rewriteCalled)
	}
	if r.rewriteCalling != "" {
		s += ", rewrite calling AE to " + strconv.Quote(r.rewriteCalling)
	}
	return s
}

func conditionsText(r *rule) string {
	var parts []string
	if r.called != nil {
		parts = append(parts, "called AE in "+listText(r.called.source)+caseNote(r))
	}
	if r.calling != nil {
		parts = append(parts, "calling AE in "+listText(r.calling.source)+caseNote(r))
	}
	if r.hasCIDRs {
		parts = append(parts, "source in "+prefixList(r))
	}
	if r.hasURI {
		parts = append(parts, "peer URI SAN in "+listText(r.uriSANs))
	}
	if r.hasDNS {
		parts = append(parts, "peer DNS SAN in "+listText(r.dnsSANs))
	}
	if r.hasSubject {
		parts = append(parts, "peer subject in "+listText(r.subjects))
	}
	if r.hasUsername {
		parts = append(parts, "username in "+listText(r.usernames))
	}
	if r.anyAbstract != nil {
		parts = append(parts, "any proposed abstract syntax in "+listText(r.anyAbstract.list))
	}
	if r.onlyAbstract != nil {
		parts = append(parts, "every proposed abstract syntax in "+listText(r.onlyAbstract.list))
	}
	return strings.Join(parts, " and ")
}

// listText renders a string list as ["a", "b"].
func listText(l []string) string { return "[" + quoteList(l) + "]" }
