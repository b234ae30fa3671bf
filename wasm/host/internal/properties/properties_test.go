package properties

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// Envoy context.cc Context::getProperty path splitting.
func TestSplitPropertyPath(t *testing.T) {
	for in, want := range map[string][]string{
		"":               nil,
		"a":              {"a"},
		"a\x00":          {"a"},
		"a\x00b":         {"a", "b"},
		"a\x00\x00b":     {"a", "", "b"},
		"source\x00port": {"source", "port"},
		"\x00":           {""},
		"\x00a":          {"", "a"},
		"a\x00\x00":      {"a", ""},
	} {
		require.Equal(t, want, splitPropertyPath(in, nil), "split(%q)", in)
	}
}

func TestParseSetEnvoyFilterStateArgs(t *testing.T) {
	a, err := parseSetEnvoyFilterStateArgs([]byte("\x0a\x03abc\x12\x02xy\x18\x02"))
	require.NoError(t, err)
	require.Equal(t, "abc", string(a.path), "path of %+v", a)
	require.Equal(t, "xy", string(a.value), "value of %+v", a)
	require.Equal(t, uint64(2), a.span, "span of %+v", a)
	for _, bad := range [][]byte{{0x0a, 0x05, 'a'}, {0x0a}, {0x08, 0x01}, {0x12, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, {0x07}} {
		_, err := parseSetEnvoyFilterStateArgs(bad)
		require.Error(t, err, "parse(%x) succeeded", bad)
	}
	// Unknown fields are skipped.
	a, err = parseSetEnvoyFilterStateArgs([]byte("\x22\x01z\x0a\x01p"))
	require.NoError(t, err, "unknown field")
	require.Equal(t, "p", string(a.path), "unknown field: %+v", a)
}

// The hand-written proto decoder never panics and never reads past its input.
func FuzzParseSetEnvoyFilterStateArgs(f *testing.F) {
	f.Add([]byte("\x0a\x17envoy.tcp_proxy.cluster\x12\x01c"))
	f.Add([]byte("\x0a\x03abc\x12\x02xy\x18\x02"))
	f.Add([]byte{0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Fuzz(func(t *testing.T, b []byte) {
		a, err := parseSetEnvoyFilterStateArgs(b)
		if err == nil {
			require.LessOrEqual(t, len(a.path)+len(a.value), len(b), "decoded more bytes than given: %+v from %x", a, b)
		}
	})
}
