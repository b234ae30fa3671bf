package host

import (
	"context"
	"time"
)

// Plugin is one loaded plugin: a compiled module and one VM per worker.
type Plugin struct {
	cfg     PluginConfig
	metrics *Metrics
}

// NewPlugin compiles wasm, instantiates cfg.Workers VMs and runs, per VM, _initialize, the root context
// create, proxy_on_vm_start and proxy_on_configure. A false on_configure yields an error wrapping
// ErrConfigRejected whose message carries the guest's log lines.
func NewPlugin(ctx context.Context, wasm []byte, cfg PluginConfig) (*Plugin, error) {
	return nil, ErrClosed // TODO
}

// Reconfigure runs proxy_on_configure with a new configuration on every VM. If any VM returns false the
// previous configuration stays current and an error wrapping ErrConfigRejected is returned.
func (p *Plugin) Reconfigure(ctx context.Context, configuration []byte) error { return nil }

// Tick runs proxy_on_tick on every VM whose tick period has elapsed at now.
func (p *Plugin) Tick(now time.Time) {}

// Start runs a goroutine that calls Tick periodically until ctx is done or the plugin is closed.
func (p *Plugin) Start(ctx context.Context) {}

// Metrics returns the plugin's metric registry.
func (p *Plugin) Metrics() *Metrics { return p.metrics }

// HostCalls returns the total number of env.* host calls made by all VMs of the plugin.
func (p *Plugin) HostCalls() uint64 { return 0 }

// GuestMemoryBytes returns the sum of the linear memory sizes of all live VMs.
func (p *Plugin) GuestMemoryBytes() uint64 { return 0 }

// Close stops the ticker and closes every VM.
func (p *Plugin) Close(ctx context.Context) error { return nil }
