package loadgen

import (
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/dicomgate/dicomgate/internal/demopacs"
)

// Compare, its Markdown and its chart, against in-process demo acceptors.

func TestNiceStep(t *testing.T) {
	for x, want := range map[float64]float64{0.07: 0.1, 1: 1, 1.2: 2, 3: 5, 7.5: 10, 31.7: 50, 120: 200} {
		require.InDelta(t, want, niceStep(x), 1e-12, "%g", x)
	}
	for x, want := range map[float64]float64{0.07: 0.05, 1: 1, 1.2: 1, 3: 2, 7.5: 5, 31.7: 20, 120: 100} {
		require.InDelta(t, want, niceBelow(x), 1e-12, "%g", x)
	}
}

// The orchestration smoke test: two in-process targets, two rounds; the order rotates, the baseline's ratios
// are 1, and the chart is valid XML with one series and one bar per target.
func TestCompareTwoTargets(t *testing.T) {
	a, b := pacs(t, demopacs.Config{}), pacs(t, demopacs.Config{})
	cfg := base("", Echo)
	cfg.Count, cfg.Concurrency = 10, 2
	var seen []string
	cmp, err := Compare(context.Background(), CompareConfig{Run: cfg, Rounds: 2, Baseline: "b",
		Targets:  []Target{{"a", a}, {"b", b}},
		OnResult: func(r int, res *Result) { seen = append(seen, fmt.Sprintf("%d:%s", r, res.Target)) }})
	require.NoError(t, err)
	require.Equal(t, []string{"1:a", "1:b", "2:b", "2:a"}, seen)
	require.Equal(t, [][]string{{"a", "b"}, {"b", "a"}}, cmp.Orders)
	require.Len(t, cmp.Targets, 2)
	for _, tg := range cmp.Targets {
		require.Len(t, tg.Rounds, 2)
		require.Len(t, tg.latencies, 20)
		require.Equal(t, int64(20), tg.Associations)
		require.Zero(t, tg.Median.Errors)
		require.Len(t, tg.Ratios["p50_ms"], 2)
		require.NotContains(t, tg.Ratios, "mb_per_s", "echo stores nothing: no MB/s ratio")
	}
	require.Equal(t, []float64{1, 1}, cmp.Targets[1].Ratios["associations_per_s"], "the baseline against itself")
	require.InDelta(t, cmp.Targets[0].Rounds[0].P50/cmp.Targets[1].Rounds[0].P50, cmp.Targets[0].Ratios["p50_ms"][0], 1e-12)

	var md bytes.Buffer
	require.NoError(t, cmp.WriteMarkdown(&md))
	require.Contains(t, md.String(), "| ratio to b: median [per round] | p50 latency (ms) | p99 latency (ms) | associations/s |")
	require.Contains(t, md.String(), "| b | **1.00** [1.00 1.00] | **1.00** [1.00 1.00] | **1.00** [1.00 1.00] |")
	require.Contains(t, md.String(), "echo, 2 clients, 10 associations per target and round; 2 round(s), baseline b; orders: a,b | b,a")

	dir := t.TempDir()
	path := filepath.Join(dir, "chart.svg")
	require.NoError(t, cmp.WriteSVG(path))
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	require.Len(t, entries, 1, "no temporary file is left behind")
	svg, err := os.ReadFile(path)
	require.NoError(t, err)
	require.Contains(t, string(svg), ">×: median per-round ratio to b<", "the chart says what its × means")
	series, bars := svgGroups(t, svg)
	require.Equal(t, []string{"a", "b"}, series)
	require.Equal(t, []string{"a", "b"}, bars)

	require.ErrorContains(t, cmp.WriteSVG(filepath.Join(dir, "missing", "chart.svg")), "does the directory exist")
}

// svgGroups parses an SVG (it must be well-formed XML with an <svg> root) and returns the data-target of
// every series and bar group.
func svgGroups(t *testing.T, svg []byte) (series, bars []string) {
	d := xml.NewDecoder(bytes.NewReader(svg))
	root := ""
	for {
		tok, err := d.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		require.NoError(t, err)
		se, ok := tok.(xml.StartElement)
		if !ok {
			continue
		}
		if root == "" {
			root = se.Name.Local
		}
		if se.Name.Local != "g" {
			continue
		}
		var class, target string
		for _, a := range se.Attr {
			switch a.Name.Local {
			case "class":
				class = a.Value
			case "data-target":
				target = a.Value
			}
		}
		switch class {
		case "series":
			series = append(series, target)
		case "bar":
			bars = append(bars, target)
		}
	}
	require.Equal(t, "svg", root)
	return series, bars
}

func TestCompareErrors(t *testing.T) {
	cfg := base("", Echo)
	for want, cc := range map[string]CompareConfig{
		"no target":          {Run: cfg, Rounds: 1},
		"rounds 0":           {Run: cfg, Targets: []Target{{"a", "x:1"}}},
		`baseline "c" is no`: {Run: cfg, Rounds: 1, Baseline: "c", Targets: []Target{{"a", "x:1"}, {"b", "x:2"}}},
		"given twice":        {Run: cfg, Rounds: 1, Targets: []Target{{"a", "x:1"}, {"a", "x:2"}}},
	} {
		_, err := Compare(context.Background(), cc)
		require.ErrorContains(t, err, want)
	}
	for in, want := range map[string]string{"noequals": "want NAME=HOST:PORT", "a=nohost": "not HOST:PORT", "a b=h:1": "want NAME=HOST:PORT"} {
		_, err := ParseTarget(in)
		require.ErrorContains(t, err, want)
	}
	tg, err := ParseTarget("gw=127.0.0.1:11112")
	require.NoError(t, err)
	require.Equal(t, Target{"gw", "127.0.0.1:11112"}, tg)
}
