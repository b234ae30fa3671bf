package main

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/dicomgate/dicomgate/bench/internal/machine"
)

// pct is the p-th percentile of xs (nearest rank: the smallest value with at least p % of the samples at or
// below it).
func pct(xs []float64, p float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	rank := int(math.Ceil(p / 100 * float64(len(s))))
	return s[min(max(rank, 1), len(s))-1]
}

// median of xs (mean of the two middle values for an even count).
func median(xs []float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// startResult is one Envoy start of the RSS / cold-start part.
type startResult struct {
	workers int
	filter  bool // both listeners; false: the plain listener only
	ready   time.Duration
	// idleKiB is VmRSS once every worker has configured the plugin (or at /ready without the filter);
	// loadedKiB after rssAssocs associations per listener; hwmKiB is VmHWM then.
	idleKiB, loadedKiB, hwmKiB int64
	// startCPU is Envoy's CPU time (schedstat, all threads) from exec to the idle reading: start-up work, the V8
	// compilation included, independent of how loaded the machine was.
	startCPU time.Duration
	// Cold start (filter only), from Envoy's log timestamps: compile is the base VM's creation to the main
	// thread's first "configured" line (module load, V8 compile, instantiate, _initialize, on_vm_start,
	// on_configure); perWorker is, per worker, its "Thread-Local Wasm created" to its "configured" (clone,
	// instantiate, _initialize, on_configure); lastWorker is exec to the last worker's "configured".
	compile    time.Duration
	perWorker  []time.Duration
	lastWorker time.Duration
}

// runStarts starts Envoy rssReps times per worker count with and without the filter listener, alternating the
// order, and reads RSS and the cold start.
func (e *env) runStarts() ([]startResult, error) {
	var out []startResult
	i := 0
	for r := range e.o.rssReps {
		for _, w := range e.o.rssWorkers {
			kinds := []bool{true, false}
			if (r+i)%2 == 1 {
				kinds = []bool{false, true}
			}
			i++
			for _, withFilter := range kinds {
				res, err := e.oneStart(r, w, withFilter)
				if err != nil {
					return nil, fmt.Errorf("start %d, %d workers, filter listener %v: %w", r+1, w, withFilter, err)
				}
				fmt.Printf("start %d: %d workers, filter %-5v: ready %.0f ms, RSS idle %.1f MiB, after associations %.1f MiB", r+1, w, withFilter,
					res.ready.Seconds()*1e3, mib(res.idleKiB), mib(res.loadedKiB))
				if withFilter {
					fmt.Printf(", main-thread load+compile+configure %.0f ms, last worker configured %.0f ms after exec", res.compile.Seconds()*1e3, res.lastWorker.Seconds()*1e3)
				}
				fmt.Printf(", start-up CPU %.0f ms (load %s)\n", res.startCPU.Seconds()*1e3, machine.LoadAvg())
				out = append(out, res)
			}
		}
	}
	return out, nil
}

func mib(kib int64) float64 { return float64(kib) / 1024 }

func (e *env) oneStart(r, workers int, withFilter bool) (startResult, error) {
	res := startResult{workers: workers, filter: withFilter}
	ports, err := freePorts(4)
	if err != nil {
		return res, err
	}
	v := e.values(ports, withFilter)
	dir := filepath.Join(e.dir, fmt.Sprintf("start-%d-w%d-filter-%v", r+1, workers, withFilter))
	p, ready, err := startEnvoy(e.o.envoy, dir, v, workers, "debug")
	if err != nil {
		return res, err
	}
	defer p.stop()
	res.ready = ready
	if withFilter {
		// Wait until every worker has configured the plugin (Envoy reports ready before the workers finish).
		deadline := time.Now().Add(60 * time.Second)
		for {
			cs, err := readColdStart(p.logPath)
			if err != nil {
				return res, err
			}
			if err := res.fillColdStart(cs, p.started, workers); err == nil {
				break
			} else if time.Now().After(deadline) {
				return res, fmt.Errorf("60 s after start: %w (log %s)", err, p.logPath)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	if res.idleKiB, _, err = machine.ReadRSS(p.pid); err != nil {
		return res, err
	}
	c, err := machine.ReadCPU(p.pid)
	if err != nil {
		return res, err
	}
	res.startCPU = time.Duration(c.SchedNs)
	ls := []listener{{"plain", v.PlainPort}}
	if withFilter {
		ls = append(ls, listener{"filter", v.FilterPort})
	}
	for _, l := range ls {
		if _, err := e.concurrent(p, l, 8, e.o.rssAssocs); err != nil {
			return res, fmt.Errorf("associations on %s: %w", l.name, err)
		}
	}
	if res.loadedKiB, res.hwmKiB, err = machine.ReadRSS(p.pid); err != nil {
		return res, err
	}
	return res, nil
}

func readColdStart(path string) (coldStart, error) {
	f, err := os.Open(path)
	if err != nil {
		return coldStart{}, err
	}
	defer f.Close()
	return parseColdStart(f)
}

// fillColdStart derives the cold-start durations; it fails until the log shows every worker configured.
func (res *startResult) fillColdStart(cs coldStart, started time.Time, workers int) error {
	if cs.BaseCreated.IsZero() {
		return fmt.Errorf("no \"Base Wasm created\" line yet")
	}
	var mainConfigured time.Time
	tl := map[int]time.Time{}
	for _, ev := range cs.ThreadLocal {
		if ev.Thread != cs.BaseThread {
			if _, ok := tl[ev.Thread]; !ok {
				tl[ev.Thread] = ev.At
			}
		}
	}
	res.perWorker = res.perWorker[:0]
	var last time.Time
	for _, ev := range cs.Configured {
		if ev.Thread == cs.BaseThread {
			if mainConfigured.IsZero() {
				mainConfigured = ev.At
			}
			continue
		}
		t0, ok := tl[ev.Thread]
		if !ok {
			return fmt.Errorf("thread %d configured without a \"Thread-Local Wasm created\" line", ev.Thread)
		}
		res.perWorker = append(res.perWorker, ev.At.Sub(t0))
		if ev.At.After(last) {
			last = ev.At
		}
	}
	if mainConfigured.IsZero() || len(res.perWorker) < workers {
		return fmt.Errorf("%d of %d workers configured so far", len(res.perWorker), workers)
	}
	if len(res.perWorker) > workers {
		return fmt.Errorf("%d worker threads configured the plugin, want %d", len(res.perWorker), workers)
	}
	res.compile = mainConfigured.Sub(cs.BaseCreated)
	res.lastWorker = last.Sub(started)
	return nil
}

// metric is one row of the A/B table.
type metric struct {
	name, unit string
	get        func(*sideResult) float64
	// diffUnit/diffScale present filter-plain in another unit (e.g. CPU per association in µs).
	diffUnit  string
	diffScale float64
}

func abMetrics(o options, assocs int) []metric {
	out := []metric{
		{name: "association latency p50", unit: "ms", get: func(s *sideResult) float64 { return ms(pct(totals(s.seq), 50)) }, diffUnit: "ms", diffScale: 1},
		{name: "association latency p99", unit: "ms", get: func(s *sideResult) float64 { return ms(pct(totals(s.seq), 99)) }, diffUnit: "ms", diffScale: 1},
		{name: "RQ→AC p50 (after TLS)", unit: "ms", get: func(s *sideResult) float64 { return ms(pct(rqacs(s.seq), 50)) }, diffUnit: "ms", diffScale: 1},
	}
	for _, n := range o.clients {
		out = append(out, metric{name: fmt.Sprintf("associations/s, %d clients", n), unit: "1/s", get: func(s *sideResult) float64 { return s.rate[n] }})
	}
	perK := func(stat bool) func(*sideResult) float64 {
		return func(s *sideResult) float64 {
			c := s.seqCPU.pick(stat)
			for _, d := range s.rateCPU {
				c += d.pick(stat)
			}
			return c / float64(assocs) * 1000
		}
	}
	perGB := func(stat bool) func(*sideResult) float64 {
		return func(s *sideResult) float64 { return s.storeCPU.pick(stat) / s.storeGB }
	}
	// Per phase (schedstat): where the added CPU per association comes from.
	out = append(out, metric{name: "Envoy CPU per association, sequential (schedstat)", unit: "µs",
		get: func(s *sideResult) float64 { return s.seqCPU.sched / float64(len(s.seq)) * 1e6 }, diffUnit: "µs/assoc", diffScale: 1})
	for _, n := range o.clients {
		out = append(out, metric{name: fmt.Sprintf("Envoy CPU per association, %d clients (schedstat)", n), unit: "µs",
			get: func(s *sideResult) float64 { return s.rateCPU[n].sched / float64(o.assocs) * 1e6 }, diffUnit: "µs/assoc", diffScale: 1})
	}
	out = append(out,
		metric{name: fmt.Sprintf("C-STORE %d MiB", o.storeMiB), unit: "MB/s", get: func(s *sideResult) float64 { return s.storeMBs }},
		metric{name: "Envoy CPU per 1,000 associations (stat)", unit: "s", get: perK(true), diffUnit: "µs/assoc", diffScale: 1e3},
		metric{name: "Envoy CPU per 1,000 associations (schedstat)", unit: "s", get: perK(false), diffUnit: "µs/assoc", diffScale: 1e3},
		metric{name: "Envoy CPU per GB stored (stat)", unit: "s", get: perGB(true), diffUnit: "s/GB", diffScale: 1},
		metric{name: "Envoy CPU per GB stored (schedstat)", unit: "s", get: perGB(false), diffUnit: "s/GB", diffScale: 1},
	)
	return out
}

func (c cpuDelta) pick(stat bool) float64 {
	if stat {
		return c.stat
	}
	return c.sched
}

// abSummary holds, per metric, the per-repetition values and their medians.
type abSummary struct {
	m                          metric
	filter, plain, ratio, diff []float64
}

// summarize compares side a with side b (a/b ratios, a−b differences).
func summarize(o options, ab *abResult, a, b string) []abSummary {
	var out []abSummary
	for _, m := range abMetrics(o, ab.assocs) {
		s := abSummary{m: m}
		for _, rep := range ab.reps {
			f, p := m.get(rep[a]), m.get(rep[b])
			s.filter, s.plain = append(s.filter, f), append(s.plain, p)
			s.ratio, s.diff = append(s.ratio, f/p), append(s.diff, f-p)
		}
		out = append(out, s)
	}
	return out
}

// decomposition is one diagnostic side of the rotation: when on, a sentence saying what it is and the pairs of
// sides compared (a − b).
type decomposition struct {
	on    bool
	what  string
	pairs [][2]string
}

func printReport(o options, ab *abResult, starts []startResult) {
	sum := summarize(o, ab, "filter", "plain")
	fmt.Printf("\n### A/B, %d worker(s), %d interleaved repetitions (orders: %s; f = filter, p = plain, e = early, n = noop, c = calls, h = held, b = before, w = watnoop)\n\n", o.workers, len(ab.reps), strings.Join(ab.orders, " "))
	printTable(sum, "filter", "plain")
	for _, d := range []decomposition{
		{o.early, `"early" is tcp_proxy with max_early_data_bytes and no filter (connect after the first bytes).`,
			[][2]string{{"early", "plain"}, {"filter", "early"}}},
		{o.noop, `"noop" is a do-nothing Go proxy-wasm filter in front of plain tcp_proxy (the fixed cost of any Go filter on V8).`,
			[][2]string{{"noop", "plain"}, {"filter", "noop"}}},
		{o.noop && o.noopCalls > 0, fmt.Sprintf(`"calls" is the noop filter making %d proxy_get_property(source.address) calls per connection.`, o.noopCalls),
			[][2]string{{"calls", "noop"}}},
		{o.noop && o.noopWAT, `"watnoop" is a do-nothing filter written in WebAssembly text (no language runtime): Envoy's and V8's own cost per connection.`,
			[][2]string{{"watnoop", "plain"}, {"noop", "watnoop"}}},
		{o.noop && o.noopHeld, `"held" is the noop filter pausing each connection until its first bytes (tcp_proxy with max_early_data_bytes connects after the A-ASSOCIATE-RQ, as with dicomgate).`,
			[][2]string{{"held", "noop"}, {"filter", "held"}}},
		{o.beforeWasm != "", fmt.Sprintf(`"before" runs %s, "filter" %s, with the same policy and configuration (the change).`, o.beforeWasm, o.wasm),
			[][2]string{{"filter", "before"}}},
	} {
		if !d.on {
			continue
		}
		fmt.Printf("\nDecomposition: %s\n", d.what)
		for _, p := range d.pairs {
			fmt.Println()
			printTable(summarize(o, ab, p[0], p[1]), p[0], p[1])
		}
	}
	printRest(o, ab, sum, starts)
}

// printTable prints one comparison table.
func printTable(sum []abSummary, a, b string) {
	fmt.Printf("| metric | %s (median) | %s (median) | %s/%s per repetition | median ratio | median %s−%s |\n", a, b, a, b, a, b)
	fmt.Printf("| --- | ---: | ---: | --- | ---: | ---: |\n")
	for _, s := range sum {
		var rs []string
		for _, r := range s.ratio {
			rs = append(rs, fmt.Sprintf("%.3f", r))
		}
		diff := ""
		if s.m.diffUnit != "" {
			diff = fmt.Sprintf("%+.3g %s", median(s.diff)*s.m.diffScale, s.m.diffUnit)
		}
		fmt.Printf("| %s | %s %s | %s %s | %s | %.3f | %s |\n", s.m.name, num(median(s.filter)), s.m.unit, num(median(s.plain)), s.m.unit,
			strings.Join(rs, " "), median(s.ratio), diff)
	}
}

func printRest(o options, ab *abResult, sum []abSummary, starts []startResult) {
	fmt.Printf("\nEnvoy after the A/B run (both listeners, %d worker(s)): VmRSS %.1f MiB, VmHWM %.1f MiB\n", o.workers, mib(ab.rssKiB), mib(ab.hwmKiB))

	get := func(name string) abSummary {
		for _, s := range sum {
			if strings.HasPrefix(s.m.name, name) {
				return s
			}
		}
		panic("no metric " + name)
	}
	fmt.Printf("\nTargets (medians over repetitions):\n")
	p50 := median(get("association latency p50").diff)
	fmt.Printf("- added p50 <= 0.2 ms per association: %+.3f ms -> %s\n", p50, met(p50 <= 0.2))
	for _, n := range o.clients {
		r := median(get(fmt.Sprintf("associations/s, %d clients", n)).ratio)
		fmt.Printf("- associations/s with %d clients >= 0.97x plain: %.3fx -> %s\n", n, r, met(r >= 0.97))
	}
	r := median(get("C-STORE").ratio)
	fmt.Printf("- C-STORE MB/s >= 0.97x plain: %.3fx -> %s\n", r, met(r >= 0.97))
	c := median(get("Envoy CPU per 1,000 associations (stat)").diff) * 1e3
	cs := median(get("Envoy CPU per 1,000 associations (schedstat)").diff) * 1e3
	fmt.Printf("- Envoy CPU per association added <= 50 µs: %+.1f µs (stat), %+.1f µs (schedstat) -> %s\n", c, cs, met(c <= 50 && cs <= 50))

	if len(starts) == 0 {
		return
	}
	fmt.Printf("\n### Envoy starts: RSS and V8 cold start (%d starts per row, medians; ranges in brackets)\n\n", o.rssReps)
	fmt.Printf("| workers | listeners | /ready after exec | Envoy CPU until idle | VmRSS idle | VmRSS after %d assoc./listener | main thread: load+compile+configure | per worker: clone+configure | last worker configured after exec |\n", o.rssAssocs)
	fmt.Printf("| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n")
	for _, w := range o.rssWorkers {
		for _, withFilter := range []bool{false, true} {
			var ready, cpu, idle, loaded, compile, last, per []float64
			for _, s := range starts {
				if s.workers != w || s.filter != withFilter {
					continue
				}
				ready = append(ready, s.ready.Seconds()*1e3)
				cpu = append(cpu, s.startCPU.Seconds()*1e3)
				idle, loaded = append(idle, mib(s.idleKiB)), append(loaded, mib(s.loadedKiB))
				if withFilter {
					compile, last = append(compile, s.compile.Seconds()*1e3), append(last, s.lastWorker.Seconds()*1e3)
					for _, d := range s.perWorker {
						per = append(per, d.Seconds()*1e3)
					}
				}
			}
			name := "plain only"
			cold := "| – | – | – |"
			if withFilter {
				name = "plain + filter"
				cold = fmt.Sprintf("| %s ms | %s ms | %s ms |", rng(compile), rng(per), rng(last))
			}
			fmt.Printf("| %d | %s | %s ms | %s ms | %s MiB | %s MiB %s\n", w, name, rng(ready), rng(cpu), rng(idle), rng(loaded), cold)
		}
	}
	for _, w := range o.rssWorkers {
		var fi, pi, fl, pl []float64
		for _, s := range starts {
			if s.workers != w {
				continue
			}
			if s.filter {
				fi, fl = append(fi, mib(s.idleKiB)), append(fl, mib(s.loadedKiB))
			} else {
				pi, pl = append(pi, mib(s.idleKiB)), append(pl, mib(s.loadedKiB))
			}
		}
		fmt.Printf("\nfilter listener's RSS with %d worker(s) (median with − median without): idle %+.1f MiB, after associations %+.1f MiB", w, median(fi)-median(pi), median(fl)-median(pl))
	}
	fmt.Println()
}

func met(ok bool) string {
	if ok {
		return "MET"
	}
	return "MISSED"
}

// num formats a value with 3 significant digits (more for large values).
func num(v float64) string {
	switch a := math.Abs(v); {
	case a >= 100:
		return fmt.Sprintf("%.0f", v)
	case a >= 10:
		return fmt.Sprintf("%.1f", v)
	case a >= 1:
		return fmt.Sprintf("%.2f", v)
	default:
		return fmt.Sprintf("%.3f", v)
	}
}

// rng is "median [min–max]".
func rng(xs []float64) string {
	if len(xs) == 0 {
		return "–"
	}
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	return fmt.Sprintf("%s [%s–%s]", num(median(s)), num(s[0]), num(s[len(s)-1]))
}
