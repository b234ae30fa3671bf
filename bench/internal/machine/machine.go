// Package machine describes the machine a benchmark ran on, for the header every recorded result carries
// (bench/RESULTS.md: machine, date, load, command).
package machine

import (
	"os"
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
