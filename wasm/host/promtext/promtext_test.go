package promtext

import (
	"bytes"
	"errors"
	"flag"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

var update = flag.Bool("update", false, "rewrite testdata/exposition.golden from the current output")

// The text format 0.0.4 escapes a label value's backslash, double quote and line feed, and a HELP
// text's backslash and line feed (a double quote in HELP stays); everything else is written as is.
func TestEscape(t *testing.T) {
	for in, want := range map[string]string{
		``:                  ``,
		`plain-value.1`:     `plain-value.1`,
		`C:\dir`:            `C:\\dir`,
		`say "hi"`:          `say \"hi\"`,
		"two\nlines":        `two\nlines`,
		"\\\"\n":            `\\\"\n`,
		`already \\ and \n`: `already \\\\ and \\n`,
		"tab\tand ünïcode":  "tab\tand ünïcode",
	} {
		require.Equal(t, want, EscapeLabelValue(in), "EscapeLabelValue(%q)", in)
	}
	for in, want := range map[string]string{
		``:                 ``,
		`Bytes "sent".`:    `Bytes "sent".`,
		`a\b`:              `a\\b`,
		"line one\nline 2": `line one\nline 2`,
		"\\\n\"":           `\\\n"`,
	} {
		require.Equal(t, want, EscapeHelp(in), "EscapeHelp(%q)", in)
	}
}

// A sample's labels are written in the order given, each value escaped.
func TestFormatLabels(t *testing.T) {
	require.Equal(t, "", FormatLabels(nil))
	require.Equal(t, `b="2",a="1"`, FormatLabels([]Label{{"b", "2"}, {"a", "1"}}))
	require.Equal(t, `path="C:\\x",q="\"\n\"",nl="a\nb"`,
		FormatLabels([]Label{{"path", `C:\x`}, {"q", `"` + "\n" + `"`}, {"nl", "a\nb"}}))
}

func TestFormatFloat(t *testing.T) {
	for in, want := range map[float64]string{
		0: "0", 1: "1", -3: "-3", 0.5: "0.5", 2500: "2500", 3.6e6: "3600000", 1e15: "1e+15",
		0.1: "0.1", 1e-7: "1e-07", 12.25: "12.25", math.Inf(1): "+Inf", math.Inf(-1): "-Inf",
	} {
		require.Equal(t, want, FormatFloat(in), "FormatFloat(%v)", in)
	}
	require.Equal(t, "NaN", FormatFloat(math.NaN()))
}

// writeExample writes one family of every kind the project exports: a counter with HELP and
// escaped labels, a gauge without HELP, a histogram with its _bucket/_sum/_count lines.
func writeExample(w *Writer) {
	w.Family("dicomgate_gateway_downstream_closes_total", Counter, "Client connections the gateway closed, by reason (a \\ and a\nline feed).")
	w.Sample("dicomgate_gateway_downstream_closes_total", []Label{{"reason", "idle_timeout"}}, "3")
	w.Sample("dicomgate_gateway_downstream_closes_total", []Label{{"reason", `odd "reason"` + "\n" + `C:\x`}}, "0")
	w.Family("dicomgate_gateway_connections_active", Gauge, "")
	w.Sample("dicomgate_gateway_connections_active", nil, "-1")
	w.Family("tf_size", Histogram, `Sizes "seen".`)
	for _, le := range []float64{0.5, 10, math.Inf(1)} {
		w.Sample("tf_size_bucket", []Label{{"plugin", "ns.tf"}, {"le", FormatFloat(le)}}, "2")
	}
	w.Sample("tf_size_sum", []Label{{"plugin", "ns.tf"}}, FormatFloat(14))
	w.Sample("tf_size_count", []Label{{"plugin", "ns.tf"}}, "2")
}

// The whole exposition, byte for byte: HELP before TYPE before the samples, escaping in HELP and
// label values, no HELP line for a family without one.
func TestWriter_Golden(t *testing.T) {
	var buf bytes.Buffer
	w := NewWriter(&buf)
	writeExample(w)
	require.NoError(t, w.Flush())
	golden := filepath.Join("testdata", "exposition.golden")
	if *update {
		require.NoError(t, os.WriteFile(golden, buf.Bytes(), 0o644))
	}
	want, err := os.ReadFile(golden)
	require.NoError(t, err, "run go test ./wasm/host/promtext -run TestWriter_Golden -update to create it")
	require.Equal(t, string(want), buf.String(), "exposition differs from %s (if the change is intended, rerun with -update)", golden)
}

// errWriter fails every write.
type errWriter struct{}

func (errWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }

// The format's rules the Writer keeps: one TYPE line per family, samples only under their own
// family (a histogram's _bucket/_sum/_count, a summary's _sum/_count), valid names and types. The
// first violation is what Flush returns, it names the offender and the fix, and nothing after it
// is written.
func TestWriter_RejectsWhatTheFormatForbids(t *testing.T) {
	for _, tc := range []struct {
		name  string
		write func(*Writer)
		want  string
	}{
		{"sample before any family", func(w *Writer) { w.Sample("x_total", nil, "1") },
			`sample "x_total" written outside its family (the current family is ""); call Family("x_total", ...) before its samples`},
		{"sample of another family", func(w *Writer) {
			w.Family("a_total", Counter, "")
			w.Family("b_total", Counter, "")
			w.Sample("a_total", nil, "1")
		}, `sample "a_total" written outside its family (the current family is "b_total")`},
		{"family twice", func(w *Writer) {
			w.Family("a_total", Counter, "")
			w.Sample("a_total", nil, "1")
			w.Family("a_total", Counter, "")
		}, `metric family "a_total" written twice; write all its samples under one Family call`},
		{"_bucket of a counter", func(w *Writer) {
			w.Family("a", Counter, "")
			w.Sample("a_bucket", nil, "1")
		}, `sample "a_bucket" written outside its family`},
		{"_bucket of a summary", func(w *Writer) {
			w.Family("a", Summary, "")
			w.Sample("a_bucket", nil, "1")
		}, `sample "a_bucket" written outside its family`},
		{"prefix of another name", func(w *Writer) {
			w.Family("a", Histogram, "")
			w.Sample("a_buckets", nil, "1")
		}, `sample "a_buckets" written outside its family`},
		{"invalid metric name", func(w *Writer) { w.Family("dicomgate.denied", Counter, "") },
			`metric family name "dicomgate.denied" is not a valid Prometheus metric name`},
		{"metric name with a leading digit", func(w *Writer) { w.Family("1x", Counter, "") },
			`metric family name "1x" is not a valid Prometheus metric name`},
		{"invalid label name", func(w *Writer) {
			w.Family("a_total", Counter, "")
			w.Sample("a_total", []Label{{"rule-name", "x"}}, "1")
		}, `label name "rule-name", not a valid Prometheus label name`},
		{"label name with a colon", func(w *Writer) {
			w.Family("a_total", Counter, "")
			w.Sample("a_total", []Label{{"a:b", "x"}}, "1")
		}, `label name "a:b"`},
		{"unknown type", func(w *Writer) { w.Family("a", Type("meter"), "") },
			`metric family "a" has type "meter"; use one of counter, gauge, histogram, summary, untyped`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			w := NewWriter(&buf)
			tc.write(w)
			w.Family("after_total", Counter, "")
			w.Sample("after_total", nil, "1")
			err := w.Flush()
			require.ErrorContains(t, err, tc.want)
			require.True(t, strings.HasPrefix(err.Error(), "promtext: "), "error %q does not say where it comes from", err)
			require.NotContains(t, buf.String(), "after_total", "a line written after the first violation")
		})
	}
	// Every family kind and name form the project uses is accepted, as are colons in metric names.
	var buf bytes.Buffer
	w := NewWriter(&buf)
	writeExample(w)
	w.Family("job:requests:rate5m", Untyped, "")
	w.Sample("job:requests:rate5m", []Label{{"_tag0", "v"}}, "1")
	w.Family("rpc_seconds", Summary, "")
	w.Sample("rpc_seconds", []Label{{"quantile", "0.5"}}, "1")
	w.Sample("rpc_seconds_sum", nil, "1")
	w.Sample("rpc_seconds_count", nil, "1")
	require.NoError(t, w.Flush())
	// The underlying writer's error is returned.
	w = NewWriter(errWriter{})
	writeExample(w)
	require.EqualError(t, w.Flush(), "disk full")
}
