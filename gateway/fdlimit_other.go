//go:build !unix

package gateway

// fdLimit is unknown on this platform: DefaultMaxConnections reports no limit.
func fdLimit() uint64 { return 0 }
