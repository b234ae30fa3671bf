package pdu

// The typed fields of A-ASSOCIATE-RJ, A-ABORT and A-ASSOCIATE-AC
// presentation context items (PS3.8 §9.3.3.2, §9.3.4, §9.3.8). Each String
// names a value as PS3.8 spells it and a value the standard does not define
// as "<field> N". They are plain uint8 on the wire: the decoders keep any
// byte (the strict Decoder rejects the undefined ones).
//
// The names live in tables that only the String methods (and Defined) read,
// so a program that never calls them links no name (the filter's module
// size: see strictChecks for what else keeps a String reachable).

// RJResult is the result field of an A-ASSOCIATE-RJ (PDU byte 7).
type RJResult uint8

// The A-ASSOCIATE-RJ results.
const (
	RJResultPermanent RJResult = 1
	RJResultTransient RJResult = 2
)

var rjResultNames = [...]string{RJResultPermanent: "rejected-permanent", RJResultTransient: "rejected-transient"}

// String returns "rejected-permanent", "rejected-transient" or "result N".
func (r RJResult) String() string { return name(rjResultNames[:], uint8(r), "result ") }

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

var rjSourceNames = [...]string{
	RJSourceServiceUser:                 "service-user",
	RJSourceServiceProviderACSE:         "service-provider (ACSE related function)",
	RJSourceServiceProviderPresentation: "service-provider (presentation related function)",
}

// String returns "service-user", "service-provider (ACSE related
// function)", "service-provider (presentation related function)" or
// "source N".
func (s RJSource) String() string { return name(rjSourceNames[:], uint8(s), "source ") }

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

// rjReasonNames are the reasons PS3.8 §9.3.4 defines, by source.
var rjReasonNames = [...][]string{
	RJSourceServiceUser: {
		RJReasonUserNoReasonGiven:                  "no-reason-given",
		RJReasonApplicationContextNameNotSupported: "application-context-name-not-supported",
		RJReasonCallingAETitleNotRecognized:        "calling-AE-title-not-recognized",
		RJReasonCalledAETitleNotRecognized:         "called-AE-title-not-recognized",
	},
	RJSourceServiceProviderACSE: {
		RJReasonACSENoReasonGiven:           "no-reason-given",
		RJReasonProtocolVersionNotSupported: "protocol-version-not-supported",
	},
	RJSourceServiceProviderPresentation: {
		RJReasonTemporaryCongestion: "temporary-congestion",
		RJReasonLocalLimitExceeded:  "local-limit-exceeded",
	},
}

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

// names returns the reason names of d's source (nil for an undefined source).
func (d RJDiagnostic) names() []string {
	if int(d.Source) < len(rjReasonNames) {
		return rjReasonNames[d.Source]
	}
	return nil
}

// Defined reports whether PS3.8 §9.3.4 defines the reason for the source:
// 1, 2, 3 or 7 from the service user, 1 or 2 from either provider.
func (d RJDiagnostic) Defined() bool {
	n := d.names()
	return int(d.Reason) < len(n) && n[d.Reason] != ""
}

// String returns the PS3.8 name of the reason for its source, e.g.
// "called-AE-title-not-recognized", or "reason N" when the standard defines
// no such reason for that source.
func (d RJDiagnostic) String() string { return name(d.names(), uint8(d.Reason), "reason ") }

// AbortSource is the source field of an A-ABORT (PDU byte 8).
type AbortSource uint8

// The A-ABORT sources (1 is reserved).
const (
	AbortSourceServiceUser     AbortSource = 0
	AbortSourceServiceProvider AbortSource = 2
)

var abortSourceNames = [...]string{AbortSourceServiceUser: "service-user", AbortSourceServiceProvider: "service-provider"}

// String returns "service-user", "service-provider" or "source N".
func (s AbortSource) String() string { return name(abortSourceNames[:], uint8(s), "source ") }

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

var abortReasonNames = [...]string{
	AbortReasonNotSpecified:             "reason-not-specified",
	AbortReasonUnrecognizedPDU:          "unrecognized-PDU",
	AbortReasonUnexpectedPDU:            "unexpected-PDU",
	AbortReasonUnrecognizedPDUParameter: "unrecognized-PDU-parameter",
	AbortReasonUnexpectedPDUParameter:   "unexpected-PDU-parameter",
	AbortReasonInvalidPDUParameterValue: "invalid-PDU-parameter-value",
}

// String returns the PS3.8 name, e.g. "unexpected-PDU", or "reason N".
func (r AbortReason) String() string { return name(abortReasonNames[:], uint8(r), "reason ") }

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

var pcResultNames = [...]string{
	PCAccepted:                     "accepted",
	PCUserRejection:                "user-rejection",
	PCNoReason:                     "no-reason (provider rejection)",
	PCAbstractSyntaxNotSupported:   "abstract-syntax-not-supported",
	PCTransferSyntaxesNotSupported: "transfer-syntaxes-not-supported",
}

// String returns "accepted", "user-rejection", "no-reason (provider
// rejection)", "abstract-syntax-not-supported",
// "transfer-syntaxes-not-supported" or "result N" (the texts of `dicomgate
// decode`).
func (r PCResult) String() string { return name(pcResultNames[:], uint8(r), "result ") }

// name returns names[v], or field followed by v in decimal when names has no
// entry for v.
func name(names []string, v uint8, field string) string {
	if int(v) < len(names) && names[v] != "" {
		return names[v]
	}
	return field + itoa(int(v))
}
