package audit

import (
	"bytes"
	"encoding/json"
	"io"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// lineKeys is the audit line's member order when every optional member is
// present (AppendLine's doc comment).
var lineKeys = []string{"time", "conn", "source", "calling_ae", "called_ae", "peer_uri_san", "peer_subject",
	"peer_sha256", "presentation_contexts", "sop_classes", "decision", "rule", "cluster", "reason",
	"reject_reason", "respond", "rewrite_called_ae", "rewrite_calling_ae", "latency_us", "dry_run"}

// decodeLine parses line as one JSON object and returns its members in
// order, failing the test on anything else.
func decodeLine(t testing.TB, line []byte) ([]string, map[string]any) {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.UseNumber()
	tok, err := dec.Token()
	require.NoError(t, err, "%s", line)
	require.Equal(t, json.Delim('{'), tok, "%s: not a JSON object", line)
	var keys []string
	vals := map[string]any{}
	for dec.More() {
		tok, err := dec.Token()
		require.NoError(t, err, "%s", line)
		k := tok.(string)
		var v any
		require.NoError(t, dec.Decode(&v), "%s: member %q", line, k)
		keys = append(keys, k)
		vals[k] = v
	}
	tok, err = dec.Token()
	require.NoError(t, err, "%s: unterminated object", line)
	require.Equal(t, json.Delim('}'), tok, "%s: unterminated object", line)
	_, err = dec.Token()
	require.Equal(t, io.EOF, err, "%s: bytes after the object", line)
	return keys, vals
}

// asJSONText is what a JSON reader gets back for s: each invalid UTF-8 byte
// becomes U+FFFD.
func asJSONText(s string) string { return string([]rune(s)) }

// The audit line is one valid JSON object with its members in the documented
// order, whatever bytes the client put in its AE titles and however much room
// the caller's buffer had; bytes before it are kept.
func TestLineMembersAndEscaping(t *testing.T) {
	hostile := []string{"", "ANY-SCP", `A"B\C`, "tab\there\nnl\r\x00\x1f\x7f", "caf\xc3\xa9", "bad\xff\xfeutf8",
		"</script>", "\u2028\u2029", strings.Repeat("\x01", 64), strings.Repeat("é", 100), "0123456", "01234567", "012345678"}
	at := time.Date(2026, 1, 2, 3, 4, 5, 6000, time.UTC)
	for i, s := range hostile {
		r := Record{At: at.UnixNano(), Start: at.UnixNano() - 1_500_000, Conn: 1 << 40, Source: "10.1.2.3:" + s,
			CallingAE: strings.ToLower(s), CalledAE: s, PeerURISAN: "spiffe://x/" + s, PeerSubject: "CN=" + s, PeerSHA256: s,
			Decoded: true, Contexts: 128, SOPClasses: i, Decision: "deny", Rule: "r" + s, Cluster: s, Reason: "policy",
			RejectReason: "called-ae-not-recognized", Respond: "reject", RewriteCalled: s + "X", RewriteCalling: "Y" + s}
		for _, prefix := range [][]byte{nil, []byte("prefix"), make([]byte, 3, 2000)} {
			keep := string(prefix)
			line := AppendLine(prefix, &r)
			require.True(t, strings.HasPrefix(string(line), keep), "%q: the caller's bytes were not kept", s)
			keys, v := decodeLine(t, line[len(keep):])
			wantKeys := strings.Join(lineKeys, ",")
			if s == "" { // an empty optional member is left out
				wantKeys = strings.Replace(wantKeys, ",peer_sha256", "", 1)
			}
			require.Equal(t, wantKeys, strings.Join(keys, ","), "%q: members", s)
			want := map[string]any{"time": "2026-01-02T03:04:05.000006Z", "conn": json.Number("1099511627776"),
				"source": asJSONText(r.Source), "calling_ae": asJSONText(r.CallingAE), "called_ae": asJSONText(s),
				"peer_uri_san": asJSONText(r.PeerURISAN), "peer_subject": asJSONText(r.PeerSubject),
				"peer_sha256": asJSONText(s), "presentation_contexts": json.Number("128"),
				"sop_classes": json.Number(strconv.Itoa(i)), "decision": "deny",
				"rule": asJSONText(r.Rule), "cluster": asJSONText(s), "reason": "policy",
				"reject_reason": "called-ae-not-recognized", "respond": "reject", "rewrite_called_ae": asJSONText(r.RewriteCalled),
				"rewrite_calling_ae": asJSONText(r.RewriteCalling), "latency_us": json.Number("1500"), "dry_run": false}
			if s == "" {
				delete(want, "peer_sha256")
			}
			require.Equal(t, want, v, "%q", s)
		}
	}
}

// A record whose RQ was never decoded has no presentation_contexts or
// sop_classes; latency_us is 0 without a start or with a start after the
// event (a clock step), and dry_run says true when set.
func TestLineWithoutDecodedRQ(t *testing.T) {
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC).UnixNano()
	for _, c := range []struct {
		start   int64
		dryRun  bool
		latency string
	}{{0, false, "0"}, {at + 1000, true, "0"}, {at - 2500, false, "2"}} {
		r := Record{At: at, Start: c.start, Conn: 7, Source: "10.0.0.1:1", Decision: "deny", Reason: "not_dicom", DryRun: c.dryRun}
		keys, v := decodeLine(t, AppendLine(nil, &r))
		require.Equal(t, "time,conn,source,calling_ae,called_ae,peer_uri_san,peer_subject,decision,rule,cluster,reason,latency_us,dry_run",
			strings.Join(keys, ","))
		require.Equal(t, json.Number(c.latency), v["latency_us"], "start %d", c.start)
		require.Equal(t, c.dryRun, v["dry_run"])
		require.Equal(t, "not_dicom", v["reason"])
		require.Equal(t, json.Number("7"), v["conn"])
	}
}

// appendTimeUTC is the audit line's time member on its own, for the tests.
func appendTimeUTC(b []byte, t time.Time) []byte {
	w := make([]byte, len(b)+timeUTCMax)
	copy(w, b)
	return w[:putTimeUTC(w, len(b), t.UnixNano())]
}

// The time member agrees with time.Format over two centuries of dates, for
// any zone the time.Time had, and keeps the caller's bytes.
func TestTimeUTCMatchesTimeFormat(t *testing.T) {
	base := time.Date(1900, 1, 1, 0, 0, 0, 0, time.UTC)
	for d := 0; d < 200*366; d += 17 {
		tm := base.Add(time.Duration(d)*24*time.Hour + time.Duration(d%86400)*time.Second + time.Duration(d)*1001*time.Nanosecond)
		require.Equal(t, "x"+tm.Format("2006-01-02T15:04:05.000000Z"), string(appendTimeUTC([]byte("x"), tm)))
	}
	tm := time.Date(2024, 2, 29, 23, 59, 59, 999999999, time.FixedZone("X", 3600))
	require.Equal(t, "2024-02-29T22:59:59.999999Z", string(appendTimeUTC(nil, tm)))
	// before 1970 (a negative Unix time with a fraction)
	tm = time.Date(1969, 12, 31, 23, 59, 59, 500000000, time.UTC)
	require.Equal(t, "1969-12-31T23:59:59.500000Z", string(appendTimeUTC(nil, tm)))
}

// Client texts come back from a JSON reader as they were (each invalid
// UTF-8 byte as U+FFFD).
func TestJSONTextIsValidJSON(t *testing.T) {
	for _, s := range []string{"", "ANY-SCP", `A"B\C`, "tab\there\nnl\r\x00\x1f\x7f", "caf\xc3\xa9", "bad\xff\xfeutf8", "</script>"} {
		b := append(appendJSONText([]byte{'"'}, s), '"')
		var got string
		require.NoError(t, json.Unmarshal(b, &got), "%q -> %s", s, b)
		require.Equal(t, asJSONText(s), got, "%q -> %s", s, b)
	}
}

// putJSONText copies exactly its text for every length around its word
// sizes, escaping a byte that needs it wherever it sits, and writes nothing
// past the text.
func TestPutJSONTextCopiesExactly(t *testing.T) {
	src := "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
	for m := 0; m <= len(src); m++ {
		w := bytes.Repeat([]byte{'.'}, 200)
		require.Equal(t, 5+m, putJSONText(w, 5, src[:m]), "len %d", m)
		require.Equal(t, strings.Repeat(".", 5)+src[:m]+strings.Repeat(".", 195-m), string(w), "len %d", m)
		for pos := 0; pos < m; pos++ {
			for _, c := range []byte{'"', '\\', '\n', 0, 0x7f, 0xff} {
				text := src[:pos] + string(c) + src[pos+1:m]
				w := bytes.Repeat([]byte{'.'}, 200)
				n := putJSONText(w, 5, text)
				require.Equal(t, string(appendJSONText(nil, text)), string(w[5:n]), "%q", text)
			}
		}
	}
}

// The word-at-a-time tests agree with the byte table for every byte value
// at every position, and on random words.
func TestJSONPlainWordsMatchTable(t *testing.T) {
	base := uint64(0x4141414141414141) // "AAAAAAAA"
	for c := 0; c < 256; c++ {
		for pos := 0; pos < 8; pos++ {
			x := base&^(0xff<<(8*pos)) | uint64(c)<<(8*pos)
			require.Equal(t, jsonPlain[c], jsonPlain8(x), "jsonPlain8 with byte %#x at %d", c, pos)
			if pos < 4 {
				require.Equal(t, jsonPlain[c], jsonPlain4(uint32(x)), "jsonPlain4 with byte %#x at %d", c, pos)
			}
		}
	}
	r := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 200000; i++ {
		x := r.Uint64()
		if i%2 == 0 { // mostly printable words, where the carries matter
			x = x&0x3f3f3f3f3f3f3f3f | 0x2020202020202020
		}
		want := true
		for k := 0; k < 8; k++ {
			want = want && jsonPlain[byte(x>>(8*k))]
		}
		if got := jsonPlain8(x); got != want { // require only on a mismatch: 200,000 iterations
			require.Equal(t, want, got, "jsonPlain8(%#x)", x)
		}
	}
}

// A fragment is written as a whole block but advances by its own length;
// every fragment's text fits the block.
func TestPutFragAdvancesByItsLength(t *testing.T) {
	w := bytes.Repeat([]byte{'.'}, 100)
	n := putFrag(w, 3, fragCallingAE)
	n = putFrag(w, n, fragTime)
	require.Equal(t, `...","calling_ae":"{"time":"`, string(w[:n]))
	for _, f := range []string{fragTime, fragConn, fragSource, fragCallingAE, fragCalledAE, fragPeerURISAN, fragPeerSubject,
		fragPeerSHA256, fragContexts, fragSOPClasses, fragDecision, fragRule, fragCluster, fragReason, fragRejectReason,
		fragRespond, fragRewriteCalled, fragRewriteCalling, fragLatency, fragDryRunTrue, fragDryRunFalse} {
		text, ok := strings.CutSuffix(f, fragPad)
		require.True(t, ok, "%q does not end in fragPad", f)
		require.LessOrEqual(t, len(text), fragSize, "%q is longer than fragSize", text)
	}
}

// jsonPlain is exactly printable ASCII except '"' and '\\', and digitPairs
// is "00" to "99".
func TestTables(t *testing.T) {
	for c := 0; c < 256; c++ {
		require.Equal(t, c >= 0x20 && c < 0x7f && c != '"' && c != '\\', jsonPlain[c], "byte %#x", c)
	}
	for i := 0; i < 100; i++ {
		require.Equal(t, strconv.Itoa(100 + i)[1:], digitPairs[2*i:2*i+2])
	}
}

// putInt formats like strconv.AppendInt, on both sides of its 32-bit fast
// path, and writes nothing outside its digits.
func TestPutIntMatchesStrconv(t *testing.T) {
	for _, v := range []int64{0, 1, 9, 10, 99, 100, 12345, 1<<31 - 1, 1 << 31, 1<<32 - 1, 1 << 32, 1<<63 - 1, -1, -1 << 63} {
		w := []byte("x.........................")
		n := putInt(w, 1, v)
		require.Equal(t, "x"+strconv.FormatInt(v, 10), string(w[:n]))
		require.Empty(t, strings.Trim(string(w[n:]), "."), "putInt(%d) wrote past its digits", v)
	}
}

// Whatever the client sends as AE titles and the policy names its rules,
// the audit line stays one JSON object that gives the texts back.
func FuzzLine(f *testing.F) {
	f.Add("ANY-SCP", "ECHOSCU", "route-a", "pacs-a")
	f.Add(`A"B\C`, "tab\t\x00", "bad\xff", "caf\xc3\xa9")
	f.Fuzz(func(t *testing.T, called, calling, rule, cluster string) {
		at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
		r := Record{At: at.UnixNano(), Conn: 1, Source: calling + ":1", Decoded: true, Decision: "route", Rule: rule,
			Cluster: cluster, CalledAE: called, CallingAE: calling, RewriteCalled: called}
		_, v := decodeLine(t, AppendLine(nil, &r))
		for k, want := range map[string]string{"called_ae": called, "calling_ae": calling, "rule": rule,
			"cluster": cluster, "source": calling + ":1"} {
			require.Equal(t, asJSONText(want), v[k], k)
		}
		if called != "" {
			require.Equal(t, asJSONText(called), v["rewrite_called_ae"])
		}
	})
}
