// Package metricname is the metric naming convention shared by the dicomgate
// filter and every host that exports its metrics.
//
// proxy-wasm metrics have no labels, so the filter encodes them in the metric
// name the way Istio's stats extension did: each label is a segment
// "KEY=.=VALUE;.;" in front of the base name, e.g.
//
//	action=.=route;.;rule=.=ct;.;dicomgate_decisions_total
//
// Envoy turns those segments into Prometheus labels when its bootstrap
// stats_config has a tag extractor per key with the regex
// "(KEY=\.=(.*?);\.;)" (Istio generates exactly that for
// meshConfig.defaultConfig.extraStatTags); the remaining base name is the
// metric name, so the series is exported as
// dicomgate_decisions_total{action="route",rule="ct"}. A host's Prometheus
// writer reproduces this with [Series].
package metricname

import "strings"

const (
	labelValueSep = "=.="
	labelEnd      = ";.;"
)

// Encode returns the proxy-wasm metric name for base with the given
// label key/value pairs (kv alternates key, value). Values are sanitized with
// [SanitizeLabelValue]; an odd trailing key is ignored.
func Encode(base string, kv ...string) string {
	var b strings.Builder
	for i := 0; i+1 < len(kv); i += 2 {
		b.WriteString(kv[i])
		b.WriteString(labelValueSep)
		b.WriteString(SanitizeLabelValue(kv[i+1]))
		b.WriteString(labelEnd)
	}
	b.WriteString(base)
	return b.String()
}

// SanitizeLabelValue maps every byte outside [A-Za-z0-9_.:/-] to '_' so that a
// value taken from configuration can never break the "=.=" / ";.;" framing.
// The empty value becomes "none".
func SanitizeLabelValue(v string) string {
	if v == "" {
		return "none"
	}
	ok := true
	for i := 0; i < len(v); i++ {
		if !labelByteOK(v[i]) {
			ok = false
			break
		}
	}
	if ok {
		return v
	}
	b := []byte(v)
	for i := range b {
		if !labelByteOK(b[i]) {
			b[i] = '_'
		}
	}
	return string(b)
}

func labelByteOK(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
		c == '_' || c == '-' || c == '.' || c == ':' || c == '/'
}

// Split is the inverse of [Encode]: it strips every
// leading "KEY=.=VALUE;.;" segment and returns the base name and the labels
// in order. A name without segments is returned unchanged with no labels.
func Split(name string) (base string, labels [][2]string) {
	for {
		eq := strings.Index(name, labelValueSep)
		if eq <= 0 {
			return name, labels
		}
		end := strings.Index(name[eq+len(labelValueSep):], labelEnd)
		if end < 0 {
			return name, labels
		}
		key := name[:eq]
		if strings.ContainsAny(key, ";=") {
			return name, labels
		}
		val := name[eq+len(labelValueSep) : eq+len(labelValueSep)+end]
		labels = append(labels, [2]string{key, val})
		name = name[eq+len(labelValueSep)+end+len(labelEnd):]
	}
}

// Series renders a proxy-wasm metric name as the Prometheus series Envoy
// exports for it, e.g. `dicomgate_decisions_total{action="route",rule="ct"}`.
func Series(name string) string {
	base, labels := Split(name)
	if len(labels) == 0 {
		return base
	}
	var b strings.Builder
	b.WriteString(base)
	b.WriteByte('{')
	for i, l := range labels {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(l[0])
		b.WriteString(`="`)
		b.WriteString(l[1])
		b.WriteByte('"')
	}
	b.WriteByte('}')
	return b.String()
}

// Help returns the Prometheus HELP texts of the dicomgate filter's metric families (the exported
// names, after tag extraction). proxy-wasm metrics carry no description, so a host that exports
// them (dicomgate serve) adds these. A function rather than a package-level map: a map variable is
// built by the package's init and so linked into every importer, the filter module included
// (2.2 KB over its 3 MiB budget); a function is linked only where it is called.
func Help() map[string]string {
	return map[string]string{
		"dicomgate_associations_total":   "Association attempts: connections that sent at least one byte, or that the filter closed.",
		"dicomgate_decisions_total":      "Enforced policy decisions, by action and rule (rule=\"default\" for the default action).",
		"dicomgate_denied_total":         "Connections the filter closed, and policy denials sent to the rejector, by reason (policy, malformed, not_dicom, tls_on_plain_port, too_large, timeout, eof, internal).",
		"dicomgate_dry_run_denies_total": "Associations a dry-run policy would have denied (let through).",
		"dicomgate_rejected_total":       "Policy denials answered with an A-ASSOCIATE-RJ by the rejector (also counted in dicomgate_denied_total{reason=\"policy\"}).",
	}
}
