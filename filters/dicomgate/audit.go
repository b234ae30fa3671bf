package main

import (
	"strconv"
	"time"
	"unicode/utf8"
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
	origin := c.firstData
	if origin == 0 {
		origin = c.start
	}
	lat := (e.at.UnixNano() - origin) / 1000
	if lat < 0 || origin == 0 {
		lat = 0
	}
	reasonName := ""
	if e.decision == "deny" && !e.dryRun {
		reasonName = reasonNames[e.reason]
	}

	w := jsonLine{b: append(p.audit[:0], `{"time":"`...)}
	w.b = appendTimeUTC(w.b, e.at)
	w.b = append(w.b, '"')
	w.num("conn", int64(connID))
	w.str("source", id.source)
	w.str("calling_ae", e.callingAE)
	w.str("called_ae", e.calledAE)
	w.str("peer_uri_san", id.conn.PeerURISAN)
	w.str("peer_subject", id.conn.PeerSubject)
	w.opt("peer_sha256", id.sha256)
	if e.identity != nil {
		w.num("presentation_contexts", int64(e.contexts))
		w.num("sop_classes", int64(e.sopClasses))
	}
	w.str("decision", e.decision)
	w.str("rule", e.rule)
	w.str("cluster", e.cluster)
	w.str("reason", reasonName)
	w.opt("reject_reason", e.rejectReason)
	w.opt("rewrite_called_ae", e.rewriteCalled)
	w.opt("rewrite_calling_ae", e.rewriteCalling)
	w.num("latency_us", lat)
	w.key("dry_run")
	w.b = strconv.AppendBool(w.b, e.dryRun)
	w.b = append(w.b, '}')
	p.audit = w.b
	logInfoBytes(w.b)
}

// jsonLine appends ,"key":value members. Its methods are not inlined on
// purpose: the audit line is built once per association, and inlined
// appends cost kilobytes of Wasm each.
type jsonLine struct{ b []byte }

//go:noinline
func (w *jsonLine) key(k string) {
	w.b = append(w.b, ',', '"')
	w.b = append(w.b, k...)
	w.b = append(w.b, '"', ':')
}

//go:noinline
func (w *jsonLine) str(k, v string) {
	w.key(k)
	w.b = appendJSONString(w.b, v)
}

// opt writes the member only when v is not empty.
//
//go:noinline
func (w *jsonLine) opt(k, v string) {
	if v != "" {
		w.str(k, v)
	}
}

//go:noinline
func (w *jsonLine) num(k string, v int64) {
	w.key(k)
	w.b = strconv.AppendInt(w.b, v, 10)
}

// appendTimeUTC appends t in UTC as RFC 3339 with microseconds, e.g.
// 2026-01-02T03:04:05.123456Z. Hand-made (civil date from the Unix day
// number): time.Format's layout engine costs tens of KB of Wasm.
func appendTimeUTC(b []byte, t time.Time) []byte {
	sec := t.Unix()
	days := sec / 86400
	rem := sec % 86400
	if rem < 0 {
		rem += 86400
		days--
	}
	y, m, d := civil(days)
	b = appendDigits(b, int(y), 4, '-')
	b = appendDigits(b, int(m), 2, '-')
	b = appendDigits(b, int(d), 2, 'T')
	b = appendDigits(b, int(rem/3600), 2, ':')
	b = appendDigits(b, int(rem/60%60), 2, ':')
	b = appendDigits(b, int(rem%60), 2, '.')
	return appendDigits(b, t.Nanosecond()/1000, 6, 'Z')
}

// civil converts days since 1970-01-01 to a proleptic Gregorian date
// (Howard Hinnant's days_from_civil inverse).
func civil(days int64) (y, m, d int64) {
	z := days + 719468
	era := z / 146097
	if z < 0 && z%146097 != 0 {
		era--
	}
	doe := z - era*146097
	yoe := (doe - doe/1460 + doe/36524 - doe/146096) / 365
	doy := doe - (365*yoe + yoe/4 - yoe/100)
	mp := (5*doy + 2) / 153
	d = doy - (153*mp+2)/5 + 1
	m = mp + 3
	if m > 12 {
		m -= 12
	}
	y = yoe + era*400
	if m <= 2 {
		y++
	}
	return y, m, d
}

// appendDigits appends v (non-negative) zero-padded to width digits, then sep.
//
//go:noinline
func appendDigits(b []byte, v, width int, sep byte) []byte {
	var tmp [20]byte
	i := len(tmp)
	for v > 0 || i > len(tmp)-width {
		i--
		tmp[i] = byte('0' + v%10)
		v /= 10
	}
	b = append(b, tmp[i:]...)
	return append(b, sep)
}

// appendJSONString appends s as a JSON string: quotes, backslashes and
// control characters are escaped, invalid UTF-8 becomes U+FFFD, so values
// that come from the client (AE titles) cannot break the line.
func appendJSONString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); {
		// Copy the run of bytes that need no escaping in one append.
		j := i
		for j < len(s) && s[j] >= 0x20 && s[j] < 0x7f && s[j] != '"' && s[j] != '\\' {
			j++
		}
		if j > i {
			b = append(b, s[i:j]...)
			i = j
			continue
		}
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
