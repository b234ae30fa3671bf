package pdu

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/require"
)

// addCaptureSeeds adds every PDU of every plain capture (up to maxLen bytes)
// plus the TLS and empty streams as fuzz seeds.
func addCaptureSeeds(f *testing.F, maxLen int) {
	for _, c := range loadIndex(f) {
		for _, file := range []string{c.Files.C2S, c.Files.S2C} {
			stream := readCapture(f, file)
			pdus, err := splitStream(stream)
			if err != nil {
				f.Add(stream[:min(len(stream), maxLen)])
				continue
			}
			for _, p := range pdus {
				if len(p) <= maxLen {
					f.Add(p)
				}
			}
		}
	}
}

// FuzzDecode decodes arbitrary bytes as each PDU type: it must never panic,
// Decode (a new value) and DecodeX (a value reused across inputs) agree, and
// whatever decodes must re-encode to bytes that decode again to the same
// encoding (decode→encode→decode is stable). Canonical inputs (as every
// capture) must re-encode byte for byte; TestGoldenCaptures checks those.
// Every A-ASSOCIATE-RQ the ambiguity checks accept must satisfy the naive
// PS3.5 rules (checkUnambiguous): AE title fields, every UID, the username.
func FuzzDecode(f *testing.F) {
	addCaptureSeeds(f, 1<<14)
	f.Add([]byte{0x01, 0, 0xff, 0xff, 0xff, 0xff})
	f.Add([]byte("GET / HTTP/1.1\r\n\r\n"))
	f.Add(rqBytes(TypeAssociateRQ, appCtx, ambPC(1, "1.2.840.10008.1.1\x00junk", "1.2.840.10008.1.2"), userInfo))
	f.Add(withAEs("ANY-SCP         ", "CT1\x00SPOOF       "))
	f.Add(rqBytes(TypeAssociateRQ, appCtx, pcEcho, ambUI(ident(1, "alice", ""), ident(1, "mallory", ""))))
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, d := range []*Decoder{{MaxPDULength: 1 << 18}, Decoder{MaxPDULength: 1 << 18}.Strict(), {AllowAmbiguous: true, MaxPDULength: 1 << 18}} {
			var v1, v2 decoded
			for typ := TypeAssociateRQ; typ <= TypeAbort; typ++ {
				in := data
				if len(in) > 0 {
					in = append([]byte{byte(typ)}, data[1:]...)
				}
				enc1, err := v1.decodeEncode(d, in)
				// Decode into a fresh value agrees with decoding into the
				// reused one: same verdict, same encoding.
				p, perr := d.Decode(in)
				require.Equal(t, err == nil, perr == nil, "%s: Decode error %v, DecodeX into a reused value %v", typ, perr, err)
				if err != nil {
					require.IsType(t, (*Error)(nil), err, "%s: error %T is not *Error", typ, err)
					continue
				}
				enc := p.AppendEncode(nil)
				require.True(t, bytes.Equal(enc, enc1), "%s: Decode re-encodes differently from DecodeX into a reused value\nin  %x\nnew %x\nold %x", typ, in, enc, enc1)
				if typ == TypeAssociateRQ && !d.AllowAmbiguous {
					checkUnambiguous(t, in, &v1.rq)
				}
				enc2, err := v2.decodeEncode(&Decoder{MaxPDULength: 1 << 20, AllowAmbiguous: d.AllowAmbiguous}, enc1)
				require.NoError(t, err, "%s: re-encoding does not decode\nin  %x\nenc %x", typ, in, enc1)
				require.True(t, bytes.Equal(enc1, enc2), "%s: encode(decode(encode(decode(x)))) != encode(decode(x))\nin   %x\nenc1 %x\nenc2 %x", typ, in, enc1, enc2)
			}
		}
	})
}

// FuzzFramer frames arbitrary streams: never panics, need is consistent with
// the header, and splitting the stream at any point yields the same PDUs.
func FuzzFramer(f *testing.F) {
	for _, c := range loadIndex(f) {
		for _, file := range []string{c.Files.C2S, c.Files.S2C} {
			s := readCapture(f, file)
			f.Add(s[:min(len(s), 4096)], uint16(12))
		}
	}
	f.Fuzz(func(t *testing.T, stream []byte, cut uint16) {
		fr := Framer{MaxPDULength: 1 << 16}
		var whole [][]byte
		rest := stream
		var wholeErr error
		for len(rest) > 0 {
			h, need, err := fr.Peek(rest)
			if err != nil {
				wholeErr = err
				break
			}
			if need > 0 {
				if len(rest) >= HeaderLen {
					require.Equal(t, h.Total(), len(rest)+need, "need %d inconsistent with total %d and %d buffered", need, h.Total(), len(rest))
				} else {
					require.Equal(t, HeaderLen-len(rest), need, "need %d with %d header bytes", need, len(rest))
				}
				break
			}
			whole = append(whole, rest[:h.Total()])
			rest = rest[h.Total():]
		}
		// The same stream delivered in two pieces split at cut.
		split := int(cut) % (len(stream) + 1)
		var got [][]byte
		var buf []byte
		var gotErr error
		for _, piece := range [][]byte{stream[:split], stream[split:]} {
			buf = append(buf, piece...)
			for len(buf) > 0 && gotErr == nil {
				h, need, err := fr.Peek(buf)
				if err != nil {
					gotErr = err
					break
				}
				if need > 0 {
					break
				}
				got = append(got, append([]byte(nil), buf[:h.Total()]...))
				buf = buf[h.Total():]
			}
		}
		require.Equal(t, len(whole), len(got), "split at %d: %d PDUs (err %v), whole: %d PDUs (err %v)", split, len(got), gotErr, len(whole), wholeErr)
		require.Equal(t, wholeErr == nil, gotErr == nil, "split at %d: %d PDUs (err %v), whole: %d PDUs (err %v)", split, len(got), gotErr, len(whole), wholeErr)
		for i := range got {
			require.True(t, bytes.Equal(got[i], whole[i]), "split at %d: PDU %d differs", split, i)
		}
	})
}

// FuzzCommandSet reads arbitrary bytes as a command set: never panics, and
// every decoded byte slice lies inside the input.
func FuzzCommandSet(f *testing.F) {
	for _, c := range loadIndex(f) {
		for _, file := range []string{c.Files.C2S, c.Files.S2C} {
			s := readCapture(f, file)
			if len(s) == 0 || s[0] == 0x16 {
				continue
			}
			for _, m := range dimseMessages(f, s) {
				f.Add(m.command)
			}
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var cs CommandSet
		if err := ReadCommandSet(b, &cs); err != nil {
			require.IsType(t, (*Error)(nil), err, "error %T is not *Error", err)
			return
		}
		require.True(t, cs.HasCommandField, "success without CommandField")
		for _, s := range [][]byte{cs.AffectedSOPClassUID, cs.RequestedSOPClassUID, cs.MoveDestination, cs.ErrorComment,
			cs.AffectedSOPInstanceUID, cs.RequestedSOPInstanceUID, cs.MoveOriginatorAETitle} {
			require.LessOrEqual(t, len(s), len(b), "field of %d bytes from %d input bytes", len(s), len(b))
		}
	})
}
