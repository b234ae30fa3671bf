package pdu

// Context returns the proposed presentation context with the given ID, or
// nil. An A-ASSOCIATE-AC carries no abstract syntax, so a proxy looks the
// accepted IDs up here to learn what each accepted context is for.
func (rq *AssociateRQ) Context(id uint8) *PresentationContextRQ {
	for i := range rq.PresentationContexts {
		if rq.PresentationContexts[i].ID == id {
			return &rq.PresentationContexts[i]
		}
	}
	return nil
}

// Context returns the presentation context result with the given ID, or nil.
// AC items need not follow the RQ's order (dcmqrscp reorders them).
func (ac *AssociateAC) Context(id uint8) *PresentationContextAC {
	for i := range ac.PresentationContexts {
		if ac.PresentationContexts[i].ID == id {
			return &ac.PresentationContexts[i]
		}
	}
	return nil
}
