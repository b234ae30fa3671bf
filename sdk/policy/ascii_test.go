package policy

import (
	"math/rand"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestASCIIHelpers pins the ASCII-only case mapping and comparison used
// for AE titles and DNS names (RFC 4343: DNS compares ASCII letters
// case-insensitively and nothing else).
func TestASCIIHelpers(t *testing.T) {
	require.Equal(t, "PACS_A-1*?", asciiUpper("pacs_a-1*?"), "asciiUpper")
	require.Equal(t, "ct1.modalities.example", asciiLower("CT1.Modalities.EXAMPLE"), "asciiLower")
	require.Equal(t, "é", asciiUpper("é"), "asciiUpper(é)") // non-ASCII bytes are left alone
	for _, tc := range []struct {
		a, b string
		want bool
	}{
		{"ct1.Example", "CT1.example", true}, {"a", "b", false}, {"ab", "a", false}, {"", "", true},
		{"k.example", "\u212a.example", false}, // Kelvin sign is not an ASCII k
		{"[", "{", false}, {"@", "`", false},   // bytes 0x20 apart that are not letters
	} {
		t.Run(tc.a+"|"+tc.b, func(t *testing.T) {
			require.Equal(t, tc.want, asciiEqualFold(tc.a, tc.b), "asciiEqualFold(%q, %q)", tc.a, tc.b)
			if tc.a != "k.example" {
				require.Equal(t, tc.want, strings.EqualFold(tc.a, tc.b), "%q, %q: differs from strings.EqualFold on ASCII", tc.a, tc.b)
			}
		})
	}
	require.True(t, containsByte("a|b", "| "), "containsByte")
	require.False(t, containsByte("ab", "| "), "containsByte")
	b, a, ok := cutByte("1.2.3", '.')
	require.Equal(t, "1", b, "cutByte = %q %q %v", b, a, ok)
	require.Equal(t, "2.3", a, "cutByte = %q %q %v", b, a, ok)
	require.True(t, ok, "cutByte = %q %q %v", b, a, ok)
	b, a, ok = cutByte("123", '.')
	require.Equal(t, "123", b, "cutByte no sep = %q %q %v", b, a, ok)
	require.Empty(t, a, "cutByte no sep = %q %q %v", b, a, ok)
	require.False(t, ok, "cutByte no sep = %q %q %v", b, a, ok)
}

// TestSortAddrs compares the sort of the CIDR bounds (sortedUnique) with
// slices.SortFunc and slices.Compact on random IPv4 and IPv6 inputs,
// duplicates included.
func TestSortAddrs(t *testing.T) {
	r := rand.New(rand.NewSource(1))
	for n := 0; n < 200; n++ {
		a := make([]netip.Addr, n)
		for i := range a {
			var b [16]byte
			r.Read(b[:])
			b[15] %= 4 // duplicates
			if n%2 == 0 {
				a[i] = netip.AddrFrom4([4]byte{b[0] % 3, b[1], 0, b[15]})
			} else {
				a[i] = netip.AddrFrom16(b)
			}
		}
		in := slices.Clone(a)
		want := slices.Clone(a)
		slices.SortFunc(want, netip.Addr.Compare)
		want = slices.Compact(want)
		if n == 0 {
			want = []netip.Addr{}
		}
		require.Equal(t, want, sortedUnique(a), "n=%d", n)
		require.Equal(t, in, a, "n=%d: sortedUnique changed its input", n)
	}
}

// TestUIDSetOrder checks that uidSet keeps its list sorted and unique.
func TestUIDSetOrder(t *testing.T) {
	var s uidSet
	in := []string{"1.2.3", "1.2.840.10008.1.1", "1.2", "1.2.3", "0", "1.2.840.10008.1.1", "9"}
	for _, v := range in {
		s.add(v)
	}
	want := []string{"0", "1.2", "1.2.3", "1.2.840.10008.1.1", "9"}
	require.Equal(t, want, s.list, "list")
}
