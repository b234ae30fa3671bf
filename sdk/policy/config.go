package policy

import (
	"math"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/dicomgate/dicomgate/sdk/rejectwire"
)

// Configuration defaults and limits (documented in README.md).
const (
	// DefaultInspectTimeout is the inspectTimeoutMs default.
	DefaultInspectTimeout = 10 * time.Second
	// DefaultMaxAssociateRQBytes is the maxAssociateRQBytes default (1 MiB).
	DefaultMaxAssociateRQBytes = 1 << 20
	// MinMaxAssociateRQBytes and MaxMaxAssociateRQBytes bound
	// maxAssociateRQBytes: a real RQ is at least ~200 bytes, and dcmtk caps
	// A-ASSOCIATE PDUs far below 16 MiB.
	MinMaxAssociateRQBytes = 1024
	MaxMaxAssociateRQBytes = 16 << 20
	// MaxInspectTimeoutMs bounds inspectTimeoutMs (10 minutes).
	MaxInspectTimeoutMs = 600000
	// maxRuleNameLen bounds rule names, which end up in logs and metrics.
	maxRuleNameLen = 128
	// DefaultRule is Decision.Rule when no rule matched and the default
	// action applied: the audit line's "rule", the dicom.rule property and
	// the rule label of dicomgate_decisions_total all say it. No rule may
	// have this name.
	DefaultRule = "default"
)

// Keys allowed in each configuration object.
var (
	topKeys     = []string{"defaultAction", "defaultRejectReason", "defaultRespond", "rejectCluster", "rejectKey", "rules", "mode", "inspectTimeoutMs", "maxAssociateRQBytes", "upstreamConnect"}
	ruleKeys    = []string{"name", "match", "action", "cluster", "service", "rewriteCalledAETitle", "rewriteCallingAETitle", "rejectReason", "respond", "aeTitleCaseInsensitive"}
	matchKeys   = []string{"calledAETitles", "callingAETitles", "sourceCIDRs", "peerURISANs", "peerDNSSANs", "peerSubjects", "abstractSyntaxes", "onlyAbstractSyntaxes", "userIdentityUsernames"}
	serviceKeys = []string{"host", "port", "subset"}
)

// loader walks the parsed configuration, collecting diagnostics.
type loader struct {
	diags []Diagnostic
	nerr  int
}

// errf records an error diagnostic at path. It is not inlined into its
// dozens of call sites (module size).
//
//go:noinline
func (l *loader) errf(path, msg string) {
	l.diags = append(l.diags, Diagnostic{Path: path, Message: msg, Severity: SeverityError})
	l.nerr++
}

// warnf records a warning diagnostic at path.
//
//go:noinline
func (l *loader) warnf(path, msg string) {
	l.diags = append(l.diags, Diagnostic{Path: path, Message: msg, Severity: SeverityWarning})
}

// child joins an object path and a key. Keys that are not plain
// identifiers (empty, with dots, spaces or quotes) use bracket notation:
// rules[0].match["bad key"].
func child(path, key string) string {
	if !plainKey(key) {
		if path == "$" {
			path = ""
		}
		return path + "[" + quote(key) + "]"
	}
	if path == "$" {
		return key
	}
	return path + "." + key
}

// plainKey reports whether key is a non-empty run of letters, digits, '_'
// and '-'.
func plainKey(key string) bool {
	if key == "" {
		return false
	}
	for i := 0; i < len(key); i++ {
		c := key[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// elem joins an array path and an index.
func elem(path string, i int) string { return path + "[" + itoa(i) + "]" }

// object checks that n is an object whose keys are all in allowed and
// unique, and returns the values by key. misplaced maps keys that belong to
// another object to a hint.
func (l *loader) object(n *jnode, path, what string, allowed []string, misplaced map[string]string) map[string]*jnode {
	if n.kind != jObject {
		l.errf(path, "must be a JSON object ("+what+"), got "+n.describe())
		return nil
	}
	out := make(map[string]*jnode, len(n.keys))
	// Duplicates are found in out for allowed keys; unknown keys (an error
	// anyway) get a set only when there are some, so that a valid object
	// costs one map and no path strings (Load runs on every worker VM).
	var seenUnknown map[string]bool
	for i, k := range n.keys {
		if !contains(allowed, k) {
			p := child(path, k)
			if seenUnknown[k] {
				l.errf(p, "duplicate key "+quote(k)+"; each key may appear once")
				continue
			}
			if seenUnknown == nil {
				seenUnknown = make(map[string]bool)
			}
			seenUnknown[k] = true
			if hint, ok := misplaced[k]; ok {
				l.errf(p, "unknown key "+quote(k)+" here; "+hint)
			} else if s := suggest(k, allowed); s != "" {
				l.errf(p, "unknown key "+quote(k)+"; did you mean "+quote(s)+"? (allowed: "+strings.Join(allowed, ", ")+")")
			} else {
				l.errf(p, "unknown key "+quote(k)+" (allowed: "+strings.Join(allowed, ", ")+")")
			}
			continue
		}
		if _, dup := out[k]; dup {
			l.errf(child(path, k), "duplicate key "+quote(k)+"; each key may appear once")
			continue
		}
		out[k] = n.vals[i]
	}
	return out
}

// str returns a string value or reports a type error.
func (l *loader) str(n *jnode, path, want string) (string, bool) {
	if n.kind != jString {
		l.errf(path, "must be "+want+", got "+n.describe())
		return "", false
	}
	return n.str, true
}

// enum returns one of the allowed string values or reports an error.
func (l *loader) enum(n *jnode, path string, allowed []string) (string, bool) {
	if n.kind != jString {
		l.errf(path, "must be one of the strings "+quoteList(allowed)+", got "+n.describe())
		return "", false
	}
	s := n.str
	if contains(allowed, s) {
		return s, true
	}
	if g := suggest(s, allowed); g != "" {
		l.errf(path, quote(s)+" is not allowed; did you mean "+quote(g)+"? (allowed: "+quoteList(allowed)+")")
	} else {
		l.errf(path, quote(s)+" is not allowed (allowed: "+quoteList(allowed)+")")
	}
	return "", false
}

// integer returns a whole number within [lo, hi] or reports an error; unit
// ("milliseconds", "bytes" or "") is named in messages.
func (l *loader) integer(n *jnode, path string, lo, hi int64, unit string) (int64, bool) {
	u := ""
	if unit != "" {
		u = " " + unit
	}
	if n.kind != jNumber {
		l.errf(path, "must be a whole number from "+strconv.FormatInt(lo, 10)+" to "+strconv.FormatInt(hi, 10)+u+", got "+n.describe())
		return 0, false
	}
	v, whole, huge := wholeNumber(n.str)
	if !whole {
		l.errf(path, "must be a whole number from "+strconv.FormatInt(lo, 10)+" to "+strconv.FormatInt(hi, 10)+u+", got "+n.str)
		return 0, false
	}
	if huge || v < lo || v > hi {
		l.errf(path, n.str+" is out of range; allowed: "+strconv.FormatInt(lo, 10)+" to "+strconv.FormatInt(hi, 10)+u)
		return 0, false
	}
	return v, true
}

// wholeNumber evaluates a JSON number literal exactly (no float rounding):
// whole reports whether it is an integer ("1e3", "1.50e1" and "-0" are),
// and huge that its magnitude is 10^18 or more, in which case v is 0.
func wholeNumber(lit string) (v int64, whole, huge bool) {
	neg := strings.HasPrefix(lit, "-")
	if neg {
		lit = lit[1:]
	}
	mant, exp := lit, 0
	m, e, hasExp := cutByte(lit, 'e')
	if !hasExp {
		m, e, hasExp = cutByte(lit, 'E')
	}
	if hasExp {
		mant = m
		eneg := strings.HasPrefix(e, "-")
		if e != "" && (e[0] == '+' || e[0] == '-') {
			e = e[1:]
		}
		for j := 0; j < len(e); j++ {
			if exp < 1e9 { // saturate: 10^(1e9) is far out of every range
				exp = exp*10 + int(e[j]-'0')
			}
		}
		if eneg {
			exp = -exp
		}
	}
	digits := mant
	if i := strings.IndexByte(mant, '.'); i >= 0 {
		digits = mant[:i] + mant[i+1:]
		exp -= len(mant) - i - 1
	}
	for digits != "" && digits[0] == '0' {
		digits = digits[1:]
	}
	for len(digits) > 0 && digits[len(digits)-1] == '0' {
		digits = digits[:len(digits)-1]
		exp++
	}
	if digits == "" {
		return 0, true, false
	}
	if exp < 0 {
		return 0, false, false
	}
	if len(digits)+exp > 18 {
		return 0, true, true
	}
	for i := 0; i < len(digits); i++ {
		v = v*10 + int64(digits[i]-'0')
	}
	for ; exp > 0; exp-- {
		v *= 10
	}
	if neg {
		v = -v
	}
	return v, true, false
}

// boolean returns a boolean or reports a type error.
func (l *loader) boolean(n *jnode, path string) (bool, bool) {
	if n.kind != jBool {
		l.errf(path, "must be true or false, got "+n.describe())
		return false, false
	}
	return n.b, true
}

// strList returns a non-empty array of strings, reporting type errors per
// element. The returned paths are parallel to the values (bad elements are
// skipped).
func (l *loader) strList(n *jnode, path string) (vals, paths []string) {
	if n.kind != jArray {
		if n.kind == jString {
			l.errf(path, "must be an array of strings, got "+n.describe()+"; write ["+quote(n.str)+"]")
		} else {
			l.errf(path, "must be an array of strings, got "+n.describe())
		}
		return nil, nil
	}
	if len(n.elems) == 0 {
		l.errf(path, "is an empty list, which would match nothing; list at least one value or remove the key to match any value")
		return nil, nil
	}
	for i, e := range n.elems {
		p := elem(path, i)
		if e.kind != jString {
			l.errf(p, "must be a string, got "+e.describe())
			continue
		}
		vals = append(vals, e.str)
		paths = append(paths, p)
	}
	return vals, paths
}

// Load parses a policy configuration (JSON), validates it and compiles it.
// It returns every diagnostic found, errors and warnings, in a stable order:
// the top-level settings, then each rule in turn (within an object, unknown
// and duplicate keys first).
// When there is at least one error the Policy is nil and err is a
// *ValidationError holding the same diagnostics.
func Load(data []byte) (*Policy, []Diagnostic, error) {
	root, se := parseJSON(data)
	if se != nil {
		line, col := lineCol(data, se.offset)
		d := Diagnostic{Message: "invalid JSON at byte offset " + strconv.FormatInt(se.offset, 10) + " (line " + itoa(line) + ", column " + itoa(col) + "): " + se.msg}
		diags := []Diagnostic{d}
		return nil, diags, &ValidationError{Diagnostics: diags}
	}
	l := &loader{}
	cfg := l.config(root)
	if l.nerr > 0 {
		return nil, l.diags, &ValidationError{Diagnostics: l.diags}
	}
	return compile(cfg), l.diags, nil
}

// config is the validated configuration, ready to compile.
type config struct {
	defaultAction Action
	defaultReason string
	dryRun        bool
	timeout       time.Duration
	maxRQ         uint32
	connect       ConnectMode
	rules         []*rule
	// defaultRespond is how the default deny answers; rejectCluster and
	// rejectKey configure the rejector (both or neither).
	defaultRespond Respond
	rejectCluster  string
	rejectKey      string
}

// config validates the top-level object.
func (l *loader) config(root *jnode) *config {
	cfg := &config{
		defaultAction: ActionDeny,
		timeout:       DefaultInspectTimeout,
		maxRQ:         DefaultMaxAssociateRQBytes,
	}
	m := l.object(root, "$", `the policy, e.g. {"defaultAction": "deny", "rules": [...]}`, topKeys, map[string]string{
		"name":  `rule keys belong inside an element of "rules"`,
		"match": `rule keys belong inside an element of "rules"`,
		"action": `rule keys belong inside an element of "rules"; ` +
			`for the action when no rule matches use "defaultAction"`,
		"pluginConfig": `pass the policy itself (the value of spec.pluginConfig), or use "dicomgate check" on the WasmPlugin manifest`,
	})
	if m == nil {
		return cfg
	}
	if n := m["mode"]; n != nil {
		if s, ok := l.enum(n, "mode", []string{"enforce", "dry-run"}); ok {
			cfg.dryRun = s == "dry-run"
			if cfg.dryRun {
				l.warnf("mode", `"dry-run": decisions are only reported; every association is let through`)
			}
		}
	}
	if n := m["inspectTimeoutMs"]; n != nil {
		if v, ok := l.integer(n, "inspectTimeoutMs", 1, MaxInspectTimeoutMs, "milliseconds"); ok {
			cfg.timeout = time.Duration(v) * time.Millisecond
		}
	}
	if n := m["maxAssociateRQBytes"]; n != nil {
		if v, ok := l.integer(n, "maxAssociateRQBytes", MinMaxAssociateRQBytes, MaxMaxAssociateRQBytes, "bytes"); ok {
			cfg.maxRQ = uint32(v)
		}
	}
	if n := m["upstreamConnect"]; n != nil {
		if s, ok := l.enum(n, "upstreamConnect", []string{"after-decision", "immediate"}); ok && s == "immediate" {
			cfg.connect = ConnectImmediate
		}
	}
	if n := m["defaultAction"]; n != nil {
		if n.kind == jString && n.str == "route" {
			l.errf("defaultAction", `"route" is not allowed here (allowed: "allow", "deny"); to route everything else, add a last rule with "match": {}, "action": "route" and a "cluster"`)
		} else if s, ok := l.enum(n, "defaultAction", []string{"allow", "deny"}); ok && s == "allow" {
			cfg.defaultAction = ActionAllow
		}
	}
	if n := m["defaultRejectReason"]; n != nil {
		if r, ok := l.enum(n, "defaultRejectReason", rejectReasonNames()); ok {
			if cfg.defaultAction != ActionDeny {
				l.errf("defaultRejectReason", `only allowed when "defaultAction" is "deny"`)
			}
			cfg.defaultReason = r
		}
	}
	l.rejector(m, cfg)
	if n := m["defaultRespond"]; n != nil {
		if r, ok := l.respond(n, "defaultRespond", cfg); ok {
			if cfg.defaultAction != ActionDeny {
				l.errf("defaultRespond", `only allowed when "defaultAction" is "deny"`)
			}
			cfg.defaultRespond = r
		}
	}
	if n := m["rules"]; n != nil {
		if n.kind != jArray {
			l.errf("rules", "must be an array of rule objects, got "+n.describe())
		} else if len(n.elems) > MaxRules {
			l.errf("rules", "has "+itoa(len(n.elems))+" rules; at most "+itoa(MaxRules)+" are allowed")
		} else {
			l.rules(n, cfg)
		}
	}
	return cfg
}

// rules validates the rules array.
func (l *loader) rules(n *jnode, cfg *config) {
	names := map[string]int{}
	catchAll := -1
	for i, rn := range n.elems {
		path := elem("rules", i)
		r := l.rule(rn, path, cfg)
		if r == nil {
			continue
		}
		if r.name != "" {
			if j, dup := names[r.name]; dup {
				l.errf(child(path, "name"), "duplicate rule name "+quote(r.name)+" (also rules["+itoa(j)+"].name); rule names must be unique")
			} else {
				names[r.name] = i
			}
		}
		if catchAll >= 0 {
			l.warnf(path, "unreachable: rules["+itoa(catchAll)+"] ("+quote(cfg.rules[catchAll].name)+") matches every association, so this rule is never evaluated")
		} else if r.catchAll {
			catchAll = i
		}
		cfg.rules = append(cfg.rules, r)
	}
}

// ruleMisplaced maps match keys written directly in a rule to a hint.
var ruleMisplaced = map[string]string{
	"calledAETitles":        `match conditions belong inside "match"`,
	"callingAETitles":       `match conditions belong inside "match"`,
	"sourceCIDRs":           `match conditions belong inside "match"`,
	"peerURISANs":           `match conditions belong inside "match"`,
	"peerDNSSANs":           `match conditions belong inside "match"`,
	"peerSubjects":          `match conditions belong inside "match"`,
	"abstractSyntaxes":      `match conditions belong inside "match"`,
	"onlyAbstractSyntaxes":  `match conditions belong inside "match"`,
	"userIdentityUsernames": `match conditions belong inside "match"`,
}

// matchMisplaced maps rule keys written inside "match" to a hint.
var matchMisplaced = map[string]string{
	"aeTitleCaseInsensitive": `"aeTitleCaseInsensitive" belongs to the rule, next to "match"`,
	"name":                   `"name" belongs to the rule, next to "match"`,
	"action":                 `"action" belongs to the rule, next to "match"`,
}

// rule validates one rule; it returns nil only when rn is not an object (so
// that indices stay aligned with the configuration otherwise).
func (l *loader) rule(rn *jnode, path string, cfg *config) *rule {
	m := l.object(rn, path, `a rule, e.g. {"name": "...", "match": {...}, "action": "allow"}`, ruleKeys, ruleMisplaced)
	r := &rule{}
	if m == nil {
		r.name = ""
		return r
	}
	if n := m["name"]; n == nil {
		l.errf(path, `missing "name"; every rule needs a unique name (it appears in logs and decisions)`)
	} else if s, ok := l.str(n, child(path, "name"), "a non-empty string"); ok {
		switch {
		case trimSpaces(s) == "":
			l.errf(child(path, "name"), "is empty; every rule needs a unique, non-empty name")
		case len(s) > maxRuleNameLen:
			l.errf(child(path, "name"), "is "+itoa(len(s))+" characters long; rule names are at most "+itoa(maxRuleNameLen))
		case hasControl(s):
			l.errf(child(path, "name"), quote(s)+" contains control characters; use printable characters only")
		case s == DefaultRule:
			l.errf(child(path, "name"), quote(s)+" is reserved: audit lines and metrics name the default action "+quote(DefaultRule)+"; choose another rule name")
		default:
			r.name = s
		}
	}
	if n := m["aeTitleCaseInsensitive"]; n != nil {
		r.fold, _ = l.boolean(n, child(path, "aeTitleCaseInsensitive"))
	}
	actionOK := false
	if n := m["action"]; n == nil {
		l.errf(path, `missing "action" (allowed: "allow", "deny", "route")`)
	} else if s, ok := l.enum(n, child(path, "action"), []string{"allow", "deny", "route"}); ok {
		actionOK = true
		switch s {
		case "allow":
			r.action = ActionAllow
		case "deny":
			r.action = ActionDeny
		case "route":
			r.action = ActionRoute
		}
	}
	if mn := m["match"]; mn != nil {
		l.match(mn, child(path, "match"), r)
	} else {
		r.catchAll = true
	}

	cluster, service := m["cluster"], m["service"]
	if actionOK {
		switch r.action {
		case ActionRoute:
			if cfg.connect == ConnectImmediate {
				l.errf(child(path, "action"), `"route" is impossible with "upstreamConnect": "immediate" (the upstream is chosen before the A-ASSOCIATE-RQ is read); set "upstreamConnect": "after-decision" or use action "allow"`)
			}
			switch {
			case cluster == nil && service == nil:
				l.errf(path, `action "route" needs "cluster" or "service"`)
			case cluster != nil && service != nil:
				l.errf(path, `"cluster" and "service" are mutually exclusive; keep one`)
			}
		default:
			if cluster != nil {
				l.errf(child(path, "cluster"), `only allowed with action "route" (this rule's action is `+quote(r.action.String())+`)`)
				cluster = nil
			}
			if service != nil {
				l.errf(child(path, "service"), `only allowed with action "route" (this rule's action is `+quote(r.action.String())+`)`)
				service = nil
			}
		}
	}
	if cluster != nil {
		r.cluster = l.clusterName(cluster, child(path, "cluster"))
	}
	if service != nil {
		r.cluster = l.service(service, child(path, "service"))
	}

	if n := m["rejectReason"]; n != nil {
		p := child(path, "rejectReason")
		if actionOK && r.action != ActionDeny {
			l.errf(p, `only allowed with action "deny" (this rule's action is `+quote(r.action.String())+`)`)
		} else if s, ok := l.enum(n, p, rejectReasonNames()); ok {
			r.rejectReason = s
		}
	}
	if n := m["respond"]; n != nil {
		p := child(path, "respond")
		if actionOK && r.action != ActionDeny {
			l.errf(p, `only allowed with action "deny" (this rule's action is `+quote(r.action.String())+`)`)
		} else if v, ok := l.respond(n, p, cfg); ok {
			r.respond = v
		}
	}
	for _, rw := range []struct {
		key string
		dst *string
	}{{"rewriteCalledAETitle", &r.rewriteCalled}, {"rewriteCallingAETitle", &r.rewriteCalling}} {
		n := m[rw.key]
		if n == nil {
			continue
		}
		p := child(path, rw.key)
		if actionOK && r.action == ActionDeny {
			l.errf(p, `only allowed with action "allow" or "route" (this rule's action is "deny")`)
			continue
		}
		if s, ok := l.str(n, p, "an AE title (1 to 16 characters)"); ok {
			if msg := validateAETitle(s); msg != "" {
				l.errf(p, msg)
			} else {
				*rw.dst = s
			}
		}
	}
	return r
}

// clusterName validates an Envoy cluster name; "" when invalid.
func (l *loader) clusterName(n *jnode, path string) string {
	s, ok := l.str(n, path, "an Envoy cluster name such as \"outbound|11112||pacs.dicom.svc.cluster.local\"")
	if !ok {
		return ""
	}
	if s == "" || hasControl(s) || containsByte(s, " \t") {
		l.errf(path, quote(s)+" is not a cluster name; expected e.g. \"outbound|11112||pacs.dicom.svc.cluster.local\" (no spaces)")
		return ""
	}
	return s
}

// rejector validates rejectCluster and rejectKey (before the rules, whose
// "respond" warnings depend on them).
func (l *loader) rejector(m map[string]*jnode, cfg *config) {
	cn, kn := m["rejectCluster"], m["rejectKey"]
	if cn != nil {
		cfg.rejectCluster = l.clusterName(cn, "rejectCluster")
	}
	if kn != nil {
		if s, ok := l.str(kn, "rejectKey", "44 to 64 base64 characters, e.g. the output of `openssl rand -base64 32`"); ok {
			if _, err := rejectwire.NewKey(s); err != nil {
				l.errf("rejectKey", err.Error()+", got "+itoa(len(s))+" characters")
			} else {
				cfg.rejectKey = s
			}
		}
	}
	switch {
	case cn != nil && kn == nil:
		l.errf("rejectCluster", `needs "rejectKey" (the rejector's key, see sdk/policy/README.md)`)
	case cn == nil && kn != nil:
		l.warnf("rejectKey", `is unused without "rejectCluster"`)
	case cn != nil && cfg.connect == ConnectImmediate:
		l.warnf("rejectCluster", `is ignored with "upstreamConnect": "immediate": every deny closes`)
	}
}

// respond reads a "respond" value ("close" or "reject") and warns when a
// reject cannot be carried out and falls back to close.
func (l *loader) respond(n *jnode, path string, cfg *config) (Respond, bool) {
	s, ok := l.enum(n, path, []string{"close", "reject"})
	if !ok {
		return RespondClose, false
	}
	if s == "close" {
		return RespondClose, true
	}
	switch {
	case cfg.rejectCluster == "":
		l.warnf(path, `"reject" falls back to "close" without "rejectCluster"`)
	case cfg.connect == ConnectImmediate:
		l.warnf(path, `"reject" falls back to "close" with "upstreamConnect": "immediate"`)
	}
	return RespondReject, true
}

// service validates a service reference and returns its cluster name.
func (l *loader) service(n *jnode, path string) string {
	m := l.object(n, path, `an Istio service, e.g. {"host": "pacs.dicom.svc.cluster.local", "port": 11112}`, serviceKeys, nil)
	if m == nil {
		return ""
	}
	var host, subset string
	var port int64
	ok := true
	if hn := m["host"]; hn == nil {
		l.errf(path, `missing "host" (the service's fully qualified host name, e.g. "pacs.dicom.svc.cluster.local")`)
		ok = false
	} else if s, good := l.str(hn, child(path, "host"), "a host name"); good {
		if msg := checkHost(s); msg != "" {
			l.errf(child(path, "host"), msg)
			ok = false
		}
		host = s
	} else {
		ok = false
	}
	if pn := m["port"]; pn == nil {
		l.errf(path, `missing "port" (the service port, 1 to 65535)`)
		ok = false
	} else if v, good := l.integer(pn, child(path, "port"), 1, 65535, ""); good {
		port = v
	} else {
		ok = false
	}
	if sn := m["subset"]; sn != nil {
		if s, good := l.str(sn, child(path, "subset"), "a DestinationRule subset name"); good {
			if containsByte(s, "| \t") || hasControl(s) {
				l.errf(child(path, "subset"), quote(s)+" is not a subset name (no '|', spaces or control characters)")
				ok = false
			}
			subset = s
		} else {
			ok = false
		}
	}
	if !ok {
		return ""
	}
	return "outbound|" + strconv.FormatInt(port, 10) + "|" + subset + "|" + host
}

// checkHost validates a DNS host name.
func checkHost(s string) string {
	if s == "" {
		return "is empty; give the service host, e.g. \"pacs.dicom.svc.cluster.local\""
	}
	if len(s) > 253 {
		return "is " + itoa(len(s)) + " characters long; host names are at most 253"
	}
	for rest, more := s, true; more; {
		var label string
		label, rest, more = cutByte(rest, '.')
		if label == "" || len(label) > 63 {
			return quote(s) + " is not a host name (empty or over-long label)"
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '*' && len(label) == 1) {
				return quote(s) + " is not a host name (letters, digits, '-' and '.' only)"
			}
		}
	}
	return ""
}

// match validates a match object into r.
func (l *loader) match(n *jnode, path string, r *rule) {
	m := l.object(n, path, `match conditions, e.g. {"calledAETitles": ["PACS_A"]}`, matchKeys, matchMisplaced)
	if m == nil {
		return
	}
	// The case flag is read before match by rule(), so r.fold is final here.
	if v := m["calledAETitles"]; v != nil {
		r.called = l.aeList(v, child(path, "calledAETitles"), r.fold)
	}
	if v := m["callingAETitles"]; v != nil {
		r.calling = l.aeList(v, child(path, "callingAETitles"), r.fold)
	}
	if v := m["sourceCIDRs"]; v != nil {
		r.cidrs = l.cidrList(v, child(path, "sourceCIDRs"))
		r.hasCIDRs = true
	}
	if v := m["peerURISANs"]; v != nil {
		r.uriSANs = l.plainList(v, child(path, "peerURISANs"), "a URI SAN such as \"spiffe://cluster.local/ns/dicom/sa/ct1\"")
		r.hasURI = true
	}
	if v := m["peerDNSSANs"]; v != nil {
		r.dnsSANs = l.dnsList(v, child(path, "peerDNSSANs"))
		r.hasDNS = true
	}
	if v := m["peerSubjects"]; v != nil {
		r.subjects = l.plainList(v, child(path, "peerSubjects"), "a certificate subject such as \"CN=CT1,O=Hospital\"")
		r.hasSubject = true
	}
	if v := m["abstractSyntaxes"]; v != nil {
		r.anyAbstract = l.uidList(v, child(path, "abstractSyntaxes"))
	}
	if v := m["onlyAbstractSyntaxes"]; v != nil {
		r.onlyAbstract = l.uidList(v, child(path, "onlyAbstractSyntaxes"))
	}
	if v := m["userIdentityUsernames"]; v != nil {
		r.usernames = l.plainList(v, child(path, "userIdentityUsernames"), "a user identity username")
		r.hasUsername = true
	}
	r.catchAll = (r.called == nil || r.called.any) && (r.calling == nil || r.calling.any) &&
		!r.hasCIDRs && !r.hasURI && !r.hasDNS && !r.hasSubject &&
		r.anyAbstract == nil && r.onlyAbstract == nil && !r.hasUsername
}

// aeList compiles an AE title pattern list.
func (l *loader) aeList(n *jnode, path string, fold bool) *aeSet {
	vals, paths := l.strList(n, path)
	set := &aeSet{fold: fold}
	seen := map[string]bool{}
	for i, v := range vals {
		pat, glob, msg := compileAEPattern(v, fold)
		if msg != "" {
			l.errf(paths[i], msg)
			continue
		}
		set.source = append(set.source, v)
		if seen[pat] {
			continue
		}
		seen[pat] = true
		switch {
		case pat == string(wStar):
			set.any = true
		case glob:
			set.globs = append(set.globs, pat)
		default:
			set.exact = append(set.exact, pat)
		}
	}
	if len(set.exact) > aeSetMapThreshold {
		set.exactMap = make(map[string]struct{}, len(set.exact))
		for _, e := range set.exact {
			set.exactMap[e] = struct{}{}
		}
	}
	return set
}

// cidrList parses sourceCIDRs.
func (l *loader) cidrList(n *jnode, path string) []netip.Prefix {
	vals, paths := l.strList(n, path)
	var out []netip.Prefix
	for i, v := range vals {
		var p netip.Prefix
		var err error
		if strings.Contains(v, "/") {
			p, err = netip.ParsePrefix(v)
		} else {
			var a netip.Addr
			a, err = netip.ParseAddr(v)
			if err == nil {
				if a.Zone() != "" {
					l.errf(paths[i], quote(v)+" has an IPv6 zone; zones are not allowed in sourceCIDRs")
					continue
				}
				p = netip.PrefixFrom(a, a.BitLen())
			}
		}
		if err != nil {
			l.errf(paths[i], quote(v)+" is not a CIDR (expected an IPv4 or IPv6 prefix such as \"10.0.0.0/8\" or \"fd00::/8\", or a bare address)")
			continue
		}
		if p.Addr().Is4In6() {
			l.errf(paths[i], quote(v)+" is an IPv4-mapped IPv6 prefix; write it in IPv4 form (IPv4-mapped sources are matched as IPv4)")
			continue
		}
		if m := p.Masked(); m != p {
			l.warnf(paths[i], quote(v)+" has host bits set; it is treated as "+quote(m.String()))
			p = m
		}
		out = append(out, p)
	}
	return out
}

// plainList returns a list of non-empty strings.
func (l *loader) plainList(n *jnode, path, what string) []string {
	vals, paths := l.strList(n, path)
	var out []string
	for i, v := range vals {
		if v == "" {
			l.errf(paths[i], "is empty; expected "+what)
			continue
		}
		out = append(out, v)
	}
	return out
}

// dnsList returns lower-cased DNS SAN patterns; "*." is allowed as the whole
// leftmost label.
func (l *loader) dnsList(n *jnode, path string) []string {
	vals, paths := l.strList(n, path)
	var out []string
	for i, v := range vals {
		rest := strings.TrimPrefix(v, "*.")
		if v == "" || strings.Contains(rest, "*") || checkHost(rest) != "" {
			l.errf(paths[i], quote(v)+" is not a DNS name pattern (expected e.g. \"ct1.modalities.example\" or \"*.modalities.example\")")
			continue
		}
		out = append(out, asciiLower(v))
	}
	return out
}

// uidList validates DICOM UIDs.
func (l *loader) uidList(n *jnode, path string) *uidSet {
	vals, paths := l.strList(n, path)
	set := &uidSet{}
	for i, v := range vals {
		if msg := checkUID(v); msg != "" {
			l.errf(paths[i], quote(v)+" is not a DICOM UID: "+msg)
			continue
		}
		set.add(v)
	}
	return set
}

// checkUID validates a UID per PS3.5 §9.1.
func checkUID(s string) string {
	if s == "" {
		return "it is empty"
	}
	if len(s) > 64 {
		return "it is " + itoa(len(s)) + " characters long; UIDs are at most 64"
	}
	for rest, more := s, true; more; {
		var comp string
		comp, rest, more = cutByte(rest, '.')
		if comp == "" {
			return "empty component (UIDs are dot-separated numbers such as 1.2.840.10008.5.1.4.1.1.2)"
		}
		for i := 0; i < len(comp); i++ {
			if comp[i] < '0' || comp[i] > '9' {
				return "only digits and dots are allowed (e.g. 1.2.840.10008.5.1.4.1.1.2)"
			}
		}
		if len(comp) > 1 && comp[0] == '0' {
			return "component " + quote(comp) + " has a leading zero"
		}
	}
	return ""
}

// hasControl reports whether s contains ASCII control characters.
func hasControl(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] == 0x7f {
			return true
		}
	}
	return false
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func quoteList(list []string) string {
	q := make([]string, len(list))
	for i, v := range list {
		q[i] = quote(v)
	}
	return strings.Join(q, ", ")
}

// suggest returns the allowed value closest to s by edit distance (case
// insensitive), or "" when nothing is close enough to be a likely typo.
func suggest(s string, allowed []string) string {
	best, bestD := "", math.MaxInt
	ls := asciiLower(s)
	for _, a := range allowed {
		d := editDistance(ls, asciiLower(a))
		if d < bestD {
			best, bestD = a, d
		}
	}
	limit := len(s) / 3
	if limit < 2 {
		limit = 2
	}
	if bestD <= limit {
		return best
	}
	return ""
}

// editDistance is the Levenshtein distance between a and b (byte-wise).
func editDistance(a, b string) int {
	if len(a) > 256 || len(b) > 256 {
		return math.MaxInt
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// uidSet is a set of UIDs matched against proposed abstract syntaxes.
type uidSet struct {
	list []string
	m    map[string]struct{}
}

func (s *uidSet) add(v string) {
	if s.m == nil {
		s.m = map[string]struct{}{}
	}
	if _, ok := s.m[v]; ok {
		return
	}
	s.m[v] = struct{}{}
	// Insert in order (a hand-written binary search: the generic slices
	// helpers would add code to the Wasm module for one call site).
	lo, hi := 0, len(s.list)
	for lo < hi {
		if m := int(uint(lo+hi) >> 1); s.list[m] < v {
			lo = m + 1
		} else {
			hi = m
		}
	}
	s.list = append(s.list, "")
	copy(s.list[lo+1:], s.list[lo:])
	s.list[lo] = v
}

// has reports whether uid (trailing NUL padding removed) is in the set.
func (s *uidSet) has(uid []byte) bool {
	for len(uid) > 0 && uid[len(uid)-1] == 0 {
		uid = uid[:len(uid)-1]
	}
	if len(s.list) <= 4 {
		for _, v := range s.list {
			if v == string(uid) {
				return true
			}
		}
		return false
	}
	_, ok := s.m[string(uid)]
	return ok
}
