package main

import (
	"github.com/dicomgate/dicomgate/filters/dicomgate/internal/abi"
	"github.com/dicomgate/dicomgate/sdk/metricname"
	"github.com/dicomgate/dicomgate/sdk/policy"
)

// Metric base names (labels are encoded in the proxy-wasm metric name, see
// package metricname; Envoy exports them as wasmcustom stats).
const (
	metricAssociations = "dicomgate_associations_total"
	metricDecisions    = "dicomgate_decisions_total"
	metricDenied       = "dicomgate_denied_total"
	metricDryRunDenies = "dicomgate_dry_run_denies_total"
	metricRejected     = "dicomgate_rejected_total"
	// ruleDefault is the rule label when the policy's default action
	// applied, the same name the audit line and dicom.rule carry.
	ruleDefault = policy.DefaultRule
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

// String is the reason's label value (and the audit line's "reason").
func (r reason) String() string { return reasonNames[r] }

// metrics holds every counter of one plugin configuration. Every series is
// defined at configure time (label values come only from the configuration:
// rule names, their actions, fixed reasons), so cardinality is bounded by
// rules + 1 + 11.
type metrics struct {
	associations abi.Counter
	dryRunDenies abi.Counter
	// rejected counts policy denies routed to the rejector (also counted
	// in denied[reasonPolicy]).
	rejected abi.Counter
	denied   [numReasons]abi.Counter
	// decisions[ruleIndex+1] counts the action the rule enforces (index 0:
	// the default action); in dry-run every enforced action is allow.
	decisions []abi.Counter
}

// defineMetrics defines every counter for the rules (names and actions,
// parallel) and the default action. The first definition the host refuses
// is returned as an error.
func defineMetrics(names []string, actions []policy.Action, def policy.Action, dryRun bool) (*metrics, error) {
	m := &metrics{}
	var err error
	define := func(name string) abi.Counter {
		c, e := abi.DefineCounter(name)
		if e != nil && err == nil {
			err = e
		}
		return c
	}
	m.associations = define(metricAssociations)
	m.dryRunDenies = define(metricDryRunDenies)
	m.rejected = define(metricRejected)
	for i, r := range reasonNames {
		m.denied[i] = define(metricname.Encode(metricDenied, "reason", r))
	}
	m.decisions = make([]abi.Counter, len(names)+1)
	for i := 0; i <= len(names); i++ {
		rule, action := ruleDefault, def
		if i > 0 && i-1 < len(actions) {
			rule, action = names[i-1], actions[i-1]
		}
		if dryRun {
			action = policy.ActionAllow
		}
		m.decisions[i] = define(metricname.Encode(metricDecisions, "action", action.String(), "rule", rule))
	}
	return m, err
}

// inc increments a counter; it never fails a connection.
func inc(c abi.Counter) { c.Inc() }

// decision counts the enforced decision of rule ruleIndex (-1: default).
func (m *metrics) decision(ruleIndex int) {
	if m == nil {
		return
	}
	if i := ruleIndex + 1; i >= 0 && i < len(m.decisions) {
		inc(m.decisions[i])
	}
}

func (m *metrics) deny(r reason) {
	if m != nil && r < numReasons {
		inc(m.denied[r])
	}
}
