package host

import (
	"context"
	"fmt"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
)

// vmKey is the context key under which every guest call carries its *vm, so that the shared host
// modules (one set per wazero runtime) find the calling VM.
type vmKey struct{}

// vmContext is the context of every guest call of one VM: a background context (never done, no
// deadline) whose only value is the VM under vmKey. Host functions find their VM with one type
// assertion instead of a context.Value walk, and wazero's own per-call Value lookups (e.g. its
// snapshotter key) end at once.
type vmContext struct{ v *vm }

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
func vmFromContext(ctx context.Context) *vm {
	if c, ok := ctx.(*vmContext); ok {
		return c.v
	}
	v, _ := ctx.Value(vmKey{}).(*vm)
	return v
}

// hostFunc is one import provided to guests.
type hostFunc struct {
	module, name string
	params       []api.ValueType
	results      []api.ValueType
	fn           func(v *vm, stack []uint64)
	// countable: env.proxy_* calls counted by Plugin.HostCalls.
	countable bool
	// allowInit / allowAlloc: permitted during _initialize (cpp-host src/wasm.cc WasmBase::startVm)
	// and during the guest allocator (include/proxy-wasm/wasm.h WasmBase::allocMemory).
	allowInit, allowAlloc bool
}

const (
	i32 = api.ValueTypeI32
	i64 = api.ValueTypeI64
)

func instantiateHostModules(ctx context.Context, r wazero.Runtime) error {
	byModule := map[string][]*hostFunc{}
	for _, hf := range envFuncs() {
		byModule[hf.module] = append(byModule[hf.module], hf)
	}
	for _, hf := range wasiFuncs() {
		// cpp-host registers every WASI function under both module names (WasmBase::registerCallbacks).
		for _, mod := range []string{"wasi_snapshot_preview1", "wasi_unstable"} {
			c := *hf
			c.module = mod
			byModule[mod] = append(byModule[mod], &c)
		}
	}
	for mod, fns := range byModule {
		b := r.NewHostModuleBuilder(mod)
		for _, hf := range fns {
			b.NewFunctionBuilder().
				WithGoFunction(wrapHostFunc(hf), hf.params, hf.results).
				WithName(hf.name).
				Export(hf.name)
		}
		if _, err := b.Instantiate(ctx); err != nil {
			return fmt.Errorf("instantiate host module %q: %w", mod, err)
		}
	}
	return nil
}

// trapError is panicked from a host function to trap the guest (wazero turns it into a call error).
type trapError struct{ msg string }

func (t trapError) Error() string { return t.msg }

// wrapHostFunc makes hf a wazero Go function. No host function needs the calling api.Module (the
// VM comes from the context), so it is a GoFunction: wazero skips resolving the caller per call.
func wrapHostFunc(hf *hostFunc) api.GoFunction {
	qualified := hf.module + "." + hf.name
	return api.GoFunc(func(ctx context.Context, stack []uint64) {
		var v *vm
		if c, ok := ctx.(*vmContext); ok { // every call the host makes
			v = c.v
		} else {
			v = vmFromContext(ctx)
		}
		if v == nil {
			panic(trapError{"host function " + qualified + " called outside a proxy-wasm VM"})
		}
		if hf.countable {
			v.hostCalls++ // under the worker's mutex (or on the only goroutine using a starting VM)
		}
		switch v.phase {
		case phaseInit:
			if !hf.allowInit {
				v.logf(LogError, "restricted_callback: %s called during _initialize (only logging, WASI clock/random/environ/fd stat calls are allowed; move it to OnPluginStart)", qualified)
				panic(trapError{"restricted_callback: " + qualified})
			}
		case phaseAlloc:
			if !hf.allowAlloc {
				v.logf(LogError, "restricted_callback: %s called during the guest allocator", qualified)
				panic(trapError{"restricted_callback: " + qualified})
			}
		}
		hf.fn(v, stack)
	})
}
