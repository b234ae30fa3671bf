package policy

import (
	"math/bits"
	"net/netip"
	"strings"
	"time"

	"github.com/dicomgate/dicomgate/sdk/pdu"
)

// rule is one compiled rule. A nil condition (or a false has* flag) means
// the field was absent: it does not constrain the match.
type rule struct {
	name           string
	action         Action
	cluster        string
	rewriteCalled  string
	rewriteCalling string
	rejectReason   string // explicit; "" means computed (see denyReason)
	respond        Respond
	fold           bool

	called, calling *aeSet
	cidrs           []netip.Prefix
	hasCIDRs        bool
	uriSANs         []string
	hasURI          bool
	dnsSANs         []string
	hasDNS          bool
	subjects        []string
	hasSubject      bool
	anyAbstract     *uidSet
	onlyAbstract    *uidSet
	usernames       []string
	hasUsername     bool

	catchAll bool // matches every association
}

// Policy is a compiled, immutable association policy. Create it with
// [Load]; it is safe for concurrent use.
type Policy struct {
	rules          []*rule
	defaultAction  Action
	defaultReason  string
	dryRun         bool
	inspectTimeout time.Duration
	maxRQBytes     uint32
	connect        ConnectMode
	defaultRespond Respond
	rejectCluster  string
	rejectKey      string
	// rejectOn: a deny that says "respond": "reject" is carried out as one
	// (rejectCluster set and mode after-decision); otherwise every deny
	// closes.
	rejectOn bool

	// The candidate filter (see index.go). words is the bitset length.
	words                    int
	calledIdx, callingIdx    aeIndex
	cidrIdx                  cidrIndex
	calledAny, callingAny    []uint64 // rules the AE dimensions cannot exclude
	cidrAny                  []uint64 // rules without sourceCIDRs
	userIdx                  map[string][]int32
	userAny                  []uint64 // rules without userIdentityUsernames
	allRules                 []uint64 // every rule
	nCalled, nCalling, nCIDR int      // rules filtered per dimension (Summary)
	nDNS                     int      // rules with a peerDNSSANs condition
	nUser                    int
	nUnfiltered              int // rules no dimension can exclude

	// calledAlwaysKnown is true when the default action is allow or some
	// allow/route rule does not constrain the called AE title: then every
	// called AE title counts as recognized (see denyReason).
	calledAlwaysKnown bool
	recog             aeIndex // allow/route rules by called AE
	recogRest         []int32 // allow/route rules with unindexable called AEs
}

// MaxRules bounds the number of rules in a policy (the candidate filter
// works on fixed-size stack bitsets so that Evaluate never allocates).
const MaxRules = 10000

// maxWords is the bitset length for MaxRules rules; tinyWords and
// smallWords serve policies of up to 128 and 1,024 rules with smaller stack
// frames.
const (
	maxWords   = (MaxRules + 63) / 64
	smallWords = 16
	tinyWords  = 2
)

// compile builds the Policy and its indexes from a validated configuration.
func compile(cfg *config) *Policy {
	p := &Policy{
		defaultAction:  cfg.defaultAction,
		defaultReason:  cfg.defaultReason,
		dryRun:         cfg.dryRun,
		inspectTimeout: cfg.timeout,
		maxRQBytes:     cfg.maxRQ,
		connect:        cfg.connect,
		defaultRespond: cfg.defaultRespond,
		rejectCluster:  cfg.rejectCluster,
		rejectKey:      cfg.rejectKey,
		rejectOn:       cfg.rejectCluster != "" && cfg.connect == ConnectAfterDecision,
	}
	// Keep the rules contiguous in memory: Evaluate touches only the
	// surviving candidates, but those should share cache lines.
	flat := make([]rule, len(cfg.rules))
	p.rules = make([]*rule, len(cfg.rules))
	for i, r := range cfg.rules {
		flat[i] = *r
		p.rules[i] = &flat[i]
	}
	p.words = (len(p.rules) + 63) / 64
	p.calledAny = make([]uint64, p.words)
	p.callingAny = make([]uint64, p.words)
	p.cidrAny = make([]uint64, p.words)
	p.userAny = make([]uint64, p.words)
	p.allRules = make([]uint64, p.words)
	cidrMap := map[netip.Prefix][]int32{}
	for i, r := range p.rules {
		id := int32(i)
		setBit(p.allRules, id)
		filtered := false
		if fileAE(&p.calledIdx, r.called, id) {
			p.nCalled++
			filtered = true
		} else {
			setBit(p.calledAny, id)
		}
		if fileAE(&p.callingIdx, r.calling, id) {
			p.nCalling++
			filtered = true
		} else {
			setBit(p.callingAny, id)
		}
		if r.hasDNS {
			p.nDNS++
		}
		if r.hasCIDRs {
			p.nCIDR++
			filtered = true
			for _, pr := range r.cidrs {
				l := cidrMap[pr]
				if len(l) == 0 || l[len(l)-1] != id {
					cidrMap[pr] = append(l, id)
				}
			}
		} else {
			setBit(p.cidrAny, id)
		}
		if r.hasUsername {
			p.nUser++
			filtered = true
			if p.userIdx == nil {
				p.userIdx = map[string][]int32{}
			}
			for _, u := range r.usernames {
				l := p.userIdx[u]
				if len(l) == 0 || l[len(l)-1] != id {
					p.userIdx[u] = append(l, id)
				}
			}
		} else {
			setBit(p.userAny, id)
		}
		if !filtered {
			p.nUnfiltered++
		}
		if r.action != ActionDeny {
			if fileAE(&p.recog, r.called, id) {
				continue
			}
			if r.called == nil || r.called.any {
				p.calledAlwaysKnown = true
			} else {
				p.recogRest = append(p.recogRest, id)
			}
		}
	}
	if p.defaultAction == ActionAllow {
		p.calledAlwaysKnown = true
	}
	p.calledIdx.finish()
	p.callingIdx.finish()
	p.recog.finish()
	p.cidrIdx.build(cidrMap)
	return p
}

// input is one association prepared for matching.
type input struct {
	rq                  *pdu.AssociateRQ
	conn                *Conn
	called, calling     []byte // trimmed
	calledUp, callingUp []byte // upper-cased copies (nil if too long)
	src                 netip.Addr
}

// emptyRQ and emptyConn stand in for nil arguments.
var (
	emptyRQ   pdu.AssociateRQ
	emptyConn Conn
)

// prepare returns the association as matched: trimmed titles, unmapped
// source. The caller fills calledUp/callingUp with foldInto on its own stack
// buffers (done there so that escape analysis keeps them on the stack).
// EvaluateInto does the same inline (see there); the index tests hold the
// two to the same results.
func prepare(rq *pdu.AssociateRQ, conn *Conn) input {
	rq, conn = orEmpty(rq, conn)
	return input{
		rq:      rq,
		conn:    conn,
		called:  rq.CalledAETitle(),
		calling: rq.CallingAETitle(),
		src:     matchedSource(conn.Source),
	}
}

// orEmpty replaces nil arguments of Evaluate with empty values.
func orEmpty(rq *pdu.AssociateRQ, conn *Conn) (*pdu.AssociateRQ, *Conn) {
	if rq == nil {
		rq = &emptyRQ
	}
	if conn == nil {
		conn = &emptyConn
	}
	return rq, conn
}

// matchedSource is the source address as CIDR rules match it: unmapped,
// without zone. An IPv4 address has neither, and is returned as it is
// without the calls.
func matchedSource(a netip.Addr) netip.Addr {
	if a.Is4() {
		return a
	}
	return unmapNoZone(a)
}

// unmapNoZone is matchedSource for addresses other than IPv4 (kept out of
// line so that matchedSource inlines).
func unmapNoZone(a netip.Addr) netip.Addr { return a.Unmap().WithZone("") }

// Failure codes of matchRule: which condition failed first (0 = match).
const (
	matched = iota
	failCalled
	failCalling
	failSource
	failURISAN
	failDNSSAN
	failSubject
	failUsername
	failAbstract
	failOnlyAbstract
)

// matchRule checks every condition of r, cheapest first, and returns the
// first that fails (or matched).
func matchRule(r *rule, in *input) int {
	if r.called != nil && !r.called.match(in.called, in.calledUp) {
		return failCalled
	}
	if r.calling != nil && !r.calling.match(in.calling, in.callingUp) {
		return failCalling
	}
	if r.hasCIDRs {
		ok := false
		if in.src.IsValid() {
			for _, p := range r.cidrs {
				if p.Contains(in.src) {
					ok = true
					break
				}
			}
		}
		if !ok {
			return failSource
		}
	}
	if r.hasURI && !(in.conn.MTLS && in.conn.PeerURISAN != "" && containsStr(r.uriSANs, in.conn.PeerURISAN)) {
		return failURISAN
	}
	if r.hasDNS && !(in.conn.MTLS && in.conn.PeerDNSSAN != "" && dnsMatch(r.dnsSANs, in.conn.PeerDNSSAN)) {
		return failDNSSAN
	}
	if r.hasSubject && !(in.conn.MTLS && in.conn.PeerSubject != "" && containsStr(r.subjects, in.conn.PeerSubject)) {
		return failSubject
	}
	if r.hasUsername && !usernameMatch(r.usernames, in.rq) {
		return failUsername
	}
	if r.anyAbstract != nil {
		ok := false
		for i := range in.rq.PresentationContexts {
			if r.anyAbstract.has(in.rq.PresentationContexts[i].AbstractSyntax) {
				ok = true
				break
			}
		}
		if !ok {
			return failAbstract
		}
	}
	if r.onlyAbstract != nil {
		if len(in.rq.PresentationContexts) == 0 {
			return failOnlyAbstract
		}
		for i := range in.rq.PresentationContexts {
			if !r.onlyAbstract.has(in.rq.PresentationContexts[i].AbstractSyntax) {
				return failOnlyAbstract
			}
		}
	}
	return matched
}

func containsStr(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// dnsMatch compares a DNS SAN case-insensitively with patterns; "*.x"
// matches exactly one leftmost label.
func dnsMatch(patterns []string, san string) bool {
	for _, p := range patterns {
		if strings.HasPrefix(p, "*.") {
			if i := strings.IndexByte(san, '.'); i > 0 && asciiEqualFold(san[i+1:], p[2:]) {
				return true
			}
			continue
		}
		if asciiEqualFold(p, san) {
			return true
		}
	}
	return false
}

// usernameMatch checks the primary field of a username (type 1) or
// username+passcode (type 2) user identity.
func usernameMatch(names []string, rq *pdu.AssociateRQ) bool {
	ui := &rq.UserInformation
	if !ui.HasUserIdentity {
		return false
	}
	if t := ui.UserIdentity.Type; t != pdu.UserIdentityUsername && t != pdu.UserIdentityUsernamePasscode {
		return false
	}
	for _, n := range names {
		if n == string(ui.UserIdentity.Primary) {
			return true
		}
	}
	return false
}

// Evaluate decides one association: the first rule (in configuration
// order) whose conditions all hold, else the default action. It does not
// allocate. rq and conn may be nil (treated as empty).
func (p *Policy) Evaluate(rq *pdu.AssociateRQ, conn *Conn) Decision {
	var d Decision
	p.EvaluateInto(rq, conn, &d)
	return d
}

// EvaluateInto is Evaluate writing the decision to *d (every field is
// set). Compiled to Wasm, returning a Decision by value costs a
// memory.copy per call level; the filter uses this form.
func (p *Policy) EvaluateInto(rq *pdu.AssociateRQ, conn *Conn, d *Decision) {
	// prepare, inline and in place: in the guest, a struct returned by value
	// is a memory.copy (wazero runs it as a call into the host's memmove),
	// and storing rq and conn through a pointer parameter would make them
	// leak, moving the caller's connection identity to the heap.
	rq, conn = orEmpty(rq, conn)
	var in input
	in.rq, in.conn = rq, conn
	in.called, in.calling = rq.CalledAETitle(), rq.CallingAETitle()
	in.src = matchedSource(conn.Source)
	var b1, b2 [foldBufLen]byte
	in.calledUp = foldInto(&b1, in.called)
	in.callingUp = foldInto(&b2, in.calling)
	switch {
	case p.words == 1:
		p.evaluate1(&in, d)
		return
	case p.words <= tinyWords:
		var cand, hit [tinyWords]uint64
		p.evaluate(&in, cand[:p.words], hit[:p.words], d)
		return
	case p.words <= smallWords:
		var cand, hit [smallWords]uint64
		p.evaluate(&in, cand[:p.words], hit[:p.words], d)
		return
	}
	var cand, hit [maxWords]uint64
	p.evaluate(&in, cand[:p.words], hit[:p.words], d)
}

// evaluate filters the candidates with the per-dimension indexes (cand and
// hit are scratch bitsets of p.words words) and checks the survivors in
// order.
func (p *Policy) evaluate(in *input, cand, hit []uint64, d *Decision) {
	// Called AE title; it initialises cand. A title too long to fold
	// (impossible on the wire, where the field is 16 bytes) is not filtered.
	if in.calledUp != nil {
		copy(cand, p.calledAny)
		e, pr, sf := p.calledIdx.lookup(in.calledUp)
		setBits(cand, e)
		setBits(cand, pr)
		setBits(cand, sf)
	} else {
		copy(cand, p.allRules)
	}
	// Calling AE title.
	if in.callingUp != nil {
		copy(hit, p.callingAny)
		e, pr, sf := p.callingIdx.lookup(in.callingUp)
		setBits(hit, e)
		setBits(hit, pr)
		setBits(hit, sf)
		and(cand, hit)
	}
	// Source address.
	if p.nCIDR > 0 {
		copy(hit, p.cidrAny)
		if in.src.IsValid() {
			setBits(hit, p.cidrIdx.lookup(in.src))
		}
		and(cand, hit)
	}
	// User identity username.
	if p.nUser > 0 {
		copy(hit, p.userAny)
		if ui := &in.rq.UserInformation; ui.HasUserIdentity &&
			(ui.UserIdentity.Type == pdu.UserIdentityUsername || ui.UserIdentity.Type == pdu.UserIdentityUsernamePasscode) {
			setBits(hit, p.userIdx[string(ui.UserIdentity.Primary)])
		}
		and(cand, hit)
	}
	for w, word := range cand {
		for word != 0 {
			id := w<<6 | bits.TrailingZeros64(word)
			word &= word - 1
			r := p.rules[id]
			if matchRule(r, in) != matched {
				continue
			}
			p.ruleDecision(r, id, in, d)
			return
		}
	}
	p.defaultDecision(in, d)
}

// evaluate1 is evaluate for policies of at most 64 rules (p.words == 1, the
// common case): the candidate set is one word in a local instead of slices
// (no copies, loops or bounds checks over bitsets, which Go's wasm backend
// makes costly).
func (p *Policy) evaluate1(in *input, d *Decision) {
	var cand uint64
	if in.calledUp != nil {
		e, pr, sf := p.calledIdx.lookup(in.calledUp)
		cand = p.calledAny[0] | mask1(e) | mask1(pr) | mask1(sf)
	} else {
		cand = p.allRules[0]
	}
	if in.callingUp != nil {
		e, pr, sf := p.callingIdx.lookup(in.callingUp)
		cand &= p.callingAny[0] | mask1(e) | mask1(pr) | mask1(sf)
	}
	if p.nCIDR > 0 {
		hit := p.cidrAny[0]
		if in.src.IsValid() {
			hit |= mask1(p.cidrIdx.lookup(in.src))
		}
		cand &= hit
	}
	if p.nUser > 0 {
		hit := p.userAny[0]
		if ui := &in.rq.UserInformation; ui.HasUserIdentity &&
			(ui.UserIdentity.Type == pdu.UserIdentityUsername || ui.UserIdentity.Type == pdu.UserIdentityUsernamePasscode) {
			hit |= mask1(p.userIdx[string(ui.UserIdentity.Primary)])
		}
		cand &= hit
	}
	for cand != 0 {
		id := bits.TrailingZeros64(cand)
		cand &= cand - 1
		if id >= len(p.rules) {
			break
		}
		r := p.rules[id]
		if matchRule(r, in) != matched {
			continue
		}
		p.ruleDecision(r, id, in, d)
		return
	}
	p.defaultDecision(in, d)
}

// mask1 returns the one-word bitset of ids (all below 64).
func mask1(ids []int32) uint64 {
	var m uint64
	for _, i := range ids {
		m |= 1 << (uint(i) & 63)
	}
	return m
}

// ruleDecision writes the decision of rule r (index id), which matched in.
func (p *Policy) ruleDecision(r *rule, id int, in *input, d *Decision) {
	d.Action, d.Rule, d.RuleIndex, d.DryRun = r.action, r.name, id, p.dryRun
	d.Cluster, d.RewriteCalledAETitle, d.RewriteCallingAETitle, d.RejectReason = "", "", "", ""
	d.Respond = RespondClose
	switch r.action {
	case ActionDeny:
		if p.rejectOn {
			d.Respond = r.respond
		}
		d.RejectReason = r.rejectReason
		if d.RejectReason == "" {
			d.RejectReason = p.denyReason(in)
		}
	case ActionRoute:
		d.Cluster = r.cluster
		fallthrough
	default:
		d.RewriteCalledAETitle = r.rewriteCalled
		d.RewriteCallingAETitle = r.rewriteCalling
	}
}

// defaultDecision writes the decision when no rule matches in.
func (p *Policy) defaultDecision(in *input, d *Decision) {
	d.Action, d.Rule, d.RuleIndex, d.DryRun = p.defaultAction, DefaultRule, -1, p.dryRun
	d.Cluster, d.RewriteCalledAETitle, d.RewriteCallingAETitle, d.RejectReason = "", "", "", ""
	d.Respond = RespondClose
	if d.Action == ActionDeny {
		if p.rejectOn {
			d.Respond = p.defaultRespond
		}
		d.RejectReason = p.defaultReason
		if d.RejectReason == "" {
			d.RejectReason = p.denyReason(in)
		}
	}
}

// and intersects cand with hit.
func and(cand, hit []uint64) {
	hit = hit[:len(cand)]
	for i := range cand {
		cand[i] &= hit[i]
	}
}

// denyReason is the reject reason of a deny that names none: the called AE
// title is "not recognized" when no allow or route rule of the policy could
// accept it (and the default action is deny); otherwise the caller is what
// the policy did not accept, so the calling AE title is "not recognized".
func (p *Policy) denyReason(in *input) string {
	if p.calledKnown(in) {
		return ReasonCallingAENotRecognized
	}
	return ReasonCalledAENotRecognized
}

// calledKnown reports whether some allow/route rule's called AE condition
// accepts the request's called AE title.
func (p *Policy) calledKnown(in *input) bool {
	if p.calledAlwaysKnown {
		return true
	}
	e, pr, sf := p.recog.lookup(in.calledUp)
	for _, l := range [...][]int32{e, pr, sf, p.recogRest} {
		for _, id := range l {
			if p.rules[id].called.match(in.called, in.calledUp) {
				return true
			}
		}
	}
	return false
}
