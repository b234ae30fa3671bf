package main

import (
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"
)

// BenchmarkAuditLine builds the audit line of a routed association (what
// logAudit appends before the log call). Natively it is fast either way; run
// it compiled for wasip1 to see the guest's cost:
// go run ./wasm/internal/wasip1bench ./filters/dicomgate -test.run='^$' -test.bench=AuditLine
func BenchmarkAuditLine(b *testing.B) {
	p := &plugin{}
	id := identity{source: "10.1.2.3:40000", connID: 123456, hasID: true}
	id.conn.Source = netip.MustParseAddr("10.1.2.3")
	e := auditEntry{at: time.Date(2026, 1, 2, 3, 4, 5, 6000, time.UTC).UnixNano(), identity: &id, decision: "route", rule: "any-scp",
		cluster: "pacs-a", calledAE: "ANY-SCP", callingAE: "ECHOSCU", contexts: 1, sopClasses: 1}
	c := &conn{p: p, id: 2, start: e.at - 5000}
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		p.audit = appendAuditLine(p.audit[:0], c, &e)
	}
	if len(p.audit) == 0 {
		b.Fatal("empty audit line")
	}
}

// putInt formats like strconv.AppendInt, on both sides of its 32-bit fast
// path, and writes nothing outside its digits.
func TestPutIntMatchesStrconv(t *testing.T) {
	for _, v := range []int64{0, 1, 9, 10, 99, 100, 12345, 1<<31 - 1, 1 << 31, 1<<32 - 1, 1 << 32, 1<<63 - 1, -1, -1 << 63} {
		w := []byte("x.........................")
		n := putInt(w, 1, v)
		if got, want := string(w[:n]), "x"+strconv.FormatInt(v, 10); got != want {
			t.Errorf("putInt(%d) = %s; want %s", v, got, want)
		}
		if rest := string(w[n:]); strings.Trim(rest, ".") != "" {
			t.Errorf("putInt(%d) wrote past its digits: %q", v, rest)
		}
	}
}
