package pdu

import "encoding/binary"

// Decoder decodes whole PDUs (as split off by a Framer) into caller-owned
// values. The zero value is a lenient decoder with DefaultMaxPDULength. A
// Decoder holds no per-call state and may be shared between goroutines.
//
// Lenient (default) behaviour follows what real stacks accept (dcmtk, see
// DICOM PS3.8 and docs/internals.md, "PDU decoder leniency"): unknown variable items and unknown
// user-information sub-items are kept, items may come in any order, repeated
// singleton items are kept as unknown items (in an A-ASSOCIATE-RQ only with
// AllowAmbiguous, see below), reserved fields are never
// tested, UIDs may carry one trailing NUL (stripped). Always rejected: a
// length that runs past its container, items that do not tile their
// container, fixed-size PDUs with the wrong length, an A-ASSOCIATE body
// shorter than 68 bytes, protocol version without bit 0, PDV items shorter
// than 2 bytes or with reserved message-control bits, and unknown sub-items
// inside a presentation context.
//
// Ambiguous input is rejected too, in both modes, unless AllowAmbiguous is
// set: an A-ASSOCIATE-RQ with a field that DICOM stacks read differently
// (ErrAmbiguous; see AllowAmbiguous for the list).
//
// When a Decode method returns an error, the value it was decoding into is
// partially filled and must not be used (it can still be reused for the next
// call).
type Decoder struct {
	// MaxPDULength is the largest PDU length field accepted; 0 means
	// DefaultMaxPDULength.
	MaxPDULength uint32
	// strict holds the checks of strict mode (see Strict); nil otherwise.
	strict strictChecks
	// AllowAmbiguous turns off the ambiguity checks of DecodeAssociateRQ.
	// By default (false) it refuses, with an *Error matching ErrAmbiguous
	// that names the field and its offset, every RQ that a DICOM acceptor
	// could read differently from this decoder: AE titles that are not
	// left-aligned printable ASCII without backslash padded with spaces (a
	// NUL, control character, leading space or only spaces); UIDs that are
	// not PS3.5 UIDs after one trailing NUL (application context, abstract
	// and transfer syntaxes, implementation class, role selection and
	// extended negotiation UIDs); a presentation context without abstract
	// syntax; a 0x21 item; a second application context or user
	// information item; a second maximum length, implementation class UID,
	// asynchronous operations window, implementation version name or user
	// identity sub-item; 0x51/0x53 sub-items not 4 bytes long; a 0x59
	// sub-item; an implementation version name over 16 characters or not
	// printable ASCII; a user identity of a type other than 1-5, with a
	// secondary field unless type 2, or (types 1 and 2) whose username holds
	// a control character, a leading or trailing space or invalid UTF-8.
	// docs/SECURITY.md lists how dcmtk and pynetdicom read each of them.
	// Set it only in tools that must display such a PDU, never where a
	// decision is taken from the decoded RQ.
	AllowAmbiguous bool
}

func (d *Decoder) max() uint32 {
	if d == nil || d.MaxPDULength == 0 {
		return DefaultMaxPDULength
	}
	return d.MaxPDULength
}

// Strict returns a copy of d in strict mode: it additionally rejects what
// the standard forbids but real stacks tolerate: invalid AE titles (empty,
// only spaces, control characters, backslash), a missing, repeated or
// misplaced application context or user information item, an RQ without
// presentation contexts, 0x21 items in an RQ or 0x20 items in an AC,
// contexts without exactly one abstract syntax (first) and at least one
// transfer syntax, even or repeated context IDs, a missing 0x51 or 0x52
// sub-item, 0x51/0x53 with a wrong length, repeated singleton sub-items,
// malformed UIDs (over 64 characters, not digits and dots, leading zeros),
// an application context other than 1.2.840.10008.3.1.1.1, an
// implementation version name over 16 characters, out-of-range AC results
// and RJ/A-ABORT codes.
//
// The strict checks are reached only through the value Strict stores, so a
// program that never calls Strict (the filter) does not link them.
func (d Decoder) Strict() *Decoder {
	d.strict = strictRules{}
	return &d
}

// IsStrict reports whether d is in strict mode (see Strict).
func (d *Decoder) IsStrict() bool { return d != nil && d.strict != nil }

// checks returns the strict checks of d, nil when d is not strict.
func (d *Decoder) checks() strictChecks {
	if d == nil {
		return nil
	}
	return d.strict
}

// amb reports whether the ambiguity checks apply (see AllowAmbiguous).
func (d *Decoder) amb() bool { return d == nil || !d.AllowAmbiguous }

// header checks that pdu is exactly one PDU of type want.
func (d *Decoder) header(pdu []byte, want Type) error {
	if len(pdu) < HeaderLen {
		return newErr(0, want.String()+" PDU header", ErrTruncated,
			"have "+itoa(len(pdu))+" bytes, the header needs 6")
	}
	if Type(pdu[0]) != want {
		if pdu[0] < 1 || pdu[0] > 7 {
			return unknownTypeError(pdu)
		}
		return newErr(0, "PDU type", ErrInvalid,
			"PDU type "+hex8(pdu[0])+" ("+Type(pdu[0]).String()+") is not "+want.String())
	}
	h := Header{Type: want, Length: binary.BigEndian.Uint32(pdu[2:6])}
	if err := checkHeader(h, d.max()); err != nil {
		return err
	}
	if uint64(h.Length) > uint64(len(pdu)-HeaderLen) {
		return newErr(2, want.String()+" PDU length", ErrTruncated,
			"length "+itoa(int(h.Length))+" exceeds the "+itoa(len(pdu)-HeaderLen)+" bytes present")
	}
	if int(h.Length) < len(pdu)-HeaderLen {
		return newErr(h.Total(), want.String(), ErrInvalid,
			itoa(len(pdu)-h.Total())+" bytes follow the end of the PDU (pass exactly one PDU, as split by Framer)")
	}
	return nil
}

// The A-ASSOCIATE decoders below are the per-connection hot path of a proxy
// compiled to WebAssembly (GOOS=wasip1, run by wazero), where every call,
// every taken branch (a jump through the function's dispatch table that moves
// every live local), every bounds-checked byte access and every struct copy
// or reset larger than 16-32 bytes (a memory.copy/memory.fill, which wazero
// runs as a call into the host) costs far more than natively. So: the header
// is checked inline (header builds the errors); values are reset field by
// field; items are walked as shrinking sub-slices; the usual item order is
// decoded by straight-line fast paths that hand over to the general loops at
// the first item out of that order (TestFastPathMatchesGeneral checks they
// agree); error messages are built in out-of-line functions. Measure changes
// with BenchmarkDecodeAssociateRQ under wasm/internal/wasip1bench, not only
// natively.

// assocHeaderOK reports whether pdu is exactly one A-ASSOCIATE PDU of type t
// that header accepts: type t, length field equal to the bytes present, at
// least the 68-byte fixed part and at most the maximum.
func (d *Decoder) assocHeaderOK(pdu []byte, t Type) bool {
	if len(pdu) < HeaderLen+associateFixedLen || pdu[0] != byte(t) {
		return false
	}
	n := uint32(pdu[2])<<24 | uint32(pdu[3])<<16 | uint32(pdu[4])<<8 | uint32(pdu[5])
	return uint64(n) == uint64(len(pdu)-HeaderLen) && n <= d.max()
}

// reset records the fixed-part fields of an A-ASSOCIATE PDU that only
// AppendEncode needs and forgets the previous item order. pdu holds at least
// the 74-byte fixed part.
func (r *associateRaw) reset(pdu []byte) {
	r.hdrReserved = pdu[1]
	r.reserved1 = uint16(pdu[8])<<8 | uint16(pdu[9])
	r.reserved2 = pdu[42:74:74]
	r.order = r.order[:0]
	r.decoded = true
	r.appCtxNUL = false
	r.appRes, r.uiRes = 0, 0
}

// DecodeAssociateRQ decodes one whole A-ASSOCIATE-RQ PDU (header included)
// into rq, reusing rq's slices. Byte slices in rq alias pdu.
func (d *Decoder) DecodeAssociateRQ(pdu []byte, rq *AssociateRQ) error {
	if !d.assocHeaderOK(pdu, TypeAssociateRQ) {
		if err := d.header(pdu, TypeAssociateRQ); err != nil {
			return err
		}
	}
	if len(pdu) < OffsetVariableItems {
		return nil // unreachable: header checked the fixed part
	}
	raw := &rq.raw
	raw.reset(pdu)
	rq.ProtocolVersion = uint16(pdu[6])<<8 | uint16(pdu[7])
	rq.CalledAETitleRaw = pdu[10:26:26]
	rq.CallingAETitleRaw = pdu[26:42:42]
	rq.ApplicationContext = nil
	rq.PresentationContexts = rq.PresentationContexts[:0]
	rq.UnknownItems = rq.UnknownItems[:0]
	if rq.ProtocolVersion&1 == 0 {
		return versionError(TypeAssociateRQ, rq.ProtocolVersion)
	}
	strict, amb := d.checks(), d.amb()
	if amb && !(aeFieldOK(pdu[OffsetCalledAETitle:OffsetCallingAETitle]) && aeFieldOK(pdu[OffsetCallingAETitle:OffsetCallingAETitle+AETitleLen])) {
		return aeAmbError(pdu)
	}
	if strict != nil {
		if err := strict.aes(pdu, TypeAssociateRQ); err != nil {
			return err
		}
	}
	// Fast path: the items in the order every stack sends them (application
	// context, presentation contexts, user information), each decoded
	// exactly as decodeItems would; decodeItems takes over at the first item
	// that does not fit this order (or whose header is bad) and reports it.
	// items is the rest of the PDU; an item starts at len(pdu)-len(items).
	items := pdu[OffsetVariableItems:]
	haveApp, haveUI := false, false
	if len(items) >= 4 && items[0] == ItemApplicationContext {
		if n := int(items[2])<<8 | int(items[3]); n <= len(items)-4 {
			rq.ApplicationContext, raw.appCtxNUL = trimUID(items[4 : 4+n : 4+n])
			raw.appRes = items[1]
			if amb && !uidOK(rq.ApplicationContext) {
				return checkUIDAmb(OffsetVariableItems, ItemApplicationContext, rq.ApplicationContext)
			}
			if strict != nil {
				if err := strict.appCtx(OffsetVariableItems, 0, rq.ApplicationContext); err != nil {
					return err
				}
			}
			haveApp = true
			raw.order = append(raw.order, itemRef{typ: ItemApplicationContext})
			items = items[4+n:]
		}
	}
	for len(items) >= 4 && items[0] == ItemPresentationContextRQ {
		n := int(items[2])<<8 | int(items[3])
		if n > len(items)-4 {
			break
		}
		pc := grow(&rq.PresentationContexts)
		if err := d.decodePCRQ(items[4:4+n:4+n], len(pdu)-len(items), items[1], pc, prevPC(rq.PresentationContexts)); err != nil {
			return err
		}
		i := len(rq.PresentationContexts) - 1
		if strict != nil {
			if err := strict.pcID(pc.ID, len(pdu)-len(items)+4, rq.PresentationContexts[:i], false); err != nil {
				return err
			}
		}
		raw.order = append(raw.order, itemRef{typ: ItemPresentationContextRQ, index: int32(i)})
		items = items[4+n:]
	}
	if len(items) >= 4 && items[0] == ItemUserInformation {
		if n := int(items[2])<<8 | int(items[3]); n <= len(items)-4 {
			raw.uiRes = items[1]
			if err := decodeUserInfo(items[4:4+n:4+n], len(pdu)-len(items), &rq.UserInformation, strict, true, amb); err != nil {
				return err
			}
			haveUI = true
			raw.order = append(raw.order, itemRef{typ: ItemUserInformation})
			items = items[4+n:]
		}
	}
	if len(items) == 0 && haveUI && strict == nil {
		return nil
	}
	return d.decodeItems(pdu, items, rq, nil, haveApp, haveUI)
}

// DecodeAssociateAC decodes one whole A-ASSOCIATE-AC PDU (header included)
// into ac, reusing ac's slices. Byte slices in ac alias pdu.
func (d *Decoder) DecodeAssociateAC(pdu []byte, ac *AssociateAC) error {
	if !d.assocHeaderOK(pdu, TypeAssociateAC) {
		if err := d.header(pdu, TypeAssociateAC); err != nil {
			return err
		}
	}
	if len(pdu) < OffsetVariableItems {
		return nil // unreachable: header checked the fixed part
	}
	ac.raw.reset(pdu)
	ac.ProtocolVersion = uint16(pdu[6])<<8 | uint16(pdu[7])
	ac.CalledAETitleRaw = pdu[10:26:26]
	ac.CallingAETitleRaw = pdu[26:42:42]
	ac.ApplicationContext = nil
	ac.PresentationContexts = ac.PresentationContexts[:0]
	ac.UnknownItems = ac.UnknownItems[:0]
	if ac.ProtocolVersion&1 == 0 {
		return versionError(TypeAssociateAC, ac.ProtocolVersion)
	}
	if s := d.checks(); s != nil {
		if err := s.aes(pdu, TypeAssociateAC); err != nil {
			return err
		}
	}
	return d.decodeItems(pdu, pdu[OffsetVariableItems:], nil, ac, false, false)
}

// decodeItems decodes the variable items in items, the rest of pdu, into rq
// or ac (exactly one is set), in any order; haveApp and haveUI report
// whether the application context and user information items were decoded
// already. It then resets the user information if none was decoded and
// applies the strict rules on the set of items.
func (d *Decoder) decodeItems(pdu, items []byte, rq *AssociateRQ, ac *AssociateAC, haveApp, haveUI bool) error {
	var raw *associateRaw
	var appCtx *[]byte
	var ui *UserInformation
	var unknown *[]RawItem
	t := TypeAssociateRQ
	if rq != nil {
		raw, appCtx, ui, unknown = &rq.raw, &rq.ApplicationContext, &rq.UserInformation, &rq.UnknownItems
	} else {
		raw, appCtx, ui, unknown = &ac.raw, &ac.ApplicationContext, &ac.UserInformation, &ac.UnknownItems
		t = TypeAssociateAC
	}
	strict, amb := d.checks(), rq != nil && d.amb()
	for len(items) > 0 {
		off := len(pdu) - len(items)
		if len(items) < 4 {
			return subItemsError(items, off, 0)
		}
		n := int(items[2])<<8 | int(items[3])
		if n > len(items)-4 {
			return subItemsError(items, off, 0)
		}
		typ, c := items[0], items[4:4+n:4+n]
		switch {
		case typ == ItemPresentationContextRQ && rq != nil:
			pc := grow(&rq.PresentationContexts)
			if err := d.decodePCRQ(c, off, items[1], pc, prevPC(rq.PresentationContexts)); err != nil {
				return err
			}
			i := len(rq.PresentationContexts) - 1
			if strict != nil {
				if err := strict.pcID(pc.ID, off+4, rq.PresentationContexts[:i], false); err != nil {
					return err
				}
			}
			raw.order = append(raw.order, itemRef{typ: typ, index: int32(i)})
		case typ == ItemPresentationContextAC && ac != nil:
			pc := growAC(&ac.PresentationContexts)
			if err := d.decodePCAC(c, off, items[1], pc); err != nil {
				return err
			}
			i := len(ac.PresentationContexts) - 1
			if strict != nil {
				if err := strict.pcID(pc.ID, off+4, nil, acIDRepeated(ac.PresentationContexts[:i], pc.ID)); err != nil {
					return err
				}
			}
			raw.order = append(raw.order, itemRef{typ: typ, index: int32(i)})
		case typ == ItemApplicationContext && !haveApp:
			*appCtx, raw.appCtxNUL = trimUID(c)
			raw.appRes = items[1]
			if amb && !uidOK(*appCtx) {
				return checkUIDAmb(off, typ, *appCtx)
			}
			if strict != nil {
				if err := strict.appCtx(off, len(raw.order), *appCtx); err != nil {
					return err
				}
			}
			haveApp = true
			raw.order = append(raw.order, itemRef{typ: typ})
		case typ == ItemUserInformation && !haveUI:
			raw.uiRes = items[1]
			if err := decodeUserInfo(c, off, ui, strict, rq != nil, amb); err != nil {
				return err
			}
			haveUI = true
			raw.order = append(raw.order, itemRef{typ: typ})
		default:
			if amb && (typ == ItemApplicationContext || typ == ItemUserInformation || typ == ItemPresentationContextAC) {
				return ambItemError(off, typ)
			}
			if err := keepItem(items[:4+n], off, strict, t, unknown, raw); err != nil {
				return err
			}
		}
		items = items[4+n:]
	}
	if !haveUI {
		ui.reset()
	}
	if strict != nil {
		// An AC needs no presentation context.
		return strict.assocEnd(t, len(pdu), haveApp, ac != nil || len(rq.PresentationContexts) > 0, haveUI, raw.order)
	}
	return nil
}

// versionError reports a protocol version without bit 0.
//
//go:noinline
func versionError(t Type, v uint16) error {
	return newErr(OffsetProtocolVersion, t.String()+" protocol version", ErrInvalid,
		"protocol version "+hex16(v)+" does not have bit 0 set (only version 1 exists)")
}

// checkAEs applies the strict AE title rules to both AE title fields.
//
//go:noinline
func checkAEs(pdu []byte, t Type) error {
	name := t.String()
	if err := checkAE(pdu[OffsetCalledAETitle:OffsetCallingAETitle], OffsetCalledAETitle, name+" called AE title"); err != nil {
		return err
	}
	return checkAE(pdu[OffsetCallingAETitle:OffsetCallingAETitle+AETitleLen], OffsetCallingAETitle, name+" calling AE title")
}

// aeAmbError reports the first of the two AE title fields of the RQ pdu
// that aeFieldOK refuses.
//
//go:noinline
func aeAmbError(pdu []byte) error {
	if f := pdu[OffsetCalledAETitle:OffsetCallingAETitle]; !aeFieldOK(f) {
		return aeFieldError(f, OffsetCalledAETitle, "A-ASSOCIATE-RQ called AE title")
	}
	return aeFieldError(pdu[OffsetCallingAETitle:OffsetCallingAETitle+AETitleLen], OffsetCallingAETitle, "A-ASSOCIATE-RQ calling AE title")
}

// checkAppCtx applies the strict rules to the application context item at
// off, the item number idx of the PDU.
//
//go:noinline
func checkAppCtx(off, idx int, appCtx []byte) error {
	if idx != 0 {
		return newErr(off, itemName(ItemApplicationContext), ErrInvalid, "must be the first variable item (strict)")
	}
	if string(appCtx) != "1.2.840.10008.3.1.1.1" {
		return newErr(off+4, itemName(ItemApplicationContext), ErrInvalid,
			"application context "+quote(appCtx)+" is not the DICOM application context 1.2.840.10008.3.1.1.1 (strict)")
	}
	return nil
}

// keepItem keeps the variable item it (header included, at offset off) as an
// unknown item: of an unknown type, or (lenient) a repeated or misplaced
// known item, which strict mode rejects instead.
//
//go:noinline
func keepItem(it []byte, off int, strict strictChecks, t Type, unknown *[]RawItem, raw *associateRaw) error {
	typ := it[0]
	if strict != nil {
		if err := strict.item(off, typ, t); err != nil {
			return err
		}
	}
	ri := grow(unknown)
	*ri = RawItem{Type: typ, Reserved: it[1], Data: it[4:len(it):len(it)]}
	raw.order = append(raw.order, itemRef{typ: typ, index: int32(len(*unknown) - 1), raw: true})
	return nil
}

// checkAssocEnd applies the strict rules on the set of variable items of an
// A-ASSOCIATE PDU that ends at end.
//
//go:noinline
func checkAssocEnd(t Type, end int, haveApp, havePC, haveUI bool, order []itemRef) error {
	name := t.String()
	switch {
	case !haveApp:
		return newErr(end, name, ErrInvalid, "no application context item 0x10 (strict)")
	case !havePC:
		return newErr(end, name, ErrInvalid, "no presentation context item 0x20 (strict)")
	case !haveUI:
		return newErr(end, name, ErrInvalid, "no user information item 0x50 (strict)")
	case order[len(order)-1].typ != ItemUserInformation:
		return newErr(end, name, ErrInvalid, "user information item 0x50 is not the last item (strict)")
	}
	return nil
}

// subItemsError builds the error for the item header at the start of rest
// (the remaining bytes of its container, at offset off) that does not fit;
// parent is the type of the container item, 0 for the PDU.
//
//go:noinline
func subItemsError(rest []byte, off int, parent uint8) error {
	if len(rest) < 4 {
		field := "variable item"
		if parent != 0 {
			field = itemName(parent)
		}
		return newErr(off, field, ErrTruncated,
			itoa(len(rest))+" trailing bytes cannot hold a 4-byte item header (the lengths do not add up)")
	}
	n := int(rest[2])<<8 | int(rest[3])
	return newErr(off, itemName(rest[0]), ErrTruncated,
		"length "+itoa(n)+" exceeds remaining "+itoa(len(rest)-4)+" bytes")
}

// itemName names an item type for error messages.
func itemName(t uint8) string {
	switch t {
	case ItemApplicationContext:
		return "application context item 0x10"
	case ItemPresentationContextRQ:
		return "presentation context item 0x20"
	case ItemPresentationContextAC:
		return "presentation context item 0x21"
	case ItemAbstractSyntax:
		return "abstract syntax sub-item 0x30"
	case ItemTransferSyntax:
		return "transfer syntax sub-item 0x40"
	case ItemUserInformation:
		return "user information item 0x50"
	case ItemMaxLength:
		return "maximum length sub-item 0x51"
	case ItemImplementationClassUID:
		return "implementation class UID sub-item 0x52"
	case ItemAsyncOperationsWindow:
		return "asynchronous operations window sub-item 0x53"
	case ItemRoleSelection:
		return "SCP/SCU role selection sub-item 0x54"
	case ItemImplementationVersion:
		return "implementation version name sub-item 0x55"
	case ItemSOPClassExtendedNeg:
		return "SOP class extended negotiation sub-item 0x56"
	case ItemSOPClassCommonExtendNeg:
		return "SOP class common extended negotiation sub-item 0x57"
	case ItemUserIdentityRQ:
		return "user identity sub-item 0x58"
	case ItemUserIdentityAC:
		return "user identity response sub-item 0x59"
	}
	return "item " + hex8(t)
}

// subItemError builds the error for a sub-item at sub that is not allowed in
// an item of type parent.
//
//go:noinline
func subItemError(sub int, parent, typ uint8, second bool) error {
	switch {
	case parent == ItemPresentationContextAC && typ != ItemTransferSyntax:
		return newErr(sub, itemName(parent), ErrInvalid, "unknown sub-item type "+hex8(typ)+" (an AC context holds one 0x40 transfer syntax)")
	case parent == ItemPresentationContextAC:
		return newErr(sub, itemName(parent), ErrInvalid, "second transfer syntax sub-item 0x40 (at most one is allowed)")
	case second:
		return newErr(sub, itemName(parent), ErrInvalid, "second abstract syntax sub-item 0x30 (exactly one is allowed)")
	}
	return newErr(sub, itemName(parent), ErrInvalid, "unknown sub-item type "+hex8(typ)+" (only 0x30 abstract syntax and 0x40 transfer syntax are defined)")
}

// shortPCError reports a presentation context item at off whose content of n
// bytes cannot hold its 4-byte fixed part.
//
//go:noinline
func shortPCError(off, n int, typ uint8) error {
	if typ == ItemPresentationContextAC {
		return newErr(off, itemName(typ), ErrTruncated, "length "+itoa(n)+" is shorter than the 4-byte context ID, result and reserved fields")
	}
	return newErr(off, itemName(typ), ErrTruncated, "length "+itoa(n)+" is shorter than the 4-byte context ID and reserved field")
}

// decodePCRQ decodes the content c of the presentation context item (type
// 0x20) at offset off, whose reserved header byte is res, into pc, reusing
// pc.TransferSyntaxes.
//
// prev is the context decoded just before pc in the same PDU (nil for the
// first): its UIDs passed the ambiguity checks already, so an equal UID at
// the same place in pc is not checked again (large RQs repeat one list of
// transfer syntaxes for every context).
func (d *Decoder) decodePCRQ(c []byte, off int, res uint8, pc, prev *PresentationContextRQ) error {
	if len(c) < 4 {
		return shortPCError(off, len(c), ItemPresentationContextRQ)
	}
	pc.ID = c[0]
	pc.AbstractSyntax = nil
	pc.TransferSyntaxes = pc.TransferSyntaxes[:0]
	pc.nul, pc.asPos = 0, 0
	pc.res = [4]byte{res, c[1], c[2], c[3]}
	// A sub-item starts at offset end-len(subs).
	end := off + 4 + len(c)
	subs := c[4:]
	// Fast path, the hot loop of large RQs (128 contexts × many transfer
	// syntaxes): the abstract syntax, then the transfer syntaxes, decoded
	// as the general loop below would; it takes over at the first sub-item
	// that does not fit this order (or whose header is bad).
	if len(subs) >= 4 && subs[0] == ItemAbstractSyntax {
		if n := int(subs[2])<<8 | int(subs[3]); n <= len(subs)-4 {
			var nul bool
			pc.AbstractSyntax, nul = trimUID(subs[4 : 4+n : 4+n])
			if nul {
				pc.nul = 1
			}
			subs = subs[4+n:]
		}
	}
	// The transfer syntaxes are walked by index (p) rather than by
	// reslicing subs, the cheaper form of this hottest loop natively; h
	// makes one bounds check cover the header.
	p := 0
	for p >= 0 && p <= len(subs)-4 {
		h := subs[p : p+4 : p+4]
		if h[0] != ItemTransferSyntax {
			break
		}
		next := p + 4 + (int(h[2])<<8 | int(h[3]))
		if next > len(subs) {
			break
		}
		ts, nul := trimUID(subs[p+4 : next : next])
		if nul && len(pc.TransferSyntaxes) < 63 {
			pc.nul |= 1 << (len(pc.TransferSyntaxes) + 1)
		}
		pc.TransferSyntaxes = append(pc.TransferSyntaxes, ts)
		p = next
	}
	subs = subs[p:]
	for len(subs) > 0 {
		if len(subs) < 4 {
			return subItemsError(subs, end-len(subs), ItemPresentationContextRQ)
		}
		n := int(subs[2])<<8 | int(subs[3])
		if n > len(subs)-4 {
			return subItemsError(subs, end-len(subs), ItemPresentationContextRQ)
		}
		uid, nul := trimUID(subs[4 : 4+n : 4+n])
		switch subs[0] {
		case ItemTransferSyntax:
			if nul && len(pc.TransferSyntaxes) < 63 {
				pc.nul |= 1 << (len(pc.TransferSyntaxes) + 1)
			}
			pc.TransferSyntaxes = append(pc.TransferSyntaxes, uid)
		case ItemAbstractSyntax:
			if pc.AbstractSyntax != nil {
				return subItemError(end-len(subs), ItemPresentationContextRQ, ItemAbstractSyntax, true)
			}
			pc.AbstractSyntax = uid
			if nul {
				pc.nul |= 1
			}
			pc.asPos = len(pc.TransferSyntaxes)
		default:
			return subItemError(end-len(subs), ItemPresentationContextRQ, subs[0], false)
		}
		subs = subs[4+n:]
	}
	if d.amb() {
		if err := checkPCUIDs(c, off, pc, prev); err != nil {
			return err
		}
	}
	if s := d.checks(); s != nil {
		return s.pcRQ(off, pc)
	}
	return nil
}

// checkPCUIDs applies the ambiguity checks to the decoded presentation
// context pc (item content c at off): an abstract syntax, and PS3.5 UIDs.
// It runs after the sub-item loops, which stay as tight as without the
// checks (a condition in the transfer syntax loop cost more than the check
// it guarded). A UID equal to the one at the same place in prev (checked
// already) is not checked again.
func checkPCUIDs(c []byte, off int, pc, prev *PresentationContextRQ) error {
	if pc.AbstractSyntax == nil {
		return noAbstractSyntaxError(off, pc.ID)
	}
	if !(prev != nil && string(prev.AbstractSyntax) == string(pc.AbstractSyntax)) && !uidOK(pc.AbstractSyntax) {
		return pcUIDError(c, off, pc, -1)
	}
	var prevTS [][]byte
	if prev != nil {
		prevTS = prev.TransferSyntaxes
	}
	for k, ts := range pc.TransferSyntaxes {
		if k < len(prevTS) && string(prevTS[k]) == string(ts) {
			continue
		}
		if !uidOK(ts) {
			return pcUIDError(c, off, pc, k)
		}
	}
	return nil
}

// prevPC returns the next-to-last element of pcs (the context decoded
// before the one grow just added), or nil.
func prevPC(pcs []PresentationContextRQ) *PresentationContextRQ {
	if len(pcs) < 2 {
		return nil
	}
	return &pcs[len(pcs)-2]
}

// pcUIDError reports the abstract syntax (k < 0) or transfer syntax k of
// the presentation context pc (item content c at off) whose UID is
// ambiguous, at the offset of its sub-item (found by walking c again; the
// items tile c, as decodePCRQ checked).
//
//go:noinline
func pcUIDError(c []byte, off int, pc *PresentationContextRQ, k int) error {
	typ, uid, what := ItemAbstractSyntax, pc.AbstractSyntax, "context "+itoa(int(pc.ID))+" abstract syntax"
	if k >= 0 {
		typ, uid, what = ItemTransferSyntax, pc.TransferSyntaxes[k], "context "+itoa(int(pc.ID))+" transfer syntax"
	}
	sub, seen := off, 0
	for p := 4; p+4 <= len(c); p += 4 + (int(c[p+2])<<8 | int(c[p+3])) {
		if c[p] == typ {
			if typ == ItemAbstractSyntax || seen == k {
				sub = off + 4 + p
				break
			}
			seen++
		}
	}
	return uidAmbError(sub, itemName(typ), what, uid)
}

// checkPCRQ applies the strict rules to the presentation context at off.
//
//go:noinline
func checkPCRQ(off int, pc *PresentationContextRQ) error {
	name := itemName(ItemPresentationContextRQ)
	switch {
	case pc.AbstractSyntax == nil:
		return newErr(off, name, ErrInvalid, "context "+itoa(int(pc.ID))+" has no abstract syntax sub-item 0x30 (strict)")
	case pc.asPos != 0:
		return newErr(off, name, ErrInvalid, "context "+itoa(int(pc.ID))+": abstract syntax sub-item 0x30 is not first (strict)")
	case len(pc.TransferSyntaxes) == 0:
		return newErr(off, name, ErrInvalid, "context "+itoa(int(pc.ID))+" has no transfer syntax sub-item 0x40 (strict)")
	}
	if msg := uidProblem(pc.AbstractSyntax); msg != "" {
		return newErr(off, name, ErrInvalid, "context "+itoa(int(pc.ID))+" abstract syntax: "+msg+" (strict)")
	}
	for _, ts := range pc.TransferSyntaxes {
		if msg := uidProblem(ts); msg != "" {
			return newErr(off, name, ErrInvalid, "context "+itoa(int(pc.ID))+" transfer syntax: "+msg+" (strict)")
		}
	}
	return nil
}

// decodePCAC decodes the content c of the presentation context item (type
// 0x21) at offset off, whose reserved header byte is res, into pc.
func (d *Decoder) decodePCAC(c []byte, off int, res uint8, pc *PresentationContextAC) error {
	if len(c) < 4 {
		return shortPCError(off, len(c), ItemPresentationContextAC)
	}
	pc.ID, pc.Result = c[0], PCResult(c[2])
	pc.TransferSyntax, pc.nul = nil, false
	pc.res = [3]byte{res, c[1], c[3]}
	end := off + 4 + len(c)
	for subs := c[4:]; len(subs) > 0; {
		if len(subs) < 4 {
			return subItemsError(subs, end-len(subs), ItemPresentationContextAC)
		}
		n := int(subs[2])<<8 | int(subs[3])
		if n > len(subs)-4 {
			return subItemsError(subs, end-len(subs), ItemPresentationContextAC)
		}
		if subs[0] != ItemTransferSyntax || pc.TransferSyntax != nil {
			return subItemError(end-len(subs), ItemPresentationContextAC, subs[0], false)
		}
		pc.TransferSyntax, pc.nul = trimUID(subs[4 : 4+n : 4+n])
		subs = subs[4+n:]
	}
	if s := d.checks(); s != nil {
		return s.pcAC(off, pc.ID, uint8(pc.Result), pc.TransferSyntax)
	}
	return nil
}

// checkPCAC applies the strict rules to the presentation context result at
// off.
//
//go:noinline
func checkPCAC(off int, id uint8, result PCResult, ts []byte) error {
	name := itemName(ItemPresentationContextAC)
	if result > PCTransferSyntaxesNotSupported {
		return newErr(off+6, name, ErrInvalid, "context "+itoa(int(id))+": result "+itoa(int(result))+" is not 0-4 (strict)")
	}
	if result == PCAccepted {
		if ts == nil {
			return newErr(off, name, ErrInvalid, "accepted context "+itoa(int(id))+" has no transfer syntax sub-item 0x40 (strict)")
		}
		if msg := uidProblem(ts); msg != "" {
			return newErr(off, name, ErrInvalid, "context "+itoa(int(id))+" transfer syntax: "+msg+" (strict)")
		}
	}
	return nil
}

// checkPCID applies the strict context-ID rules: odd and unique.
//
//go:noinline
func checkPCID(id uint8, off int, prevRQ []PresentationContextRQ, repeatedAC bool) error {
	const name = "presentation context ID"
	if id%2 == 0 {
		return newErr(off, name, ErrInvalid, "ID "+itoa(int(id))+" is even (IDs are odd, 1-255) (strict)")
	}
	for i := range prevRQ {
		if prevRQ[i].ID == id {
			return newErr(off, name, ErrInvalid, "ID "+itoa(int(id))+" is repeated (strict)")
		}
	}
	if repeatedAC {
		return newErr(off, name, ErrInvalid, "ID "+itoa(int(id))+" is repeated (strict)")
	}
	return nil
}

// acIDRepeated reports whether a result item in prev has the ID id (for the
// strict check, which cannot take the items: see strictChecks).
func acIDRepeated(prev []PresentationContextAC, id uint8) bool {
	for i := range prev {
		if prev[i].ID == id {
			return true
		}
	}
	return false
}

// reset clears u for decoding, keeping the capacity of its slices. Fields are
// cleared one by one: a composite-literal reset is a memory.fill in Wasm.
func (u *UserInformation) reset() {
	u.ImplementationClassUID, u.ImplementationVersionName = nil, nil
	u.UserIdentity.Primary, u.UserIdentity.Secondary, u.UserIdentityResponse = nil, nil, nil
	u.MaxLength, u.HasMaxLength, u.implNUL = 0, false, false
	u.resetRest()
	u.order = u.order[:0]
	u.decoded = false
}

// resetRest clears the fields of u that the fast path of decodeUserInfo does
// not set.
func (u *UserInformation) resetRest() {
	u.AsyncOps.MaxInvoked, u.AsyncOps.MaxPerformed, u.HasAsyncOps = 0, 0, false
	u.RoleSelections = u.RoleSelections[:0]
	u.ExtendedNegotiations = u.ExtendedNegotiations[:0]
	u.CommonExtendedNegotiations = u.CommonExtendedNegotiations[:0]
	u.UserIdentity.Type, u.UserIdentity.PositiveResponseRequested, u.UserIdentity.PositiveResponseRaw = 0, false, 0
	u.HasUserIdentity, u.HasUserIdentityResponse = false, false
	u.Unknown = u.Unknown[:0]
}

// subItemBit is the bit of sub-item type typ (0x51-0x59) in the seen and
// singletonSubItems sets: bit (typ-0x51).
func subItemBit(typ uint8) uint16 { return 1 << (typ - ItemMaxLength) }

// singletonSubItems has bit (type-0x51) set for the user-information
// sub-items that may appear at most once (bit 0: ItemMaxLength).
const singletonSubItems = 1<<0 | 1<<(ItemImplementationClassUID-ItemMaxLength) |
	1<<(ItemAsyncOperationsWindow-ItemMaxLength) | 1<<(ItemImplementationVersion-ItemMaxLength) |
	1<<(ItemUserIdentityRQ-ItemMaxLength) | 1<<(ItemUserIdentityAC-ItemMaxLength)

// decodeUserInfo resets u and decodes into it the content c of the user
// information item at offset off; amb applies the ambiguity checks (of an
// RQ, see Decoder.AllowAmbiguous).
func decodeUserInfo(c []byte, off int, u *UserInformation, strict strictChecks, isRQ, amb bool) error {
	u.order = u.order[:0]
	var seen uint16 // bit (type-0x51) set once a sub-item was decoded
	// A sub-item starts at offset end-len(subs).
	end := off + 4 + len(c)
	subs := c
	// Fast path: real stacks start with 0x51 (length 4), 0x52 and 0x55, in
	// this order. They are decoded here exactly as the loop below would (none
	// can be a repeat yet) but into locals, stored once together with the
	// reset of the other fields: every pointer store is a write-barrier
	// check, and each check makes Go's Wasm reload the values it needs.
	var maxLen uint32
	var implUID, implVer []byte
	var implNUL bool
	if len(subs) >= 8 && subs[0] == ItemMaxLength && subs[2] == 0 && subs[3] == 4 {
		maxLen = uint32(subs[4])<<24 | uint32(subs[5])<<16 | uint32(subs[6])<<8 | uint32(subs[7])
		u.order = append(u.order, itemRef{typ: ItemMaxLength})
		seen |= subItemBit(ItemMaxLength)
		subs = subs[8:]
	}
	if len(subs) >= 4 && subs[0] == ItemImplementationClassUID {
		if n := int(subs[2])<<8 | int(subs[3]); n <= len(subs)-4 {
			implUID, implNUL = trimUID(subs[4 : 4+n : 4+n])
			if amb && !uidOK(implUID) {
				return checkUIDAmb(end-len(subs), ItemImplementationClassUID, implUID)
			}
			if strict != nil {
				if err := strict.uid(end-len(subs), ItemImplementationClassUID, implUID); err != nil {
					return err
				}
			}
			u.order = append(u.order, itemRef{typ: ItemImplementationClassUID})
			seen |= 1 << (ItemImplementationClassUID - ItemMaxLength)
			subs = subs[4+n:]
		}
	}
	if len(subs) >= 4 && subs[0] == ItemImplementationVersion {
		if n := int(subs[2])<<8 | int(subs[3]); n <= len(subs)-4 {
			implVer = subs[4 : 4+n : 4+n]
			if amb && (n > 16 || !printable(implVer)) {
				return checkVersionNameAmb(end-len(subs), implVer)
			}
			if strict != nil && (n == 0 || n > 16) {
				return strict.ui(end-len(subs), ItemImplementationVersion, uiVersionLen, n)
			}
			u.order = append(u.order, itemRef{typ: ItemImplementationVersion})
			seen |= 1 << (ItemImplementationVersion - ItemMaxLength)
			subs = subs[4+n:]
		}
	}
	u.ImplementationClassUID, u.ImplementationVersionName = implUID, implVer
	u.UserIdentity.Primary, u.UserIdentity.Secondary, u.UserIdentityResponse = nil, nil, nil
	u.MaxLength, u.HasMaxLength, u.implNUL = maxLen, seen&1 != 0, implNUL
	u.resetRest()
	u.decoded = true
	for len(subs) > 0 {
		sub := end - len(subs)
		if len(subs) < 4 {
			return subItemsError(subs, sub, ItemUserInformation)
		}
		n := int(subs[2])<<8 | int(subs[3])
		if n > len(subs)-4 {
			return subItemsError(subs, sub, ItemUserInformation)
		}
		typ, c := subs[0], subs[4:4+n:4+n]
		bit := uint16(0)
		if typ-ItemMaxLength <= ItemUserIdentityAC-ItemMaxLength {
			bit = 1 << (typ - ItemMaxLength)
		}
		keepRaw := false
		idx := 0
		switch {
		case seen&bit&singletonSubItems != 0:
			if amb {
				return ambSubItemError(sub, typ, ambRepeated, 0)
			}
			if strict != nil {
				return strict.ui(sub, typ, uiRepeated, 0)
			}
			keepRaw = true
		case typ == ItemMaxLength:
			if len(c) != 4 {
				if amb {
					return ambSubItemError(sub, typ, ambLen4, len(c))
				}
				if strict != nil {
					return strict.ui(sub, typ, uiLen4, len(c))
				}
				keepRaw = true
				break
			}
			u.MaxLength, u.HasMaxLength = uint32(c[0])<<24|uint32(c[1])<<16|uint32(c[2])<<8|uint32(c[3]), true
		case typ == ItemImplementationClassUID:
			u.ImplementationClassUID, u.implNUL = trimUID(c)
			if amb && !uidOK(u.ImplementationClassUID) {
				return checkUIDAmb(sub, typ, u.ImplementationClassUID)
			}
			if strict != nil {
				if err := strict.uid(sub, typ, u.ImplementationClassUID); err != nil {
					return err
				}
			}
		case typ == ItemImplementationVersion:
			u.ImplementationVersionName = c
			if amb && (len(c) > 16 || !printable(c)) {
				return checkVersionNameAmb(sub, c)
			}
			if strict != nil && (len(c) == 0 || len(c) > 16) {
				return strict.ui(sub, typ, uiVersionLen, len(c))
			}
		case typ == ItemAsyncOperationsWindow:
			if len(c) != 4 {
				if amb {
					return ambSubItemError(sub, typ, ambLen4, len(c))
				}
				if strict != nil {
					return strict.ui(sub, typ, uiLen4, len(c))
				}
				keepRaw = true
				break
			}
			u.AsyncOps.MaxInvoked = uint16(c[0])<<8 | uint16(c[1])
			u.AsyncOps.MaxPerformed = uint16(c[2])<<8 | uint16(c[3])
			u.HasAsyncOps = true
		case typ == ItemRoleSelection:
			if err := decodeRoleSelection(sub, c, u, strict, amb); err != nil {
				return err
			}
			idx = len(u.RoleSelections) - 1
		case typ == ItemSOPClassExtendedNeg:
			if err := decodeExtNeg(sub, c, u, amb); err != nil {
				return err
			}
			idx = len(u.ExtendedNegotiations) - 1
		case typ == ItemSOPClassCommonExtendNeg:
			if err := decodeCommonExtNeg(sub, c, u, amb); err != nil {
				return err
			}
			idx = len(u.CommonExtendedNegotiations) - 1
		case typ == ItemUserIdentityRQ:
			if err := decodeUserIdentity(sub, c, u, strict); err != nil {
				return err
			}
			if amb {
				if err := checkUserIdentityAmb(sub, &u.UserIdentity); err != nil {
					return err
				}
			}
		case typ == ItemUserIdentityAC:
			if amb {
				return ambSubItemError(sub, typ, ambUIDResponse, 0)
			}
			r, rest, err := lenPrefixed(sub+4, c, itemName(typ), "server response")
			if err != nil {
				return err
			}
			if len(rest) != 0 {
				return uiError(sub, typ, uiTrailing, len(rest))
			}
			u.UserIdentityResponse, u.HasUserIdentityResponse = r, true
		default:
			keepRaw = true
		}
		if keepRaw {
			keepSubItem(subs[:4+n], u)
		} else {
			seen |= bit
			u.order = append(u.order, itemRef{typ: typ, index: int32(idx)})
		}
		subs = subs[4+n:]
	}
	if strict != nil {
		return strict.userInfo(off, u, isRQ)
	}
	return nil
}

// Kinds of user-information sub-item errors built by uiError.
const (
	uiRepeated = iota
	uiLen4
	uiVersionLen
	uiTrailing
)

// uiError builds the error of kind for the user-information sub-item of
// type typ at sub; n is the length (or trailing byte count) to report. The
// strict kinds (uiRepeated, uiLen4, uiVersionLen) are built by uiStrictError.
//
//go:noinline
func uiError(sub int, typ uint8, kind, n int) error {
	if typ == ItemUserIdentityAC {
		return newErr(sub, itemName(typ), ErrInvalid, itoa(n)+" bytes follow the server response (the lengths do not add up)")
	}
	return newErr(sub, itemName(typ), ErrInvalid, itoa(n)+" bytes follow the secondary field (the lengths do not add up)")
}

// uiStrictError builds the strict-mode error of kind (uiRepeated, uiLen4,
// uiVersionLen) for the user-information sub-item of type typ at sub; n is
// the length to report.
func uiStrictError(sub int, typ uint8, kind, n int) error {
	switch kind {
	case uiRepeated:
		return newErr(sub, itemName(typ), ErrInvalid, "repeated sub-item (strict: at most one is allowed)")
	case uiLen4:
		return newErr(sub, itemName(typ), ErrInvalid, "length "+itoa(n)+" must be 4 (strict)")
	}
	return newErr(sub, itemName(typ), ErrInvalid, "length "+itoa(n)+" is not 1-16 characters (strict)")
}

// checkUID applies the strict UID rules to the UID of the sub-item at sub.
//
//go:noinline
func checkUID(sub int, typ uint8, uid []byte) error {
	if msg := uidProblem(uid); msg != "" {
		return newErr(sub, itemName(typ), ErrInvalid, msg+" (strict)")
	}
	return nil
}

// keepSubItem keeps the user-information sub-item it (header included) as
// unknown.
//
//go:noinline
func keepSubItem(it []byte, u *UserInformation) {
	ri := grow(&u.Unknown)
	*ri = RawItem{Type: it[0], Reserved: it[1], Data: it[4:len(it):len(it)]}
	u.order = append(u.order, itemRef{typ: it[0], index: int32(len(u.Unknown) - 1), raw: true})
}

// decodeRoleSelection decodes sub-item 0x54 (content c at sub).
func decodeRoleSelection(sub int, c []byte, u *UserInformation, strict strictChecks, amb bool) error {
	name := itemName(ItemRoleSelection)
	uid, rest, err := lenPrefixed(sub+4, c, name, "SOP class UID")
	if err != nil {
		return err
	}
	if len(rest) != 2 {
		return newErr(sub, name, ErrInvalid, "length "+itoa(len(c))+" does not equal 2 + UID length "+itoa(len(uid))+" + 2 role bytes")
	}
	rs := grow(&u.RoleSelections)
	*rs = RoleSelection{SCURole: rest[0], SCPRole: rest[1]}
	rs.SOPClassUID, rs.nul = trimUID(uid)
	if amb && !uidOK(rs.SOPClassUID) {
		return checkUIDAmb(sub, ItemRoleSelection, rs.SOPClassUID)
	}
	if strict != nil {
		return strict.uid(sub, ItemRoleSelection, rs.SOPClassUID)
	}
	return nil
}

// decodeExtNeg decodes sub-item 0x56 (content c at sub).
func decodeExtNeg(sub int, c []byte, u *UserInformation, amb bool) error {
	uid, rest, err := lenPrefixed(sub+4, c, itemName(ItemSOPClassExtendedNeg), "SOP class UID")
	if err != nil {
		return err
	}
	en := grow(&u.ExtendedNegotiations)
	*en = ExtendedNegotiation{Info: rest}
	en.SOPClassUID, en.nul = trimUID(uid)
	if amb && !uidOK(en.SOPClassUID) {
		return checkUIDAmb(sub, ItemSOPClassExtendedNeg, en.SOPClassUID)
	}
	return nil
}

// decodeUserIdentity decodes sub-item 0x58 (content c at sub).
func decodeUserIdentity(sub int, c []byte, u *UserInformation, strict strictChecks) error {
	name := itemName(ItemUserIdentityRQ)
	if len(c) < 2 {
		return newErr(sub, name, ErrTruncated, "length "+itoa(len(c))+" is shorter than the type and positive-response bytes")
	}
	ui := UserIdentity{Type: c[0], PositiveResponseRaw: c[1], PositiveResponseRequested: c[1] != 0}
	p, rest, err := lenPrefixed(sub+6, c[2:], name, "primary field")
	if err != nil {
		return err
	}
	s2, rest, err := lenPrefixed(sub+6+2+len(p), rest, name, "secondary field")
	if err != nil {
		return err
	}
	if len(rest) != 0 {
		return uiError(sub, ItemUserIdentityRQ, uiTrailing, len(rest))
	}
	ui.Primary, ui.Secondary = p, s2
	if strict != nil {
		if err := strict.identityType(sub, ui.Type); err != nil {
			return err
		}
	}
	u.UserIdentity, u.HasUserIdentity = ui, true
	return nil
}

// checkUserInfo applies the strict rules to the decoded user information
// item at off.
//
//go:noinline
func checkUserInfo(off int, u *UserInformation, isRQ bool) error {
	name := itemName(ItemUserInformation)
	if !u.HasMaxLength {
		return newErr(off, name, ErrInvalid, "no maximum length sub-item 0x51 (strict)")
	}
	if u.ImplementationClassUID == nil {
		return newErr(off, name, ErrInvalid, "no implementation class UID sub-item 0x52 (strict)")
	}
	if isRQ && u.HasUserIdentityResponse {
		return newErr(off, name, ErrInvalid, "user identity response sub-item 0x59 in an A-ASSOCIATE-RQ (strict)")
	}
	if !isRQ && u.HasUserIdentity {
		return newErr(off, name, ErrInvalid, "user identity sub-item 0x58 in an A-ASSOCIATE-AC (strict)")
	}
	return nil
}

// decodeCommonExtNeg decodes sub-item 0x57 (content c at sub). Its UIDs
// keep a trailing NUL (none is stripped), so amb refuses any.
func decodeCommonExtNeg(sub int, c []byte, u *UserInformation, amb bool) error {
	name := itemName(ItemSOPClassCommonExtendNeg)
	pos := sub + 4
	sop, rest, err := lenPrefixed(pos, c, name, "SOP class UID")
	if err != nil {
		return err
	}
	pos += 2 + len(sop)
	svc, rest, err := lenPrefixed(pos, rest, name, "service class UID")
	if err != nil {
		return err
	}
	pos += 2 + len(svc)
	list, rest, err := lenPrefixed(pos, rest, name, "related general SOP class list")
	if err != nil {
		return err
	}
	pos += 2
	if len(rest) != 0 {
		return newErr(sub, name, ErrInvalid, itoa(len(rest))+" bytes follow the related general SOP class list (the lengths do not add up)")
	}
	ce := grow(&u.CommonExtendedNegotiations)
	*ce = CommonExtendedNegotiation{SOPClassUID: sop, ServiceClassUID: svc, RelatedGeneralSOPUID: ce.RelatedGeneralSOPUID[:0]}
	for len(list) > 0 {
		var uid []byte
		uid, list, err = lenPrefixed(pos, list, name, "related general SOP class UID")
		if err != nil {
			return err
		}
		pos += 2 + len(uid)
		ce.RelatedGeneralSOPUID = append(ce.RelatedGeneralSOPUID, uid)
	}
	if amb {
		return checkCommonExtNegAmb(sub, ce)
	}
	return nil
}

// checkCommonExtNegAmb checks the UIDs of the sub-item 0x57 at sub.
//
//go:noinline
func checkCommonExtNegAmb(sub int, ce *CommonExtendedNegotiation) error {
	name := itemName(ItemSOPClassCommonExtendNeg)
	if !uidOK(ce.SOPClassUID) {
		return uidAmbError(sub, name, "SOP class UID", ce.SOPClassUID)
	}
	if !uidOK(ce.ServiceClassUID) {
		return uidAmbError(sub, name, "service class UID", ce.ServiceClassUID)
	}
	for _, uid := range ce.RelatedGeneralSOPUID {
		if !uidOK(uid) {
			return uidAmbError(sub, name, "related general SOP class UID", uid)
		}
	}
	return nil
}

// lenPrefixed splits a 2-byte big-endian length and that many bytes off c.
// off is the offset of c[0] in the PDU, for errors.
func lenPrefixed(off int, c []byte, field, what string) (val, rest []byte, err error) {
	if len(c) < 2 {
		return nil, nil, newErr(off, field, ErrTruncated, what+": "+itoa(len(c))+" bytes left, the 2-byte length needs 2")
	}
	n := int(binary.BigEndian.Uint16(c))
	if n > len(c)-2 {
		return nil, nil, newErr(off, field, ErrTruncated, what+": length "+itoa(n)+" exceeds remaining "+itoa(len(c)-2)+" bytes")
	}
	return c[2 : 2+n : 2+n], c[2+n:], nil
}

// grow extends *s by one element and returns it, reusing capacity (and the
// old element's contents, which the caller resets while keeping inner
// slices). Without growth only the length is stored (no pointer store and
// write-barrier check).
func grow[T any](s *[]T) *T {
	if n := len(*s); n < cap(*s) {
		*s = (*s)[:n+1]
	} else {
		var z T
		*s = append(*s, z)
	}
	return &(*s)[len(*s)-1]
}

// growAC is grow for the AC's result items, written out: a generic
// instantiation's dictionary makes the linker treat its type argument as
// reaching an interface, which would link PCResult.String (a field of
// PresentationContextAC) into every program that decodes an RQ, the filter
// included (see strictChecks).
func growAC(s *[]PresentationContextAC) *PresentationContextAC {
	if n := len(*s); n < cap(*s) {
		*s = (*s)[:n+1]
	} else {
		*s = append(*s, PresentationContextAC{})
	}
	return &(*s)[len(*s)-1]
}

// trimUID strips one trailing NUL (UIDs are sent unpadded, but some stacks
// add a NUL) and reports whether it did.
func trimUID(b []byte) ([]byte, bool) {
	if n := len(b); n > 0 && b[n-1] == 0 {
		return b[: n-1 : n-1], true
	}
	return b, false
}

// uidProblem describes why b is not a valid UID (PS3.5 §9.1), or "".
func uidProblem(b []byte) string {
	if len(b) == 0 {
		return "empty UID"
	}
	if len(b) > 64 {
		return "UID has " + itoa(len(b)) + " characters, at most 64 are allowed"
	}
	compStart := 0
	for i, c := range b {
		switch {
		case c == '.':
			if i == compStart {
				return "UID " + quote(b) + " has an empty component"
			}
			compStart = i + 1
		case c >= '0' && c <= '9':
			if c == '0' && i == compStart && i+1 < len(b) && b[i+1] != '.' {
				return "UID " + quote(b) + " has a component with a leading zero"
			}
		default:
			return "UID " + quote(b) + " contains " + hex8(c) + " (only digits and dots are allowed)"
		}
	}
	if compStart == len(b) {
		return "UID " + quote(b) + " ends with a dot"
	}
	return ""
}

// quote renders bytes for an error message, escaping non-printable ones.
func quote(b []byte) string {
	const digits = "0123456789abcdef"
	out := make([]byte, 0, len(b)+2)
	out = append(out, '"')
	for _, c := range b {
		if c < 0x20 || c > 0x7e || c == '"' || c == '\\' {
			out = append(out, '\\', 'x', digits[c>>4], digits[c&15])
			continue
		}
		out = append(out, c)
	}
	return string(append(out, '"'))
}

// checkAE applies the strict AE title rules to a raw 16-byte field.
func checkAE(raw []byte, off int, field string) error {
	err := ValidAETitle(TrimAETitle(raw))
	if e, ok := err.(*Error); ok {
		e.Offset, e.Field, e.Msg = off, field, e.Msg+" (strict)"
		return e
	}
	return err
}

// DecodeAssociateRJ decodes one whole A-ASSOCIATE-RJ PDU (10 bytes).
func (d *Decoder) DecodeAssociateRJ(pdu []byte, rj *AssociateRJ) error {
	if err := d.header(pdu, TypeAssociateRJ); err != nil {
		return err
	}
	*rj = AssociateRJ{hdrReserved: pdu[1], reserved: pdu[6], Result: RJResult(pdu[7]), Source: RJSource(pdu[8]), Reason: RJReason(pdu[9])}
	if s := d.checks(); s != nil {
		return s.rj(uint8(rj.Result), uint8(rj.Source))
	}
	return nil
}

// DecodeReleaseRQ decodes one whole A-RELEASE-RQ PDU (10 bytes).
func (d *Decoder) DecodeReleaseRQ(pdu []byte, r *ReleaseRQ) error {
	if err := d.header(pdu, TypeReleaseRQ); err != nil {
		return err
	}
	*r = ReleaseRQ{hdrReserved: pdu[1]}
	copy(r.Reserved[:], pdu[6:10])
	return nil
}

// DecodeReleaseRP decodes one whole A-RELEASE-RP PDU (10 bytes).
func (d *Decoder) DecodeReleaseRP(pdu []byte, r *ReleaseRP) error {
	if err := d.header(pdu, TypeReleaseRP); err != nil {
		return err
	}
	*r = ReleaseRP{hdrReserved: pdu[1]}
	copy(r.Reserved[:], pdu[6:10])
	return nil
}

// DecodeAbort decodes one whole A-ABORT PDU (10 bytes).
func (d *Decoder) DecodeAbort(pdu []byte, a *Abort) error {
	if err := d.header(pdu, TypeAbort); err != nil {
		return err
	}
	*a = Abort{hdrReserved: pdu[1], Reserved: [2]byte{pdu[6], pdu[7]}, Source: AbortSource(pdu[8]), Reason: AbortReason(pdu[9])}
	if s := d.checks(); s != nil {
		return s.abort(uint8(a.Source), uint8(a.Reason))
	}
	return nil
}

// DecodePDataTF decodes one whole P-DATA-TF PDU into p, reusing p.PDVs. PDV
// data aliases pdu.
func (d *Decoder) DecodePDataTF(pdu []byte, p *PDataTF) error {
	if err := d.header(pdu, TypePDataTF); err != nil {
		return err
	}
	p.PDVs = p.PDVs[:0]
	p.hdrReserved = pdu[1]
	const name = "PDV item"
	for off := HeaderLen; off < len(pdu); {
		if len(pdu)-off < 4 {
			return newErr(off, name, ErrTruncated, itoa(len(pdu)-off)+" trailing bytes cannot hold a 4-byte PDV item length")
		}
		n := binary.BigEndian.Uint32(pdu[off : off+4])
		if uint64(n) > uint64(len(pdu)-off-4) {
			return newErr(off, name, ErrTruncated, "length "+itoa(int(n))+" exceeds remaining "+itoa(len(pdu)-off-4)+" bytes")
		}
		if n < 2 {
			return newErr(off, name, ErrInvalid, "length "+itoa(int(n))+" is shorter than the context ID and message control header (2 bytes)")
		}
		end := off + 4 + int(n)
		v := PDV{ContextID: pdu[off+4], MessageControlHeader: pdu[off+5], Data: pdu[off+6 : end : end]}
		if v.MessageControlHeader&0xfc != 0 {
			return newErr(off+5, name, ErrInvalid, "message control header "+hex8(v.MessageControlHeader)+" has reserved bits 2-7 set")
		}
		if s := d.checks(); s != nil {
			if err := s.pdvContextID(off+4, v.ContextID); err != nil {
				return err
			}
		}
		p.PDVs = append(p.PDVs, v)
		off = end
	}
	return nil
}
