package pdu

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestEnumStrings pins the text of every defined value of each enum and of
// undefined neighbours: they are what `dicomgate decode` and error messages
// show.
func TestEnumStrings(t *testing.T) {
	for _, tc := range []struct {
		v    fmt.Stringer
		want string
	}{
		{RJResult(0), "result 0"},
		{RJResultPermanent, "rejected-permanent"},
		{RJResultTransient, "rejected-transient"},
		{RJResult(3), "result 3"},

		{RJSource(0), "source 0"},
		{RJSourceServiceUser, "service-user"},
		{RJSourceServiceProviderACSE, "service-provider (ACSE related function)"},
		{RJSourceServiceProviderPresentation, "service-provider (presentation related function)"},
		{RJSource(4), "source 4"},

		{AbortSourceServiceUser, "service-user"},
		{AbortSource(1), "source 1"},
		{AbortSourceServiceProvider, "service-provider"},
		{AbortSource(3), "source 3"},

		{AbortReasonNotSpecified, "reason-not-specified"},
		{AbortReasonUnrecognizedPDU, "unrecognized-PDU"},
		{AbortReasonUnexpectedPDU, "unexpected-PDU"},
		{AbortReason(3), "reason 3"},
		{AbortReasonUnrecognizedPDUParameter, "unrecognized-PDU-parameter"},
		{AbortReasonUnexpectedPDUParameter, "unexpected-PDU-parameter"},
		{AbortReasonInvalidPDUParameterValue, "invalid-PDU-parameter-value"},
		{AbortReason(7), "reason 7"},
		{AbortReason(255), "reason 255"},

		{PCAccepted, "accepted"},
		{PCUserRejection, "user-rejection"},
		{PCNoReason, "no-reason (provider rejection)"},
		{PCAbstractSyntaxNotSupported, "abstract-syntax-not-supported"},
		{PCTransferSyntaxesNotSupported, "transfer-syntaxes-not-supported"},
		{PCResult(5), "result 5"},
	} {
		require.Equal(t, tc.want, tc.v.String(), "%T(%d)", tc.v, tc.v)
	}
}

// TestRJDiagnosticString pins every (source, reason) pair PS3.8 §9.3.4
// defines, the same reason byte under different sources, and the reserved
// ones, and that Defined agrees with the table.
func TestRJDiagnosticString(t *testing.T) {
	defined := map[RJDiagnostic]string{
		{RJSourceServiceUser, RJReasonUserNoReasonGiven}:                   "no-reason-given",
		{RJSourceServiceUser, RJReasonApplicationContextNameNotSupported}:  "application-context-name-not-supported",
		{RJSourceServiceUser, RJReasonCallingAETitleNotRecognized}:         "calling-AE-title-not-recognized",
		{RJSourceServiceUser, RJReasonCalledAETitleNotRecognized}:          "called-AE-title-not-recognized",
		{RJSourceServiceProviderACSE, RJReasonACSENoReasonGiven}:           "no-reason-given",
		{RJSourceServiceProviderACSE, RJReasonProtocolVersionNotSupported}: "protocol-version-not-supported",
		{RJSourceServiceProviderPresentation, RJReasonTemporaryCongestion}: "temporary-congestion",
		{RJSourceServiceProviderPresentation, RJReasonLocalLimitExceeded}:  "local-limit-exceeded",
	}
	for _, s := range []RJSource{0, 1, 2, 3, 4, 255} {
		for _, r := range []RJReason{0, 1, 2, 3, 4, 5, 6, 7, 8, 10, 255} {
			d := RJDiagnostic{s, r}
			want, ok := defined[d]
			if !ok {
				want = "reason " + itoa(int(r))
			}
			require.Equal(t, want, d.String(), "source %d reason %d", s, r)
			require.Equal(t, ok, d.Defined(), "source %d reason %d", s, r)
		}
	}
	rj := AssociateRJ{Result: RJResultPermanent, Source: RJSourceServiceProviderACSE, Reason: 2}
	require.Equal(t, "protocol-version-not-supported", rj.Diagnostic().String())
}
