package audit

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// BenchmarkAuditLine builds the audit line of a routed association (what
// the filter appends before its log call). Natively it is fast either way;
// run it compiled for wasip1 to see the guest's cost:
// go run ./wasm/internal/wasip1bench ./filters/dicomgate/internal/audit -test.run='^$' -test.bench=AuditLine
func BenchmarkAuditLine(b *testing.B) {
	at := time.Date(2026, 1, 2, 3, 4, 5, 6000, time.UTC).UnixNano()
	r := Record{At: at, Start: at - 5000, Conn: 123456, Source: "10.1.2.3:40000", CalledAE: "ANY-SCP", CallingAE: "ECHOSCU",
		Decoded: true, Contexts: 1, SOPClasses: 1, Decision: "route", Rule: "any-scp", Cluster: "pacs-a"}
	var line []byte
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		line = AppendLine(line[:0], &r)
	}
	require.NotEmpty(b, line, "empty audit line")
}
