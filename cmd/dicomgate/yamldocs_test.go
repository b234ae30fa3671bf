package main

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// A YAML parser splits the stream: "---" inside a block scalar is text, empty
// documents are left out, and each document keeps its number for messages.
func TestYAMLDocs(t *testing.T) {
	stream := []byte("---\n# only a comment\n---\nkind: A\nnote: |\n  line\n  ---\n  more\n--- # a comment\nkind: B\n...\n")
	js, doc, err := yamlDocs(stream)
	require.NoError(t, err)
	require.Equal(t, []int{2, 3}, doc)
	require.Len(t, js, 2)
	require.JSONEq(t, `{"kind":"A","note":"line\n---\nmore\n"}`, string(js[0]))
	require.JSONEq(t, `{"kind":"B"}`, string(js[1]))

	_, _, err = yamlDocs([]byte("kind: A\n---\nkind: [unclosed\n"))
	require.ErrorContains(t, err, "YAML document 2")
}
