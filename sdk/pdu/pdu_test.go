package pdu

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// TestDecodeRoundTripsCaptures decodes every PDU of every capture with the
// allocating Decode and checks the dynamic type against the type byte and
// that AppendEncode reproduces the bytes (encode(Decode(b)) == b). Streams
// that are not DICOM (TLS records, or nothing) must fail with ErrNotDICOM.
func TestDecodeRoundTripsCaptures(t *testing.T) {
	total, listed := 0, 0
	for _, c := range loadIndex(t) {
		if c.PDUSequence != nil {
			for _, name := range append(c.PDUSequence.C2S, c.PDUSequence.S2C...) {
				if name != "unknown" {
					listed++
				}
			}
		}
		for _, file := range []string{c.Files.C2S, c.Files.S2C} {
			stream := readCapture(t, file)
			if len(stream) == 0 {
				continue // the peer sent nothing (TLS mismatch: the server reset)
			}
			if stream[0] == 0x16 {
				_, err := Decode(stream)
				require.ErrorIs(t, err, ErrTLS, file)
				require.ErrorIs(t, err, ErrNotDICOM, file)
				continue
			}
			pdus, err := splitStream(stream)
			require.NoError(t, err, file)
			require.NotEmpty(t, pdus, file)
			for i, b := range pdus {
				p, err := Decode(b)
				require.NoError(t, err, "%s PDU %d", file, i)
				require.Equal(t, Type(b[0]), p.Type(), "%s PDU %d", file, i)
				require.Equal(t, b, p.AppendEncode(nil), "%s PDU %d (%s): re-encoding differs", file, i, p.Type())
				total++
			}
		}
	}
	// Every PDU index.json lists was round-tripped (none silently skipped).
	require.Positive(t, listed)
	require.Equal(t, listed, total)
}

// TestDecodeTypes checks that Decode returns the concrete type of each PDU
// type byte, the one the matching DecodeX fills.
func TestDecodeTypes(t *testing.T) {
	rq := &AssociateRQ{ProtocolVersion: 1, CalledAETitleRaw: []byte("CALLED"), CallingAETitleRaw: []byte("CALLING"),
		ApplicationContext: []byte("1.2.840.10008.3.1.1.1"),
		PresentationContexts: []PresentationContextRQ{{ID: 1, AbstractSyntax: []byte("1.2.840.10008.1.1"),
			TransferSyntaxes: [][]byte{[]byte("1.2.840.10008.1.2")}}},
		UserInformation: UserInformation{MaxLength: 16384, HasMaxLength: true, ImplementationClassUID: []byte("1.2.3")}}
	ac := &AssociateAC{ProtocolVersion: 1, CalledAETitleRaw: []byte("CALLED"), CallingAETitleRaw: []byte("CALLING"),
		ApplicationContext:   []byte("1.2.840.10008.3.1.1.1"),
		PresentationContexts: []PresentationContextAC{{ID: 1, Result: PCAccepted, TransferSyntax: []byte("1.2.840.10008.1.2")}},
		UserInformation:      UserInformation{MaxLength: 16384, HasMaxLength: true, ImplementationClassUID: []byte("1.2.3")}}
	for _, want := range []PDU{
		rq, ac,
		&AssociateRJ{Result: RJResultTransient, Source: RJSourceServiceProviderPresentation, Reason: RJReasonLocalLimitExceeded},
		&PDataTF{PDVs: []PDV{{ContextID: 1, MessageControlHeader: MCHCommand | MCHLast, Data: []byte{1, 2}}}},
		&ReleaseRQ{}, &ReleaseRP{},
		&Abort{Source: AbortSourceServiceProvider, Reason: AbortReasonUnexpectedPDU},
	} {
		b := want.AppendEncode(nil)
		require.Equal(t, byte(want.Type()), b[0])
		got, err := Decode(b)
		require.NoError(t, err, want.Type().String())
		require.IsType(t, want, got)
		require.Equal(t, b, got.AppendEncode(nil), want.Type().String())
	}
	rj, err := Decode((&AssociateRJ{Result: RJResultPermanent, Source: RJSourceServiceUser, Reason: RJReasonCalledAETitleNotRecognized}).AppendEncode(nil))
	require.NoError(t, err)
	require.Equal(t, RJDiagnostic{RJSourceServiceUser, RJReasonCalledAETitleNotRecognized}, rj.(*AssociateRJ).Diagnostic())
}

// TestDecodeErrors checks that Decode refuses what the DecodeX methods
// refuse, returns no value with an error, and classifies non-DICOM bytes.
func TestDecodeErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   []byte
		want error
	}{
		{"empty", nil, ErrTruncated},
		{"short header", []byte{0x03, 0, 0}, ErrTruncated},
		{"unknown type", []byte{0x08, 0, 0, 0, 0, 4, 0, 0, 0, 0}, ErrUnknownType},
		{"TLS", []byte{0x16, 0x03, 0x01, 0, 0x10}, ErrTLS},
		{"HTTP", []byte("GET / HTTP/1.1\r\n"), ErrHTTP},
		{"RJ of length 5", []byte{0x03, 0, 0, 0, 0, 5, 0, 1, 1, 1, 0}, ErrInvalid},
		{"trailing bytes", []byte{0x05, 0, 0, 0, 0, 4, 0, 0, 0, 0, 0}, ErrInvalid},
		{"reserved PDV bits", []byte{0x04, 0, 0, 0, 0, 6, 0, 0, 0, 2, 1, 0x04}, ErrInvalid},
	} {
		p, err := Decode(tc.in)
		require.ErrorIs(t, err, tc.want, tc.name)
		require.Nil(t, p, tc.name)
	}
	// The Decoder's settings apply: a limit below the PDU's length refuses it.
	d := Decoder{MaxPDULength: 2}
	_, err := d.Decode((&ReleaseRQ{}).AppendEncode(nil))
	require.ErrorIs(t, err, ErrTooLarge)
}
