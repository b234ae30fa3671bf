package main

import (
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/dicomgate/dicomgate/filters/dicomgate/internal/abi"
)

// auditEntry is one association's audit record.
type auditEntry struct {
	// at is the wall-clock time of the event in Unix nanoseconds (not a
	// time.Time: the entry lives in the plugin, and a time.Time field there
	// would link time.Time.String and the whole time formatter, ~90 KB).
	at       int64
	identity *identity // nil when the RQ was never decoded

	decision     string // allow, deny, route (the policy's verdict)
	rule         string
	ruleIndex    int
	cluster      string
	reason       reason // for deny: the dicomgate_denied_total reason
	rejectReason string
	// respond is how a policy deny was carried out: "close" or "reject"
	// (routed to the rejector, which answers the A-ASSOCIATE-RJ); "" for
	// every other line.
	respond string
	dryRun  bool

	calledAE, callingAE           string
	rewriteCalled, rewriteCalling string
	contexts, sopClasses          int
}

// logAudit writes the association's audit line at info level: one JSON
// object per association, built by hand (no encoding/json, no reflection).
// Fields: time, conn, source, calling_ae, called_ae, peer_uri_san,
// peer_subject, peer_sha256, presentation_contexts, sop_classes, decision,
// rule, cluster, reason, reject_reason, respond, rewrite_called_ae,
// rewrite_calling_ae, latency_us, dry_run.
func (p *plugin) logAudit(c *conn, e *auditEntry) {
	p.audit = appendAuditLine(p.audit[:0], c, e)
	abi.LogInfo(p.audit)
}

// auditFixedMax bounds the bytes of an audit line that are not escaped
// texts: the keys and punctuation (~450 bytes), the time (27 bytes, or up to
// 60 for years outside 0-9999), four integers of at most 20 digits, and the
// block the last fragment is written as (fragSize).
const auditFixedMax = 640

// jsonEscapeMax is the most bytes appendJSONText writes per input byte
// (a control character becomes \u00XX, an invalid byte \ufffd).
const jsonEscapeMax = 6

// The audit line's constant fragments, each joining one value's closing
// quote to the next key (see linewriter.go).
var (
	fragTime           = newFrag(`{"time":"`)
	fragConn           = newFrag(`","conn":`)
	fragSource         = newFrag(`,"source":"`)
	fragCallingAE      = newFrag(`","calling_ae":"`)
	fragCalledAE       = newFrag(`","called_ae":"`)
	fragPeerURISAN     = newFrag(`","peer_uri_san":"`)
	fragPeerSubject    = newFrag(`","peer_subject":"`)
	fragPeerSHA256     = newFrag(`,"peer_sha256":"`)
	fragContexts       = newFrag(`,"presentation_contexts":`)
	fragSOPClasses     = newFrag(`,"sop_classes":`)
	fragDecision       = newFrag(`,"decision":"`)
	fragRule           = newFrag(`","rule":"`)
	fragCluster        = newFrag(`","cluster":"`)
	fragReason         = newFrag(`","reason":"`)
	fragRejectReason   = newFrag(`,"reject_reason":"`)
	fragRespond        = newFrag(`,"respond":"`)
	fragRewriteCalled  = newFrag(`,"rewrite_called_ae":"`)
	fragRewriteCalling = newFrag(`,"rewrite_calling_ae":"`)
	fragLatency        = newFrag(`,"latency_us":`)
	fragDryRunTrue     = newFrag(`,"dry_run":true}`)
	fragDryRunFalse    = newFrag(`,"dry_run":false}`)
)

// appendAuditLine appends the audit line of e (see logAudit) to b.
//
// It reserves room for the whole line first and then writes at an offset
// with the word-sized writers of linewriter.go: built with appends and
// byte loops, this line cost ~2 µs in the guest.
func appendAuditLine(b []byte, c *conn, e *auditEntry) []byte {
	id := e.identity
	if id == nil {
		// Closed before an RQ was decoded: still say who it was (a rare
		// path, so the two extra host calls do not matter).
		var src identity
		readSource(&src, false)
		id = &src
	}
	// The same number the connection's log lines carry (conn.connID),
	// without a host call of its own.
	connID := id.connID
	if !id.hasID {
		connID = c.envoyConnID
		if connID == 0 {
			connID = uint64(c.id)
		}
	}
	origin := c.firstData
	if origin == 0 {
		origin = c.start
	}
	lat := (e.at - origin) / 1000
	if lat < 0 || origin == 0 {
		lat = 0
	}
	reasonName := ""
	if e.decision == "deny" && !e.dryRun {
		reasonName = reasonNames[e.reason]
	}

	texts := len(id.source) + len(e.callingAE) + len(e.calledAE) + len(id.conn.PeerURISAN) +
		len(id.conn.PeerSubject) + len(id.sha256) + len(e.decision) + len(e.rule) + len(e.cluster) +
		len(reasonName) + len(e.rejectReason) + len(e.respond) + len(e.rewriteCalled) + len(e.rewriteCalling)
	n := len(b)
	if need := auditFixedMax + jsonEscapeMax*texts; cap(b)-n < need {
		nb := make([]byte, n, n+need)
		copy(nb, b)
		b = nb
	}
	w := b[:cap(b)]

	n = putFrag(w, n, &fragTime)
	n = putTimeUTC(w, n, e.at)
	n = putFrag(w, n, &fragConn)
	n = putUint(w, n, connID)
	n = putFrag(w, n, &fragSource)
	n = putJSONText(w, n, id.source)
	n = putFrag(w, n, &fragCallingAE)
	n = putJSONText(w, n, e.callingAE)
	n = putFrag(w, n, &fragCalledAE)
	n = putJSONText(w, n, e.calledAE)
	n = putFrag(w, n, &fragPeerURISAN)
	n = putJSONText(w, n, id.conn.PeerURISAN)
	n = putFrag(w, n, &fragPeerSubject)
	n = putJSONText(w, n, id.conn.PeerSubject)
	w[n] = '"'
	n++
	if id.sha256 != "" {
		n = putOptional(w, n, &fragPeerSHA256, id.sha256)
	}
	if e.identity != nil {
		n = putFrag(w, n, &fragContexts)
		n = putInt(w, n, int64(e.contexts))
		n = putFrag(w, n, &fragSOPClasses)
		n = putInt(w, n, int64(e.sopClasses))
	}
	n = putFrag(w, n, &fragDecision)
	n = putJSONText(w, n, e.decision)
	n = putFrag(w, n, &fragRule)
	n = putJSONText(w, n, e.rule)
	n = putFrag(w, n, &fragCluster)
	n = putJSONText(w, n, e.cluster)
	n = putFrag(w, n, &fragReason)
	n = putJSONText(w, n, reasonName)
	w[n] = '"'
	n++
	if e.rejectReason != "" {
		n = putOptional(w, n, &fragRejectReason, e.rejectReason)
	}
	if e.respond != "" {
		n = putOptional(w, n, &fragRespond, e.respond)
	}
	if e.rewriteCalled != "" {
		n = putOptional(w, n, &fragRewriteCalled, e.rewriteCalled)
	}
	if e.rewriteCalling != "" {
		n = putOptional(w, n, &fragRewriteCalling, e.rewriteCalling)
	}
	n = putFrag(w, n, &fragLatency)
	n = putInt(w, n, lat)
	if e.dryRun {
		n = putFrag(w, n, &fragDryRunTrue)
	} else {
		n = putFrag(w, n, &fragDryRunFalse)
	}
	return w[:n]
}

// putOptional writes the member whose key fragment is key with the value
// v (called only for a v that is not empty).
func putOptional(w []byte, n int, key *frag, v string) int {
	n = putFrag(w, n, key)
	n = putJSONText(w, n, v)
	w[n] = '"'
	return n + 1
}

// putInt writes v in decimal, like strconv.AppendInt.
func putInt(w []byte, n int, v int64) int {
	if v < 0 {
		return len(strconv.AppendInt(w[:n], v, 10))
	}
	return putUint(w, n, uint64(v))
}

// putUint writes v in decimal, like strconv.AppendUint. Values that fit in
// a uint32 are formatted with 32-bit arithmetic, straight into w: Go's wasm
// backend turns a 32-bit division by a constant into a multiplication, but
// a 64-bit one into a real i64.div_u (Wasm has no 64×64→128-bit multiply),
// which is what strconv uses on 64-bit targets.
func putUint(w []byte, n int, v uint64) int {
	if v > 1<<32-1 {
		return len(strconv.AppendUint(w[:n], v, 10))
	}
	u := uint32(v)
	if u < 100 { // counts and short latencies: no loop
		if u < 10 {
			w[n] = byte('0' + u)
			return n + 1
		}
		put2(w[n:n+2], u)
		return n + 2
	}
	digits := 3
	for t := u; t >= 1000; t /= 10 {
		digits++
	}
	putDigits(w[n:n+digits], u)
	return n + digits
}

// digitPairs is "00" to "99": two digits per table load instead of a
// division loop (each loop iteration costs a dispatch in the guest).
var digitPairs = func() (t [200]byte) {
	for i := range 100 {
		t[2*i], t[2*i+1] = byte('0'+i/10), byte('0'+i%10)
	}
	return t
}()

// put2 writes v (< 100) as two digits into dst[0:2].
func put2(dst []byte, v uint32) {
	_ = dst[1]
	dst[0], dst[1] = digitPairs[2*v], digitPairs[2*v+1]
}

// appendTimeUTC appends t in UTC as RFC 3339 with microseconds, e.g.
// 2026-01-02T03:04:05.123456Z. Hand-made (civil date from the Unix day
// number): time.Format's layout engine costs tens of KB of Wasm.
func appendTimeUTC(b []byte, t time.Time) []byte {
	return appendUnixUTC(b, t.Unix(), int64(t.Nanosecond()))
}

// appendUnixUTC is appendTimeUTC for sec seconds and frac nanoseconds
// (0 ≤ frac < 1e9) since the Unix epoch.
func appendUnixUTC(b []byte, sec, frac int64) []byte {
	n := len(b)
	if cap(b)-n < timeUTCMax {
		nb := make([]byte, n, n+timeUTCMax)
		copy(nb, b)
		b = nb
	}
	return b[:putUnixUTC(b[:cap(b)], n, sec, frac)]
}

// timeUTCLen is the length of YYYY-MM-DDTHH:MM:SS.uuuuuuZ; timeUTCMax
// bounds it for years outside 0-9999.
const (
	timeUTCLen = 27
	timeUTCMax = 60
)

// putTimeUTC writes the time ns (Unix nanoseconds) like appendTimeUTC at
// w[n:] (which must have room for timeUTCMax bytes) and returns the new end.
func putTimeUTC(w []byte, n int, ns int64) int {
	sec, frac := ns/1e9, ns%1e9
	if frac < 0 {
		sec, frac = sec-1, frac+1e9
	}
	return putUnixUTC(w, n, sec, frac)
}

// putUnixUTC is putTimeUTC for sec seconds and frac nanoseconds.
func putUnixUTC(w []byte, n int, sec, frac int64) int {
	days := sec / 86400
	rem := sec % 86400
	if rem < 0 {
		rem += 86400
		days--
	}
	y, m, d := civil(days)
	if y < 0 || y > 9999 {
		b := w[:n]
		b = appendDigits(b, int(y), 4, '-')
		b = appendDigits(b, int(m), 2, '-')
		b = appendDigits(b, int(d), 2, 'T')
		b = appendDigits(b, int(rem/3600), 2, ':')
		b = appendDigits(b, int(rem/60%60), 2, ':')
		b = appendDigits(b, int(rem%60), 2, '.')
		return len(appendDigits(b, int(frac/1000), 6, 'Z'))
	}
	// Fixed layout YYYY-MM-DDTHH:MM:SS.uuuuuuZ filled in place.
	// 32-bit arithmetic throughout (see putUint).
	buf := w[n : n+timeUTCLen]
	r, yy, us := uint32(rem), uint32(y), uint32(frac)/1000
	put2(buf[0:2], yy/100)
	put2(buf[2:4], yy%100)
	buf[4] = '-'
	put2(buf[5:7], uint32(m))
	buf[7] = '-'
	put2(buf[8:10], uint32(d))
	buf[10] = 'T'
	put2(buf[11:13], r/3600)
	buf[13] = ':'
	put2(buf[14:16], r/60%60)
	buf[16] = ':'
	put2(buf[17:19], r%60)
	buf[19] = '.'
	put2(buf[20:22], us/10000)
	put2(buf[22:24], us/100%100)
	put2(buf[24:26], us%100)
	buf[26] = 'Z'
	return n + timeUTCLen
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
// ~5.8 million) in 32-bit arithmetic (see putUint).
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
