package filtertable

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestCasesAreWellFormed(t *testing.T) {
	caps, err := LoadCaptures()
	require.NoError(t, err)
	// Every malformed case is listed at once.
	var bad []string
	seen := map[string]bool{}
	for _, c := range Cases(caps) {
		if c.Name == "" || seen[c.Name] {
			bad = append(bad, fmt.Sprintf("case name %q empty or duplicated", c.Name))
		}
		seen[c.Name] = true
		if c.ConfigRejected && len(c.Conns) > 0 {
			bad = append(bad, fmt.Sprintf("%s: a rejected configuration cannot carry connections", c.Name))
		}
		if !c.ConfigRejected && len(c.Conns) == 0 {
			bad = append(bad, fmt.Sprintf("%s: no connections", c.Name))
		}
		for i, cs := range c.Conns {
			if len(cs.Steps) == 0 {
				bad = append(bad, fmt.Sprintf("%s conn %d: no steps", c.Name, i))
			}
			if cs.Want.Closed && len(cs.Want.Forwarded) > 0 {
				bad = append(bad, fmt.Sprintf("%s conn %d: a closed connection forwards nothing in this table", c.Name, i))
			}
		}
	}
	require.Empty(t, bad, "malformed table cases")
}

func TestHelpers(t *testing.T) {
	caps, err := LoadCaptures()
	require.NoError(t, err)
	echo := caps["echo_default"]
	rq := FirstPDU(echo)
	require.Len(t, rq, 211, "FirstPDU(echo_default); want the 211-byte A-ASSOCIATE-RQ")
	require.Equal(t, byte(0x01), rq[0], "FirstPDU(echo_default) type; want the 211-byte A-ASSOCIATE-RQ")
	require.Len(t, FirstPDU([]byte{1, 0, 0, 0, 0xff}), 5, "FirstPDU of a short stream must return it whole")
	rw := WithAETitles(rq, "PACS", "")
	require.Equal(t, []byte("PACS            "), rw[10:26], "WithAETitles changed the wrong bytes")
	require.Equal(t, rq[26:42], rw[26:42], "WithAETitles changed the wrong bytes")
	require.Equal(t, rq[42:], rw[42:], "WithAETitles changed the wrong bytes")
	require.NotEqual(t, rq[10:26], rw[10:26], "WithAETitles modified its input")
	var n int
	for _, s := range Chunks(rq, 100) {
		n += len(s.Data)
	}
	st := Chunks(rq, 100)
	require.Len(t, st, 3, "Chunks(211 bytes, 100) = %d steps, %d bytes", len(st), n)
	require.Equal(t, len(rq), n, "Chunks(211 bytes, 100) = %d steps, %d bytes", len(st), n)
}
