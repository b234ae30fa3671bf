//go:build !race

package host_test

// raceEnabled: the race detector makes sync.Pool drop items at random (Conn.Release reuse).
const raceEnabled = false
