//go:build race

package host

// raceEnabled: the race detector makes sync.Pool drop items at random.
const raceEnabled = true
