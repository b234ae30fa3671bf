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

// profileSides runs e.o.perfAssocs associations with 8 clients on each side in turn while `perf record` samples
// Envoy, and prints Envoy's CPU per association split by shared object (the envoy binary — proxy-wasm host, V8
// runtime, BoringSSL, tcp_proxy, all statically linked —, the kernel, libc, and "[JIT]": code V8 generated, i.e.
// the compiled filter). The release binary is stripped, so the split stops at shared objects.
func (e *env) profileSides(p *envoyProc, sides []listener) error {
	if _, err := exec.LookPath("perf"); err != nil {
		return fmt.Errorf("-perf needs the perf command (Debian: apt-get install linux-perf): %w", err)
	}
	type prof struct {
		perAssoc float64 // schedstat CPU seconds per association
		shares   []dsoShare
	}
	res := map[string]prof{}
	for _, l := range sides {
		out := filepath.Join(e.dir, "perf-"+l.name+".data")
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
		res[l.name] = prof{perAssoc: ph.cpu.sched / float64(e.o.perfAssocs), shares: shares}
	}
	names := map[string]bool{}
	for _, pr := range res {
		for _, s := range pr.shares {
			names[s.dso] = true
		}
	}
	var dsos []string
	for n := range names {
		dsos = append(dsos, n)
	}
	sort.Strings(dsos)
	fmt.Printf("\n### Envoy CPU per association by shared object (perf record -F 999 during %d associations, 8 clients, per side)\n\n", e.o.perfAssocs)
	fmt.Printf("| shared object |")
	for _, l := range sides {
		fmt.Printf(" %s µs/assoc |", l.name)
	}
	fmt.Printf(" %s − %s |\n| --- |", sides[0].name, sides[1].name)
	for range sides {
		fmt.Printf(" ---: |")
	}
	fmt.Printf(" ---: |\n")
	get := func(side, dso string) float64 {
		pr := res[side]
		for _, s := range pr.shares {
			if s.dso == dso {
				return s.share * pr.perAssoc * 1e6
			}
		}
		return 0
	}
	for _, d := range append(dsos, "total") {
		fmt.Printf("| %s |", d)
		for _, l := range sides {
			v := res[l.name].perAssoc * 1e6
			if d != "total" {
				v = get(l.name, d)
			}
			fmt.Printf(" %.1f |", v)
		}
		a, b := res[sides[0].name].perAssoc*1e6, res[sides[1].name].perAssoc*1e6
		if d != "total" {
			a, b = get(sides[0].name, d), get(sides[1].name, d)
		}
		fmt.Printf(" %+.1f |\n", a-b)
	}
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
