package host

import (
	"bufio"
	"fmt"
	"io"
	"math"
	"regexp"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
)

// Metric types and id layout (cpp-host include/proxy-wasm/wasm.h: kMetricTypeMask = 0x3,
// kMetricIdIncrement = 0x4; first ids 4, 5, 6).
const (
	metricCounter   = 0
	metricGauge     = 1
	metricHistogram = 2
	metricTypeMask  = 0x3
	metricIDStep    = 0x4
)

// envoyHistogramBuckets are Envoy's default histogram bucket bounds (source/common/stats/histogram_impl.cc).
var envoyHistogramBuckets = []float64{0.5, 1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000, 300000, 600000, 1800000, 3600000}

type metric struct {
	name  string // guest name (without the wasmcustom. namespace)
	typ   int
	value atomic.Int64 // counter (as uint64 bits) or gauge: updated without Metrics.mu
	// histogram, guarded by Metrics.mu
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

// Metrics is a registry of guest-defined (proxy_define_metric) and host metrics, shared by all VMs
// of the plugins that use it (Envoy: custom stats live in one scope common to all worker VMs).
// It is safe for concurrent use.
type Metrics struct {
	mu      sync.Mutex
	guest   map[string]*metric                   // key: type + "/" + name
	host    map[string]map[string]*atomic.Uint64 // name → plugin → count, exported from registration on
	ordered []*metric
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
func (m *Metrics) SetHelp(name, help string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.help == nil {
		m.help = map[string]string{}
	}
	m.help[name] = help
}

// writeHelp writes the HELP line of family n when one is known (m.help, then the host's own).
func (m *Metrics) writeHelp(w io.Writer, n string, help map[string]string) {
	h, ok := help[n]
	if !ok {
		h, ok = hostMetricHelp[n]
	}
	if ok {
		h = strings.ReplaceAll(strings.ReplaceAll(h, `\`, `\\`), "\n", `\n`)
		fmt.Fprintf(w, "# HELP %s %s\n", n, h)
	}
}

// TagSpecifier is one of Envoy's stats tag extractors
// (envoy.config.metrics.v3.TagSpecifier with a regex; source/common/stats/tag_extractor_impl.cc
// TagExtractorStdRegexImpl::extractTag): the regex is searched in the stat name, its first capture
// group is removed from the name and its second capture group becomes the value of tag Name.
type TagSpecifier struct {
	Name  string
	Regex *regexp.Regexp
}

// IstioExtraStatTag returns the extractor Istio generates for a meshConfig
// defaultConfig.extraStatTags entry (pkg/bootstrap/config.go): regex
// "(NAME=\.=(.*?);\.;)", matching the "NAME=.=VALUE;.;" segments a proxy-wasm
// filter writes into its metric names.
func IstioExtraStatTag(name string) TagSpecifier {
	return TagSpecifier{Name: name, Regex: regexp.MustCompile("(" + regexp.QuoteMeta(name) + `=\.=(.*?);\.;)`)}
}

// NewMetrics returns an empty registry. The tag extractors shape the Prometheus exposition only:
// names given to Get are always the guest's full metric names.
func NewMetrics(tags ...TagSpecifier) *Metrics {
	return &Metrics{guest: map[string]*metric{}, host: map[string]map[string]*atomic.Uint64{}, tags: tags}
}

// extractTags applies the tag extractors in order, as Envoy's TagProducerImpl::produceTags does,
// returning the name without the extracted segments and the tags found.
func (m *Metrics) extractTags(name string) (string, [][2]string) {
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

func (m *Metrics) define(typ int, name string) *metric {
	m.mu.Lock()
	defer m.mu.Unlock()
	key := fmt.Sprintf("%d/%s", typ, name)
	if x, ok := m.guest[key]; ok {
		return x
	}
	x := &metric{name: name, typ: typ}
	if typ == metricHistogram {
		x.buckets = make([]uint64, len(envoyHistogramBuckets))
	}
	m.guest[key] = x
	m.ordered = append(m.ordered, x)
	return x
}

// hostCounter returns the counter of host metric name for plugin, creating it at 0, so a plugin can
// resolve its counters once and increment them without a lock or a lookup. A registered counter is
// exported from then on, also at 0 (a missing series would read as "never happened").
func (m *Metrics) hostCounter(name, plugin string) *atomic.Uint64 {
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
func (m *Metrics) Get(name string) (uint64, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, typ := range []int{metricCounter, metricGauge, metricHistogram} {
		if x, ok := m.guest[fmt.Sprintf("%d/%s", typ, name)]; ok {
			if typ == metricHistogram {
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

func promLabelValue(s string) string {
	s = strings.ReplaceAll(s, `\`, `\\`)
	s = strings.ReplaceAll(s, "\n", `\n`)
	return strings.ReplaceAll(s, `"`, `\"`)
}

// WritePrometheus writes all metrics in the Prometheus text exposition format: guest counters and
// gauges as `name value`, histograms with Envoy's default buckets, host metrics with a plugin label.
func (m *Metrics) WritePrometheus(w io.Writer) error {
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
		labels string
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
		f.series = append(f.series, series{labels: promLabels(tags), m: x})
	}
	sort.Strings(names)
	sort.Strings(hostNames)
	bw := bufio.NewWriter(w)
	for _, key := range names {
		f := families[key]
		sort.Slice(f.series, func(i, j int) bool { return f.series[i].labels < f.series[j].labels })
		n := f.name
		m.writeHelp(bw, n, help)
		switch f.typ {
		case metricCounter:
			fmt.Fprintf(bw, "# TYPE %s counter\n", n)
		case metricGauge:
			fmt.Fprintf(bw, "# TYPE %s gauge\n", n)
		case metricHistogram:
			fmt.Fprintf(bw, "# TYPE %s histogram\n", n)
		}
		for _, s := range f.series {
			x := s.m
			switch x.typ {
			case metricCounter:
				fmt.Fprintf(bw, "%s%s %d\n", n, wrapLabels(s.labels), uint64(x.value))
			case metricGauge:
				fmt.Fprintf(bw, "%s%s %d\n", n, wrapLabels(s.labels), x.value)
			case metricHistogram:
				var cum uint64
				for i, le := range envoyHistogramBuckets {
					cum += x.buckets[i]
					fmt.Fprintf(bw, "%s_bucket%s %d\n", n, wrapLabels(joinLabels(s.labels, `le="`+formatFloat(le)+`"`)), cum)
				}
				fmt.Fprintf(bw, "%s_bucket%s %d\n%s_sum%s %s\n%s_count%s %d\n", n, wrapLabels(joinLabels(s.labels, `le="+Inf"`)), x.count,
					n, wrapLabels(s.labels), formatFloat(x.sum), n, wrapLabels(s.labels), x.count)
			}
		}
	}
	for _, name := range hostNames {
		n := promName(name)
		m.writeHelp(bw, n, help)
		fmt.Fprintf(bw, "# TYPE %s counter\n", n)
		plugins := make([]string, 0, len(host[name]))
		for p := range host[name] {
			plugins = append(plugins, p)
		}
		sort.Strings(plugins)
		for _, p := range plugins {
			fmt.Fprintf(bw, "%s{plugin=\"%s\"} %d\n", n, promLabelValue(p), host[name][p])
		}
	}
	return bw.Flush()
}

// promLabels renders extracted tags as Prometheus label pairs (without braces); tag names are
// sanitized like metric names.
func promLabels(tags [][2]string) string {
	var b strings.Builder
	for i, t := range tags {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(promName(t[0]))
		b.WriteString(`="`)
		b.WriteString(promLabelValue(t[1]))
		b.WriteByte('"')
	}
	return b.String()
}

func joinLabels(a, b string) string {
	if a == "" {
		return b
	}
	return a + "," + b
}

func wrapLabels(l string) string {
	if l == "" {
		return ""
	}
	return "{" + l + "}"
}

func formatFloat(f float64) string {
	if f == math.Trunc(f) && math.Abs(f) < 1e15 {
		return fmt.Sprintf("%d", int64(f))
	}
	return fmt.Sprintf("%g", f)
}

// envDefineMetric is Envoy Context::defineMetric + cpp-host exports.cc define_metric: type > 2 ⇒
// BAD_ARGUMENT; every call returns a fresh id (type in the low 2 bits) for the same underlying stat.
func envDefineMetric(v *vm, s []uint64) {
	typ, namePtr, nameLen, idPtr := u32(s, 0), u32(s, 1), u32(s, 2), u32(s, 3)
	name, ok := v.readString(namePtr, nameLen)
	if !ok {
		ret(s, statusInvalidMemoryAccess)
		return
	}
	var id uint32
	switch typ {
	case metricCounter:
		v.nextCounter += metricIDStep
		id = v.nextCounter
	case metricGauge:
		v.nextGauge += metricIDStep
		id = v.nextGauge
	case metricHistogram:
		v.nextHisto += metricIDStep
		id = v.nextHisto
	default:
		ret(s, statusBadArgument)
		return
	}
	v.setMetricID(id, v.p.metrics.define(int(typ), name))
	if !v.mem.WriteUint32Le(idPtr, id) {
		ret(s, statusInvalidMemoryAccess)
		return
	}
	ret(s, statusOK)
}

// envIncrementMetric is Envoy Context::incrementMetric: counter delta ≤ 0 ⇒ BAD_ARGUMENT; gauge
// adds/subtracts; histogram ⇒ BAD_ARGUMENT; unknown id ⇒ NOT_FOUND.
func envIncrementMetric(v *vm, s []uint64) {
	x := v.metricByID(u32(s, 0))
	if x == nil {
		ret(s, statusNotFound)
		return
	}
	delta := int64(s[1])
	switch x.typ {
	case metricCounter:
		if delta <= 0 {
			ret(s, statusBadArgument)
			return
		}
		x.value.Add(delta)
	case metricGauge:
		x.value.Add(delta)
	default:
		ret(s, statusBadArgument)
		return
	}
	ret(s, statusOK)
}

// envRecordMetric is Envoy Context::recordMetric: counter add, gauge set, histogram record.
func envRecordMetric(v *vm, s []uint64) {
	x := v.metricByID(u32(s, 0))
	if x == nil {
		ret(s, statusNotFound)
		return
	}
	val := s[1]
	switch x.typ {
	case metricCounter:
		x.value.Add(int64(val))
	case metricGauge:
		x.value.Store(int64(val))
	case metricHistogram:
		m := v.p.metrics
		m.mu.Lock()
		defer m.mu.Unlock()
		f := float64(val)
		for i, le := range envoyHistogramBuckets {
			if f <= le {
				x.buckets[i]++
				break
			}
		}
		x.count++
		x.sum += f
	}
	ret(s, statusOK)
}

// envGetMetric is Envoy Context::getMetric: histogram ⇒ BAD_ARGUMENT; unknown ⇒ NOT_FOUND.
func envGetMetric(v *vm, s []uint64) {
	x := v.metricByID(u32(s, 0))
	if x == nil {
		ret(s, statusNotFound)
		return
	}
	typ, val := x.typ, x.value.Load()
	if typ == metricHistogram {
		ret(s, statusBadArgument)
		return
	}
	if !v.mem.WriteUint64Le(u32(s, 1), uint64(val)) {
		ret(s, statusInvalidMemoryAccess)
		return
	}
	ret(s, statusOK)
}

// setMetricID binds a metric id of this VM to its stat (ids are dense: type in the low 2 bits, step
// 4 per type, so a slice indexed by id wastes at most a quarter of its entries).
func (v *vm) setMetricID(id uint32, x *metric) {
	for uint64(len(v.metricIDs)) <= uint64(id) {
		v.metricIDs = append(v.metricIDs, nil)
	}
	v.metricIDs[id] = x
}

// metricByID returns the stat bound to id, or nil (NOT_FOUND).
func (v *vm) metricByID(id uint32) *metric {
	if uint64(id) < uint64(len(v.metricIDs)) {
		return v.metricIDs[id]
	}
	return nil
}
