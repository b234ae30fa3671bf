package policy

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// cidrRulesPolicy is the shape of the filter's memory-budget test
// (wasm/host TestWasmVMMemory1000Rules): n-1 rules with a called AE, a
// calling AE and a /16 source each (only 250 distinct /16s), then one rule
// that routes ANY-SCP.
func cidrRulesPolicy(n int) []byte {
	var sb strings.Builder
	sb.WriteString(`{"defaultAction": "deny", "rules": [`)
	for i := 0; i < n-1; i++ {
		sb.WriteString(`{"name": "r` + strconv.Itoa(i) + `", "match": {"calledAETitles": ["AE` + strconv.Itoa(i) +
			`"], "callingAETitles": ["CALLER` + strconv.Itoa(i) + `"], "sourceCIDRs": ["10.` + strconv.Itoa(i%250) +
			`.0.0/16"]}, "action": "allow"},`)
	}
	sb.WriteString(`{"name": "any-scp", "match": {"calledAETitles": ["ANY-SCP"]}, "action": "route", "cluster": "pacs-a"}]}`)
	return []byte(sb.String())
}

// BenchmarkPolicyLoad measures Load (parse, validate, compile, index): Envoy
// runs proxy_on_configure on a canary VM and on every worker VM, so its cost
// delays every configuration push, and its allocations set the peak of a
// filter VM's linear memory. Time and bytes per op must grow linearly with
// the number of rules.
func BenchmarkPolicyLoad(b *testing.B) {
	for _, shape := range []struct {
		name string
		gen  func(int) []byte
	}{{"mixed", benchPolicy}, {"cidr", cidrRulesPolicy}} {
		for _, n := range []int{100, 1000} {
			b.Run(fmt.Sprintf("%s/rules=%d", shape.name, n), func(b *testing.B) {
				cfg := shape.gen(n)
				_, _, err := Load(cfg)
				require.NoError(b, err)
				b.SetBytes(int64(len(cfg)))
				b.ReportAllocs()
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					// require only on failure: the measured loop does not pay for b.Helper.
					if _, _, err := Load(cfg); err != nil {
						require.NoError(b, err)
					}
				}
			})
		}
	}
}

// BenchmarkPolicyEvaluateRoute1 is the decision of the filter benchmark
// (wasm/host BenchmarkWasmAssociation): a one-rule policy that routes the
// called AE ANY-SCP, an echo RQ, a plain-TCP source address.
func BenchmarkPolicyEvaluateRoute1(b *testing.B) {
	p, _, err := Load([]byte(`{"defaultAction": "deny", "rules": [
  {"name": "any-scp", "match": {"calledAETitles": ["ANY-SCP"]}, "action": "route", "cluster": "pacs-a"}]}`))
	require.NoError(b, err)
	rq := mkRQ("ANY-SCP", "ECHOSCU")
	conn := &Conn{Source: netip.MustParseAddr("10.1.2.3")}
	d := p.Evaluate(rq, conn)
	require.Equal(b, ActionRoute, d.Action, "got %+v; want route to pacs-a", d)
	require.Equal(b, "pacs-a", d.Cluster, "got %+v; want route to pacs-a", d)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		p.Evaluate(rq, conn)
	}
}
