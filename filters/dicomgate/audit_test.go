package main

import (
	"bytes"
	"encoding/json"
	"io"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
	"time"
)

// auditKeys is the audit line's member order when every optional member is
// present (logAudit's doc comment).
var auditKeys = []string{"time", "conn", "source", "calling_ae", "called_ae", "peer_uri_san", "peer_subject",
	"peer_sha256", "presentation_contexts", "sop_classes", "decision", "rule", "cluster", "reason",
	"reject_reason", "respond", "rewrite_called_ae", "rewrite_calling_ae", "latency_us", "dry_run"}

// decodeAuditLine parses line as one JSON object and returns its members in
// order, failing the test on anything else.
func decodeAuditLine(t *testing.T, line []byte) ([]string, map[string]any) {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.UseNumber()
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		t.Fatalf("%s: not a JSON object: %v %v", line, tok, err)
	}
	var keys []string
	vals := map[string]any{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			t.Fatalf("%s: %v", line, err)
		}
		k := tok.(string)
		var v any
		if err := dec.Decode(&v); err != nil {
			t.Fatalf("%s: member %q: %v", line, k, err)
		}
		keys = append(keys, k)
		vals[k] = v
	}
	if tok, err := dec.Token(); err != nil || tok != json.Delim('}') {
		t.Fatalf("%s: unterminated object: %v %v", line, tok, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		t.Fatalf("%s: bytes after the object", line)
	}
	return keys, vals
}

// asJSONText is what a JSON reader gets back for s: each invalid UTF-8 byte
// becomes U+FFFD.
func asJSONText(s string) string { return string([]rune(s)) }

// The audit line is one valid JSON object with its members in the documented
// order, whatever bytes the client put in its AE titles and however much room
// the caller's buffer had; bytes before it are kept.
func TestAuditLineMembersAndEscaping(t *testing.T) {
	hostile := []string{"", "ANY-SCP", `A"B\C`, "tab\there\nnl\r\x00\x1f\x7f", "caf\xc3\xa9", "bad\xff\xfeutf8",
		"</script>", "\u2028\u2029", strings.Repeat("\x01", 64), strings.Repeat("é", 100), "0123456", "01234567", "012345678"}
	at := time.Date(2026, 1, 2, 3, 4, 5, 6000, time.UTC)
	for i, s := range hostile {
		id := identity{source: "10.1.2.3:" + s, connID: 1 << 40, hasID: true, sha256: s}
		id.conn.PeerURISAN, id.conn.PeerSubject = "spiffe://x/"+s, "CN="+s
		e := auditEntry{at: at.UnixNano(), identity: &id, decision: "deny", rule: "r" + s, ruleIndex: 3, cluster: s,
			reason: reasonPolicy, rejectReason: "called-ae-not-recognized", respond: "reject", calledAE: s, callingAE: strings.ToLower(s),
			rewriteCalled: s + "X", rewriteCalling: "Y" + s, contexts: 128, sopClasses: i}
		c := &conn{id: 7, start: at.UnixNano() - 1_500_000}
		for _, prefix := range [][]byte{nil, []byte("prefix"), make([]byte, 3, 2000)} {
			keep := string(prefix)
			line := appendAuditLine(prefix, c, &e)
			if !strings.HasPrefix(string(line), keep) {
				t.Fatalf("%q: the caller's bytes were not kept", s)
			}
			keys, v := decodeAuditLine(t, line[len(keep):])
			wantKeys := strings.Join(auditKeys, ",")
			if s == "" { // an empty optional member is left out
				wantKeys = strings.Replace(wantKeys, ",peer_sha256", "", 1)
			}
			if strings.Join(keys, ",") != wantKeys {
				t.Fatalf("%q: members %v; want %s", s, keys, wantKeys)
			}
			want := map[string]any{"time": "2026-01-02T03:04:05.000006Z", "conn": json.Number("1099511627776"),
				"source": asJSONText(id.source), "calling_ae": asJSONText(e.callingAE), "called_ae": asJSONText(s),
				"peer_uri_san": asJSONText(id.conn.PeerURISAN), "peer_subject": asJSONText(id.conn.PeerSubject),
				"peer_sha256": asJSONText(s), "presentation_contexts": json.Number("128"),
				"sop_classes": json.Number(strconv.Itoa(i)), "decision": "deny",
				"rule": asJSONText(e.rule), "cluster": asJSONText(s), "reason": "policy",
				"reject_reason": "called-ae-not-recognized", "respond": "reject", "rewrite_called_ae": asJSONText(e.rewriteCalled),
				"rewrite_calling_ae": asJSONText(e.rewriteCalling), "latency_us": json.Number("1500"), "dry_run": false}
			if s == "" {
				delete(want, "peer_sha256")
			}
			for k, w := range want {
				if v[k] != w {
					t.Errorf("%q: %s = %#v; want %#v", s, k, v[k], w)
				}
			}
		}
	}
}

// putJSONText copies exactly its text for every length around its word
// sizes, escaping a byte that needs it wherever it sits, and writes nothing
// past the text.
func TestPutJSONTextCopiesExactly(t *testing.T) {
	src := "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
	for m := 0; m <= len(src); m++ {
		w := bytes.Repeat([]byte{'.'}, 200)
		if n := putJSONText(w, 5, src[:m]); n != 5+m {
			t.Fatalf("len %d: putJSONText returned %d", m, n)
		}
		if want := strings.Repeat(".", 5) + src[:m] + strings.Repeat(".", 195-m); string(w) != want {
			t.Fatalf("len %d: %q; want %q", m, w, want)
		}
		for pos := 0; pos < m; pos++ {
			for _, c := range []byte{'"', '\\', '\n', 0, 0x7f, 0xff} {
				text := src[:pos] + string(c) + src[pos+1:m]
				w := bytes.Repeat([]byte{'.'}, 200)
				n := putJSONText(w, 5, text)
				if got, want := string(w[5:n]), string(appendJSONText(nil, text)); got != want {
					t.Fatalf("%q: %q; want %q", text, got, want)
				}
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
			if got := jsonPlain8(x); got != jsonPlain[c] {
				t.Fatalf("jsonPlain8 with byte %#x at %d = %v", c, pos, got)
			}
			if pos < 4 {
				if got := jsonPlain4(uint32(x)); got != jsonPlain[c] {
					t.Fatalf("jsonPlain4 with byte %#x at %d = %v", c, pos, got)
				}
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
		if got := jsonPlain8(x); got != want {
			t.Fatalf("jsonPlain8(%#x) = %v; want %v", x, got, want)
		}
	}
}

// A fragment is written as a whole block but advances by its own length.
func TestPutFragAdvancesByItsLength(t *testing.T) {
	w := bytes.Repeat([]byte{'.'}, 100)
	n := putFrag(w, 3, &fragCallingAE)
	n = putFrag(w, n, &fragTime)
	if got, want := string(w[:n]), `...","calling_ae":"{"time":"`; got != want {
		t.Fatalf("%q; want %q", got, want)
	}
}

// Whatever the client sends as AE titles and the policy names its rules,
// the audit line stays one JSON object that gives the texts back.
func FuzzAuditLine(f *testing.F) {
	f.Add("ANY-SCP", "ECHOSCU", "route-a", "pacs-a")
	f.Add(`A"B\C`, "tab\t\x00", "bad\xff", "caf\xc3\xa9")
	f.Fuzz(func(t *testing.T, called, calling, rule, cluster string) {
		at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
		id := identity{source: calling + ":1"}
		e := auditEntry{at: at.UnixNano(), identity: &id, decision: "route", rule: rule, cluster: cluster, calledAE: called,
			callingAE: calling, rewriteCalled: called}
		c := &conn{id: 1}
		_, v := decodeAuditLine(t, appendAuditLine(nil, c, &e))
		for k, want := range map[string]string{"called_ae": called, "calling_ae": calling, "rule": rule,
			"cluster": cluster, "source": calling + ":1"} {
			if v[k] != asJSONText(want) {
				t.Fatalf("%s = %#v; want %q", k, v[k], asJSONText(want))
			}
		}
		if called != "" && v["rewrite_called_ae"] != asJSONText(called) {
			t.Fatalf("rewrite_called_ae = %#v", v["rewrite_called_ae"])
		}
	})
}
