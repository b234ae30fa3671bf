// Package audit writes the dicomgate filter's audit line: one JSON object per
// association, built by hand (no encoding/json, no reflection, no time
// formatter: the filter's module has a 3 MiB budget) and written with
// word-sized stores (linewriter.go), because in the guest every append and
// byte loop is a call into the host or a trip through Go's block dispatcher.
//
// Its input is a plain Record; the filter fills it and logs the bytes
// AppendLine returns. The format is documented in filters/dicomgate/README.md
// ("Logs and properties").
package audit

import (
	"strconv"
	"unicode/utf8"
)

// Record is one association's audit record. Texts are written JSON-escaped
// (client-supplied AE titles cannot break the line); empty optional texts
// are left out of the line.
type Record struct {
	// At is the time of the event in Unix nanoseconds (not a time.Time: a
	// time.Time stored where an interface can reach it links
	// time.Time.String and the whole time formatter, ~90 KB of module).
	At int64
	// Start is the origin of latency_us in Unix nanoseconds (the first byte,
	// else the accept); 0 writes latency 0.
	Start int64
	// Conn is Envoy's connection.id (the number every log line about the
	// connection carries).
	Conn   uint64
	Source string // source.address as Envoy gave it

	CallingAE, CalledAE     string
	PeerURISAN, PeerSubject string
	PeerSHA256              string // optional

	// Decoded: the RQ was decoded, so presentation_contexts and
	// sop_classes are written.
	Decoded              bool
	Contexts, SOPClasses int

	Decision     string // allow, deny, route (the policy's verdict), or none
	Rule         string
	Cluster      string
	Reason       string // the dicomgate_denied_total reason of a close
	RejectReason string // optional
	// Respond is how a policy deny was carried out: "close", or "reject"
	// (routed to the rejector); optional.
	Respond                       string
	RewriteCalled, RewriteCalling string // optional
	DryRun                        bool
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
// quote to the next key, followed by fragPad (see putFrag).
const (
	fragTime           = `{"time":"` + fragPad
	fragConn           = `","conn":` + fragPad
	fragSource         = `,"source":"` + fragPad
	fragCallingAE      = `","calling_ae":"` + fragPad
	fragCalledAE       = `","called_ae":"` + fragPad
	fragPeerURISAN     = `","peer_uri_san":"` + fragPad
	fragPeerSubject    = `","peer_subject":"` + fragPad
	fragPeerSHA256     = `,"peer_sha256":"` + fragPad
	fragContexts       = `,"presentation_contexts":` + fragPad
	fragSOPClasses     = `,"sop_classes":` + fragPad
	fragDecision       = `,"decision":"` + fragPad
	fragRule           = `","rule":"` + fragPad
	fragCluster        = `","cluster":"` + fragPad
	fragReason         = `","reason":"` + fragPad
	fragRejectReason   = `,"reject_reason":"` + fragPad
	fragRespond        = `,"respond":"` + fragPad
	fragRewriteCalled  = `,"rewrite_called_ae":"` + fragPad
	fragRewriteCalling = `,"rewrite_calling_ae":"` + fragPad
	fragLatency        = `,"latency_us":` + fragPad
	fragDryRunTrue     = `,"dry_run":true}` + fragPad
	fragDryRunFalse    = `,"dry_run":false}` + fragPad
)

// AppendLine appends the audit line of r to b. Members, in order: time,
// conn, source, calling_ae, called_ae, peer_uri_san, peer_subject,
// peer_sha256, presentation_contexts, sop_classes, decision, rule, cluster,
// reason, reject_reason, respond, rewrite_called_ae, rewrite_calling_ae,
// latency_us, dry_run.
//
// It reserves room for the whole line first and then writes at an offset
// with the word-sized writers of linewriter.go instead of appends and byte
// loops (why: linewriter.go; how much: bench/RESULTS.md §1.11).
func AppendLine(b []byte, r *Record) []byte {
	lat := (r.At - r.Start) / 1000
	if lat < 0 || r.Start == 0 {
		lat = 0
	}
	texts := len(r.Source) + len(r.CallingAE) + len(r.CalledAE) + len(r.PeerURISAN) +
		len(r.PeerSubject) + len(r.PeerSHA256) + len(r.Decision) + len(r.Rule) + len(r.Cluster) +
		len(r.Reason) + len(r.RejectReason) + len(r.Respond) + len(r.RewriteCalled) + len(r.RewriteCalling)
	n := len(b)
	if need := auditFixedMax + jsonEscapeMax*texts; cap(b)-n < need {
		nb := make([]byte, n, n+need)
		copy(nb, b)
		b = nb
	}
	w := b[:cap(b)]

	n = putFrag(w, n, fragTime)
	n = putTimeUTC(w, n, r.At)
	n = putFrag(w, n, fragConn)
	n = putUint(w, n, r.Conn)
	n = putFrag(w, n, fragSource)
	n = putJSONText(w, n, r.Source)
	n = putFrag(w, n, fragCallingAE)
	n = putJSONText(w, n, r.CallingAE)
	n = putFrag(w, n, fragCalledAE)
	n = putJSONText(w, n, r.CalledAE)
	n = putFrag(w, n, fragPeerURISAN)
	n = putJSONText(w, n, r.PeerURISAN)
	n = putFrag(w, n, fragPeerSubject)
	n = putJSONText(w, n, r.PeerSubject)
	w[n] = '"'
	n++
	if r.PeerSHA256 != "" {
		n = putOptional(w, n, fragPeerSHA256, r.PeerSHA256)
	}
	if r.Decoded {
		n = putFrag(w, n, fragContexts)
		n = putInt(w, n, int64(r.Contexts))
		n = putFrag(w, n, fragSOPClasses)
		n = putInt(w, n, int64(r.SOPClasses))
	}
	n = putFrag(w, n, fragDecision)
	n = putJSONText(w, n, r.Decision)
	n = putFrag(w, n, fragRule)
	n = putJSONText(w, n, r.Rule)
	n = putFrag(w, n, fragCluster)
	n = putJSONText(w, n, r.Cluster)
	n = putFrag(w, n, fragReason)
	n = putJSONText(w, n, r.Reason)
	w[n] = '"'
	n++
	if r.RejectReason != "" {
		n = putOptional(w, n, fragRejectReason, r.RejectReason)
	}
	if r.Respond != "" {
		n = putOptional(w, n, fragRespond, r.Respond)
	}
	if r.RewriteCalled != "" {
		n = putOptional(w, n, fragRewriteCalled, r.RewriteCalled)
	}
	if r.RewriteCalling != "" {
		n = putOptional(w, n, fragRewriteCalling, r.RewriteCalling)
	}
	n = putFrag(w, n, fragLatency)
	n = putInt(w, n, lat)
	if r.DryRun {
		n = putFrag(w, n, fragDryRunTrue)
	} else {
		n = putFrag(w, n, fragDryRunFalse)
	}
	return w[:n]
}

// putOptional writes the member whose key fragment is key with the value
// v (called only for a v that is not empty).
func putOptional(w []byte, n int, key string, v string) int {
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
// division loop (each loop iteration costs a dispatch in the guest). A
// constant, not a table built at start-up: an init function costs module
// bytes.
const digitPairs = "" +
	"0001020304050607080910111213141516171819" +
	"2021222324252627282930313233343536373839" +
	"4041424344454647484950515253545556575859" +
	"6061626364656667686970717273747576777879" +
	"8081828384858687888990919293949596979899"

// put2 writes v (< 100) as two digits into dst[0:2].
func put2(dst []byte, v uint32) {
	_ = dst[1]
	dst[0], dst[1] = digitPairs[2*v], digitPairs[2*v+1]
}

// timeUTCLen is the length of YYYY-MM-DDTHH:MM:SS.uuuuuuZ; timeUTCMax
// bounds it for years outside 0-9999.
const (
	timeUTCLen = 27
	timeUTCMax = 60
)

// putTimeUTC writes the time ns (Unix nanoseconds) in UTC as RFC 3339 with
// microseconds (2026-01-02T03:04:05.123456Z; hand-made from the Unix day
// number: time.Format's layout engine costs tens of KB of Wasm) at
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

// jsonPlain marks the bytes appendJSONText copies as they are: printable
// ASCII (0x20-0x7e) except '"' (0x22) and '\\' (0x5c): one table load per byte
// instead of four compares, which matters in the guest. Written out rather
// than built at start-up (an init function costs module bytes);
// TestJSONPlainTable checks it.
var jsonPlain = [256]bool{
	0x20: true, 0x21: true, 0x23: true, 0x24: true, 0x25: true, 0x26: true, 0x27: true, 0x28: true, 0x29: true, 0x2a: true,
	0x2b: true, 0x2c: true, 0x2d: true, 0x2e: true, 0x2f: true, 0x30: true, 0x31: true, 0x32: true, 0x33: true, 0x34: true,
	0x35: true, 0x36: true, 0x37: true, 0x38: true, 0x39: true, 0x3a: true, 0x3b: true, 0x3c: true, 0x3d: true, 0x3e: true,
	0x3f: true, 0x40: true, 0x41: true, 0x42: true, 0x43: true, 0x44: true, 0x45: true, 0x46: true, 0x47: true, 0x48: true,
	0x49: true, 0x4a: true, 0x4b: true, 0x4c: true, 0x4d: true, 0x4e: true, 0x4f: true, 0x50: true, 0x51: true, 0x52: true,
	0x53: true, 0x54: true, 0x55: true, 0x56: true, 0x57: true, 0x58: true, 0x59: true, 0x5a: true, 0x5b: true, 0x5d: true,
	0x5e: true, 0x5f: true, 0x60: true, 0x61: true, 0x62: true, 0x63: true, 0x64: true, 0x65: true, 0x66: true, 0x67: true,
	0x68: true, 0x69: true, 0x6a: true, 0x6b: true, 0x6c: true, 0x6d: true, 0x6e: true, 0x6f: true, 0x70: true, 0x71: true,
	0x72: true, 0x73: true, 0x74: true, 0x75: true, 0x76: true, 0x77: true, 0x78: true, 0x79: true, 0x7a: true, 0x7b: true,
	0x7c: true, 0x7d: true, 0x7e: true,
}

// appendJSONText appends s as the inside of a JSON string: quotes,
// backslashes and control characters are escaped, invalid UTF-8 becomes
// U+FFFD, so values that come from the client (AE titles) cannot break the
// line.
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
