package pdu

// AssociateRQ is a decoded A-ASSOCIATE-RQ PDU (type 0x01).
//
// Byte-slice fields alias the buffer passed to DecodeAssociateRQ, and so does
// what AppendEncode needs to reproduce the reserved bytes 42-73: re-encode a
// decoded value only while that buffer is intact. Decoding into the same value
// again reuses its slices, so a proxy that decodes one RQ per connection into
// a pooled value allocates nothing in steady state.
type AssociateRQ struct {
	// ProtocolVersion is the 16-bit protocol version; bit 0 must be set.
	ProtocolVersion uint16
	// CalledAETitleRaw and CallingAETitleRaw are the 16-byte fields exactly as
	// on the wire (space padded). Use CalledAETitle/CallingAETitle for the
	// trimmed values policy compares.
	CalledAETitleRaw  []byte
	CallingAETitleRaw []byte
	// ApplicationContext is the application context name UID (item 0x10).
	ApplicationContext []byte
	// PresentationContexts are the proposed contexts (items 0x20) in wire order.
	PresentationContexts []PresentationContextRQ
	// UserInformation is the content of item 0x50.
	UserInformation UserInformation
	// UnknownItems are variable items of types this package does not know;
	// they are kept (and re-encoded) rather than rejected.
	UnknownItems []RawItem

	raw associateRaw
}

// AssociateAC is a decoded A-ASSOCIATE-AC PDU (type 0x02). Like AssociateRQ,
// it aliases the buffer passed to DecodeAssociateAC.
type AssociateAC struct {
	// ProtocolVersion is the 16-bit protocol version; bit 0 must be set.
	ProtocolVersion uint16
	// CalledAETitleRaw and CallingAETitleRaw echo the RQ's fields (reserved in
	// the AC: a requester must not test them).
	CalledAETitleRaw  []byte
	CallingAETitleRaw []byte
	// ApplicationContext is the application context name UID (item 0x10).
	ApplicationContext []byte
	// PresentationContexts are the context results (items 0x21) in wire
	// order, which need not follow the RQ's order: match them by ID.
	PresentationContexts []PresentationContextAC
	// UserInformation is the content of item 0x50.
	UserInformation UserInformation
	// UnknownItems are variable items kept as bytes (unknown types, and in
	// lenient mode misplaced or repeated known items).
	UnknownItems []RawItem

	raw associateRaw
}

// associateRaw holds what is needed to re-encode an A-ASSOCIATE PDU byte for
// byte: the reserved fields and the order of the variable items.
type associateRaw struct {
	hdrReserved uint8  // byte 1
	reserved1   uint16 // bytes 8-9
	// reserved2 is bytes 42-73 as received (aliasing the decoded PDU, like
	// the AE titles; a copy would cost a memmove per decode); nil encodes as
	// zeros.
	reserved2 []byte
	order     []itemRef
	// decoded is set by the decoder; AppendEncode then follows order and
	// omits items the PDU did not carry.
	decoded bool
	// appCtxNUL records a trailing NUL stripped from the application context.
	appCtxNUL bool
	// appRes and uiRes are the reserved header bytes of items 0x10 and 0x50.
	appRes, uiRes uint8
}

// associateReserved2Len is the size of the reserved field at bytes 42-73 of
// an A-ASSOCIATE-RQ/AC.
const associateReserved2Len = 32

// itemRef records one variable item's kind and index in wire order. It is 8
// bytes (one store when appended): an index fits 31 bits because a PDU holds
// fewer than 2^30 items.
type itemRef struct {
	typ uint8
	// raw marks an item kept in UnknownItems / Unknown (index points there).
	raw   bool
	index int32
}

// PresentationContextRQ is one proposed presentation context (item 0x20).
type PresentationContextRQ struct {
	// ID is the presentation context ID (odd, 1-255).
	ID uint8
	// AbstractSyntax is the SOP class UID of the 0x30 sub-item, trailing NUL
	// padding removed.
	AbstractSyntax []byte
	// TransferSyntaxes are the 0x40 sub-items, trailing NUL padding removed.
	TransferSyntaxes [][]byte

	// nul has bit 0 set when the abstract syntax had a trailing NUL and bit
	// i+1 when transfer syntax i had one (first 63 only); asPos is the
	// number of transfer syntaxes that preceded the abstract syntax.
	nul   uint64
	asPos int
	// res holds the item header's reserved byte and content bytes 1-3 as
	// received (dcmtk sends 0xff in byte 2).
	res [4]byte
}

// PresentationContextAC is one presentation context result (item 0x21).
type PresentationContextAC struct {
	// ID is the presentation context ID as proposed in the RQ.
	ID uint8
	// Result is PCAccepted or why the context was rejected (a PCResult
	// constant).
	Result PCResult
	// TransferSyntax is the accepted transfer syntax (meaningful when Result
	// is 0), trailing NUL padding removed; nil when the item carried no 0x40
	// sub-item.
	TransferSyntax []byte

	nul bool
	// res holds the item header's reserved byte and content bytes 1 and 3.
	res [3]byte
}

// UserInformation is the content of item 0x50.
type UserInformation struct {
	// MaxLength is the 0x51 maximum P-DATA-TF PDU length; 0 means no limit.
	MaxLength    uint32
	HasMaxLength bool
	// ImplementationClassUID is sub-item 0x52.
	ImplementationClassUID []byte
	// ImplementationVersionName is sub-item 0x55 (empty when absent).
	ImplementationVersionName []byte
	// AsyncOps is sub-item 0x53; HasAsyncOps reports whether it was present.
	AsyncOps    AsyncOperationsWindow
	HasAsyncOps bool
	// RoleSelections are the 0x54 sub-items.
	RoleSelections []RoleSelection
	// ExtendedNegotiations are the 0x56 sub-items.
	ExtendedNegotiations []ExtendedNegotiation
	// CommonExtendedNegotiations are the 0x57 sub-items.
	CommonExtendedNegotiations []CommonExtendedNegotiation
	// UserIdentity is sub-item 0x58 (RQ); HasUserIdentity reports presence.
	UserIdentity    UserIdentity
	HasUserIdentity bool
	// UserIdentityResponse is the server response of sub-item 0x59 (AC);
	// HasUserIdentityResponse reports presence.
	UserIdentityResponse    []byte
	HasUserIdentityResponse bool
	// Unknown are sub-items of unknown type, kept for re-encoding. In lenient
	// mode repeated singleton sub-items (a second 0x51, 0x52, ...) and
	// singleton sub-items with a wrong fixed length land here too (in an
	// A-ASSOCIATE-RQ only with Decoder.AllowAmbiguous; by default they are
	// refused as ambiguous).
	Unknown []RawItem

	order   []itemRef
	decoded bool
	// implNUL records a trailing NUL stripped from ImplementationClassUID.
	implNUL bool
}

// AsyncOperationsWindow is sub-item 0x53.
type AsyncOperationsWindow struct {
	// MaxInvoked is the maximum number of operations invoked (0 = unlimited).
	MaxInvoked uint16
	// MaxPerformed is the maximum number of operations performed (0 = unlimited).
	MaxPerformed uint16
}

// RoleSelection is sub-item 0x54.
type RoleSelection struct {
	// SOPClassUID has one trailing NUL removed.
	SOPClassUID []byte
	// SCURole and SCPRole: in an RQ 1 proposes support of the role; in an AC 1
	// accepts and 0 refuses it.
	SCURole uint8
	SCPRole uint8

	nul bool
}

// ExtendedNegotiation is sub-item 0x56.
type ExtendedNegotiation struct {
	// SOPClassUID has one trailing NUL removed.
	SOPClassUID []byte
	// Info is the service-class-specific application information.
	Info []byte

	nul bool
}

// CommonExtendedNegotiation is sub-item 0x57.
// Its UIDs are kept exactly as sent (no NUL stripping).
type CommonExtendedNegotiation struct {
	// SOPClassUID is the SOP class being negotiated.
	SOPClassUID []byte
	// ServiceClassUID is the service class of that SOP class.
	ServiceClassUID []byte
	// RelatedGeneralSOPUID lists the related general SOP class UIDs.
	RelatedGeneralSOPUID [][]byte
}

// UserIdentity is sub-item 0x58 of an A-ASSOCIATE-RQ.
type UserIdentity struct {
	// Type is 1 username, 2 username+passcode, 3 Kerberos, 4 SAML, 5 JWT.
	Type uint8
	// PositiveResponseRequested is true when the positive-response byte is
	// non-zero (the requester wants a 0x59 sub-item back).
	PositiveResponseRequested bool
	// PositiveResponseRaw is the raw byte as sent (0 or 1 normally).
	PositiveResponseRaw uint8
	// Primary is the username, ticket, assertion or token.
	Primary []byte
	// Secondary is the passcode for type 2, empty otherwise. Never log it.
	Secondary []byte
}

// RawItem is an item or sub-item kept as bytes because its type is unknown.
type RawItem struct {
	// Type is the item type byte.
	Type uint8
	// Reserved is the reserved byte after the type, as received.
	Reserved uint8
	// Data is the item content after its 4-byte header.
	Data []byte
}
