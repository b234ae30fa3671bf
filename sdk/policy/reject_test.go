package policy

import (
	"maps"
	"slices"
	"testing"

	"github.com/dicomgate/dicomgate/sdk/pdu"
	"github.com/stretchr/testify/require"
)

// TestRejectCodesAreDefined: every reject reason a policy may name maps to
// an A-ASSOCIATE-RJ that PS3.8 §9.3.4 defines (the rejector refuses any
// other combination), and to the PS3.8 diagnostic its name describes.
func TestRejectCodesAreDefined(t *testing.T) {
	want := map[string]string{
		ReasonNoReasonGiven:                  "rejected-permanent service-user no-reason-given",
		ReasonApplicationContextNotSupported: "rejected-permanent service-user application-context-name-not-supported",
		ReasonCallingAENotRecognized:         "rejected-permanent service-user calling-AE-title-not-recognized",
		ReasonCalledAENotRecognized:          "rejected-permanent service-user called-AE-title-not-recognized",
		ReasonProtocolVersionNotSupported:    "rejected-permanent service-provider (ACSE related function) protocol-version-not-supported",
		ReasonTemporaryCongestion:            "rejected-transient service-provider (presentation related function) temporary-congestion",
		ReasonLocalLimitExceeded:             "rejected-transient service-provider (presentation related function) local-limit-exceeded",
	}
	require.ElementsMatch(t, rejectReasonNames(), slices.Collect(maps.Keys(want)))
	for _, name := range rejectReasonNames() {
		res, src, code, ok := RejectCode(name)
		require.True(t, ok, name)
		rj := pdu.AssociateRJ{Result: pdu.RJResult(res), Source: pdu.RJSource(src), Reason: pdu.RJReason(code)}
		require.True(t, rj.Diagnostic().Defined(), name)
		require.Equal(t, want[name], rj.Result.String()+" "+rj.Source.String()+" "+rj.Diagnostic().String())
	}
	_, _, _, ok := RejectCode("called-AE-title-not-recognized")
	require.False(t, ok, "only the policy's own names are reject reasons")
}
