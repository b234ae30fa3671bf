package rejector

import (
	"testing"

	"github.com/dicomgate/dicomgate/sdk/pdu"
	"github.com/stretchr/testify/require"
)

// TestRJCodesAreEveryDefinedRJ: the rejector has a counter (and a metric
// series) for exactly the A-ASSOCIATE-RJs PS3.8 §9.3.4 defines, which are the
// codes rejectwire.Verify lets through: either result with each reason its
// source defines (pdu.RJDiagnostic.Defined).
func TestRJCodesAreEveryDefinedRJ(t *testing.T) {
	var want [][3]byte
	for _, r := range []pdu.RJResult{pdu.RJResultPermanent, pdu.RJResultTransient} {
		for s := range 256 {
			for reason := range 256 {
				if (pdu.RJDiagnostic{Source: pdu.RJSource(s), Reason: pdu.RJReason(reason)}).Defined() {
					want = append(want, [3]byte{byte(r), byte(s), byte(reason)})
				}
			}
		}
	}
	require.ElementsMatch(t, want, rjCodes[:])
}
