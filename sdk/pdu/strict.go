package pdu

// strictChecks are the checks of strict mode (Decoder.Strict). The decoders
// call them only through this interface, and only Decoder.Strict stores a
// value in one, so a program that never calls Strict does not link them: the
// linker keeps a method of a type only when a value of that type can reach
// an interface (the filter's module size budget relies on this).
//
// Its method signatures name no type with a String method (RJResult,
// PCResult, ...; nor a struct holding one): the linker keeps the String of
// every type reachable from a type that reaches an interface, and Decoder,
// which holds this interface, is one (the filter stores it in its plugin).
// Hence codes are passed as bytes.
type strictChecks interface {
	// aes checks both AE title fields of the A-ASSOCIATE PDU of type t.
	aes(pdu []byte, t Type) error
	// appCtx checks the application context item at off, the item number
	// idx of its PDU.
	appCtx(off, idx int, appCtx []byte) error
	// pcID checks a presentation context ID against the contexts before it
	// (prevRQ in an RQ; in an AC, repeatedAC says whether an earlier item
	// had the same ID).
	pcID(id uint8, off int, prevRQ []PresentationContextRQ, repeatedAC bool) error
	// pcRQ checks a decoded presentation context item at off, pcAC the
	// ID, result and transfer syntax of a decoded result item at off.
	pcRQ(off int, pc *PresentationContextRQ) error
	pcAC(off int, id, result uint8, ts []byte) error
	// item refuses a repeated or misplaced known item of type typ at off in
	// a PDU of type t (lenient mode keeps it as unknown).
	item(off int, typ uint8, t Type) error
	// assocEnd checks the set of variable items of an A-ASSOCIATE PDU of
	// type t that ends at end.
	assocEnd(t Type, end int, haveApp, havePC, haveUI bool, order []itemRef) error
	// ui builds the error of a user-information sub-item (uiRepeated,
	// uiLen4, uiVersionLen) that lenient mode would keep.
	ui(sub int, typ uint8, kind, n int) error
	// uid checks the UID of the user-information sub-item at sub.
	uid(sub int, typ uint8, uid []byte) error
	// identityType checks the user identity type of the sub-item at sub.
	identityType(sub int, typ uint8) error
	// userInfo checks the decoded user information item at off.
	userInfo(off int, u *UserInformation, isRQ bool) error
	// rj and abort check the codes of a decoded A-ASSOCIATE-RJ or A-ABORT.
	rj(result, source uint8) error
	abort(source, reason uint8) error
	// pdvContextID checks the context ID of the PDV at off.
	pdvContextID(off int, id uint8) error
}

// strictRules is the strictChecks of Decoder.Strict.
type strictRules struct{}

func (strictRules) aes(pdu []byte, t Type) error             { return checkAEs(pdu, t) }
func (strictRules) appCtx(off, idx int, appCtx []byte) error { return checkAppCtx(off, idx, appCtx) }
func (strictRules) pcID(id uint8, off int, prevRQ []PresentationContextRQ, repeatedAC bool) error {
	return checkPCID(id, off, prevRQ, repeatedAC)
}
func (strictRules) pcRQ(off int, pc *PresentationContextRQ) error { return checkPCRQ(off, pc) }
func (strictRules) pcAC(off int, id, result uint8, ts []byte) error {
	return checkPCAC(off, id, PCResult(result), ts)
}
func (strictRules) assocEnd(t Type, end int, haveApp, havePC, haveUI bool, order []itemRef) error {
	return checkAssocEnd(t, end, haveApp, havePC, haveUI, order)
}
func (strictRules) ui(sub int, typ uint8, kind, n int) error { return uiStrictError(sub, typ, kind, n) }
func (strictRules) uid(sub int, typ uint8, uid []byte) error { return checkUID(sub, typ, uid) }
func (strictRules) userInfo(off int, u *UserInformation, isRQ bool) error {
	return checkUserInfo(off, u, isRQ)
}

func (strictRules) item(off int, typ uint8, t Type) error {
	switch typ {
	case ItemApplicationContext, ItemUserInformation:
		return newErr(off, itemName(typ), ErrInvalid, "repeated item (strict: exactly one is allowed)")
	case ItemPresentationContextRQ, ItemPresentationContextAC:
		return newErr(off, itemName(typ), ErrInvalid, "not allowed in an "+t.String()+" (strict)")
	}
	return nil
}

func (strictRules) identityType(sub int, typ uint8) error {
	if typ < 1 || typ > 5 {
		return newErr(sub+4, itemName(ItemUserIdentityRQ), ErrInvalid, "user identity type "+itoa(int(typ))+" is not 1-5 (strict)")
	}
	return nil
}

func (strictRules) rj(result, source uint8) error {
	if RJResult(result) != RJResultPermanent && RJResult(result) != RJResultTransient {
		return newErr(7, "A-ASSOCIATE-RJ result", ErrInvalid, "result "+itoa(int(result))+" is not 1 (permanent) or 2 (transient) (strict)")
	}
	if source < 1 || source > 3 {
		return newErr(8, "A-ASSOCIATE-RJ source", ErrInvalid, "source "+itoa(int(source))+" is not 1-3 (strict)")
	}
	return nil
}

func (strictRules) abort(source, reason uint8) error {
	if AbortSource(source) != AbortSourceServiceUser && AbortSource(source) != AbortSourceServiceProvider {
		return newErr(8, "A-ABORT source", ErrInvalid, "source "+itoa(int(source))+" is not 0 (service user) or 2 (service provider) (strict)")
	}
	if reason > 6 || reason == 3 {
		return newErr(9, "A-ABORT reason", ErrInvalid, "reason "+itoa(int(reason))+" is not 0-2 or 4-6 (strict)")
	}
	return nil
}

func (strictRules) pdvContextID(off int, id uint8) error {
	if id%2 == 0 {
		return newErr(off, "PDV item", ErrInvalid, "presentation context ID "+itoa(int(id))+" is even (strict)")
	}
	return nil
}
