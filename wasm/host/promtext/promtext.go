// Package promtext writes the Prometheus text exposition format, version 0.0.4
// (https://prometheus.io/docs/instrumenting/exposition_formats/): one metric
// family at a time, its "# HELP" line (when it has a text), its "# TYPE" line,
// then its samples. It is the one writer of that format in the project: the
// host's metric registry (wasm/host Metrics.WritePrometheus) and the local
// gateway's own counters (gateway Metrics.WritePrometheus) both write through
// it, so they escape alike.
//
// Escaping follows the format: in a HELP text a backslash becomes `\\` and a
// line feed `\n`; in a label value a backslash, a double quote and a line feed
// become `\\`, `\"` and `\n`. Metric and label names are not escaped but
// checked (the format has no escape for them): a name outside
// [a-zA-Z_:][a-zA-Z0-9_:]* (label names: [a-zA-Z_][a-zA-Z0-9_]*) is an error.
//
// The Writer also keeps the format's ordering rules: every family is written
// once (one TYPE line per name), and a sample belongs to the family written
// last (for a histogram its _bucket, _sum and _count lines, for a summary its
// _sum and _count lines). The first violation is kept and returned by Flush;
// nothing after it is written.
package promtext

import (
	"bufio"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
)

// Type is a metric family's type, as written on its "# TYPE" line.
type Type string

// The types of the text format 0.0.4.
const (
	Counter   Type = "counter"
	Gauge     Type = "gauge"
	Histogram Type = "histogram"
	Summary   Type = "summary"
	Untyped   Type = "untyped"
)

// Label is one label pair of a sample. Value is escaped when written; Name
// must be a valid label name.
type Label struct {
	Name, Value string
}

// Writer writes metric families to an underlying writer, buffered: call Flush
// at the end. It is not safe for concurrent use.
type Writer struct {
	bw      *bufio.Writer
	err     error
	family  string          // name of the family written last
	typ     Type            // its type
	written map[string]bool // every family name written so far
	line    []byte          // the line being built, reused
}

// NewWriter returns a Writer that writes to w.
func NewWriter(w io.Writer) *Writer {
	return &Writer{bw: bufio.NewWriter(w), written: map[string]bool{}}
}

// Family starts the metric family name of type typ: its HELP line when help is
// not empty, then its TYPE line. The samples written next belong to it. A name
// written before, an invalid name or an unknown type is an error.
func (w *Writer) Family(name string, typ Type, help string) {
	if w.err != nil {
		return
	}
	switch {
	case !validMetricName(name):
		w.err = fmt.Errorf("promtext: metric family name %q is not a valid Prometheus metric name ([a-zA-Z_:][a-zA-Z0-9_:]*); sanitize it before writing", name)
		return
	case w.written[name]:
		w.err = fmt.Errorf("promtext: metric family %q written twice; write all its samples under one Family call (one TYPE line per name)", name)
		return
	}
	switch typ {
	case Counter, Gauge, Histogram, Summary, Untyped:
	default:
		w.err = fmt.Errorf("promtext: metric family %q has type %q; use one of counter, gauge, histogram, summary, untyped", name, typ)
		return
	}
	w.written[name] = true
	w.family, w.typ = name, typ
	w.line = w.line[:0]
	if help != "" {
		w.line = append(append(append(append(w.line, "# HELP "...), name...), ' '), EscapeHelp(help)...)
		w.line = append(w.line, '\n')
	}
	w.line = append(append(append(append(w.line, "# TYPE "...), name...), ' '), typ...)
	w.write(append(w.line, '\n'))
}

// Sample writes one sample line, name{labels} value, of the family written
// last. value is written as given: use FormatFloat, strconv.FormatUint or
// strconv.FormatInt. A sample outside the current family or an invalid label
// name is an error.
func (w *Writer) Sample(name string, labels []Label, value string) {
	if w.err != nil {
		return
	}
	if !w.belongs(name) {
		w.err = fmt.Errorf("promtext: sample %q written outside its family (the current family is %q); call Family(%q, ...) before its samples", name, w.family, name)
		return
	}
	for _, l := range labels {
		if !validLabelName(l.Name) {
			w.err = fmt.Errorf("promtext: sample %q has label name %q, not a valid Prometheus label name ([a-zA-Z_][a-zA-Z0-9_]*); sanitize it before writing", name, l.Name)
			return
		}
	}
	w.line = append(w.line[:0], name...)
	if len(labels) > 0 {
		w.line = append(append(append(w.line, '{'), FormatLabels(labels)...), '}')
	}
	w.line = append(append(w.line, ' '), value...)
	w.write(append(w.line, '\n'))
}

// write writes one or more whole lines; the first error of the underlying writer is kept.
func (w *Writer) write(b []byte) {
	if _, err := w.bw.Write(b); err != nil && w.err == nil {
		w.err = err
	}
}

// belongs reports whether a sample called name is part of the current family.
func (w *Writer) belongs(name string) bool {
	if w.family == "" {
		return false
	}
	if name == w.family {
		return true
	}
	suffix, ok := strings.CutPrefix(name, w.family)
	if !ok {
		return false
	}
	switch w.typ {
	case Histogram:
		return suffix == "_bucket" || suffix == "_sum" || suffix == "_count"
	case Summary:
		return suffix == "_sum" || suffix == "_count"
	}
	return false
}

// Flush writes what is buffered and returns the first error: an ordering or
// naming violation, else the underlying writer's.
func (w *Writer) Flush() error {
	if w.err != nil {
		return w.err
	}
	return w.bw.Flush()
}

// FormatLabels renders label pairs as they appear between a sample's braces:
// name="escaped value" pairs separated by commas, in the order given. It does
// not check the names (Sample does).
func FormatLabels(labels []Label) string {
	var b strings.Builder
	for i, l := range labels {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(l.Name)
		b.WriteString(`="`)
		b.WriteString(EscapeLabelValue(l.Value))
		b.WriteByte('"')
	}
	return b.String()
}

// EscapeLabelValue escapes a label value: backslash, double quote and line
// feed become `\\`, `\"` and `\n`.
func EscapeLabelValue(s string) string {
	if !strings.ContainsAny(s, "\\\"\n") {
		return s
	}
	return labelEscaper.Replace(s)
}

// EscapeHelp escapes a HELP text: backslash and line feed become `\\` and
// `\n` (a double quote stays as it is).
func EscapeHelp(s string) string {
	if !strings.ContainsAny(s, "\\\n") {
		return s
	}
	return helpEscaper.Replace(s)
}

var (
	labelEscaper = strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`)
	helpEscaper  = strings.NewReplacer(`\`, `\\`, "\n", `\n`)
)

// FormatFloat renders a sample value or an "le"/"quantile" label value: an
// integral value below 1e15 in magnitude as an integer ("10", not "1e+01"),
// infinities and NaN as "+Inf", "-Inf" and "NaN", anything else in Go's %g.
func FormatFloat(f float64) string {
	switch {
	case math.IsInf(f, 1):
		return "+Inf"
	case math.IsInf(f, -1):
		return "-Inf"
	case math.IsNaN(f):
		return "NaN"
	case f == math.Trunc(f) && math.Abs(f) < 1e15:
		return strconv.FormatInt(int64(f), 10)
	}
	return strconv.FormatFloat(f, 'g', -1, 64)
}

func validMetricName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c == '_' || c == ':' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || i > 0 && c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

func validLabelName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || i > 0 && c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}
