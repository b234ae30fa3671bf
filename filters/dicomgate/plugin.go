package main

import (
	"runtime"
	"strconv"
	"time"

	"github.com/dicomgate/dicomgate/filters/dicomgate/internal/abi"
	"github.com/dicomgate/dicomgate/sdk/pdu"
	"github.com/dicomgate/dicomgate/sdk/policy"
	"github.com/dicomgate/dicomgate/sdk/rejectwire"
	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm"
	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm/types"
)

// yieldEvery is how many callbacks pass between runtime.Gosched calls. In a
// c-shared reactor Go's background GC only runs when the guest yields; the
// guest memory stays flat with a yield every 64 callbacks (see
// docs/internals.md, "Guest memory and yields"; pinned by the soak test).
const yieldEvery = 64

// Tick period bounds: the deadline check runs every min(timeout/4, 500ms),
// but not more often than every 50 ms.
const (
	maxTickPeriod = 500 * time.Millisecond
	minTickPeriod = 50 * time.Millisecond
)

// plugin is the root (plugin) context: one per configuration per VM.
type plugin struct {
	types.DefaultPluginContext
	id uint32

	pol    *policy.Policy
	framer pdu.Framer
	mode   policy.ConnectMode
	// sawData: some connection of this filter configuration has sent a
	// byte, so tcp_proxy lets data through before connecting (early data
	// works): a later connection that sends nothing is an idle client,
	// logged at debug, not a configuration error.
	sawData bool
	// timeoutNs is inspectTimeoutMs in nanoseconds (an int64 rather than a
	// time.Duration keeps Duration.String out of the module).
	timeoutNs int64
	dryRun    bool
	m         *metrics

	// pending are the connections still waiting for their A-ASSOCIATE-RQ,
	// checked against the inspect deadline on every tick.
	// A slice with each conn's position in it (conn.pendingAt) rather than a
	// map: adding and removing are then a few stores, once per connection.
	pending []*conn
	// callbacks counts guest callbacks for the periodic yield.
	callbacks uint32

	// dec and rq are reused for every decision (a VM is single-threaded).
	dec pdu.Decoder
	rq  pdu.AssociateRQ
	// scratch buffers reused across connections; fs holds the
	// set_envoy_filter_state arguments for fsCluster.
	audit     []byte
	fs        []byte
	fsCluster string
	// free are connection contexts whose stream is done (see recycle).
	free []*conn

	// rejectCluster and rejectKey are the policy's rejector (nil key: every
	// deny closes); preamble is the scratch a reject preamble is signed
	// into (the host copies it).
	rejectCluster string
	rejectKey     *rejectwire.Key
	preamble      [rejectwire.Size]byte
}

func newPlugin(id uint32) types.PluginContext {
	return &plugin{id: id}
}

// yield runs the Go scheduler every yieldEvery callbacks.
func (p *plugin) yield() {
	p.callbacks++
	if p.callbacks%yieldEvery == 0 {
		runtime.Gosched()
	}
}

// OnPluginStart loads and validates the policy. An invalid policy logs every
// diagnostic at error level and returns false, which makes Envoy reject the
// configuration (wasm.cc: a false proxy_on_configure fails the filter
// config).
func (p *plugin) OnPluginStart(int) (st types.OnPluginStartStatus) {
	defer func() {
		if r := recover(); r != nil {
			proxywasm.LogCritical("dicomgate: internal error while configuring: " + panicString(r))
			st = types.OnPluginStartStatusFailed
		}
	}()
	p.yield()
	cfg, err := proxywasm.GetPluginConfiguration()
	if err != nil || len(cfg) == 0 {
		// Istio sends no configuration when pluginConfig is unset: that is
		// the policy with every default (deny everything).
		cfg = []byte("{}")
	}
	pol, diags, err := policy.Load(cfg)
	for _, d := range diags {
		msg := "dicomgate: configuration " + d.Severity.String() + ": " + d.String()
		if d.Severity == policy.SeverityError {
			proxywasm.LogError(msg)
		} else {
			proxywasm.LogWarn(msg)
		}
	}
	if err != nil {
		proxywasm.LogError("dicomgate: configuration rejected (" + strconv.Itoa(policy.ErrorCount(diags)) +
			" error(s)); fix the WasmPlugin pluginConfig, e.g. check it with `dicomgate check`")
		return types.OnPluginStartStatusFailed
	}
	p.pol = pol
	p.mode = pol.UpstreamConnect()
	p.timeoutNs = int64(pol.InspectTimeout())
	p.dryRun = pol.DryRun()
	p.framer = pdu.Framer{MaxPDULength: pol.MaxAssociateRQBytes() - pdu.HeaderLen}
	p.dec = pdu.Decoder{MaxPDULength: p.framer.MaxPDULength}
	p.rejectCluster, p.rejectKey = pol.RejectCluster(), nil
	if k := pol.RejectKey(); k != "" {
		if p.rejectKey, err = rejectwire.NewKey(k); err != nil {
			proxywasm.LogError("dicomgate: configuration rejected: " + err.Error())
			return types.OnPluginStartStatusFailed
		}
	}
	actions, def := pol.Actions()
	m, err := defineMetrics(pol.RuleNames(), actions, def, p.dryRun)
	if err != nil {
		proxywasm.LogError("dicomgate: defining metrics failed, configuration rejected: " + err.Error())
		return types.OnPluginStartStatusFailed
	}
	p.m = m

	period := time.Duration(p.timeoutNs / 4)
	if period > maxTickPeriod {
		period = maxTickPeriod
	}
	if period < minTickPeriod {
		period = minTickPeriod
	}
	if err := proxywasm.SetTickPeriodMilliSeconds(uint32(period / time.Millisecond)); err != nil {
		proxywasm.LogError("dicomgate: cannot set the tick period, the inspect deadline (inspectTimeoutMs) will not be enforced: " + err.Error())
	}
	proxywasm.LogInfo("dicomgate: configured: " + strconv.Itoa(len(pol.RuleNames())) + " rule(s), mode " + pol.Mode() +
		", upstreamConnect " + p.mode.String() + ", inspectTimeoutMs " + strconv.FormatInt(p.timeoutNs/1e6, 10) +
		", maxAssociateRQBytes " + strconv.FormatUint(uint64(pol.MaxAssociateRQBytes()), 10) + ", rejectCluster " + p.rejectCluster)
	return types.OnPluginStartStatusOK
}

// NewTcpContext creates the per-connection state.
func (p *plugin) NewTcpContext(id uint32) types.TcpContext {
	if n := len(p.free); n > 0 {
		c := p.free[n-1]
		p.free[n-1] = nil
		p.free = p.free[:n-1]
		*c = conn{p: p, id: id}
		return c
	}
	return &conn{p: p, id: id}
}

// maxFreeConns bounds the recycled connection contexts kept per VM.
const maxFreeConns = 64

// recycle keeps c for a later NewTcpContext. Only called from OnStreamDone,
// which the SDK runs in proxy_on_log. Envoy runs done, log and delete once
// per context and in a row (Context::onCloseTCP), and the SDK's
// proxy_on_delete only drops the context from its map without calling it,
// so nothing uses c under its old id any more. Reusing it saves one guest
// heap allocation per connection (with the scratch allocator, see
// internal/abi, the last one of a routed association).
func (p *plugin) recycle(c *conn) {
	if len(p.free) < maxFreeConns {
		p.free = append(p.free, c)
	}
}

// OnTick closes connections that are still undecided after
// inspectTimeoutMs. It runs on the root context, so it first makes the
// connection's context effective (Envoy wasm.cc Wasm::tickHandler;
// proxy_set_effective_context). A tick can only close: filter state set here
// would be lost (foreign.cc acts on the current, not the effective, context).
func (p *plugin) OnTick() {
	defer func() {
		if r := recover(); r != nil {
			proxywasm.LogCritical("dicomgate: internal error in tick: " + panicString(r))
		}
	}()
	p.yield()
	if p.pol == nil || len(p.pending) == 0 {
		return
	}
	tn := abi.Now()
	var expired []*conn
	for _, c := range p.pending {
		if tn-c.start >= p.timeoutNs {
			expired = append(expired, c)
		}
	}
	for _, c := range expired {
		p.removePending(c)
		if err := proxywasm.SetEffectiveContext(c.id); err != nil {
			// The host no longer knows the context: the connection is gone.
			c.to(stateClosed)
			continue
		}
		c.onTimeout(tn)
	}
}

// addPending registers c as waiting for its A-ASSOCIATE-RQ.
func (p *plugin) addPending(c *conn) {
	if c.pendingAt != 0 {
		return
	}
	p.pending = append(p.pending, c)
	c.pendingAt = len(p.pending)
}

// removePending forgets c (if pending) by moving the last entry into its
// place.
func (p *plugin) removePending(c *conn) {
	i := c.pendingAt - 1
	if i < 0 || i >= len(p.pending) || p.pending[i] != c {
		return
	}
	last := len(p.pending) - 1
	p.pending[i] = p.pending[last]
	p.pending[i].pendingAt = i + 1
	p.pending[last] = nil
	p.pending = p.pending[:last]
	c.pendingAt = 0
}

func panicString(r any) string {
	switch v := r.(type) {
	case string:
		return v
	case error:
		return v.Error()
	}
	return "panic"
}
