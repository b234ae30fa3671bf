package host

import (
	"sync"
	"time"
)

// ManualClock is a Clock that only moves when told to: the emulated clock
// for tests, benchmarks and replays (timeouts and ticks fire exactly when the
// caller advances it). It is safe for concurrent use.
type ManualClock struct {
	mu   sync.Mutex
	now  time.Time
	mono time.Duration
}

// NewManualClock returns a clock reading now, with a monotonic reading of one
// hour (never zero: the Go wasip1 runtime aborts on a zero nanotime).
func NewManualClock(now time.Time) *ManualClock {
	return &ManualClock{now: now, mono: time.Hour}
}

// Now returns the current wall-clock reading.
func (c *ManualClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Monotonic returns the current monotonic reading.
func (c *ManualClock) Monotonic() time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.mono
}

// Advance moves both readings forward by d and returns the new wall-clock
// time (pass it to Plugin.Tick to run the ticks that became due).
func (c *ManualClock) Advance(d time.Duration) time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	c.mono += d
	return c.now
}
