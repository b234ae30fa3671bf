// Package metrics is the registry of a plugin's metrics: the stats a guest defines with
// proxy_define_metric (counters, gauges, histograms with Envoy's default buckets), the host's own
// per-plugin counters, each VM's metric ids, and the Prometheus text exposition of all of them.
//
// It follows proxy-wasm-cpp-host include/proxy-wasm/wasm.h (metric ids: the type in the low 2 bits,
// a step of 4 per definition), Envoy source/extensions/common/wasm/context.cc (Context::defineMetric,
// incrementMetric, recordMetric, getMetric: one stat per name shared by every VM), Envoy's tag
// extraction (source/common/stats/tag_extractor_impl.cc) and its Prometheus exporter
// (source/server/admin/prometheus_stats.cc: custom namespaces without the envoy_ prefix, one # TYPE
// line per tag-extracted name). The proxy_* imports over it (status codes, guest memory) are in
// package abi.
package metrics

import (
	"fmt"
	"io"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/dicomgate/dicomgate/wasm/host/promtext"
)

// Metric types and id layout (cpp-host include/proxy-wasm/wasm.h: kMetricTypeMask = 0x3,
// kMetricIdIncrement = 0x4; first ids 4, 5, 6).
const (
	Counter   = 0 // proxy-wasm MetricType Counter
	Gauge     = 1 // proxy-wasm MetricType Gauge
	Histogram = 2 // proxy-wasm MetricType Histogram
	idStep    = 0x4
)

// envoyHistogramBuckets are Envoy's default histogram bucket bounds (source/common/stats/histogram_impl.cc).
var envoyHistogramBuckets = []float64{0.5, 1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000, 300000, 600000, 1800000, 3600000}

// Metric is one stat defined by a guest: every VM that defines the same type and name gets the same
// Metric.
type Metric struct {
	reg   *Registry
	name  string // guest name (without the wasmcustom. namespace)
	typ   int
	value atomic.Int64 // counter (as uint64 bits) or gauge: updated without Registry.mu
	// histogram, guarded by Registry.mu
	buckets []uint64
	count   uint64
	sum     float64
}

// metricSnapshot is a copy of a metric for the exposition.
type metricSnapshot struct {
	name    string
	typ     int
	value   int64
	buckets []uint64
	count   uint64
	sum     float64
}

// Registry holds guest-defined (proxy_define_metric) and host metrics, shared by all VMs of the
// plugins that use it (Envoy: custom stats live in one scope common to all worker VMs). It is safe
// for concurrent use.
type Registry struct {
	mu      sync.Mutex
	guest   map[string]*Metric                   // key: type + "/" + name
	host    map[string]map[string]*atomic.Uint64 // name → plugin → count, exported from registration on
	ordered []*Metric
	tags    []TagSpecifier
	help    map[string]string // Prometheus family name → HELP text
}

// hostMetricHelp are the HELP texts of the host's own counters.
var hostMetricHelp = map[string]string{
	"wasm_host_connections_total":             "Downstream connections the plugin's filter chain was created for.",
	"wasm_host_connections_fail_open_total":   "Connections passed through without the filter because its VM had failed (FAIL_OPEN).",
	"wasm_host_connections_fail_closed_total": "Connections closed because the plugin's VM had failed (FAIL_CLOSED).",
	"wasm_host_vm_failures_total":             "Times a VM of the plugin trapped and was failed for good.",
	"wasm_host_vm_reloads_total":              "Times a failed VM was replaced by a new one (FAIL_RELOAD).",
}

// SetHelp sets the Prometheus HELP text of the metric family name (the exported name, after tag
// extraction, e.g. "dicomgate_denied_total"). proxy-wasm metrics carry no description, so the
// embedding program supplies it; a family without one is written without a HELP line.
func (m *Registry) SetHelp(name, help string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.help == nil {
		m.help = map[string]string{}
	}
	m.help[name] = help
}

// helpOf returns the HELP text of family n: the one set with SetHelp (help is a copy of m.help),
// else the host's own, else "" (no HELP line).
func helpOf(n string, help map[string]string) string {
	if h, ok := help[n]; ok {
		return h
	}
	return hostMetricHelp[n]
}

// TagSpecifier is one of Envoy's stats tag extractors
// (envoy.config.metrics.v3.TagSpecifier with a regex; source/common/stats/tag_extractor_impl.cc
// TagExtractorStdRegexImpl::extractTag): the regex is searched in the stat name, its first capture
// group is removed from the name and its second capture group becomes the value of tag Name.
type TagSpecifier struct {
	Name  string
	Regex *regexp.Regexp
}

// New returns an empty registry. The tag extractors shape the Prometheus exposition only: names
// given to Get are always the guest's full metric names.
func New(tags ...TagSpecifier) *Registry {
	return &Registry{guest: map[string]*Metric{}, host: map[string]map[string]*atomic.Uint64{}, tags: tags}
}

// extractTags applies the tag extractors in order, as Envoy's TagProducerImpl::produceTags does,
// returning the name without the extracted segments and the tags found.
func (m *Registry) extractTags(name string) (string, [][2]string) {
	var tags [][2]string
	for _, t := range m.tags {
		loc := t.Regex.FindStringSubmatchIndex(name)
		if len(loc) < 6 || loc[2] < 0 || loc[4] < 0 {
			continue
		}
		tags = append(tags, [2]string{t.Name, name[loc[4]:loc[5]]})
		name = name[:loc[2]] + name[loc[3]:]
	}
	return name, tags
}

// define returns the stat of type typ named name, creating it on first use.
func (m *Registry) define(typ int, name string) *Metric {
	m.mu.Lock()
	defer m.mu.Unlock()
	key := fmt.Sprintf("%d/%s", typ, name)
	if x, ok := m.guest[key]; ok {
		return x
	}
	x := &Metric{reg: m, name: name, typ: typ}
	if typ == Histogram {
		x.buckets = make([]uint64, len(envoyHistogramBuckets))
	}
	m.guest[key] = x
	m.ordered = append(m.ordered, x)
	return x
}

// HostCounter returns the counter of host metric name for plugin, creating it at 0, so a plugin can
// resolve its counters once and increment them without a lock or a lookup. A registered counter is
// exported from then on, also at 0 (a missing series would read as "never happened").
func (m *Registry) HostCounter(name, plugin string) *atomic.Uint64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	byPlugin := m.host[name]
	if byPlugin == nil {
		byPlugin = map[string]*atomic.Uint64{}
		m.host[name] = byPlugin
	}
	c := byPlugin[plugin]
	if c == nil {
		c = new(atomic.Uint64)
		byPlugin[plugin] = c
	}
	return c
}

// Get returns the value of the counter or gauge the guest defined as name (e.g. "dicomgate.allowed"),
// or of a host metric by its Prometheus name (e.g. "wasm_host_vm_failures_total", summed over plugins).
// Gauges are returned as uint64(int64 value). Histograms return their sample count.
func (m *Registry) Get(name string) (uint64, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, typ := range []int{Counter, Gauge, Histogram} {
		if x, ok := m.guest[fmt.Sprintf("%d/%s", typ, name)]; ok {
			if typ == Histogram {
				return x.count, true
			}
			return uint64(x.value.Load()), true
		}
	}
	var sum uint64
	counted := false
	for _, c := range m.host[name] {
		sum += c.Load()
		counted = true
	}
	return sum, counted
}

// promName is Envoy's Prometheus name sanitizing (source/server/admin/prometheus_stats.cc): the
// wasmcustom namespace is stripped, there is no envoy_ prefix for custom namespaces, and every
// character outside [a-zA-Z0-9_] becomes '_' (a leading digit gets a '_' prefix).
func promName(name string) string {
	var b strings.Builder
	for i, r := range name {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r == '_':
			b.WriteRune(r)
		case r >= '0' && r <= '9':
			if i == 0 {
				b.WriteByte('_')
			}
			b.WriteRune(r)
		default:
			b.WriteByte('_')
		}
	}
	return b.String()
}

// WritePrometheus writes all metrics in the Prometheus text exposition format: guest counters and
// gauges as `name value`, histograms with Envoy's default buckets, host metrics with a plugin label.
func (m *Registry) WritePrometheus(w io.Writer) error {
	m.mu.Lock()
	guest := make([]metricSnapshot, 0, len(m.ordered))
	for _, x := range m.ordered {
		guest = append(guest, metricSnapshot{name: x.name, typ: x.typ, value: x.value.Load(),
			buckets: append([]uint64(nil), x.buckets...), count: x.count, sum: x.sum})
	}
	hostNames := make([]string, 0, len(m.host))
	host := map[string]map[string]uint64{}
	for n, byPlugin := range m.host {
		cp := map[string]uint64{}
		for p, c := range byPlugin {
			cp[p] = c.Load()
		}
		if len(cp) > 0 {
			hostNames = append(hostNames, n)
			host[n] = cp
		}
	}
	help := make(map[string]string, len(m.help))
	for k, v := range m.help {
		help[k] = v
	}
	m.mu.Unlock()

	// Envoy's Prometheus exporter (source/server/admin/prometheus_stats.cc) groups every series of
	// one tag-extracted name under a single "# TYPE" line.
	type series struct {
		labels []promtext.Label
		key    string // the rendered labels: series are written in its order
		m      metricSnapshot
	}
	type family struct {
		name   string
		typ    int
		series []series
	}
	families := map[string]*family{}
	var names []string
	for _, x := range guest {
		base, tags := m.extractTags(x.name)
		n := promName(base)
		key := fmt.Sprintf("%d/%s", x.typ, n)
		f := families[key]
		if f == nil {
			f = &family{name: n, typ: x.typ}
			families[key] = f
			names = append(names, key)
		}
		labels := promLabels(tags)
		f.series = append(f.series, series{labels: labels, key: promtext.FormatLabels(labels), m: x})
	}
	sort.Strings(names)
	sort.Strings(hostNames)
	pw := promtext.NewWriter(w)
	for _, key := range names {
		f := families[key]
		sort.Slice(f.series, func(i, j int) bool { return f.series[i].key < f.series[j].key })
		n := f.name
		switch f.typ {
		case Counter:
			pw.Family(n, promtext.Counter, helpOf(n, help))
		case Gauge:
			pw.Family(n, promtext.Gauge, helpOf(n, help))
		case Histogram:
			pw.Family(n, promtext.Histogram, helpOf(n, help))
		}
		for _, s := range f.series {
			x := s.m
			switch x.typ {
			case Counter:
				pw.Sample(n, s.labels, strconv.FormatUint(uint64(x.value), 10))
			case Gauge:
				pw.Sample(n, s.labels, strconv.FormatInt(int64(x.value), 10))
			case Histogram:
				var cum uint64
				le := append(s.labels[:len(s.labels):len(s.labels)], promtext.Label{Name: "le"})
				for i, bound := range envoyHistogramBuckets {
					cum += x.buckets[i]
					le[len(le)-1].Value = promtext.FormatFloat(bound)
					pw.Sample(n+"_bucket", le, strconv.FormatUint(cum, 10))
				}
				le[len(le)-1].Value = "+Inf"
				pw.Sample(n+"_bucket", le, strconv.FormatUint(x.count, 10))
				pw.Sample(n+"_sum", s.labels, promtext.FormatFloat(x.sum))
				pw.Sample(n+"_count", s.labels, strconv.FormatUint(x.count, 10))
			}
		}
	}
	for _, name := range hostNames {
		n := promName(name)
		pw.Family(n, promtext.Counter, helpOf(n, help))
		plugins := make([]string, 0, len(host[name]))
		for p := range host[name] {
			plugins = append(plugins, p)
		}
		sort.Strings(plugins)
		for _, p := range plugins {
			pw.Sample(n, []promtext.Label{{Name: "plugin", Value: p}}, strconv.FormatUint(host[name][p], 10))
		}
	}
	return pw.Flush()
}

// promLabels turns extracted tags into label pairs; tag names are sanitized like metric names.
func promLabels(tags [][2]string) []promtext.Label {
	if len(tags) == 0 {
		return nil
	}
	labels := make([]promtext.Label, len(tags))
	for i, t := range tags {
		labels[i] = promtext.Label{Name: promName(t[0]), Value: t[1]}
	}
	return labels
}

// IDs is one VM's metric ids: each proxy_define_metric returns a fresh id for the type (the type in
// the low 2 bits, a step of 4: counters 4, 8, …, gauges 5, 9, …, histograms 6, 10, …; cpp-host
// wasm.h kMetricTypeMask, kMetricIdIncrement) bound to the one stat of that type and name. The zero
// value is ready to use. It is not safe for concurrent use (a VM is used by one worker at a time).
type IDs struct {
	byID []*Metric // indexed by id: ids are dense, a quarter of the entries at most stays nil
	n    [3]uint32 // definitions so far per type
}

// Define binds a new id of type typ to the stat name of r and returns it; ok is false for an
// unknown type (BAD_ARGUMENT).
func (ids *IDs) Define(r *Registry, typ uint32, name string) (id uint32, ok bool) {
	if typ > Histogram {
		return 0, false
	}
	ids.n[typ]++
	id = ids.n[typ]*idStep + typ
	for uint64(len(ids.byID)) <= uint64(id) {
		ids.byID = append(ids.byID, nil)
	}
	ids.byID[id] = r.define(int(typ), name)
	return id, true
}

// Lookup returns the stat bound to id, or nil (NOT_FOUND).
func (ids *IDs) Lookup(id uint32) *Metric {
	if uint64(id) < uint64(len(ids.byID)) {
		return ids.byID[id]
	}
	return nil
}

// Increment adds delta to a counter (delta must be > 0) or a gauge; false (BAD_ARGUMENT) for a
// counter with delta ≤ 0 or a histogram (Envoy Context::incrementMetric).
func (x *Metric) Increment(delta int64) bool {
	switch x.typ {
	case Counter:
		if delta <= 0 {
			return false
		}
		x.value.Add(delta)
	case Gauge:
		x.value.Add(delta)
	default:
		return false
	}
	return true
}

// Record adds v to a counter, sets a gauge to v, or records v in a histogram (Envoy
// Context::recordMetric).
func (x *Metric) Record(v uint64) {
	switch x.typ {
	case Counter:
		x.value.Add(int64(v))
	case Gauge:
		x.value.Store(int64(v))
	case Histogram:
		m := x.reg
		m.mu.Lock()
		defer m.mu.Unlock()
		f := float64(v)
		for i, le := range envoyHistogramBuckets {
			if f <= le {
				x.buckets[i]++
				break
			}
		}
		x.count++
		x.sum += f
	}
}

// Value returns a counter's or gauge's value; false (BAD_ARGUMENT) for a histogram (Envoy
// Context::getMetric).
func (x *Metric) Value() (uint64, bool) {
	if x.typ == Histogram {
		return 0, false
	}
	return uint64(x.value.Load()), true
}
