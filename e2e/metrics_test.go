package e2e

import (
	"fmt"
	"io"
	"math"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// sample is one line of the Prometheus text exposition format.
type sample struct {
	name   string
	labels map[string]string
	value  float64
}

// metricSet is a parsed /metrics page.
type metricSet []sample

// parseMetrics parses the Prometheus text exposition format (version 0.0.4): comment lines are skipped, each other
// line is NAME[{k="v",...}] VALUE [TIMESTAMP]. Label values may contain escaped \" \\ \n and commas.
func parseMetrics(text string) (metricSet, error) {
	var out metricSet
	for n, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		s, err := parseSample(line)
		if err != nil {
			return nil, fmt.Errorf("metrics line %d %q: %w", n+1, line, err)
		}
		out = append(out, s)
	}
	return out, nil
}

func parseSample(line string) (sample, error) {
	s := sample{labels: map[string]string{}}
	i := strings.IndexAny(line, "{ \t")
	if i <= 0 {
		return s, fmt.Errorf("no value after the metric name")
	}
	s.name = line[:i]
	rest := line[i:]
	if rest[0] == '{' {
		rest = rest[1:]
		for {
			rest = strings.TrimLeft(rest, " ,")
			if strings.HasPrefix(rest, "}") {
				rest = rest[1:]
				break
			}
			eq := strings.IndexByte(rest, '=')
			if eq <= 0 || len(rest) < eq+2 || rest[eq+1] != '"' {
				return s, fmt.Errorf("label without =\"value\" in %q", rest)
			}
			key := strings.TrimSpace(rest[:eq])
			rest = rest[eq+2:]
			var val strings.Builder
			closed := false
			for j := 0; j < len(rest); j++ {
				c := rest[j]
				if c == '\\' && j+1 < len(rest) {
					j++
					switch rest[j] {
					case 'n':
						val.WriteByte('\n')
					default:
						val.WriteByte(rest[j])
					}
					continue
				}
				if c == '"' {
					rest = rest[j+1:]
					closed = true
					break
				}
				val.WriteByte(c)
			}
			if !closed {
				return s, fmt.Errorf("unterminated value of label %q", key)
			}
			s.labels[key] = val.String()
		}
	}
	fields := strings.Fields(rest)
	if len(fields) == 0 {
		return s, fmt.Errorf("no value")
	}
	v, err := strconv.ParseFloat(fields[0], 64)
	if err != nil {
		return s, fmt.Errorf("value %q: %w", fields[0], err)
	}
	s.value = v
	return s, nil
}

// normMetric maps every character outside [a-z0-9] to '_' (lower-cased), the way Prometheus exporters sanitize
// names and flat stat names embed label values.
func normMetric(s string) string {
	b := []byte(strings.ToLower(s))
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9') {
			b[i] = '_'
		}
	}
	return string(b)
}

// get returns the sum of every sample of metric name whose labels include labels (given as key, value pairs; an
// odd trailing key is ignored). The renderings accepted, because hosts differ (the local gateway, Envoy with or
// without tag extractors) and the exporter's is not final:
//   - labelled: name{k="v",...}, possibly behind a host prefix such as envoy_ or envoy_wasmcustom_;
//   - Istio-style encoded names (sdk/metricname): k=.=v;.;name, decoded into labels;
//   - flat: label values (optionally with their keys) joined to the name with any separator, before or after it,
//     e.g. dicomgate_denied_total_reason_policy or envoy_reason___policy____dicomgate_denied_total.
//
// With no labels asked for, flat samples carrying label values (breakdowns) are summed only when the metric has
// no sample under its exact name, so a total exported next to its breakdowns is not counted twice.
//
// found reports whether any sample matched: a series that is not exported at all is missing, never zero.
func (m metricSet) get(name string, labels ...string) (v float64, found bool) {
	want := normMetric(name)
	var exactSum, flatSum float64
	anyExact, exactFound, flatFound := false, false, false
	for _, s := range m {
		sname, slabels := decodeIstioName(s.name, s.labels)
		pre, rest, ok := splitAroundName(normMetric(sname), want)
		if !ok {
			continue
		}
		extra := strings.Trim(stripHostPrefix(pre)+"_"+rest, "_")
		if extra == "" {
			anyExact = true
			if labelsMatch(slabels, labels) {
				exactSum += s.value
				exactFound = true
			}
			continue
		}
		tokens := "_" + extra + "_"
		all := true
		for i := 0; i+1 < len(labels); i += 2 {
			if !strings.Contains(tokens, "_"+normMetric(labels[i+1])+"_") {
				all = false
				break
			}
		}
		if all {
			flatSum += s.value
			flatFound = true
		}
	}
	if len(labels) == 0 && anyExact {
		return exactSum, exactFound
	}
	return exactSum + flatSum, exactFound || flatFound
}

// decodeIstioName strips leading "KEY=.=VALUE;.;" segments from name and adds them to a copy of labels.
func decodeIstioName(name string, labels map[string]string) (string, map[string]string) {
	if !strings.Contains(name, "=.=") {
		return name, labels
	}
	out := map[string]string{}
	for k, v := range labels {
		out[k] = v
	}
	for {
		eq := strings.Index(name, "=.=")
		end := strings.Index(name, ";.;")
		if eq <= 0 || end < eq {
			return name, out
		}
		out[name[:eq]] = name[eq+3 : end]
		name = name[end+3:]
	}
}

// hostPrefixes are name prefixes hosts put in front of a plugin's metrics (Envoy: envoy_, wasmcustom_).
var hostPrefixes = []string{"envoy_", "wasmcustom_", "wasm_", "istio_"}

func stripHostPrefix(pre string) string {
	for changed := true; changed; {
		changed = false
		for _, p := range hostPrefixes {
			if strings.HasPrefix(pre, p) {
				pre, changed = pre[len(p):], true
			}
		}
	}
	return pre
}

// splitAroundName finds want in sn at token boundaries and returns what precedes it (empty or ending in '_') and
// what follows it (empty or starting with '_').
func splitAroundName(sn, want string) (pre, rest string, ok bool) {
	for off := 0; off <= len(sn)-len(want); {
		i := strings.Index(sn[off:], want)
		if i < 0 {
			return "", "", false
		}
		i += off
		rest := sn[i+len(want):]
		if (i == 0 || sn[i-1] == '_') && (rest == "" || rest[0] == '_') {
			return sn[:i], rest, true
		}
		off = i + 1
	}
	return "", "", false
}

func labelsMatch(have map[string]string, want []string) bool {
	for i := 0; i+1 < len(want); i += 2 {
		if have[want[i]] != want[i+1] {
			return false
		}
	}
	return true
}

// names lists the metric names present (for failure messages).
func (m metricSet) names() string {
	seen := map[string]bool{}
	for _, s := range m {
		seen[s.name] = true
	}
	var out []string
	for n := range seen {
		out = append(out, n)
	}
	sort.Strings(out)
	return strings.Join(out, ", ")
}

// diff renders the samples whose value changed from before to m (for failure messages).
func (m metricSet) diff(before metricSet) string {
	key := func(s sample) string {
		var ls []string
		for k, v := range s.labels {
			ls = append(ls, k+"="+strconv.Quote(v))
		}
		sort.Strings(ls)
		return s.name + "{" + strings.Join(ls, ",") + "}"
	}
	old := map[string]float64{}
	for _, s := range before {
		old[key(s)] = s.value
	}
	var out []string
	for _, s := range m {
		k := key(s)
		if o := old[k]; math.Abs(o-s.value) > 0 {
			out = append(out, fmt.Sprintf("%s %g -> %g", k, o, s.value))
		}
	}
	sort.Strings(out)
	if len(out) == 0 {
		return "(no metric changed)"
	}
	return strings.Join(out, "\n")
}

// scrape fetches and parses a /metrics page.
func scrape(url string) (metricSet, error) {
	resp, err := httpClient.Get(url)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: HTTP %d: %s", url, resp.StatusCode, b)
	}
	return parseMetrics(string(b))
}

// TestMetricsParser pins the tolerant metrics lookup the scenarios rely on, for both renderings.
func TestMetricsParser(t *testing.T) {
	const page = `# HELP dicomgate_denied_total Associations denied, by reason.
# TYPE dicomgate_denied_total counter
dicomgate_denied_total{reason="policy"} 3
dicomgate_denied_total{reason="timeout"} 1
dicomgate_decisions_total{action="route",rule="ct1-bound"} 2
dicomgate_decisions_total{rule="a,b \"q\"",action="deny"} 5 1700000000000
dicomgate_associations_total 7
envoy_dicomgate_dry_run_denies_total 4
dicomgate_denied_total_reason_eof 2
dicomgate_denied_total.reason.not_dicom 6
dicomgate_gateway_downstream_closes_total{reason="policy"} 9
reason=.=too_large;.;dicomgate_denied_total 8
action=.=route;.;rule=.=modality-b;.;dicomgate_decisions_total 11
envoy_reason___malformed____dicomgate_denied_total 12
envoy_wasmcustom_dicomgate_associations_total 100
reason___a___dicomgate_flat_only_total 2
dicomgate_flat_only_total_reason_b 3
`
	m, err := parseMetrics(page)
	require.NoError(t, err)
	cases := []struct {
		name   string
		labels []string
		want   float64
	}{
		{"dicomgate_denied_total", []string{"reason", "policy"}, 3},
		{"dicomgate_denied_total", []string{"reason", "timeout"}, 1},
		{"dicomgate_denied_total", []string{"reason", "eof"}, 2},
		{"dicomgate_denied_total", []string{"reason", "not_dicom"}, 6},
		{"dicomgate_denied_total", []string{"reason", "malformed"}, 12},
		{"dicomgate_denied_total", []string{"reason", "too_large"}, 8},

		{"dicomgate_denied_total", nil, 12}, // labelled and decoded samples; flat breakdowns would double count
		{"dicomgate_decisions_total", []string{"action", "route", "rule", "modality-b"}, 11},
		{"dicomgate_decisions_total", []string{"action", "route", "rule", "ct1-bound"}, 2},
		{"dicomgate_decisions_total", []string{"action", "deny", "rule", `a,b "q"`}, 5},
		{"dicomgate_decisions_total", []string{"action", "route"}, 13},
		{"dicomgate_associations_total", nil, 107},
		{"dicomgate_flat_only_total", nil, 5}, // only breakdowns exported: their sum
		{"dicomgate_flat_only_total", []string{"reason", "b"}, 3},
		{"dicomgate_dry_run_denies_total", nil, 4},
		{"dicomgate_gateway_downstream_closes_total", []string{"reason", "policy"}, 9},
	}
	var wrong []string
	for _, c := range cases {
		if got, found := m.get(c.name, c.labels...); got != c.want || !found {
			wrong = append(wrong, fmt.Sprintf("get(%s, %v) = %g, %v; want %g, true", c.name, c.labels, got, found, c.want))
		}
	}
	// A series nobody exports (a renamed metric, a label value never defined) is missing, not zero.
	for _, c := range []struct {
		name   string
		labels []string
	}{
		{"dicomgate_denied_total", []string{"reason", "internal"}},
		{"dicomgate_denials_total", nil},
		{"dicomgate_decisions_total", []string{"action", "allow"}},
	} {
		if got, found := m.get(c.name, c.labels...); found {
			wrong = append(wrong, fmt.Sprintf("get(%s, %v) = %g, found; want missing", c.name, c.labels, got))
		}
	}
	require.Empty(t, strings.Join(wrong, "\n"), "metric lookups")
	_, err = parseMetrics("dicomgate_x{reason=\"unterminated} 1\n")
	require.Error(t, err, "unterminated label value accepted")
	_, err = parseMetrics("dicomgate_x{reason=\"a\"} notanumber\n")
	require.Error(t, err, "non-numeric value accepted")
}
