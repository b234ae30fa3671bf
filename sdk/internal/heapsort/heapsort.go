// Package heapsort is the one sort of the sdk packages that the dicomgate
// filter links (sdk/pdu's distinct SOP classes of an RQ with many
// presentation contexts, sdk/policy's source-address index): a heap sort of
// indexes, O(n log n) time, no allocation, no recursion, one function in the
// module. The standard sorts are kept out of the filter's Wasm module (3 MiB
// budget, see filters/dicomgate/README.md "Module size"): sort.Slice links
// reflection, and a slices.SortFunc instantiation (pattern-defeating
// quicksort with its insertion sort, partitions and heap-sort fallback)
// several KB. Indexes is not generic, so one body serves every element type
// (each generic instantiation would be another copy), and it moves int32
// indexes rather than the elements, with the swap inline rather than a
// callback (measured: bench/RESULTS.md §3.7).
//
// The sort is not stable: indexes of equal elements may end in any order.
package heapsort

// Indexes sorts idx, indexes into a collection, in ascending order of the
// elements they point at: less(a, b) compares the elements at indexes a and
// b and must be a strict weak ordering. The collection itself is not moved.
func Indexes(idx []int32, less func(a, b int32) bool) {
	// One loop for both phases: while start > 0 it builds the max-heap
	// idx[:end] (no entry less than its children) from the bottom up; then
	// it swaps the heap's maximum to idx[end-1] and shrinks the heap. Each
	// step sifts idx[root] down until it is not less than either child.
	start, end := len(idx)/2, len(idx)
	for end > 1 {
		if start > 0 {
			start--
		} else {
			end--
			idx[0], idx[end] = idx[end], idx[0]
		}
		root := start
		for {
			child := 2*root + 1
			if child >= end {
				break
			}
			if child+1 < end && less(idx[child], idx[child+1]) {
				child++
			}
			if !less(idx[root], idx[child]) {
				break
			}
			idx[root], idx[child] = idx[child], idx[root]
			root = child
		}
	}
}
