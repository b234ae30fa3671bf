package main

import (
	"math/rand/v2"
	"strconv"
	"testing"

	"github.com/dicomgate/dicomgate/sdk/pdu"
)

// pcsWith returns presentation contexts with the given abstract syntaxes ("nil" stands for an
// absent abstract syntax sub-item).
func pcsWith(syntaxes []string) *pdu.AssociateRQ {
	rq := &pdu.AssociateRQ{}
	for i, s := range syntaxes {
		pc := pdu.PresentationContextRQ{ID: uint8(2*i + 1)}
		if s != "nil" {
			pc.AbstractSyntax = []byte(s)
		}
		rq.PresentationContexts = append(rq.PresentationContexts, pc)
	}
	return rq
}

// The audit line's sop_classes is the number of distinct abstract syntaxes, on both sides of the
// switch from the pairwise scan to the sort (quadraticPCs), with duplicates, absent and empty
// syntaxes (which count as one, "").
func TestDistinctAbstractSyntaxesMatchesSet(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, n := range []int{0, 1, 2, 3, quadraticPCs - 1, quadraticPCs, quadraticPCs + 1, 500, 3000} {
		for trial := 0; trial < 20; trial++ {
			pool := 1 + r.IntN(n+1)
			syntaxes := make([]string, n)
			set := map[string]bool{}
			for i := range syntaxes {
				switch k := r.IntN(pool + 2); k {
				case pool:
					syntaxes[i] = "nil"
					set[""] = true
				case pool + 1:
					syntaxes[i] = ""
					set[""] = true
				default:
					syntaxes[i] = "1.2.840.10008.5.1.4.1.1." + strconv.Itoa(k)
					set[syntaxes[i]] = true
				}
			}
			if got := distinctAbstractSyntaxes(pcsWith(syntaxes)); got != len(set) {
				t.Fatalf("%d contexts over %d syntaxes: got %d distinct, want %d", n, pool, got, len(set))
			}
		}
	}
}

// BenchmarkDistinctAbstractSyntaxes: an ordinary large RQ (128 contexts) and a hostile one
// (40,000 contexts with distinct abstract syntaxes fit in a 1 MiB RQ, the default
// maxAssociateRQBytes); the pairwise scan took 1.7 s for the latter.
func BenchmarkDistinctAbstractSyntaxes(b *testing.B) {
	for _, n := range []int{128, 40000} {
		syntaxes := make([]string, n)
		for i := range syntaxes {
			syntaxes[i] = "1.2.840.10008.5.1.4.1.1." + strconv.Itoa(i)
		}
		rq := pcsWith(syntaxes)
		b.Run("pcs="+strconv.Itoa(n), func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				if distinctAbstractSyntaxes(rq) != n {
					b.Fatal("wrong count")
				}
			}
		})
	}
}
