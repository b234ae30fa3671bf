package host

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/dicomgate/dicomgate/wasm/host/internal/abi"
	"github.com/dicomgate/dicomgate/wasm/host/internal/shared"
	"github.com/dicomgate/dicomgate/wasm/host/internal/vm"
	"github.com/dicomgate/dicomgate/wasm/host/internal/wasi"
	"github.com/tetratelabs/wazero"
)

// EngineConfig configures an Engine.
type EngineConfig struct {
	// CompilationCache is the wazero compilation cache of the Engine's runtime. nil means none: a
	// module is compiled once per Engine (its runtime keeps the compiled code in memory while a
	// plugin uses it) and again in the next process. For a cache on disk pass
	// wazero.NewCompilationCacheWithDir(dir); to share compiled code between Engines of one process,
	// pass the same wazero.NewCompilationCache() to each. The Engine does not close it.
	CompilationCache wazero.CompilationCache
}

// Engine is what the plugins of one process share, like Envoy's single Wasm engine per process: one
// wazero runtime (with the proxy-wasm and WASI host modules instantiated once), its compilation cache,
// and the proxy-wasm shared data and shared queues (keyed by vm_id, common to all plugins of the
// Engine). Plugins are created with NewPlugin. An Engine holds no process-wide state: two Engines
// share nothing (not even shared data), so tests can each have their own.
type Engine struct {
	runtime wazero.Runtime
	shared  *shared.Store

	mu      sync.Mutex
	closed  bool
	plugins map[*Plugin]struct{}
}

// NewEngine creates an Engine: a wazero runtime with cfg's compilation cache and the host modules
// (env: the proxy_* imports; wasi_snapshot_preview1 and wasi_unstable: WASI).
func NewEngine(ctx context.Context, cfg EngineConfig) (*Engine, error) {
	rc := wazero.NewRuntimeConfig()
	if cfg.CompilationCache != nil {
		rc = rc.WithCompilationCache(cfg.CompilationCache)
	}
	r := wazero.NewRuntimeWithConfig(ctx, rc)
	if err := vm.InstantiateHostModules(ctx, r, abi.Funcs(), wasi.Funcs()); err != nil {
		_ = r.Close(ctx)
		return nil, err
	}
	return &Engine{runtime: r, shared: shared.New(), plugins: map[*Plugin]struct{}{}}, nil
}

// ErrEngineClosed is returned by NewPlugin after Engine.Close.
var ErrEngineClosed = errors.New("wasm engine closed")

// NewPlugin compiles wasm, instantiates cfg.Workers VMs and runs, per VM, _initialize, the root context
// create, proxy_on_vm_start and proxy_on_configure (cpp-host WasmBase::initialize/startVm/configure).
// A false on_configure yields an error wrapping ErrConfigRejected whose message carries the guest's
// log lines.
func (e *Engine) NewPlugin(ctx context.Context, wasm []byte, cfg PluginConfig) (*Plugin, error) {
	e.mu.Lock()
	closed := e.closed
	e.mu.Unlock()
	if closed {
		return nil, fmt.Errorf("wasm plugin %q: %w (create plugins before Engine.Close)", cfg.Name, ErrEngineClosed)
	}
	p, err := newPlugin(ctx, e, wasm, cfg)
	if err != nil {
		return nil, err
	}
	e.mu.Lock()
	e.plugins[p] = struct{}{}
	e.mu.Unlock()
	return p, nil
}

// forget drops a closed plugin.
func (e *Engine) forget(p *Plugin) {
	e.mu.Lock()
	delete(e.plugins, p)
	e.mu.Unlock()
}

// Close closes every plugin still open (Plugin.Close) and then the runtime. The compilation cache
// is the caller's to close.
func (e *Engine) Close(ctx context.Context) error {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return nil
	}
	e.closed = true
	open := make([]*Plugin, 0, len(e.plugins))
	for p := range e.plugins {
		open = append(open, p)
	}
	e.mu.Unlock()
	var errs []error
	for _, p := range open {
		errs = append(errs, p.Close(ctx))
	}
	errs = append(errs, e.runtime.Close(ctx))
	return errors.Join(errs...)
}
