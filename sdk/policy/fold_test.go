package policy

import (
	"bytes"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"
)

// foldBytes is the specification of foldInto: upper applied to every byte.
func foldBytes(b []byte) []byte {
	out := make([]byte, len(b))
	for i, c := range b {
		out[i] = upper(c)
	}
	return out
}

// foldInto upper-cases exactly like the byte-wise fold for every length up
// to the longest AE title, every byte value at every position (non-ASCII
// and the neighbours of 'a' and 'z' included), and refuses longer titles.
func TestFoldIntoMatchesByteFold(t *testing.T) {
	for n := 0; n <= foldBufLen; n++ {
		for pos := 0; pos < n; pos++ {
			for c := 0; c < 256; c++ {
				b := bytes.Repeat([]byte{'m'}, n)
				b[pos] = byte(c)
				var buf [foldBufLen]byte
				require.Equal(t, foldBytes(b), foldInto(&buf, b), "len %d, byte %#x at %d", n, c, pos)
			}
		}
	}
	var buf [foldBufLen]byte
	got := foldInto(&buf, make([]byte, foldBufLen+1))
	require.Nil(t, got, "a title longer than %d bytes folded to %q", foldBufLen, got)
	r := rand.New(rand.NewPCG(3, 4))
	for i := 0; i < 100000; i++ {
		b := make([]byte, r.IntN(foldBufLen+1))
		for k := range b {
			b[k] = byte(r.Uint32())
		}
		require.Equal(t, foldBytes(b), foldInto(&buf, b), "%q", b)
	}
}

// MatchesSource tells the filter whether it must parse source.address.
func TestMatchesSource(t *testing.T) {
	for cfg, want := range map[string]bool{
		`{"defaultAction": "deny", "rules": [{"name": "a", "match": {"calledAETitles": ["PACS"]}, "action": "allow"}]}`: false,
		`{"defaultAction": "allow"}`: false,
		`{"defaultAction": "deny", "rules": [{"name": "a", "match": {"calledAETitles": ["PACS"]}, "action": "allow"},
		  {"name": "lan", "match": {"sourceCIDRs": ["10.0.0.0/8"]}, "action": "allow"}]}`: true,
	} {
		t.Run(cfg, func(t *testing.T) {
			require.Equal(t, want, mustLoad(t, cfg).MatchesSource(), "%s: MatchesSource()", cfg)
		})
	}
}

// MatchesDNSSAN tells the filter whether it must read the peer
// certificate's DNS SAN (the audit line does not log it).
func TestMatchesDNSSAN(t *testing.T) {
	for cfg, want := range map[string]bool{
		`{"rules": [{"name": "a", "match": {"peerURISANs": ["spiffe://h/ct1"]}, "action": "allow"}]}`: false,
		`{"defaultAction": "allow"}`: false,
		`{"rules": [{"name": "a", "match": {"calledAETitles": ["PACS"]}, "action": "allow"},
		  {"name": "dns", "match": {"peerDNSSANs": ["ct1.example.org"]}, "action": "allow"}]}`: true,
	} {
		require.Equal(t, want, mustLoad(t, cfg).MatchesDNSSAN(), cfg)
	}
}
