package pdu

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"
)

// rqBytes builds an A-ASSOCIATE-RQ from variable items (fixed part: called
// "ANY-SCP", calling "ECHOSCU").
func rqBytes(typ Type, items ...[]byte) []byte {
	b := []byte{byte(typ), 0, 0, 0, 0, 0, 0, 1, 0, 0}
	b = append(b, "ANY-SCP         ECHOSCU         "...)
	b = append(b, make([]byte, 32)...)
	for _, it := range items {
		b = append(b, it...)
	}
	binary.BigEndian.PutUint32(b[2:], uint32(len(b)-HeaderLen))
	return b
}

// it builds an item with a correct 16-bit length.
func it(typ byte, content ...[]byte) []byte {
	c := bytes.Join(content, nil)
	return append([]byte{typ, 0, byte(len(c) >> 8), byte(len(c))}, c...)
}

func str(s string) []byte { return []byte(s) }

func lp(s string) []byte { return append([]byte{byte(len(s) >> 8), byte(len(s))}, s...) }

var (
	appCtx   = it(0x10, str("1.2.840.10008.3.1.1.1"))
	pcEcho   = it(0x20, []byte{1, 0, 0xff, 0}, it(0x30, str("1.2.840.10008.1.1")), it(0x40, str("1.2.840.10008.1.2")))
	userInfo = it(0x50, it(0x51, []byte{0, 0, 0x40, 0}), it(0x52, str("1.2.3.4")), it(0x55, str("TEST_1")))
)

func TestDecodeHostile(t *testing.T) {
	tooLong := rqBytes(TypeAssociateRQ, appCtx, pcEcho, userInfo)
	binary.BigEndian.PutUint32(tooLong[2:], 0xffffffff)

	overItem := rqBytes(TypeAssociateRQ, []byte{0x20, 0, 0x12, 0x34}, make([]byte, 12))
	nested := rqBytes(TypeAssociateRQ, appCtx,
		it(0x20, []byte{1, 0, 0, 0}, []byte{0x30, 0, 0, 40}, str("1.2.840.10008.1.1")), userInfo)
	nestedUI := rqBytes(TypeAssociateRQ, appCtx, pcEcho,
		it(0x50, it(0x51, []byte{0, 0, 0x40, 0}), []byte{0x52, 0, 0x01, 0}, str("1.2")))
	uidOverflow := rqBytes(TypeAssociateRQ, appCtx, pcEcho,
		it(0x50, it(0x58, []byte{2, 0}, []byte{0, 50}, str("alice"), lp("pw"))))
	uidExtra := rqBytes(TypeAssociateRQ, appCtx, pcEcho,
		it(0x50, it(0x58, []byte{2, 0}, lp("alice"), lp("pw"), []byte{9})))
	roleShort := rqBytes(TypeAssociateRQ, appCtx, pcEcho,
		it(0x50, it(0x54, lp("1.2.3"), []byte{1})))
	dangling := rqBytes(TypeAssociateRQ, appCtx, pcEcho, userInfo, []byte{0x99, 0})
	pcUnknownSub := rqBytes(TypeAssociateRQ, appCtx,
		it(0x20, []byte{1, 0, 0, 0}, it(0x30, str("1.2")), it(0x41, str("x"))), userInfo)
	badVersion := rqBytes(TypeAssociateRQ, appCtx, pcEcho, userInfo)
	badVersion[7] = 2
	good := rqBytes(TypeAssociateRQ, appCtx, pcEcho, userInfo)

	tests := []struct {
		name  string
		in    []byte
		class error
		msg   string
	}{
		{"PDU length 0xFFFFFFFF", tooLong, ErrTooLarge, "pdu: offset 2: A-ASSOCIATE-RQ PDU length: length 4294967295 exceeds the maximum of 1048576 bytes"},
		{"item length past the end", overItem, ErrTruncated, "pdu: offset 74: presentation context item 0x20: length 4660 exceeds remaining 12 bytes"},
		{"sub-item past its item", nested, ErrTruncated, "pdu: offset 107: abstract syntax sub-item 0x30: length 40 exceeds remaining 17 bytes"},
		{"user info sub-item past its item", nestedUI, ErrTruncated, "implementation class UID sub-item 0x52: length 256 exceeds remaining 3 bytes"},
		{"user identity field past its sub-item", uidOverflow, ErrTruncated, "user identity sub-item 0x58: primary field: length 50 exceeds remaining 9 bytes"},
		{"user identity does not tile", uidExtra, ErrInvalid, "1 bytes follow the secondary field"},
		{"role selection too short", roleShort, ErrInvalid, "does not equal 2 + UID length 5 + 2 role bytes"},
		{"dangling bytes after the items", dangling, ErrTruncated, "2 trailing bytes cannot hold a 4-byte item header"},
		{"unknown sub-item in a context", pcUnknownSub, ErrInvalid, "presentation context item 0x20: unknown sub-item type 0x41"},
		{"protocol version without bit 0", badVersion, ErrInvalid, "pdu: offset 6: A-ASSOCIATE-RQ protocol version: protocol version 0x0002 does not have bit 0 set"},
		{"truncated PDU", good[:len(good)-1], ErrTruncated, "A-ASSOCIATE-RQ PDU length: length 176 exceeds the 175 bytes present"},
		{"trailing bytes", append(append([]byte{}, good...), 5, 0), ErrInvalid, "2 bytes follow the end of the PDU"},
		{"TLS record", []byte{0x16, 0x03, 0x01, 0x00, 0xc8, 0x01, 0x00}, ErrTLS, "looks like a TLS record"},
		{"HTTP request", []byte("GET / HTTP/1.1\r\n\r\n"), ErrHTTP, "looks like HTTP"},
		{"wrong PDU type", []byte{0x05, 0, 0, 0, 0, 4, 0, 0, 0, 0}, ErrInvalid, "PDU type 0x05 (A-RELEASE-RQ) is not A-ASSOCIATE-RQ"},
		{"header only", []byte{0x01, 0}, ErrTruncated, "have 2 bytes, the header needs 6"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var rq AssociateRQ
			err := (&Decoder{}).DecodeAssociateRQ(tt.in, &rq)
			require.ErrorIs(t, err, tt.class)
			var pe *Error
			require.ErrorAs(t, err, &pe, "err %T is not *Error", err)
			require.ErrorContains(t, err, tt.msg)
		})
	}
}

func TestDecodePDataTFHostile(t *testing.T) {
	pd := func(pdvs ...byte) []byte {
		b := []byte{0x04, 0, 0, 0, 0, 0}
		b = append(b, pdvs...)
		binary.BigEndian.PutUint32(b[2:], uint32(len(b)-HeaderLen))
		return b
	}
	tests := []struct {
		name  string
		in    []byte
		class error
		msg   string
	}{
		{"PDV past end", pd(0, 0, 0, 9, 1, 3, 0xaa), ErrTruncated, "pdu: offset 6: PDV item: length 9 exceeds remaining 3 bytes"},
		{"PDV length 0xFFFFFFFF", pd(0xff, 0xff, 0xff, 0xff, 1, 3), ErrTruncated, "length 4294967295 exceeds remaining 2 bytes"},
		{"PDV length 1", pd(0, 0, 0, 1, 1, 0, 0, 0, 2, 1, 3), ErrInvalid, "length 1 is shorter than the context ID and message control header"},
		{"reserved MCH bits", pd(0, 0, 0, 2, 1, 0x07), ErrInvalid, "pdu: offset 11: PDV item: message control header 0x07 has reserved bits 2-7 set"},
		{"dangling bytes", pd(0, 0, 0, 2, 1, 3, 0, 0), ErrTruncated, "2 trailing bytes cannot hold a 4-byte PDV item length"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var p PDataTF
			err := (&Decoder{}).DecodePDataTF(tt.in, &p)
			require.ErrorIs(t, err, tt.class)
			require.ErrorContains(t, err, tt.msg)
		})
	}
	// Two PDVs in one PDU (legal, though dcmtk never does it).
	var p PDataTF
	in := pd(0, 0, 0, 3, 1, 1, 0xaa, 0, 0, 0, 4, 1, 2, 0xbb, 0xcc)
	require.NoError(t, (&Decoder{}).DecodePDataTF(in, &p))
	require.Len(t, p.PDVs, 2, "PDVs = %+v", p.PDVs)
	require.True(t, p.PDVs[0].IsCommand() && !p.PDVs[0].IsLast(), "PDV 0 is not a command fragment that is not the last: PDVs = %+v", p.PDVs)
	require.True(t, !p.PDVs[1].IsCommand() && p.PDVs[1].IsLast(), "PDV 1 is not the last data-set fragment: PDVs = %+v", p.PDVs)
	require.Equal(t, []byte{0xbb, 0xcc}, p.PDVs[1].Data, "PDV 1 data: PDVs = %+v", p.PDVs)
	require.Equal(t, 1, cap(p.PDVs[0].Data), "PDV 0 data capacity (clipped to its fragment): PDVs = %+v", p.PDVs)
	require.Equal(t, in, p.AppendEncode(nil), "P-DATA-TF with two PDVs does not re-encode byte for byte")
}

// TestLenientKeeps checks what real stacks accept and a display tool must
// not reject: unknown items and sub-items, any order, NUL-padded UIDs, odd
// max-length sub-items, non-zero reserved bytes. All must re-encode byte for
// byte. Some of them are ambiguous (stacks read them differently), so only
// a decoder with AllowAmbiguous keeps them.
func TestLenientKeeps(t *testing.T) {
	nulPC := it(0x20, []byte{3, 0, 0, 0}, it(0x40, str("1.2.840.10008.1.2\x00")), it(0x30, str("1.2.840.10008.1.1\x00")))
	ui := it(0x50,
		it(0x5f, str("vendor")),
		it(0x52, str("1.2.3.4\x00")),
		it(0x51, []byte{0x40, 0}),
		it(0x54, lp("1.2.840.10008.5.1.4.1.1.2\x00"), []byte{0, 1}),
		it(0x56, lp("1.2.840.10008.5.1.4.1.2.2.1"), []byte{1, 1, 0}),
		it(0x57, lp("1.2.3"), lp("1.2.4"), lp(string(lp("1.2.5"))+string(lp("1.2.6")))),
		it(0x53, []byte{0, 5, 0, 1}),
		it(0x58, []byte{1, 1}, lp("alice"), lp("")),
		it(0x52, str("9.9")),
	)
	in := rqBytes(TypeAssociateRQ, ui, it(0x99, str("unknown item")), nulPC, appCtx, pcEcho)
	in[1], in[8], in[50] = 0x7f, 0x12, 0x34 // reserved bytes
	copy(in[10:26], " LEADSP\x00\x00\x00\x00\x00\x00\x00\x00\x00")
	var rq AssociateRQ
	require.ErrorIs(t, (&Decoder{}).DecodeAssociateRQ(in, &rq), ErrAmbiguous, "default decoder (leading space in the called AE title)")
	require.NoError(t, (&Decoder{AllowAmbiguous: true}).DecodeAssociateRQ(in, &rq))
	got := rq.AppendEncode(nil)
	require.Equal(t, in, got, "re-encoding differs at byte %d", firstDiff(got, in))
	u := rq.UserInformation
	require.Equal(t, "LEADSP", string(rq.CalledAETitle()), "called AE")
	require.Equal(t, []RawItem{{Type: 0x99, Data: []byte("unknown item")}}, rq.UnknownItems, "unknown items")
	require.Len(t, rq.PresentationContexts, 2, "NUL-padded context %+v", rq.PresentationContexts)
	require.Equal(t, "1.2.840.10008.1.1", string(rq.PresentationContexts[0].AbstractSyntax), "NUL-padded context %+v", rq.PresentationContexts)
	require.Equal(t, "1.2.840.10008.1.2", string(rq.PresentationContexts[0].TransferSyntaxes[0]), "NUL-padded context %+v", rq.PresentationContexts)
	require.Equal(t, "1.2.3.4", string(u.ImplementationClassUID), "implementation class")
	require.False(t, u.HasMaxLength, "max length (the 2-byte 0x51 is kept as an unknown sub-item)")
	require.Len(t, u.Unknown, 3, "unknown sub-items %+v", u.Unknown)
	require.Equal(t, []uint8{0x5f, 0x51, 0x52}, []uint8{u.Unknown[0].Type, u.Unknown[1].Type, u.Unknown[2].Type}, "unknown sub-item types: %+v", u.Unknown)
	require.Len(t, u.RoleSelections, 1, "role selections %+v", u.RoleSelections)
	require.Equal(t, "1.2.840.10008.5.1.4.1.1.2", string(u.RoleSelections[0].SOPClassUID), "role selections %+v", u.RoleSelections)
	require.Equal(t, uint8(1), u.RoleSelections[0].SCPRole, "role selections %+v", u.RoleSelections)
	require.Len(t, u.ExtendedNegotiations, 1, "extended negotiation %+v", u.ExtendedNegotiations)
	require.Equal(t, []byte{1, 1, 0}, u.ExtendedNegotiations[0].Info, "extended negotiation %+v", u.ExtendedNegotiations)
	require.Len(t, u.CommonExtendedNegotiations, 1, "common extended negotiation %+v", u.CommonExtendedNegotiations)
	require.Len(t, u.CommonExtendedNegotiations[0].RelatedGeneralSOPUID, 2, "common extended negotiation %+v", u.CommonExtendedNegotiations)
	require.Equal(t, "1.2.6", string(u.CommonExtendedNegotiations[0].RelatedGeneralSOPUID[1]), "common extended negotiation %+v", u.CommonExtendedNegotiations)
	require.True(t, u.HasAsyncOps, "async ops %+v", u.AsyncOps)
	require.Equal(t, AsyncOperationsWindow{MaxInvoked: 5, MaxPerformed: 1}, u.AsyncOps, "async ops")
	require.True(t, u.HasUserIdentity, "user identity %+v", u.UserIdentity)
	require.Equal(t, uint8(1), u.UserIdentity.Type, "user identity %+v", u.UserIdentity)
	require.True(t, u.UserIdentity.PositiveResponseRequested, "user identity %+v", u.UserIdentity)
	require.Equal(t, "alice", string(u.UserIdentity.Primary), "user identity %+v", u.UserIdentity)
	// The same PDU is rejected in strict mode (0x51 of length 2 is one reason).
	require.ErrorIs(t, (Decoder{AllowAmbiguous: true}).Strict().DecodeAssociateRQ(in, &rq), ErrInvalid, "strict decoder accepted the lenient PDU")
}

func TestStrict(t *testing.T) {
	withAE := func(called string) []byte {
		b := rqBytes(TypeAssociateRQ, appCtx, pcEcho, userInfo)
		copy(b[10:26], called)
		return b
	}
	tests := []struct {
		name string
		in   []byte
		msg  string
	}{
		{"all-space called AE", withAE("                "), "pdu: offset 10: A-ASSOCIATE-RQ called AE title: empty"},
		{"control char in AE", withAE("ANY\x01SCP         "), "byte 0x01 at position 3 is not printable ASCII"},
		{"backslash in AE", withAE("ANY\\SCP         "), "backslash at position 3 is not allowed"},
		{"even context ID", rqBytes(TypeAssociateRQ, appCtx,
			it(0x20, []byte{2, 0, 0, 0}, it(0x30, str("1.2.840.10008.1.1")), it(0x40, str("1.2.840.10008.1.2"))), userInfo),
			"presentation context ID: ID 2 is even"},
		{"repeated context ID", rqBytes(TypeAssociateRQ, appCtx, pcEcho, pcEcho, userInfo), "ID 1 is repeated"},
		{"no abstract syntax", rqBytes(TypeAssociateRQ, appCtx,
			it(0x20, []byte{1, 0, 0, 0}, it(0x40, str("1.2.840.10008.1.2"))), userInfo), "context 1 has no abstract syntax sub-item 0x30"},
		{"no transfer syntax", rqBytes(TypeAssociateRQ, appCtx,
			it(0x20, []byte{1, 0, 0, 0}, it(0x30, str("1.2.840.10008.1.1"))), userInfo), "context 1 has no transfer syntax sub-item 0x40"},
		{"no application context", rqBytes(TypeAssociateRQ, pcEcho, userInfo), "no application context item 0x10"},
		{"other application context", rqBytes(TypeAssociateRQ, it(0x10, str("1.2.3")), pcEcho, userInfo), "is not the DICOM application context"},
		{"no presentation context", rqBytes(TypeAssociateRQ, appCtx, userInfo), "no presentation context item 0x20"},
		{"no user information", rqBytes(TypeAssociateRQ, appCtx, pcEcho), "no user information item 0x50"},
		{"user information not last", rqBytes(TypeAssociateRQ, appCtx, userInfo, pcEcho), "user information item 0x50 is not the last item"},
		{"AC context in RQ", rqBytes(TypeAssociateRQ, appCtx, pcEcho, it(0x21, []byte{1, 0, 0, 0}), userInfo), "not allowed in an A-ASSOCIATE-RQ"},
		{"no max length", rqBytes(TypeAssociateRQ, appCtx, pcEcho, it(0x50, it(0x52, str("1.2.3")))), "no maximum length sub-item 0x51"},
		{"no implementation class", rqBytes(TypeAssociateRQ, appCtx, pcEcho, it(0x50, it(0x51, []byte{0, 0, 0, 0}))), "no implementation class UID sub-item 0x52"},
		{"bad UID", rqBytes(TypeAssociateRQ, appCtx, pcEcho, it(0x50, it(0x51, []byte{0, 0, 0, 0}), it(0x52, str("1.02.3")))), "has a component with a leading zero"},
		{"long version name", rqBytes(TypeAssociateRQ, appCtx, pcEcho, it(0x50, it(0x51, []byte{0, 0, 0, 0}), it(0x52, str("1.2")), it(0x55, str("12345678901234567")))), "length 17 is not 1-16 characters"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var rq AssociateRQ
			require.NoError(t, (&Decoder{AllowAmbiguous: true}).DecodeAssociateRQ(tt.in, &rq), "lenient decoder rejected it")
			got := rq.AppendEncode(nil)
			require.Equal(t, tt.in, got, "lenient round trip differs at byte %d", firstDiff(got, tt.in))
			err := (Decoder{AllowAmbiguous: true}).Strict().DecodeAssociateRQ(tt.in, &rq)
			require.ErrorIs(t, err, ErrInvalid, "strict")
			require.ErrorContains(t, err, tt.msg, "strict")
		})
	}
	// Every real RQ/AC in the captures passes strict mode (all failures are
	// listed at once).
	var v decoded
	d := (Decoder{}).Strict()
	var failures []string
	for _, c := range loadIndex(t) {
		for _, f := range []string{c.Files.C2S, c.Files.S2C} {
			pdus, _ := splitStream(readCapture(t, f))
			for i, p := range pdus {
				if _, err := v.decodeEncode(d, p); err != nil {
					failures = append(failures, fmt.Sprintf("%s PDU %d: strict: %v", f, i, err))
				}
			}
		}
	}
	require.Empty(t, failures, "captured PDUs the strict decoder rejects")
}

// TestReuse decodes a large RQ and then a small one into the same value: no
// state of the first may leak into the second.
func TestReuse(t *testing.T) {
	big, _ := splitStream(readCapture(t, "uid_username_password.c2s.bin"))
	small, _ := splitStream(readCapture(t, "echo_default.c2s.bin"))
	var rq AssociateRQ
	var d Decoder
	require.NoError(t, d.DecodeAssociateRQ(big[0], &rq))
	require.NoError(t, d.DecodeAssociateRQ(small[0], &rq))
	require.Len(t, rq.PresentationContexts, 1, "state leaked: contexts")
	require.False(t, rq.UserInformation.HasUserIdentity, "state leaked: user identity")
	require.Len(t, rq.PresentationContexts[0].TransferSyntaxes, 1, "state leaked: transfer syntaxes of context %d", rq.PresentationContexts[0].ID)
	require.Equal(t, small[0], rq.AppendEncode(nil), "re-encoding after reuse differs")
}

// TestBuildAndModify encodes hand-built values and edits of decoded ones.
func TestBuildAndModify(t *testing.T) {
	rq := AssociateRQ{
		CalledAETitleRaw:   []byte("PACS"),
		CallingAETitleRaw:  []byte("MODALITY"),
		ApplicationContext: []byte("1.2.840.10008.3.1.1.1"),
		PresentationContexts: []PresentationContextRQ{
			{ID: 1, AbstractSyntax: []byte("1.2.840.10008.1.1"), TransferSyntaxes: [][]byte{[]byte("1.2.840.10008.1.2")}},
		},
		UserInformation: UserInformation{
			MaxLength: 16384, HasMaxLength: true, ImplementationClassUID: []byte("1.2.3"),
			UserIdentity: UserIdentity{Type: 2, Primary: []byte("bob"), Secondary: []byte("pw")}, HasUserIdentity: true,
		},
	}
	enc := rq.AppendEncode([]byte("prefix"))
	require.Equal(t, "prefix", string(enc[:6]), "AppendEncode overwrote dst")
	var back AssociateRQ
	require.NoError(t, (Decoder{}).Strict().DecodeAssociateRQ(enc[6:], &back), "hand-built RQ does not decode strictly")
	require.Equal(t, "PACS", string(back.CalledAETitle()), "decoded hand-built RQ: %+v", back)
	require.Equal(t, "MODALITY        ", string(back.CallingAETitleRaw), "decoded hand-built RQ: %+v", back)
	require.Equal(t, uint16(1), back.ProtocolVersion, "decoded hand-built RQ: %+v", back)
	require.Equal(t, uint32(16384), back.UserInformation.MaxLength, "decoded hand-built RQ: %+v", back)
	require.Equal(t, "pw", string(back.UserInformation.UserIdentity.Secondary), "decoded hand-built RQ: %+v", back)

	// In-place AE rewrite and an added context on a decoded RQ.
	pdus, _ := splitStream(readCapture(t, "echo_default.c2s.bin"))
	buf := append([]byte{}, pdus[0]...)
	var d Decoder
	require.NoError(t, d.DecodeAssociateRQ(buf, &back))
	PadAETitle(buf[OffsetCalledAETitle:], "REWRITTEN")
	require.Equal(t, "REWRITTEN", string(back.CalledAETitle()), "in-place rewrite not visible")
	back.PresentationContexts = append(back.PresentationContexts, PresentationContextRQ{
		ID: 3, AbstractSyntax: []byte("1.2.840.10008.5.1.4.1.1.2"), TransferSyntaxes: [][]byte{[]byte("1.2.840.10008.1.2.1")}})
	enc = back.AppendEncode(nil)
	var again AssociateRQ
	require.NoError(t, d.DecodeAssociateRQ(enc, &again))
	require.Len(t, again.PresentationContexts, 2, "modified RQ decoded as %+v", again)
	require.Equal(t, uint8(3), again.PresentationContexts[1].ID, "modified RQ decoded as %+v", again)
	require.Equal(t, "REWRITTEN", string(again.CalledAETitle()), "modified RQ decoded as %+v", again)
	require.Equal(t, "OFFIS_DCMTK_367", string(again.UserInformation.ImplementationVersionName), "modified RQ decoded as %+v", again)
}

// TestAETitleHelpers checks TrimAETitle, ValidAETitle and PadAETitle, one
// subtest per case.
func TestAETitleHelpers(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"ANY-SCP         ", "ANY-SCP"}, {" LEADSP         ", "LEADSP"}, {"AE\x00\x00\x00", "AE"},
		{"A B  ", "A B"}, {"                ", ""}, {"", ""},
	} {
		t.Run(fmt.Sprintf("TrimAETitle(%q)", tt.in), func(t *testing.T) {
			require.Equal(t, tt.want, string(TrimAETitle([]byte(tt.in))), "TrimAETitle(%q)", tt.in)
		})
	}
	for _, tt := range []struct{ in, err string }{
		{"ANY-SCP", ""}, {"lower case ok", ""}, {"1234567890123456", ""},
		{"", "empty"}, {"   ", "only spaces"}, {"12345678901234567", "17 characters"},
		{"A\\B", "backslash at position 1"}, {"A\tB", "byte 0x09 at position 1"}, {"Ä", "byte 0xc3 at position 0"},
	} {
		t.Run(fmt.Sprintf("ValidAETitle(%q)", tt.in), func(t *testing.T) {
			err := ValidAETitle([]byte(tt.in))
			if tt.err == "" {
				require.NoError(t, err, "ValidAETitle(%q)", tt.in)
				return
			}
			require.ErrorIs(t, err, ErrInvalid, "ValidAETitle(%q)", tt.in)
			require.ErrorContains(t, err, tt.err, "ValidAETitle(%q)", tt.in)
		})
	}
	t.Run("PadAETitle", func(t *testing.T) {
		dst := []byte("XXXXXXXXXXXXXXXXYY")
		PadAETitle(dst, "AE")
		require.Equal(t, "AE              YY", string(dst), "PadAETitle")
	})
	t.Run("PadAETitle(long)", func(t *testing.T) {
		dst := []byte("AE              YY")
		PadAETitle(dst, "ABCDEFGHIJKLMNOPQRS")
		require.Equal(t, "ABCDEFGHIJKLMNOPYY", string(dst), "PadAETitle(long)")
	})
	t.Run("PadAETitle(short dst)", func(t *testing.T) {
		short := []byte("XXX")
		PadAETitle(short, "A")
		require.Equal(t, "A  ", string(short), "PadAETitle(short dst)")
	})
}

func TestFixedPDUs(t *testing.T) {
	var d Decoder
	var rj AssociateRJ
	require.NoError(t, d.DecodeAssociateRJ([]byte{3, 0, 0, 0, 0, 4, 0, 2, 3, 2}, &rj), "RJ")
	require.Equal(t, [3]uint8{2, 3, 2}, [3]uint8{uint8(rj.Result), uint8(rj.Source), uint8(rj.Reason)}, "RJ result, source, reason: %+v", rj)
	require.ErrorIs(t, (Decoder{}).Strict().DecodeAssociateRJ([]byte{3, 0, 0, 0, 0, 4, 0, 9, 1, 1}, &rj), ErrInvalid, "strict RJ result 9")
	var ab Abort
	in := []byte{7, 0, 0, 0, 0, 4, 0xaa, 0xbb, 2, 6}
	require.NoError(t, d.DecodeAbort(in, &ab), "A-ABORT")
	require.Equal(t, [2]uint8{2, 6}, [2]uint8{uint8(ab.Source), uint8(ab.Reason)}, "A-ABORT source, reason: %+v", ab)
	require.Equal(t, in, ab.AppendEncode(nil), "A-ABORT re-encoding: %+v", ab)
	var rel ReleaseRQ
	in = []byte{5, 0x01, 0, 0, 0, 4, 1, 2, 3, 4}
	require.NoError(t, d.DecodeReleaseRQ(in, &rel), "A-RELEASE-RQ")
	require.Equal(t, [4]byte{1, 2, 3, 4}, rel.Reserved, "A-RELEASE-RQ reserved bytes: %+v", rel)
	require.Equal(t, in, rel.AppendEncode(nil), "A-RELEASE-RQ re-encoding: %+v", rel)
	var rp ReleaseRP
	require.ErrorIs(t, d.DecodeReleaseRP([]byte{6, 0, 0, 0, 0, 5, 0, 0, 0, 0, 0}, &rp), ErrInvalid, "A-RELEASE-RP of length 5")
}

func TestContextLookup(t *testing.T) {
	// get_series-like reordering does not occur in these captures, but
	// orthanc_scu_echo has five contexts with mixed results.
	rqs, _ := splitStream(readCapture(t, "orthanc_scu_echo.c2s.bin"))
	acs, _ := splitStream(readCapture(t, "orthanc_scu_echo.s2c.bin"))
	var rq AssociateRQ
	var ac AssociateAC
	require.NoError(t, (&Decoder{}).DecodeAssociateRQ(rqs[0], &rq))
	require.NoError(t, (&Decoder{}).DecodeAssociateAC(acs[0], &ac))
	accepted := 0
	for _, pc := range ac.PresentationContexts {
		p := rq.Context(pc.ID)
		require.NotNil(t, p, "context %d not found in the RQ", pc.ID)
		require.NotNil(t, ac.Context(pc.ID), "context %d not found in the AC", pc.ID)
		require.Equal(t, pc.Result, ac.Context(pc.ID).Result, "context %d: result found by ID", pc.ID)
		if pc.Result == 0 {
			accepted++
			require.Equal(t, "1.2.840.10008.1.1", string(p.AbstractSyntax), "accepted context %d, want Verification", pc.ID)
		}
	}
	require.Equal(t, 1, accepted, "accepted contexts of %d", len(ac.PresentationContexts))
	require.Len(t, ac.PresentationContexts, 5)
	require.Nil(t, rq.Context(2), "RQ context 2 (no such ID)")
	require.Nil(t, ac.Context(200), "AC context 200 (no such ID)")
}

func TestBuildOtherPDUs(t *testing.T) {
	ac := AssociateAC{
		CalledAETitleRaw:   []byte("ANY-SCP         "),
		CallingAETitleRaw:  []byte("ECHOSCU         "),
		ApplicationContext: []byte("1.2.840.10008.3.1.1.1"),
		PresentationContexts: []PresentationContextAC{
			{ID: 1, Result: 0, TransferSyntax: []byte("1.2.840.10008.1.2")},
			{ID: 3, Result: 3},
		},
		UserInformation: UserInformation{
			MaxLength: 0, HasMaxLength: true, ImplementationClassUID: []byte("1.2.3"),
			ImplementationVersionName: []byte("V1"),
			AsyncOps:                  AsyncOperationsWindow{MaxInvoked: 2, MaxPerformed: 3}, HasAsyncOps: true,
			RoleSelections:       []RoleSelection{{SOPClassUID: []byte("1.2.840.10008.5.1.4.1.1.2"), SCURole: 0, SCPRole: 1}},
			UserIdentityResponse: []byte("ticket"), HasUserIdentityResponse: true,
		},
	}
	enc := ac.AppendEncode(nil)
	var back AssociateAC
	require.NoError(t, (Decoder{}).Strict().DecodeAssociateAC(enc, &back), "hand-built AC")
	u := back.UserInformation
	require.Len(t, back.PresentationContexts, 2, "decoded hand-built AC: %+v", back)
	require.Nil(t, back.PresentationContexts[1].TransferSyntax, "decoded hand-built AC: %+v", back)
	require.Equal(t, PCResult(0), back.Context(1).Result, "decoded hand-built AC: %+v", back)
	require.True(t, u.HasAsyncOps, "decoded hand-built AC: %+v", back)
	require.Equal(t, uint16(3), u.AsyncOps.MaxPerformed, "decoded hand-built AC: %+v", back)
	require.Len(t, u.RoleSelections, 1, "decoded hand-built AC: %+v", back)
	require.Equal(t, uint8(1), u.RoleSelections[0].SCPRole, "decoded hand-built AC: %+v", back)
	require.Equal(t, "ticket", string(u.UserIdentityResponse), "decoded hand-built AC: %+v", back)
	require.Equal(t, "V1", string(u.ImplementationVersionName), "decoded hand-built AC: %+v", back)
	// Sub-items come out in the standard order 0x51, 0x52, 0x53, 0x54, 0x55, 0x59.
	var order []byte
	for _, r := range u.order {
		order = append(order, r.typ)
	}
	require.Equal(t, []byte{0x51, 0x52, 0x53, 0x54, 0x55, 0x59}, order, "sub-item order %x", order)
	// Zero values encode to well-formed PDUs that decode leniently (the zero
	// RQ's AE titles are all spaces, which only AllowAmbiguous accepts).
	d := Decoder{AllowAmbiguous: true}
	var rq AssociateRQ
	require.NoError(t, d.DecodeAssociateRQ((&AssociateRQ{}).AppendEncode(nil), &rq), "zero RQ")
	require.Equal(t, uint16(1), rq.ProtocolVersion, "zero RQ protocol version")
	require.NoError(t, d.DecodeAssociateAC((&AssociateAC{}).AppendEncode(nil), &back), "zero AC")
	var p PDataTF
	require.NoError(t, d.DecodePDataTF((&PDataTF{PDVs: []PDV{{ContextID: 1, MessageControlHeader: MCHCommand | MCHLast, Data: []byte{1, 2}}}}).AppendEncode(nil), &p), "P-DATA-TF")
	require.Len(t, p.PDVs, 1, "P-DATA-TF: %+v", p)
	require.True(t, p.PDVs[0].IsCommand() && p.PDVs[0].IsLast(), "P-DATA-TF PDV is not the last command fragment: %+v", p)
	rj := AssociateRJ{Result: 1, Source: 1, Reason: 7}
	require.Equal(t, []byte{3, 0, 0, 0, 0, 4, 0, 1, 1, 7}, rj.AppendEncode(nil), "RJ")
	require.Equal(t, []byte{6, 0, 0, 0, 0, 4, 0, 0, 0, 0}, (&ReleaseRP{}).AppendEncode(nil), "A-RELEASE-RP")
	require.Equal(t, []byte{7, 0, 0, 0, 0, 4, 0, 0, 2, 1}, (&Abort{Source: 2, Reason: 1}).AppendEncode(nil), "A-ABORT")
}
