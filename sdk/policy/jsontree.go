package policy

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// jkind is the JSON type of a jnode.
type jkind uint8

const (
	jNull jkind = iota
	jBool
	jNumber
	jString
	jArray
	jObject
)

// String names the kind the way error messages do.
func (k jkind) String() string {
	switch k {
	case jNull:
		return "null"
	case jBool:
		return "boolean"
	case jNumber:
		return "number"
	case jString:
		return "string"
	case jArray:
		return "array"
	case jObject:
		return "object"
	}
	return "value"
}

// jnode is one JSON value with object keys kept in document order
// (duplicates included) so that validation can name exact paths.
type jnode struct {
	kind  jkind
	str   string // string value or number literal
	b     bool
	keys  []string // object keys, in order
	vals  []*jnode // object values, parallel to keys
	elems []*jnode // array elements
}

// maxDepth bounds JSON nesting; real policies need 5 levels.
const maxDepth = 64

// syntaxError is a JSON syntax problem at a byte offset.
type syntaxError struct {
	offset int64
	msg    string
}

// parseJSON builds a jnode tree from data, or returns a syntaxError.
func parseJSON(data []byte) (*jnode, *syntaxError) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	n, err := parseValue(dec, 0)
	if err != nil {
		return nil, toSyntaxError(err, dec, data)
	}
	if _, err := dec.Token(); err != io.EOF {
		if err == nil {
			return nil, &syntaxError{offset: dec.InputOffset(), msg: "unexpected data after the top-level value"}
		}
		return nil, toSyntaxError(err, dec, data)
	}
	return n, nil
}

// errTooDeep reports nesting beyond maxDepth.
var errTooDeep = errors.New("nesting deeper than 64 levels")

// toSyntaxError converts a decoder error into a syntaxError with an offset.
func toSyntaxError(err error, dec *json.Decoder, data []byte) *syntaxError {
	var se *json.SyntaxError
	switch {
	case errors.As(err, &se):
		return &syntaxError{offset: se.Offset, msg: se.Error()}
	case err == io.EOF && len(bytes.TrimSpace(data)) == 0:
		return &syntaxError{offset: 0, msg: `the configuration is empty; expected a JSON object such as {"defaultAction": "deny", "rules": []}`}
	case err == io.EOF || errors.Is(err, io.ErrUnexpectedEOF):
		return &syntaxError{offset: int64(len(data)), msg: "unexpected end of JSON input"}
	}
	return &syntaxError{offset: dec.InputOffset(), msg: err.Error()}
}

// parseValue reads one complete value from dec.
func parseValue(dec *json.Decoder, depth int) (*jnode, error) {
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	switch t := tok.(type) {
	case nil:
		return &jnode{kind: jNull}, nil
	case bool:
		return &jnode{kind: jBool, b: t}, nil
	case json.Number:
		return &jnode{kind: jNumber, str: string(t)}, nil
	case string:
		return &jnode{kind: jString, str: t}, nil
	case json.Delim:
		if depth >= maxDepth {
			return nil, errTooDeep
		}
		switch t {
		case '{':
			n := &jnode{kind: jObject}
			for dec.More() {
				kt, err := dec.Token()
				if err != nil {
					return nil, err
				}
				k, ok := kt.(string)
				if !ok {
					return nil, fmt.Errorf("object key is not a string")
				}
				v, err := parseValue(dec, depth+1)
				if err != nil {
					return nil, err
				}
				n.keys = append(n.keys, k)
				n.vals = append(n.vals, v)
			}
			if _, err := dec.Token(); err != nil { // '}'
				return nil, err
			}
			return n, nil
		case '[':
			n := &jnode{kind: jArray}
			for dec.More() {
				v, err := parseValue(dec, depth+1)
				if err != nil {
					return nil, err
				}
				n.elems = append(n.elems, v)
			}
			if _, err := dec.Token(); err != nil { // ']'
				return nil, err
			}
			return n, nil
		}
	}
	return nil, fmt.Errorf("unexpected token %v", tok)
}

// lineCol converts a byte offset into 1-based line and column numbers.
func lineCol(data []byte, off int64) (line, col int) {
	if off > int64(len(data)) {
		off = int64(len(data))
	}
	if off < 0 {
		off = 0
	}
	line, col = 1, 1
	for _, c := range data[:off] {
		if c == '\n' {
			line++
			col = 1
		} else {
			col++
		}
	}
	return line, col
}

// describe renders a JSON value briefly for error messages.
func (n *jnode) describe() string {
	switch n.kind {
	case jString:
		s := n.str
		if len(s) > 40 {
			s = s[:40] + "..."
		}
		return fmt.Sprintf("string %q", s)
	case jNumber:
		return "number " + n.str
	case jBool:
		if n.b {
			return "true"
		}
		return "false"
	case jNull:
		return "null"
	}
	return n.kind.String()
}
