// Package vm is one proxy-wasm VM: an instance of the compiled module with its exported callbacks,
// its contexts (root and one per stream), top-level calls into the guest (with the current and
// effective context saved and restored, deferred continue/close actions, a trap failing the VM for
// good), memory going out to it through its allocator, and the restricted phases (_initialize, the
// allocator) in which only some imports may run. It also turns import descriptors (HostFunc) into
// wazero host modules. The imports themselves are in packages abi and wasi; what embeds a VM (the
// worker, its connections) is in package host.
//
// It follows proxy-wasm-cpp-host src/wasm.cc (WasmBase::initialize/startVm/getFunctions,
// allocContextId), include/proxy-wasm/wasm.h (allocMemory, copyToPointerSize), src/context.cc
// (ContextBase::onStart/onConfigure) and include/proxy-wasm/wasm_vm.h (SaveRestoreContext,
// DeferAfterCallActions).
package vm

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/dicomgate/dicomgate/wasm/host/internal/metrics"
	"github.com/dicomgate/dicomgate/wasm/host/internal/properties"
	"github.com/dicomgate/dicomgate/wasm/host/internal/shared"
	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
)

// LogLevel is a proxy_log level (TRACE 0 … CRITICAL 5); host.LogLevel converts to it.
type LogLevel int

// Log levels.
const (
	LogTrace LogLevel = iota
	LogDebug
	LogInfo
	LogWarn
	LogError
	LogCritical
)

// ErrConfigRejected: proxy_on_configure (or proxy_on_vm_start) returned false (host.ErrConfigRejected).
var ErrConfigRejected = errors.New("wasm plugin rejected its configuration")

// Clock is the time source of a plugin (host.Clock).
type Clock interface {
	Now() time.Time
	Monotonic() time.Duration
}

// Stream is the downstream connection of a stream context, as the imports see it (the filter
// manager's connection implements it).
type Stream interface {
	// Props is what the connection's properties are read from, and its filter state.
	Props() *properties.Conn
	// DownstreamBuffer and UpstreamBuffer are the connection's data buffers; held is false while
	// the filter does not hold them (outside its data callback and not paused): an empty buffer.
	DownstreamBuffer() (buf *[]byte, held bool)
	UpstreamBuffer() (buf *[]byte, held bool)
}

// Plugin is what every VM of one plugin shares; set before the first VM starts, read-only after.
type Plugin struct {
	Name     string
	VMID     string
	VMConfig []byte
	// Env is the WASI environment as sorted KEY=VALUE strings.
	Env      []string
	Clock    Clock
	LogLevel LogLevel // proxy_get_log_level's answer
	// Log receives guest log lines and diagnostics; LogView (nil: Log with a copy) receives guest
	// lines that only borrow msg for the call.
	Log     func(level LogLevel, msg string)
	LogView func(level LogLevel, msg []byte)
	Metrics *metrics.Registry
	Props   *properties.Plugin
	Shared  *shared.Store
	Runtime wazero.Runtime
	// Compiled is the plugin's module.
	Compiled wazero.CompiledModule
	// Fail is called once when a VM traps, after it is marked failed.
	Fail func(v *VM, msg string)
	// HostCalls receives the host-call count of VMs that go away.
	HostCalls *atomic.Uint64
	// QueueReady delivers proxy_on_queue_ready to v, the registrant of a shared queue.
	QueueReady func(v *VM, token uint32)
}

// QueueReady makes the VM a shared.Owner: proxy_on_queue_ready on its root context.
func (v *VM) QueueReady(token uint32) { v.Plugin.QueueReady(v, token) }

// Defer queues a continue/close action on s, run after the current top-level call returns
// (cpp-host DeferAfterCallActions).
func (v *VM) Defer(s Stream, kind int) {
	v.Deferred = append(v.Deferred, Deferred{Stream: s, Kind: kind})
}

// vmKey is the context key under which every guest call carries its *VM, so that the shared host
// modules (one set per wazero runtime) find the calling VM.
type vmKey struct{}

// vmContext is the context of every guest call of one VM: a background context (never done, no
// deadline) whose only value is the VM under vmKey. Host functions find their VM with one type
// assertion instead of a context.Value walk, and wazero's own per-call Value lookups (e.g. its
// snapshotter key) end at once.
type vmContext struct{ v *VM }

func (*vmContext) Deadline() (time.Time, bool) { return time.Time{}, false }
func (*vmContext) Done() <-chan struct{}       { return nil }
func (*vmContext) Err() error                  { return nil }

// Value returns the VM for vmKey and nil for every other key.
func (c *vmContext) Value(key any) any {
	if _, ok := key.(vmKey); ok {
		return c.v
	}
	return nil
}

// vmFromContext returns the VM a host function is called for, or nil.
func vmFromContext(ctx context.Context) *VM {
	if c, ok := ctx.(*vmContext); ok {
		return c.v
	}
	v, _ := ctx.Value(vmKey{}).(*VM)
	return v
}

// HostFunc is one import provided to guests.
type HostFunc struct {
	Module, Name string
	Params       []api.ValueType
	Results      []api.ValueType
	Fn           func(v *VM, stack []uint64)
	// Countable: env.proxy_* calls counted in VM.HostCalls.
	Countable bool
	// AllowInit / AllowAlloc: permitted during _initialize (cpp-host src/wasm.cc WasmBase::startVm)
	// and during the guest allocator (include/proxy-wasm/wasm.h WasmBase::allocMemory).
	AllowInit, AllowAlloc bool
}

// Restricted phases (cpp-host src/wasm.cc WasmBase::startVm, include/proxy-wasm/wasm.h allocMemory).
const (
	phaseNormal = iota
	phaseInit
	phaseAlloc
)

// Context is one proxy-wasm context inside a VM: the root (plugin) context or a stream context bound to
// a connection (cpp-host ContextBase).
type Context struct {
	ID     uint32
	Stream Stream // nil for the root context
}

// Deferred is queued by continue_stream / close_stream and run after the top-level guest call
// returns (cpp-host DeferAfterCallActions).
type Deferred struct {
	Stream Stream
	Kind   int
}

// Deferred kinds.
const (
	DeferContinueDownstream = iota
	DeferCloseDownstream
	DeferCloseUpstream
)

// VM is one instance of the module: one per worker (Envoy: one per worker thread). All fields are
// guarded by the owning worker's mutex.
type VM struct {
	// Plugin is what the VM shares with the other VMs of its plugin.
	Plugin *Plugin
	// Owner is the embedding worker (opaque to this package); Worker its index (-1: a canary).
	Owner  any
	Worker int
	mod    api.Module
	Mem    api.Memory
	ctx    context.Context

	FnAlloc, FnContextCreate, FnVMStart, FnConfigure, FnNewConnection, FnDownstreamData,
	FnUpstreamData, FnDownstreamClose, FnUpstreamClose, FnLog, FnDone, FnDelete, FnTick,
	FnQueueReady *Func
	allocStack [1]uint64

	phase     int
	nextID    uint32
	Root      *Context
	Contexts  map[uint32]*Context
	current   *Context
	Effective uint32
	Deferred  []Deferred
	stack     [8]uint64

	Failed  bool
	FailMsg string

	Configuring  bool
	PluginConfig []byte

	TickPeriod time.Duration
	NextTick   time.Time

	MetricIDs metrics.IDs

	// intern turns the filter-state keys and values the guest sets into strings, reusing earlier
	// identical ones.
	Intern properties.Interner
	// scratch is reused to format property values.
	Scratch []byte
	// logBuf is reused to join the iovecs of one fd_write line.
	LogBuf []byte

	// HostCalls counts env.proxy_* calls (host.Plugin.HostCalls); FoldHostCalls moves it into
	// Plugin.HostCalls when the VM goes away.
	HostCalls uint64

	capture     *[]string
	PendingDone bool
	closed      bool
}

// New instantiates the compiled module and runs the Envoy start sequence (cpp-host
// WasmBase::initialize/startVm, ContextBase::onStart/onConfigure): _initialize under restriction,
// proxy_on_context_create(root, 0), proxy_on_vm_start(root, vm_config_len),
// proxy_on_configure(root, plugin_config_len).
func New(ctx context.Context, p *Plugin, owner any, worker int, configuration []byte) (*VM, error) {
	v := &VM{Plugin: p, Owner: owner, Worker: worker, Contexts: map[uint32]*Context{}}
	v.ctx = &vmContext{v: v}
	mod, err := p.Runtime.InstantiateModule(ctx, p.Compiled, wazero.NewModuleConfig().WithName("").WithStartFunctions())
	if err != nil {
		return nil, fmt.Errorf("wasm plugin %q: instantiate module: %w", p.Name, err)
	}
	v.mod = mod
	v.Mem = mod.Memory()
	if v.Mem == nil {
		_ = mod.Close(ctx)
		return nil, fmt.Errorf("wasm plugin %q: module exports no memory", p.Name)
	}
	// cpp-host WasmBase::getFunctions: "malloc" first, then "proxy_on_memory_allocate".
	v.FnAlloc = exported(mod, "malloc")
	if v.FnAlloc == nil {
		v.FnAlloc = exported(mod, "proxy_on_memory_allocate")
	}
	if v.FnAlloc == nil {
		_ = mod.Close(ctx)
		return nil, fmt.Errorf("wasm plugin %q: Wasm module is missing malloc function (export malloc or proxy_on_memory_allocate)", p.Name)
	}
	v.FnContextCreate = exported(mod, "proxy_on_context_create")
	v.FnVMStart = exported(mod, "proxy_on_vm_start")
	v.FnConfigure = exported(mod, "proxy_on_configure")
	v.FnNewConnection = exported(mod, "proxy_on_new_connection")
	v.FnDownstreamData = exported(mod, "proxy_on_downstream_data")
	v.FnUpstreamData = exported(mod, "proxy_on_upstream_data")
	v.FnDownstreamClose = exported(mod, "proxy_on_downstream_connection_close")
	v.FnUpstreamClose = exported(mod, "proxy_on_upstream_connection_close")
	v.FnLog = exported(mod, "proxy_on_log")
	v.FnDone = exported(mod, "proxy_on_done")
	v.FnDelete = exported(mod, "proxy_on_delete")
	v.FnTick = exported(mod, "proxy_on_tick")
	v.FnQueueReady = exported(mod, "proxy_on_queue_ready")

	var lines []string
	v.capture = &lines
	defer func() { v.capture = nil }()
	fail := func(format string, args ...any) (*VM, error) {
		err := fmt.Errorf(format, args...) // %w keeps ErrConfigRejected matchable with errors.Is
		if len(lines) > 0 {
			err = fmt.Errorf("%w; guest log: %s", err, strings.Join(lines, " | "))
		}
		v.FoldHostCalls()
		_ = mod.Close(ctx)
		return nil, err
	}

	// _initialize (WASI reactor) under restriction; Go plugins run their init() here.
	if init := mod.ExportedFunction("_initialize"); init != nil {
		v.phase = phaseInit
		_, err := init.Call(v.ctx)
		v.phase = phaseNormal
		if err != nil {
			return fail("wasm plugin %q: _initialize trapped: %v", p.Name, err)
		}
	} else if start := mod.ExportedFunction("_start"); start != nil {
		v.phase = phaseInit
		_, err := start.Call(v.ctx)
		v.phase = phaseNormal
		if err != nil {
			return fail("wasm plugin %q: _start trapped: %v", p.Name, err)
		}
	}

	// Root context: ids start at 1 (0 is the VM context) — cpp-host WasmBase::allocContextId.
	// cpp-host ContextBase::onStart: PLUGIN_CONFIGURATION (temp_plugin_) is available during the
	// root context's proxy_on_context_create, not during proxy_on_vm_start.
	v.Root = v.NewContext(nil)
	if v.FnContextCreate != nil {
		v.Configuring, v.PluginConfig = true, configuration
		v.Call(v.Root, v.FnContextCreate, uint64(v.Root.ID), 0)
		v.Configuring, v.PluginConfig = false, nil
	}
	if v.Failed {
		return fail("wasm plugin %q: proxy_on_context_create(root) trapped: %s", p.Name, v.FailMsg)
	}
	if v.FnVMStart != nil {
		r, ok := v.Call(v.Root, v.FnVMStart, uint64(v.Root.ID), uint64(len(p.VMConfig)))
		if !ok {
			return fail("wasm plugin %q: proxy_on_vm_start trapped: %s", p.Name, v.FailMsg)
		}
		if uint32(r) == 0 {
			return fail("wasm plugin %q: %w: proxy_on_vm_start returned false", p.Name, ErrConfigRejected)
		}
	}
	ok, err := v.Configure(configuration)
	if err != nil {
		return fail("wasm plugin %q: proxy_on_configure trapped: %v", p.Name, err)
	}
	if !ok {
		return fail("wasm plugin %q: %w: proxy_on_configure returned false", p.Name, ErrConfigRejected)
	}
	v.TakeDeferred() // start-up runs on the root context only: no stream to continue or close
	return v, nil
}

// Configure runs proxy_on_configure with PLUGIN_CONFIGURATION available only during the call
// (Envoy Context::getBuffer PluginConfiguration uses temp_plugin_ set by onConfigure).
func (v *VM) Configure(configuration []byte) (bool, error) {
	if v.FnConfigure == nil {
		return true, nil
	}
	v.Configuring = true
	v.PluginConfig = configuration
	r, ok := v.Call(v.Root, v.FnConfigure, uint64(v.Root.ID), uint64(len(configuration)))
	v.Configuring = false
	v.PluginConfig = nil
	if !ok {
		return false, errors.New(v.FailMsg)
	}
	return uint32(r) != 0, nil
}

// Func is an exported guest function with its result count and name, read once: wazero's
// FunctionDefinition.ResultTypes allocates on every call.
type Func struct {
	api.Function
	params, results int
	name            string
}

// exported returns the guest function exported as name, or nil.
func exported(mod api.Module, name string) *Func {
	f := mod.ExportedFunction(name)
	if f == nil {
		return nil
	}
	d := f.Definition()
	return &Func{Function: f, params: len(d.ParamTypes()), results: len(d.ResultTypes()), name: d.Name()}
}

// NewContext allocates the next context id (cpp-host WasmBase::allocContextId).
func (v *VM) NewContext(s Stream) *Context {
	return v.AddContext(&Context{Stream: s})
}

// AddContext gives x the next context id and registers it.
func (v *VM) AddContext(x *Context) *Context {
	v.nextID++
	x.ID = v.nextID
	v.Contexts[x.ID] = x
	return x
}

// Call makes one top-level host→VM call on context c. The current context is c and the effective
// context is reset for the call and restored after it (cpp-host wasm_vm.h SaveRestoreContext). A
// trap marks the VM failed (cpp-host v8.cc call wrappers → WasmBase::fail) and returns ok=false.
func (v *VM) Call(c *Context, fn *Func, args ...uint64) (uint64, bool) {
	if v.Failed || v.closed {
		return 0, false
	}
	prevCur, prevEff := v.current, v.Effective
	v.current, v.Effective = c, 0
	// Top-level calls never nest (deferred actions run after the call; the allocator has its own
	// path), so one per-VM stack avoids an allocation per call.
	n := max(len(args), fn.results)
	var stack []uint64
	if n <= len(v.stack) {
		stack = v.stack[:n]
	} else {
		stack = make([]uint64, n)
	}
	copy(stack, args)
	err := fn.CallWithStack(v.ctx, stack)
	v.current, v.Effective = prevCur, prevEff
	if err != nil {
		v.fail(fmt.Sprintf("Function: %s failed: %v", fn.name, err))
		return 0, false
	}
	if fn.results > 0 {
		return stack[0], true
	}
	return 0, true
}

// TakeDeferred returns and clears the actions queued during the last top-level call.
func (v *VM) TakeDeferred() []Deferred {
	d := v.Deferred
	v.Deferred = nil
	return d
}

// fail marks the VM failed (FailState::RuntimeError): it is never called again.
func (v *VM) fail(msg string) {
	if v.Failed {
		return
	}
	v.Failed = true
	v.FailMsg = msg
	if v.Plugin.Fail != nil {
		v.Plugin.Fail(v, msg)
	}
}

// ContextOrEffective is cpp-host exports.cc contextOrEffectiveContext.
func (v *VM) ContextOrEffective() *Context {
	if v.Effective != 0 {
		if c, ok := v.Contexts[v.Effective]; ok {
			return c
		}
	}
	if v.current == nil {
		return v.Root
	}
	return v.current
}

// Logf logs a formatted line as the guest would (Log).
func (v *VM) Logf(level LogLevel, format string, args ...any) {
	v.Log(level, fmt.Sprintf(format, args...))
}

// Log forwards a guest log line (Envoy Context::log).
func (v *VM) Log(level LogLevel, msg string) {
	if v.capture != nil {
		*v.capture = append(*v.capture, msg)
	}
	v.Plugin.Log(level, msg)
}

// LogView forwards a guest log line that msg only borrows (guest memory or a reused buffer):
// to Plugin.LogView as is, else as a string copy.
func (v *VM) LogView(level LogLevel, msg []byte) {
	if v.Plugin.LogView != nil && v.capture == nil {
		v.Plugin.LogView(level, msg)
		return
	}
	v.Log(level, string(msg))
}

// Read returns a copy of guest memory [ptr, ptr+n).
func (v *VM) Read(ptr, n uint32) ([]byte, bool) {
	if n == 0 {
		return nil, true
	}
	b, ok := v.Mem.Read(ptr, n)
	if !ok {
		return nil, false
	}
	out := make([]byte, n)
	copy(out, b)
	return out, true
}

// View returns guest memory [ptr, ptr+n) without copying. It is only valid until the guest runs or
// its memory grows (e.g. CopyOut calls the guest allocator): use it for lookups and comparisons,
// never keep it.
func (v *VM) View(ptr, n uint32) ([]byte, bool) {
	if n == 0 {
		return nil, true
	}
	return v.Mem.Read(ptr, n)
}

// ReadString returns a copy of guest memory [ptr, ptr+n) as a string.
func (v *VM) ReadString(ptr, n uint32) (string, bool) {
	if n == 0 {
		return "", true
	}
	b, ok := v.Mem.Read(ptr, n)
	if !ok {
		return "", false
	}
	return string(b), true
}

// Allocate calls the guest allocator with exactly size bytes under allocator restriction (cpp-host
// WasmBase::allocMemory). A trap inside it propagates as a trap of the current call.
func (v *VM) Allocate(size uint32) (uint32, bool) {
	prev := v.phase
	v.phase = phaseAlloc
	// CallWithStack on a per-VM array: Call would allocate its parameter and result slices. The
	// allocator never nests (only logging is allowed inside it), so one array suffices.
	stack := v.allocStack[:]
	stack[0] = uint64(size)
	var err error
	if f := v.FnAlloc; f.params == 1 && f.results <= 1 {
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
	if v.FnAlloc.results == 0 || len(stack) == 0 || uint32(stack[0]) == 0 {
		return 0, false
	}
	addr := uint32(stack[0])
	if _, ok := v.Mem.Read(addr, size); !ok {
		return 0, false
	}
	return addr, true
}

// CopyOutString is cpp-host WasmBase::copyToPointerSize: allocate len(data) bytes in the guest, copy, and
// write the pointer and length (u32 LE); empty data writes (0, 0) without allocating.
func (v *VM) CopyOutString(data string, ptrPtr, sizePtr uint32) bool {
	// CopyOut only reads data: a view of the string's bytes instead of a copy.
	return v.CopyOut(unsafe.Slice(unsafe.StringData(data), len(data)), ptrPtr, sizePtr)
}

// CopyOut is CopyOutString for bytes.
func (v *VM) CopyOut(data []byte, ptrPtr, sizePtr uint32) bool {
	var addr uint32
	if len(data) > 0 {
		a, ok := v.Allocate(uint32(len(data)))
		if !ok {
			return false
		}
		if !v.Mem.Write(a, data) {
			return false
		}
		addr = a
	}
	return v.Mem.WriteUint32Le(ptrPtr, addr) && v.Mem.WriteUint32Le(sizePtr, uint32(len(data)))
}

// MemoryBytes returns the current linear memory size.
func (v *VM) MemoryBytes() uint64 {
	if v.Mem == nil || v.closed {
		return 0
	}
	return uint64(v.Mem.Size())
}

// Close closes the module instance (once) and folds its host-call count into the plugin's.
func (v *VM) Close(ctx context.Context) {
	if v.closed {
		return
	}
	v.closed = true
	v.FoldHostCalls()
	_ = v.mod.Close(ctx)
}

// FoldHostCalls moves the VM's host-call count into the plugin's total (when the VM goes away).
func (v *VM) FoldHostCalls() {
	v.Plugin.HostCalls.Add(v.HostCalls)
	v.HostCalls = 0
}

// trapError is panicked from a host function to trap the guest (wazero turns it into a call error).
type trapError struct{ msg string }

func (t trapError) Error() string { return t.msg }

// wrap makes hf a wazero Go function. No host function needs the calling api.Module (the
// VM comes from the context), so it is a GoFunction: wazero skips resolving the caller per call.
func wrap(hf *HostFunc) api.GoFunction {
	qualified := hf.Module + "." + hf.Name
	return api.GoFunc(func(ctx context.Context, stack []uint64) {
		var v *VM
		if c, ok := ctx.(*vmContext); ok { // every call the host makes
			v = c.v
		} else {
			v = vmFromContext(ctx)
		}
		if v == nil {
			panic(trapError{"host function " + qualified + " called outside a proxy-wasm VM"})
		}
		if hf.Countable {
			v.HostCalls++ // under the worker's mutex (or on the only goroutine using a starting VM)
		}
		switch v.phase {
		case phaseInit:
			if !hf.AllowInit {
				v.Logf(LogError, "restricted_callback: %s called during _initialize (only logging, WASI clock/random/environ/fd stat calls are allowed; move it to OnPluginStart)", qualified)
				panic(trapError{"restricted_callback: " + qualified})
			}
		case phaseAlloc:
			if !hf.AllowAlloc {
				v.Logf(LogError, "restricted_callback: %s called during the guest allocator", qualified)
				panic(trapError{"restricted_callback: " + qualified})
			}
		}
		hf.Fn(v, stack)
	})
}

// InstantiateHostModules instantiates funcs in r, one host module per HostFunc.Module.
func InstantiateHostModules(ctx context.Context, r wazero.Runtime, funcs ...[]*HostFunc) error {
	byModule := map[string][]*HostFunc{}
	for _, fs := range funcs {
		for _, hf := range fs {
			byModule[hf.Module] = append(byModule[hf.Module], hf)
		}
	}
	for mod, fns := range byModule {
		b := r.NewHostModuleBuilder(mod)
		for _, hf := range fns {
			b.NewFunctionBuilder().
				WithGoFunction(wrap(hf), hf.Params, hf.Results).
				WithName(hf.Name).
				Export(hf.Name)
		}
		if _, err := b.Instantiate(ctx); err != nil {
			return fmt.Errorf("instantiate host module %q: %w", mod, err)
		}
	}
	return nil
}

// Sig builds a parameter list from a compact string: 'i' = i32, 'I' = i64.
func Sig(s string) []api.ValueType {
	out := make([]api.ValueType, len(s))
	for i, c := range s {
		if c == 'I' {
			out[i] = api.ValueTypeI64
		} else {
			out[i] = api.ValueTypeI32
		}
	}
	return out
}
