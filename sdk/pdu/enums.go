package pdu

// The typed fields of A-ASSOCIATE-RJ, A-ABORT and A-ASSOCIATE-AC
// presentation context items (PS3.8 §9.3.3.2, §9.3.4, §9.3.8). Each String
// names a value as PS3.8 spells it and a value the standard does not define
// as "<field> N". They are plain uint8 on the wire: the decoders keep any
// byte (the strict Decoder rejects the undefined ones).

// RJResult is the result field of an A-ASSOCIATE-RJ (PDU byte 7).
type RJResult uint8

// The A-ASSOCIATE-RJ results.
const (
	RJResultPermanent RJResult = 1
	RJResultTransient RJResult = 2
)

// String returns "rejected-permanent", "rejected-transient" or "result N".
func (r RJResult) String() string {
	switch r {
	case RJResultPermanent:
		return "rejected-permanent"
	case RJResultTransient:
		return "rejected-transient"
	}
	return "result " + itoa(int(r))
}

// RJSource is the source field of an A-ASSOCIATE-RJ (PDU byte 8); it gives
// the reason byte its meaning (see RJDiagnostic).
type RJSource uint8

// The A-ASSOCIATE-RJ sources.
const (
	// RJSourceServiceUser: the called application (it refused the AE
	// titles or the application context).
	RJSourceServiceUser RJSource = 1
	// RJSourceServiceProviderACSE: the upper layer's ACSE (protocol
	// version).
	RJSourceServiceProviderACSE RJSource = 2
	// RJSourceServiceProviderPresentation: the upper layer's presentation
	// function (congestion, limits).
	RJSourceServiceProviderPresentation RJSource = 3
)

// String returns "service-user", "service-provider (ACSE related
// function)", "service-provider (presentation related function)" or
// "source N".
func (s RJSource) String() string {
	switch s {
	case RJSourceServiceUser:
		return "service-user"
	case RJSourceServiceProviderACSE:
		return "service-provider (ACSE related function)"
	case RJSourceServiceProviderPresentation:
		return "service-provider (presentation related function)"
	}
	return "source " + itoa(int(s))
}

// RJReason is the reason/diagnostic field of an A-ASSOCIATE-RJ (PDU byte
// 9). The same byte means different things for different sources (2 is
// application-context-name-not-supported from the service user but
// protocol-version-not-supported from the ACSE provider), so it has no String
// of its own: RJDiagnostic names it together with its source. The constants
// are named after the source they belong to.
type RJReason uint8

// The A-ASSOCIATE-RJ reasons of source 1 (service-user).
const (
	RJReasonUserNoReasonGiven                  RJReason = 1
	RJReasonApplicationContextNameNotSupported RJReason = 2
	RJReasonCallingAETitleNotRecognized        RJReason = 3
	RJReasonCalledAETitleNotRecognized         RJReason = 7
)

// The A-ASSOCIATE-RJ reasons of source 2 (service-provider, ACSE related).
const (
	RJReasonACSENoReasonGiven           RJReason = 1
	RJReasonProtocolVersionNotSupported RJReason = 2
)

// The A-ASSOCIATE-RJ reasons of source 3 (service-provider, presentation
// related).
const (
	RJReasonTemporaryCongestion RJReason = 1
	RJReasonLocalLimitExceeded  RJReason = 2
)

// RJDiagnostic is an A-ASSOCIATE-RJ reason with the source that gives it its
// meaning (PS3.8 §9.3.4).
type RJDiagnostic struct {
	Source RJSource
	Reason RJReason
}

// Diagnostic returns the RJ's source and reason as one value.
func (rj *AssociateRJ) Diagnostic() RJDiagnostic {
	return RJDiagnostic{Source: rj.Source, Reason: rj.Reason}
}

// Defined reports whether PS3.8 §9.3.4 defines the reason for the source:
// 1, 2, 3 or 7 from the service user, 1 or 2 from either provider.
func (d RJDiagnostic) Defined() bool {
	switch d.Source {
	case RJSourceServiceUser:
		return d.Reason == 1 || d.Reason == 2 || d.Reason == 3 || d.Reason == 7
	case RJSourceServiceProviderACSE, RJSourceServiceProviderPresentation:
		return d.Reason == 1 || d.Reason == 2
	}
	return false
}

// String returns the PS3.8 name of the reason for its source, e.g.
// "called-AE-title-not-recognized", or "reason N" when the standard defines
// no such reason for that source.
func (d RJDiagnostic) String() string {
	switch d {
	case RJDiagnostic{RJSourceServiceUser, RJReasonUserNoReasonGiven},
		RJDiagnostic{RJSourceServiceProviderACSE, RJReasonACSENoReasonGiven}:
		return "no-reason-given"
	case RJDiagnostic{RJSourceServiceUser, RJReasonApplicationContextNameNotSupported}:
		return "application-context-name-not-supported"
	case RJDiagnostic{RJSourceServiceUser, RJReasonCallingAETitleNotRecognized}:
		return "calling-AE-title-not-recognized"
	case RJDiagnostic{RJSourceServiceUser, RJReasonCalledAETitleNotRecognized}:
		return "called-AE-title-not-recognized"
	case RJDiagnostic{RJSourceServiceProviderACSE, RJReasonProtocolVersionNotSupported}:
		return "protocol-version-not-supported"
	case RJDiagnostic{RJSourceServiceProviderPresentation, RJReasonTemporaryCongestion}:
		return "temporary-congestion"
	case RJDiagnostic{RJSourceServiceProviderPresentation, RJReasonLocalLimitExceeded}:
		return "local-limit-exceeded"
	}
	return "reason " + itoa(int(d.Reason))
}

// AbortSource is the source field of an A-ABORT (PDU byte 8).
type AbortSource uint8

// The A-ABORT sources (1 is reserved).
const (
	AbortSourceServiceUser     AbortSource = 0
	AbortSourceServiceProvider AbortSource = 2
)

// String returns "service-user", "service-provider" or "source N".
func (s AbortSource) String() string {
	switch s {
	case AbortSourceServiceUser:
		return "service-user"
	case AbortSourceServiceProvider:
		return "service-provider"
	}
	return "source " + itoa(int(s))
}

// AbortReason is the reason/diagnostic field of an A-ABORT (PDU byte 9),
// significant only when the source is AbortSourceServiceProvider (a service
// user sends 0).
type AbortReason uint8

// The A-ABORT reasons of a service-provider abort (3 is reserved).
const (
	AbortReasonNotSpecified             AbortReason = 0
	AbortReasonUnrecognizedPDU          AbortReason = 1
	AbortReasonUnexpectedPDU            AbortReason = 2
	AbortReasonUnrecognizedPDUParameter AbortReason = 4
	AbortReasonUnexpectedPDUParameter   AbortReason = 5
	AbortReasonInvalidPDUParameterValue AbortReason = 6
)

// String returns the PS3.8 name, e.g. "unexpected-PDU", or "reason N".
func (r AbortReason) String() string {
	switch r {
	case AbortReasonNotSpecified:
		return "reason-not-specified"
	case AbortReasonUnrecognizedPDU:
		return "unrecognized-PDU"
	case AbortReasonUnexpectedPDU:
		return "unexpected-PDU"
	case AbortReasonUnrecognizedPDUParameter:
		return "unrecognized-PDU-parameter"
	case AbortReasonUnexpectedPDUParameter:
		return "unexpected-PDU-parameter"
	case AbortReasonInvalidPDUParameterValue:
		return "invalid-PDU-parameter-value"
	}
	return "reason " + itoa(int(r))
}

// PCResult is the result/reason field of a presentation context item of an
// A-ASSOCIATE-AC (item 0x21, byte 6 of the item).
type PCResult uint8

// The presentation context results.
const (
	PCAccepted                     PCResult = 0
	PCUserRejection                PCResult = 1
	PCNoReason                     PCResult = 2
	PCAbstractSyntaxNotSupported   PCResult = 3
	PCTransferSyntaxesNotSupported PCResult = 4
)

// String returns "accepted", "user-rejection", "no-reason (provider
// rejection)", "abstract-syntax-not-supported",
// "transfer-syntaxes-not-supported" or "result N" (the texts of `dicomgate
// decode`).
func (r PCResult) String() string {
	switch r {
	case PCAccepted:
		return "accepted"
	case PCUserRejection:
		return "user-rejection"
	case PCNoReason:
		return "no-reason (provider rejection)"
	case PCAbstractSyntaxNotSupported:
		return "abstract-syntax-not-supported"
	case PCTransferSyntaxesNotSupported:
		return "transfer-syntaxes-not-supported"
	}
	return "result " + itoa(int(r))
}
