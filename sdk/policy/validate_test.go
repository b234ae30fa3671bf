package policy

import (
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// diag is an expected diagnostic.
type diag struct {
	path, msg string
	warn      bool
}

func errorsOf(diags []Diagnostic) []Diagnostic {
	var out []Diagnostic
	for _, d := range diags {
		if d.Severity == SeverityError {
			out = append(out, d)
		}
	}
	return out
}

func TestValidationErrors(t *testing.T) {
	tests := []struct {
		name string
		cfg  string
		want []diag // exact path and message, in document order
	}{
		{"bad cidr", oneRule(`{"sourceCIDRs":["10.0.0.0/33"]}`), []diag{
			{"rules[0].match.sourceCIDRs[0]", `"10.0.0.0/33" is not a CIDR (expected an IPv4 or IPv6 prefix such as "10.0.0.0/8" or "fd00::/8", or a bare address)`, false}}},
		{"cidr zone", oneRule(`{"sourceCIDRs":["fe80::1%eth0"]}`), []diag{
			{"rules[0].match.sourceCIDRs[0]", `"fe80::1%eth0" has an IPv6 zone; zones are not allowed in sourceCIDRs`, false}}},
		{"cidr 4in6", oneRule(`{"sourceCIDRs":["::ffff:10.0.0.0/104"]}`), []diag{
			{"rules[0].match.sourceCIDRs[0]", `"::ffff:10.0.0.0/104" is an IPv4-mapped IPv6 prefix; write it in IPv4 form (IPv4-mapped sources are matched as IPv4)`, false}}},
		{"route without target", `{"rules":[{"name":"r","action":"route"}]}`, []diag{
			{"rules[0]", `action "route" needs "cluster" or "service"`, false}}},
		{"route with both", `{"rules":[{"name":"r","action":"route","cluster":"c","service":{"host":"h","port":1}}]}`, []diag{
			{"rules[0]", `"cluster" and "service" are mutually exclusive; keep one`, false}}},
		{"cluster on allow", `{"rules":[{"name":"r","action":"allow","cluster":"c"}]}`, []diag{
			{"rules[0].cluster", `only allowed with action "route" (this rule's action is "allow")`, false}}},
		{"service on deny", `{"rules":[{"name":"r","action":"deny","service":{"host":"h","port":1}}]}`, []diag{
			{"rules[0].service", `only allowed with action "route" (this rule's action is "deny")`, false}}},
		{"cluster with space", `{"rules":[{"name":"r","action":"route","cluster":"a b"}]}`, []diag{
			{"rules[0].cluster", `"a b" is not a cluster name; expected e.g. "outbound|11112||pacs.dicom.svc.cluster.local" (no spaces)`, false}}},
		{"route with immediate connect", `{"upstreamConnect":"immediate","rules":[{"name":"r","action":"route","cluster":"c"}]}`, []diag{
			{"rules[0].action", `"route" is impossible with "upstreamConnect": "immediate" (the upstream is chosen before the A-ASSOCIATE-RQ is read); set "upstreamConnect": "after-decision" or use action "allow"`, false}}},
		{"unknown match key", oneRule(`{"calledAETitle":["A"]}`), []diag{
			{"rules[0].match.calledAETitle", `unknown key "calledAETitle"; did you mean "calledAETitles"? (allowed: calledAETitles, callingAETitles, sourceCIDRs, peerURISANs, peerDNSSANs, peerSubjects, abstractSyntaxes, onlyAbstractSyntaxes, userIdentityUsernames)`, false}}},
		{"unknown key case", `{"DefaultAction":"deny"}`, []diag{
			{"DefaultAction", `unknown key "DefaultAction"; did you mean "defaultAction"? (allowed: defaultAction, defaultRejectReason, defaultRespond, rejectCluster, rejectKey, rules, mode, inspectTimeoutMs, maxAssociateRQBytes, upstreamConnect)`, false}}},
		{"empty key", `{"":1}`, []diag{
			{`[""]`, `unknown key "" (allowed: defaultAction, defaultRejectReason, defaultRespond, rejectCluster, rejectKey, rules, mode, inspectTimeoutMs, maxAssociateRQBytes, upstreamConnect)`, false}}},
		{"odd key in match", oneRule(`{"called AE":["X"]}`), []diag{
			{`rules[0].match["called AE"]`, `unknown key "called AE" (allowed: calledAETitles, callingAETitles, sourceCIDRs, peerURISANs, peerDNSSANs, peerSubjects, abstractSyntaxes, onlyAbstractSyntaxes, userIdentityUsernames)`, false}}},
		{"unknown key far", `{"zzz":1}`, []diag{
			{"zzz", `unknown key "zzz" (allowed: defaultAction, defaultRejectReason, defaultRespond, rejectCluster, rejectKey, rules, mode, inspectTimeoutMs, maxAssociateRQBytes, upstreamConnect)`, false}}},
		{"misplaced case flag", oneRule(`{"aeTitleCaseInsensitive":true}`), []diag{
			{"rules[0].match.aeTitleCaseInsensitive", `unknown key "aeTitleCaseInsensitive" here; "aeTitleCaseInsensitive" belongs to the rule, next to "match"`, false}}},
		{"match key on rule", `{"rules":[{"name":"r","action":"allow","calledAETitles":["A"]}]}`, []diag{
			{"rules[0].calledAETitles", `unknown key "calledAETitles" here; match conditions belong inside "match"`, false}}},
		{"duplicate key", `{"mode":"enforce","mode":"dry-run"}`, []diag{
			{"mode", `duplicate key "mode"; each key may appear once`, false}}},
		{"reserved rule name", `{"rules":[{"name":"default","action":"deny"}]}`, []diag{
			{"rules[0].name", `"default" is reserved: audit lines and metrics name the default action "default"; choose another rule name`, false}}},
		{"duplicate rule name", `{"rules":[{"name":"x","match":{"callingAETitles":["A"]},"action":"allow"},{"name":"x","action":"deny"}]}`, []diag{
			{"rules[1].name", `duplicate rule name "x" (also rules[0].name); rule names must be unique`, false}}},
		{"empty rule name", `{"rules":[{"name":"","action":"allow"}]}`, []diag{
			{"rules[0].name", "is empty; every rule needs a unique, non-empty name", false}}},
		{"missing rule name", `{"rules":[{"action":"allow"}]}`, []diag{
			{"rules[0]", `missing "name"; every rule needs a unique name (it appears in logs and decisions)`, false}}},
		{"control char in name", `{"rules":[{"name":"a\nb","action":"allow"}]}`, []diag{
			{"rules[0].name", `"a\nb" contains control characters; use printable characters only`, false}}},
		{"missing action", `{"rules":[{"name":"r"}]}`, []diag{
			{"rules[0]", `missing "action" (allowed: "allow", "deny", "route")`, false}}},
		{"action typo", `{"rules":[{"name":"r","action":"alow"}]}`, []diag{
			{"rules[0].action", `"alow" is not allowed; did you mean "allow"? (allowed: "allow", "deny", "route")`, false}}},
		{"mode typo", `{"mode":"dryrun"}`, []diag{
			{"mode", `"dryrun" is not allowed; did you mean "dry-run"? (allowed: "enforce", "dry-run")`, false}}},
		{"mode type", `{"mode":5}`, []diag{
			{"mode", `must be one of the strings "enforce", "dry-run", got number 5`, false}}},
		{"default route", `{"defaultAction":"route"}`, []diag{
			{"defaultAction", `"route" is not allowed here (allowed: "allow", "deny"); to route everything else, add a last rule with "match": {}, "action": "route" and a "cluster"`, false}}},
		{"default reason with allow", `{"defaultAction":"allow","defaultRejectReason":"no-reason-given"}`, []diag{
			{"defaultRejectReason", `only allowed when "defaultAction" is "deny"`, false}}},
		{"reject reason typo", `{"rules":[{"name":"r","action":"deny","rejectReason":"calling-ae-not-recognised"}]}`, []diag{
			{"rules[0].rejectReason", `"calling-ae-not-recognised" is not allowed; did you mean "calling-ae-not-recognized"? (allowed: "no-reason-given", "application-context-not-supported", "calling-ae-not-recognized", "called-ae-not-recognized", "protocol-version-not-supported", "temporary-congestion", "local-limit-exceeded")`, false}}},
		{"reject reason on allow", `{"rules":[{"name":"r","action":"allow","rejectReason":"no-reason-given"}]}`, []diag{
			{"rules[0].rejectReason", `only allowed with action "deny" (this rule's action is "allow")`, false}}},
		{"rewrite on deny", `{"rules":[{"name":"r","action":"deny","rewriteCalledAETitle":"X"}]}`, []diag{
			{"rules[0].rewriteCalledAETitle", `only allowed with action "allow" or "route" (this rule's action is "deny")`, false}}},
		{"rewrite too long", `{"rules":[{"name":"r","action":"allow","rewriteCallingAETitle":"ABCDEFGHIJKLMNOPQ"}]}`, []diag{
			{"rules[0].rewriteCallingAETitle", `"ABCDEFGHIJKLMNOPQ" has 17 characters; AE titles have at most 16`, false}}},
		{"rewrite leading space", `{"rules":[{"name":"r","action":"allow","rewriteCalledAETitle":" X"}]}`, []diag{
			{"rules[0].rewriteCalledAETitle", `" X" has leading or trailing spaces, which peers strip or treat inconsistently; remove them`, false}}},
		{"rewrite backslash", `{"rules":[{"name":"r","action":"allow","rewriteCalledAETitle":"A\\B"}]}`, []diag{
			{"rules[0].rewriteCalledAETitle", `"A\\B" contains the byte 0x5c; AE titles allow printable ASCII (0x20-0x7E) except backslash`, false}}},
		{"rewrite empty", `{"rules":[{"name":"r","action":"allow","rewriteCalledAETitle":""}]}`, []diag{
			{"rules[0].rewriteCalledAETitle", `is empty; an AE title is 1 to 16 characters`, false}}},
		{"ae list not array", oneRule(`{"calledAETitles":"PACS"}`), []diag{
			{"rules[0].match.calledAETitles", `must be an array of strings, got string "PACS"; write ["PACS"]`, false}}},
		{"ae list empty", oneRule(`{"calledAETitles":[]}`), []diag{
			{"rules[0].match.calledAETitles", `is an empty list, which would match nothing; list at least one value or remove the key to match any value`, false}}},
		{"ae element type", oneRule(`{"callingAETitles":["A",7]}`), []diag{
			{"rules[0].match.callingAETitles[1]", `must be a string, got number 7`, false}}},
		{"ae too long", oneRule(`{"calledAETitles":["ABCDEFGHIJKLMNOPQ"]}`), []diag{
			{"rules[0].match.calledAETitles[0]", `"ABCDEFGHIJKLMNOPQ" has 17 characters; AE titles have at most 16, so it can never match`, false}}},
		{"glob too long", oneRule(`{"calledAETitles":["ABCDEFGHIJKLMNOPQ*"]}`), []diag{
			{"rules[0].match.calledAETitles[0]", `"ABCDEFGHIJKLMNOPQ*" needs at least 17 characters but AE titles have at most 16, so it can never match`, false}}},
		{"ae backslash", oneRule(`{"calledAETitles":["A\\B"]}`), []diag{
			{"rules[0].match.calledAETitles[0]", `"A\\B": a backslash is only allowed before * or ? (to match them literally); AE titles cannot contain a backslash`, false}}},
		{"ae empty", oneRule(`{"calledAETitles":[""]}`), []diag{
			{"rules[0].match.calledAETitles[0]", `is empty; an AE title pattern is 1 to 16 characters, "*" matches any title`, false}}},
		{"ae spaces", oneRule(`{"calledAETitles":["   "]}`), []diag{
			{"rules[0].match.calledAETitles[0]", `"   " is only spaces; an AE title pattern is 1 to 16 characters, "*" matches any title`, false}}},
		{"ae control", oneRule(`{"calledAETitles":["A\u0007"]}`), []diag{
			{"rules[0].match.calledAETitles[0]", `"A\a" contains the byte 0x07; AE titles allow printable ASCII (0x20-0x7E) except backslash`, false}}},
		{"case flag type", `{"rules":[{"name":"r","action":"allow","aeTitleCaseInsensitive":"yes"}]}`, []diag{
			{"rules[0].aeTitleCaseInsensitive", `must be true or false, got string "yes"`, false}}},
		{"uid leading zero", oneRule(`{"abstractSyntaxes":["1.2.03"]}`), []diag{
			{"rules[0].match.abstractSyntaxes[0]", `"1.2.03" is not a DICOM UID: component "03" has a leading zero`, false}}},
		{"uid letters", oneRule(`{"onlyAbstractSyntaxes":["CT"]}`), []diag{
			{"rules[0].match.onlyAbstractSyntaxes[0]", `"CT" is not a DICOM UID: only digits and dots are allowed (e.g. 1.2.840.10008.5.1.4.1.1.2)`, false}}},
		{"dns pattern", oneRule(`{"peerDNSSANs":["a.*.b"]}`), []diag{
			{"rules[0].match.peerDNSSANs[0]", `"a.*.b" is not a DNS name pattern (expected e.g. "ct1.modalities.example" or "*.modalities.example")`, false}}},
		{"empty uri san", oneRule(`{"peerURISANs":[""]}`), []diag{
			{"rules[0].match.peerURISANs[0]", `is empty; expected a URI SAN such as "spiffe://cluster.local/ns/dicom/sa/ct1"`, false}}},
		{"empty username", oneRule(`{"userIdentityUsernames":[""]}`), []diag{
			{"rules[0].match.userIdentityUsernames[0]", `is empty; expected a user identity username`, false}}},
		{"service fields", `{"rules":[{"name":"r","action":"route","service":{"host":"bad host","port":70000,"subset":"a|b"}}]}`, []diag{
			{"rules[0].service.host", `"bad host" is not a host name (letters, digits, '-' and '.' only)`, false},
			{"rules[0].service.port", `70000 is out of range; allowed: 1 to 65535`, false},
			{"rules[0].service.subset", `"a|b" is not a subset name (no '|', spaces or control characters)`, false}}},
		{"service missing", `{"rules":[{"name":"r","action":"route","service":{}}]}`, []diag{
			{"rules[0].service", `missing "host" (the service's fully qualified host name, e.g. "pacs.dicom.svc.cluster.local")`, false},
			{"rules[0].service", `missing "port" (the service port, 1 to 65535)`, false}}},
		{"port not integer", `{"rules":[{"name":"r","action":"route","service":{"host":"h","port":1.5}}]}`, []diag{
			{"rules[0].service.port", `must be a whole number from 1 to 65535, got 1.5`, false}}},
		{"timeout range", `{"inspectTimeoutMs":0}`, []diag{
			{"inspectTimeoutMs", `0 is out of range; allowed: 1 to 600000 milliseconds`, false}}},
		{"timeout type", `{"inspectTimeoutMs":"10s"}`, []diag{
			{"inspectTimeoutMs", `must be a whole number from 1 to 600000 milliseconds, got string "10s"`, false}}},
		{"max rq range", `{"maxAssociateRQBytes":99999999999}`, []diag{
			{"maxAssociateRQBytes", `99999999999 is out of range; allowed: 1024 to 16777216 bytes`, false}}},
		{"connect typo", `{"upstreamConnect":"after_decision"}`, []diag{
			{"upstreamConnect", `"after_decision" is not allowed; did you mean "after-decision"? (allowed: "after-decision", "immediate")`, false}}},
		{"rules not array", `{"rules":{}}`, []diag{
			{"rules", `must be an array of rule objects, got object`, false}}},
		{"rule not object", `{"rules":[1]}`, []diag{
			{"rules[0]", `must be a JSON object (a rule, e.g. {"name": "...", "match": {...}, "action": "allow"}), got number 1`, false}}},
		{"root not object", `[]`, []diag{
			{"$", `must be a JSON object (the policy, e.g. {"defaultAction": "deny", "rules": [...]}), got array`, false}}},
		{"rule key at top", `{"action":"allow"}`, []diag{
			{"action", `unknown key "action" here; rule keys belong inside an element of "rules"; for the action when no rule matches use "defaultAction"`, false}}},
		{"syntax error", "{\n  \"defaultAction\": \"deny\",\n}", []diag{
			{"", `invalid JSON at byte offset 29 (line 3, column 1): invalid character '}' looking for beginning of object key string`, false}}},
		{"empty input", ``, []diag{
			{"", `invalid JSON at byte offset 0 (line 1, column 1): the configuration is empty; expected a JSON object such as {"defaultAction": "deny", "rules": []}`, false}}},
		{"truncated", `{"rules":[`, []diag{
			{"", `invalid JSON at byte offset 10 (line 1, column 11): unexpected end of JSON input`, false}}},
		{"trailing data", `{} {}`, []diag{
			{"", `invalid JSON at byte offset 4 (line 1, column 5): unexpected data after the top-level value`, false}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, diags, err := Load([]byte(tc.cfg))
			require.Error(t, err, "Load accepted the config (policy %v)", p != nil)
			require.Nil(t, p, "Load returned a policy with an error")
			var ve *ValidationError
			require.ErrorAs(t, err, &ve, "error %T is not *ValidationError", err)
			got := errorsOf(diags)
			require.Len(t, got, len(tc.want), "got %d errors, want %d:\n%v", len(got), len(tc.want), got)
			var mismatches []string
			for i, w := range tc.want {
				if got[i].Path != w.path || got[i].Message != w.msg {
					mismatches = append(mismatches, fmt.Sprintf("error %d:\n got  %s\n want %s: %s", i, got[i], w.path, w.msg))
				}
			}
			require.Empty(t, mismatches, "errors differ")
			require.Len(t, errorsOf(ve.Diagnostics), len(got), "ValidationError holds %d errors, diagnostics %d", len(errorsOf(ve.Diagnostics)), len(got))
		})
	}
}

func TestValidationCollectsAllErrors(t *testing.T) {
	_, diags, err := Load(readFile(t, "testdata/invalid.json"))
	require.Error(t, err, "invalid.json accepted")
	want := []string{
		`mode: "dryrun" is not allowed; did you mean "dry-run"? (allowed: "enforce", "dry-run")`,
		`rules[0].match.sourceCIDRs[0]: "10.0.0.0/33" is not a CIDR`,
		`rules[1].match.calledAETitles: is an empty list`,
		`rules[1]: action "route" needs "cluster" or "service"`,
		`rules[1].name: duplicate rule name "a" (also rules[0].name)`,
		`rules[2].name: is empty`,
		`rules[2].rewriteCalledAETitle: only allowed with action "allow" or "route"`,
	}
	got := errorsOf(diags)
	require.Len(t, got, len(want), "got %d errors, want %d:\n%v", len(got), len(want), got)
	var mismatches []string
	for i, w := range want {
		if !strings.HasPrefix(got[i].String(), w) {
			mismatches = append(mismatches, fmt.Sprintf("error %d = %q, want prefix %q", i, got[i], w))
		}
	}
	require.Empty(t, mismatches, "errors differ")
	msg := err.Error()
	require.True(t, strings.HasPrefix(msg, "invalid policy (7 errors):\n  mode: "), "Error() = %q", msg)
	require.Equal(t, 7, strings.Count(msg, "\n  "), "Error() = %q", msg)
	_, _, err = Load([]byte(`{"mode":"x"}`))
	require.EqualError(t, err, `invalid policy: mode: "x" is not allowed (allowed: "enforce", "dry-run")`, "single Error()")
}

func TestWarnings(t *testing.T) {
	tests := []struct {
		name string
		cfg  string
		want []diag
	}{
		{"unreachable after catch-all", `{"rules":[
		  {"name":"a","match":{"calledAETitles":["X"]},"action":"allow"},
		  {"name":"all","match":{},"action":"deny"},
		  {"name":"b","match":{"calledAETitles":["Y"]},"action":"allow"},
		  {"name":"c","action":"allow"}]}`, []diag{
			{"rules[2]", `unreachable: rules[1] ("all") matches every association, so this rule is never evaluated`, true},
			{"rules[3]", `unreachable: rules[1] ("all") matches every association, so this rule is never evaluated`, true}}},
		{"star lists are catch-all", `{"rules":[
		  {"name":"stars","match":{"calledAETitles":["*"],"callingAETitles":["*","X"]},"action":"allow"},
		  {"name":"b","action":"deny"}]}`, []diag{
			{"rules[1]", `unreachable: rules[0] ("stars") matches every association, so this rule is never evaluated`, true}}},
		{"host bits", oneRule(`{"sourceCIDRs":["10.1.2.3/8"]}`), []diag{
			{"rules[0].match.sourceCIDRs[0]", `"10.1.2.3/8" has host bits set; it is treated as "10.0.0.0/8"`, true}}},
		{"dry-run", `{"mode":"dry-run"}`, []diag{
			{"mode", `"dry-run": decisions are only reported; every association is let through`, true}}},
		{"no warning for last catch-all", `{"rules":[{"name":"a","match":{"calledAETitles":["X"]},"action":"allow"},{"name":"rest","action":"deny"}]}`, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, diags, err := Load([]byte(tc.cfg))
			require.NoError(t, err, "warnings must not fail Load")
			require.NotNil(t, p, "warnings must not fail Load")
			require.Len(t, diags, len(tc.want), "got %v, want %d warnings", diags, len(tc.want))
			var mismatches []string
			for i, w := range tc.want {
				if diags[i].Severity != SeverityWarning || diags[i].Path != w.path || diags[i].Message != w.msg {
					mismatches = append(mismatches, fmt.Sprintf("warning %d: got %s %s, want %s: %s", i, diags[i].Severity, diags[i], w.path, w.msg))
				}
			}
			require.Empty(t, mismatches, "warnings differ")
		})
	}
	// The masked prefix is what matches.
	p := mustLoad(t, oneRule(`{"sourceCIDRs":["10.1.2.3/8"]}`))
	d := p.Evaluate(mkRQ("A", "B"), src("10.200.0.1"))
	require.Equal(t, ActionAllow, d.Action, "masked prefix does not match: %+v", d)
}

func TestDiagnosticString(t *testing.T) {
	require.Equal(t, "rules[0]: m", (Diagnostic{Path: "rules[0]", Message: "m"}).String(), "String()")
	require.Equal(t, "invalid JSON at byte offset 3", (Diagnostic{Message: "invalid JSON at byte offset 3"}).String(), "String()")
	require.Equal(t, "error", SeverityError.String(), "Severity.String")
	require.Equal(t, "warning", SeverityWarning.String(), "Severity.String")
}

func TestSuggest(t *testing.T) {
	allowed := []string{"calledAETitles", "callingAETitles", "sourceCIDRs"}
	tests := map[string]string{
		"calledAETitle":   "calledAETitles",
		"CallingAETitles": "callingAETitles",
		"sourceCIDR":      "sourceCIDRs",
		"sourecCIDRs":     "sourceCIDRs",
		"username":        "",
		"x":               "",
	}
	for in, want := range tests {
		t.Run(in, func(t *testing.T) {
			require.Equal(t, want, suggest(in, allowed), "suggest(%q)", in)
		})
	}
}

// ErrorCount counts the errors Load reports, not its warnings.
func TestErrorCount(t *testing.T) {
	_, diags, err := Load([]byte(`{"rules":[{"name":"a","action":"allow","match":{"calledAETitles":["X"]}},{"name":"a","action":"bogus"}],"inspectTimeoutMs":-1}`))
	require.Error(t, err)
	errs := 0
	for _, d := range diags {
		if d.Severity == SeverityError {
			errs++
		}
	}
	require.Positive(t, errs)
	require.Equal(t, errs, ErrorCount(diags))
	require.Equal(t, 0, ErrorCount([]Diagnostic{{Severity: SeverityWarning}}))
	require.Equal(t, 2, ErrorCount([]Diagnostic{{}, {Severity: SeverityWarning}, {}}))
}
