package policy

import "github.com/dicomgate/dicomgate/sdk/pdu"

// Reject reason names used in rejectReason, defaultRejectReason and
// Decision.RejectReason (DICOM PS3.8 §9.3.4, A-ASSOCIATE-RJ).
const (
	ReasonNoReasonGiven                  = "no-reason-given"
	ReasonApplicationContextNotSupported = "application-context-not-supported"
	ReasonCallingAENotRecognized         = "calling-ae-not-recognized"
	ReasonCalledAENotRecognized          = "called-ae-not-recognized"
	ReasonProtocolVersionNotSupported    = "protocol-version-not-supported"
	ReasonTemporaryCongestion            = "temporary-congestion"
	ReasonLocalLimitExceeded             = "local-limit-exceeded"
)

// rejectCodes maps each reason name to its A-ASSOCIATE-RJ result, source
// and reason/diagnostic (PDU offsets 7, 8 and 9). The names are the policy's
// own (PS3.8 spells them as pdu.RJDiagnostic's String does); nothing here
// calls a String, so the filter, which links this table, links no name of
// sdk/pdu's.
var rejectCodes = []struct {
	name   string
	result pdu.RJResult
	source pdu.RJSource
	reason pdu.RJReason
}{
	{ReasonNoReasonGiven, pdu.RJResultPermanent, pdu.RJSourceServiceUser, pdu.RJReasonUserNoReasonGiven},
	{ReasonApplicationContextNotSupported, pdu.RJResultPermanent, pdu.RJSourceServiceUser, pdu.RJReasonApplicationContextNameNotSupported},
	{ReasonCallingAENotRecognized, pdu.RJResultPermanent, pdu.RJSourceServiceUser, pdu.RJReasonCallingAETitleNotRecognized},
	{ReasonCalledAENotRecognized, pdu.RJResultPermanent, pdu.RJSourceServiceUser, pdu.RJReasonCalledAETitleNotRecognized},
	{ReasonProtocolVersionNotSupported, pdu.RJResultPermanent, pdu.RJSourceServiceProviderACSE, pdu.RJReasonProtocolVersionNotSupported},
	{ReasonTemporaryCongestion, pdu.RJResultTransient, pdu.RJSourceServiceProviderPresentation, pdu.RJReasonTemporaryCongestion},
	{ReasonLocalLimitExceeded, pdu.RJResultTransient, pdu.RJSourceServiceProviderPresentation, pdu.RJReasonLocalLimitExceeded},
}

// RejectCode returns the A-ASSOCIATE-RJ bytes for a reject reason name:
// result (1 rejected-permanent, 2 rejected-transient), source (1 service-user,
// 2 service-provider ACSE, 3 service-provider presentation) and reason. ok is
// false for an unknown name.
//
//	no-reason-given                    1 1 1
//	application-context-not-supported  1 1 2
//	calling-ae-not-recognized          1 1 3
//	called-ae-not-recognized           1 1 7
//	protocol-version-not-supported     1 2 2
//	temporary-congestion               2 3 1
//	local-limit-exceeded               2 3 2
func RejectCode(reason string) (result, source, code byte, ok bool) {
	for _, c := range rejectCodes {
		if c.name == reason {
			return byte(c.result), byte(c.source), byte(c.reason), true
		}
	}
	return 0, 0, 0, false
}

// rejectReasonNames lists the accepted reason names in table order.
func rejectReasonNames() []string {
	out := make([]string, len(rejectCodes))
	for i, c := range rejectCodes {
		out[i] = c.name
	}
	return out
}
