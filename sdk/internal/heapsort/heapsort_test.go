package heapsort

import (
	"math/rand/v2"
	"slices"
	"strconv"
	"testing"

	"github.com/stretchr/testify/require"
)

// identity returns the indexes 0 … n-1.
func identity(n int) []int32 {
	idx := make([]int32, n)
	for i := range idx {
		idx[i] = int32(i)
	}
	return idx
}

// sortedBy returns s in the order of idx.
func sortedBy[E any](s []E, idx []int32) []E {
	out := make([]E, len(idx))
	for i, j := range idx {
		out[i] = s[j]
	}
	return out
}

// Indexes orders like slices.Sort for every length from 0 through 300 (every
// heap shape: complete and incomplete last levels, one and two children),
// with many duplicates, already sorted and reversed inputs, and leaves the
// elements where they were.
func TestIndexesMatchesSlicesSort(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for n := 0; n <= 300; n++ {
		random := make([]int, n)
		for i := range random {
			random[i] = r.IntN(n/3 + 1) // duplicates
		}
		sorted := slices.Clone(random)
		slices.Sort(sorted)
		reversed := slices.Clone(sorted)
		slices.Reverse(reversed)
		for name, in := range map[string][]int{"random": random, "sorted": sorted, "reversed": reversed} {
			s := slices.Clone(in)
			idx := identity(n)
			Indexes(idx, func(a, b int32) bool { return s[a] < s[b] })
			require.Equal(t, sorted, sortedBy(s, idx), "%s input of %d elements: %v", name, n, in)
			require.Equal(t, in, s, "%s input of %d elements: the elements moved", name, n)
			slices.Sort(idx)
			require.Equal(t, identity(n), idx, "%s input of %d elements: not a permutation of the indexes", name, n)
		}
	}
}

// The order is less's, not the indexes' or the elements' natural one:
// strings (sdk/pdu's abstract syntaxes), descending order by a reversed less.
func TestIndexesUsesLess(t *testing.T) {
	names := []string{"1.2.840.10008.1.1", "1.2", "9", "1.2.840.10008.1.1", "0", "1.2.3"}
	idx := identity(len(names))
	Indexes(idx, func(a, b int32) bool { return names[a] < names[b] })
	require.Equal(t, []string{"0", "1.2", "1.2.3", "1.2.840.10008.1.1", "1.2.840.10008.1.1", "9"}, sortedBy(names, idx), "by name")

	nums := []int{3, 1, 4, 1, 5, 9, 2, 6}
	idx = identity(len(nums))
	Indexes(idx, func(a, b int32) bool { return nums[a] > nums[b] })
	require.Equal(t, []int{9, 6, 5, 4, 3, 2, 1, 1}, sortedBy(nums, idx), "descending by a reversed less")
}

// Indexes allocates nothing (the filter sorts while it decides an
// association).
func TestIndexesAllocatesNothing(t *testing.T) {
	s := make([]int, 1000)
	for i := range s {
		s[i] = (i * 7919) % 1000
	}
	idx := identity(len(s))
	less := func(a, b int32) bool { return s[a] < s[b] }
	allocs := testing.AllocsPerRun(20, func() {
		for i := range idx {
			idx[i] = int32(i)
		}
		Indexes(idx, less)
	})
	require.Zero(t, allocs, "allocations per sort of 1000 indexes")
	require.True(t, slices.IsSorted(sortedBy(s, idx)), "sorted")
}

// BenchmarkIndexes: 40,000 strings, the most presentation contexts with
// distinct abstract syntaxes a 1 MiB RQ holds.
func BenchmarkIndexes(b *testing.B) {
	s := make([]string, 40000)
	for i := range s {
		s[i] = "1.2.840.10008.5.1.4.1.1." + strconv.Itoa((i*7919)%len(s))
	}
	idx := make([]int32, len(s))
	less := func(a, b int32) bool { return s[a] < s[b] }
	b.ReportAllocs()
	for b.Loop() {
		for i := range idx {
			idx[i] = int32(i)
		}
		Indexes(idx, less)
	}
}
