package main

import (
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm"
)

// auditEntry is one association's audit record.
type auditEntry struct {
	at       time.Time
	identity *identity // nil when the RQ was never decoded

	decision     string // allow, deny, route (the policy's verdict)
	rule         string
	ruleIndex    int
	cluster      string
	reason       reason // for deny: the dicomgate_denied_total reason
	rejectReason string
	dryRun       bool

	calledAE, callingAE           string
	rewriteCalled, rewriteCalling string
	contexts, sopClasses          int
}

// logAudit writes the association's audit line at info level: one JSON
// object per association, built by hand (no encoding/json, no reflection).
// Fields: time, conn, source, calling_ae, called_ae, peer_uri_san,
// peer_subject, peer_sha256, presentation_contexts, sop_classes, decision,
// rule, cluster, reason, reject_reason, rewrite_called_ae,
// rewrite_calling_ae, latency_us, dry_run.
func (p *plugin) logAudit(c *conn, e *auditEntry) {
	b := p.audit[:0]
	b = append(b, `{"time":"`...)
	b = appendTimeUTC(b, e.at)
	b = append(b, '"')
	var id identity
	if e.identity != nil {
		id = *e.identity
	} else {
		// Closed before an RQ was decoded: still say who it was (a rare
		// path, so the two extra host calls do not matter).
		id = readSource()
	}
	connID := uint64(c.id)
	if id.hasID {
		connID = id.connID
	}
	b = append(b, `,"conn":`...)
	b = strconv.AppendUint(b, connID, 10)
	b = appendField(b, "source", id.source)
	b = appendField(b, "calling_ae", e.callingAE)
	b = appendField(b, "called_ae", e.calledAE)
	b = appendField(b, "peer_uri_san", id.conn.PeerURISAN)
	b = appendField(b, "peer_subject", id.conn.PeerSubject)
	if id.sha256 != "" {
		b = appendField(b, "peer_sha256", id.sha256)
	}
	if e.identity != nil {
		b = append(b, `,"presentation_contexts":`...)
		b = strconv.AppendInt(b, int64(e.contexts), 10)
		b = append(b, `,"sop_classes":`...)
		b = strconv.AppendInt(b, int64(e.sopClasses), 10)
	}
	b = appendField(b, "decision", e.decision)
	b = appendField(b, "rule", e.rule)
	b = appendField(b, "cluster", e.cluster)
	reasonName := ""
	if e.decision == "deny" && !e.dryRun {
		reasonName = reasonNames[e.reason]
	}
	b = appendField(b, "reason", reasonName)
	if e.rejectReason != "" {
		b = appendField(b, "reject_reason", e.rejectReason)
	}
	if e.rewriteCalled != "" {
		b = appendField(b, "rewrite_called_ae", e.rewriteCalled)
	}
	if e.rewriteCalling != "" {
		b = appendField(b, "rewrite_calling_ae", e.rewriteCalling)
	}
	origin := c.firstData
	if origin.IsZero() {
		origin = c.start
	}
	lat := e.at.Sub(origin).Microseconds()
	if lat < 0 || origin.IsZero() {
		lat = 0
	}
	b = append(b, `,"latency_us":`...)
	b = strconv.AppendInt(b, lat, 10)
	b = append(b, `,"dry_run":`...)
	b = strconv.AppendBool(b, e.dryRun)
	b = append(b, '}')
	p.audit = b
	proxywasm.LogInfo(string(b))
}

// appendTimeUTC appends t in UTC as RFC 3339 with microseconds,
// e.g. 2026-01-02T03:04:05.123456Z (hand-made: time.Format's layout engine
// costs ~40 KB of Wasm).
func appendTimeUTC(b []byte, t time.Time) []byte {
	t = t.UTC()
	y, mo, d := t.Date()
	h, mi, s := t.Clock()
	b = appendDigits(b, y, 4)
	b = append(b, '-')
	b = appendDigits(b, int(mo), 2)
	b = append(b, '-')
	b = appendDigits(b, d, 2)
	b = append(b, 'T')
	b = appendDigits(b, h, 2)
	b = append(b, ':')
	b = appendDigits(b, mi, 2)
	b = append(b, ':')
	b = appendDigits(b, s, 2)
	b = append(b, '.')
	b = appendDigits(b, t.Nanosecond()/1000, 6)
	return append(b, 'Z')
}

// appendDigits appends v (non-negative) zero-padded to width digits.
func appendDigits(b []byte, v, width int) []byte {
	var tmp [20]byte
	i := len(tmp)
	for v > 0 || i > len(tmp)-width {
		i--
		tmp[i] = byte('0' + v%10)
		v /= 10
	}
	return append(b, tmp[i:]...)
}

func appendField(b []byte, key, value string) []byte {
	b = append(b, ',', '"')
	b = append(b, key...)
	b = append(b, '"', ':')
	return appendJSONString(b, value)
}

// appendJSONString appends s as a JSON string: quotes, backslashes and
// control characters are escaped, invalid UTF-8 becomes U+FFFD, so values
// that come from the client (AE titles) cannot break the line.
func appendJSONString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				b = append(b, '\\', c)
			case c == '\n':
				b = append(b, '\\', 'n')
			case c == '\r':
				b = append(b, '\\', 'r')
			case c == '\t':
				b = append(b, '\\', 't')
			case c < 0x20 || c == 0x7f:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&15])
			default:
				b = append(b, c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, `\ufffd`...)
		} else {
			b = append(b, s[i:i+size]...)
		}
		i += size
	}
	return append(b, '"')
}
