package pdu

// DistinctAbstractSyntaxes returns how many distinct abstract syntaxes (SOP
// classes) the RQ proposes; an absent abstract syntax counts as the empty
// one. It does not allocate for up to 32 presentation contexts, where a
// pairwise scan is cheapest. Above that it sorts an index of the contexts
// (O(n log n), one allocation): a valid RQ has at most 128 contexts (odd IDs
// 1-255), but the lenient decoder accepts any number, and a hostile client
// fits ~40,000 contexts with distinct abstract syntaxes into a 1 MiB RQ,
// where the pairwise scan took 1.7 s natively.
func (rq *AssociateRQ) DistinctAbstractSyntaxes() int {
	pcs := rq.PresentationContexts
	if len(pcs) > pairwiseMax {
		return distinctSorted(pcs)
	}
	n := 0
outer:
	for i := range pcs {
		for j := 0; j < i; j++ {
			if string(pcs[j].AbstractSyntax) == string(pcs[i].AbstractSyntax) {
				continue outer
			}
		}
		n++
	}
	return n
}

// pairwiseMax is the largest context count DistinctAbstractSyntaxes scans
// pairwise.
const pairwiseMax = 32

// distinctSorted counts the distinct abstract syntaxes of pcs by heap
// sorting their indexes: no recursion, and no sort package, whose
// reflection-based sorts would add tens of KB to the dicomgate filter's Wasm
// module (a generic slices sort instantiation, several KB).
func distinctSorted(pcs []PresentationContextRQ) int {
	if len(pcs) == 0 {
		return 0
	}
	idx := make([]int32, len(pcs))
	for i := range idx {
		idx[i] = int32(i)
	}
	for i := len(idx)/2 - 1; i >= 0; i-- {
		siftDown(pcs, idx, i, len(idx))
	}
	for end := len(idx) - 1; end > 0; end-- {
		idx[0], idx[end] = idx[end], idx[0]
		siftDown(pcs, idx, 0, end)
	}
	n := 1
	for i := 1; i < len(idx); i++ {
		if string(pcs[idx[i]].AbstractSyntax) != string(pcs[idx[i-1]].AbstractSyntax) {
			n++
		}
	}
	return n
}

// siftDown restores the max-heap property of idx[:n] below root, ordering
// the indexes by their contexts' abstract syntaxes.
func siftDown(pcs []PresentationContextRQ, idx []int32, root, n int) {
	for {
		child := 2*root + 1
		if child >= n {
			return
		}
		if child+1 < n && abstractLess(pcs, idx[child], idx[child+1]) {
			child++
		}
		if !abstractLess(pcs, idx[root], idx[child]) {
			return
		}
		idx[root], idx[child] = idx[child], idx[root]
		root = child
	}
}

// abstractLess orders contexts a and b by their abstract syntaxes.
//
//go:noinline
func abstractLess(pcs []PresentationContextRQ, a, b int32) bool {
	return string(pcs[a].AbstractSyntax) < string(pcs[b].AbstractSyntax)
}
