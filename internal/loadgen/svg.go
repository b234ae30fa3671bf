package loadgen

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"text/template"
)

// The chart: a self-contained SVG (no scripts, no external references) with two panels — left, the latency
// distribution of every target as an empirical CDF (every round's successful associations pooled; logarithmic
// latency axis from the fastest to the slowest association of any target); right, one bar per target of
// the median associations/s (echo, reject, hold) or MB/s (store) across the rounds. Each target's curve is
// one <g class="series" data-target="NAME">, each bar one <g class="bar" data-target="NAME">.

// palette is colour-blind-friendly (Okabe–Ito), then greys.
var palette = []string{"#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000", "#777777", "#BBBBBB"}

const (
	svgW, svgH       = 1040, 460
	cdfX0, cdfX1     = 70, 560
	plotY0, plotY1   = 80, 400
	barX0, barX1     = 800, 1020
	cdfPointsPerLine = 200
)

type svgSeries struct {
	Name, Color, Points string
	LegendY             int
}

type svgBar struct {
	Name, Color, Label string
	Y, W, H            int
}

type svgTick struct {
	Pos   int
	Label string
}

type svgData struct {
	W, H               int
	Title, Subtitle    string
	X0, X1, Y0, Y1     int
	BX0, BX1           int
	XTicks, YTicks     []svgTick
	Series             []svgSeries
	Bars               []svgBar
	BarTitle, CDFTitle string
	BarNote            string
	XLabel             string
	LegendX            int
}

var svgTemplate = template.Must(template.New("svg").Funcs(template.FuncMap{"x": xmlText}).Parse(`<?xml version="1.0" encoding="UTF-8"?>
<svg xmlns="http://www.w3.org/2000/svg" width="{{.W}}" height="{{.H}}" viewBox="0 0 {{.W}} {{.H}}" font-family="sans-serif" font-size="12">
<rect width="{{.W}}" height="{{.H}}" fill="#ffffff"/>
<text x="{{.X0}}" y="24" font-size="15" font-weight="bold">{{x .Title}}</text>
<text x="{{.X0}}" y="42" fill="#555555">{{x .Subtitle}}</text>
<text x="{{.X0}}" y="{{.Y0}}" dy="-4" fill="#333333">{{x .CDFTitle}}</text>
<rect x="{{.X0}}" y="{{.Y0}}" width="{{.PlotW}}" height="{{.PlotH}}" fill="none" stroke="#999999"/>
{{- range .XTicks}}
<line x1="{{.Pos}}" y1="{{$.Y1}}" x2="{{.Pos}}" y2="{{$.Y0}}" stroke="#eeeeee"/><text x="{{.Pos}}" y="{{$.Y1}}" dy="16" text-anchor="middle">{{x .Label}}</text>
{{- end}}
{{- range .YTicks}}
<line x1="{{$.X0}}" y1="{{.Pos}}" x2="{{$.X1}}" y2="{{.Pos}}" stroke="#eeeeee"/><text x="{{$.X0}}" y="{{.Pos}}" dx="-6" dy="4" text-anchor="end">{{x .Label}}</text>
{{- end}}
<text x="{{.XMid}}" y="{{.Y1}}" dy="34" text-anchor="middle">{{x .XLabel}}</text>
{{- range .Series}}
<g class="series" data-target="{{x .Name}}"><polyline fill="none" stroke="{{.Color}}" stroke-width="2" points="{{.Points}}"/><rect x="{{$.LegendX}}" y="{{.LegendY}}" width="14" height="4" fill="{{.Color}}"/><text x="{{$.LegendX}}" dx="20" y="{{.LegendY}}" dy="5">{{x .Name}}</text></g>
{{- end}}
<text x="{{.BX0}}" y="{{.Y0}}" dy="-4" fill="#333333">{{x .BarTitle}}</text>
<text x="{{.BX0}}" y="{{.Y1}}" dy="16" fill="#555555">{{x .BarNote}}</text>
{{- range .Bars}}
<g class="bar" data-target="{{x .Name}}"><text x="{{$.BX0}}" dx="-6" y="{{.Y}}" dy="{{.TextDY}}" text-anchor="end">{{x .Name}}</text><rect x="{{$.BX0}}" y="{{.Y}}" width="{{.W}}" height="{{.H}}" fill="{{.Color}}"/><text x="{{$.BX0}}" dx="{{.LabelDX}}" y="{{.Y}}" dy="{{.TextDY}}">{{x .Label}}</text></g>
{{- end}}
</svg>
`))

// xmlText escapes s for XML text and attribute values.
func xmlText(s string) (string, error) {
	var b strings.Builder
	err := xml.EscapeText(&b, []byte(s))
	return b.String(), err
}

// PlotW, PlotH and XMid are the CDF panel's size and middle; TextDY and LabelDX place a bar's labels.
func (d svgData) PlotW() int  { return d.X1 - d.X0 }
func (d svgData) PlotH() int  { return d.Y1 - d.Y0 }
func (d svgData) XMid() int   { return (d.X0 + d.X1) / 2 }
func (b svgBar) TextDY() int  { return b.H/2 + 4 }
func (b svgBar) LabelDX() int { return b.W + 6 }

// SVG renders the chart of c.
func (c *Comparison) SVG() ([]byte, error) {
	d := svgData{W: svgW, H: svgH, X0: cdfX0, X1: cdfX1, Y0: plotY0, Y1: plotY1, BX0: barX0, BX1: barX1,
		LegendX: cdfX1 + 14, XLabel: "association latency (ms, logarithmic)"}
	d.Title = fmt.Sprintf("dicomgate bench compare: %s", c.Scenario)
	d.Subtitle = fmt.Sprintf("%s; %d interleaved round(s), %s UTC; baseline %s", c.Load, c.Rounds, c.Started.UTC().Format("2006-01-02 15:04"), c.Baseline)
	d.CDFTitle = "fraction of associations at or below the latency"
	// The x axis is logarithmic (bodies and tails both visible), from the 1-2-5 value at or below the fastest
	// association of any target to the one at or above the slowest.
	lo, hi := math.Inf(1), 0.0
	for _, t := range c.Targets {
		if n := len(t.latencies); n > 0 {
			lo, hi = min(lo, float64(t.latencies[0])/1e6), max(hi, float64(t.latencies[n-1])/1e6)
		}
	}
	if hi <= 0 {
		lo, hi = 0.1, 1
	}
	lo, hi = niceBelow(max(lo, 1e-3)), niceStep(max(hi, 1e-3))
	if hi <= lo {
		hi = niceStep(lo * 1.01)
	}
	px := func(ms float64) float64 {
		return cdfX0 + (math.Log(min(max(ms, lo), hi))-math.Log(lo))/(math.Log(hi)-math.Log(lo))*(cdfX1-cdfX0)
	}
	py := func(f float64) float64 { return plotY1 - f*(plotY1-plotY0) }
	for v := lo; v <= hi*1.0001; v = niceStep(v * 1.0001) {
		d.XTicks = append(d.XTicks, svgTick{int(px(v)), num(v)})
	}
	for i := range 5 {
		f := float64(i) / 4
		d.YTicks = append(d.YTicks, svgTick{int(py(f)), fmt.Sprintf("%.2f", f)})
	}
	for i, t := range c.Targets {
		s := svgSeries{Name: t.Name, Color: palette[i%len(palette)], LegendY: plotY0 + 8 + 18*i}
		var pts []string
		if n := len(t.latencies); n > 0 {
			for k := 0; k <= cdfPointsPerLine; k++ {
				f := float64(k) / cdfPointsPerLine
				ms := float64(Percentile(t.latencies, max(f*100, 1e-9))) / 1e6
				pts = append(pts, fmt.Sprintf("%.1f,%.1f", px(ms), py(f)))
			}
		}
		s.Points = strings.Join(pts, " ")
		d.Series = append(d.Series, s)
	}
	// The bars: median throughput across the rounds.
	get, unit := func(m Metrics) float64 { return m.AssociationsPerSecond }, "associations/s"
	if c.Scenario == Store {
		get, unit = func(m Metrics) float64 { return m.MBPerSecond }, "MB/s (data set)"
	}
	// The "×" after a bar is the median of the per-round ratios (the interleaved comparison), which is not the
	// ratio of the bars' medians: the note under the bars says so. The longest bar leaves ~100 px for its label.
	d.BarTitle = "median " + unit
	d.BarNote = "×: median per-round ratio to " + c.Baseline
	var vmax float64
	for _, t := range c.Targets {
		vmax = max(vmax, get(t.Median))
	}
	bh := min(28, (plotY1-plotY0)/max(1, len(c.Targets))-6)
	for i, t := range c.Targets {
		w := 0
		if vmax > 0 {
			w = int(get(t.Median) / vmax * (barX1 - barX0 - 100))
		}
		label := num(get(t.Median))
		if r, ok := t.MedianRatio[map[bool]string{true: "mb_per_s", false: "associations_per_s"}[c.Scenario == Store]]; ok && t.Name != c.Baseline {
			label += fmt.Sprintf(" (%.2f×)", r)
		}
		d.Bars = append(d.Bars, svgBar{Name: t.Name, Color: palette[i%len(palette)], Label: label, Y: plotY0 + 4 + i*(bh+6), W: w, H: bh})
	}
	var out bytes.Buffer
	if err := svgTemplate.Execute(&out, d); err != nil {
		return nil, fmt.Errorf("rendering the chart: %w", err)
	}
	return out.Bytes(), nil
}

// niceBelow is the largest 1, 2 or 5 × 10^k at or below x (x > 0).
func niceBelow(x float64) float64 {
	p := math.Pow(10, math.Floor(math.Log10(x)))
	for _, m := range []float64{5, 2, 1} {
		if m*p <= x*(1+1e-12) {
			return m * p
		}
	}
	return p
}

// niceStep is the smallest 1, 2 or 5 × 10^k at or above x (x > 0).
func niceStep(x float64) float64 {
	p := math.Pow(10, math.Floor(math.Log10(x)))
	for _, m := range []float64{1, 2, 5, 10} {
		if m*p >= x {
			return m * p
		}
	}
	return 10 * p
}

// WriteSVG writes the chart of c to path atomically: into a temporary file in the same directory, synced,
// then renamed over path, so path is either the old file or the whole new one, never half written.
func (c *Comparison) WriteSVG(path string) error {
	b, err := c.SVG()
	if err != nil {
		return err
	}
	return writeAtomic(path, b)
}

func writeAtomic(path string, data []byte) (err error) {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		return fmt.Errorf("writing %s: %w (does the directory exist and is it writable?)", path, err)
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	if _, err = f.Write(data); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err = f.Chmod(0o644); err != nil {
		return err
	}
	if err = f.Sync(); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err = f.Close(); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return os.Rename(f.Name(), path)
}
