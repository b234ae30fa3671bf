package metrics

import (
	"bytes"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// Envoy source/common/stats/tag_extractor_impl.cc TagExtractorStdRegexImpl::extractTag with the
// regexes Istio generates for extraStatTags (pkg/bootstrap/config.go), exported by
// source/server/admin/prometheus_stats.cc with one TYPE line per tag-extracted name.
func TestTagExtractor_IstioExtraStatTags_PrometheusLabels(t *testing.T) {
	m := New(istioTag("action"), istioTag("rule"), istioTag("reason"))
	m.define(Counter, "action=.=route;.;rule=.=ct-to-pacs-a;.;dicomgate_decisions_total").value.Store(3)
	m.define(Counter, "action=.=deny;.;rule=.=default;.;dicomgate_decisions_total").value.Store(1)
	m.define(Counter, "reason=.=policy;.;dicomgate_denied_total").value.Store(1)
	m.define(Counter, "dicomgate_associations_total").value.Store(4)
	m.define(Counter, "other=.=x;.;untagged_total").value.Store(2)

	var buf bytes.Buffer
	require.NoError(t, m.WritePrometheus(&buf))
	out := buf.String()
	for _, want := range []string{
		"# TYPE dicomgate_decisions_total counter\n" +
			`dicomgate_decisions_total{action="deny",rule="default"} 1` + "\n" +
			`dicomgate_decisions_total{action="route",rule="ct-to-pacs-a"} 3` + "\n",
		"# TYPE dicomgate_denied_total counter\n" + `dicomgate_denied_total{reason="policy"} 1` + "\n",
		"# TYPE dicomgate_associations_total counter\ndicomgate_associations_total 4\n",
		// A segment without a configured extractor stays in the name, sanitized (Envoy does not
		// know the tag): exactly what a real gateway without extraStatTags would export.
		"other___x___untagged_total 2\n",
	} {
		require.Contains(t, out, want, "exposition lacks %q:\n%s", want, out)
	}
	require.Equal(t, 1, strings.Count(out, "# TYPE dicomgate_decisions_total "), "TYPE lines for dicomgate_decisions_total:\n%s", out)
	// Get keeps addressing the guest's own names.
	v, ok := m.Get("reason=.=policy;.;dicomgate_denied_total")
	require.True(t, ok, "Get of reason=.=policy;.;dicomgate_denied_total")
	require.Equal(t, uint64(1), v, "Get of reason=.=policy;.;dicomgate_denied_total")
}

// istioTag is the extractor Istio generates for an extraStatTags entry (host.IstioExtraStatTag).
func istioTag(name string) TagSpecifier {
	return TagSpecifier{Name: name, Regex: regexp.MustCompile("(" + regexp.QuoteMeta(name) + `=\.=(.*?);\.;)`)}
}
