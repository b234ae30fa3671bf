package pdu

import (
	"bytes"
	"encoding/json"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"
)

// decoded holds one value of every PDU type, reused across calls as a proxy
// would.
type decoded struct {
	rq  AssociateRQ
	ac  AssociateAC
	rj  AssociateRJ
	pd  PDataTF
	rrq ReleaseRQ
	rrp ReleaseRP
	ab  Abort
}

// decodeEncode decodes one PDU by its type and re-encodes it.
func (v *decoded) decodeEncode(d *Decoder, pdu []byte) ([]byte, error) {
	if len(pdu) == 0 {
		return nil, d.DecodeAssociateRQ(pdu, &v.rq)
	}
	switch Type(pdu[0]) {
	case TypeAssociateRQ:
		if err := d.DecodeAssociateRQ(pdu, &v.rq); err != nil {
			return nil, err
		}
		return v.rq.AppendEncode(nil), nil
	case TypeAssociateAC:
		if err := d.DecodeAssociateAC(pdu, &v.ac); err != nil {
			return nil, err
		}
		return v.ac.AppendEncode(nil), nil
	case TypeAssociateRJ:
		if err := d.DecodeAssociateRJ(pdu, &v.rj); err != nil {
			return nil, err
		}
		return v.rj.AppendEncode(nil), nil
	case TypePDataTF:
		if err := d.DecodePDataTF(pdu, &v.pd); err != nil {
			return nil, err
		}
		return v.pd.AppendEncode(nil), nil
	case TypeReleaseRQ:
		if err := d.DecodeReleaseRQ(pdu, &v.rrq); err != nil {
			return nil, err
		}
		return v.rrq.AppendEncode(nil), nil
	case TypeReleaseRP:
		if err := d.DecodeReleaseRP(pdu, &v.rrp); err != nil {
			return nil, err
		}
		return v.rrp.AppendEncode(nil), nil
	case TypeAbort:
		if err := d.DecodeAbort(pdu, &v.ab); err != nil {
			return nil, err
		}
		return v.ab.AppendEncode(nil), nil
	}
	return nil, unknownTypeError(pdu)
}

// expectedPDU mirrors the "expected.*_first_pdu" objects of index.json, which
// come from the receiving tool's own debug log.
type expectedPDU struct {
	PDUType              int     `json:"pdu_type"`
	PDUTypeName          string  `json:"pdu_type_name"`
	PDULength            *int    `json:"pdu_length"`
	CalledAE             string  `json:"called_ae"`
	CallingAE            string  `json:"calling_ae"`
	ApplicationContext   string  `json:"application_context"`
	MaxPDULength         *uint32 `json:"max_pdu_length"`
	ImplementationClass  string  `json:"implementation_class_uid"`
	ImplementationVer    string  `json:"implementation_version_name"`
	PresentationContexts []struct {
		ID               uint8    `json:"id"`
		AbstractSyntax   string   `json:"abstract_syntax"`
		TransferSyntaxes []string `json:"transfer_syntaxes"`
		Result           *uint8   `json:"result"`
		TransferSyntax   *string  `json:"transfer_syntax"`
	} `json:"presentation_contexts"`
	RoleSelection       []json.RawMessage `json:"role_selection"`
	ExtendedNegotiation []json.RawMessage `json:"extended_negotiation"`
	UserIdentity        *struct {
		Type                      uint8   `json:"type"`
		PositiveResponseRequested bool    `json:"positive_response_requested"`
		PrimaryField              *string `json:"primary_field"`
		SecondaryField            *string `json:"secondary_field"`
		PrimaryFieldLength        *int    `json:"primary_field_length"`
	} `json:"user_identity"`
	UserIdentityAC json.RawMessage `json:"user_identity_ac"`
	Result         uint8           `json:"result"`
	Source         uint8           `json:"source"`
	Reason         uint8           `json:"reason"`
}

// TestGoldenCaptures decodes every PDU of every capture, checks the PDU
// sequence, the first PDU in each direction against what the receiving
// dcmtk/Orthanc logged, and that encode(decode(pdu)) reproduces the bytes
// (one subtest per capture and direction; the first PDU's fields in a
// subtest of their own, all differences listed at once).
func TestGoldenCaptures(t *testing.T) {
	var d Decoder
	var v decoded
	for _, c := range loadIndex(t) {
		t.Run(c.Name, func(t *testing.T) {
			for _, dir := range []string{"c2s", "s2c"} {
				t.Run(dir, func(t *testing.T) {
					file := c.Files.C2S
					var wantSeq []string
					if dir == "s2c" {
						file = c.Files.S2C
					}
					if c.PDUSequence != nil {
						wantSeq = c.PDUSequence.C2S
						if dir == "s2c" {
							wantSeq = c.PDUSequence.S2C
						}
					}
					stream := readCapture(t, file)
					pdus, err := splitStream(stream)
					var exp *expectedPDU
					if raw := c.Expected[dir+"_first_pdu"]; len(raw) > 0 && string(raw) != "null" {
						exp = new(expectedPDU)
						require.NoError(t, json.Unmarshal(raw, exp), "index.json %s expected.%s_first_pdu", c.Name, dir)
					}
					switch {
					case len(stream) == 0:
						// The peer sent nothing (TLS mismatch: the server reset).
						require.True(t, exp == nil && len(wantSeq) == 0, "%s: empty capture but index.json expects PDUs", file)
						return
					case stream[0] == 0x16:
						// TLS ciphertext: either a TLS capture (the expected
						// fields describe the tunnelled PDUs) or a TLS client
						// on a plain port (dcmtk: "Unrecognized PDU type: 16").
						require.ErrorIs(t, err, ErrTLS, "%s: framing TLS bytes", file)
						require.ErrorIs(t, err, ErrNotDICOM, "%s: framing TLS bytes", file)
						require.Equal(t, c.isTLS(), exp != nil, "%s: TLS bytes with unexpected expectations", file)
						if !c.isTLS() {
							require.Equal(t, []string{"unknown"}, wantSeq, "%s: pdu_sequence", file)
						}
						return
					}
					require.NoError(t, err, "%s: framing", file)
					require.Len(t, wantSeq, len(pdus), "%s: %d PDUs, index.json lists %d: %v", file, len(pdus), len(wantSeq), wantSeq)
					for i, p := range pdus {
						require.Equal(t, wantSeq[i], Type(p[0]).String(), "%s: PDU %d", file, i)
						enc, err := v.decodeEncode(&d, p)
						require.NoError(t, err, "%s: PDU %d (%s)", file, i, wantSeq[i])
						require.True(t, bytes.Equal(enc, p), "%s: PDU %d (%s): re-encoding differs at byte %d (got %d bytes, want %d)", file, i, wantSeq[i], firstDiff(enc, p), len(enc), len(p))
						if i == 0 && exp != nil {
							t.Run("first PDU", func(t *testing.T) {
								checkExpected(t, file, p, &v, exp)
							})
						}
					}
					if exp != nil {
						require.NotEmpty(t, pdus, "%s: no PDU but expected %s", file, exp.PDUTypeName)
					}
				})
			}
		})
	}
}

// checkExpected compares the decoded first PDU p (in v) with what the
// receiving tool logged (exp), listing every differing field at once.
func checkExpected(t *testing.T, file string, p []byte, v *decoded, exp *expectedPDU) {
	t.Helper()
	require.Empty(t, expectedDiffs(t, file, p, v, exp), "%s first PDU differs from index.json", file)
}

// expectedDiffs returns one line per field of the first PDU that differs
// from exp; it stops the test only where the two cannot be compared further
// (then naming the differences found so far).
func expectedDiffs(t *testing.T, file string, p []byte, v *decoded, exp *expectedPDU) []string {
	t.Helper()
	var diffs []string
	eq := func(field string, got, want any) {
		if fmt.Sprint(got) != fmt.Sprint(want) {
			diffs = append(diffs, fmt.Sprintf("%s first PDU: %s = %v, want %v", file, field, got, want))
		}
	}
	eq("pdu type", Type(p[0]).String(), exp.PDUTypeName)
	eq("pdu type number", int(p[0]), exp.PDUType)
	if exp.PDULength != nil {
		eq("pdu length", len(p)-HeaderLen, *exp.PDULength)
	}
	var ui *UserInformation
	switch Type(p[0]) {
	case TypeAssociateRQ:
		rq := &v.rq
		eq("called AE", string(rq.CalledAETitle()), exp.CalledAE)
		eq("calling AE", string(rq.CallingAETitle()), exp.CallingAE)
		eq("application context", string(rq.ApplicationContext), exp.ApplicationContext)
		eq("protocol version", rq.ProtocolVersion, 1)
		require.Len(t, exp.PresentationContexts, len(rq.PresentationContexts),
			"%s: %d presentation contexts, want %d (other differences: %q)", file, len(rq.PresentationContexts), len(exp.PresentationContexts), diffs)
		for i, pc := range rq.PresentationContexts {
			e := exp.PresentationContexts[i]
			eq(fmt.Sprintf("context %d id", i), pc.ID, e.ID)
			eq(fmt.Sprintf("context %d abstract syntax", i), string(pc.AbstractSyntax), e.AbstractSyntax)
			var ts []string
			for _, s := range pc.TransferSyntaxes {
				ts = append(ts, string(s))
			}
			eq(fmt.Sprintf("context %d transfer syntaxes", i), ts, e.TransferSyntaxes)
		}
		ui = &rq.UserInformation
		if exp.UserIdentity == nil {
			eq("has user identity", ui.HasUserIdentity, false)
		} else {
			id := ui.UserIdentity
			eq("has user identity", ui.HasUserIdentity, true)
			eq("user identity type", id.Type, exp.UserIdentity.Type)
			eq("positive response requested", id.PositiveResponseRequested, exp.UserIdentity.PositiveResponseRequested)
			if exp.UserIdentity.PrimaryField != nil {
				eq("user identity primary", string(id.Primary), *exp.UserIdentity.PrimaryField)
			}
			if exp.UserIdentity.PrimaryFieldLength != nil {
				eq("user identity primary length", len(id.Primary), *exp.UserIdentity.PrimaryFieldLength)
			}
			want := ""
			if exp.UserIdentity.SecondaryField != nil {
				want = *exp.UserIdentity.SecondaryField
			}
			eq("user identity secondary", string(id.Secondary), want)
		}
	case TypeAssociateAC:
		ac := &v.ac
		eq("called AE", string(ac.CalledAETitle()), exp.CalledAE)
		eq("calling AE", string(ac.CallingAETitle()), exp.CallingAE)
		eq("application context", string(ac.ApplicationContext), exp.ApplicationContext)
		require.Len(t, exp.PresentationContexts, len(ac.PresentationContexts),
			"%s: %d presentation contexts, want %d (other differences: %q)", file, len(ac.PresentationContexts), len(exp.PresentationContexts), diffs)
		for i, pc := range ac.PresentationContexts {
			e := exp.PresentationContexts[i]
			eq(fmt.Sprintf("context %d id", i), pc.ID, e.ID)
			require.NotNil(t, e.Result, "%s: expected context %d has no result (other differences: %q)", file, i, diffs)
			eq(fmt.Sprintf("context %d result", i), uint8(pc.Result), *e.Result)
			if e.TransferSyntax != nil {
				eq(fmt.Sprintf("context %d transfer syntax", i), string(pc.TransferSyntax), *e.TransferSyntax)
			}
		}
		ui = &ac.UserInformation
		eq("has user identity response", ui.HasUserIdentityResponse, len(exp.UserIdentityAC) > 0 && string(exp.UserIdentityAC) != "null")
	case TypeAssociateRJ:
		eq("RJ result", uint8(v.rj.Result), exp.Result)
		eq("RJ source", uint8(v.rj.Source), exp.Source)
		eq("RJ reason", uint8(v.rj.Reason), exp.Reason)
		return diffs
	default:
		require.FailNowf(t, "no expectations", "%s: no expectations for %s (other differences: %q)", file, Type(p[0]), diffs)
	}
	if exp.MaxPDULength != nil {
		eq("has max length", ui.HasMaxLength, true)
		eq("max PDU length", ui.MaxLength, *exp.MaxPDULength)
	}
	eq("implementation class UID", string(ui.ImplementationClassUID), exp.ImplementationClass)
	eq("implementation version name", string(ui.ImplementationVersionName), exp.ImplementationVer)
	eq("role selections", len(ui.RoleSelections), len(exp.RoleSelection))
	eq("extended negotiations", len(ui.ExtendedNegotiations), len(exp.ExtendedNegotiation))
	return diffs
}

// firstDiff returns the index of the first differing byte of a and b.
func firstDiff(a, b []byte) int {
	for i := 0; i < len(a) && i < len(b); i++ {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}
