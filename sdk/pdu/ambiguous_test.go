package pdu

import (
	"encoding/binary"
	"errors"
	"math/rand"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/require"
)

// naiveUID is the PS3.5 §9.1 UID rule written plainly, independent of
// uidOK: 1-64 characters, components of digits separated by dots, no empty
// component, no leading zero unless the component is "0".
func naiveUID(s []byte) bool {
	if len(s) == 0 || len(s) > 64 {
		return false
	}
	for _, comp := range strings.Split(string(s), ".") {
		if comp == "" || (len(comp) > 1 && comp[0] == '0') {
			return false
		}
		for i := 0; i < len(comp); i++ {
			if comp[i] < '0' || comp[i] > '9' {
				return false
			}
		}
	}
	return true
}

// naiveAEField is the rule for an unambiguous 16-byte AE title field
// written plainly: printable ASCII without backslash, the first character
// not a space, not only spaces.
func naiveAEField(f []byte) bool {
	if len(f) != 16 || f[0] == ' ' || strings.TrimRight(string(f), " ") == "" {
		return false
	}
	for _, c := range f {
		if c < 0x20 || c > 0x7e || c == '\\' {
			return false
		}
	}
	return true
}

// naiveUsername is the username rule written plainly: UTF-8, no control
// characters, no surrounding spaces.
func naiveUsername(b []byte) bool {
	if !utf8.Valid(b) || len(b) > 0 && (b[0] == ' ' || b[len(b)-1] == ' ') {
		return false
	}
	for _, c := range b {
		if c < 0x20 || c == 0x7f {
			return false
		}
	}
	return true
}

// uidAlphabet biases random UIDs towards the interesting bytes.
var uidAlphabet = []byte("0123456789....00\x00 /:a\x80\xff")

func randomUID(r *rand.Rand) []byte {
	b := make([]byte, r.Intn(70))
	for i := range b {
		b[i] = uidAlphabet[r.Intn(len(uidAlphabet))]
	}
	return b
}

func TestUIDOKMatchesNaiveRule(t *testing.T) {
	for _, s := range []string{
		"", "0", "1", ".", "1.", ".1", "1..2", "1.2", "1.0", "0.0", "00", "1.00", "1.01", "1.0.1", "10.20",
		"1.2.840.10008.1.2", "1.2.840.10008.1.2.4.50", "1.2.840.10008.1.2\x00", "1.2.840.10008.1.1\x00junk",
		"1.2.840.10008.1.1 ", " 1.2", "1.2/3", "1.2:3", "1.2.840.010008", "1.2.3.4.5.6.7.8",
		strings.Repeat("1", 64), strings.Repeat("1", 65), strings.Repeat("1.", 31) + "12", strings.Repeat("1.", 32) + "1",
		"1234567", "12345678", "123456789", "1.2.3.4.5.6.7.0", "1.2.3.4.5.6.7.01", "0.1.2.3.4.5.6.7.8",
	} {
		require.Equal(t, naiveUID([]byte(s)), uidOK([]byte(s)), "UID %q", s)
	}
	r := rand.New(rand.NewSource(1))
	prefixes := []string{"", "", "1.2.840.10008.", "1.2.840.10008", "1.2.840.10008..", "1.2.840.10008.0"}
	for range 300000 {
		b := append([]byte(prefixes[r.Intn(len(prefixes))]), randomUID(r)...)
		require.Equal(t, naiveUID(b), uidOK(b), "UID %q", b)
	}
}

func TestDICOMRootConstants(t *testing.T) {
	require.Equal(t, binary.LittleEndian.Uint64([]byte(dicomRoot[0:8])), uint64(dicomRoot0))
	require.Equal(t, binary.LittleEndian.Uint64([]byte(dicomRoot[6:14])), uint64(dicomRoot6))
}

// FuzzUIDOK checks the 8-bytes-at-a-time UID check against the naive rule.
func FuzzUIDOK(f *testing.F) {
	f.Add([]byte("1.2.840.10008.1.2.4.50"))
	f.Add([]byte("1.2.840.10008.1.1\x00junk"))
	f.Add([]byte("1.02"))
	f.Add([]byte("1.2.840.10008.1.2.4.50"))
	f.Add([]byte("1.2.840.10008..1"))
	f.Fuzz(func(t *testing.T, b []byte) {
		require.Equal(t, naiveUID(b), uidOK(b), "UID %q", b)
	})
}

func TestAEFieldOKMatchesNaiveRule(t *testing.T) {
	alphabet := []byte(" A\x00\\\t~\x7f\x80\xe9z1-")
	r := rand.New(rand.NewSource(2))
	for range 200000 {
		f := make([]byte, 16)
		for i := range f {
			f[i] = ' '
			if r.Intn(3) > 0 {
				f[i] = alphabet[r.Intn(len(alphabet))]
			}
		}
		require.Equal(t, naiveAEField(f), aeFieldOK(f), "field %q", f)
		if !aeFieldOK(f) {
			require.ErrorIs(t, aeFieldError(f, 10, "AE"), ErrAmbiguous)
		}
	}
	for _, s := range []string{"CT1             ", "STORE SCP       ", "CALLING_AE_16CHR", " CT1            ", "                ", "CT1\x00SPOOF       "} {
		require.Equal(t, naiveAEField([]byte(s)), aeFieldOK([]byte(s)), "field %q", s)
	}
}

// ambPC is a presentation context with the given abstract syntax and
// transfer syntax.
func ambPC(id byte, as, ts string) []byte {
	return it(0x20, []byte{id, 0, 0xff, 0}, it(0x30, str(as)), it(0x40, str(ts)))
}

// ambUI is a user information item: max length, implementation class UID,
// then the given sub-items.
func ambUI(subs ...[]byte) []byte {
	return it(0x50, append([][]byte{it(0x51, []byte{0, 0, 0x40, 0}), it(0x52, str("1.2.3.4"))}, subs...)...)
}

// ident is a user identity sub-item 0x58.
func ident(typ byte, primary, secondary string) []byte {
	return it(0x58, []byte{typ, 0}, lp(primary), lp(secondary))
}

// withAEs returns an RQ (application context, echo context, user
// information) with the given raw 16-byte called and calling AE fields.
func withAEs(called, calling string) []byte {
	b := rqBytes(TypeAssociateRQ, appCtx, pcEcho, userInfo)
	copy(b[10:26], called)
	copy(b[26:42], calling)
	return b
}

// TestDecodeRefusesAmbiguousRQ lists every RQ field a DICOM acceptor could
// read differently from the decoder; each is refused by default with an
// error naming the field and the offset, matching ErrAmbiguous and
// ErrInvalid, and each is read by the decoder when AllowAmbiguous is set
// (the ambiguity check, not another rule, refuses it).
func TestDecodeRefusesAmbiguousRQ(t *testing.T) {
	tests := []struct {
		name string
		in   []byte
		off  int
		msg  string
	}{
		{"calling AE with a NUL inside", withAEs("ANY-SCP         ", "CT1\x00SPOOF       "), 29,
			"A-ASSOCIATE-RQ calling AE title: NUL at position 3"},
		{"calling AE padded with NULs", withAEs("ANY-SCP         ", "CT1\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"), 29,
			"A-ASSOCIATE-RQ calling AE title: NUL at position 3"},
		{"called AE with a leading space", withAEs(" PACS           ", "CT1             "), 10,
			"A-ASSOCIATE-RQ called AE title: leading space"},
		{"called AE of only spaces", withAEs("                ", "CT1             "), 10,
			"A-ASSOCIATE-RQ called AE title: only spaces"},
		{"calling AE with a tab", withAEs("ANY-SCP         ", "CT1\t            "), 29, "byte 0x09 at position 3 is not printable ASCII"},
		{"calling AE with a backslash", withAEs("ANY-SCP         ", "CT\\1            "), 28, "backslash at position 2"},
		{"calling AE with a Latin-1 byte", withAEs("ANY-SCP         ", "CT\xe9            "), 28, "byte 0xe9 at position 2"},
		{"calling AE with DEL", withAEs("ANY-SCP         ", "CT1\x7f            "), 29, "byte 0x7f at position 3"},
		{"abstract syntax with NUL and junk", rqBytes(TypeAssociateRQ, appCtx, ambPC(1, "1.2.840.10008.1.1\x00junk", "1.2.840.10008.1.2"), userInfo), 107,
			`abstract syntax sub-item 0x30: context 1 abstract syntax: UID "1.2.840.10008.1.1\x00junk" has a NUL at position 17`},
		{"abstract syntax with a trailing space", rqBytes(TypeAssociateRQ, appCtx, ambPC(1, "1.2.840.10008.1.1 ", "1.2.840.10008.1.2"), userInfo), 107,
			`context 1 abstract syntax: UID "1.2.840.10008.1.1 " contains 0x20`},
		{"transfer syntax with two trailing NULs", rqBytes(TypeAssociateRQ, appCtx, ambPC(1, "1.2.840.10008.1.1", "1.2.840.10008.1.2\x00\x00"), userInfo), 128,
			"transfer syntax sub-item 0x40: context 1 transfer syntax: UID"},
		{"transfer syntax of 65 characters", rqBytes(TypeAssociateRQ, appCtx, ambPC(1, "1.2.840.10008.1.1", "1."+strings.Repeat("2", 63)), userInfo), 128,
			"UID has 65 characters, at most 64 are allowed"},
		{"abstract syntax with a leading zero", rqBytes(TypeAssociateRQ, appCtx, ambPC(1, "1.2.840.010008.1.1", "1.2.840.10008.1.2"), userInfo), 107,
			"has a component with a leading zero"},
		{"presentation context without abstract syntax", rqBytes(TypeAssociateRQ, appCtx,
			it(0x20, []byte{1, 0, 0, 0}, it(0x40, str("1.2.840.10008.1.2"))), userInfo), 99, "context 1 has no abstract syntax sub-item 0x30"},
		{"application context with a NUL inside", rqBytes(TypeAssociateRQ, it(0x10, str("1.2.840.10008.3.1.1.1\x00x")), pcEcho, userInfo), 74,
			"application context item 0x10: UID"},
		{"implementation class UID with letters", rqBytes(TypeAssociateRQ, appCtx, pcEcho, it(0x50, it(0x51, []byte{0, 0, 0x40, 0}), it(0x52, str("1.2.3.abc")))), 161,
			"implementation class UID sub-item 0x52: UID"},
		{"role selection UID with a NUL inside", rqBytes(TypeAssociateRQ, appCtx, pcEcho, ambUI(it(0x54, lp("1.2.3\x00x"), []byte{1, 0}))), 172,
			"SCP/SCU role selection sub-item 0x54: UID"},
		{"extended negotiation UID over 64", rqBytes(TypeAssociateRQ, appCtx, pcEcho, ambUI(it(0x56, lp(strings.Repeat("1", 65)), []byte{1}))), 172,
			"SOP class extended negotiation sub-item 0x56: UID has 65 characters"},
		{"common extended negotiation service class UID with padding", rqBytes(TypeAssociateRQ, appCtx, pcEcho, ambUI(it(0x57, lp("1.2.3"), lp("1.2.4\x00"), lp("")))), 172,
			"SOP class common extended negotiation sub-item 0x57: service class UID"},
		{"two user identity sub-items", rqBytes(TypeAssociateRQ, appCtx, pcEcho, ambUI(ident(1, "alice", ""), ident(1, "mallory", ""))), 187,
			"user identity sub-item 0x58: repeated sub-item: dcmtk uses the last one, pynetdicom the first"},
		{"two user information items", rqBytes(TypeAssociateRQ, appCtx, pcEcho, ambUI(ident(1, "alice", "")), ambUI(ident(1, "mallory", ""))), 187,
			"user information item 0x50: repeated item"},
		{"two application context items", rqBytes(TypeAssociateRQ, appCtx, appCtx, pcEcho, userInfo), 99,
			"application context item 0x10: repeated item"},
		{"an AC presentation context in an RQ", rqBytes(TypeAssociateRQ, appCtx, pcEcho,
			it(0x21, []byte{3, 0, 0, 0}, it(0x30, str("1.2.840.10008.5.1.4.1.1.2")), it(0x40, str("1.2.840.10008.1.2"))), userInfo), 149,
			"presentation context item 0x21: an A-ASSOCIATE-AC presentation context in an A-ASSOCIATE-RQ"},
		{"a user identity response in an RQ", rqBytes(TypeAssociateRQ, appCtx, pcEcho, ambUI(it(0x59, lp("mallory")))), 172,
			"user identity response sub-item 0x59: a user identity response in an A-ASSOCIATE-RQ"},
		{"username type with a secondary field hiding a second identity", rqBytes(TypeAssociateRQ, appCtx, pcEcho,
			ambUI(it(0x58, []byte{1, 0}, lp("alice"), lp(string(ident(1, "mallory", "")))))), 176,
			"type 1 carries a 17-byte secondary field: only type 2 has one"},
		{"username with a NUL inside", rqBytes(TypeAssociateRQ, appCtx, pcEcho, ambUI(ident(2, "alice\x00mallory", "pw"))), 180,
			"byte 0x00 at position 5 of the username is a control character"},
		{"username with a trailing NUL", rqBytes(TypeAssociateRQ, appCtx, pcEcho, ambUI(ident(1, "mallory\x00", ""))), 180,
			"byte 0x00 at position 7 of the username"},
		{"username with a trailing space", rqBytes(TypeAssociateRQ, appCtx, pcEcho, ambUI(ident(1, "mallory ", ""))), 180,
			`the username "mallory " has a leading or trailing space`},
		{"username not UTF-8", rqBytes(TypeAssociateRQ, appCtx, pcEcho, ambUI(ident(1, "mall\xf6ry", ""))), 180, "is not UTF-8"},
		{"user identity type 6", rqBytes(TypeAssociateRQ, appCtx, pcEcho, ambUI(ident(6, "x", ""))), 176, "user identity type 6 is not 1-5"},
		{"two maximum length sub-items", rqBytes(TypeAssociateRQ, appCtx, pcEcho, ambUI(it(0x51, []byte{0, 0, 0, 0}))), 172,
			"maximum length sub-item 0x51: repeated sub-item"},
		{"maximum length of 2 bytes", rqBytes(TypeAssociateRQ, appCtx, pcEcho, it(0x50, it(0x52, str("1.2.3")), it(0x51, []byte{0x40, 0}))), 162,
			"maximum length sub-item 0x51: length 2 is not 4"},
		{"two implementation class UIDs", rqBytes(TypeAssociateRQ, appCtx, pcEcho, ambUI(it(0x52, str("9.9")))), 172,
			"implementation class UID sub-item 0x52: repeated sub-item"},
		{"two asynchronous operations windows", rqBytes(TypeAssociateRQ, appCtx, pcEcho, ambUI(it(0x53, []byte{0, 1, 0, 1}), it(0x53, []byte{0, 5, 0, 5}))), 180,
			"asynchronous operations window sub-item 0x53: repeated sub-item"},
		{"asynchronous operations window of 3 bytes", rqBytes(TypeAssociateRQ, appCtx, pcEcho, ambUI(it(0x53, []byte{0, 1, 0}))), 172,
			"asynchronous operations window sub-item 0x53: length 3 is not 4"},
		{"two implementation version names", rqBytes(TypeAssociateRQ, appCtx, pcEcho, ambUI(it(0x55, str("A")), it(0x55, str("B")))), 177,
			"implementation version name sub-item 0x55: repeated sub-item"},
		{"implementation version name of 17 characters", rqBytes(TypeAssociateRQ, appCtx, pcEcho, ambUI(it(0x55, str("12345678901234567")))), 172,
			"implementation version name sub-item 0x55: length 17 is over 16 characters"},
		{"implementation version name with a NUL", rqBytes(TypeAssociateRQ, appCtx, pcEcho,
			it(0x50, it(0x51, []byte{0, 0, 0x40, 0}), it(0x52, str("1.2.3.4")), it(0x55, str("OK\x00X")))), 178,
			"implementation version name sub-item 0x55: byte 0x00 at position 2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var rq AssociateRQ
			err := (&Decoder{}).DecodeAssociateRQ(tt.in, &rq)
			require.ErrorIs(t, err, ErrAmbiguous)
			require.ErrorIs(t, err, ErrInvalid, "ErrAmbiguous must match ErrInvalid")
			var pe *Error
			require.True(t, errors.As(err, &pe))
			require.Contains(t, err.Error(), tt.msg)
			require.Equal(t, tt.off, pe.Offset, "offset of %v", err)
			require.NoError(t, (&Decoder{AllowAmbiguous: true}).DecodeAssociateRQ(tt.in, &rq), "AllowAmbiguous must read it")
		})
	}
}

// TestDecodeKeepsUnambiguousRQ lists RQs close to the refused ones that
// every stack reads alike: they decode by default.
func TestDecodeKeepsUnambiguousRQ(t *testing.T) {
	tests := []struct {
		name string
		in   []byte
		want func(t *testing.T, rq *AssociateRQ)
	}{
		{"AE titles with an inner space and of 16 characters", withAEs("STORE SCP       ", "CALLING_AE_16CHR"), func(t *testing.T, rq *AssociateRQ) {
			require.Equal(t, "STORE SCP", string(rq.CalledAETitle()))
			require.Equal(t, "CALLING_AE_16CHR", string(rq.CallingAETitle()))
		}},
		{"UIDs with one trailing NUL", rqBytes(TypeAssociateRQ, it(0x10, str("1.2.840.10008.3.1.1.1\x00")),
			ambPC(1, "1.2.840.10008.1.1\x00", "1.2.840.10008.1.2\x00"), userInfo), func(t *testing.T, rq *AssociateRQ) {
			require.Equal(t, "1.2.840.10008.1.1", string(rq.PresentationContexts[0].AbstractSyntax))
			require.Equal(t, "1.2.840.10008.1.2", string(rq.PresentationContexts[0].TransferSyntaxes[0]))
		}},
		{"a UID component 0", rqBytes(TypeAssociateRQ, appCtx, ambPC(1, "1.2.0.3", "1.2.840.10008.1.2"), userInfo), func(t *testing.T, rq *AssociateRQ) {
			require.Equal(t, "1.2.0.3", string(rq.PresentationContexts[0].AbstractSyntax))
		}},
		{"one UTF-8 username with a passcode", rqBytes(TypeAssociateRQ, appCtx, pcEcho, ambUI(ident(2, "jörg", "secret"))), func(t *testing.T, rq *AssociateRQ) {
			require.Equal(t, "jörg", string(rq.UserInformation.UserIdentity.Primary))
		}},
		{"a JWT identity", rqBytes(TypeAssociateRQ, appCtx, pcEcho, ambUI(ident(5, "eyJ\x00binary", ""))), func(t *testing.T, rq *AssociateRQ) {
			require.Equal(t, UserIdentityJWT, rq.UserInformation.UserIdentity.Type)
		}},
		{"unknown items and sub-items", rqBytes(TypeAssociateRQ, appCtx, pcEcho, it(0x99, str("x")), ambUI(it(0x5f, str("vendor")))), func(t *testing.T, rq *AssociateRQ) {
			require.Len(t, rq.UnknownItems, 1)
			require.Len(t, rq.UserInformation.Unknown, 1)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var rq AssociateRQ
			require.NoError(t, (&Decoder{}).DecodeAssociateRQ(tt.in, &rq))
			tt.want(t, &rq)
		})
	}
}

// checkUnambiguous asserts the properties every RQ accepted by the default
// decoder has, by the naive rules: both AE title fields, every UID, the
// username.
func checkUnambiguous(t *testing.T, pdu []byte, rq *AssociateRQ) {
	t.Helper()
	for _, f := range [][]byte{pdu[10:26], pdu[26:42]} {
		require.True(t, naiveAEField(f), "accepted AE title field %q", f)
	}
	var uids [][]byte
	for _, u := range [][]byte{rq.ApplicationContext, rq.UserInformation.ImplementationClassUID} {
		if u != nil {
			uids = append(uids, u)
		}
	}
	for _, pc := range rq.PresentationContexts {
		uids = append(uids, pc.AbstractSyntax)
		uids = append(uids, pc.TransferSyntaxes...)
	}
	for _, rs := range rq.UserInformation.RoleSelections {
		uids = append(uids, rs.SOPClassUID)
	}
	for _, en := range rq.UserInformation.ExtendedNegotiations {
		uids = append(uids, en.SOPClassUID)
	}
	for _, ce := range rq.UserInformation.CommonExtendedNegotiations {
		uids = append(uids, ce.SOPClassUID, ce.ServiceClassUID)
		uids = append(uids, ce.RelatedGeneralSOPUID...)
	}
	for _, u := range uids {
		require.True(t, naiveUID(u), "accepted UID %q", u)
	}
	if id := rq.UserInformation.UserIdentity; rq.UserInformation.HasUserIdentity && id.Type <= UserIdentityUsernamePasscode {
		require.True(t, naiveUsername(id.Primary), "accepted username %q", id.Primary)
	}
}
