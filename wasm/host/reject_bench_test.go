package host_test

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// rejectPolicy denies the echo capture with "respond": "reject"; the rejector cluster is routedCluster so that the
// benchmark can reuse syncTransport.routed.
const rejectPolicy = `{"defaultAction": "allow", "rejectCluster": "pacs-a",
  "rejectKey": "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
  "rules": [{"name": "any-scp", "match": {"calledAETitles": ["ANY-SCP"]}, "action": "deny", "respond": "reject"}]}`

// rejectPreambleLen is sdk/rejectwire.Size.
const rejectPreambleLen = 56

// BenchmarkWasmRejectedAssociation: BenchmarkWasmAssociation for a deny answered with an A-ASSOCIATE-RJ (issue 13):
// the filter signs the 56-byte preamble (HMAC-SHA256 in the guest), prepends it to the RQ (one more host call,
// proxy_set_buffer_bytes), routes to the rejector cluster and counts dicomgate_rejected_total (one more). Reports host calls per association and the VM's
// linear memory.
func BenchmarkWasmRejectedAssociation(b *testing.B) {
	p, logs := loadFilter(b, rejectPolicy)
	rq, rest := echoCapture(b)
	t := &syncTransport{}
	total := rejectPreambleLen + len(rq) + len(rest)
	associate(p, t, 1, rq, rest, 1)
	require.True(b, t.routed(total), "association not sent to the rejector with the preamble: %s; last log: %s", t.describe(), logs.last)
	calls := p.HostCalls()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		associate(p, t, uint64(i+2), rq, rest, 1)
	}
	b.StopTimer()
	require.True(b, t.routed(total), "last association not sent to the rejector: %s", t.describe())
	b.ReportMetric(float64(p.HostCalls()-calls)/float64(b.N), "hostcalls/op")
	b.ReportMetric(float64(p.GuestMemoryBytes()), "vm-bytes")
}
