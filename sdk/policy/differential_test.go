package policy

import (
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dicomgate/dicomgate/sdk/pdu"
	"github.com/stretchr/testify/require"
)

// checkDecision compares Evaluate with the linear scan (the index) and with
// the independent reference (the matching semantics) for one request, and
// returns the decision. cfg is only for the failure message.
func checkDecision(t testing.TB, cfg []byte, p *Policy, ref *refPolicy, rq *pdu.AssociateRQ, conn *Conn) Decision {
	t.Helper()
	got := p.Evaluate(rq, conn)
	want := refEvaluate(ref, refRequestOf(rq, conn))
	if got != want || got != linearEvaluate(p, rq, conn) {
		var called, calling []byte
		if rq != nil {
			called, calling = rq.CalledAETitleRaw, rq.CallingAETitleRaw
		}
		require.FailNowf(t, "Evaluate disagrees with the reference or the linear scan", "policy %s\nrequest: called field %q, calling field %q, request %s, conn %+v\nEvaluate  %+v\nreference %+v\nlinear    %+v\n%s",
			cfg, called, calling, describeRQ(rq), conn, got, want, linearEvaluate(p, rq, conn), p.Explain(rq, conn, got))
	}
	return got
}

// describeRQ renders the matched parts of an RQ other than the AE titles.
func describeRQ(rq *pdu.AssociateRQ) string {
	if rq == nil {
		return "nil"
	}
	var as []string
	for _, pc := range rq.PresentationContexts {
		as = append(as, fmt.Sprintf("%q", pc.AbstractSyntax))
	}
	id := "no identity"
	if ui := rq.UserInformation; ui.HasUserIdentity {
		id = fmt.Sprintf("identity type %d %q", ui.UserIdentity.Type, ui.UserIdentity.Primary)
	}
	return fmt.Sprintf("abstract syntaxes [%s], %s", strings.Join(as, " "), id)
}

// Pools for the reference differential. Titles and patterns share a tiny
// alphabet (with both cases, a space and the wildcard characters) so that
// globs, escapes, case folding and padding collide often.
var (
	diffTitles = []string{"PACS_A", "pacs_a", "PaCs_A", "CT_1", "ct_1", "CT_22", "MR1", "STORE SCP", "A", "a", "AB", "A*B", "A?", "*", "?",
		"ABCDEFGHIJKLMNOP", "abcdefghijklmnop", "CALLING_AE_16CHR", "X Y", "__", "A_B_A"}
	diffPatterns = []string{"PACS_A", "pacs_a", "CT_*", "ct_?", "CT_??", "MR?", "*SCP", "P*", "*", "**", "A", "a*", "*a", "?", "??", "*?*",
		"A*B", `A\*B`, `A\?`, `\*`, `\?`, "  PACS_A ", " * ", "STORE SCP", "STORE*SCP", "*_*_*", "A?*B", "ABCDEFGHIJKLMNOP", "????????????????",
		"ABCDEFGHIJKLMNOP*", "*P", "X?Y", "X Y"}
	diffAlphabet = "Aa_B *?"
	diffCIDRs    = []string{"10.0.0.0/8", "10.1.0.0/16", "10.1.2.0/24", "10.1.2.3", "10.1.2.2/31", "10.1.2.128/25", "10.1.2.3/30",
		"192.168.0.0/16", "0.0.0.0/0", "::/0", "fd00::/8", "fd00:1::/32", "::1", "fe80::/10", "2001:db8::/32", "fd00:1::4/127", "10.0.0.0/7"}
	diffSources = []string{"10.1.2.3", "10.1.2.2", "10.1.2.4", "10.1.2.200", "10.1.9.9", "11.0.0.1", "192.168.4.4", "172.16.0.1",
		"::ffff:10.1.2.3", "::ffff:192.168.1.1", "fd00:1::5", "fd00:1::4", "fd99::1", "::1", "fe80::1%eth0", "2001:db8::1", "0.0.0.0", "::"}
	diffUIDs     = []string{uidVerification, uidCTStorage, uidMRStorage, "1.2.840.10008.5.1.4.1.1.7", "1.2"}
	diffUsers    = []string{"alice", "bob", "Alice"}
	diffURIs     = []string{"spiffe://h/ct1", "spiffe://h/mr1", "SPIFFE://h/ct1"}
	diffSubjects = []string{"CN=CT1", "CN=MR1", "cn=ct1"}
	diffDNS      = []string{"ct1.example.org", "*.example.org", "CT1.Example.ORG", "*.b.example.org", "example.org"}
	diffPeerDNS  = []string{"ct1.example.org", "CT1.EXAMPLE.org", "x.ct1.example.org", ".example.org", "example.org", "a.b.example.org", "ct1.example.org.x"}
	diffReasons  = []string{"no-reason-given", "calling-ae-not-recognized", "called-ae-not-recognized", "local-limit-exceeded", "temporary-congestion"}
	diffRewrites = []string{"ORTHANC", "STORE SCP", "a*b?"}
)

// diffPattern returns a pool pattern or a random one over diffAlphabet
// (with an occasional escape), always valid: not only spaces, at most 16
// non-'*' characters.
func diffPattern(r *rand.Rand) string {
	if r.IntN(2) == 0 {
		return diffPatterns[r.IntN(len(diffPatterns))]
	}
	var b strings.Builder
	for n := 1 + r.IntN(6); n > 0; n-- {
		if r.IntN(8) == 0 {
			b.WriteString([]string{`\*`, `\?`}[r.IntN(2)])
			continue
		}
		b.WriteByte(diffAlphabet[r.IntN(len(diffAlphabet))])
	}
	if strings.Trim(b.String(), " ") == "" {
		return "A" + b.String()
	}
	return b.String()
}

// diffTitle returns a pool title or a random one over diffAlphabet (1-16
// characters, not only spaces, no leading space).
func diffTitle(r *rand.Rand) string {
	if r.IntN(2) == 0 {
		return diffTitles[r.IntN(len(diffTitles))]
	}
	b := []byte{"Aa_B*?"[r.IntN(6)]}
	for n := r.IntN(7); n > 0; n-- {
		b = append(b, diffAlphabet[r.IntN(len(diffAlphabet))])
	}
	return string(b)
}

// diffField pads a title to the 16-byte wire field: usually with spaces,
// sometimes with NULs or a mix (padding some stacks send), sometimes with
// leading spaces (decoders refuse those; Evaluate still ignores them).
func diffField(r *rand.Rand, title string) []byte {
	b := []byte(title)
	if r.IntN(8) == 0 && len(b) < 16 {
		lead := 1 + r.IntN(16-len(b))
		b = append([]byte(strings.Repeat(" ", lead)), b...)
	}
	pad := byte(' ')
	for len(b) < 16 {
		switch r.IntN(10) {
		case 0:
			pad = 0
		case 1:
			pad = ' '
		}
		b = append(b, pad)
	}
	return b
}

func diffPick(r *rand.Rand, pool []string, max int) []string {
	out := make([]string, 1+r.IntN(max))
	for i := range out {
		out[i] = pool[r.IntN(len(pool))]
	}
	return out
}

// diffPolicy builds a valid random policy of n rules using every match key,
// both AE title case modes, cluster and service routes, rewrites, reject
// reasons, the default action and reason, and dry-run.
func diffPolicy(r *rand.Rand, n int) map[string]any {
	var rules []any
	for i := 0; i < n; i++ {
		m := map[string]any{}
		for _, k := range []string{"calledAETitles", "callingAETitles"} {
			if r.IntN(5) < 3 {
				pats := make([]string, 1+r.IntN(3))
				for j := range pats {
					pats[j] = diffPattern(r)
				}
				m[k] = pats
			}
		}
		add := func(key string, oneIn int, pool []string, max int) {
			if r.IntN(oneIn) == 0 {
				m[key] = diffPick(r, pool, max)
			}
		}
		add("sourceCIDRs", 3, diffCIDRs, 3)
		add("abstractSyntaxes", 7, diffUIDs, 2)
		add("onlyAbstractSyntaxes", 8, diffUIDs, 3)
		add("userIdentityUsernames", 7, diffUsers, 2)
		add("peerURISANs", 9, diffURIs, 2)
		add("peerDNSSANs", 9, diffDNS, 2)
		add("peerSubjects", 10, diffSubjects, 2)
		rule := map[string]any{"name": fmt.Sprintf("r%d", i)}
		if len(m) > 0 || r.IntN(2) == 0 {
			rule["match"] = m // {} and absent both match everything
		}
		if r.IntN(3) == 0 {
			rule["aeTitleCaseInsensitive"] = r.IntN(4) != 0
		}
		switch r.IntN(3) {
		case 0, 1:
			rule["action"] = "allow"
			if r.IntN(2) == 0 {
				rule["action"] = "route"
				if r.IntN(2) == 0 {
					rule["cluster"] = fmt.Sprintf("outbound|11112||c%d.svc", i)
				} else {
					svc := map[string]any{"host": fmt.Sprintf("pacs-%d.dicom.svc.cluster.local", i),
						"port": json.Number([]string{"11112", "4242", "1e3", "104.0", "1.2e1"}[r.IntN(5)])}
					if r.IntN(3) == 0 {
						svc["subset"] = "v2"
					}
					rule["service"] = svc
				}
			}
			if r.IntN(4) == 0 {
				rule["rewriteCalledAETitle"] = diffRewrites[r.IntN(len(diffRewrites))]
			}
			if r.IntN(6) == 0 {
				rule["rewriteCallingAETitle"] = diffRewrites[r.IntN(len(diffRewrites))]
			}
		default:
			rule["action"] = "deny"
			if r.IntN(3) == 0 {
				rule["rejectReason"] = diffReasons[r.IntN(len(diffReasons))]
			}
		}
		rules = append(rules, rule)
	}
	doc := map[string]any{"rules": rules}
	switch r.IntN(5) {
	case 0:
		doc["defaultAction"] = "allow"
	case 1:
		doc["defaultAction"] = "deny"
		doc["defaultRejectReason"] = diffReasons[r.IntN(len(diffReasons))]
	case 2:
		doc["defaultAction"] = "deny"
	}
	if r.IntN(6) == 0 {
		doc["mode"] = "dry-run"
	}
	return doc
}

// diffRequest builds a random RQ and connection (nil now and then).
func diffRequest(r *rand.Rand) (*pdu.AssociateRQ, *Conn) {
	rq := &pdu.AssociateRQ{
		ProtocolVersion:    1,
		CalledAETitleRaw:   diffField(r, diffTitle(r)),
		CallingAETitleRaw:  diffField(r, diffTitle(r)),
		ApplicationContext: []byte("1.2.840.10008.3.1.1.1"),
	}
	for i := r.IntN(4); i > 0; i-- {
		as := []byte(diffUIDs[r.IntN(len(diffUIDs))])
		if r.IntN(6) == 0 {
			as = append(as, 0) // trailing NUL padding
		}
		rq.PresentationContexts = append(rq.PresentationContexts, pdu.PresentationContextRQ{
			ID: uint8(2*i + 1), AbstractSyntax: as, TransferSyntaxes: [][]byte{[]byte("1.2.840.10008.1.2")}})
	}
	if r.IntN(3) == 0 {
		rq.UserInformation.HasUserIdentity = true
		rq.UserInformation.UserIdentity = pdu.UserIdentity{Type: uint8(1 + r.IntN(5)), Primary: []byte(diffUsers[r.IntN(len(diffUsers))])}
	}
	if r.IntN(20) == 0 {
		return rq, nil
	}
	conn := &Conn{}
	if r.IntN(8) != 0 {
		conn.Source = netip.MustParseAddr(diffSources[r.IntN(len(diffSources))])
	}
	if r.IntN(2) == 0 {
		conn.MTLS = r.IntN(6) != 0 // now and then the properties without a verified certificate
		if r.IntN(4) != 0 {
			conn.PeerURISAN = diffURIs[r.IntN(len(diffURIs))]
		}
		if r.IntN(4) != 0 {
			conn.PeerDNSSAN = diffPeerDNS[r.IntN(len(diffPeerDNS))]
		}
		if r.IntN(4) != 0 {
			conn.PeerSubject = diffSubjects[r.IntN(len(diffSubjects))]
		}
	}
	return rq, conn
}

// TestEvaluateMatchesReference: on random policies using every match key
// and random requests (raw AE fields with case, padding and wildcard
// characters; IPv4, IPv6, mapped and zoned sources; peer identities with and
// without mTLS; user identities of every type), Evaluate decides exactly
// like the independent reference evaluator written from README.md. The
// outcome tally proves the comparison is not vacuous: every kind of
// decision occurs.
func TestEvaluateMatchesReference(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 12))
	tally := map[string]int{}
	for iter := 0; iter < 400; iter++ {
		cfg, err := json.Marshal(diffPolicy(r, 1+r.IntN(30)))
		require.NoError(t, err)
		p, _, err := Load(cfg)
		require.NoError(t, err, "random policy rejected:\n%s", cfg)
		ref, err := refParse(cfg)
		require.NoError(t, err, "reference cannot read a policy Load accepted:\n%s", cfg)
		reqs := probeRequests(ref, r, 30)
		for k := 0; k < 40; k++ {
			rq, conn := diffRequest(r)
			reqs = append(reqs, probe{rq, conn})
		}
		for _, req := range reqs {
			d := checkDecision(t, cfg, p, ref, req.rq, req.conn)
			switch {
			case d.RuleIndex < 0:
				tally["default "+d.Action.String()+" "+d.RejectReason]++
			case d.Action == ActionDeny:
				tally["rule deny "+d.RejectReason]++
			default:
				tally["rule "+d.Action.String()]++
			}
			if d.RewriteCalledAETitle != "" {
				tally["rewrite"]++
			}
			if d.RuleIndex >= 0 {
				rr := ref.rules[d.RuleIndex]
				for key := range rr.match {
					tally["matched "+key]++
				}
				if rr.caseFold {
					tally["matched aeTitleCaseInsensitive"]++
				}
			}
			if d.DryRun {
				tally["dry-run"]++
			}
		}
	}
	t.Logf("outcomes: %v", tally)
	for _, k := range []string{"default allow ", "default deny called-ae-not-recognized", "default deny calling-ae-not-recognized",
		"default deny local-limit-exceeded", "rule deny called-ae-not-recognized", "rule deny calling-ae-not-recognized",
		"rule deny no-reason-given", "rule allow", "rule route", "rewrite", "dry-run", "matched aeTitleCaseInsensitive"} {
		require.Greater(t, tally[k], 50, "outcome %q too rare (%v): the generator no longer exercises it", k, tally)
	}
	for _, k := range refMatchKeys {
		require.Greater(t, tally["matched "+k], 20, "rules with %s too rarely decide (%v): the generator no longer exercises it", k, tally)
	}
}

// TestCapturesMatchReference evaluates the real captures' RQs (dcmtk and
// Orthanc requesters, up to 128 contexts) under the example policies, the
// capture-oriented fuzz seed and random policies, from several connections:
// Evaluate must decide like the reference every time.
func TestCapturesMatchReference(t *testing.T) {
	var docs [][]byte
	files, err := filepath.Glob("testdata/*.json")
	require.NoError(t, err)
	for _, f := range files {
		if b := readFile(t, f); func() bool { _, _, err := Load(b); return err == nil }() {
			docs = append(docs, b)
		}
	}
	docs = append(docs, []byte(capturePolicy))
	r := rand.New(rand.NewPCG(21, 22))
	for i := 0; i < 40; i++ {
		cfg, err := json.Marshal(diffPolicy(r, 1+r.IntN(20)))
		require.NoError(t, err)
		docs = append(docs, cfg)
	}
	conns := []*Conn{nil, {Source: netip.MustParseAddr("127.0.0.1")}, {Source: netip.MustParseAddr("::1")},
		{Source: netip.MustParseAddr("::ffff:10.1.2.3"), MTLS: true, PeerURISAN: "spiffe://hospital/modality/ct1",
			PeerDNSSAN: "CT1.example.org", PeerSubject: "CN=CT1,O=Hospital"}}
	captures := captureStreams(t)
	matched := 0
	for _, cfg := range docs {
		p := mustLoad(t, string(cfg))
		ref, err := refParse(cfg)
		require.NoError(t, err, "%s", cfg)
		for name, stream := range captures {
			rq, ambiguous, ok := decodeStream(stream)
			require.True(t, ok && !ambiguous, "capture %s does not decode as an unambiguous RQ", name)
			for _, c := range conns {
				if checkDecision(t, cfg, p, ref, rq, c).RuleIndex >= 0 {
					matched++
				}
			}
		}
	}
	require.Greater(t, matched, 500, "too few capture evaluations matched a rule")
}

// TestReferenceSemantics pins the README's examples on both the reference
// and Evaluate, so that neither can drift into agreeing on something the
// README does not say.
func TestReferenceSemantics(t *testing.T) {
	cfg := []byte(`{"rules":[
	  {"name":"space","match":{"calledAETitles":[" STORE SCP  "]},"action":"allow"},
	  {"name":"literal-star","match":{"calledAETitles":["A\\*"]},"action":"allow"},
	  {"name":"fold","match":{"calledAETitles":["ORTH?NC"]},"aeTitleCaseInsensitive":true,"action":"route","service":{"host":"o.svc","port":4.242e3,"subset":"v1"}},
	  {"name":"exact-case","match":{"calledAETitles":["PACS"]},"action":"route","cluster":"c"},
	  {"name":"net","match":{"calledAETitles":["NET"],"sourceCIDRs":["10.1.2.3/24"]},"action":"allow"},
	  {"name":"dns","match":{"calledAETitles":["DNS"],"peerDNSSANs":["*.example.org"]},"action":"allow"},
	  {"name":"user","match":{"calledAETitles":["USER"],"userIdentityUsernames":["alice"]},"action":"allow"},
	  {"name":"only","match":{"calledAETitles":["ONLY"],"onlyAbstractSyntaxes":["1.2.840.10008.1.1"]},"action":"allow"}]}`)
	p := mustLoad(t, string(cfg))
	ref, err := refParse(cfg)
	require.NoError(t, err)
	mapped := &Conn{Source: netip.MustParseAddr("::ffff:10.1.2.99")}
	mtls := &Conn{MTLS: true, PeerDNSSAN: "CT1.Example.Org"}
	tests := []struct {
		called string
		opts   []rqOpt
		conn   *Conn
		rule   string
	}{
		{"STORE SCP", nil, nil, "space"},
		{"STORE  SCP", nil, nil, DefaultRule}, // embedded spaces are significant
		{"A*", nil, nil, "literal-star"},
		{"AB", nil, nil, DefaultRule},
		{"orthanc", nil, nil, "fold"},
		{"ORTH_NC", nil, nil, "fold"},
		{"pacs", nil, nil, DefaultRule}, // case-sensitive by default
		{"PACS", nil, nil, "exact-case"},
		{"NET", nil, mapped, "net"}, // host bits masked; mapped source is IPv4
		{"NET", nil, &Conn{Source: netip.MustParseAddr("10.1.3.1")}, DefaultRule},
		{"NET", nil, nil, DefaultRule}, // unknown source
		{"DNS", nil, mtls, "dns"},
		{"DNS", nil, &Conn{PeerDNSSAN: "ct1.example.org"}, DefaultRule}, // no mTLS
		{"DNS", nil, &Conn{MTLS: true, PeerDNSSAN: "a.ct1.example.org"}, DefaultRule},
		{"USER", []rqOpt{withUser(2, "alice")}, nil, "user"},
		{"USER", []rqOpt{withUser(5, "alice")}, nil, DefaultRule}, // a JWT is not a username
		{"ONLY", nil, nil, "only"},
		{"ONLY", []rqOpt{withSyntaxes()}, nil, DefaultRule}, // no context proposed
		{"ONLY", []rqOpt{withSyntaxes(uidVerification, uidCTStorage)}, nil, DefaultRule},
	}
	for _, tc := range tests {
		rq := mkRQ(tc.called, "CALLER", tc.opts...)
		d := checkDecision(t, cfg, p, ref, rq, tc.conn)
		require.Equal(t, tc.rule, d.Rule, "called %q conn %+v", tc.called, tc.conn)
	}
	d := checkDecision(t, cfg, p, ref, mkRQ("Orthanc", "X"), nil)
	require.Equal(t, "outbound|4242|v1|o.svc", d.Cluster)
	// NUL padding is padding; a NUL inside the title is not (the decoder
	// refuses such a field before any policy sees it).
	d = checkDecision(t, cfg, p, ref, mkRQ("", "", withRawAE([]byte("PACS\x00\x00 \x00          "), pad16("X"))), nil)
	require.Equal(t, "exact-case", d.Rule)
	d = checkDecision(t, cfg, p, ref, mkRQ("", "", withRawAE([]byte("PACS\x00X          "), pad16("X"))), nil)
	require.Equal(t, DefaultRule, d.Rule)
	require.Equal(t, ReasonCalledAENotRecognized, d.RejectReason) // no allow/route rule accepts that called AE
}

// captureStreams returns the first PDU of every real capture in
// sdk/pdu/testdata that starts with an A-ASSOCIATE-RQ (dcmtk and Orthanc
// requesters), by capture name.
func captureStreams(tb testing.TB) map[string][]byte {
	tb.Helper()
	files, err := filepath.Glob(filepath.Join("..", "pdu", "testdata", "*.c2s.bin"))
	require.NoError(tb, err, "no captures in ../pdu/testdata")
	require.NotEmpty(tb, files, "no captures in ../pdu/testdata")
	out := map[string][]byte{}
	for _, name := range files {
		b, err := os.ReadFile(name)
		require.NoError(tb, err)
		var f pdu.Framer
		first, _, err := f.Next(b)
		if err != nil || len(first) == 0 || first[0] != byte(pdu.TypeAssociateRQ) {
			continue // TLS-wrapped or not a requester stream
		}
		out[strings.TrimSuffix(filepath.Base(name), ".c2s.bin")] = first
	}
	require.GreaterOrEqual(tb, len(out), 20, "only %d captures start with an A-ASSOCIATE-RQ", len(out))
	return out
}

// decodeStream decodes an A-ASSOCIATE-RQ PDU as the filter does; an RQ the
// filter would refuse as ambiguous is decoded anyway (AllowAmbiguous), since
// Evaluate must still follow its documented semantics on it. ok is false
// when the bytes are not an RQ at all.
func decodeStream(b []byte) (rq *pdu.AssociateRQ, ambiguous, ok bool) {
	var f pdu.Framer
	first, _, err := f.Next(b)
	if err != nil || len(first) == 0 {
		return nil, false, false
	}
	rq = &pdu.AssociateRQ{}
	var d pdu.Decoder
	if err = d.DecodeAssociateRQ(first, rq); err == nil {
		return rq, false, true
	}
	if !errors.Is(err, pdu.ErrAmbiguous) {
		return nil, false, false
	}
	d.AllowAmbiguous = true
	if d.DecodeAssociateRQ(first, rq) != nil {
		return nil, false, false
	}
	return rq, true, true
}

// probeRequests builds requests aimed at the rules of a policy: for a rule
// picked at random, an RQ and connection that satisfy its conditions as the
// reference reads them (AE titles instantiated from its patterns, a source
// inside one of its prefixes, its username, abstract syntaxes and peer
// identity), then perturbed at one or more points (ASCII case swapped, a
// character added or dropped, NUL padding, a source just outside the prefix
// or IPv4-mapped, no mTLS, another identity type, an extra context). The
// fuzzer mutates policies freely; these probes make the requests cross the
// boundaries of whatever rules it produced.
func probeRequests(ref *refPolicy, r *rand.Rand, n int) []probe {
	if len(ref.rules) == 0 {
		return nil
	}
	out := make([]probe, 0, n)
	for len(out) < n {
		rule := &ref.rules[r.IntN(len(ref.rules))]
		perturb := func() bool { return r.IntN(4) == 0 }
		called := probeTitle(r, rule.called, perturb())
		calling := probeTitle(r, rule.calling, perturb())
		rq := &pdu.AssociateRQ{ProtocolVersion: 1, CalledAETitleRaw: diffField(r, called), CallingAETitleRaw: diffField(r, calling),
			ApplicationContext: []byte("1.2.840.10008.3.1.1.1")}
		var uids []string
		if l := rule.match["onlyAbstractSyntaxes"]; l != nil {
			uids = append(uids, l[r.IntN(len(l))])
		}
		if l := rule.match["abstractSyntaxes"]; l != nil {
			uids = append(uids, l[r.IntN(len(l))])
		}
		if len(uids) == 0 || perturb() {
			uids = append(uids, diffUIDs[r.IntN(len(diffUIDs))])
		}
		if perturb() {
			uids = nil
		}
		for i, u := range uids {
			as := []byte(u)
			if r.IntN(8) == 0 {
				as = append(as, 0)
			}
			rq.PresentationContexts = append(rq.PresentationContexts, pdu.PresentationContextRQ{ID: uint8(2*i + 1), AbstractSyntax: as})
		}
		if l := rule.match["userIdentityUsernames"]; l != nil || r.IntN(4) == 0 {
			user := "alice"
			if l != nil {
				user = l[r.IntN(len(l))]
			}
			typ := uint8(1 + r.IntN(2))
			if perturb() {
				typ = uint8(3 + r.IntN(3))
			}
			rq.UserInformation.HasUserIdentity = true
			rq.UserInformation.UserIdentity = pdu.UserIdentity{Type: typ, Primary: []byte(user)}
		}
		conn := &Conn{Source: probeSource(r, rule.match["sourceCIDRs"])}
		pickOr := func(key, other string) string {
			if l := rule.match[key]; l != nil && !perturb() {
				return l[r.IntN(len(l))]
			}
			return other
		}
		conn.PeerURISAN = pickOr("peerURISANs", diffURIs[r.IntN(len(diffURIs))])
		conn.PeerSubject = pickOr("peerSubjects", diffSubjects[r.IntN(len(diffSubjects))])
		conn.PeerDNSSAN = probeDNS(r, pickOr("peerDNSSANs", diffPeerDNS[r.IntN(len(diffPeerDNS))]))
		conn.MTLS = !perturb()
		out = append(out, probe{rq, conn})
	}
	return out
}

// probe is one request with its connection.
type probe struct {
	rq   *pdu.AssociateRQ
	conn *Conn
}

// probeTitle instantiates one of the patterns (a random title when there
// are none): literals kept, '?' a letter, '*' nothing or a few letters;
// when perturbed, the ASCII case of one letter is swapped, or a character
// is added or dropped. The result fits the 16-byte field.
func probeTitle(r *rand.Rand, pats [][]refTok, perturb bool) string {
	if len(pats) == 0 {
		return diffTitle(r)
	}
	var b []byte
	for _, t := range pats[r.IntN(len(pats))] {
		switch t.kind {
		case '?':
			b = append(b, "qQ_"[r.IntN(3)])
		case '*':
			b = append(b, "xyXY"[:r.IntN(3)]...)
		default:
			b = append(b, t.c)
		}
	}
	if perturb && len(b) > 0 {
		i := r.IntN(len(b))
		switch r.IntN(5) {
		case 0: // swap the case of every letter (one non-letter may stay)
			for j := range b {
				b[j] ^= 0x20 * byte(probeIsLetter(b[j]))
			}
		case 1:
			b = append(b[:i], b[i+1:]...)
		case 2: // the last character, where '?' and '*' boundaries are
			b = b[:len(b)-1]
		case 3:
			b = append(b[:i], append([]byte{"Aa?"[r.IntN(3)]}, b[i:]...)...)
		default:
			b = append(b, "Aa?"[r.IntN(3)])
		}
	}
	if len(b) > 16 {
		b = b[:16]
	}
	if s := strings.Trim(string(b), " "); s != "" {
		return s
	}
	return "A"
}

func probeIsLetter(c byte) int {
	if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' {
		return 1
	}
	return 0
}

// probeSource returns an address inside one of the prefixes, one just
// outside it (the first bit after the prefix flipped), or its IPv4-mapped
// IPv6 form; a pool address when there are none or now and then.
func probeSource(r *rand.Rand, cidrs []string) netip.Addr {
	if len(cidrs) == 0 || r.IntN(8) == 0 {
		if r.IntN(8) == 0 {
			return netip.Addr{}
		}
		return netip.MustParseAddr(diffSources[r.IntN(len(diffSources))])
	}
	c, err := refParseCIDR(cidrs[r.IntN(len(cidrs))])
	if err != nil {
		return netip.Addr{}
	}
	b := c.addr.AsSlice()
	for i := c.bits; i < len(b)*8; i++ { // random host bits
		if r.IntN(2) == 0 {
			b[i/8] ^= 1 << (7 - i%8)
		}
	}
	if c.bits > 0 && r.IntN(3) == 0 { // just outside
		i := c.bits - 1
		b[i/8] ^= 1 << (7 - i%8)
	}
	a, _ := netip.AddrFromSlice(b)
	if a.Is4() && r.IntN(4) == 0 {
		a = netip.AddrFrom16(a.As16())
	}
	return a
}

// probeDNS turns a DNS SAN pattern into a SAN: "*." becomes a label (or,
// now and then, nothing or two labels), and the case of letters is mixed.
func probeDNS(r *rand.Rand, s string) string {
	if rest, ok := strings.CutPrefix(s, "*."); ok {
		s = []string{"ct1.", "", "a.b.", "."}[r.IntN(4)] + rest
		if r.IntN(3) != 0 {
			s = "ct1." + rest
		}
	}
	b := []byte(s)
	for i := range b {
		if probeIsLetter(b[i]) == 1 && r.IntN(4) == 0 {
			b[i] ^= 0x20
		}
	}
	return string(b)
}
