package main

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/dicomgate/dicomgate/sdk/policy"
)

// lintPolicy returns warnings about policy values that are valid JSON
// strings but can never match what Envoy reports. The policy engine compares
// peerSubjects byte for byte with connection.subject_peer_certificate, so a
// subject written in another notation silently never matches (see
// docs/peer-identity.md). Errors are left to policy.Load; lintPolicy
// ignores what it cannot parse.
func lintPolicy(js []byte) []policy.Diagnostic {
	var p struct {
		MaxAssociateRQBytes *uint64 `json:"maxAssociateRQBytes"`
		Rules               []struct {
			Match struct {
				PeerSubjects []json.RawMessage `json:"peerSubjects"`
			} `json:"match"`
		} `json:"rules"`
	}
	if json.Unmarshal(js, &p) != nil {
		return nil
	}
	var out []policy.Diagnostic
	if n := p.MaxAssociateRQBytes; n != nil && *n > envoyDefaultBufferLimit {
		out = append(out, policy.Diagnostic{
			Path: "maxAssociateRQBytes",
			Message: fmt.Sprintf("%d is more than Envoy's default per_connection_buffer_limit_bytes (%d): while the filter waits for "+
				"the RQ, Envoy stops reading at that limit, so a larger RQ stalls until inspectTimeoutMs and is closed as timeout "+
				"(max_early_data_bytes does not matter); raise the listener's per_connection_buffer_limit_bytes too, or keep "+
				"maxAssociateRQBytes at most %d", *n, envoyDefaultBufferLimit, envoyDefaultBufferLimit),
			Severity: policy.SeverityWarning,
		})
	}
	for i, r := range p.Rules {
		for j, raw := range r.Match.PeerSubjects {
			var s string
			if json.Unmarshal(raw, &s) != nil || s == "" {
				continue
			}
			if msg := lintPeerSubject(s); msg != "" {
				out = append(out, policy.Diagnostic{
					Path:     fmt.Sprintf("rules[%d].match.peerSubjects[%d]", i, j),
					Message:  msg,
					Severity: policy.SeverityWarning,
				})
			}
		}
	}
	return out
}

// envoyDefaultBufferLimit is Envoy's default listener
// per_connection_buffer_limit_bytes: a paused filter can be sent no more
// (real Envoy 1.40: conformance TestRQLargerThanReadBufferLimit).
const envoyDefaultBufferLimit = 1 << 20

// subjectShortNames are the attribute type names Envoy prints in a subject
// (BoringSSL's short names, X509_NAME_print_ex with XN_FLAG_RFC2253), keyed
// by their upper-case spelling; other spellings users write for them map to
// the same name.
var subjectShortNames = map[string]string{
	"CN": "CN", "SN": "SN", "SERIALNUMBER": "serialNumber", "C": "C", "L": "L", "ST": "ST",
	"STREET": "street", "O": "O", "OU": "OU", "TITLE": "title", "POSTALCODE": "postalCode",
	"NAME": "name", "GN": "GN", "INITIALS": "initials", "GENERATIONQUALIFIER": "generationQualifier",
	"DNQUALIFIER": "dnQualifier", "PSEUDONYM": "pseudonym", "UID": "UID", "DC": "DC",
	"EMAILADDRESS": "emailAddress",
	// Other notations of the same types (LDAP, Windows, Java).
	"E": "emailAddress", "EMAIL": "emailAddress", "S": "ST", "SP": "ST",
	"COMMONNAME": "CN", "COUNTRYNAME": "C", "LOCALITYNAME": "L", "STATEORPROVINCENAME": "ST",
	"ORGANIZATIONNAME": "O", "ORGANIZATIONALUNITNAME": "OU", "GIVENNAME": "GN", "SURNAME": "SN",
	"DOMAINCOMPONENT": "DC", "USERID": "UID", "STREETADDRESS": "street",
	"2.5.4.3": "CN", "2.5.4.6": "C", "2.5.4.7": "L", "2.5.4.8": "ST", "2.5.4.10": "O", "2.5.4.11": "OU",
	"1.2.840.113549.1.9.1": "emailAddress", "0.9.2342.19200300.100.1.25": "DC",
}

// subjectRDN is one attribute of a subject as written in a policy.
type subjectRDN struct {
	typ, value string
	// plus is set when the attribute was joined to the previous one by
	// "+" (a multi-valued RDN).
	plus bool
}

// lintPeerSubject returns why s can never equal a subject as Envoy prints
// it (RFC 2253: the certificate's last RDN first, "," between RDNs and "+"
// inside one, no spaces around either, OpenSSL short attribute names,
// specials and every byte outside printable ASCII escaped with a
// backslash), with the corrected string where one can be derived; "" when
// s is plausible.
func lintPeerSubject(s string) string {
	const exact = `; print the exact string with "openssl x509 -noout -subject -nameopt RFC2253 -in CERT" or read peer_subject in the filter's audit line`
	if strings.HasPrefix(s, "/") && strings.Contains(s, "=") {
		parts := strings.FieldsFunc(s, func(r rune) bool { return r == '/' })
		for i, j := 0, len(parts)-1; i < j; i, j = i+1, j-1 {
			parts[i], parts[j] = parts[j], parts[i]
		}
		return fmt.Sprintf("%q is in OpenSSL's -subj form (the certificate's RDNs first to last, \"/\"-separated); Envoy reports subjects in RFC 2253 form, last RDN first and comma-separated, so this never matches: write %q", s, strings.Join(parts, ","))
	}
	if trimSubjectSpace(s) != s {
		return fmt.Sprintf("%q has a leading or trailing space, which Envoy never prints unescaped, so it never matches: write %q%s", s, trimSubjectSpace(s), exact)
	}
	rdns, spaced, semicolon := splitSubject(s)
	if semicolon {
		return fmt.Sprintf("%q separates attributes with \";\"; Envoy separates RDNs with \",\" (and escapes a \";\" inside a value as \"\\;\"), so this never matches: write %q%s", s, joinSubject(rdns), exact)
	}
	if spaced {
		return fmt.Sprintf("%q has spaces around \",\", \"+\" or \"=\"; Envoy prints \"CN=x,O=y\" with none, so this never matches: write %q (forms with spaces, such as the output of \"openssl x509 -subject\", also list the RDNs first to last, the reverse of Envoy's order)%s", s, joinSubject(rdns), exact)
	}
	fixed := make([]subjectRDN, len(rdns))
	copy(fixed, rdns)
	var why []string
	for i, a := range rdns {
		if a.typ == "" {
			return fmt.Sprintf("%q: %q is not TYPE=value; Envoy prints every attribute as TYPE=value (e.g. \"CN=CT1,O=Hospital\")%s", s, a.value, exact)
		}
		want, known := subjectShortNames[strings.ToUpper(a.typ)]
		if known && want != a.typ {
			fixed[i].typ = want
			why = append(why, fmt.Sprintf("Envoy names the attribute %s %q, not %q", strings.ToUpper(a.typ), want, a.typ))
		}
		if esc := escapeSubjectValue(a.value); esc != a.value {
			fixed[i].value = esc
			why = append(why, fmt.Sprintf("Envoy escapes bytes outside printable ASCII in %q as \\XX (UTF-8 bytes in hex)", a.value))
		}
	}
	if len(why) > 0 {
		return fmt.Sprintf("%q never matches: %s: write %q", s, strings.Join(why, "; "), joinSubject(fixed))
	}
	if n := len(rdns); n > 1 && !rdns[n-1].plus {
		first, last := strings.ToUpper(rdns[0].typ), strings.ToUpper(rdns[n-1].typ)
		if (first == "C" || first == "DC") && last != "C" && last != "DC" {
			rev := make([]subjectRDN, 0, n)
			for i := n - 1; i >= 0; i-- {
				rev = append(rev, rdns[i])
			}
			return fmt.Sprintf("%q starts with %s=, which certificates put first and Envoy therefore prints last (RFC 2253 order is the certificate's last RDN first); this is probably in reverse order: write %q%s", s, rdns[0].typ, joinSubject(rev), exact)
		}
	}
	return ""
}

// splitSubject splits a subject at unescaped "," and "+" into attributes,
// trimming spaces around separators and "=" (spaced reports whether there
// were any) and noting an unescaped ";".
func splitSubject(s string) (rdns []subjectRDN, spaced, semicolon bool) {
	var cur strings.Builder
	plus := false
	flush := func() {
		part := cur.String()
		cur.Reset()
		t := trimSubjectSpace(part)
		if t != part {
			spaced = true
		}
		typ, val, ok := strings.Cut(t, "=")
		if !ok {
			rdns = append(rdns, subjectRDN{value: t, plus: plus})
			return
		}
		if strings.TrimSpace(typ) != typ || strings.TrimLeft(val, " ") != val {
			spaced = true
		}
		rdns = append(rdns, subjectRDN{typ: strings.TrimSpace(typ), value: strings.TrimLeft(val, " "), plus: plus})
	}
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '\\':
			cur.WriteByte(c)
			if i+1 < len(s) {
				i++
				cur.WriteByte(s[i])
			}
		case ',', '+', ';':
			if c == ';' {
				semicolon = true
			}
			flush()
			plus = c == '+'
		default:
			cur.WriteByte(c)
		}
	}
	flush()
	return rdns, spaced, semicolon
}

// trimSubjectSpace trims spaces at both ends of s except a trailing space
// escaped with a backslash (how Envoy prints a value's trailing space).
func trimSubjectSpace(s string) string {
	s = strings.TrimLeft(s, " ")
	for strings.HasSuffix(s, " ") && !strings.HasSuffix(s, `\ `) {
		s = s[:len(s)-1]
	}
	return s
}

// escapeSubjectValue escapes what Envoy escapes in a value and a policy
// author may have written raw: control and non-ASCII bytes as \XX.
// Already-escaped sequences are kept.
func escapeSubjectValue(v string) string {
	const hexd = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(v); i++ {
		c := v[i]
		switch {
		case c == '\\' && i+1 < len(v):
			b.WriteByte(c)
			i++
			b.WriteByte(v[i])
		case c < 0x20 || c >= 0x7f:
			b.WriteByte('\\')
			b.WriteByte(hexd[c>>4])
			b.WriteByte(hexd[c&0xf])
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// joinSubject renders attributes in RFC 2253 notation.
func joinSubject(rdns []subjectRDN) string {
	var b strings.Builder
	for i, a := range rdns {
		if i > 0 {
			if a.plus {
				b.WriteByte('+')
			} else {
				b.WriteByte(',')
			}
		}
		if a.typ != "" {
			b.WriteString(a.typ + "=")
		}
		b.WriteString(a.value)
	}
	return b.String()
}
