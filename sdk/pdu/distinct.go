package pdu

import "github.com/dicomgate/dicomgate/sdk/internal/heapsort"

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

// distinctSorted counts the distinct abstract syntaxes of pcs by sorting
// their indexes with sdk/internal/heapsort (no sort package: see there).
func distinctSorted(pcs []PresentationContextRQ) int {
	if len(pcs) == 0 {
		return 0
	}
	idx := make([]int32, len(pcs))
	for i := range idx {
		idx[i] = int32(i)
	}
	heapsort.Indexes(idx, func(a, b int32) bool { return string(pcs[a].AbstractSyntax) < string(pcs[b].AbstractSyntax) })
	n := 1
	for i := 1; i < len(idx); i++ {
		if string(pcs[idx[i]].AbstractSyntax) != string(pcs[idx[i-1]].AbstractSyntax) {
			n++
		}
	}
	return n
}
