package policy

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"strings"
	"testing"

	"github.com/dicomgate/dicomgate/sdk/pdu"
	"github.com/stretchr/testify/require"
)

// linearEvaluate is what Evaluate's candidate index must reproduce: the
// product's own matchers (prepare, foldInto, matchRule) applied to every
// rule in order, first match wins, else the default action. It tests the
// index against a linear scan and nothing more: a bug in a matcher is
// invisible to it. The matching semantics are checked against the
// independent reference evaluator (reference_test.go).
func linearEvaluate(p *Policy, rq *pdu.AssociateRQ, conn *Conn) Decision {
	var b1, b2 [foldBufLen]byte
	in := prepare(rq, conn)
	in.calledUp = foldInto(&b1, in.called)
	in.callingUp = foldInto(&b2, in.calling)
	known := p.defaultAction == ActionAllow
	for _, r := range p.rules {
		if r.action != ActionDeny && (r.called == nil || r.called.match(in.called, in.calledUp)) {
			known = true
		}
	}
	reason := ReasonCalledAENotRecognized
	if known {
		reason = ReasonCallingAENotRecognized
	}
	for i, r := range p.rules {
		if matchRule(r, &in) != matched {
			continue
		}
		d := Decision{Action: r.action, Rule: r.name, RuleIndex: i, DryRun: p.dryRun}
		switch r.action {
		case ActionDeny:
			d.RejectReason = r.rejectReason
			if d.RejectReason == "" {
				d.RejectReason = reason
			}
		default:
			d.Cluster = r.cluster
			d.RewriteCalledAETitle, d.RewriteCallingAETitle = r.rewriteCalled, r.rewriteCalling
		}
		return d
	}
	d := Decision{Action: p.defaultAction, Rule: DefaultRule, RuleIndex: -1, DryRun: p.dryRun}
	if d.Action == ActionDeny {
		d.RejectReason = p.defaultReason
		if d.RejectReason == "" {
			d.RejectReason = reason
		}
	}
	return d
}

// Pools the random policies and requests draw from, small so that they
// collide often.
var (
	poolAE       = []string{"PACS_A", "PACS_B", "pacs_a", "CT_1", "CT_22", "MR1", "ANY-SCP", "STORE SCP", "X", "ORTHANC"}
	poolAEPat    = []string{"PACS_A", "PACS_B", "pacs_a", "CT_*", "CT_?", "MR?", "*SCP", "P*", "*", "X", "ORTH*C", "STORE SCP", "C*_1"}
	poolCIDR     = []string{"10.0.0.0/8", "10.1.0.0/16", "10.1.2.0/24", "192.168.0.0/16", "10.1.2.3", "fd00::/8", "fd00:1::/32", "::1", "0.0.0.0/0"}
	poolSrc      = []string{"10.1.2.3", "10.1.9.9", "10.9.9.9", "192.168.4.4", "172.16.0.1", "fd00:1::5", "fd99::1", "::1", "2001:db8::1"}
	poolUIDs     = []string{uidVerification, uidCTStorage, uidMRStorage}
	poolUsers    = []string{"alice", "bob"}
	poolReason   = []string{"", "no-reason-given", "local-limit-exceeded"}
	poolURISANs  = []string{"spiffe://h/ct1", "spiffe://h/mr1"}
	poolSubjects = []string{"CN=CT1", "CN=MR1"}
)

func pick(r *rand.Rand, pool []string, max int) []string {
	n := 1 + r.IntN(max)
	out := make([]string, n)
	for i := range out {
		out[i] = pool[r.IntN(len(pool))]
	}
	return out
}

// randomPolicy builds a valid random policy with n rules.
func randomPolicy(r *rand.Rand, n int) map[string]any {
	var rules []any
	for i := 0; i < n; i++ {
		m := map[string]any{}
		if r.IntN(2) == 0 {
			m["calledAETitles"] = pick(r, poolAEPat, 3)
		}
		if r.IntN(2) == 0 {
			m["callingAETitles"] = pick(r, poolAEPat, 3)
		}
		if r.IntN(3) == 0 {
			m["sourceCIDRs"] = pick(r, poolCIDR, 2)
		}
		if r.IntN(8) == 0 {
			m["abstractSyntaxes"] = pick(r, poolUIDs, 2)
		}
		if r.IntN(10) == 0 {
			m["onlyAbstractSyntaxes"] = pick(r, poolUIDs, 2)
		}
		if r.IntN(8) == 0 {
			m["userIdentityUsernames"] = pick(r, poolUsers, 1)
		}
		if r.IntN(10) == 0 {
			m["peerURISANs"] = pick(r, poolURISANs, 1)
		}
		if r.IntN(12) == 0 {
			m["peerSubjects"] = pick(r, poolSubjects, 1)
		}
		if len(m) == 0 && r.IntN(4) != 0 {
			m["calledAETitles"] = pick(r, poolAEPat, 2)
		}
		rule := map[string]any{"name": fmt.Sprintf("r%d", i), "match": m}
		if r.IntN(3) == 0 {
			rule["aeTitleCaseInsensitive"] = true
		}
		switch r.IntN(3) {
		case 0:
			rule["action"] = "allow"
		case 1:
			rule["action"] = "route"
			rule["cluster"] = fmt.Sprintf("c%d", i)
		default:
			rule["action"] = "deny"
			if reason := poolReason[r.IntN(len(poolReason))]; reason != "" {
				rule["rejectReason"] = reason
			}
		}
		rules = append(rules, rule)
	}
	def := "deny"
	if r.IntN(4) == 0 {
		def = "allow"
	}
	return map[string]any{"defaultAction": def, "rules": rules}
}

func randomRQ(r *rand.Rand) (*pdu.AssociateRQ, *Conn) {
	opts := []rqOpt{withSyntaxes(pick(r, poolUIDs, 3)...)}
	if r.IntN(3) == 0 {
		opts = append(opts, withUser(uint8(1+r.IntN(5)), poolUsers[r.IntN(2)]))
	}
	rq := mkRQ(poolAE[r.IntN(len(poolAE))], poolAE[r.IntN(len(poolAE))], opts...)
	conn := &Conn{}
	if r.IntN(8) != 0 {
		conn.Source = netip.MustParseAddr(poolSrc[r.IntN(len(poolSrc))])
	}
	if r.IntN(3) == 0 {
		conn.MTLS = true
		conn.PeerURISAN = poolURISANs[r.IntN(2)]
		conn.PeerSubject = poolSubjects[r.IntN(2)]
	}
	return rq, conn
}

// TestIndexMatchesLinearScan checks on random policies and requests that the
// indexed Evaluate decides exactly like a plain first-match scan and like
// the independent reference.
func TestIndexMatchesLinearScan(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for iter := 0; iter < 300; iter++ {
		cfg, _ := json.Marshal(randomPolicy(r, 1+r.IntN(40)))
		p, _, err := Load(cfg)
		require.NoError(t, err, "random policy rejected:\n%s", cfg)
		ref, err := refParse(cfg)
		require.NoError(t, err, "%s", cfg)
		for k := 0; k < 50; k++ {
			rq, conn := randomRQ(r)
			checkDecision(t, cfg, p, ref, rq, conn) // index, linear scan and reference
		}
	}
}

func TestCIDRIndex(t *testing.T) {
	m := map[netip.Prefix][]int32{
		netip.MustParsePrefix("10.0.0.0/8"):     {0},
		netip.MustParsePrefix("10.1.0.0/16"):    {1},
		netip.MustParsePrefix("10.1.2.3/32"):    {2},
		netip.MustParsePrefix("255.0.0.0/8"):    {3},
		netip.MustParsePrefix("::/0"):           {4},
		netip.MustParsePrefix("fd00::/8"):       {5},
		netip.MustParsePrefix("ffff::/16"):      {6},
		netip.MustParsePrefix("192.168.0.0/24"): {1, 7},
	}
	var x cidrIndex
	x.build(m)
	tests := map[string]string{
		"9.255.255.255":   "[]",
		"10.0.0.0":        "[0]",
		"10.1.2.2":        "[0 1]",
		"10.1.2.3":        "[0 1 2]",
		"10.1.2.4":        "[0 1]",
		"10.2.0.0":        "[0]",
		"11.0.0.0":        "[]",
		"255.255.255.255": "[3]",
		"192.168.0.9":     "[1 7]",
		"::":              "[4]",
		"fd12::1":         "[4 5]",
		"ffff:ffff::1":    "[4 6]",
	}
	for a, want := range tests {
		t.Run(a, func(t *testing.T) {
			require.Equal(t, want, fmt.Sprint(x.lookup(netip.MustParseAddr(a))), a)
		})
	}
}

func TestAEIndexTrie(t *testing.T) {
	var x aeIndex
	x.addPrefix("CT", 0)
	x.addPrefix("CT_", 1)
	x.addPrefix("M", 2)
	x.addExact("CT_1", 3)
	x.addSuffix("_1", 4)
	x.addSuffix("1", 5)
	x.addSuffix("_CT", 6)
	x.finish()
	tests := []struct{ in, exact, prefix, suffix string }{
		{"CT_1", "[3]", "[0 1]", "[4 5]"},
		{"CTX", "[]", "[0]", "[]"},
		{"C", "[]", "[]", "[]"},
		{"MR", "[]", "[2]", "[]"},
		{"ROOM_CT", "[]", "[]", "[6]"},
		{"X1", "[]", "[]", "[5]"},
		{"", "[]", "[]", "[]"},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			e, p, s := x.lookup([]byte(tc.in))
			require.Equal(t, tc.exact, fmt.Sprint(e), "%q: exact (prefix %v suffix %v)", tc.in, p, s)
			require.Equal(t, tc.prefix, fmt.Sprint(p), "%q: prefix (exact %v suffix %v)", tc.in, e, s)
			require.Equal(t, tc.suffix, fmt.Sprint(s), "%q: suffix (exact %v prefix %v)", tc.in, e, p)
		})
	}
}

// TestLargePolicy exercises the large-bitset path (more than 1,024 rules)
// and the MaxRules limit.
func TestLargePolicy(t *testing.T) {
	cfg := benchPolicy(3000)
	p, _, err := Load(cfg)
	require.NoError(t, err)
	ref, err := refParse(cfg)
	require.NoError(t, err)
	r := rand.New(rand.NewPCG(3, 4))
	for k := 0; k < 200; k++ {
		rq, conn := randomRQ(r)
		if k%2 == 0 {
			rq = mkRQ(fmt.Sprintf("PACS_%d", r.IntN(20)), fmt.Sprintf("MOD_%d", r.IntN(3000)))
		}
		checkDecision(t, []byte("benchPolicy(3000)"), p, ref, rq, conn)
	}
	rq := mkRQ("PACS_1", "MOD_2981")
	d := p.Evaluate(rq, nil)
	require.Equal(t, "modality-2981", d.Rule, "rule beyond 1,024 not found: %+v", d)
	n := testing.AllocsPerRun(20, func() { p.Evaluate(rq, nil) })
	require.Zero(t, n, "large policy: Evaluate allocates %v times", n)
	_, diags, err := Load([]byte(`{"rules":[` + strings.Repeat(`{"name":"x","action":"allow"},`, MaxRules) + `{"name":"y","action":"allow"}]}`))
	require.Error(t, err, "MaxRules: %v", diags)
	require.Len(t, diags, 1, "MaxRules: %v", diags)
	require.Equal(t, "rules", diags[0].Path, "MaxRules: %v", diags)
	require.Equal(t, "has 10001 rules; at most 10000 are allowed", diags[0].Message, "MaxRules: %v", diags)
}

// benchPolicy builds n rules mixing exact, glob and CIDR conditions the
// way a large hospital policy looks: per-modality rules (exact calling AE →
// exact called AE), per-user rules on a shared called AE, per-department
// calling AE globs, per-site called AE globs, per-subnet rules, and a few
// rules no index covers (calling AE glob without a literal prefix).
func benchPolicy(n int) []byte {
	var b strings.Builder
	b.WriteString(`{"defaultAction":"deny","rules":[`)
	for i := 0; i < n; i++ {
		if i > 0 {
			b.WriteString(",")
		}
		switch {
		case i%10 <= 2: // modality: exact calling + exact called
			fmt.Fprintf(&b, `{"name":"modality-%d","match":{"calledAETitles":["PACS_%d"],"callingAETitles":["MOD_%d"]},"action":"route","cluster":"outbound|11112||pacs-%d.svc"}`, i, i%20, i, i%20)
		case i%10 == 3: // user on a shared called AE
			fmt.Fprintf(&b, `{"name":"user-%d","match":{"calledAETitles":["PACS_%d"],"userIdentityUsernames":["user%d"]},"action":"allow"}`, i, i%100, i)
		case i%10 <= 5: // department glob on the calling AE
			fmt.Fprintf(&b, `{"name":"dept-%d","match":{"calledAETitles":["ARCH_%d"],"callingAETitles":["D%d_*"]},"action":"allow","aeTitleCaseInsensitive":true}`, i, i%10, i%50)
		case i%10 == 6: // site glob on the called AE
			fmt.Fprintf(&b, `{"name":"site-%d","match":{"calledAETitles":["S%d_*"],"callingAETitles":["CT?"]},"action":"allow"}`, i, i)
		case i%10 <= 8: // subnet
			fmt.Fprintf(&b, `{"name":"subnet-%d","match":{"sourceCIDRs":["10.0.%d.0/24"],"callingAETitles":["*_CT"]},"action":"deny","rejectReason":"calling-ae-not-recognized"}`, i, i%50)
		case i%50 == 9: // nothing indexable
			fmt.Fprintf(&b, `{"name":"us-%d","match":{"callingAETitles":["*_US%d"],"abstractSyntaxes":["1.2.840.10008.5.1.4.1.1.6.1"]},"action":"allow"}`, i, i)
		default: // modality with mTLS identity
			fmt.Fprintf(&b, `{"name":"mtls-%d","match":{"callingAETitles":["MOD_%d"],"peerURISANs":["spiffe://h/mod%d"]},"action":"allow"}`, i, i, i)
		}
	}
	b.WriteString(`]}`)
	return []byte(b.String())
}

// BenchmarkPolicyEvaluate measures the worst case: an association that
// hits candidate buckets on every dimension (called AE shared by the user
// rules, calling AE under a department glob prefix, source in a subnet
// rule's /24) plus the unindexed rules, yet matches no rule, so every
// candidate is checked and the default action applies. At 1,000 rules that
// is 10 + 20 + 20 + 20 = 70 candidates.
func BenchmarkPolicyEvaluate(b *testing.B) {
	for _, n := range []int{10, 1000} {
		b.Run(fmt.Sprintf("rules=%d", n), func(b *testing.B) {
			p, _, err := Load(benchPolicy(n))
			require.NoError(b, err)
			rq := mkRQ("PACS_3", "d4_x", withSyntaxes(uidCTStorage, uidMRStorage))
			conn := &Conn{Source: netip.MustParseAddr("10.0.7.5"), MTLS: true, PeerURISAN: "spiffe://h/x"}
			d := p.Evaluate(rq, conn)
			require.Equal(b, -1, d.RuleIndex, "benchmark request matched %q; it must take the default action", d.Rule)
			require.Equal(b, linearEvaluate(p, rq, conn), p.Evaluate(rq, conn), "index disagrees with linear scan")
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				p.Evaluate(rq, conn)
			}
		})
	}
}

// BenchmarkPolicyEvaluateLinear is the unindexed scan, for comparison.
func BenchmarkPolicyEvaluateLinear(b *testing.B) {
	p, _, err := Load(benchPolicy(1000))
	require.NoError(b, err)
	rq := mkRQ("PACS_3", "d4_x", withSyntaxes(uidCTStorage, uidMRStorage))
	conn := &Conn{Source: netip.MustParseAddr("10.0.7.5"), MTLS: true, PeerURISAN: "spiffe://h/x"}
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		linearEvaluate(p, rq, conn)
	}
}

// TestConcurrentEvaluate shares one Policy between goroutines (run with
// -race): Evaluate must not write to shared state.
func TestConcurrentEvaluate(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	cfg, _ := json.Marshal(randomPolicy(r, 60))
	p, _, err := Load(cfg)
	require.NoError(t, err)
	ref, err := refParse(cfg)
	require.NoError(t, err)
	done := make(chan string, 4)
	for g := 0; g < 4; g++ {
		go func(seed uint64) {
			r := rand.New(rand.NewPCG(seed, 7))
			for k := 0; k < 300; k++ {
				rq, conn := randomRQ(r)
				got := p.Evaluate(rq, conn)
				if want := refEvaluate(ref, refRequestOf(rq, conn)); got != want || got != linearEvaluate(p, rq, conn) {
					done <- fmt.Sprintf("indexed %+v, reference %+v, linear %+v", got, want, linearEvaluate(p, rq, conn))
					return
				}
			}
			done <- ""
		}(uint64(g))
	}
	for g := 0; g < 4; g++ {
		require.Empty(t, <-done, "a goroutine saw the index disagree")
	}
}
