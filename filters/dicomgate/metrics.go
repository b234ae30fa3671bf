package main

import (
	"github.com/dicomgate/dicomgate/internal/filtertable/metricname"
	"github.com/dicomgate/dicomgate/sdk/policy"
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
	associations counter
	dryRunDenies counter
	denied       [numReasons]counter
	// decisions[ruleIndex+1][action]; index 0 is the default action.
	decisions [][numActions]counter
}

// defineMetrics defines every counter for the given rule names. The first
// definition the host refuses is returned as an error.
func defineMetrics(rules []string) (*metrics, error) {
	m := &metrics{}
	var err error
	def := func(name string) counter {
		c, e := defineCounter(name)
		if e != nil && err == nil {
			err = e
		}
		return c
	}
	m.associations = def(metricAssociations)
	m.dryRunDenies = def(metricDryRunDenies)
	for i, r := range reasonNames {
		m.denied[i] = def(metricname.Encode(metricDenied, "reason", r))
	}
	m.decisions = make([][numActions]counter, len(rules)+1)
	for i := 0; i <= len(rules); i++ {
		rule := ruleDefault
		if i > 0 {
			rule = rules[i-1]
		}
		for a := 0; a < numActions; a++ {
			m.decisions[i][a] = def(metricname.Encode(metricDecisions, "action", policy.Action(a).String(), "rule", rule))
		}
	}
	return m, err
}

// inc increments a counter; it never fails a connection.
func inc(c counter) { c.inc() }

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
