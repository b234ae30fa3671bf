package policy

import (
	"math/rand"
	"net/netip"
	"slices"
	"strings"
	"testing"
)

// TestASCIIHelpers pins the ASCII-only case mapping and comparison used
// for AE titles and DNS names (RFC 4343: DNS compares ASCII letters
// case-insensitively and nothing else).
func TestASCIIHelpers(t *testing.T) {
	if got := asciiUpper("pacs_a-1*?"); got != "PACS_A-1*?" {
		t.Errorf("asciiUpper = %q", got)
	}
	if got := asciiLower("CT1.Modalities.EXAMPLE"); got != "ct1.modalities.example" {
		t.Errorf("asciiLower = %q", got)
	}
	if got := asciiUpper("é"); got != "é" { // non-ASCII bytes are left alone
		t.Errorf("asciiUpper(é) = %q", got)
	}
	for _, tc := range []struct {
		a, b string
		want bool
	}{
		{"ct1.Example", "CT1.example", true}, {"a", "b", false}, {"ab", "a", false}, {"", "", true},
		{"k.example", "\u212a.example", false}, // Kelvin sign is not an ASCII k
		{"[", "{", false}, {"@", "`", false},   // bytes 0x20 apart that are not letters
	} {
		if got := asciiEqualFold(tc.a, tc.b); got != tc.want {
			t.Errorf("asciiEqualFold(%q, %q) = %v", tc.a, tc.b, got)
		}
		if tc.want != strings.EqualFold(tc.a, tc.b) && tc.a != "k.example" {
			t.Errorf("%q, %q: differs from strings.EqualFold on ASCII", tc.a, tc.b)
		}
	}
	if !containsByte("a|b", "| ") || containsByte("ab", "| ") {
		t.Error("containsByte")
	}
	if b, a, ok := cutByte("1.2.3", '.'); b != "1" || a != "2.3" || !ok {
		t.Errorf("cutByte = %q %q %v", b, a, ok)
	}
	if b, a, ok := cutByte("123", '.'); b != "123" || a != "" || ok {
		t.Errorf("cutByte no sep = %q %q %v", b, a, ok)
	}
}

// TestSortAddrs compares the heap sort used for CIDR bounds with
// slices.SortFunc on random IPv4 and IPv6 inputs, duplicates included.
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
		want := slices.Clone(a)
		slices.SortFunc(want, netip.Addr.Compare)
		sortAddrs(a)
		if !slices.Equal(a, want) {
			t.Fatalf("n=%d: got %v, want %v", n, a, want)
		}
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
	if !slices.Equal(s.list, want) {
		t.Errorf("list %q, want %q", s.list, want)
	}
}
