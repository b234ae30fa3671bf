package policy

// An independent reference evaluator for the differential tests (FuzzLoad,
// TestEvaluateMatchesReference).
//
// It is written from the documented semantics in README.md, not from the
// product code: it reads the policy document with encoding/json into its own
// plain values and decides from the raw request fields (the 16-byte AE title
// fields as on the wire, the proposed abstract syntaxes, the user identity
// sub-item, the connection properties). It calls no unexported function of
// this package and uses none of its compiled structures; the only shared
// names are the exported Decision/Action types it reports in and the pdu
// structs it reads the request from. Its algorithms differ on purpose: AE
// globs are matched by dynamic programming over a token list (the product
// backtracks over a compiled byte string), CIDRs by comparing leading bits
// (the product uses netip.Prefix.Contains on masked prefixes), case folding
// by a lower-case comparison (the product upper-cases).

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"net/netip"
	"regexp"
	"strings"

	"github.com/dicomgate/dicomgate/sdk/pdu"
)

// refPolicy is a policy document as README.md describes it.
type refPolicy struct {
	defaultAction string // "allow" or "deny"
	defaultReason string // "" when computed
	dryRun        bool
	rules         []refRule
}

// refRule is one element of "rules".
type refRule struct {
	name           string
	action         string // "allow", "deny", "route"
	cluster        string
	rejectReason   string
	rewriteCalled  string
	rewriteCalling string
	caseFold       bool
	// match holds the match conditions present, by key; an absent key is
	// not in the map (it does not constrain the rule).
	match map[string][]string
	// called and calling are the parsed AE title patterns of the two AE
	// conditions (nil when absent).
	called, calling [][]refTok
}

// refTok is one element of an AE title pattern: a literal byte, '?' (exactly
// one character) or '*' (any run, including none).
type refTok struct {
	kind byte // 'L' literal, '?' or '*'
	c    byte
}

// refReasons are the reject reason names of the README's table.
var refReasons = []string{"no-reason-given", "application-context-not-supported", "calling-ae-not-recognized",
	"called-ae-not-recognized", "protocol-version-not-supported", "temporary-congestion", "local-limit-exceeded"}

// refMatchKeys are the match conditions of the README's table.
var refMatchKeys = []string{"calledAETitles", "callingAETitles", "sourceCIDRs", "peerURISANs", "peerDNSSANs",
	"peerSubjects", "abstractSyntaxes", "onlyAbstractSyntaxes", "userIdentityUsernames"}

// refUID is a DICOM UID (PS3.5 §9.1): dot-separated numbers without leading
// zeros, at most 64 characters (checked separately).
var refUID = regexp.MustCompile(`^(0|[1-9][0-9]*)(\.(0|[1-9][0-9]*))*$`)

// refParse decodes a policy document with encoding/json. It fails when the
// document holds something the README calls invalid in a way that matters
// for the decision (a malformed AE title pattern, CIDR or UID, an unknown
// key or value): a policy Load accepts must parse here.
func refParse(data []byte) (*refPolicy, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var top map[string]any
	if err := dec.Decode(&top); err != nil {
		return nil, err
	}
	if dec.More() {
		return nil, errors.New("data after the top-level value")
	}
	if top == nil {
		return nil, errors.New("the policy is not an object")
	}
	p := &refPolicy{defaultAction: "deny"}
	for k, v := range top {
		switch k {
		case "defaultAction":
			s, _ := v.(string)
			if s != "allow" && s != "deny" {
				return nil, fmt.Errorf("defaultAction %v", v)
			}
			p.defaultAction = s
		case "defaultRejectReason":
			s, _ := v.(string)
			if !refIn(refReasons, s) {
				return nil, fmt.Errorf("defaultRejectReason %v", v)
			}
			p.defaultReason = s
		case "mode":
			s, _ := v.(string)
			if s != "enforce" && s != "dry-run" {
				return nil, fmt.Errorf("mode %v", v)
			}
			p.dryRun = s == "dry-run"
		case "inspectTimeoutMs", "maxAssociateRQBytes", "upstreamConnect":
			// Not part of the decision.
		case "rules":
			list, ok := v.([]any)
			if !ok {
				return nil, fmt.Errorf("rules is %T", v)
			}
			for i, e := range list {
				r, err := refParseRule(e)
				if err != nil {
					return nil, fmt.Errorf("rules[%d]: %w", i, err)
				}
				p.rules = append(p.rules, r)
			}
		default:
			return nil, fmt.Errorf("unknown key %q", k)
		}
	}
	if p.defaultReason != "" && p.defaultAction != "deny" {
		return nil, errors.New("defaultRejectReason with defaultAction allow")
	}
	return p, nil
}

// refParseRule reads one rule.
func refParseRule(v any) (refRule, error) {
	var r refRule
	m, ok := v.(map[string]any)
	if !ok {
		return r, fmt.Errorf("rule is %T", v)
	}
	str := func(k string) (string, error) {
		x, present := m[k]
		if !present {
			return "", nil
		}
		s, ok := x.(string)
		if !ok {
			return "", fmt.Errorf("%s is %T", k, x)
		}
		return s, nil
	}
	var err error
	if r.name, err = str("name"); err != nil || r.name == "" {
		return r, fmt.Errorf("name %q %v", r.name, err)
	}
	if r.action, err = str("action"); err != nil || !refIn([]string{"allow", "deny", "route"}, r.action) {
		return r, fmt.Errorf("action %q %v", r.action, err)
	}
	if r.rejectReason, err = str("rejectReason"); err != nil || (r.rejectReason != "" && (r.action != "deny" || !refIn(refReasons, r.rejectReason))) {
		return r, fmt.Errorf("rejectReason %q %v", r.rejectReason, err)
	}
	if r.rewriteCalled, err = str("rewriteCalledAETitle"); err != nil {
		return r, err
	}
	if r.rewriteCalling, err = str("rewriteCallingAETitle"); err != nil {
		return r, err
	}
	for _, t := range []string{r.rewriteCalled, r.rewriteCalling} {
		if t != "" && (r.action == "deny" || !refValidTitle(t)) {
			return r, fmt.Errorf("rewrite %q", t)
		}
	}
	if f, present := m["aeTitleCaseInsensitive"]; present {
		b, ok := f.(bool)
		if !ok {
			return r, fmt.Errorf("aeTitleCaseInsensitive is %T", f)
		}
		r.caseFold = b
	}
	cluster, hasCluster := m["cluster"]
	service, hasService := m["service"]
	if (r.action == "route") != (hasCluster || hasService) || hasCluster && hasService {
		return r, errors.New("route needs exactly one of cluster and service; other actions none")
	}
	if hasCluster {
		s, ok := cluster.(string)
		if !ok || s == "" {
			return r, fmt.Errorf("cluster %v", cluster)
		}
		r.cluster = s
	}
	if hasService {
		if r.cluster, err = refServiceCluster(service); err != nil {
			return r, err
		}
	}
	for k := range m {
		if !refIn([]string{"name", "match", "action", "cluster", "service", "rewriteCalledAETitle",
			"rewriteCallingAETitle", "rejectReason", "aeTitleCaseInsensitive"}, k) {
			return r, fmt.Errorf("unknown rule key %q", k)
		}
	}
	mv, present := m["match"]
	if !present {
		return r, nil
	}
	mm, ok := mv.(map[string]any)
	if !ok {
		return r, fmt.Errorf("match is %T", mv)
	}
	r.match = map[string][]string{}
	for k, lv := range mm {
		if !refIn(refMatchKeys, k) {
			return r, fmt.Errorf("unknown match key %q", k)
		}
		list, ok := lv.([]any)
		if !ok || len(list) == 0 {
			return r, fmt.Errorf("match.%s must be a non-empty list", k)
		}
		for _, e := range list {
			s, ok := e.(string)
			if !ok || s == "" {
				return r, fmt.Errorf("match.%s element %v", k, e)
			}
			r.match[k] = append(r.match[k], s)
		}
	}
	for _, s := range r.match["sourceCIDRs"] {
		if _, err := refParseCIDR(s); err != nil {
			return r, err
		}
	}
	for _, k := range []string{"abstractSyntaxes", "onlyAbstractSyntaxes"} {
		for _, s := range r.match[k] {
			if len(s) > 64 || !refUID.MatchString(s) {
				return r, fmt.Errorf("%s: %q is not a UID", k, s)
			}
		}
	}
	for _, s := range r.match["peerDNSSANs"] {
		if strings.Contains(strings.TrimPrefix(s, "*."), "*") {
			return r, fmt.Errorf("DNS pattern %q", s)
		}
	}
	for _, k := range []string{"calledAETitles", "callingAETitles"} {
		pats := r.match[k]
		if pats == nil {
			continue
		}
		var compiled [][]refTok
		for _, s := range pats {
			toks, err := refParsePattern(s)
			if err != nil {
				return r, fmt.Errorf("%s: %w", k, err)
			}
			compiled = append(compiled, toks)
		}
		if k == "calledAETitles" {
			r.called = compiled
		} else {
			r.calling = compiled
		}
	}
	return r, nil
}

// refServiceCluster turns {"host", "port", "subset"} into the Istio
// cluster name outbound|PORT|SUBSET|HOST. The port is any JSON number that
// is exactly a whole number from 1 to 65535.
func refServiceCluster(v any) (string, error) {
	m, ok := v.(map[string]any)
	if !ok {
		return "", fmt.Errorf("service is %T", v)
	}
	host, _ := m["host"].(string)
	num, _ := m["port"].(json.Number)
	subset := ""
	if s, present := m["subset"]; present {
		if subset, ok = s.(string); !ok {
			return "", fmt.Errorf("subset is %T", s)
		}
	}
	port, ok := new(big.Rat).SetString(string(num))
	if host == "" || !ok || !port.IsInt() || port.Sign() <= 0 || port.Cmp(big.NewRat(65535, 1)) > 0 {
		return "", fmt.Errorf("service %v", v)
	}
	return "outbound|" + port.Num().String() + "|" + subset + "|" + host, nil
}

// refParsePattern reads an AE title pattern: leading and trailing spaces
// are not significant; '*' is any run, '?' one character, "\*" and "\?"
// literal; otherwise printable ASCII without backslash; it must be able to
// match a title of at most 16 characters.
func refParsePattern(s string) ([]refTok, error) {
	t := strings.Trim(s, " ")
	if t == "" {
		return nil, fmt.Errorf("pattern %q is empty", s)
	}
	var toks []refTok
	need := 0
	for i := 0; i < len(t); i++ {
		c := t[i]
		switch {
		case c == '\\':
			if i+1 == len(t) || (t[i+1] != '*' && t[i+1] != '?') {
				return nil, fmt.Errorf("pattern %q: lone backslash", s)
			}
			i++
			toks = append(toks, refTok{'L', t[i]})
			need++
		case c == '*':
			toks = append(toks, refTok{kind: '*'})
		case c == '?':
			toks = append(toks, refTok{kind: '?'})
			need++
		case c < 0x20 || c > 0x7e:
			return nil, fmt.Errorf("pattern %q: byte %#x", s, c)
		default:
			toks = append(toks, refTok{'L', c})
			need++
		}
	}
	if need > 16 {
		return nil, fmt.Errorf("pattern %q needs %d characters", s, need)
	}
	return toks, nil
}

// refValidTitle is a rewrite target: 1-16 printable ASCII characters except
// backslash, without leading or trailing spaces.
func refValidTitle(s string) bool {
	if s == "" || len(s) > 16 || s[0] == ' ' || s[len(s)-1] == ' ' {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e || s[i] == '\\' {
			return false
		}
	}
	return true
}

// refCIDR is one sourceCIDRs element: an address and how many leading bits
// of it must agree.
type refCIDR struct {
	addr netip.Addr
	bits int
}

// refParseCIDR reads a prefix or a bare address (which means all its
// bits). Zones and IPv4-mapped IPv6 prefixes are invalid.
func refParseCIDR(s string) (refCIDR, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil || p.Addr().Is4In6() {
			return refCIDR{}, fmt.Errorf("CIDR %q", s)
		}
		return refCIDR{p.Addr(), p.Bits()}, nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil || a.Zone() != "" || a.Is4In6() {
		return refCIDR{}, fmt.Errorf("CIDR %q", s)
	}
	return refCIDR{a, a.BitLen()}, nil
}

// contains reports whether the first c.bits bits of src equal those of
// c.addr, src being of the same family (host bits of c are ignored, which
// is the documented masking).
func (c refCIDR) contains(src netip.Addr) bool {
	if src.Is4() != c.addr.Is4() {
		return false
	}
	a, b := src.AsSlice(), c.addr.AsSlice()
	for i := 0; i < c.bits; i++ {
		bit := func(x []byte) byte { return x[i/8] >> (7 - i%8) & 1 }
		if bit(a) != bit(b) {
			return false
		}
	}
	return true
}

// refRequest is everything a decision may depend on, as raw values.
type refRequest struct {
	calledField, callingField string   // the 16-byte fields as on the wire
	abstractSyntaxes          []string // one per proposed context, as decoded
	hasIdentity               bool
	identityType              uint8
	identityPrimary           string
	source                    netip.Addr // invalid when unknown
	mtls                      bool
	uriSAN, dnsSAN, subject   string
}

// refRequestOf copies the exported request fields into a refRequest (nil
// arguments are empty requests and connections).
func refRequestOf(rq *pdu.AssociateRQ, conn *Conn) refRequest {
	var r refRequest
	if rq != nil {
		r.calledField, r.callingField = string(rq.CalledAETitleRaw), string(rq.CallingAETitleRaw)
		for _, pc := range rq.PresentationContexts {
			r.abstractSyntaxes = append(r.abstractSyntaxes, string(pc.AbstractSyntax))
		}
		if ui := rq.UserInformation; ui.HasUserIdentity {
			r.hasIdentity, r.identityType, r.identityPrimary = true, ui.UserIdentity.Type, string(ui.UserIdentity.Primary)
		}
	}
	if conn != nil {
		r.source, r.mtls = conn.Source, conn.MTLS
		r.uriSAN, r.dnsSAN, r.subject = conn.PeerURISAN, conn.PeerDNSSAN, conn.PeerSubject
	}
	return r
}

// refTitle is an AE title field as compared: trailing space (or NUL)
// padding and leading spaces removed, embedded spaces kept.
func refTitle(field string) string {
	return strings.TrimLeft(strings.TrimRight(field, " \x00"), " ")
}

// refLower lower-cases ASCII letters only.
func refLower(c byte) byte {
	if c >= 'A' && c <= 'Z' {
		return c + 32
	}
	return c
}

// refGlob reports whether the pattern matches all of title: m[i][j] is
// "toks[i:] matches title[j:]", filled from the end.
func refGlob(toks []refTok, title string, fold bool) bool {
	n, k := len(toks), len(title)
	m := make([][]bool, n+1)
	for i := range m {
		m[i] = make([]bool, k+1)
	}
	m[n][k] = true
	for i := n - 1; i >= 0; i-- {
		for j := k; j >= 0; j-- {
			switch t := toks[i]; t.kind {
			case '*':
				m[i][j] = m[i+1][j] || (j < k && m[i][j+1])
			case '?':
				m[i][j] = j < k && m[i+1][j+1]
			default:
				same := j < k && (title[j] == t.c || fold && refLower(title[j]) == refLower(t.c))
				m[i][j] = same && m[i+1][j+1]
			}
		}
	}
	return m[0][0]
}

// refAnyPattern reports whether one of the patterns matches title.
func refAnyPattern(pats [][]refTok, title string, fold bool) bool {
	for _, p := range pats {
		if refGlob(p, title, fold) {
			return true
		}
	}
	return false
}

// refDNS compares a DNS SAN with a pattern ignoring ASCII case only;
// "*.rest" matches exactly one non-empty leftmost label followed by rest.
func refDNS(pattern, san string) bool {
	eq := func(a, b string) bool {
		if len(a) != len(b) {
			return false
		}
		for i := 0; i < len(a); i++ {
			if refLower(a[i]) != refLower(b[i]) {
				return false
			}
		}
		return true
	}
	if rest, ok := strings.CutPrefix(pattern, "*."); ok {
		label, tail, found := strings.Cut(san, ".")
		return found && label != "" && eq(tail, rest)
	}
	return eq(pattern, san)
}

// refMatches reports whether every condition of r holds for req.
func refMatches(r *refRule, req *refRequest) bool {
	called, calling := refTitle(req.calledField), refTitle(req.callingField)
	if r.called != nil && !refAnyPattern(r.called, called, r.caseFold) {
		return false
	}
	if r.calling != nil && !refAnyPattern(r.calling, calling, r.caseFold) {
		return false
	}
	if cidrs, ok := r.match["sourceCIDRs"]; ok {
		// IPv4-mapped IPv6 sources are IPv4; a zone is not part of the
		// address.
		src := req.source.Unmap().WithZone("")
		hit := false
		for _, s := range cidrs {
			c, _ := refParseCIDR(s)
			hit = hit || src.IsValid() && c.contains(src)
		}
		if !hit {
			return false
		}
	}
	peer := map[string]string{"peerURISANs": req.uriSAN, "peerSubjects": req.subject}
	for k, v := range peer {
		if list, ok := r.match[k]; ok && !(req.mtls && v != "" && refIn(list, v)) {
			return false
		}
	}
	if list, ok := r.match["peerDNSSANs"]; ok {
		hit := false
		for _, pat := range list {
			hit = hit || req.mtls && req.dnsSAN != "" && refDNS(pat, req.dnsSAN)
		}
		if !hit {
			return false
		}
	}
	if list, ok := r.match["userIdentityUsernames"]; ok {
		if !req.hasIdentity || (req.identityType != 1 && req.identityType != 2) || !refIn(list, req.identityPrimary) {
			return false
		}
	}
	proposed := make([]string, len(req.abstractSyntaxes))
	for i, a := range req.abstractSyntaxes {
		proposed[i] = strings.TrimRight(a, "\x00") // trailing NUL padding
	}
	if list, ok := r.match["abstractSyntaxes"]; ok {
		hit := false
		for _, a := range proposed {
			hit = hit || refIn(list, a)
		}
		if !hit {
			return false
		}
	}
	if list, ok := r.match["onlyAbstractSyntaxes"]; ok {
		if len(proposed) == 0 {
			return false
		}
		for _, a := range proposed {
			if !refIn(list, a) {
				return false
			}
		}
	}
	return true
}

// refEvaluate decides req: the first rule whose conditions all hold, else
// the default action; a deny without a reason gets the computed one.
func refEvaluate(p *refPolicy, req refRequest) Decision {
	actions := map[string]Action{"allow": ActionAllow, "deny": ActionDeny, "route": ActionRoute}
	// The default reason: called-ae-not-recognized when the policy has no
	// way to accept the called AE title (default deny, and no allow/route
	// rule's calledAETitles, or its absence, accepts it).
	calledKnown := p.defaultAction == "allow"
	called := refTitle(req.calledField)
	for i := range p.rules {
		r := &p.rules[i]
		if r.action != "deny" && (r.called == nil || refAnyPattern(r.called, called, r.caseFold)) {
			calledKnown = true
		}
	}
	computed := ReasonCalledAENotRecognized
	if calledKnown {
		computed = ReasonCallingAENotRecognized
	}
	for i := range p.rules {
		r := &p.rules[i]
		if !refMatches(r, &req) {
			continue
		}
		d := Decision{Action: actions[r.action], Rule: r.name, RuleIndex: i, DryRun: p.dryRun}
		if r.action == "deny" {
			d.RejectReason = r.rejectReason
			if d.RejectReason == "" {
				d.RejectReason = computed
			}
			return d
		}
		d.Cluster = r.cluster
		d.RewriteCalledAETitle, d.RewriteCallingAETitle = r.rewriteCalled, r.rewriteCalling
		return d
	}
	d := Decision{Action: actions[p.defaultAction], Rule: "default", RuleIndex: -1, DryRun: p.dryRun}
	if p.defaultAction == "deny" {
		d.RejectReason = p.defaultReason
		if d.RejectReason == "" {
			d.RejectReason = computed
		}
	}
	return d
}

func refIn(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
