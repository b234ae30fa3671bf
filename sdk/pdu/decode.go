package pdu

import "encoding/binary"

// Decoder decodes whole PDUs (as split off by a Framer) into caller-owned
// values. The zero value is a lenient decoder with DefaultMaxPDULength. A
// Decoder holds no per-call state and may be shared between goroutines.
//
// Lenient (default) behaviour follows what real stacks accept (dcmtk, see
// DICOM PS3.8 and dicom-ul.md §10): unknown variable items and unknown
// user-information sub-items are kept, items may come in any order, repeated
// singleton items are kept as unknown items, reserved fields are never
// tested, UIDs may carry one trailing NUL (stripped). Always rejected: a
// length that runs past its container, items that do not tile their
// container, fixed-size PDUs with the wrong length, an A-ASSOCIATE body
// shorter than 68 bytes, protocol version without bit 0, PDV items shorter
// than 2 bytes or with reserved message-control bits, and unknown sub-items
// inside a presentation context.
//
// When a Decode method returns an error, the value it was decoding into is
// partially filled and must not be used (it can still be reused for the next
// call).
type Decoder struct {
	// MaxPDULength is the largest PDU length field accepted; 0 means
	// DefaultMaxPDULength.
	MaxPDULength uint32
	// Strict additionally rejects what the standard forbids but real stacks
	// tolerate: invalid AE titles (empty, only spaces, control characters,
	// backslash), a missing, repeated or misplaced application context or
	// user information item, an RQ without presentation contexts, 0x21 items
	// in an RQ or 0x20 items in an AC, contexts without exactly one abstract
	// syntax (first) and at least one transfer syntax, even or repeated
	// context IDs, a missing 0x51 or 0x52 sub-item, 0x51/0x53 with a wrong
	// length, repeated singleton sub-items, malformed UIDs (over 64
	// characters, not digits and dots, leading zeros), an application context
	// other than 1.2.840.10008.3.1.1.1, an implementation version name over
	// 16 characters, out-of-range AC results and RJ/A-ABORT codes.
	Strict bool
}

func (d *Decoder) max() uint32 {
	if d == nil || d.MaxPDULength == 0 {
		return DefaultMaxPDULength
	}
	return d.MaxPDULength
}

func (d *Decoder) strict() bool { return d != nil && d.Strict }

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

// DecodeAssociateRQ decodes one whole A-ASSOCIATE-RQ PDU (header included)
// into rq, reusing rq's slices. Byte slices in rq alias pdu.
func (d *Decoder) DecodeAssociateRQ(pdu []byte, rq *AssociateRQ) error {
	if err := d.header(pdu, TypeAssociateRQ); err != nil {
		return err
	}
	rq.PresentationContexts = rq.PresentationContexts[:0]
	a := assoc{
		version: &rq.ProtocolVersion, called: &rq.CalledAETitleRaw, calling: &rq.CallingAETitleRaw,
		appCtx: &rq.ApplicationContext, ui: &rq.UserInformation, unknown: &rq.UnknownItems,
		raw: &rq.raw, rq: rq,
	}
	return d.decodeAssoc(pdu, &a)
}

// DecodeAssociateAC decodes one whole A-ASSOCIATE-AC PDU (header included)
// into ac, reusing ac's slices. Byte slices in ac alias pdu.
func (d *Decoder) DecodeAssociateAC(pdu []byte, ac *AssociateAC) error {
	if err := d.header(pdu, TypeAssociateAC); err != nil {
		return err
	}
	ac.PresentationContexts = ac.PresentationContexts[:0]
	a := assoc{
		version: &ac.ProtocolVersion, called: &ac.CalledAETitleRaw, calling: &ac.CallingAETitleRaw,
		appCtx: &ac.ApplicationContext, ui: &ac.UserInformation, unknown: &ac.UnknownItems,
		raw: &ac.raw, ac: ac,
	}
	return d.decodeAssoc(pdu, &a)
}

// assoc points at the fields RQ and AC share, so one function decodes both.
type assoc struct {
	version         *uint16
	called, calling *[]byte
	appCtx          *[]byte
	ui              *UserInformation
	unknown         *[]RawItem
	raw             *associateRaw
	rq              *AssociateRQ // exactly one of rq, ac is set
	ac              *AssociateAC
}

func (d *Decoder) decodeAssoc(pdu []byte, a *assoc) error {
	name := TypeAssociateRQ.String()
	if a.ac != nil {
		name = TypeAssociateAC.String()
	}
	raw := a.raw
	order := raw.order[:0]
	*raw = associateRaw{order: order, decoded: true, hdrReserved: pdu[1]}
	*a.version = binary.BigEndian.Uint16(pdu[6:8])
	raw.reserved1 = binary.BigEndian.Uint16(pdu[8:10])
	*a.called = pdu[10:26:26]
	*a.calling = pdu[26:42:42]
	copy(raw.reserved2[:], pdu[42:74])
	*a.appCtx = nil
	*a.unknown = (*a.unknown)[:0]
	a.ui.reset()

	if *a.version&1 == 0 {
		return newErr(OffsetProtocolVersion, name+" protocol version", ErrInvalid,
			"protocol version "+hex16(*a.version)+" does not have bit 0 set (only version 1 exists)")
	}
	strict := d.strict()
	if strict {
		if err := checkAE(*a.called, OffsetCalledAETitle, name+" called AE title"); err != nil {
			return err
		}
		if err := checkAE(*a.calling, OffsetCallingAETitle, name+" calling AE title"); err != nil {
			return err
		}
	}

	var nApp, nUI, nPC, itemIdx int
	off, end := OffsetVariableItems, len(pdu)
	for off < end {
		it, ok := readItem(pdu, off, end)
		if !ok {
			return itemError(pdu, off, end, 0)
		}
		kept := true
		switch {
		case it.typ == ItemApplicationContext && nApp == 0:
			*a.appCtx, raw.appCtxNUL = trimUID(it.content)
			raw.appRes = it.reserved
			if strict {
				if itemIdx != 0 {
					return newErr(off, itemName(it.typ), ErrInvalid, "must be the first variable item (strict)")
				}
				if string(*a.appCtx) != "1.2.840.10008.3.1.1.1" {
					return newErr(off+4, itemName(it.typ), ErrInvalid,
						"application context "+quote(*a.appCtx)+" is not the DICOM application context 1.2.840.10008.3.1.1.1 (strict)")
				}
			}
			nApp++
			raw.order = append(raw.order, itemRef{typ: it.typ})
		case it.typ == ItemPresentationContextRQ && a.rq != nil:
			var pc *PresentationContextRQ
			a.rq.PresentationContexts, pc = grow(a.rq.PresentationContexts)
			if err := d.decodePCRQ(pdu, off, it, pc); err != nil {
				return err
			}
			if strict {
				if err := checkPCID(pc.ID, off+4, a.rq.PresentationContexts[:len(a.rq.PresentationContexts)-1], nil); err != nil {
					return err
				}
			}
			nPC++
			raw.order = append(raw.order, itemRef{typ: it.typ, index: len(a.rq.PresentationContexts) - 1})
		case it.typ == ItemPresentationContextAC && a.ac != nil:
			var pc *PresentationContextAC
			a.ac.PresentationContexts, pc = grow(a.ac.PresentationContexts)
			if err := d.decodePCAC(pdu, off, it, pc); err != nil {
				return err
			}
			if strict {
				if err := checkPCID(pc.ID, off+4, nil, a.ac.PresentationContexts[:len(a.ac.PresentationContexts)-1]); err != nil {
					return err
				}
			}
			nPC++
			raw.order = append(raw.order, itemRef{typ: it.typ, index: len(a.ac.PresentationContexts) - 1})
		case it.typ == ItemUserInformation && nUI == 0:
			raw.uiRes = it.reserved
			if err := d.decodeUserInfo(pdu, off, it, a.ui, a.rq != nil); err != nil {
				return err
			}
			nUI++
			raw.order = append(raw.order, itemRef{typ: it.typ})
		default:
			kept = false
		}
		if !kept {
			if strict {
				switch it.typ {
				case ItemApplicationContext, ItemUserInformation:
					return newErr(off, itemName(it.typ), ErrInvalid, "repeated item (strict: exactly one is allowed)")
				case ItemPresentationContextRQ, ItemPresentationContextAC:
					return newErr(off, itemName(it.typ), ErrInvalid, "not allowed in an "+name+" (strict)")
				}
			}
			var ri *RawItem
			*a.unknown, ri = grow(*a.unknown)
			*ri = RawItem{Type: it.typ, Reserved: it.reserved, Data: it.content}
			raw.order = append(raw.order, itemRef{typ: it.typ, index: len(*a.unknown) - 1, raw: true})
		}
		itemIdx++
		off = it.next
	}
	if strict {
		switch {
		case nApp == 0:
			return newErr(end, name, ErrInvalid, "no application context item 0x10 (strict)")
		case nPC == 0 && a.rq != nil:
			return newErr(end, name, ErrInvalid, "no presentation context item 0x20 (strict)")
		case nUI == 0:
			return newErr(end, name, ErrInvalid, "no user information item 0x50 (strict)")
		case raw.order[len(raw.order)-1].typ != ItemUserInformation:
			return newErr(end, name, ErrInvalid, "user information item 0x50 is not the last item (strict)")
		}
	}
	return nil
}

// item is one variable item or sub-item located by readItem.
type item struct {
	typ, reserved uint8
	content       []byte // after the 4-byte header, capacity clipped
	next          int    // offset of the following item
}

// readItem reads the 4-byte item header at b[off:] and reports whether the
// item fits before end; on false the caller returns itemError.
func readItem(b []byte, off, end int) (item, bool) {
	if off < 0 || end > len(b) || end-off < 4 {
		return item{}, false
	}
	next := off + 4 + (int(b[off+2])<<8 | int(b[off+3]))
	if next > end {
		return item{}, false
	}
	return item{typ: b[off], reserved: b[off+1], content: b[off+4 : next : next], next: next}, true
}

// itemError builds the error for an item header at b[off:] that does not fit
// before end (kept out of line so the hot loops stay small).
//
//go:noinline
func itemError(b []byte, off, end int, parent uint8) error {
	if end-off < 4 {
		field := "variable item"
		if parent != 0 {
			field = itemName(parent)
		}
		return newErr(off, field, ErrTruncated,
			itoa(end-off)+" trailing bytes cannot hold a 4-byte item header (the lengths do not add up)")
	}
	n := int(binary.BigEndian.Uint16(b[off+2 : off+4]))
	return newErr(off, itemName(b[off]), ErrTruncated,
		"length "+itoa(n)+" exceeds remaining "+itoa(end-off-4)+" bytes")
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

func (d *Decoder) decodePCRQ(pdu []byte, off int, it item, pc *PresentationContextRQ) error {
	if len(it.content) < 4 {
		return newErr(off, itemName(it.typ), ErrTruncated, "length "+itoa(len(it.content))+" is shorter than the 4-byte context ID and reserved field")
	}
	*pc = PresentationContextRQ{ID: it.content[0], TransferSyntaxes: pc.TransferSyntaxes[:0],
		res: [4]byte{it.reserved, it.content[1], it.content[2], it.content[3]}}
	sub, end := off+8, it.next
	if end > len(pdu) {
		return itemError(pdu, off, len(pdu), it.typ)
	}
	// This loop is the hot path of large RQs (128 contexts × many transfer
	// syntaxes), so the sub-item header is read inline.
	for sub < end {
		if end-sub < 4 {
			return itemError(pdu, sub, end, it.typ)
		}
		next := sub + 4 + (int(pdu[sub+2])<<8 | int(pdu[sub+3]))
		if next > end {
			return itemError(pdu, sub, end, it.typ)
		}
		content := pdu[sub+4 : next : next]
		switch pdu[sub] {
		case ItemTransferSyntax:
			ts, nul := trimUID(content)
			if nul && len(pc.TransferSyntaxes) < 63 {
				pc.nul |= 1 << (len(pc.TransferSyntaxes) + 1)
			}
			pc.TransferSyntaxes = append(pc.TransferSyntaxes, ts)
		case ItemAbstractSyntax:
			if pc.AbstractSyntax != nil {
				return newErr(sub, itemName(it.typ), ErrInvalid, "second abstract syntax sub-item 0x30 (exactly one is allowed)")
			}
			var nul bool
			pc.AbstractSyntax, nul = trimUID(content)
			if nul {
				pc.nul |= 1
			}
			pc.asPos = len(pc.TransferSyntaxes)
		default:
			return newErr(sub, itemName(it.typ), ErrInvalid, "unknown sub-item type "+hex8(pdu[sub])+" (only 0x30 abstract syntax and 0x40 transfer syntax are defined)")
		}
		sub = next
	}
	if d.strict() {
		switch {
		case pc.AbstractSyntax == nil:
			return newErr(off, itemName(it.typ), ErrInvalid, "context "+itoa(int(pc.ID))+" has no abstract syntax sub-item 0x30 (strict)")
		case pc.asPos != 0:
			return newErr(off, itemName(it.typ), ErrInvalid, "context "+itoa(int(pc.ID))+": abstract syntax sub-item 0x30 is not first (strict)")
		case len(pc.TransferSyntaxes) == 0:
			return newErr(off, itemName(it.typ), ErrInvalid, "context "+itoa(int(pc.ID))+" has no transfer syntax sub-item 0x40 (strict)")
		}
		if msg := uidProblem(pc.AbstractSyntax); msg != "" {
			return newErr(off, itemName(it.typ), ErrInvalid, "context "+itoa(int(pc.ID))+" abstract syntax: "+msg+" (strict)")
		}
		for _, ts := range pc.TransferSyntaxes {
			if msg := uidProblem(ts); msg != "" {
				return newErr(off, itemName(it.typ), ErrInvalid, "context "+itoa(int(pc.ID))+" transfer syntax: "+msg+" (strict)")
			}
		}
	}
	return nil
}

func (d *Decoder) decodePCAC(pdu []byte, off int, it item, pc *PresentationContextAC) error {
	name := itemName(it.typ)
	if len(it.content) < 4 {
		return newErr(off, name, ErrTruncated, "length "+itoa(len(it.content))+" is shorter than the 4-byte context ID, result and reserved fields")
	}
	*pc = PresentationContextAC{ID: it.content[0], Result: it.content[2],
		res: [3]byte{it.reserved, it.content[1], it.content[3]}}
	sub, end := off+8, it.next
	for sub < end {
		s, ok := readItem(pdu, sub, end)
		if !ok {
			return itemError(pdu, sub, end, it.typ)
		}
		if s.typ != ItemTransferSyntax {
			return newErr(sub, name, ErrInvalid, "unknown sub-item type "+hex8(s.typ)+" (an AC context holds one 0x40 transfer syntax)")
		}
		if pc.TransferSyntax != nil {
			return newErr(sub, name, ErrInvalid, "second transfer syntax sub-item 0x40 (at most one is allowed)")
		}
		pc.TransferSyntax, pc.nul = trimUID(s.content)
		sub = s.next
	}
	if d.strict() {
		if pc.Result > 4 {
			return newErr(off+6, name, ErrInvalid, "context "+itoa(int(pc.ID))+": result "+itoa(int(pc.Result))+" is not 0-4 (strict)")
		}
		if pc.Result == 0 {
			if pc.TransferSyntax == nil {
				return newErr(off, name, ErrInvalid, "accepted context "+itoa(int(pc.ID))+" has no transfer syntax sub-item 0x40 (strict)")
			}
			if msg := uidProblem(pc.TransferSyntax); msg != "" {
				return newErr(off, name, ErrInvalid, "context "+itoa(int(pc.ID))+" transfer syntax: "+msg+" (strict)")
			}
		}
	}
	return nil
}

// checkPCID applies the strict context-ID rules: odd and unique.
func checkPCID(id uint8, off int, prevRQ []PresentationContextRQ, prevAC []PresentationContextAC) error {
	const name = "presentation context ID"
	if id%2 == 0 {
		return newErr(off, name, ErrInvalid, "ID "+itoa(int(id))+" is even (IDs are odd, 1-255) (strict)")
	}
	for i := range prevRQ {
		if prevRQ[i].ID == id {
			return newErr(off, name, ErrInvalid, "ID "+itoa(int(id))+" is repeated (strict)")
		}
	}
	for i := range prevAC {
		if prevAC[i].ID == id {
			return newErr(off, name, ErrInvalid, "ID "+itoa(int(id))+" is repeated (strict)")
		}
	}
	return nil
}

func (u *UserInformation) reset() {
	*u = UserInformation{
		RoleSelections:             u.RoleSelections[:0],
		ExtendedNegotiations:       u.ExtendedNegotiations[:0],
		CommonExtendedNegotiations: u.CommonExtendedNegotiations[:0],
		Unknown:                    u.Unknown[:0],
		order:                      u.order[:0],
	}
}

func (d *Decoder) decodeUserInfo(pdu []byte, off int, it item, u *UserInformation, isRQ bool) error {
	strict := d.strict()
	u.decoded = true
	var seen uint16 // bit (type-0x51) set once a singleton sub-item was decoded
	sub, end := off+4, it.next
	for sub < end {
		s, ok := readItem(pdu, sub, end)
		if !ok {
			return itemError(pdu, sub, end, it.typ)
		}
		c := s.content
		bit := uint16(0)
		if s.typ >= ItemMaxLength && s.typ <= ItemUserIdentityAC {
			bit = 1 << (s.typ - ItemMaxLength)
		}
		single := s.typ == ItemMaxLength || s.typ == ItemImplementationClassUID || s.typ == ItemAsyncOperationsWindow ||
			s.typ == ItemImplementationVersion || s.typ == ItemUserIdentityRQ || s.typ == ItemUserIdentityAC
		keepRaw := false
		if single && seen&bit != 0 {
			if strict {
				return newErr(sub, itemName(s.typ), ErrInvalid, "repeated sub-item (strict: at most one is allowed)")
			}
			keepRaw = true
		}
		if !keepRaw {
			switch s.typ {
			case ItemMaxLength:
				if len(c) != 4 {
					if strict {
						return newErr(sub, itemName(s.typ), ErrInvalid, "length "+itoa(len(c))+" must be 4 (strict)")
					}
					keepRaw = true
					break
				}
				u.MaxLength, u.HasMaxLength = binary.BigEndian.Uint32(c), true
			case ItemImplementationClassUID:
				u.ImplementationClassUID, u.implNUL = trimUID(c)
				if strict {
					if msg := uidProblem(u.ImplementationClassUID); msg != "" {
						return newErr(sub, itemName(s.typ), ErrInvalid, msg+" (strict)")
					}
				}
			case ItemAsyncOperationsWindow:
				if len(c) != 4 {
					if strict {
						return newErr(sub, itemName(s.typ), ErrInvalid, "length "+itoa(len(c))+" must be 4 (strict)")
					}
					keepRaw = true
					break
				}
				u.AsyncOps = AsyncOperationsWindow{MaxInvoked: binary.BigEndian.Uint16(c), MaxPerformed: binary.BigEndian.Uint16(c[2:])}
				u.HasAsyncOps = true
			case ItemImplementationVersion:
				u.ImplementationVersionName = c
				if strict && (len(c) == 0 || len(c) > 16) {
					return newErr(sub, itemName(s.typ), ErrInvalid, "length "+itoa(len(c))+" is not 1-16 characters (strict)")
				}
			case ItemRoleSelection:
				uid, rest, err := lenPrefixed(pdu, sub+4, c, itemName(s.typ), "SOP class UID")
				if err != nil {
					return err
				}
				if len(rest) != 2 {
					return newErr(sub, itemName(s.typ), ErrInvalid, "length "+itoa(len(c))+" does not equal 2 + UID length "+itoa(len(uid))+" + 2 role bytes")
				}
				var rs *RoleSelection
				u.RoleSelections, rs = grow(u.RoleSelections)
				*rs = RoleSelection{SCURole: rest[0], SCPRole: rest[1]}
				rs.SOPClassUID, rs.nul = trimUID(uid)
				if strict {
					if msg := uidProblem(rs.SOPClassUID); msg != "" {
						return newErr(sub, itemName(s.typ), ErrInvalid, msg+" (strict)")
					}
				}
			case ItemSOPClassExtendedNeg:
				uid, rest, err := lenPrefixed(pdu, sub+4, c, itemName(s.typ), "SOP class UID")
				if err != nil {
					return err
				}
				var en *ExtendedNegotiation
				u.ExtendedNegotiations, en = grow(u.ExtendedNegotiations)
				*en = ExtendedNegotiation{Info: rest}
				en.SOPClassUID, en.nul = trimUID(uid)
			case ItemSOPClassCommonExtendNeg:
				if err := decodeCommonExtNeg(pdu, sub, c, u); err != nil {
					return err
				}
			case ItemUserIdentityRQ:
				if len(c) < 2 {
					return newErr(sub, itemName(s.typ), ErrTruncated, "length "+itoa(len(c))+" is shorter than the type and positive-response bytes")
				}
				ui := UserIdentity{Type: c[0], PositiveResponseRaw: c[1], PositiveResponseRequested: c[1] != 0}
				p, rest, err := lenPrefixed(pdu, sub+6, c[2:], itemName(s.typ), "primary field")
				if err != nil {
					return err
				}
				s2, rest, err := lenPrefixed(pdu, sub+6+2+len(p), rest, itemName(s.typ), "secondary field")
				if err != nil {
					return err
				}
				if len(rest) != 0 {
					return newErr(sub, itemName(s.typ), ErrInvalid, itoa(len(rest))+" bytes follow the secondary field (the lengths do not add up)")
				}
				ui.Primary, ui.Secondary = p, s2
				if strict && (ui.Type < 1 || ui.Type > 5) {
					return newErr(sub+4, itemName(s.typ), ErrInvalid, "user identity type "+itoa(int(ui.Type))+" is not 1-5 (strict)")
				}
				u.UserIdentity, u.HasUserIdentity = ui, true
			case ItemUserIdentityAC:
				r, rest, err := lenPrefixed(pdu, sub+4, c, itemName(s.typ), "server response")
				if err != nil {
					return err
				}
				if len(rest) != 0 {
					return newErr(sub, itemName(s.typ), ErrInvalid, itoa(len(rest))+" bytes follow the server response (the lengths do not add up)")
				}
				u.UserIdentityResponse, u.HasUserIdentityResponse = r, true
			default:
				keepRaw = true
			}
		}
		if keepRaw {
			var ri *RawItem
			u.Unknown, ri = grow(u.Unknown)
			*ri = RawItem{Type: s.typ, Reserved: s.reserved, Data: c}
			u.order = append(u.order, itemRef{typ: s.typ, index: len(u.Unknown) - 1, raw: true})
		} else {
			seen |= bit
			idx := 0
			switch s.typ {
			case ItemRoleSelection:
				idx = len(u.RoleSelections) - 1
			case ItemSOPClassExtendedNeg:
				idx = len(u.ExtendedNegotiations) - 1
			case ItemSOPClassCommonExtendNeg:
				idx = len(u.CommonExtendedNegotiations) - 1
			}
			u.order = append(u.order, itemRef{typ: s.typ, index: idx})
		}
		sub = s.next
	}
	if strict {
		if !u.HasMaxLength {
			return newErr(off, itemName(it.typ), ErrInvalid, "no maximum length sub-item 0x51 (strict)")
		}
		if u.ImplementationClassUID == nil {
			return newErr(off, itemName(it.typ), ErrInvalid, "no implementation class UID sub-item 0x52 (strict)")
		}
		if isRQ && u.HasUserIdentityResponse {
			return newErr(off, itemName(it.typ), ErrInvalid, "user identity response sub-item 0x59 in an A-ASSOCIATE-RQ (strict)")
		}
		if !isRQ && u.HasUserIdentity {
			return newErr(off, itemName(it.typ), ErrInvalid, "user identity sub-item 0x58 in an A-ASSOCIATE-AC (strict)")
		}
	}
	return nil
}

func decodeCommonExtNeg(pdu []byte, sub int, c []byte, u *UserInformation) error {
	name := itemName(ItemSOPClassCommonExtendNeg)
	pos := sub + 4
	sop, rest, err := lenPrefixed(pdu, pos, c, name, "SOP class UID")
	if err != nil {
		return err
	}
	pos += 2 + len(sop)
	svc, rest, err := lenPrefixed(pdu, pos, rest, name, "service class UID")
	if err != nil {
		return err
	}
	pos += 2 + len(svc)
	list, rest, err := lenPrefixed(pdu, pos, rest, name, "related general SOP class list")
	if err != nil {
		return err
	}
	pos += 2
	if len(rest) != 0 {
		return newErr(sub, name, ErrInvalid, itoa(len(rest))+" bytes follow the related general SOP class list (the lengths do not add up)")
	}
	var ce *CommonExtendedNegotiation
	u.CommonExtendedNegotiations, ce = grow(u.CommonExtendedNegotiations)
	*ce = CommonExtendedNegotiation{SOPClassUID: sop, ServiceClassUID: svc, RelatedGeneralSOPUID: ce.RelatedGeneralSOPUID[:0]}
	for len(list) > 0 {
		var uid []byte
		uid, list, err = lenPrefixed(pdu, pos, list, name, "related general SOP class UID")
		if err != nil {
			return err
		}
		pos += 2 + len(uid)
		ce.RelatedGeneralSOPUID = append(ce.RelatedGeneralSOPUID, uid)
	}
	return nil
}

// lenPrefixed splits a 2-byte big-endian length and that many bytes off c.
// off is the offset of c[0] in the PDU, for errors.
func lenPrefixed(pdu []byte, off int, c []byte, field, what string) (val, rest []byte, err error) {
	if len(c) < 2 {
		return nil, nil, newErr(off, field, ErrTruncated, what+": "+itoa(len(c))+" bytes left, the 2-byte length needs 2")
	}
	n := int(binary.BigEndian.Uint16(c))
	if n > len(c)-2 {
		return nil, nil, newErr(off, field, ErrTruncated, what+": length "+itoa(n)+" exceeds remaining "+itoa(len(c)-2)+" bytes")
	}
	return c[2 : 2+n : 2+n], c[2+n:], nil
}

// grow extends s by one element, reusing capacity (and the old element's
// contents, which the caller resets while keeping inner slices).
func grow[T any](s []T) ([]T, *T) {
	if len(s) < cap(s) {
		s = s[:len(s)+1]
	} else {
		var z T
		s = append(s, z)
	}
	return s, &s[len(s)-1]
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
	*rj = AssociateRJ{hdrReserved: pdu[1], reserved: pdu[6], Result: pdu[7], Source: pdu[8], Reason: pdu[9]}
	if d.strict() {
		if rj.Result != 1 && rj.Result != 2 {
			return newErr(7, "A-ASSOCIATE-RJ result", ErrInvalid, "result "+itoa(int(rj.Result))+" is not 1 (permanent) or 2 (transient) (strict)")
		}
		if rj.Source < 1 || rj.Source > 3 {
			return newErr(8, "A-ASSOCIATE-RJ source", ErrInvalid, "source "+itoa(int(rj.Source))+" is not 1-3 (strict)")
		}
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
	*a = Abort{hdrReserved: pdu[1], Reserved: [2]byte{pdu[6], pdu[7]}, Source: pdu[8], Reason: pdu[9]}
	if d.strict() {
		if a.Source != 0 && a.Source != 2 {
			return newErr(8, "A-ABORT source", ErrInvalid, "source "+itoa(int(a.Source))+" is not 0 (service user) or 2 (service provider) (strict)")
		}
		if a.Reason > 6 || a.Reason == 3 {
			return newErr(9, "A-ABORT reason", ErrInvalid, "reason "+itoa(int(a.Reason))+" is not 0-2 or 4-6 (strict)")
		}
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
		if d.strict() && v.ContextID%2 == 0 {
			return newErr(off+4, name, ErrInvalid, "presentation context ID "+itoa(int(v.ContextID))+" is even (strict)")
		}
		p.PDVs = append(p.PDVs, v)
		off = end
	}
	return nil
}
