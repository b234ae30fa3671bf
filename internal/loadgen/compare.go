package loadgen

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Target is one endpoint of a comparison.
type Target struct {
	Name, Addr string
}

var targetName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,31}$`)

// ParseTarget parses NAME=HOST:PORT.
func ParseTarget(s string) (Target, error) {
	name, addr, ok := strings.Cut(s, "=")
	if !ok || !targetName.MatchString(name) {
		return Target{}, fmt.Errorf("target %q: want NAME=HOST:PORT with a NAME of letters, digits, '.', '_' or '-' (e.g. gateway=127.0.0.1:11112)", s)
	}
	if _, _, err := net.SplitHostPort(addr); err != nil {
		return Target{}, fmt.Errorf("target %q: the address %q is not HOST:PORT: %v", s, addr, err)
	}
	return Target{Name: name, Addr: addr}, nil
}

// CompareConfig is a side-by-side run.
type CompareConfig struct {
	// Run is the scenario each target gets; its SCU.Addr is replaced by the target's.
	Run Config
	// Targets are compared in a rotating order: round r runs them starting with target r mod len.
	Targets []Target
	// Baseline names the target the ratios are relative to ("": the first).
	Baseline string
	// Rounds is the number of interleaved rounds (1 or more).
	Rounds int
	// OnResult, when set, is called after every target's run.
	OnResult func(round int, r *Result)
}

// Metrics of one target in one round.
type Metrics struct {
	P50                   float64 `json:"p50_ms"`
	P90                   float64 `json:"p90_ms"`
	P99                   float64 `json:"p99_ms"`
	AssociationsPerSecond float64 `json:"associations_per_s"`
	MBPerSecond           float64 `json:"mb_per_s"`
	Errors                int64   `json:"errors"`
}

// metric is one compared quantity: field points at it in a Metrics.
type metric struct {
	key, label string
	field      func(*Metrics) *float64
}

func (m metric) get(v Metrics) float64 { return *m.field(&v) }

var compared = []metric{
	{"p50_ms", "p50 latency (ms)", func(m *Metrics) *float64 { return &m.P50 }},
	{"p90_ms", "p90 latency (ms)", func(m *Metrics) *float64 { return &m.P90 }},
	{"p99_ms", "p99 latency (ms)", func(m *Metrics) *float64 { return &m.P99 }},
	{"associations_per_s", "associations/s", func(m *Metrics) *float64 { return &m.AssociationsPerSecond }},
	{"mb_per_s", "MB/s", func(m *Metrics) *float64 { return &m.MBPerSecond }},
}

// metricsOf are the metrics the scenario measures (MB/s only for store).
func metricsOf(s Scenario) []metric {
	if s == Store {
		return compared
	}
	return compared[:4]
}

// TargetSummary is one target across the rounds.
type TargetSummary struct {
	Name    string `json:"name"`
	Address string `json:"address"`
	// Rounds are the target's metrics per round (in round order).
	Rounds []Metrics `json:"rounds"`
	// Median is the median of each metric across the rounds (errors: the sum).
	Median Metrics `json:"median"`
	// Ratios are, per metric key, the per-round ratio target/baseline; MedianRatio their median.
	Ratios      map[string][]float64 `json:"ratios_to_baseline"`
	MedianRatio map[string]float64   `json:"median_ratio_to_baseline"`
	// Associations and Bytes sum the rounds' successful associations and data set bytes stored.
	Associations int64 `json:"associations"`
	Bytes        int64 `json:"bytes"`
	// ErrorsByKind sums the rounds' errors by kind.
	ErrorsByKind map[string]int64 `json:"errors_by_kind,omitempty"`

	latencies []time.Duration // every round's successful latencies, sorted
}

// Comparison is the result of Compare.
type Comparison struct {
	Scenario Scenario `json:"scenario"`
	// Load says what each target ran per round, e.g. "echo, 32 clients, 2000 associations".
	Load     string    `json:"load"`
	Started  time.Time `json:"started"`
	Rounds   int       `json:"rounds"`
	Baseline string    `json:"baseline"`
	// Orders is the order the targets ran in, per round.
	Orders  [][]string      `json:"orders"`
	Targets []TargetSummary `json:"targets"`
}

// Compare runs cfg.Run against every target, interleaved: in each round every target runs once, the order
// rotating by one target per round, so no target always runs first or right after another's heavy phase.
// Associations that fail are counted per target; only an invalid configuration stops it.
func Compare(ctx context.Context, cfg CompareConfig) (*Comparison, error) {
	if len(cfg.Targets) == 0 {
		return nil, errors.New("no target: give at least one NAME=HOST:PORT")
	}
	if cfg.Rounds < 1 {
		return nil, fmt.Errorf("rounds %d: want 1 or more", cfg.Rounds)
	}
	base := cfg.Baseline
	if base == "" {
		base = cfg.Targets[0].Name
	}
	var names []string
	idx := map[string]int{}
	for i, t := range cfg.Targets {
		if _, dup := idx[t.Name]; dup {
			return nil, fmt.Errorf("target name %q given twice: every target needs its own name", t.Name)
		}
		idx[t.Name] = i
		names = append(names, t.Name)
	}
	bi, ok := idx[base]
	if !ok {
		return nil, fmt.Errorf("baseline %q is not a target (targets: %s)", base, strings.Join(names, ", "))
	}
	probe := cfg.Run
	probe.SCU.Addr = cfg.Targets[0].Addr
	if err := probe.validate(); err != nil {
		return nil, err
	}
	cmp := &Comparison{Scenario: cfg.Run.Scenario, Load: probe.describe(), Started: time.Now(), Rounds: cfg.Rounds, Baseline: base}
	sums := make([]TargetSummary, len(cfg.Targets))
	for i, t := range cfg.Targets {
		sums[i] = TargetSummary{Name: t.Name, Address: t.Addr, Rounds: make([]Metrics, cfg.Rounds),
			Ratios: map[string][]float64{}, MedianRatio: map[string]float64{}}
	}
	for r := range cfg.Rounds {
		var order []string
		for k := range cfg.Targets {
			i := (r + k) % len(cfg.Targets)
			t := cfg.Targets[i]
			order = append(order, t.Name)
			run := cfg.Run
			run.SCU.Addr = t.Addr
			res, err := Run(ctx, run)
			if err != nil {
				return nil, fmt.Errorf("round %d, target %s: %w", r+1, t.Name, err)
			}
			res.Target = t.Name
			s := &sums[i]
			s.Rounds[r] = Metrics{P50: res.Latency.P50, P90: res.Latency.P90, P99: res.Latency.P99,
				AssociationsPerSecond: res.AssociationsPerSecond, MBPerSecond: res.MBPerSecond, Errors: res.Errors}
			s.latencies = append(s.latencies, res.latencies...)
			s.Associations += res.Associations
			s.Bytes += res.Bytes
			for k, n := range res.ErrorsByKind {
				if s.ErrorsByKind == nil {
					s.ErrorsByKind = map[string]int64{}
				}
				s.ErrorsByKind[k] += n
			}
			if cfg.OnResult != nil {
				cfg.OnResult(r+1, res)
			}
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
		}
		cmp.Orders = append(cmp.Orders, order)
	}
	for i := range sums {
		s := &sums[i]
		slices.Sort(s.latencies)
		for _, m := range metricsOf(cfg.Run.Scenario) {
			var vals, ratios []float64
			for r, rm := range s.Rounds {
				vals = append(vals, m.get(rm))
				ratios = append(ratios, ratio(m.get(rm), m.get(sums[bi].Rounds[r])))
			}
			*m.field(&s.Median) = Median(vals)
			s.Ratios[m.key] = ratios
			s.MedianRatio[m.key] = Median(ratios)
		}
		for _, rm := range s.Rounds {
			s.Median.Errors += rm.Errors
		}
	}
	cmp.Targets = sums
	return cmp, nil
}

// describe says what one run does, e.g. "store, 2 clients, 6 associations (2 C-STOREs of 16.8 MB each)".
func (cfg *Config) describe() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s, %d client", cfg.Scenario, cfg.Concurrency)
	if cfg.Concurrency != 1 {
		b.WriteString("s")
	}
	if cfg.Count > 0 {
		fmt.Fprintf(&b, ", %d associations", cfg.Count)
	}
	if cfg.Duration > 0 {
		fmt.Fprintf(&b, ", for %v", cfg.Duration)
	}
	if cfg.Rate > 0 {
		fmt.Fprintf(&b, ", at most %g/s", cfg.Rate)
	}
	switch cfg.Scenario {
	case Store:
		var bytes int64
		for _, in := range cfg.Instances {
			bytes += int64(len(in.DataSet))
		}
		fmt.Fprintf(&b, " (%d C-STORE(s) each, instances of %.3g MB on average)", cfg.StoresPerAssoc, float64(bytes)/1e6/float64(len(cfg.Instances)))
	case Hold:
		fmt.Fprintf(&b, " (held %v each)", cfg.Hold)
	}
	return b.String()
}

// ratio is a/b, NaN when b is 0 (JSON cannot carry NaN: see MarshalJSON users; the CLI prints "–").
func ratio(a, b float64) float64 {
	if b == 0 {
		return math.NaN()
	}
	return a / b
}

// Finite replaces NaN ratios (a baseline that measured 0) by 0 so the comparison encodes as JSON.
func (c *Comparison) Finite() *Comparison {
	for i := range c.Targets {
		t := &c.Targets[i]
		for k, rs := range t.Ratios {
			for j, v := range rs {
				if math.IsNaN(v) || math.IsInf(v, 0) {
					rs[j] = 0
				}
			}
			if v := t.MedianRatio[k]; math.IsNaN(v) || math.IsInf(v, 0) {
				t.MedianRatio[k] = 0
			}
		}
	}
	return c
}

// WriteMarkdown writes the comparison as Markdown tables: the medians per target, then per metric the
// per-round ratios against the baseline.
func (c *Comparison) WriteMarkdown(w io.Writer) error {
	var b strings.Builder
	var orders []string
	for _, o := range c.Orders {
		orders = append(orders, strings.Join(o, ","))
	}
	fmt.Fprintf(&b, "%s per target and round; %d round(s), baseline %s; orders: %s\n\n", c.Load, c.Rounds, c.Baseline, strings.Join(orders, " | "))
	ms := metricsOf(c.Scenario)
	b.WriteString("| target |")
	for _, m := range ms {
		fmt.Fprintf(&b, " %s |", m.label)
	}
	b.WriteString(" errors |\n| --- |" + strings.Repeat(" ---: |", len(ms)+1) + "\n")
	for _, t := range c.Targets {
		fmt.Fprintf(&b, "| %s |", t.Name)
		for _, m := range ms {
			fmt.Fprintf(&b, " %s |", num(m.get(t.Median)))
		}
		fmt.Fprintf(&b, " %d |\n", t.Median.Errors)
	}
	// The ratios: every metric but p90 (it stays in the JSON), median and every round's.
	var rs []metric
	for _, m := range ms {
		if m.key != "p90_ms" {
			rs = append(rs, m)
		}
	}
	fmt.Fprintf(&b, "\n| ratio to %s: median [per round] |", c.Baseline)
	for _, m := range rs {
		fmt.Fprintf(&b, " %s |", m.label)
	}
	b.WriteString("\n| --- |" + strings.Repeat(" --- |", len(rs)) + "\n")
	for _, t := range c.Targets {
		fmt.Fprintf(&b, "| %s |", t.Name)
		for _, m := range rs {
			var per []string
			for _, v := range t.Ratios[m.key] {
				per = append(per, fmt.Sprintf("%.2f", v))
			}
			fmt.Fprintf(&b, " **%.2f** [%s] |", t.MedianRatio[m.key], strings.Join(per, " "))
		}
		b.WriteString("\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// num prints v with three significant digits, or as a whole number from 100 on.
func num(v float64) string {
	if math.IsNaN(v) {
		return "–"
	}
	if math.Abs(v) >= 100 {
		return strconv.FormatFloat(v, 'f', 0, 64)
	}
	return strconv.FormatFloat(v, 'g', 3, 64)
}
