// Package machine describes the machine a benchmark ran on, for the header every recorded result carries
// (bench/RESULTS.md: machine, date, load, command), and reads a process's CPU time and memory from /proc.
package machine

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// CPUModel is the first "model name" of /proc/cpuinfo, or "unknown CPU".
func CPUModel() string {
	b, _ := os.ReadFile("/proc/cpuinfo")
	for _, l := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown CPU"
}

// LoadAvg is the 1, 5 and 15 minute load averages of /proc/loadavg, or "unknown".
func LoadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return strings.TrimSpace(string(b))
	}
	return strings.Join(f[:3], " ")
}

// CPUSample is a process's CPU time at one instant.
type CPUSample struct {
	// Ticks is utime+stime from /proc/<pid>/stat, in clock ticks (USER_HZ, 100 per second on Linux x86_64):
	// 10 ms resolution.
	Ticks int64
	// SchedNs is the sum over the process's threads of /proc/<pid>/task/*/schedstat's first field (time on CPU,
	// ns). Envoy's threads live as long as the process, so no thread's time is lost between two samples.
	SchedNs int64
}

// UserHZ is the unit of utime/stime in /proc/<pid>/stat (USER_HZ; fixed at 100 on Linux x86_64).
const UserHZ = 100

// Sub converts the difference c - b into CPU seconds from each source.
func (c CPUSample) Sub(b CPUSample) (statSec, schedSec float64) {
	return float64(c.Ticks-b.Ticks) / UserHZ, float64(c.SchedNs-b.SchedNs) / 1e9
}

// ReadCPU samples pid's CPU time.
func ReadCPU(pid int) (CPUSample, error) {
	var s CPUSample
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return s, err
	}
	// The command name (field 2) may contain spaces and parentheses: fields are counted after the last ')'.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return s, fmt.Errorf("/proc/%d/stat: no ')' in %q", pid, b)
	}
	f := strings.Fields(string(b[i+1:]))
	// f[0] is field 3 (state); utime and stime are fields 14 and 15.
	if len(f) < 13 {
		return s, fmt.Errorf("/proc/%d/stat: %d fields after the command name, want >= 13", pid, len(f))
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return s, fmt.Errorf("/proc/%d/stat utime/stime: %w", pid, err)
	}
	s.Ticks = ut + st
	tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if err != nil {
		return s, err
	}
	for _, t := range tasks {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/schedstat", pid, t.Name()))
		if err != nil {
			if errors.Is(err, os.ErrNotExist) {
				continue // the thread exited between ReadDir and ReadFile
			}
			return s, err
		}
		f := strings.Fields(string(b))
		if len(f) < 1 {
			return s, fmt.Errorf("/proc/%d/task/%s/schedstat: empty", pid, t.Name())
		}
		ns, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return s, fmt.Errorf("/proc/%d/task/%s/schedstat: %w", pid, t.Name(), err)
		}
		s.SchedNs += ns
	}
	return s, nil
}

// ReadRSS returns VmRSS and VmHWM (peak) of pid in KiB, from /proc/<pid>/status.
func ReadRSS(pid int) (rssKiB, hwmKiB int64, err error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	found := 0
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok || (k != "VmRSS" && k != "VmHWM") {
			continue
		}
		n, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		if err != nil {
			return 0, 0, fmt.Errorf("/proc/%d/status %s: %w", pid, k, err)
		}
		if k == "VmRSS" {
			rssKiB = n
		} else {
			hwmKiB = n
		}
		found++
	}
	if found != 2 {
		return 0, 0, fmt.Errorf("/proc/%d/status: VmRSS or VmHWM missing", pid)
	}
	return rssKiB, hwmKiB, sc.Err()
}
