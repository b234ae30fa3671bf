//go:build !wasip1

package main

import "github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm"

// counter is a defined proxy-wasm counter (through the SDK outside the wasm
// build, so that proxytest records it).
type counter proxywasm.MetricCounter

// defineCounter defines (or finds) the counter name.
func defineCounter(name string) (c counter, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = statusError("proxy_define_metric("+name+"): "+panicString(r), 10)
		}
	}()
	return counter(proxywasm.DefineCounterMetric(name)), nil
}

// inc adds 1; a failure is ignored (a metric must not fail a connection).
func (c counter) inc() {
	defer func() { _ = recover() }()
	proxywasm.MetricCounter(c).Increment(1)
}
