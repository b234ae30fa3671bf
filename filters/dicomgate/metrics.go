package main

import (
	"github.com/dicomgate/dicomgate/internal/filtertable/metricname"
	"github.com/dicomgate/dicomgate/sdk/policy"
	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm"
)

// Metric base names (labels are encoded in the proxy-wasm metric name, see
// package metricname; Envoy exports them as wasmcustom stats).
const (
	metricAssociations = "dicomgate_associations_total"
	metricDecisions    = "dicomgate_decisions_total"
	metricDenied       = "dicomgate_denied_total"
	metricDryRunDenies = "dicomgate_dry_run_denies_total"
	// ruleDefault is the rule label when the policy's default action applied.
	ruleDefault = "default"
)

// reason is the reason label of dicomgate_denied_total.
type reason uint8

// Reasons a connection is closed.
const (
	reasonPolicy reason = iota
	reasonMalformed
	reasonNotDICOM
	reasonTLSOnPlainPort
	reasonTooLarge
	reasonTimeout
	reasonEOF
	reasonInternal
	numReasons
)

var reasonNames = [numReasons]string{"policy", "malformed", "not_dicom", "tls_on_plain_port", "too_large", "timeout", "eof", "internal"}

// numActions is the number of policy actions (allow, deny, route).
const numActions = 3

// metrics holds every counter of one plugin configuration. All label
// combinations are defined at configure time (values come only from the
// configuration: rule names, fixed actions and reasons), so cardinality is
// bounded by (rules+1)*3 + 8 + 2.
type metrics struct {
	associations proxywasm.MetricCounter
	dryRunDenies proxywasm.MetricCounter
	denied       [numReasons]proxywasm.MetricCounter
	// decisions[ruleIndex+1][action]; index 0 is the default action.
	decisions [][numActions]proxywasm.MetricCounter
}

// defineMetrics defines every counter for the rules of p. It panics (inside
// the SDK) if the host refuses a definition; OnPluginStart recovers.
func defineMetrics(rules []string) *metrics {
	m := &metrics{
		associations: proxywasm.DefineCounterMetric(metricAssociations),
		dryRunDenies: proxywasm.DefineCounterMetric(metricDryRunDenies),
	}
	for i, r := range reasonNames {
		m.denied[i] = proxywasm.DefineCounterMetric(metricname.Encode(metricDenied, "reason", r))
	}
	m.decisions = make([][numActions]proxywasm.MetricCounter, len(rules)+1)
	for i := 0; i <= len(rules); i++ {
		rule := ruleDefault
		if i > 0 {
			rule = rules[i-1]
		}
		for a := 0; a < numActions; a++ {
			m.decisions[i][a] = proxywasm.DefineCounterMetric(
				metricname.Encode(metricDecisions, "action", policy.Action(a).String(), "rule", rule))
		}
	}
	return m
}

// inc increments a counter, never panicking (a metric must not fail a
// connection).
func inc(c proxywasm.MetricCounter) {
	defer func() { _ = recover() }()
	c.Increment(1)
}

func (m *metrics) decision(ruleIndex int, a policy.Action) {
	if m == nil {
		return
	}
	i := ruleIndex + 1
	if i < 0 || i >= len(m.decisions) || int(a) >= numActions {
		return
	}
	inc(m.decisions[i][a])
}
