package host

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dicomgate/dicomgate/wasm/host/internal/filtermanager"
	"github.com/dicomgate/dicomgate/wasm/host/internal/properties"
	"github.com/dicomgate/dicomgate/wasm/host/internal/shared"
	"github.com/dicomgate/dicomgate/wasm/host/internal/vm"
	"github.com/tetratelabs/wazero"
)

// Plugin is one loaded plugin: a compiled module and one VM per worker.
type Plugin struct {
	cfg      PluginConfig
	vmPlugin vm.Plugin           // what the VMs share
	chain    filtermanager.Chain // what the connections' filter chains share
	props    properties.Plugin   // plugin_* and static properties
	engine   *Engine
	compiled wazero.CompiledModule
	workers  []*filtermanager.Worker
	next     atomic.Uint64
	metrics  *Metrics
	clock    Clock
	logger   Logger
	logView  LogViewer // logger as a LogViewer, or nil
	logLevel LogLevel

	hostCalls atomic.Uint64 // host calls of VMs already closed; live VMs count their own (vm.hostCalls)

	connPool sync.Pool // *Conn given back with Conn.Release

	// Host counters of this plugin, resolved once (metrics.Registry.HostCounter): no lock, no lookup per use.
	cxTotal, cxFailOpen, cxFailClosed, vmFailures, vmReloads *atomic.Uint64

	cfgMu         sync.Mutex
	configuration []byte

	closed    atomic.Bool
	stopOnce  sync.Once
	stop      chan struct{}
	startOnce sync.Once
}

type realClock struct{ start time.Time }

func (c realClock) Now() time.Time { return time.Now() }

// Monotonic never returns 0: the Go wasip1 runtime aborts with "nanotime returning zero".
func (c realClock) Monotonic() time.Duration { return time.Since(c.start) + time.Second }

type stderrLogger struct{}

func (stderrLogger) Log(level LogLevel, plugin, msg string) {
	fmt.Fprintf(os.Stderr, "[%s] wasm log %s: %s\n", level, plugin, msg)
}

// LogView writes the line at once and keeps nothing.
func (stderrLogger) LogView(level LogLevel, plugin string, msg []byte) {
	fmt.Fprintf(os.Stderr, "[%s] wasm log %s: %s\n", level, plugin, msg)
}

// newPlugin is Engine.NewPlugin.
func newPlugin(ctx context.Context, e *Engine, wasm []byte, cfg PluginConfig) (*Plugin, error) {
	if cfg.Workers <= 0 {
		cfg.Workers = runtime.GOMAXPROCS(0)
	}
	if cfg.LegacyFailOpen && cfg.FailurePolicy != FailOpen {
		return nil, fmt.Errorf("wasm plugin %q: LegacyFailOpen needs FailurePolicy FailOpen (Envoy: only one of fail_open or failure_policy can be set)", cfg.Name)
	}
	if cfg.ReloadBackoff <= 0 {
		cfg.ReloadBackoff = time.Second
	}
	p := &Plugin{cfg: cfg, engine: e, props: properties.Plugin{Name: cfg.Name, RootID: cfg.RootID, VMID: cfg.VMID, Static: cfg.Properties},
		metrics: cfg.Metrics, clock: cfg.Clock, logger: cfg.Logger, logLevel: LogInfo,
		configuration: cfg.Configuration, stop: make(chan struct{})}
	if p.metrics == nil {
		p.metrics = NewMetrics()
	}
	p.cxTotal = p.metrics.r.HostCounter("wasm_host_connections_total", cfg.Name)
	p.cxFailOpen = p.metrics.r.HostCounter("wasm_host_connections_fail_open_total", cfg.Name)
	p.cxFailClosed = p.metrics.r.HostCounter("wasm_host_connections_fail_closed_total", cfg.Name)
	p.vmFailures = p.metrics.r.HostCounter("wasm_host_vm_failures_total", cfg.Name)
	p.vmReloads = p.metrics.r.HostCounter("wasm_host_vm_reloads_total", cfg.Name)
	if p.clock == nil {
		p.clock = realClock{start: time.Now()}
	}
	if p.logger == nil {
		p.logger = stderrLogger{}
	}
	p.logView, _ = p.logger.(LogViewer)
	compiled, err := e.runtime.CompileModule(ctx, wasm)
	if err != nil {
		return nil, fmt.Errorf("wasm plugin %q: compile module: %w", cfg.Name, err)
	}
	p.compiled = compiled
	if err := checkABI(compiled); err != nil {
		_ = compiled.Close(ctx)
		return nil, fmt.Errorf("wasm plugin %q: %w", cfg.Name, err)
	}
	p.initVMPlugin()
	p.chain = filtermanager.Chain{FailurePolicy: int(cfg.FailurePolicy), LegacyFailOpen: cfg.LegacyFailOpen,
		Closed: p.closed.Load, ConnsTotal: p.cxTotal, ConnsFailOpen: p.cxFailOpen, ConnsFailClosed: p.cxFailClosed,
		Reload: p.maybeReload}
	for i := 0; i < cfg.Workers; i++ {
		w := &filtermanager.Worker{Index: i}
		v, err := p.newVM(ctx, w, cfg.Configuration)
		if err != nil {
			for _, ow := range p.workers {
				ow.VM.Close(ctx)
			}
			_ = compiled.Close(ctx)
			return nil, err
		}
		w.VM = v
		w.LastReload = p.clock.Now() // the handle's last_load: its creation
		p.workers = append(p.workers, w)
	}
	return p, nil
}

// initVMPlugin fills what the plugin's VMs share (vm.Plugin): configuration, time, logging,
// metrics, properties, the Engine's shared data, and the hooks by which a VM reports back.
func (p *Plugin) initVMPlugin() {
	keys := make([]string, 0, len(p.cfg.Env))
	for k := range p.cfg.Env {
		keys = append(keys, k)
	}
	sort.Strings(keys) // environ_get in a deterministic order
	env := make([]string, len(keys))
	for i, k := range keys {
		env[i] = k + "=" + p.cfg.Env[k]
	}
	p.vmPlugin = vm.Plugin{Name: p.cfg.Name, VMID: p.cfg.VMID, VMConfig: p.cfg.VMConfig, Env: env,
		Clock: p.clock, LogLevel: vm.LogLevel(p.logLevel), Metrics: p.metrics.r, Props: &p.props,
		Shared: p.engine.shared, Runtime: p.engine.runtime, Compiled: p.compiled, HostCalls: &p.hostCalls,
		Log: func(level vm.LogLevel, msg string) { p.logger.Log(LogLevel(level), p.cfg.Name, msg) },
		Fail: func(v *vm.VM, msg string) {
			p.vmFailures.Add(1)
			p.log(LogCritical, fmt.Sprintf("wasm VM failed (worker %d, failure policy %s): %s", v.Worker, p.cfg.FailurePolicy, msg))
		},
		QueueReady: p.queueReady,
	}
	if lv := p.logView; lv != nil {
		p.vmPlugin.LogView = func(level vm.LogLevel, msg []byte) { lv.LogView(LogLevel(level), p.cfg.Name, msg) }
	}
}

// newVM starts a VM for worker w with configuration (vm.New: the cpp-host start sequence).
func (p *Plugin) newVM(ctx context.Context, w *filtermanager.Worker, configuration []byte) (*vm.VM, error) {
	return vm.New(ctx, &p.vmPlugin, w, w.Index, configuration)
}

// checkABI is cpp-host BytecodeUtil::getAbiVersion + WasmBase::load: a proxy_abi_version_* export
// must exist.
func checkABI(m wazero.CompiledModule) error {
	exports := m.ExportedFunctions()
	for _, name := range []string{"proxy_abi_version_0_2_1", "proxy_abi_version_0_2_0", "proxy_abi_version_0_1_0"} {
		if _, ok := exports[name]; ok {
			return nil
		}
	}
	return errors.New("missing or unknown Proxy-Wasm ABI version (export proxy_abi_version_0_2_0 or proxy_abi_version_0_2_1)")
}

func (p *Plugin) log(level LogLevel, msg string) { p.logger.Log(level, p.cfg.Name, msg) }

// Reconfigure validates configuration in a fresh canary VM (Envoy WasmHandleBase::canary) and, if
// its proxy_on_configure returns true, runs proxy_on_configure on every worker VM. If the canary
// rejects it the previous configuration stays current and an error wrapping ErrConfigRejected is
// returned.
func (p *Plugin) Reconfigure(ctx context.Context, configuration []byte) error {
	if p.closed.Load() {
		return ErrClosed
	}
	canary, err := p.newVM(ctx, &filtermanager.Worker{Index: -1}, configuration)
	if err != nil {
		return err
	}
	canary.Close(ctx)
	p.cfgMu.Lock()
	p.configuration = configuration
	p.cfgMu.Unlock()
	var errs []error
	for _, w := range p.workers {
		w.Mu.Lock()
		if w.VM != nil && !w.VM.Failed {
			ok, err := w.VM.Configure(configuration)
			switch {
			case err != nil:
				errs = append(errs, fmt.Errorf("worker %d: proxy_on_configure trapped: %w", w.Index, err))
			case !ok:
				errs = append(errs, fmt.Errorf("worker %d: %w: proxy_on_configure returned false", w.Index, ErrConfigRejected))
			}
			w.RunDeferred(w.VM.TakeDeferred())
		}
		w.UnlockAndDeliver()
	}
	return errors.Join(errs...)
}

// Tick runs proxy_on_tick on the root context of every VM whose tick period has elapsed at now
// (Envoy Wasm::tickHandler; one timer per root context per worker VM).
func (p *Plugin) Tick(now time.Time) {
	if p.closed.Load() {
		return
	}
	for _, w := range p.workers {
		w.Mu.Lock()
		v := w.VM
		if v != nil && !v.Failed && v.FnTick != nil && v.TickPeriod > 0 && !now.Before(v.NextTick) {
			v.NextTick = now.Add(v.TickPeriod)
			v.Call(v.Root, v.FnTick, uint64(v.Root.ID))
			w.RunDeferred(v.TakeDeferred())
		}
		w.UnlockAndDeliver()
	}
}

// Start runs a goroutine that calls Tick when tick periods elapse (real time), until ctx is done or
// the plugin is closed. Calling it more than once has no effect.
func (p *Plugin) Start(ctx context.Context) {
	p.startOnce.Do(func() {
		go func() {
			for {
				wait := time.Second
				now := p.clock.Now()
				for _, w := range p.workers {
					w.Mu.Lock()
					if v := w.VM; v != nil && !v.Failed && v.TickPeriod > 0 {
						if d := v.NextTick.Sub(now); d < wait {
							wait = d
						}
					}
					w.Mu.Unlock()
				}
				if wait < time.Millisecond {
					wait = time.Millisecond
				}
				t := time.NewTimer(wait)
				select {
				case <-ctx.Done():
					t.Stop()
					return
				case <-p.stop:
					t.Stop()
					return
				case <-t.C:
				}
				p.Tick(p.clock.Now())
			}
		}()
	})
}

// queueReady delivers proxy_on_queue_ready to the registrant VM of a shared queue.
func (p *Plugin) queueReady(v *vm.VM, token uint32) {
	if p.closed.Load() {
		return
	}
	w, _ := v.Owner.(*filtermanager.Worker)
	if w == nil || w.Index < 0 {
		return
	}
	w.Mu.Lock()
	if w.VM == v && !v.Failed && v.FnQueueReady != nil {
		v.Call(v.Root, v.FnQueueReady, uint64(v.Root.ID), uint64(token))
		w.RunDeferred(v.TakeDeferred())
	}
	w.UnlockAndDeliver()
}

// Metrics returns the plugin's metric registry.
func (p *Plugin) Metrics() *Metrics { return p.metrics }

// HostCalls returns the total number of env.* host calls made by all VMs of the plugin. Each VM
// counts its own calls under its worker's lock, which HostCalls takes in turn (like
// GuestMemoryBytes): do not call it from a Logger, which runs inside a guest call.
func (p *Plugin) HostCalls() uint64 {
	sum := p.hostCalls.Load() // VMs closed so far (canaries, reloaded or failed-to-start VMs)
	for _, w := range p.workers {
		w.Mu.Lock()
		if w.VM != nil {
			sum += w.VM.HostCalls
		}
		w.Mu.Unlock()
	}
	return sum
}

// GuestMemoryBytes returns the sum of the linear memory sizes of the current VMs of all workers.
func (p *Plugin) GuestMemoryBytes() uint64 {
	var sum uint64
	for _, w := range p.workers {
		w.Mu.Lock()
		if w.VM != nil {
			sum += w.VM.MemoryBytes()
		}
		w.Mu.Unlock()
	}
	return sum
}

// Workers returns the number of worker VMs.
func (p *Plugin) Workers() int { return len(p.workers) }

// FailedVMs returns the number of workers whose VM has failed (trapped, or could not be recreated
// under FAIL_RELOAD) and not been replaced: under FAIL_CLOSED every connection pinned to such a
// worker is closed at new connection (Envoy wasm.cc PluginConfig::createContext), so the filter
// cannot decide for them. After Close every VM counts as failed.
func (p *Plugin) FailedVMs() int {
	n := 0
	for _, w := range p.workers {
		w.Mu.Lock()
		if w.VM == nil || w.VM.Failed {
			n++
		}
		w.Mu.Unlock()
	}
	return n
}

// Close stops the ticker, runs proxy_on_done (and proxy_on_delete when it returns true) on every
// root context (cpp-host WasmBase::startShutdown) and closes every VM. Connections still open
// behave as if their VM failed.
func (p *Plugin) Close(ctx context.Context) error {
	if !p.closed.CompareAndSwap(false, true) {
		return nil
	}
	p.stopOnce.Do(func() { close(p.stop) })
	p.engine.shared.ForgetOwners(func(o shared.Owner) bool { v, ok := o.(*vm.VM); return ok && v.Plugin == &p.vmPlugin })
	defer p.engine.forget(p)
	for _, w := range p.workers {
		w.Mu.Lock()
		if v := w.VM; v != nil {
			if !v.Failed && v.FnDone != nil {
				r, ok := v.Call(v.Root, v.FnDone, uint64(v.Root.ID))
				if ok && uint32(r) != 0 && v.FnDelete != nil {
					v.Call(v.Root, v.FnDelete, uint64(v.Root.ID))
				} else if ok {
					v.PendingDone = true
				}
				v.TakeDeferred()
			}
			v.Failed = true
			v.FailMsg = "plugin closed"
			v.Close(ctx)
		}
		w.Mu.Unlock()
	}
	return p.compiled.Close(ctx)
}
