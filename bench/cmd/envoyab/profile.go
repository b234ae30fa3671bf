package main

import (
	"bufio"
	"bytes"
	"fmt"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// dsoShare is one line of `perf report --sort dso`: a shared object and its share of Envoy's samples.
type dsoShare struct {
	dso   string
	share float64 // 0..1
}

// perfRounds is how many times each side is profiled, alternating the order (ABBA...); the table averages them.
const perfRounds = 4

// profileSides runs e.o.perfAssocs associations with 8 clients on each side in turn, perfRounds times in
// alternating order, while `perf record` samples Envoy, and prints Envoy's CPU per association (schedstat) split
// by shared object in proportion to perf's samples: the envoy binary (proxy-wasm host, V8 runtime, BoringSSL,
// tcp_proxy — all statically linked), the kernel, libc, and "[JIT]": code V8 generated, i.e. the compiled filter.
// The release binary is stripped, so the split stops at shared objects.
func (e *env) profileSides(p *envoyProc, sides []listener) error {
	if _, err := exec.LookPath("perf"); err != nil {
		return fmt.Errorf("-perf needs the perf command (Debian: apt-get install linux-perf): %w", err)
	}
	perDSO := map[string]map[string]float64{} // side -> DSO -> µs per association, summed over rounds
	totals := map[string][]float64{}          // side -> µs per association per round
	for r := range perfRounds {
		order := []listener{sides[0], sides[1]}
		if r%2 == 1 {
			order[0], order[1] = order[1], order[0]
		}
		for _, l := range order {
			out := filepath.Join(e.dir, fmt.Sprintf("perf-%s-%d.data", l.name, r+1))
			cmd := exec.Command("perf", "record", "-F", "999", "-p", strconv.Itoa(p.pid), "-o", out)
			var stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stderr, &stderr
			if err := cmd.Start(); err != nil {
				return fmt.Errorf("perf record: %w", err)
			}
			time.Sleep(500 * time.Millisecond) // perf attaches to every thread
			ph, err := e.concurrent(p, l, 8, e.o.perfAssocs)
			_ = cmd.Process.Signal(syscall.SIGINT)
			werr := cmd.Wait()
			if err != nil {
				return fmt.Errorf("profiling %s: %w", l.name, err)
			}
			// perf exits on SIGINT with that signal as its status; the data file is what counts.
			rep, err := exec.Command("perf", "report", "-i", out, "--sort", "dso", "--stdio").Output()
			if err != nil {
				return fmt.Errorf("perf report -i %s: %w (perf record: %v: %s)", out, err, werr, stderr.String())
			}
			shares, err := parsePerfDSO(rep)
			if err != nil {
				return fmt.Errorf("perf report -i %s: %w", out, err)
			}
			us := ph.cpu.sched / float64(e.o.perfAssocs) * 1e6
			totals[l.name] = append(totals[l.name], us)
			if perDSO[l.name] == nil {
				perDSO[l.name] = map[string]float64{}
			}
			for _, sh := range shares {
				perDSO[l.name][sh.dso] += sh.share * us
			}
		}
	}
	names := map[string]bool{}
	for _, m := range perDSO {
		for d := range m {
			names[d] = true
		}
	}
	var dsos []string
	for n := range names {
		dsos = append(dsos, n)
	}
	sort.Strings(dsos)
	a, b := sides[0].name, sides[1].name
	fmt.Printf("\n### Envoy CPU per association by shared object (perf record -F 999; %d rounds ABBA of %d associations with 8 clients per side; means)\n\n", perfRounds, e.o.perfAssocs)
	fmt.Printf("| shared object | %s µs/assoc | %s µs/assoc | %s − %s |\n| --- | ---: | ---: | ---: |\n", a, b, a, b)
	for _, d := range dsos {
		x, y := perDSO[a][d]/perfRounds, perDSO[b][d]/perfRounds
		fmt.Printf("| %s | %.1f | %.1f | %+.1f |\n", d, x, y, x-y)
	}
	var sa, sb float64
	for i := range totals[a] {
		sa, sb = sa+totals[a][i], sb+totals[b][i]
	}
	fmt.Printf("| total (schedstat) | %.1f | %.1f | %+.1f |\n", sa/perfRounds, sb/perfRounds, (sa-sb)/perfRounds)
	fmt.Printf("\nper round (µs/assoc, %s / %s):", a, b)
	for i := range totals[a] {
		fmt.Printf(" %.0f/%.0f", totals[a][i], totals[b][i])
	}
	fmt.Println()
	return nil
}

// parsePerfDSO reads `perf report --sort dso --stdio` lines "    78.32%  envoy". JIT code of one thread shows as
// "[JIT] tid N"; those lines are summed as "[JIT]".
func parsePerfDSO(out []byte) ([]dsoShare, error) {
	sum := map[string]float64{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		pctStr, dso, ok := strings.Cut(line, "%")
		if !ok {
			continue
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(pctStr), 64)
		if err != nil {
			continue
		}
		dso = strings.TrimSpace(dso)
		if strings.HasPrefix(dso, "[JIT]") {
			dso = "[JIT]"
		}
		sum[dso] += v / 100
	}
	if len(sum) == 0 {
		return nil, fmt.Errorf("no samples in %q", out)
	}
	var shares []dsoShare
	for d, v := range sum {
		shares = append(shares, dsoShare{d, v})
	}
	sort.Slice(shares, func(i, j int) bool { return shares[i].share > shares[j].share })
	return shares, sc.Err()
}
