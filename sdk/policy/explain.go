package policy

import (
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
	lines = append(lines, "association: called AE "+quote(string(in.called))+", calling AE "+quote(string(in.calling))+", source "+addrString(&in)+peerString(in.conn))

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
			lines = append(lines, "note: rules["+itoa(i)+"] "+quote(r.name)+" also matches; the decision given does not correspond to this association")
			continue
		}
		if shown == explainLimit {
			lines = append(lines, "... "+itoa(last-i)+" more rules did not match")
			break
		}
		shown++
		lines = append(lines, "rules["+itoa(i)+"] "+quote(r.name)+" did not match: "+p.failText(r, f, &in))
	}
	if d.RuleIndex >= 0 && d.RuleIndex < len(p.rules) {
		r := p.rules[d.RuleIndex]
		lines = append(lines, "rules["+itoa(d.RuleIndex)+"] "+quote(r.name)+" matched: "+matchText(r, &in))
	} else {
		lines = append(lines, "no rule matched ("+itoa(len(p.rules))+" rules); the default action applies")
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
		rj := "A-ASSOCIATE-RJ " + d.RejectReason + " (result " + itoa(int(res)) + ", source " + itoa(int(src)) + ", reason " + itoa(int(code)) + ")"
		if d.Respond == RespondReject {
			s = "deny: the rejector (rejectCluster " + quote(p.rejectCluster) + ") answers with " + rj
		} else {
			s = "deny: the connection is closed, no A-ASSOCIATE-RJ is sent (" + p.closeWhy(d) + "); the reject reason is " + d.RejectReason +
				" (result " + itoa(int(res)) + ", source " + itoa(int(src)) + ", reason " + itoa(int(code)) + ")"
		}
		explicit := d.RuleIndex >= 0 && d.RuleIndex < len(p.rules) && p.rules[d.RuleIndex].rejectReason != ""
		if d.RuleIndex < 0 && p.defaultReason != "" {
			explicit = true
		}
		if !explicit {
			if p.calledKnown(in) {
				s += "; reason chosen because the called AE title is accepted by the policy but the association did not meet the conditions"
			} else {
				s += "; reason chosen because no allow or route rule accepts called AE " + quote(string(in.called))
			}
		}
	case ActionRoute:
		s = "route to cluster " + quote(d.Cluster)
	default:
		s = "allow"
	}
	if d.RewriteCalledAETitle != "" {
		s += "; rewrite called AE title to " + quote(d.RewriteCalledAETitle)
	}
	if d.RewriteCallingAETitle != "" {
		s += "; rewrite calling AE title to " + quote(d.RewriteCallingAETitle)
	}
	if d.RuleIndex < 0 {
		s += " (default action)"
	}
	return s
}

// closeWhy says why a deny closes rather than rejects.
func (p *Policy) closeWhy(d Decision) string {
	asked := p.defaultRespond
	if d.RuleIndex >= 0 && d.RuleIndex < len(p.rules) {
		asked = p.rules[d.RuleIndex].respond
	}
	switch {
	case asked != RespondReject:
		return `"respond" is "close"`
	case p.rejectCluster == "":
		return `"respond": "reject" needs "rejectCluster"`
	}
	return `"respond": "reject" needs "upstreamConnect": "after-decision"`
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
		parts = append(parts, "URI SAN "+quote(c.PeerURISAN))
	}
	if c.PeerDNSSAN != "" {
		parts = append(parts, "DNS SAN "+quote(c.PeerDNSSAN))
	}
	if c.PeerSubject != "" {
		parts = append(parts, "subject "+quote(c.PeerSubject))
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
		return "called AE " + quote(string(in.called)) + " is not in " + listText(r.called.source) + caseNote(r)
	case failCalling:
		return "calling AE " + quote(string(in.calling)) + " is not in " + listText(r.calling.source) + caseNote(r)
	case failSource:
		return "source " + addrString(in) + " is not in " + prefixList(r)
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
			return "user identity type " + itoa(int(ui.UserIdentity.Type)) + " is not a username (types 1 and 2); needs username " + listText(r.usernames)
		}
		return "username " + quote(string(ui.UserIdentity.Primary)) + " is not in " + listText(r.usernames)
	case failAbstract:
		return "no proposed abstract syntax is in " + listText(r.anyAbstract.list)
	case failOnlyAbstract:
		if len(in.rq.PresentationContexts) == 0 {
			return "no presentation context was proposed"
		}
		for _, pc := range in.rq.PresentationContexts {
			if !r.onlyAbstract.has(pc.AbstractSyntax) {
				return "proposed abstract syntax " + quote(string(trimNUL(pc.AbstractSyntax))) + " (context " + itoa(int(pc.ID)) + ") is not in " + listText(r.onlyAbstract.list)
			}
		}
	}
	return "condition failed"
}

func peerFail(c *Conn, v, what string, list []string) string {
	if !c.MTLS {
		return "needs a client certificate (mTLS) with " + what + " in " + listText(list)
	}
	if v == "" {
		return "the client certificate has no " + what + "; needs one of " + listText(list)
	}
	return "peer " + what + " " + quote(v) + " is not in " + listText(list)
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
		parts = append(parts, "called AE "+quote(string(in.called))+" matches "+quote(r.called.whichMatch(in.called, in.calledUp))+caseNote(r))
	}
	if r.calling != nil {
		parts = append(parts, "calling AE "+quote(string(in.calling))+" matches "+quote(r.calling.whichMatch(in.calling, in.callingUp))+caseNote(r))
	}
	if r.hasCIDRs {
		for _, p := range r.cidrs {
			if p.Contains(in.src) {
				parts = append(parts, "source "+in.src.String()+" is in "+p.String())
				break
			}
		}
	}
	if r.hasURI {
		parts = append(parts, "peer URI SAN "+quote(in.conn.PeerURISAN)+" is listed")
	}
	if r.hasDNS {
		parts = append(parts, "peer DNS SAN "+quote(in.conn.PeerDNSSAN)+" is listed")
	}
	if r.hasSubject {
		parts = append(parts, "peer subject "+quote(in.conn.PeerSubject)+" is listed")
	}
	if r.hasUsername {
		parts = append(parts, "username "+quote(string(in.rq.UserInformation.UserIdentity.Primary))+" is listed")
	}
	if r.anyAbstract != nil {
		for _, pc := range in.rq.PresentationContexts {
			if r.anyAbstract.has(pc.AbstractSyntax) {
				parts = append(parts, "proposed abstract syntax "+string(trimNUL(pc.AbstractSyntax))+" is listed")
				break
			}
		}
	}
	if r.onlyAbstract != nil {
		parts = append(parts, "all "+itoa(len(in.rq.PresentationContexts))+" proposed abstract syntaxes are listed")
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
	b.WriteString("mode: " + p.Mode() + "\n")
	b.WriteString("upstreamConnect: " + p.connect.String() + "\n")
	b.WriteString("inspectTimeout: " + p.inspectTimeout.String() + "\n")
	b.WriteString("maxAssociateRQBytes: " + itoa(int(p.maxRQBytes)) + "\n")
	switch {
	case p.rejectOn:
		b.WriteString("rejectCluster: " + p.rejectCluster + " (denies that say \"respond\": \"reject\" get an A-ASSOCIATE-RJ from the rejector)\n")
	case p.rejectCluster != "":
		b.WriteString("rejectCluster: " + p.rejectCluster + " (ignored in mode immediate: every deny closes the connection)\n")
	default:
		b.WriteString("rejectCluster: none (every deny closes the connection)\n")
	}
	b.WriteString("rules: " + itoa(len(p.rules)) + "\n")
	for i, r := range p.rules {
		b.WriteString("  [" + itoa(i) + "] " + r.name + ": " + ruleActionText(r) + p.respondText(r.action, r.respond) + "\n")
		if c := conditionsText(r); c != "" {
			b.WriteString("      when " + c + "\n")
		} else {
			b.WriteString("      always (matches every association)\n")
		}
	}
	b.WriteString("default: ")
	if p.defaultAction == ActionAllow {
		b.WriteString("allow\n")
	} else if p.defaultReason != "" {
		b.WriteString("deny (" + p.defaultReason + ")" + p.respondText(ActionDeny, p.defaultRespond) + "\n")
	} else {
		b.WriteString("deny (called-ae-not-recognized when no allow/route rule accepts the called AE title, else calling-ae-not-recognized)" +
			p.respondText(ActionDeny, p.defaultRespond) + "\n")
	}
	b.WriteString("index: " + itoa(p.nCalled) + " rules filtered by called AE, " + itoa(p.nCalling) + " by calling AE, " + itoa(p.nCIDR) + " by source CIDR, " + itoa(p.nUser) + " by username; " + itoa(p.nUnfiltered) + " checked for every association\n")
	return b.String()
}

// respondText says how a deny is carried out ("" for allow and route).
func (p *Policy) respondText(a Action, r Respond) string {
	switch {
	case a != ActionDeny:
		return ""
	case r == RespondReject && p.rejectOn:
		return ", answered with an A-ASSOCIATE-RJ by the rejector"
	case r == RespondReject:
		return ", connection closed (\"respond\": \"reject\" falls back to close)"
	}
	return ", connection closed"
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
		s = "route to " + quote(r.cluster)
	default:
		s = "allow"
	}
	if r.rewriteCalled != "" {
		s += ", rewrite called AE to " + quote(r.rewriteCalled)
	}
	if r.rewriteCalling != "" {
		s += ", rewrite calling AE to " + quote(r.rewriteCalling)
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
