package pdu

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// The enums' texts are what `dicomgate decode` and error messages show;
// every defined value and one undefined value of each is pinned.

func TestRJResultString(t *testing.T) {
	for v, want := range map[RJResult]string{
		0: "result 0", RJResultPermanent: "rejected-permanent", RJResultTransient: "rejected-transient", 3: "result 3",
	} {
		require.Equal(t, want, v.String())
	}
}

func TestRJSourceString(t *testing.T) {
	for v, want := range map[RJSource]string{
		0:                                   "source 0",
		RJSourceServiceUser:                 "service-user",
		RJSourceServiceProviderACSE:         "service-provider (ACSE related function)",
		RJSourceServiceProviderPresentation: "service-provider (presentation related function)",
		4:                                   "source 4",
	} {
		require.Equal(t, want, v.String())
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
	for s := RJSource(0); s <= 4; s++ {
		for r := RJReason(0); r <= 10; r++ {
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

func TestAbortSourceString(t *testing.T) {
	for v, want := range map[AbortSource]string{
		AbortSourceServiceUser: "service-user", 1: "source 1", AbortSourceServiceProvider: "service-provider", 3: "source 3",
	} {
		require.Equal(t, want, v.String())
	}
}

func TestAbortReasonString(t *testing.T) {
	for v, want := range map[AbortReason]string{
		AbortReasonNotSpecified:             "reason-not-specified",
		AbortReasonUnrecognizedPDU:          "unrecognized-PDU",
		AbortReasonUnexpectedPDU:            "unexpected-PDU",
		3:                                   "reason 3",
		AbortReasonUnrecognizedPDUParameter: "unrecognized-PDU-parameter",
		AbortReasonUnexpectedPDUParameter:   "unexpected-PDU-parameter",
		AbortReasonInvalidPDUParameterValue: "invalid-PDU-parameter-value",
		7:                                   "reason 7",
	} {
		require.Equal(t, want, v.String())
	}
}

func TestPCResultString(t *testing.T) {
	for v, want := range map[PCResult]string{
		PCAccepted:                     "accepted",
		PCUserRejection:                "user-rejection",
		PCNoReason:                     "no-reason (provider rejection)",
		PCAbstractSyntaxNotSupported:   "abstract-syntax-not-supported",
		PCTransferSyntaxesNotSupported: "transfer-syntaxes-not-supported",
		5:                              "result 5",
	} {
		require.Equal(t, want, v.String())
	}
}
