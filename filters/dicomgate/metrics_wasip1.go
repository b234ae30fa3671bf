//go:build wasip1

package main

// Counters are defined and incremented with the ABI calls directly: the
// SDK's DefineCounterMetric/Increment format their panic messages with fmt,
// which alone adds ~360 KB to the module.

//go:wasmimport env proxy_define_metric
func proxyDefineMetric(metricType uint32, name *byte, nameLen int32, returnID *uint32) uint32

//go:wasmimport env proxy_increment_metric
func proxyIncrementMetric(id uint32, delta int64) uint32

// metricTypeCounter is proxy-wasm MetricType COUNTER.
const metricTypeCounter = 0

// counter is a defined proxy-wasm counter.
type counter uint32

// defineCounter defines (or finds) the counter name; an error names the
// metric and the host status.
func defineCounter(name string) (counter, error) {
	b := []byte(name)
	var id uint32
	if len(b) == 0 {
		return 0, statusError("proxy_define_metric(\"\")", 2)
	}
	if st := proxyDefineMetric(metricTypeCounter, &b[0], int32(len(b)), &id); st != 0 {
		return 0, statusError("proxy_define_metric("+name+")", st)
	}
	return counter(id), nil
}

// inc adds 1; a failure is ignored (a metric must not fail a connection).
func (c counter) inc() { _ = proxyIncrementMetric(uint32(c), 1) }
