//go:build !wasip1

package main

import (
	"bytes"
	"testing"

	"github.com/dicomgate/dicomgate/internal/filtertable"
	"github.com/stretchr/testify/require"
)

// FuzzFilterStream feeds arbitrary bytes, in arbitrary chunk sizes and then
// a half-close, to one connection under an allow-all policy that rewrites the
// calling AE title. Whatever the bytes, the filter must end the connection
// decided (let through) or closed with a protocol reason, log exactly one
// audit line (none when no byte arrived: no association), never hit an
// internal error (a recovered panic in the filter, sdk/pdu or sdk/policy),
// and forward exactly the reference result: nothing when it closed, else
// every byte with the RQ's calling AE field (bytes 26-41) replaced by "GW"
// padded with spaces (filtertable.WithAETitles, written independently of the
// filter's rewrite).
func FuzzFilterStream(f *testing.F) {
	caps, err := filtertable.LoadCaptures()
	require.NoError(f, err)
	for _, n := range []string{"echo_default", "uid_jwt", "store_multi", "tls_client_plain_server"} {
		b := caps[n]
		if len(b) > 4096 {
			b = b[:4096]
		}
		f.Add(b, uint8(7))
		f.Add(filtertable.FirstPDU(b), uint8(0))
	}
	f.Add([]byte("GET / HTTP/1.1\r\n\r\n"), uint8(1))
	f.Add([]byte{0x01, 0, 0, 0, 0, 0x44}, uint8(2))
	f.Add([]byte{}, uint8(3))

	props := filtertable.ConnProps{Source: "10.0.0.9:1000"}
	f.Fuzz(func(t *testing.T, data []byte, chunk uint8) {
		// A runner per input: proxytest holds a process-wide lock for the
		// life of an emulator, released by the runner's cleanup.
		r := newNativeRunner(t)
		require.NoError(t, r.Configure([]byte(`{"defaultAction": "deny", "rules": [{"name": "all", "action": "allow", "rewriteCallingAETitle": "GW"}]}`), filtertable.Listener{}))
		before := len(filtertable.AuditLines(r.Logs(filtertable.LevelInfo)))
		internal0, ok := r.Metric(`dicomgate_denied_total{reason="internal"}`)
		require.True(t, ok, `dicomgate_denied_total{reason="internal"} is not defined`)
		c, err := r.NewConn(props)
		require.NoError(t, err)
		input := data
		n := int(chunk%64) + 1
		for len(data) > 0 {
			k := min(n, len(data))
			c.Data(data[:k], false)
			data = data[k:]
		}
		c.Data(nil, true)
		o := c.Observe()
		require.True(t, o.Closed || o.UpstreamConnect, "after end of stream the connection is neither decided nor closed")
		wantAudit := 1
		if len(input) == 0 {
			wantAudit = 0
		}
		require.Equal(t, wantAudit, len(filtertable.AuditLines(r.Logs(filtertable.LevelInfo)))-before, "audit lines")
		internal1, _ := r.Metric(`dicomgate_denied_total{reason="internal"}`)
		require.Equal(t, internal0, internal1, "internal error: %q", r.Logs(filtertable.LevelError))
		switch {
		case o.Closed && len(o.Forwarded) != 0:
			require.FailNowf(t, "forwarded after a close", "closed, yet %d byte(s) reached the upstream", len(o.Forwarded))
		case o.UpstreamConnect:
			want := filtertable.WithAETitles(input, "", "GW")
			require.True(t, bytes.Equal(o.Forwarded, want), "forwarded %d byte(s) %x\nwant %d byte(s) %x", len(o.Forwarded), o.Forwarded, len(want), want)
		}
	})
}
