package pdu

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"testing"
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
			if !errors.Is(err, tt.class) {
				t.Fatalf("err = %v, want class %v", err, tt.class)
			}
			var pe *Error
			if !errors.As(err, &pe) {
				t.Fatalf("err %T is not *Error", err)
			}
			if !strings.Contains(err.Error(), tt.msg) {
				t.Fatalf("err = %q, want it to contain %q", err, tt.msg)
			}
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
		var p PDataTF
		err := (&Decoder{}).DecodePDataTF(tt.in, &p)
		if !errors.Is(err, tt.class) || !strings.Contains(fmt.Sprint(err), tt.msg) {
			t.Errorf("%s: err = %v, want %v containing %q", tt.name, err, tt.class, tt.msg)
		}
	}
	// Two PDVs in one PDU (legal, though dcmtk never does it).
	var p PDataTF
	in := pd(0, 0, 0, 3, 1, 1, 0xaa, 0, 0, 0, 4, 1, 2, 0xbb, 0xcc)
	if err := (&Decoder{}).DecodePDataTF(in, &p); err != nil {
		t.Fatal(err)
	}
	if len(p.PDVs) != 2 || !p.PDVs[0].IsCommand() || p.PDVs[0].IsLast() || p.PDVs[1].IsCommand() || !p.PDVs[1].IsLast() ||
		!bytes.Equal(p.PDVs[1].Data, []byte{0xbb, 0xcc}) || cap(p.PDVs[0].Data) != 1 {
		t.Fatalf("PDVs = %+v", p.PDVs)
	}
	if !bytes.Equal(p.AppendEncode(nil), in) {
		t.Fatal("P-DATA-TF with two PDVs does not re-encode byte for byte")
	}
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
	if err := (&Decoder{}).DecodeAssociateRQ(in, &rq); !errors.Is(err, ErrAmbiguous) {
		t.Fatalf("default decoder: err = %v, want ErrAmbiguous (leading space in the called AE title)", err)
	}
	if err := (&Decoder{AllowAmbiguous: true}).DecodeAssociateRQ(in, &rq); err != nil {
		t.Fatal(err)
	}
	if got := rq.AppendEncode(nil); !bytes.Equal(got, in) {
		t.Fatalf("re-encoding differs at byte %d", firstDiff(got, in))
	}
	u := rq.UserInformation
	switch {
	case string(rq.CalledAETitle()) != "LEADSP":
		t.Errorf("called AE %q", rq.CalledAETitle())
	case len(rq.UnknownItems) != 1 || rq.UnknownItems[0].Type != 0x99 || string(rq.UnknownItems[0].Data) != "unknown item":
		t.Errorf("unknown items %+v", rq.UnknownItems)
	case len(rq.PresentationContexts) != 2 || string(rq.PresentationContexts[0].AbstractSyntax) != "1.2.840.10008.1.1" ||
		string(rq.PresentationContexts[0].TransferSyntaxes[0]) != "1.2.840.10008.1.2":
		t.Errorf("NUL-padded context %+v", rq.PresentationContexts)
	case string(u.ImplementationClassUID) != "1.2.3.4" || u.HasMaxLength:
		t.Errorf("implementation class %q, max length %v", u.ImplementationClassUID, u.HasMaxLength)
	case len(u.Unknown) != 3 || u.Unknown[0].Type != 0x5f || u.Unknown[1].Type != 0x51 || u.Unknown[2].Type != 0x52:
		t.Errorf("unknown sub-items %+v", u.Unknown)
	case len(u.RoleSelections) != 1 || string(u.RoleSelections[0].SOPClassUID) != "1.2.840.10008.5.1.4.1.1.2" || u.RoleSelections[0].SCPRole != 1:
		t.Errorf("role selections %+v", u.RoleSelections)
	case len(u.ExtendedNegotiations) != 1 || !bytes.Equal(u.ExtendedNegotiations[0].Info, []byte{1, 1, 0}):
		t.Errorf("extended negotiation %+v", u.ExtendedNegotiations)
	case len(u.CommonExtendedNegotiations) != 1 || len(u.CommonExtendedNegotiations[0].RelatedGeneralSOPUID) != 2 ||
		string(u.CommonExtendedNegotiations[0].RelatedGeneralSOPUID[1]) != "1.2.6":
		t.Errorf("common extended negotiation %+v", u.CommonExtendedNegotiations)
	case !u.HasAsyncOps || u.AsyncOps.MaxInvoked != 5 || u.AsyncOps.MaxPerformed != 1:
		t.Errorf("async ops %+v", u.AsyncOps)
	case !u.HasUserIdentity || u.UserIdentity.Type != 1 || !u.UserIdentity.PositiveResponseRequested || string(u.UserIdentity.Primary) != "alice":
		t.Errorf("user identity %+v", u.UserIdentity)
	}
	// The same PDU is rejected in strict mode (0x51 of length 2 is one reason).
	if err := (Decoder{AllowAmbiguous: true}).Strict().DecodeAssociateRQ(in, &rq); !errors.Is(err, ErrInvalid) {
		t.Errorf("strict decoder accepted the lenient PDU: %v", err)
	}
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
			if err := (&Decoder{AllowAmbiguous: true}).DecodeAssociateRQ(tt.in, &rq); err != nil {
				t.Fatalf("lenient decoder rejected it: %v", err)
			}
			if got := rq.AppendEncode(nil); !bytes.Equal(got, tt.in) {
				t.Fatalf("lenient round trip differs at byte %d", firstDiff(got, tt.in))
			}
			err := (Decoder{AllowAmbiguous: true}).Strict().DecodeAssociateRQ(tt.in, &rq)
			if !errors.Is(err, ErrInvalid) || !strings.Contains(fmt.Sprint(err), tt.msg) {
				t.Fatalf("strict: err = %v, want ErrInvalid containing %q", err, tt.msg)
			}
		})
	}
	// Every real RQ/AC in the captures passes strict mode.
	var v decoded
	d := (Decoder{}).Strict()
	for _, c := range loadIndex(t) {
		for _, f := range []string{c.Files.C2S, c.Files.S2C} {
			pdus, _ := splitStream(readCapture(t, f))
			for i, p := range pdus {
				if _, err := v.decodeEncode(d, p); err != nil {
					t.Errorf("%s PDU %d: strict: %v", f, i, err)
				}
			}
		}
	}
}

// TestReuse decodes a large RQ and then a small one into the same value: no
// state of the first may leak into the second.
func TestReuse(t *testing.T) {
	big, _ := splitStream(readCapture(t, "uid_username_password.c2s.bin"))
	small, _ := splitStream(readCapture(t, "echo_default.c2s.bin"))
	var rq AssociateRQ
	var d Decoder
	if err := d.DecodeAssociateRQ(big[0], &rq); err != nil {
		t.Fatal(err)
	}
	if err := d.DecodeAssociateRQ(small[0], &rq); err != nil {
		t.Fatal(err)
	}
	if len(rq.PresentationContexts) != 1 || rq.UserInformation.HasUserIdentity || len(rq.PresentationContexts[0].TransferSyntaxes) != 1 {
		t.Fatalf("state leaked: %d contexts, user identity %v", len(rq.PresentationContexts), rq.UserInformation.HasUserIdentity)
	}
	if !bytes.Equal(rq.AppendEncode(nil), small[0]) {
		t.Fatal("re-encoding after reuse differs")
	}
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
	if string(enc[:6]) != "prefix" {
		t.Fatal("AppendEncode overwrote dst")
	}
	var back AssociateRQ
	if err := (Decoder{}).Strict().DecodeAssociateRQ(enc[6:], &back); err != nil {
		t.Fatalf("hand-built RQ does not decode strictly: %v", err)
	}
	if string(back.CalledAETitle()) != "PACS" || string(back.CallingAETitleRaw) != "MODALITY        " || back.ProtocolVersion != 1 ||
		back.UserInformation.MaxLength != 16384 || string(back.UserInformation.UserIdentity.Secondary) != "pw" {
		t.Fatalf("decoded hand-built RQ: %+v", back)
	}

	// In-place AE rewrite and an added context on a decoded RQ.
	pdus, _ := splitStream(readCapture(t, "echo_default.c2s.bin"))
	buf := append([]byte{}, pdus[0]...)
	var d Decoder
	if err := d.DecodeAssociateRQ(buf, &back); err != nil {
		t.Fatal(err)
	}
	PadAETitle(buf[OffsetCalledAETitle:], "REWRITTEN")
	if string(back.CalledAETitle()) != "REWRITTEN" {
		t.Fatalf("in-place rewrite not visible: %q", back.CalledAETitle())
	}
	back.PresentationContexts = append(back.PresentationContexts, PresentationContextRQ{
		ID: 3, AbstractSyntax: []byte("1.2.840.10008.5.1.4.1.1.2"), TransferSyntaxes: [][]byte{[]byte("1.2.840.10008.1.2.1")}})
	enc = back.AppendEncode(nil)
	var again AssociateRQ
	if err := d.DecodeAssociateRQ(enc, &again); err != nil {
		t.Fatal(err)
	}
	if len(again.PresentationContexts) != 2 || again.PresentationContexts[1].ID != 3 || string(again.CalledAETitle()) != "REWRITTEN" ||
		string(again.UserInformation.ImplementationVersionName) != "OFFIS_DCMTK_367" {
		t.Fatalf("modified RQ decoded as %+v", again)
	}
}

func TestAETitleHelpers(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"ANY-SCP         ", "ANY-SCP"}, {" LEADSP         ", "LEADSP"}, {"AE\x00\x00\x00", "AE"},
		{"A B  ", "A B"}, {"                ", ""}, {"", ""},
	} {
		if got := string(TrimAETitle([]byte(tt.in))); got != tt.want {
			t.Errorf("TrimAETitle(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
	for _, tt := range []struct{ in, err string }{
		{"ANY-SCP", ""}, {"lower case ok", ""}, {"1234567890123456", ""},
		{"", "empty"}, {"   ", "only spaces"}, {"12345678901234567", "17 characters"},
		{"A\\B", "backslash at position 1"}, {"A\tB", "byte 0x09 at position 1"}, {"Ä", "byte 0xc3 at position 0"},
	} {
		err := ValidAETitle([]byte(tt.in))
		if (err == nil) != (tt.err == "") || (err != nil && (!strings.Contains(err.Error(), tt.err) || !errors.Is(err, ErrInvalid))) {
			t.Errorf("ValidAETitle(%q) = %v, want %q", tt.in, err, tt.err)
		}
	}
	dst := []byte("XXXXXXXXXXXXXXXXYY")
	PadAETitle(dst, "AE")
	if string(dst) != "AE              YY" {
		t.Errorf("PadAETitle = %q", dst)
	}
	PadAETitle(dst, "ABCDEFGHIJKLMNOPQRS")
	if string(dst) != "ABCDEFGHIJKLMNOPYY" {
		t.Errorf("PadAETitle(long) = %q", dst)
	}
	short := []byte("XXX")
	PadAETitle(short, "A")
	if string(short) != "A  " {
		t.Errorf("PadAETitle(short dst) = %q", short)
	}
}

func TestFixedPDUs(t *testing.T) {
	var d Decoder
	var rj AssociateRJ
	if err := d.DecodeAssociateRJ([]byte{3, 0, 0, 0, 0, 4, 0, 2, 3, 2}, &rj); err != nil || rj.Result != 2 || rj.Source != 3 || rj.Reason != 2 {
		t.Fatalf("RJ = %+v, %v", rj, err)
	}
	if err := (Decoder{}).Strict().DecodeAssociateRJ([]byte{3, 0, 0, 0, 0, 4, 0, 9, 1, 1}, &rj); !errors.Is(err, ErrInvalid) {
		t.Fatalf("strict RJ result 9: %v", err)
	}
	var ab Abort
	in := []byte{7, 0, 0, 0, 0, 4, 0xaa, 0xbb, 2, 6}
	if err := d.DecodeAbort(in, &ab); err != nil || ab.Source != 2 || ab.Reason != 6 || !bytes.Equal(ab.AppendEncode(nil), in) {
		t.Fatalf("A-ABORT = %+v, %v", ab, err)
	}
	var rel ReleaseRQ
	in = []byte{5, 0x01, 0, 0, 0, 4, 1, 2, 3, 4}
	if err := d.DecodeReleaseRQ(in, &rel); err != nil || rel.Reserved != [4]byte{1, 2, 3, 4} || !bytes.Equal(rel.AppendEncode(nil), in) {
		t.Fatalf("A-RELEASE-RQ = %+v, %v", rel, err)
	}
	var rp ReleaseRP
	if err := d.DecodeReleaseRP([]byte{6, 0, 0, 0, 0, 5, 0, 0, 0, 0, 0}, &rp); !errors.Is(err, ErrInvalid) {
		t.Fatalf("A-RELEASE-RP of length 5: %v", err)
	}
}

func TestContextLookup(t *testing.T) {
	// get_series-like reordering does not occur in these captures, but
	// orthanc_scu_echo has five contexts with mixed results.
	rqs, _ := splitStream(readCapture(t, "orthanc_scu_echo.c2s.bin"))
	acs, _ := splitStream(readCapture(t, "orthanc_scu_echo.s2c.bin"))
	var rq AssociateRQ
	var ac AssociateAC
	if err := (&Decoder{}).DecodeAssociateRQ(rqs[0], &rq); err != nil {
		t.Fatal(err)
	}
	if err := (&Decoder{}).DecodeAssociateAC(acs[0], &ac); err != nil {
		t.Fatal(err)
	}
	accepted := 0
	for _, pc := range ac.PresentationContexts {
		p := rq.Context(pc.ID)
		if p == nil || ac.Context(pc.ID) == nil || ac.Context(pc.ID).Result != pc.Result {
			t.Fatalf("context %d not found", pc.ID)
		}
		if pc.Result == 0 {
			accepted++
			if string(p.AbstractSyntax) != "1.2.840.10008.1.1" {
				t.Errorf("accepted context %d is %s, want Verification", pc.ID, p.AbstractSyntax)
			}
		}
	}
	if accepted != 1 || len(ac.PresentationContexts) != 5 || rq.Context(2) != nil || ac.Context(200) != nil {
		t.Fatalf("accepted %d of %d", accepted, len(ac.PresentationContexts))
	}
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
	if err := (Decoder{}).Strict().DecodeAssociateAC(enc, &back); err != nil {
		t.Fatalf("hand-built AC: %v", err)
	}
	u := back.UserInformation
	if len(back.PresentationContexts) != 2 || back.PresentationContexts[1].TransferSyntax != nil || back.Context(1).Result != 0 ||
		!u.HasAsyncOps || u.AsyncOps.MaxPerformed != 3 || len(u.RoleSelections) != 1 || u.RoleSelections[0].SCPRole != 1 ||
		string(u.UserIdentityResponse) != "ticket" || string(u.ImplementationVersionName) != "V1" {
		t.Fatalf("decoded hand-built AC: %+v", back)
	}
	// Sub-items come out in the standard order 0x51, 0x52, 0x53, 0x54, 0x55, 0x59.
	var order []byte
	for _, r := range u.order {
		order = append(order, r.typ)
	}
	if !bytes.Equal(order, []byte{0x51, 0x52, 0x53, 0x54, 0x55, 0x59}) {
		t.Fatalf("sub-item order %x", order)
	}
	// Zero values encode to well-formed PDUs that decode leniently (the zero
	// RQ's AE titles are all spaces, which only AllowAmbiguous accepts).
	d := Decoder{AllowAmbiguous: true}
	var rq AssociateRQ
	if err := d.DecodeAssociateRQ((&AssociateRQ{}).AppendEncode(nil), &rq); err != nil || rq.ProtocolVersion != 1 {
		t.Fatalf("zero RQ: %v", err)
	}
	if err := d.DecodeAssociateAC((&AssociateAC{}).AppendEncode(nil), &back); err != nil {
		t.Fatalf("zero AC: %v", err)
	}
	var p PDataTF
	if err := d.DecodePDataTF((&PDataTF{PDVs: []PDV{{ContextID: 1, MessageControlHeader: MCHCommand | MCHLast, Data: []byte{1, 2}}}}).AppendEncode(nil), &p); err != nil ||
		len(p.PDVs) != 1 || !p.PDVs[0].IsCommand() || !p.PDVs[0].IsLast() {
		t.Fatalf("P-DATA-TF: %+v, %v", p, err)
	}
	rj := AssociateRJ{Result: 1, Source: 1, Reason: 7}
	if got := rj.AppendEncode(nil); !bytes.Equal(got, []byte{3, 0, 0, 0, 0, 4, 0, 1, 1, 7}) {
		t.Fatalf("RJ = %x", got)
	}
	if got := (&ReleaseRP{}).AppendEncode(nil); !bytes.Equal(got, []byte{6, 0, 0, 0, 0, 4, 0, 0, 0, 0}) {
		t.Fatalf("A-RELEASE-RP = %x", got)
	}
	if got := (&Abort{Source: 2, Reason: 1}).AppendEncode(nil); !bytes.Equal(got, []byte{7, 0, 0, 0, 0, 4, 0, 0, 2, 1}) {
		t.Fatalf("A-ABORT = %x", got)
	}
}
