package host

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/dicomgate/dicomgate/wasm/host/internal/metrics"
	"github.com/dicomgate/dicomgate/wasm/host/internal/properties"
	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
)

// Restricted phases (cpp-host src/wasm.cc WasmBase::startVm, include/proxy-wasm/wasm.h allocMemory).
const (
	phaseNormal = iota
	phaseInit
	phaseAlloc
)

// wctx is one proxy-wasm context inside a VM: the root (plugin) context or a stream context bound to
// a connection (cpp-host ContextBase).
type wctx struct {
	id   uint32
	conn *Conn // nil for the root context
}

// deferredAction is queued by continue_stream / close_stream and run after the top-level guest call
// returns (cpp-host DeferAfterCallActions).
type deferredAction struct {
	conn *Conn
	kind int
}

const (
	deferContinueDownstream = iota
	deferCloseDownstream
	deferCloseUpstream
)

// vm is one instance of the module: one per worker (Envoy: one per worker thread). All fields are
// guarded by the owning worker's mutex.
type vm struct {
	p   *Plugin
	w   *worker
	mod api.Module
	mem api.Memory
	ctx context.Context

	fnAlloc, fnContextCreate, fnVMStart, fnConfigure, fnNewConnection, fnDownstreamData,
	fnUpstreamData, fnDownstreamClose, fnUpstreamClose, fnLog, fnDone, fnDelete, fnTick,
	fnQueueReady *guestFunc
	allocStack [1]uint64

	phase     int
	nextID    uint32
	root      *wctx
	contexts  map[uint32]*wctx
	current   *wctx
	effective uint32
	deferred  []deferredAction
	stack     [8]uint64

	failed  bool
	failMsg string

	configuring  bool
	pluginConfig []byte

	tickPeriod time.Duration
	nextTick   time.Time

	metricIDs metrics.IDs

	// intern turns the filter-state keys and values the guest sets into strings, reusing earlier
	// identical ones.
	intern properties.Interner
	// scratch is reused to format property values.
	scratch []byte
	// logBuf is reused to join the iovecs of one fd_write line.
	logBuf []byte

	// hostCalls counts env.proxy_* calls (Plugin.HostCalls); folded into Plugin.hostCalls on close.
	hostCalls uint64

	capture     *[]string
	pendingDone bool
	closed      bool
}

// newVM instantiates the compiled module and runs the Envoy start sequence (cpp-host
// WasmBase::initialize/startVm, ContextBase::onStart/onConfigure): _initialize under restriction,
// proxy_on_context_create(root, 0), proxy_on_vm_start(root, vm_config_len),
// proxy_on_configure(root, plugin_config_len).
func newVM(ctx context.Context, p *Plugin, w *worker, configuration []byte) (*vm, error) {
	v := &vm{p: p, w: w, contexts: map[uint32]*wctx{}}
	v.ctx = &vmContext{v: v}
	mod, err := p.engine.runtime.InstantiateModule(ctx, p.compiled, wazero.NewModuleConfig().WithName("").WithStartFunctions())
	if err != nil {
		return nil, fmt.Errorf("wasm plugin %q: instantiate module: %w", p.cfg.Name, err)
	}
	v.mod = mod
	v.mem = mod.Memory()
	if v.mem == nil {
		_ = mod.Close(ctx)
		return nil, fmt.Errorf("wasm plugin %q: module exports no memory", p.cfg.Name)
	}
	// cpp-host WasmBase::getFunctions: "malloc" first, then "proxy_on_memory_allocate".
	v.fnAlloc = exported(mod, "malloc")
	if v.fnAlloc == nil {
		v.fnAlloc = exported(mod, "proxy_on_memory_allocate")
	}
	if v.fnAlloc == nil {
		_ = mod.Close(ctx)
		return nil, fmt.Errorf("wasm plugin %q: Wasm module is missing malloc function (export malloc or proxy_on_memory_allocate)", p.cfg.Name)
	}
	v.fnContextCreate = exported(mod, "proxy_on_context_create")
	v.fnVMStart = exported(mod, "proxy_on_vm_start")
	v.fnConfigure = exported(mod, "proxy_on_configure")
	v.fnNewConnection = exported(mod, "proxy_on_new_connection")
	v.fnDownstreamData = exported(mod, "proxy_on_downstream_data")
	v.fnUpstreamData = exported(mod, "proxy_on_upstream_data")
	v.fnDownstreamClose = exported(mod, "proxy_on_downstream_connection_close")
	v.fnUpstreamClose = exported(mod, "proxy_on_upstream_connection_close")
	v.fnLog = exported(mod, "proxy_on_log")
	v.fnDone = exported(mod, "proxy_on_done")
	v.fnDelete = exported(mod, "proxy_on_delete")
	v.fnTick = exported(mod, "proxy_on_tick")
	v.fnQueueReady = exported(mod, "proxy_on_queue_ready")

	var lines []string
	v.capture = &lines
	defer func() { v.capture = nil }()
	fail := func(format string, args ...any) (*vm, error) {
		err := fmt.Errorf(format, args...) // %w keeps ErrConfigRejected matchable with errors.Is
		if len(lines) > 0 {
			err = fmt.Errorf("%w; guest log: %s", err, strings.Join(lines, " | "))
		}
		v.foldHostCalls()
		_ = mod.Close(ctx)
		return nil, err
	}

	// _initialize (WASI reactor) under restriction; Go plugins run their init() here.
	if init := mod.ExportedFunction("_initialize"); init != nil {
		v.phase = phaseInit
		_, err := init.Call(v.ctx)
		v.phase = phaseNormal
		if err != nil {
			return fail("wasm plugin %q: _initialize trapped: %v", p.cfg.Name, err)
		}
	} else if start := mod.ExportedFunction("_start"); start != nil {
		v.phase = phaseInit
		_, err := start.Call(v.ctx)
		v.phase = phaseNormal
		if err != nil {
			return fail("wasm plugin %q: _start trapped: %v", p.cfg.Name, err)
		}
	}

	// Root context: ids start at 1 (0 is the VM context) — cpp-host WasmBase::allocContextId.
	// cpp-host ContextBase::onStart: PLUGIN_CONFIGURATION (temp_plugin_) is available during the
	// root context's proxy_on_context_create, not during proxy_on_vm_start.
	v.root = v.newContext(nil)
	if v.fnContextCreate != nil {
		v.configuring, v.pluginConfig = true, configuration
		v.call(v.root, v.fnContextCreate, uint64(v.root.id), 0)
		v.configuring, v.pluginConfig = false, nil
	}
	if v.failed {
		return fail("wasm plugin %q: proxy_on_context_create(root) trapped: %s", p.cfg.Name, v.failMsg)
	}
	if v.fnVMStart != nil {
		r, ok := v.call(v.root, v.fnVMStart, uint64(v.root.id), uint64(len(p.cfg.VMConfig)))
		if !ok {
			return fail("wasm plugin %q: proxy_on_vm_start trapped: %s", p.cfg.Name, v.failMsg)
		}
		if uint32(r) == 0 {
			return fail("wasm plugin %q: %w: proxy_on_vm_start returned false", p.cfg.Name, ErrConfigRejected)
		}
	}
	ok, err := v.configure(configuration)
	if err != nil {
		return fail("wasm plugin %q: proxy_on_configure trapped: %v", p.cfg.Name, err)
	}
	if !ok {
		return fail("wasm plugin %q: %w: proxy_on_configure returned false", p.cfg.Name, ErrConfigRejected)
	}
	v.takeDeferred() // start-up runs on the root context only: no stream to continue or close
	return v, nil
}

// configure runs proxy_on_configure with PLUGIN_CONFIGURATION available only during the call
// (Envoy Context::getBuffer PluginConfiguration uses temp_plugin_ set by onConfigure).
func (v *vm) configure(configuration []byte) (bool, error) {
	if v.fnConfigure == nil {
		return true, nil
	}
	v.configuring = true
	v.pluginConfig = configuration
	r, ok := v.call(v.root, v.fnConfigure, uint64(v.root.id), uint64(len(configuration)))
	v.configuring = false
	v.pluginConfig = nil
	if !ok {
		return false, errors.New(v.failMsg)
	}
	return uint32(r) != 0, nil
}

// guestFunc is an exported guest function with its result count and name, read once: wazero's
// FunctionDefinition.ResultTypes allocates on every call.
type guestFunc struct {
	api.Function
	params, results int
	name            string
}

// exported returns the guest function exported as name, or nil.
func exported(mod api.Module, name string) *guestFunc {
	f := mod.ExportedFunction(name)
	if f == nil {
		return nil
	}
	d := f.Definition()
	return &guestFunc{Function: f, params: len(d.ParamTypes()), results: len(d.ResultTypes()), name: d.Name()}
}

// newContext allocates the next context id (cpp-host WasmBase::allocContextId).
func (v *vm) newContext(c *Conn) *wctx {
	return v.addContext(&wctx{conn: c})
}

// addContext gives x the next context id and registers it.
func (v *vm) addContext(x *wctx) *wctx {
	v.nextID++
	x.id = v.nextID
	v.contexts[x.id] = x
	return x
}

// call makes one top-level host→VM call on context c. The current context is c and the effective
// context is reset for the call and restored after it (cpp-host wasm_vm.h SaveRestoreContext). A
// trap marks the VM failed (cpp-host v8.cc call wrappers → WasmBase::fail) and returns ok=false.
func (v *vm) call(c *wctx, fn *guestFunc, args ...uint64) (uint64, bool) {
	if v.failed || v.closed {
		return 0, false
	}
	prevCur, prevEff := v.current, v.effective
	v.current, v.effective = c, 0
	// Top-level calls never nest (deferred actions run after the call; the allocator has its own
	// path), so one per-VM stack avoids an allocation per call.
	n := max(len(args), fn.results)
	var stack []uint64
	if n <= len(v.stack) {
		stack = v.stack[:n]
	} else {
		stack = make([]uint64, n)
	}
	for i, a := range args { // ≤ 3 arguments: cheaper than copy's memmove call
		stack[i] = a
	}
	err := fn.CallWithStack(v.ctx, stack)
	v.current, v.effective = prevCur, prevEff
	if err != nil {
		v.fail(fmt.Sprintf("Function: %s failed: %v", fn.name, err))
		return 0, false
	}
	if fn.results > 0 {
		return stack[0], true
	}
	return 0, true
}

// takeDeferred returns and clears the actions queued during the last top-level call.
func (v *vm) takeDeferred() []deferredAction {
	d := v.deferred
	v.deferred = nil
	return d
}

// fail marks the VM failed (FailState::RuntimeError): it is never called again.
func (v *vm) fail(msg string) {
	if v.failed {
		return
	}
	v.failed = true
	v.failMsg = msg
	v.p.vmFailures.Add(1)
	v.p.log(LogCritical, fmt.Sprintf("wasm VM failed (worker %d, failure policy %s): %s", v.w.index, v.p.cfg.FailurePolicy, msg))
}

// contextOrEffective is cpp-host exports.cc contextOrEffectiveContext.
func (v *vm) contextOrEffective() *wctx {
	if v.effective != 0 {
		if c, ok := v.contexts[v.effective]; ok {
			return c
		}
	}
	if v.current == nil {
		return v.root
	}
	return v.current
}

func (v *vm) logf(level LogLevel, format string, args ...any) {
	v.guestLog(level, fmt.Sprintf(format, args...))
}

// guestLog forwards a guest log line (Envoy Context::log).
func (v *vm) guestLog(level LogLevel, msg string) {
	if v.capture != nil {
		*v.capture = append(*v.capture, msg)
	}
	v.p.log(level, msg)
}

// guestLogView forwards a guest log line that msg only borrows (guest memory or a reused buffer):
// to a LogViewer as is, else as a string copy.
func (v *vm) guestLogView(level LogLevel, msg []byte) {
	if v.p.logView != nil && v.capture == nil {
		v.p.logView.LogView(level, v.p.cfg.Name, msg)
		return
	}
	v.guestLog(level, string(msg))
}

// read returns a copy of guest memory [ptr, ptr+n).
func (v *vm) read(ptr, n uint32) ([]byte, bool) {
	if n == 0 {
		return nil, true
	}
	b, ok := v.mem.Read(ptr, n)
	if !ok {
		return nil, false
	}
	out := make([]byte, n)
	copy(out, b)
	return out, true
}

// view returns guest memory [ptr, ptr+n) without copying. It is only valid until the guest runs or
// its memory grows (e.g. copyOut calls the guest allocator): use it for lookups and comparisons,
// never keep it.
func (v *vm) view(ptr, n uint32) ([]byte, bool) {
	if n == 0 {
		return nil, true
	}
	return v.mem.Read(ptr, n)
}

func (v *vm) readString(ptr, n uint32) (string, bool) {
	if n == 0 {
		return "", true
	}
	b, ok := v.mem.Read(ptr, n)
	if !ok {
		return "", false
	}
	return string(b), true
}

// allocate calls the guest allocator with exactly size bytes under allocator restriction (cpp-host
// WasmBase::allocMemory). A trap inside it propagates as a trap of the current call.
func (v *vm) allocate(size uint32) (uint32, bool) {
	prev := v.phase
	v.phase = phaseAlloc
	// CallWithStack on a per-VM array: Call would allocate its parameter and result slices. The
	// allocator never nests (only logging is allowed inside it), so one array suffices.
	stack := v.allocStack[:]
	stack[0] = uint64(size)
	var err error
	if f := v.fnAlloc; f.params == 1 && f.results <= 1 {
		err = f.CallWithStack(v.ctx, stack)
	} else {
		var res []uint64
		res, err = f.Call(v.ctx, uint64(size)) // wrong signature: wazero reports it as an error
		stack = append(stack[:0], res...)
	}
	v.phase = prev
	if err != nil {
		panic(trapError{"guest allocator trapped: " + err.Error()})
	}
	if v.fnAlloc.results == 0 || len(stack) == 0 || uint32(stack[0]) == 0 {
		return 0, false
	}
	addr := uint32(stack[0])
	if _, ok := v.mem.Read(addr, size); !ok {
		return 0, false
	}
	return addr, true
}

// copyOutString is cpp-host WasmBase::copyToPointerSize: allocate len(data) bytes in the guest, copy, and
// write the pointer and length (u32 LE); empty data writes (0, 0) without allocating.
func (v *vm) copyOutString(data string, ptrPtr, sizePtr uint32) bool {
	var addr uint32
	if len(data) > 0 {
		a, ok := v.allocate(uint32(len(data)))
		if !ok {
			return false
		}
		if !v.mem.WriteString(a, data) {
			return false
		}
		addr = a
	}
	return v.mem.WriteUint32Le(ptrPtr, addr) && v.mem.WriteUint32Le(sizePtr, uint32(len(data)))
}

// copyOut is copyOutString for bytes.
func (v *vm) copyOut(data []byte, ptrPtr, sizePtr uint32) bool {
	var addr uint32
	if len(data) > 0 {
		a, ok := v.allocate(uint32(len(data)))
		if !ok {
			return false
		}
		if !v.mem.Write(a, data) {
			return false
		}
		addr = a
	}
	return v.mem.WriteUint32Le(ptrPtr, addr) && v.mem.WriteUint32Le(sizePtr, uint32(len(data)))
}

// memoryBytes returns the current linear memory size.
func (v *vm) memoryBytes() uint64 {
	if v.mem == nil || v.closed {
		return 0
	}
	return uint64(v.mem.Size())
}

func (v *vm) close(ctx context.Context) {
	if v.closed {
		return
	}
	v.closed = true
	v.foldHostCalls()
	_ = v.mod.Close(ctx)
}

// foldHostCalls moves the VM's host-call count into the plugin's total (when the VM goes away).
func (v *vm) foldHostCalls() {
	v.p.hostCalls.Add(v.hostCalls)
	v.hostCalls = 0
}
