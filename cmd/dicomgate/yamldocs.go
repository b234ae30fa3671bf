package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"

	yamlv3 "go.yaml.in/yaml/v3"
	"sigs.k8s.io/yaml"
)

// yamlDocs splits a YAML stream into its documents with a YAML parser (a
// "---" inside a block scalar or a quoted string is text, not a separator)
// and converts each to JSON the way the rest of the CLI reads YAML
// (sigs.k8s.io/yaml). Empty documents are left out; index i of the result is
// document doc[i] (1-based) of the stream, for messages.
func yamlDocs(stream []byte) (js [][]byte, doc []int, err error) {
	dec := yamlv3.NewDecoder(bytes.NewReader(stream))
	for n := 1; ; n++ {
		var node yamlv3.Node
		if err := dec.Decode(&node); errors.Is(err, io.EOF) {
			return js, doc, nil
		} else if err != nil {
			return nil, nil, fmt.Errorf("YAML document %d: %w", n, err)
		}
		if node.Kind == 0 || (node.Kind == yamlv3.DocumentNode && len(node.Content) == 0) {
			continue // an empty document
		}
		text, err := yamlv3.Marshal(&node)
		if err != nil {
			return nil, nil, fmt.Errorf("YAML document %d: %w", n, err)
		}
		j, err := yaml.YAMLToJSON(text)
		if err != nil {
			return nil, nil, fmt.Errorf("YAML document %d: %w", n, err)
		}
		if j = bytes.TrimSpace(j); bytes.Equal(j, []byte("null")) {
			continue
		}
		js, doc = append(js, j), append(doc, n)
	}
}
