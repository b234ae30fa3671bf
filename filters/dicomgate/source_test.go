//go:build !wasip1

package main

import (
	"fmt"
	"net/netip"
	"testing"

	"github.com/stretchr/testify/require"
)

// parseIPv4Port must agree with netip.ParseAddrPort whenever it accepts, and
// accept the common "a.b.c.d:port" form.
func TestParseIPv4PortMatchesNetip(t *testing.T) {
	var mismatches []string
	for _, s := range []string{
		"10.1.2.3:40000", "0.0.0.0:0", "255.255.255.255:65535", "1.2.3.4:080",
		"256.1.1.1:1", "01.2.3.4:5", "1.2.3:4", "1.2.3.4", "1.2.3.4:", "1.2.3.4:65536", "1.2.3.4:5x",
		"1.2.3.4.5:6", "[::1]:5", "[::ffff:1.2.3.4]:5", "", ":", "1.2.3.4:99999999999", "1..3.4:5", "1.2.3.4::5",
	} {
		got, ok := parseIPv4Port(s)
		want, err := netip.ParseAddrPort(s)
		if ok && (err != nil || got != want.Addr()) {
			mismatches = append(mismatches, fmt.Sprintf("parseIPv4Port(%q) = %v; netip says %v, %v", s, got, want, err))
		}
	}
	for _, s := range []string{"10.1.2.3:40000", "0.0.0.0:0", "255.255.255.255:65535"} {
		if _, ok := parseIPv4Port(s); !ok {
			mismatches = append(mismatches, fmt.Sprintf("parseIPv4Port(%q) rejected a plain IPv4 address and port", s))
		}
	}
	require.Empty(t, mismatches)
}

func FuzzParseIPv4Port(f *testing.F) {
	f.Add("10.1.2.3:40000")
	f.Add("1.2.3.4:65536")
	f.Fuzz(func(t *testing.T, s string) {
		got, ok := parseIPv4Port(s)
		want, err := netip.ParseAddrPort(s)
		if ok {
			require.NoError(t, err, "parseIPv4Port(%q) = %v; netip says %v, %v", s, got, want, err)
			require.Equal(t, want.Addr(), got, "parseIPv4Port(%q) = %v; netip says %v, %v", s, got, want, err)
		}
	})
}
