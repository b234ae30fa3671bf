package host

import (
	"io"
	"regexp"

	"github.com/dicomgate/dicomgate/wasm/host/internal/metrics"
)

// Metrics is a registry of guest-defined (proxy_define_metric) and host metrics, shared by all VMs
// of the plugins that use it (Envoy: custom stats live in one scope common to all worker VMs).
// It is safe for concurrent use.
type Metrics struct{ r *metrics.Registry }

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
	ts := make([]metrics.TagSpecifier, len(tags))
	for i, t := range tags {
		ts[i] = metrics.TagSpecifier(t)
	}
	return &Metrics{r: metrics.New(ts...)}
}

// SetHelp sets the Prometheus HELP text of the metric family name (the exported name, after tag
// extraction, e.g. "dicomgate_denied_total"). proxy-wasm metrics carry no description, so the
// embedding program supplies it; a family without one is written without a HELP line.
func (m *Metrics) SetHelp(name, help string) { m.r.SetHelp(name, help) }

// Get returns the value of the counter or gauge the guest defined as name (e.g. "dicomgate.allowed"),
// or of a host metric by its Prometheus name (e.g. "wasm_host_vm_failures_total", summed over plugins).
// Gauges are returned as uint64(int64 value). Histograms return their sample count.
func (m *Metrics) Get(name string) (uint64, bool) { return m.r.Get(name) }

// WritePrometheus writes all metrics in the Prometheus text exposition format: guest counters and
// gauges as `name value`, histograms with Envoy's default buckets, host metrics with a plugin label.
func (m *Metrics) WritePrometheus(w io.Writer) error { return m.r.WritePrometheus(w) }
