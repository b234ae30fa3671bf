// Package guestprof counts how often each guest function and host import of a compiled module
// runs, with its inclusive time, through a wazero function listener. It is the profiling tool
// behind wasm/host's TestGuestCallCounts and gateway's TestGatewayGuestCallCounts: a CPU profile of
// the host process cannot see inside the guest (it is runtime._ExternalCode there). Counts are
// exact; times include the listener's own cost (~0.1 µs per call), so compare them only with each
// other. A module compiled with listeners must not share a compilation cache with one compiled
// without them.
package guestprof

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/experimental"
)

// Profile holds the counts of every function the listener saw. It is safe for use by several
// goroutines (the gateway calls guests from the connections' goroutines).
type Profile struct {
	mu    sync.Mutex
	stats map[string]*stat
}

// New returns an empty profile.
func New() *Profile { return &Profile{stats: map[string]*stat{}} }

// Context returns ctx with the profile's function listener factory: compile and instantiate the
// module (host.NewEngine, Engine.NewPlugin) with it.
func (p *Profile) Context(ctx context.Context) context.Context {
	return experimental.WithFunctionListenerFactory(ctx, experimental.FunctionListenerFactoryFunc(
		func(def api.FunctionDefinition) experimental.FunctionListener {
			s := &stat{p: p, name: def.DebugName()}
			p.mu.Lock()
			p.stats[s.name] = s
			p.mu.Unlock()
			return s
		}))
}

// Reset zeroes every count (after a warm-up).
func (p *Profile) Reset() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, s := range p.stats {
		s.calls, s.incl = 0, 0
	}
}

// Report writes, per unit of work (n of them since Reset), the total function calls and then each
// function that ran: calls and inclusive time, most called first.
func (p *Profile) Report(logf func(format string, args ...any), n int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	var list []*stat
	total := 0
	for _, s := range p.stats {
		if s.calls > 0 {
			list = append(list, s)
			total += s.calls
		}
	}
	sort.Slice(list, func(i, j int) bool {
		if list[i].calls != list[j].calls {
			return list[i].calls > list[j].calls
		}
		return list[i].incl > list[j].incl
	})
	logf("%.1f function calls per association", float64(total)/float64(n))
	for _, s := range list {
		logf("%s", fmt.Sprintf("%7.2f calls %9.0f ns incl.  %s", float64(s.calls)/float64(n), float64(s.incl.Nanoseconds())/float64(n), s.name))
	}
}

// stat counts one function's calls and sums their inclusive time.
type stat struct {
	p     *Profile
	name  string
	calls int
	incl  time.Duration
	start []time.Time // entry times of the active (possibly recursive) calls
}

// Before implements experimental.FunctionListener.
func (s *stat) Before(context.Context, api.Module, api.FunctionDefinition, []uint64, experimental.StackIterator) {
	s.p.mu.Lock()
	s.calls++
	s.start = append(s.start, time.Now())
	s.p.mu.Unlock()
}

// After implements experimental.FunctionListener.
func (s *stat) After(context.Context, api.Module, api.FunctionDefinition, []uint64) {
	s.p.mu.Lock()
	if n := len(s.start) - 1; n >= 0 {
		s.incl += time.Since(s.start[n])
		s.start = s.start[:n]
	}
	s.p.mu.Unlock()
}

// Abort implements experimental.FunctionListener.
func (s *stat) Abort(context.Context, api.Module, api.FunctionDefinition, error) {
	s.p.mu.Lock()
	if n := len(s.start) - 1; n >= 0 {
		s.start = s.start[:n]
	}
	s.p.mu.Unlock()
}
