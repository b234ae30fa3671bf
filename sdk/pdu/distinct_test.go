package pdu

import (
	"math/rand/v2"
	"strconv"
	"testing"

	"github.com/stretchr/testify/require"
)

// rqWithSyntaxes returns an RQ proposing the given abstract syntaxes ("nil"
// stands for an absent abstract syntax sub-item).
func rqWithSyntaxes(syntaxes []string) *AssociateRQ {
	rq := &AssociateRQ{}
	for i, s := range syntaxes {
		pc := PresentationContextRQ{ID: uint8(2*i + 1)}
		if s != "nil" {
			pc.AbstractSyntax = []byte(s)
		}
		rq.PresentationContexts = append(rq.PresentationContexts, pc)
	}
	return rq
}

// The count is the number of distinct abstract syntaxes, on both sides of
// the switch from the pairwise scan to the sort (pairwiseMax), with
// duplicates, absent and empty syntaxes (which count as one, "").
func TestDistinctAbstractSyntaxesMatchesSet(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, n := range []int{0, 1, 2, 3, pairwiseMax - 1, pairwiseMax, pairwiseMax + 1, 500, 3000} {
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
			require.Equal(t, len(set), rqWithSyntaxes(syntaxes).DistinctAbstractSyntaxes(), "%d contexts over %d syntaxes", n, pool)
		}
	}
}

// Up to pairwiseMax contexts the count allocates nothing (the filter counts
// every decided association's SOP classes).
func TestDistinctAbstractSyntaxesAllocatesNothing(t *testing.T) {
	syntaxes := make([]string, pairwiseMax)
	for i := range syntaxes {
		syntaxes[i] = "1.2.840.10008.5.1.4.1.1." + strconv.Itoa(i%7)
	}
	rq := rqWithSyntaxes(syntaxes)
	allocs := testing.AllocsPerRun(100, func() {
		if rq.DistinctAbstractSyntaxes() != 7 {
			panic("wrong count")
		}
	})
	require.Zero(t, allocs)
}

// BenchmarkDistinctAbstractSyntaxes: an ordinary large RQ (128 contexts) and
// a hostile one (40,000 contexts with distinct abstract syntaxes fit in a
// 1 MiB RQ, the default maxAssociateRQBytes); the pairwise scan took 1.7 s
// for the latter.
func BenchmarkDistinctAbstractSyntaxes(b *testing.B) {
	for _, n := range []int{128, 40000} {
		syntaxes := make([]string, n)
		for i := range syntaxes {
			syntaxes[i] = "1.2.840.10008.5.1.4.1.1." + strconv.Itoa(i)
		}
		rq := rqWithSyntaxes(syntaxes)
		b.Run("pcs="+strconv.Itoa(n), func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				if got := rq.DistinctAbstractSyntaxes(); got != n {
					require.Equal(b, n, got, "distinct abstract syntaxes of %d contexts", n)
				}
			}
		})
	}
}
