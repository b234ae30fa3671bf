package policy

import (
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzLoad feeds arbitrary bytes to the configuration parser: it must never
// panic, every error must carry a JSON path (or be a syntax error with a
// byte offset), and an accepted policy must evaluate and explain without
// panicking.
func FuzzLoad(f *testing.F) {
	files, _ := filepath.Glob("testdata/*.json")
	for _, name := range files {
		if b, err := os.ReadFile(name); err == nil {
			f.Add(b)
		}
	}
	for _, s := range []string{
		``, `{}`, `[]`, `null`, `{"rules":[{}]}`, `{"a":1,"a":2}`,
		oneRule(`{"calledAETitles":["A*B?C","\\*"],"sourceCIDRs":["10.0.0.0/8","::1"]}`),
		`{"rules":[{"name":"x","action":"route","service":{"host":"h","port":1e3}}]}`,
		`{"mode":"dry-run","upstreamConnect":"immediate","inspectTimeoutMs":1.5}`,
	} {
		f.Add([]byte(s))
	}
	rqs := []*struct {
		called, calling string
		conn            *Conn
	}{
		{"PACS_A", "CT_1", &Conn{Source: netip.MustParseAddr("10.1.2.3")}},
		{"a*b", "", &Conn{Source: netip.MustParseAddr("::1"), MTLS: true, PeerURISAN: "spiffe://x", PeerDNSSAN: "a.b", PeerSubject: "CN=x"}},
		{"ABCDEFGHIJKLMNOP", "?", nil},
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		p, diags, err := Load(data)
		nerr := 0
		for _, d := range diags {
			if d.Severity == SeverityError {
				nerr++
			}
			if d.Message == "" {
				t.Fatalf("diagnostic without message: %+v", d)
			}
			if d.Path == "" && !strings.HasPrefix(d.Message, "invalid JSON at byte offset ") {
				t.Fatalf("diagnostic without path: %+v", d)
			}
		}
		if (err != nil) != (nerr > 0) || (p == nil) != (err != nil) {
			t.Fatalf("err %v, %d error diagnostics, policy %v", err, nerr, p != nil)
		}
		if p == nil {
			return
		}
		_ = p.Summary()
		for _, r := range rqs {
			rq := mkRQ(r.called, r.calling, withUser(1, "alice"))
			d := p.Evaluate(rq, r.conn)
			if got := naiveEvaluate(p, rq, r.conn); got != d {
				t.Fatalf("indexed %+v, linear %+v", d, got)
			}
			_ = p.Explain(rq, r.conn, d)
		}
	})
}
