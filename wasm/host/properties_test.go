package host

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
