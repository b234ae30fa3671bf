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
	p.audit = appendAuditLine(p.audit[:0], c, e)
	logInfoBytes(p.audit)
}

// appendAuditLine appends the audit line of e (see logAudit) to b.
func appendAuditLine(b []byte, c *conn, e *auditEntry) []byte {
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

	// Straight-line appends of literal fragments (each joining one value's
	// closing quote to the next key): in the guest every call and every
	// append costs, and this line is built once per association.
	b = append(b, `{"time":"`...)
	b = appendTimeUTC(b, e.at)
	b = append(b, `","conn":`...)
	b = appendInt(b, int64(connID))
	b = append(b, `,"source":"`...)
	b = appendJSONText(b, id.source)
	b = append(b, `","calling_ae":"`...)
	b = appendJSONText(b, e.callingAE)
	b = append(b, `","called_ae":"`...)
	b = appendJSONText(b, e.calledAE)
	b = append(b, `","peer_uri_san":"`...)
	b = appendJSONText(b, id.conn.PeerURISAN)
	b = append(b, `","peer_subject":"`...)
	b = appendJSONText(b, id.conn.PeerSubject)
	b = append(b, '"')
	b = appendOptional(b, `,"peer_sha256":"`, id.sha256)
	if e.identity != nil {
		b = append(b, `,"presentation_contexts":`...)
		b = appendInt(b, int64(e.contexts))
		b = append(b, `,"sop_classes":`...)
		b = appendInt(b, int64(e.sopClasses))
	}
	b = append(b, `,"decision":"`...)
	b = appendJSONText(b, e.decision)
	b = append(b, `","rule":"`...)
	b = appendJSONText(b, e.rule)
	b = append(b, `","cluster":"`...)
	b = appendJSONText(b, e.cluster)
	b = append(b, `","reason":"`...)
	b = appendJSONText(b, reasonName)
	b = append(b, '"')
	b = appendOptional(b, `,"reject_reason":"`, e.rejectReason)
	b = appendOptional(b, `,"rewrite_called_ae":"`, e.rewriteCalled)
	b = appendOptional(b, `,"rewrite_calling_ae":"`, e.rewriteCalling)
	b = append(b, `,"latency_us":`...)
	b = appendInt(b, lat)
	if e.dryRun {
		b = append(b, `,"dry_run":true}`...)
	} else {
		b = append(b, `,"dry_run":false}`...)
	}
	return b
}

// appendOptional appends the member whose key fragment is keyQuote (e.g.
// `,"peer_sha256":"`) only when v is not empty.
//
//go:noinline
func appendOptional(b []byte, keyQuote, v string) []byte {
	if v == "" {
		return b
	}
	b = append(b, keyQuote...)
	b = appendJSONText(b, v)
	return append(b, '"')
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
	if y < 0 || y > 9999 {
		b = appendDigits(b, int(y), 4, '-')
		b = appendDigits(b, int(m), 2, '-')
		b = appendDigits(b, int(d), 2, 'T')
		b = appendDigits(b, int(rem/3600), 2, ':')
		b = appendDigits(b, int(rem/60%60), 2, ':')
		b = appendDigits(b, int(rem%60), 2, '.')
		return appendDigits(b, t.Nanosecond()/1000, 6, 'Z')
	}
	// Fixed layout YYYY-MM-DDTHH:MM:SS.uuuuuuZ filled in place, one append.
	// 32-bit arithmetic throughout (see appendInt).
	buf := [27]byte{4: '-', 7: '-', 10: 'T', 13: ':', 16: ':', 19: '.', 26: 'Z'}
	r := uint32(rem)
	putDigits(buf[0:4], uint32(y))
	putDigits(buf[5:7], uint32(m))
	putDigits(buf[8:10], uint32(d))
	putDigits(buf[11:13], r/3600)
	putDigits(buf[14:16], r/60%60)
	putDigits(buf[17:19], r%60)
	putDigits(buf[20:26], uint32(t.Nanosecond())/1000)
	return append(b, buf[:]...)
}

// appendInt appends v in decimal, like strconv.AppendInt(b, v, 10). Values
// that fit in a uint32 are formatted with 32-bit arithmetic: Go's wasm
// backend turns a 32-bit division by a constant into a multiplication, but
// a 64-bit one into a real i64.div_u (Wasm has no 64×64→128-bit multiply),
// which is what strconv uses on 64-bit targets.
func appendInt(b []byte, v int64) []byte {
	if v < 0 || v > 1<<32-1 {
		return strconv.AppendInt(b, v, 10)
	}
	u := uint32(v)
	var tmp [10]byte
	i := len(tmp)
	for u >= 10 {
		i--
		tmp[i] = byte('0' + u%10)
		u /= 10
	}
	i--
	tmp[i] = byte('0' + u)
	return append(b, tmp[i:]...)
}

// putDigits writes v (0 ≤ v < 10^len(dst)) zero-padded into dst.
func putDigits(dst []byte, v uint32) {
	for i := len(dst) - 1; i >= 0; i-- {
		dst[i] = byte('0' + v%10)
		v /= 10
	}
}

// civil converts days since 1970-01-01 to a proleptic Gregorian date
// (Howard Hinnant's days_from_civil inverse).
func civil(days int64) (y, m, d int64) {
	z := days + 719468
	if z >= 0 && z < 1<<31 {
		return civil32(uint32(z))
	}
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

// civil32 is civil for z = days + 719468 in [0, 2^31) (the years 0 to
// ~5.8 million) in 32-bit arithmetic (see appendInt).
func civil32(z uint32) (y, m, d int64) {
	era := z / 146097
	doe := z - era*146097
	yoe := (doe - doe/1460 + doe/36524 - doe/146096) / 365
	doy := doe - (365*yoe + yoe/4 - yoe/100)
	mp := (5*doy + 2) / 153
	d = int64(doy - (153*mp+2)/5 + 1)
	m = int64(mp + 3)
	if m > 12 {
		m -= 12
	}
	y = int64(yoe) + int64(era)*400
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
	b = append(b, '"')
	b = appendJSONText(b, s)
	return append(b, '"')
}

// jsonPlain marks the bytes appendJSONText copies as they are: printable
// ASCII except '"' and '\\' (one table load per byte instead of four
// compares, which matters in the guest).
var jsonPlain = func() (t [256]bool) {
	for c := 0x20; c < 0x7f; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// appendJSONText is appendJSONString without the quotes.
func appendJSONText(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	for i := 0; i < len(s); {
		// Copy the run of bytes that need no escaping in one append.
		j := i
		for j < len(s) && jsonPlain[s[j]] {
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
	return b
}
