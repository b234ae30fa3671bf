package host

import "io"

// Metrics is a registry of guest-defined (proxy_define_metric) and host metrics, shared by all VMs of
// the plugins that use it.
type Metrics struct{}

// NewMetrics returns an empty registry.
func NewMetrics() *Metrics { return &Metrics{} }

// Get returns the value of the counter or gauge named name (the guest's name, or a host metric's
// Prometheus name). Gauges are returned as uint64(int64 value).
func (m *Metrics) Get(name string) (uint64, bool) { return 0, false }

// WritePrometheus writes all metrics in the Prometheus text exposition format.
func (m *Metrics) WritePrometheus(w io.Writer) error { return nil }
