package properties

import (
	"reflect"
	"testing"
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
		if got := splitPropertyPath(in, nil); !reflect.DeepEqual(got, want) {
			t.Errorf("split(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestParseSetEnvoyFilterStateArgs(t *testing.T) {
	a, err := parseSetEnvoyFilterStateArgs([]byte("\x0a\x03abc\x12\x02xy\x18\x02"))
	if err != nil || string(a.path) != "abc" || string(a.value) != "xy" || a.span != 2 {
		t.Fatalf("got %+v, %v", a, err)
	}
	for _, bad := range [][]byte{{0x0a, 0x05, 'a'}, {0x0a}, {0x08, 0x01}, {0x12, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, {0x07}} {
		if _, err := parseSetEnvoyFilterStateArgs(bad); err == nil {
			t.Errorf("parse(%x) succeeded", bad)
		}
	}
	// Unknown fields are skipped.
	if a, err := parseSetEnvoyFilterStateArgs([]byte("\x22\x01z\x0a\x01p")); err != nil || string(a.path) != "p" {
		t.Fatalf("unknown field: %+v %v", a, err)
	}
}

// The hand-written proto decoder never panics and never reads past its input.
func FuzzParseSetEnvoyFilterStateArgs(f *testing.F) {
	f.Add([]byte("\x0a\x17envoy.tcp_proxy.cluster\x12\x01c"))
	f.Add([]byte("\x0a\x03abc\x12\x02xy\x18\x02"))
	f.Add([]byte{0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Fuzz(func(t *testing.T, b []byte) {
		a, err := parseSetEnvoyFilterStateArgs(b)
		if err == nil && len(a.path)+len(a.value) > len(b) {
			t.Fatalf("decoded more bytes than given: %+v from %x", a, b)
		}
	})
}
