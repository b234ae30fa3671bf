package pdu

import (
	"bytes"
	"encoding/binary"
	"testing"

	"github.com/stretchr/testify/require"
)

// rawItems splits the items of b (a PDU's variable part or an item's content)
// into whole items, header included; b must be well formed.
func rawItems(tb testing.TB, b []byte) [][]byte {
	tb.Helper()
	var out [][]byte
	for len(b) > 0 {
		require.True(tb, len(b) >= 4 && int(binary.BigEndian.Uint16(b[2:]))+4 <= len(b), "malformed items % x", b)
		n := 4 + int(binary.BigEndian.Uint16(b[2:]))
		out = append(out, b[:n:n])
		b = b[n:]
	}
	return out
}

// withContent returns item (header included) with its content replaced.
func withContent(item, content []byte) []byte {
	out := append([]byte{item[0], item[1], 0, 0}, content...)
	binary.BigEndian.PutUint16(out[2:], uint16(len(content)))
	return out
}

// withItems returns the A-ASSOCIATE PDU p with its variable items replaced.
func withItems(p []byte, items [][]byte) []byte {
	out := append([]byte(nil), p[:OffsetVariableItems]...)
	for _, it := range items {
		out = append(out, it...)
	}
	binary.BigEndian.PutUint32(out[2:], uint32(len(out)-HeaderLen))
	return out
}

// TestFastPathMatchesGeneral checks that the fast paths of DecodeAssociateRQ
// (items in the usual order, abstract syntax before transfer syntaxes,
// user information starting with 0x51, 0x52, 0x55) decode exactly as the
// general loops: every real RQ is decoded once as captured and once rewritten
// so that the general loop has to do the work (a leading unknown item, a
// leading unknown user-information sub-item, abstract syntaxes after the first
// transfer syntax). The
// values must agree except for the inserted item and the abstract syntax
// position, and every variant must re-encode byte for byte.
func TestFastPathMatchesGeneral(t *testing.T) {
	n := 0
	for _, c := range loadIndex(t) {
		pdus, err := splitStream(readCapture(t, c.Files.C2S))
		if err != nil {
			continue
		}
		for i, p := range pdus {
			if Type(p[0]) != TypeAssociateRQ {
				continue
			}
			n++
			var d Decoder
			var want AssociateRQ
			require.NoError(t, d.DecodeAssociateRQ(p, &want), "%s PDU %d", c.Files.C2S, i)
			items := rawItems(t, p[OffsetVariableItems:])

			check := func(variant string, in []byte, adjust func(got *AssociateRQ)) {
				t.Helper()
				var got AssociateRQ
				require.NoError(t, d.DecodeAssociateRQ(in, &got), "%s PDU %d, %s", c.Files.C2S, i, variant)
				enc := got.AppendEncode(nil)
				require.True(t, bytes.Equal(enc, in), "%s PDU %d, %s: re-encoding differs at byte %d", c.Files.C2S, i, variant, firstDiff(enc, in))
				adjust(&got)
				w := want
				w.raw, got.raw = associateRaw{}, associateRaw{}
				w.CalledAETitleRaw, got.CalledAETitleRaw = nil, nil
				w.CallingAETitleRaw, got.CallingAETitleRaw = nil, nil
				require.Equal(t, w, got, "%s PDU %d, %s: decoded differently", c.Files.C2S, i, variant)
			}

			// A leading unknown item: the general item loop decodes all.
			lead := append([][]byte{{0x77, 0, 0, 1, 'x'}}, items...)
			check("leading unknown item", withItems(p, lead), func(got *AssociateRQ) {
				require.True(t, len(got.UnknownItems) > 0 && got.UnknownItems[0].Type == 0x77, "%s PDU %d: unknown item not kept: %+v", c.Files.C2S, i, got.UnknownItems)
				got.UnknownItems = got.UnknownItems[1:]
				if len(got.UnknownItems) == 0 {
					got.UnknownItems = want.UnknownItems
				}
			})

			// Abstract syntaxes after the first transfer syntax: the general
			// sub-item loop decodes them and the transfer syntaxes after them.
			swapped := make([][]byte, len(items))
			for k, it := range items {
				swapped[k] = it
				if it[0] != ItemPresentationContextRQ || len(it) < 8 {
					continue
				}
				var first, as, rest []byte
				for _, s := range rawItems(t, it[8:]) {
					switch {
					case s[0] == ItemAbstractSyntax:
						as = append(as, s...)
					case first == nil:
						first = s
					default:
						rest = append(rest, s...)
					}
				}
				swapped[k] = withContent(it, bytes.Join([][]byte{it[4:8], first, as, rest}, nil))
			}
			check("abstract syntax second", withItems(p, swapped), func(got *AssociateRQ) {
				for k := range got.PresentationContexts {
					got.PresentationContexts[k].asPos = want.PresentationContexts[k].asPos
				}
			})

			// A leading unknown user-information sub-item: the general
			// sub-item loop decodes all of them.
			uiLead := make([][]byte, len(items))
			for k, it := range items {
				uiLead[k] = it
				if it[0] == ItemUserInformation {
					uiLead[k] = withContent(it, append([]byte{0x5f, 0, 0, 1, 'y'}, it[4:]...))
				}
			}
			check("leading unknown sub-item", withItems(p, uiLead), func(got *AssociateRQ) {
				u := &got.UserInformation
				require.True(t, len(u.Unknown) > 0 && u.Unknown[0].Type == 0x5f && len(u.order) > 0 && u.order[0].raw,
					"%s PDU %d: unknown sub-item not kept: %+v", c.Files.C2S, i, u.Unknown)
				u.Unknown = u.Unknown[1:]
				if len(u.Unknown) == 0 {
					u.Unknown = want.UserInformation.Unknown
				}
				u.order = u.order[1:]
				for k := range u.order {
					if u.order[k].raw {
						u.order[k].index--
					}
				}
			})
		}
	}
	require.NotZero(t, n, "no A-ASSOCIATE-RQ in the captures")
}
