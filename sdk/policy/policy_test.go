package policy

import (
	"fmt"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dicomgate/dicomgate/sdk/pdu"
)

const (
	uidVerification = "1.2.840.10008.1.1"
	uidCTStorage    = "1.2.840.10008.5.1.4.1.1.2"
	uidMRStorage    = "1.2.840.10008.5.1.4.1.1.4"
)

// pad16 pads an AE title with spaces to the 16-byte wire width.
func pad16(s string) []byte {
	b := []byte(s)
	for len(b) < 16 {
		b = append(b, ' ')
	}
	return b
}

// rqOpt customises a hand-built A-ASSOCIATE-RQ.
type rqOpt func(*pdu.AssociateRQ)

func withSyntaxes(uids ...string) rqOpt {
	return func(rq *pdu.AssociateRQ) {
		rq.PresentationContexts = nil
		for i, u := range uids {
			rq.PresentationContexts = append(rq.PresentationContexts, pdu.PresentationContextRQ{
				ID: uint8(2*i + 1), AbstractSyntax: []byte(u), TransferSyntaxes: [][]byte{[]byte("1.2.840.10008.1.2")},
			})
		}
	}
}

func withUser(typ uint8, primary string) rqOpt {
	return func(rq *pdu.AssociateRQ) {
		rq.UserInformation.HasUserIdentity = true
		rq.UserInformation.UserIdentity = pdu.UserIdentity{Type: typ, Primary: []byte(primary), Secondary: []byte("secret")}
	}
}

func withRawAE(called, calling []byte) rqOpt {
	return func(rq *pdu.AssociateRQ) {
		rq.CalledAETitleRaw, rq.CallingAETitleRaw = called, calling
	}
}

// mkRQ builds an RQ proposing Verification unless options say otherwise.
func mkRQ(called, calling string, opts ...rqOpt) *pdu.AssociateRQ {
	rq := &pdu.AssociateRQ{
		ProtocolVersion:    1,
		CalledAETitleRaw:   pad16(called),
		CallingAETitleRaw:  pad16(calling),
		ApplicationContext: []byte("1.2.840.10008.3.1.1.1"),
	}
	withSyntaxes(uidVerification)(rq)
	for _, o := range opts {
		o(rq)
	}
	return rq
}

func src(s string) *Conn { return &Conn{Source: netip.MustParseAddr(s)} }

func mustLoad(t testing.TB, cfg string) *Policy {
	t.Helper()
	p, diags, err := Load([]byte(cfg))
	require.NoError(t, err, "Load")
	for _, d := range diags {
		require.NotEqual(t, SeverityError, d.Severity, "error diagnostic without error: %v", d)
	}
	return p
}

func readFile(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(name)
	require.NoError(t, err)
	return b
}

// requireContainsAll fails unless s contains every one of wants, listing
// all the missing ones at once; what names s in the message.
func requireContainsAll(t testing.TB, s string, wants []string, what string) {
	t.Helper()
	var missing []string
	for _, w := range wants {
		if !strings.Contains(s, w) {
			missing = append(missing, w)
		}
	}
	require.Empty(t, missing, "%s lacks these parts:\n%s", what, s)
}

// oneRule wraps a match object in a policy with a single allow rule "r"
// and default deny.
func oneRule(match string, extra ...string) string {
	e := ""
	if len(extra) > 0 {
		e = ", " + strings.Join(extra, ", ")
	}
	return `{"defaultAction":"deny","rules":[{"name":"r","match":` + match + `,"action":"allow"` + e + `}]}`
}

func TestMatchFields(t *testing.T) {
	mtls := func(uri, dns, subj string) *Conn {
		return &Conn{Source: netip.MustParseAddr("10.1.2.3"), MTLS: true, PeerURISAN: uri, PeerDNSSAN: dns, PeerSubject: subj}
	}
	tests := []struct {
		name  string
		match string
		extra []string
		rq    *pdu.AssociateRQ
		conn  *Conn
		want  bool
	}{
		{"called exact", `{"calledAETitles":["PACS_A"]}`, nil, mkRQ("PACS_A", "X"), nil, true},
		{"called exact other", `{"calledAETitles":["PACS_A"]}`, nil, mkRQ("PACS_B", "X"), nil, false},
		{"called list OR", `{"calledAETitles":["PACS_A","PACS_B"]}`, nil, mkRQ("PACS_B", "X"), nil, true},
		{"called case-sensitive", `{"calledAETitles":["PACS_A"]}`, nil, mkRQ("pacs_a", "X"), nil, false},
		{"called case-insensitive", `{"calledAETitles":["PACS_A"]}`, []string{`"aeTitleCaseInsensitive":true`}, mkRQ("pacs_a", "X"), nil, true},
		{"called glob case-insensitive", `{"calledAETitles":["pacs_*"]}`, []string{`"aeTitleCaseInsensitive":true`}, mkRQ("PACS_Z", "X"), nil, true},
		{"calling glob star", `{"callingAETitles":["CT_*"]}`, nil, mkRQ("P", "CT_1"), nil, true},
		{"calling glob star empty tail", `{"callingAETitles":["CT_*"]}`, nil, mkRQ("P", "CT_"), nil, true},
		{"calling glob no match", `{"callingAETitles":["CT_*"]}`, nil, mkRQ("P", "MR_1"), nil, false},
		{"calling glob question", `{"callingAETitles":["MR?"]}`, nil, mkRQ("P", "MR1"), nil, true},
		{"calling glob question needs one", `{"callingAETitles":["MR?"]}`, nil, mkRQ("P", "MR"), nil, false},
		{"called AND calling both hold", `{"calledAETitles":["P"],"callingAETitles":["C"]}`, nil, mkRQ("P", "C"), nil, true},
		{"called AND calling one fails", `{"calledAETitles":["P"],"callingAETitles":["C"]}`, nil, mkRQ("P", "D"), nil, false},
		{"cidr v4", `{"sourceCIDRs":["10.0.0.0/8"]}`, nil, mkRQ("P", "C"), src("10.200.0.1"), true},
		{"cidr v4 outside", `{"sourceCIDRs":["10.0.0.0/8"]}`, nil, mkRQ("P", "C"), src("11.0.0.1"), false},
		{"cidr bare ip", `{"sourceCIDRs":["192.168.1.7"]}`, nil, mkRQ("P", "C"), src("192.168.1.7"), true},
		{"cidr bare ip other", `{"sourceCIDRs":["192.168.1.7"]}`, nil, mkRQ("P", "C"), src("192.168.1.8"), false},
		{"cidr v6", `{"sourceCIDRs":["fd00::/8"]}`, nil, mkRQ("P", "C"), src("fd12::1"), true},
		{"cidr v6 outside", `{"sourceCIDRs":["fd00::/8"]}`, nil, mkRQ("P", "C"), src("fe80::1"), false},
		{"cidr v6 bare", `{"sourceCIDRs":["2001:db8::5"]}`, nil, mkRQ("P", "C"), src("2001:db8::5"), true},
		{"cidr v4-mapped source", `{"sourceCIDRs":["10.0.0.0/8"]}`, nil, mkRQ("P", "C"), src("::ffff:10.1.1.1"), true},
		{"cidr v4 rule v6 source", `{"sourceCIDRs":["0.0.0.0/0"]}`, nil, mkRQ("P", "C"), src("2001:db8::1"), false},
		{"cidr zoned source", `{"sourceCIDRs":["fe80::/10"]}`, nil, mkRQ("P", "C"), src("fe80::1%eth0"), true},
		{"cidr unknown source", `{"sourceCIDRs":["0.0.0.0/0","::/0"]}`, nil, mkRQ("P", "C"), &Conn{}, false},
		{"cidr nil conn", `{"sourceCIDRs":["0.0.0.0/0"]}`, nil, mkRQ("P", "C"), nil, false},
		{"uri san", `{"peerURISANs":["spiffe://h/ct1"]}`, nil, mkRQ("P", "C"), mtls("spiffe://h/ct1", "", ""), true},
		{"uri san other", `{"peerURISANs":["spiffe://h/ct1"]}`, nil, mkRQ("P", "C"), mtls("spiffe://h/ct2", "", ""), false},
		{"uri san without mtls", `{"peerURISANs":["spiffe://h/ct1"]}`, nil, mkRQ("P", "C"), &Conn{PeerURISAN: "spiffe://h/ct1"}, false},
		{"dns san exact any case", `{"peerDNSSANs":["ct1.modalities.example"]}`, nil, mkRQ("P", "C"), mtls("", "CT1.Modalities.example", ""), true},
		{"dns san wildcard", `{"peerDNSSANs":["*.modalities.example"]}`, nil, mkRQ("P", "C"), mtls("", "ct9.modalities.example", ""), true},
		{"dns san wildcard one label only", `{"peerDNSSANs":["*.modalities.example"]}`, nil, mkRQ("P", "C"), mtls("", "a.b.modalities.example", ""), false},
		{"dns san wildcard not apex", `{"peerDNSSANs":["*.modalities.example"]}`, nil, mkRQ("P", "C"), mtls("", "modalities.example", ""), false},
		{"subject", `{"peerSubjects":["CN=CT1,O=Hospital"]}`, nil, mkRQ("P", "C"), mtls("", "", "CN=CT1,O=Hospital"), true},
		{"subject other", `{"peerSubjects":["CN=CT1,O=Hospital"]}`, nil, mkRQ("P", "C"), mtls("", "", "CN=CT2,O=Hospital"), false},
		{"subject empty in mtls", `{"peerSubjects":["CN=CT1,O=Hospital"]}`, nil, mkRQ("P", "C"), mtls("x", "", ""), false},
		{"abstract any", `{"abstractSyntaxes":["` + uidCTStorage + `"]}`, nil, mkRQ("P", "C", withSyntaxes(uidVerification, uidCTStorage)), nil, true},
		{"abstract any none", `{"abstractSyntaxes":["` + uidCTStorage + `"]}`, nil, mkRQ("P", "C", withSyntaxes(uidVerification, uidMRStorage)), nil, false},
		{"abstract NUL padded", `{"abstractSyntaxes":["` + uidVerification + `"]}`, nil, mkRQ("P", "C", withSyntaxes(uidVerification+"\x00")), nil, true},
		{"abstract many listed", `{"abstractSyntaxes":["1.1","1.2","1.3","1.4","1.5","` + uidCTStorage + `"]}`, nil, mkRQ("P", "C", withSyntaxes(uidCTStorage)), nil, true},
		{"only abstract all listed", `{"onlyAbstractSyntaxes":["` + uidCTStorage + `","` + uidVerification + `"]}`, nil, mkRQ("P", "C", withSyntaxes(uidVerification, uidCTStorage)), nil, true},
		{"only abstract one unlisted", `{"onlyAbstractSyntaxes":["` + uidCTStorage + `"]}`, nil, mkRQ("P", "C", withSyntaxes(uidCTStorage, uidMRStorage)), nil, false},
		{"only abstract no contexts", `{"onlyAbstractSyntaxes":["` + uidCTStorage + `"]}`, nil, mkRQ("P", "C", withSyntaxes()), nil, false},
		{"username type 1", `{"userIdentityUsernames":["alice"]}`, nil, mkRQ("P", "C", withUser(pdu.UserIdentityUsername, "alice")), nil, true},
		{"username type 2", `{"userIdentityUsernames":["alice"]}`, nil, mkRQ("P", "C", withUser(pdu.UserIdentityUsernamePasscode, "alice")), nil, true},
		{"username other", `{"userIdentityUsernames":["alice"]}`, nil, mkRQ("P", "C", withUser(pdu.UserIdentityUsername, "bob")), nil, false},
		{"username is case-sensitive", `{"userIdentityUsernames":["alice"]}`, nil, mkRQ("P", "C", withUser(pdu.UserIdentityUsername, "Alice")), nil, false},
		{"username jwt type", `{"userIdentityUsernames":["alice"]}`, nil, mkRQ("P", "C", withUser(pdu.UserIdentityJWT, "alice")), nil, false},
		{"username absent", `{"userIdentityUsernames":["alice"]}`, nil, mkRQ("P", "C"), nil, false},
		{"empty match", `{}`, nil, mkRQ("P", "C"), nil, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := mustLoad(t, oneRule(tc.match, tc.extra...))
			d := p.Evaluate(tc.rq, tc.conn)
			got := d.Action == ActionAllow && d.Rule == "r" && d.RuleIndex == 0
			require.Equal(t, tc.want, got, "matched (decision %+v)\n%s", d, p.Explain(tc.rq, tc.conn, d))
		})
	}
}

func TestGlobAndTrim(t *testing.T) {
	tests := []struct {
		pattern string
		fold    bool
		title   string
		want    bool
	}{
		{"*", false, "ANYTHING", true},
		{"*", false, "", true},
		{"?", false, "A", true},
		{"?", false, "AB", false},
		{"?", false, "", false},
		{"A*B", false, "AB", true},
		{"A*B", false, "AXXB", true},
		{"A*B", false, "AXXBC", false},
		{"*B*B", false, "ABXBXB", true},
		{"*_CT", false, "ROOM1_CT", true},
		{"*_CT", false, "ROOM1_MR", false},
		{"A?C*", false, "ABCDEF", true},
		{"a*", false, "ABC", false},
		{"a*", true, "ABC", true},
		{"PACS", true, "pacs", true},
		{"  PACS  ", false, "PACS", true},     // pattern spaces trimmed
		{"PACS", false, "  PACS      ", true}, // title spaces trimmed both ends
		{"LEAD SP", false, "LEAD SP", true},   // embedded space kept
		{"LEAD SP", false, "LEADSP", false},   // embedded space significant
		{`\*STAR`, false, "*STAR", true},      // escaped literal star
		{`\*STAR`, false, "XSTAR", false},     // escaped star is not a wildcard
		{`Q\?`, false, "Q?", true},            // escaped question mark
		{`Q\?`, false, "QX", false},           // escaped question mark is literal
		{"**", false, "X", true},              // repeated stars collapse
		{"ABCDEFGHIJKLMNOP", false, "ABCDEFGHIJKLMNOP", true},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprintf("%s/fold=%v/%s", tc.pattern, tc.fold, tc.title), func(t *testing.T) {
			pat, glob, msg := compileAEPattern(tc.pattern, tc.fold)
			require.Empty(t, msg, "%q", tc.pattern)
			set := &aeSet{fold: tc.fold}
			switch {
			case pat == string(wStar):
				set.any = true
			case glob:
				set.globs = []string{pat}
			default:
				set.exact = []string{pat}
			}
			var buf [foldBufLen]byte
			v := pdu.TrimAETitle([]byte(tc.title))
			require.Equal(t, tc.want, set.match(v, foldInto(&buf, v)), "pattern %q (fold %v) vs %q", tc.pattern, tc.fold, tc.title)
		})
	}
}

func TestWireTitleTrimming(t *testing.T) {
	p := mustLoad(t, oneRule(`{"calledAETitles":["ANY-SCP"],"callingAETitles":["LEADSP"]}`))
	// dcmtk keeps leading spaces and may NUL-pad; policy trims both ends.
	rq := mkRQ("", "", withRawAE([]byte("ANY-SCP\x00\x00\x00\x00\x00\x00\x00\x00\x00"), []byte(" LEADSP         ")))
	d := p.Evaluate(rq, nil)
	require.Equal(t, ActionAllow, d.Action, "NUL padding / leading space not trimmed: %+v", d)
	// An all-space title is empty after trimming and matches only "*".
	rq = mkRQ("", "")
	d = p.Evaluate(rq, nil)
	require.Equal(t, ActionDeny, d.Action, "empty titles matched: %+v", d)
	star := mustLoad(t, oneRule(`{"calledAETitles":["*"]}`))
	d = star.Evaluate(rq, nil)
	require.Equal(t, ActionAllow, d.Action, `"*" must match an empty title: %+v`, d)
}

// TestOverlongTitle: a hand-built RQ may carry a title longer than the
// 16-byte wire field; case-sensitive globs still match it, the index must
// not hide them, and case-insensitive rules do not match it.
func TestOverlongTitle(t *testing.T) {
	p := mustLoad(t, `{"rules":[
	  {"name":"fold","match":{"calledAETitles":["abc*"]},"aeTitleCaseInsensitive":true,"action":"deny"},
	  {"name":"glob","match":{"calledAETitles":["ABC*"],"callingAETitles":["*Z"]},"action":"allow"}]}`)
	long := "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
	rq := mkRQ("", "", withRawAE([]byte(long), []byte(long)))
	d := p.Evaluate(rq, nil)
	require.Equal(t, "glob", d.Rule, "got %+v, linear %+v", d, linearEvaluate(p, rq, nil))
	require.Equal(t, linearEvaluate(p, rq, nil), d, "Evaluate against the linear scan")
}

func TestNilArguments(t *testing.T) {
	p := mustLoad(t, `{"defaultAction":"deny","rules":[{"name":"r","match":{"calledAETitles":["A"],"sourceCIDRs":["10.0.0.0/8"],"peerURISANs":["x"],"userIdentityUsernames":["u"],"abstractSyntaxes":["1.2"]},"action":"allow"}]}`)
	d := p.Evaluate(nil, nil)
	require.Equal(t, ActionDeny, d.Action, "nil rq: %+v", d)
	require.Equal(t, -1, d.RuleIndex, "nil rq: %+v", d)
	require.Contains(t, p.Explain(nil, nil, d), "no rule matched", "Explain(nil)")
}

func TestActions(t *testing.T) {
	p := mustLoad(t, `{
	  "defaultAction": "allow",
	  "rules": [
	    {"name":"route-cluster","match":{"calledAETitles":["A"]},"action":"route","cluster":"outbound|104||a.svc","rewriteCalledAETitle":"ORTHANC","rewriteCallingAETitle":"GW"},
	    {"name":"route-service","match":{"calledAETitles":["B"]},"action":"route","service":{"host":"pacs-b.dicom.svc.cluster.local","port":11112,"subset":"v2"}},
	    {"name":"route-service-nosubset","match":{"calledAETitles":["C"]},"action":"route","service":{"host":"pacs-c.dicom.svc.cluster.local","port":4242}},
	    {"name":"deny-explicit","match":{"calledAETitles":["D"]},"action":"deny","rejectReason":"temporary-congestion"},
	    {"name":"deny-implicit","match":{"calledAETitles":["E"]},"action":"deny"},
	    {"name":"allow-rewrite","match":{"calledAETitles":["F"]},"action":"allow","rewriteCallingAETitle":"NEWCALLER"}
	  ]}`)
	tests := []struct {
		called string
		want   Decision
	}{
		{"A", Decision{Action: ActionRoute, Rule: "route-cluster", RuleIndex: 0, Cluster: "outbound|104||a.svc", RewriteCalledAETitle: "ORTHANC", RewriteCallingAETitle: "GW"}},
		{"B", Decision{Action: ActionRoute, Rule: "route-service", RuleIndex: 1, Cluster: "outbound|11112|v2|pacs-b.dicom.svc.cluster.local"}},
		{"C", Decision{Action: ActionRoute, Rule: "route-service-nosubset", RuleIndex: 2, Cluster: "outbound|4242||pacs-c.dicom.svc.cluster.local"}},
		{"D", Decision{Action: ActionDeny, Rule: "deny-explicit", RuleIndex: 3, RejectReason: "temporary-congestion"}},
		// default allow: every called AE counts as recognized.
		{"E", Decision{Action: ActionDeny, Rule: "deny-implicit", RuleIndex: 4, RejectReason: "calling-ae-not-recognized"}},
		{"F", Decision{Action: ActionAllow, Rule: "allow-rewrite", RuleIndex: 5, RewriteCallingAETitle: "NEWCALLER"}},
		{"G", Decision{Action: ActionAllow, Rule: DefaultRule, RuleIndex: -1}},
	}
	for _, tc := range tests {
		t.Run(tc.called, func(t *testing.T) {
			require.Equal(t, tc.want, p.Evaluate(mkRQ(tc.called, "CALLER"), nil), "called %q", tc.called)
		})
	}
}

func TestDefaultRejectReason(t *testing.T) {
	// Every allow/route rule names its called AE: an unknown called AE is
	// "called-ae-not-recognized", a known one with the wrong caller
	// "calling-ae-not-recognized".
	p := mustLoad(t, `{"rules":[
	  {"name":"a","match":{"calledAETitles":["PACS_A"],"callingAETitles":["CT1"]},"action":"allow"},
	  {"name":"b","match":{"calledAETitles":["ARCH*"],"callingAETitles":["CT1"]},"action":"allow"},
	  {"name":"c","match":{"calledAETitles":["*_QR"],"callingAETitles":["CT1"]},"action":"allow"},
	  {"name":"old","match":{"calledAETitles":["OLD"]},"action":"deny"}]}`)
	tests := []struct{ called, calling, reason, rule string }{
		{"NOSUCH", "CT1", ReasonCalledAENotRecognized, DefaultRule},
		{"PACS_A", "MR1", ReasonCallingAENotRecognized, DefaultRule},
		{"ARCHIVE2", "MR1", ReasonCallingAENotRecognized, DefaultRule},
		{"MAIN_QR", "MR1", ReasonCallingAENotRecognized, DefaultRule},
		{"pacs_a", "CT1", ReasonCalledAENotRecognized, DefaultRule}, // case-sensitive
		{"OLD", "CT1", ReasonCalledAENotRecognized, "old"},
	}
	for _, tc := range tests {
		t.Run(tc.called+"/"+tc.calling, func(t *testing.T) {
			d := p.Evaluate(mkRQ(tc.called, tc.calling), nil)
			require.Equal(t, ActionDeny, d.Action, "%s/%s: got %+v, want deny %s by %q", tc.called, tc.calling, d, tc.reason, tc.rule)
			require.Equal(t, tc.reason, d.RejectReason, "%s/%s: got %+v, want deny %s by %q", tc.called, tc.calling, d, tc.reason, tc.rule)
			require.Equal(t, tc.rule, d.Rule, "%s/%s: got %+v, want deny %s by %q", tc.called, tc.calling, d, tc.reason, tc.rule)
		})
	}
	// A rule without called AE condition makes every called AE known.
	p = mustLoad(t, `{"rules":[{"name":"a","match":{"callingAETitles":["CT1"]},"action":"allow"}]}`)
	d := p.Evaluate(mkRQ("NOSUCH", "MR1"), nil)
	require.Equal(t, ReasonCallingAENotRecognized, d.RejectReason, "unconstrained called AE: %+v", d)
	// defaultRejectReason overrides the computed reason.
	p = mustLoad(t, `{"defaultRejectReason":"no-reason-given","rules":[{"name":"a","match":{"calledAETitles":["X"]},"action":"allow"}]}`)
	d = p.Evaluate(mkRQ("NOSUCH", "MR1"), nil)
	require.Equal(t, ReasonNoReasonGiven, d.RejectReason, "defaultRejectReason: %+v", d)
	require.Equal(t, -1, d.RuleIndex, "defaultRejectReason: %+v", d)
	// No rules at all: default deny, nothing is recognized.
	p = mustLoad(t, `{}`)
	d = p.Evaluate(mkRQ("A", "B"), nil)
	require.Equal(t, ActionDeny, d.Action, "empty policy: %+v", d)
	require.Equal(t, ReasonCalledAENotRecognized, d.RejectReason, "empty policy: %+v", d)
}

func TestRejectCode(t *testing.T) {
	tests := []struct {
		name              string
		res, source, code byte
	}{
		{"no-reason-given", 1, 1, 1},
		{"application-context-not-supported", 1, 1, 2},
		{"calling-ae-not-recognized", 1, 1, 3},
		{"called-ae-not-recognized", 1, 1, 7},
		{"protocol-version-not-supported", 1, 2, 2},
		{"temporary-congestion", 2, 3, 1},
		{"local-limit-exceeded", 2, 3, 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, s, c, ok := RejectCode(tc.name)
			require.True(t, ok, "%s: got %d/%d/%d %v", tc.name, r, s, c, ok)
			require.Equal(t, [3]byte{tc.res, tc.source, tc.code}, [3]byte{r, s, c}, "%s: result/source/reason", tc.name)
		})
	}
	_, _, _, ok := RejectCode("nope")
	require.False(t, ok, "unknown reason accepted")
}

func TestPrecedence(t *testing.T) {
	// Rules land in different index dimensions; first match must still win.
	p := mustLoad(t, `{"rules":[
	  {"name":"by-cidr","match":{"sourceCIDRs":["10.9.0.0/16"]},"action":"deny","rejectReason":"local-limit-exceeded"},
	  {"name":"by-calling","match":{"callingAETitles":["CT1"]},"action":"route","cluster":"c1"},
	  {"name":"by-called","match":{"calledAETitles":["PACS_A"]},"action":"allow"},
	  {"name":"generic","match":{"callingAETitles":["*1"]},"action":"route","cluster":"c2"},
	  {"name":"catch-all","action":"deny","rejectReason":"no-reason-given"}]}`)
	tests := []struct {
		called, calling, src, rule string
	}{
		{"PACS_A", "CT1", "10.9.1.1", "by-cidr"},
		{"PACS_A", "CT1", "10.8.1.1", "by-calling"},
		{"PACS_A", "MR1", "10.8.1.1", "by-called"},
		{"OTHER", "MR1", "10.8.1.1", "generic"},
		{"OTHER", "MR2", "10.8.1.1", "catch-all"},
	}
	for _, tc := range tests {
		t.Run(tc.rule, func(t *testing.T) {
			d := p.Evaluate(mkRQ(tc.called, tc.calling), src(tc.src))
			require.Equal(t, tc.rule, d.Rule, "%+v: rule (%+v)", tc, d)
		})
	}
}

func TestDryRun(t *testing.T) {
	p, diags, err := Load([]byte(`{"mode":"dry-run","rules":[{"name":"deny-x","match":{"callingAETitles":["X"]},"action":"deny"}]}`))
	require.NoError(t, err)
	require.Len(t, diags, 1, "want one dry-run warning at mode, got %v", diags)
	require.Equal(t, SeverityWarning, diags[0].Severity, "want one dry-run warning at mode, got %v", diags)
	require.Equal(t, "mode", diags[0].Path, "want one dry-run warning at mode, got %v", diags)
	require.True(t, p.DryRun(), "DryRun()=%v Mode()=%q", p.DryRun(), p.Mode())
	require.Equal(t, "dry-run", p.Mode(), "Mode()")
	d := p.Evaluate(mkRQ("A", "X"), nil)
	require.Equal(t, ActionDeny, d.Action, "dry-run decision must report the would-be action: %+v", d)
	require.True(t, d.DryRun, "dry-run decision must report the would-be action: %+v", d)
	require.Equal(t, "deny-x", d.Rule, "dry-run decision must report the would-be action: %+v", d)
	require.Contains(t, p.Explain(mkRQ("A", "X"), nil, d), "dry-run", "Explain does not mention dry-run")
	e := mustLoad(t, `{"mode":"enforce"}`)
	require.False(t, e.DryRun(), "enforce mode reports dry-run")
	require.False(t, e.Evaluate(mkRQ("A", "X"), nil).DryRun, "enforce mode reports dry-run")
}

func TestSettings(t *testing.T) {
	p := mustLoad(t, `{}`)
	require.Equal(t, "enforce", p.Mode(), "default mode")
	require.Equal(t, 10*time.Second, p.InspectTimeout(), "default inspect timeout")
	require.Equal(t, uint32(1048576), p.MaxAssociateRQBytes(), "default maxAssociateRQBytes")
	require.Equal(t, ConnectAfterDecision, p.UpstreamConnect(), "default upstreamConnect")
	require.Empty(t, p.RuleNames(), "rule names of {}")
	p = mustLoad(t, `{"inspectTimeoutMs":2500,"maxAssociateRQBytes":262144,"upstreamConnect":"immediate","defaultAction":"allow",
	  "rules":[{"name":"one","action":"deny","match":{"callingAETitles":["X"]}},{"name":"two","action":"allow"}]}`)
	require.Equal(t, 2500*time.Millisecond, p.InspectTimeout(), "inspectTimeoutMs 2500")
	require.Equal(t, uint32(262144), p.MaxAssociateRQBytes(), "maxAssociateRQBytes 262144")
	require.Equal(t, ConnectImmediate, p.UpstreamConnect(), "upstreamConnect immediate")
	require.Equal(t, []string{"one", "two"}, p.RuleNames(), "RuleNames")
	require.Equal(t, "immediate", ConnectImmediate.String(), "ConnectMode.String")
	require.Equal(t, "after-decision", ConnectAfterDecision.String(), "ConnectMode.String")
	require.Equal(t, "allow", ActionAllow.String(), "Action.String")
	require.Equal(t, "deny", ActionDeny.String(), "Action.String")
	require.Equal(t, "route", ActionRoute.String(), "Action.String")
	// YAML converted to JSON may carry integral floats.
	p = mustLoad(t, `{"inspectTimeoutMs":1e4}`)
	require.Equal(t, 10*time.Second, p.InspectTimeout(), "1e4 ms")
}

func TestExampleSummary(t *testing.T) {
	p, diags, err := Load(readFile(t, "testdata/example.json"))
	require.NoError(t, err, "example.json")
	require.Empty(t, diags, "example.json")
	s := p.Summary()
	requireContainsAll(t, s, []string{
		"mode: enforce",
		"inspectTimeout: 5s",
		"rules: 5",
		`[0] ct-to-pacs-a: route to "outbound|11112||pacs-a.dicom.svc.cluster.local", rewrite called AE to "ORTHANC"`,
		`when called AE in ["PACS_A"] and calling AE in ["CT_*"] and source in [10.0.0.0/8, fd00::/8]`,
		`[1] mr-to-pacs-b: route to "outbound|4242||pacs-b.dicom.svc.cluster.local"`,
		`[4] block-intruder: deny (calling-ae-not-recognized)`,
		"default: deny (called-ae-not-recognized when",
	}, "Summary")
}

func TestExplain(t *testing.T) {
	p := mustLoad(t, string(readFile(t, "testdata/example.json")))
	rq := mkRQ("PACS_A", "CT_7")
	conn := src("10.1.2.3")
	d := p.Evaluate(rq, conn)
	require.Equal(t, "ct-to-pacs-a", d.Rule, "decision %+v", d)
	s := p.Explain(rq, conn, d)
	requireContainsAll(t, s, []string{
		`rules[0] "ct-to-pacs-a" matched: called AE "PACS_A" matches "PACS_A"; calling AE "CT_7" matches "CT_*"; source 10.1.2.3 is in 10.0.0.0/8`,
		`decision: route to cluster "outbound|11112||pacs-a.dicom.svc.cluster.local"; rewrite called AE title to "ORTHANC"`,
	}, "Explain")
	rq = mkRQ("PACS_A", "CT_7")
	conn = src("192.168.0.1")
	d = p.Evaluate(rq, conn)
	s = p.Explain(rq, conn, d)
	requireContainsAll(t, s, []string{
		`rules[0] "ct-to-pacs-a" did not match: source 192.168.0.1 is not in [10.0.0.0/8, fd00::/8]`,
		`rules[1] "mr-to-pacs-b" did not match: called AE "PACS_A" is not in ["PACS_B"]`,
		`rules[3] "alice-ct-store" did not match: no user identity was sent; needs username ["alice"]`,
		"no rule matched (5 rules)",
		`decision: deny: the connection is closed, no A-ASSOCIATE-RJ is sent ("respond" is "close"); the reject reason is calling-ae-not-recognized (result 1, source 1, reason 3)`,
	}, "Explain")
}

func TestEvaluateDoesNotAllocate(t *testing.T) {
	p := mustLoad(t, string(readFile(t, "testdata/example.json")))
	rqs := []*pdu.AssociateRQ{
		mkRQ("PACS_A", "CT_7"),
		mkRQ("ANY-SCP", "STORESCU", withUser(pdu.UserIdentityUsername, "alice"), withSyntaxes(uidCTStorage)),
		mkRQ("pacs_b", "nobody"),
	}
	conn := &Conn{Source: netip.MustParseAddr("fd00::7"), MTLS: true, PeerURISAN: "spiffe://x"}
	for i, rq := range rqs {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			n := testing.AllocsPerRun(100, func() { p.Evaluate(rq, conn) })
			require.Zero(t, n, "Evaluate allocates %v times per call", n)
		})
	}
}

func TestExplainFailures(t *testing.T) {
	p := mustLoad(t, `{"rules":[
	  {"name":"called","match":{"calledAETitles":["pacs"]},"aeTitleCaseInsensitive":true,"action":"allow"},
	  {"name":"uri","match":{"peerURISANs":["spiffe://h/ct1"]},"action":"allow"},
	  {"name":"dns","match":{"peerDNSSANs":["ct1.example"]},"action":"allow"},
	  {"name":"subject","match":{"peerSubjects":["CN=CT1"]},"action":"allow"},
	  {"name":"user","match":{"userIdentityUsernames":["alice"]},"action":"allow"},
	  {"name":"any-syntax","match":{"abstractSyntaxes":["`+uidCTStorage+`"]},"action":"allow"},
	  {"name":"only-syntax","match":{"onlyAbstractSyntaxes":["`+uidVerification+`"]},"action":"allow"},
	  {"name":"src","match":{"sourceCIDRs":["10.0.0.0/8"]},"action":"allow"}]}`)
	conn := &Conn{MTLS: true, PeerURISAN: "spiffe://h/mr1"}
	rq := mkRQ("OTHER", "C", withSyntaxes(uidVerification, uidMRStorage), withUser(pdu.UserIdentityJWT, "token"))
	d := p.Evaluate(rq, conn)
	s := p.Explain(rq, conn, d)
	requireContainsAll(t, s, []string{
		`association: called AE "OTHER", calling AE "C", source unknown, client certificate URI SAN "spiffe://h/mr1"`,
		`rules[0] "called" did not match: called AE "OTHER" is not in ["pacs"] (case-insensitive)`,
		`rules[1] "uri" did not match: peer URI SAN "spiffe://h/mr1" is not in ["spiffe://h/ct1"]`,
		`rules[2] "dns" did not match: the client certificate has no DNS SAN; needs one of ["ct1.example"]`,
		`rules[3] "subject" did not match: the client certificate has no subject; needs one of ["CN=CT1"]`,
		`rules[4] "user" did not match: user identity type 5 is not a username (types 1 and 2); needs username ["alice"]`,
		`rules[5] "any-syntax" did not match: no proposed abstract syntax is in ["` + uidCTStorage + `"]`,
		`rules[6] "only-syntax" did not match: proposed abstract syntax "` + uidMRStorage + `" (context 3) is not in ["` + uidVerification + `"]`,
		`rules[7] "src" did not match: source unknown is not in [10.0.0.0/8]`,
		`decision: deny: the connection is closed, no A-ASSOCIATE-RJ is sent ("respond" is "close"); the reject reason is calling-ae-not-recognized (result 1, source 1, reason 3); reason chosen because` + " the called AE title is accepted by the policy",
		"(default action)",
	}, "Explain")
	// Without mTLS, and the long-policy cut-off.
	s = p.Explain(rq, nil, p.Evaluate(rq, nil))
	require.Contains(t, s, `rules[1] "uri" did not match: needs a client certificate (mTLS) with URI SAN in ["spiffe://h/ct1"]`, "no-mTLS explanation")
	big := mustLoad(t, string(benchPolicy(40)))
	s = big.Explain(mkRQ("NONE", "NONE"), nil, big.Evaluate(mkRQ("NONE", "NONE"), nil))
	require.Contains(t, s, "... 30 more rules did not match", "long policy explanation not cut at 10 rules")
	require.Equal(t, 10, strings.Count(s, "did not match:"), "long policy explanation not cut at 10 rules:\n%s", s)
}
