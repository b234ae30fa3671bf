package policy

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// refTree builds a jnode tree with encoding/json's token stream (no depth
// limit): the reference the hand-written parser is compared against.
func refTree(data []byte) (*jnode, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	n, err := refValue(dec)
	if err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("trailing data")
	}
	return n, nil
}

func refValue(dec *json.Decoder) (*jnode, error) {
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
		n := &jnode{kind: jArray}
		if t == '{' {
			n.kind = jObject
		}
		for dec.More() {
			if n.kind == jObject {
				k, err := dec.Token()
				if err != nil {
					return nil, err
				}
				n.keys = append(n.keys, k.(string))
			}
			v, err := refValue(dec)
			if err != nil {
				return nil, err
			}
			if n.kind == jObject {
				n.vals = append(n.vals, v)
			} else {
				n.elems = append(n.elems, v)
			}
		}
		if _, err := dec.Token(); err != nil {
			return nil, err
		}
		return n, nil
	}
	return nil, errors.New("unexpected token")
}

// sameTree reports whether two trees are equal, key order and duplicates
// included; it returns the JSON path of the first difference.
func sameTree(a, b *jnode, path string) (string, bool) {
	if a.kind != b.kind || a.str != b.str || a.b != b.b || len(a.keys) != len(b.keys) || len(a.elems) != len(b.elems) {
		return path, false
	}
	for i := range a.keys {
		if a.keys[i] != b.keys[i] {
			return child(path, a.keys[i]), false
		}
		if p, ok := sameTree(a.vals[i], b.vals[i], child(path, a.keys[i])); !ok {
			return p, false
		}
	}
	for i := range a.elems {
		if p, ok := sameTree(a.elems[i], b.elems[i], elem(path, i)); !ok {
			return p, false
		}
	}
	return "", true
}

func treeDepth(n *jnode) int {
	d := 0
	for _, c := range append(n.vals, n.elems...) {
		d = max(d, treeDepth(c))
	}
	if n.kind == jArray || n.kind == jObject {
		d++
	}
	return d
}

// diffStdlib compares parseJSON with encoding/json on data and describes
// the first disagreement ("" when they agree). encoding/json's SyntaxError
// offsets count the offending byte (index+1); parseJSON reports its index.
// Deliberate differences: parseJSON limits nesting to maxDepth, reports
// "unexpected end of JSON input" where encoding/json feeds a virtual space
// at the end of input ("invalid character ' ' in literal true"), and words
// trailing data and empty input for policy authors.
func diffStdlib(data []byte) string {
	got, se := parseJSON(data)
	var v json.RawMessage // syntax only: 1e700 is valid JSON
	stdErr := json.Unmarshal(data, &v)
	var syn *json.SyntaxError
	errors.As(stdErr, &syn)
	if se == nil {
		if stdErr != nil {
			return "accepted; encoding/json: " + stdErr.Error()
		}
		want, err := refTree(data)
		if err != nil {
			return "accepted; encoding/json decoder: " + err.Error()
		}
		if p, ok := sameTree(got, want, "$"); !ok {
			return "trees differ at " + p
		}
		if treeDepth(got) > maxDepth {
			return "accepted a tree deeper than maxDepth"
		}
		return ""
	}
	where := " (offset " + strconv.FormatInt((se.offset), 10) + ": " + se.msg + ")"
	switch {
	case se.msg == emptyConfigMsg:
		if se.offset != 0 || len(bytes.Trim(data, " \t\r\n")) != 0 {
			return "empty-input error for non-empty input" + where
		}
		return ""
	case strings.HasPrefix(se.msg, "nesting deeper than "):
		if syn != nil && syn.Offset <= se.offset {
			return "depth error, but encoding/json fails earlier: " + syn.Error() + where
		}
		if c := data[se.offset]; c != '[' && c != '{' {
			return "depth error not at a bracket" + where
		}
		if stdErr == nil {
			if want, err := refTree(data); err == nil && treeDepth(want) <= maxDepth {
				return "depth error for a shallow tree" + where
			}
		}
		return ""
	}
	if syn == nil {
		return "rejected; encoding/json: " + errString(stdErr) + where
	}
	if strings.HasSuffix(syn.Error(), " after top-level value") {
		// Trailing data: the value before it must parse alike, and the
		// error lies in or just past the next token.
		top := data[:syn.Offset-1]
		if _, tse := parseJSON(top); tse != nil || diffStdlib(top) != "" || se.offset < syn.Offset-1 {
			return "encoding/json: " + syn.Error() + " at " + strconv.FormatInt((syn.Offset), 10) + where
		}
		return ""
	}
	switch se.msg {
	case "unexpected end of JSON input":
		if se.offset != int64(len(data)) || syn.Offset != se.offset ||
			syn.Error() != se.msg && !strings.HasPrefix(syn.Error(), "invalid character ' ' ") {
			return "encoding/json: " + syn.Error() + " at " + strconv.FormatInt((syn.Offset), 10) + where
		}
	default:
		if syn.Error() != se.msg || syn.Offset != se.offset+1 {
			return "encoding/json: " + syn.Error() + " at " + strconv.FormatInt((syn.Offset), 10) + where
		}
	}
	return ""
}

func errString(err error) string {
	if err == nil {
		return "accepted"
	}
	return err.Error()
}

// jsonSeeds are inputs for the differential test and fuzz target.
var jsonSeeds = []string{
	``, ` `, "\t\r\n", `{}`, `[]`, `null`, `true`, `false`, `0`, `-0`, `12`, `-1.5e+10`, `1E-2`, `1.0e3`,
	`{"a":1,"a":2}`, `{"b":[1,{"c":null}],"a":"x"}`, ` [ 1 , 2 ] `,
	`"\"\\\/\b\f\n\r\t"`, `"\u0041\u00e9\u4e2d"`, `"\ud83d\ude00"`, `"\uD83D\uDE00"`,
	`"\ud83d"`, `"\ude00"`, `"\ud83d\u0041"`, `"\ud83dx"`, `"\ud83d\ud83d\ude00"`, `"\u0000"`,
	"\"\xff\xfe\"", "\"\xc3\xa9\"", "\"\xe2\x82\"", "\"\xed\xa0\x80\"", "{\"\xff\":1}",
	`{,`, `{"a"}`, `{"a":1,}`, `{"a":1 "b":2}`, `[1,]`, `[1 2]`, `[,]`, `{1:2}`, `{"a" 1}`,
	`tru`, `trx`, `nul`, `nulL`, `f`, `falsy`, `-`, `-x`, `01`, `1.`, `1.x`, `1e`, `1e+`, `1ex`, `.5`, `+1`,
	`"abc`, `"a` + "\n" + `b"`, `"\x"`, `"\u12"`, `"\u12x4"`, `"\`, `{} {}`, `{} x`, `1 2`, `[`, `{`, `{"a":`,
	"\xef\xbb\xbf{}", "{\"a\":\x00}", `'a'`, `{"a":NaN}`, `[Infinity]`,
	"{\n  \"defaultAction\": \"deny\",\n}",
	strings.Repeat("[", maxDepth) + strings.Repeat("]", maxDepth),
	strings.Repeat("[", maxDepth+1) + strings.Repeat("]", maxDepth+1),
	strings.Repeat(`{"a":`, maxDepth+1) + "1" + strings.Repeat("}", maxDepth+1),
	strings.Repeat("[", maxDepth+1),
	`[` + strings.Repeat("[", maxDepth) + `x`,
}

// TestParseJSONMatchesStdlib checks the hand-written parser against
// encoding/json: the same trees for valid input, the same message and
// offset for invalid input.
func TestParseJSONMatchesStdlib(t *testing.T) {
	var mismatches []string
	for _, s := range jsonSeeds {
		if d := diffStdlib([]byte(s)); d != "" {
			mismatches = append(mismatches, fmt.Sprintf("%q: %s", s, d))
		}
	}
	require.Empty(t, mismatches, "parseJSON differs from encoding/json")
}

// TestParseJSONValues pins decoded values that users write in policies.
func TestParseJSONValues(t *testing.T) {
	n, se := parseJSON([]byte(`{"k\u00e9y": "\ud83d\ude00 \"x\"", "n": -1.50e3, "b": false, "z": null, "a": [], "k\u00e9y": 1}`))
	require.Nil(t, se, "parseJSON: %v", se)
	require.Equal(t, "kéy,n,b,z,a,kéy", strings.Join(n.keys, ","), "keys (order and duplicates must be kept)")
	v := n.vals[0]
	require.Equal(t, jString, v.kind, "string %v %q", v.kind, v.str)
	require.Equal(t, "😀 \"x\"", v.str, "string %v %q", v.kind, v.str)
	v = n.vals[1]
	require.Equal(t, jNumber, v.kind, "number %v %q (the literal text is kept)", v.kind, v.str)
	require.Equal(t, "-1.50e3", v.str, "number %v %q (the literal text is kept)", v.kind, v.str)
	require.Equal(t, jBool, n.vals[2].kind, "false decoded as %+v", n.vals[2])
	require.False(t, n.vals[2].b, "false decoded as %+v", n.vals[2])
	require.Equal(t, jNull, n.vals[3].kind, "null decoded as %+v", n.vals[3])
	require.Equal(t, jArray, n.vals[4].kind, "[] decoded as %+v", n.vals[4])
	require.Empty(t, n.vals[4].elems, "[] decoded as %+v", n.vals[4])
}

// TestParseJSONErrors pins offsets, line/column and messages of syntax
// errors as Load reports them.
func TestParseJSONErrors(t *testing.T) {
	tests := []struct{ in, want string }{
		{"{\n  \"a\": tru\n}", `invalid JSON at byte offset 12 (line 2, column 11): invalid character '\n' in literal true (expecting 'e')`},
		{"{\"a\":\n\t\"x\ty\"}", `invalid JSON at byte offset 9 (line 2, column 4): invalid character '\t' in string literal`},
		{`{"a": "\q"}`, `invalid JSON at byte offset 8 (line 1, column 9): invalid character 'q' in string escape code`},
		{`["\u00g0"]`, `invalid JSON at byte offset 6 (line 1, column 7): invalid character 'g' in \u hexadecimal character escape`},
		{`{"a": 1.}`, `invalid JSON at byte offset 8 (line 1, column 9): invalid character '}' after decimal point in numeric literal`},
		{`{"a": 'b'}`, `invalid JSON at byte offset 6 (line 1, column 7): invalid character '\'' looking for beginning of value`},
		{`{"a" "b"}`, `invalid JSON at byte offset 5 (line 1, column 6): invalid character '"' after object key`},
		{`{} x`, `invalid JSON at byte offset 3 (line 1, column 4): invalid character 'x' looking for beginning of value`},
		{`[] "abc" `, `invalid JSON at byte offset 8 (line 1, column 9): unexpected data after the top-level value`},
		{`{"a": tr`, `invalid JSON at byte offset 8 (line 1, column 9): unexpected end of JSON input`},
		{strings.Repeat("[", 70), `invalid JSON at byte offset 64 (line 1, column 65): nesting deeper than 64 levels`},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			_, diags, err := Load([]byte(tc.in))
			require.Error(t, err, "%q: diagnostics %+v", tc.in, diags)
			require.Len(t, diags, 1, "%q:\n got %+v\nwant %s", tc.in, diags, tc.want)
			require.Empty(t, diags[0].Path, "%q: %+v", tc.in, diags[0])
			require.Equal(t, tc.want, diags[0].Message, "%q", tc.in)
		})
	}
}

// FuzzParseJSON compares parseJSON with encoding/json on arbitrary input.
func FuzzParseJSON(f *testing.F) {
	for _, s := range jsonSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		require.Empty(t, diffStdlib(data), "%q", data)
	})
}

// TestWholeNumber pins the exact evaluation of number literals used for
// integer settings: no float rounding, exponents allowed.
func TestWholeNumber(t *testing.T) {
	tests := []struct {
		lit         string
		v           int64
		whole, huge bool
	}{
		{"0", 0, true, false}, {"-0", 0, true, false}, {"0.000", 0, true, false}, {"0e-5", 0, true, false},
		{"65535", 65535, true, false}, {"-5", -5, true, false}, {"1e3", 1000, true, false}, {"1E+2", 100, true, false},
		{"1.5e1", 15, true, false}, {"0.1e1", 1, true, false}, {"100e-2", 1, true, false}, {"30000.0", 30000, true, false},
		{"1.5", 0, false, false}, {"1e-1", 0, false, false}, {"1.00000000000000001", 0, false, false},
		{"1e-99999999999999999999", 0, false, false},
		{"999999999999999999", 999999999999999999, true, false}, {"1000000000000000000", 0, true, true},
		{"1e400", 0, true, true}, {"-1e99999999999999999999", 0, true, true}, {"123456789012345678901", 0, true, true},
	}
	for _, tc := range tests {
		t.Run(tc.lit, func(t *testing.T) {
			v, whole, huge := wholeNumber(tc.lit)
			require.Equal(t, tc.v, v, "wholeNumber(%s) value (whole %v, huge %v)", tc.lit, whole, huge)
			require.Equal(t, tc.whole, whole, "wholeNumber(%s) whole (value %d, huge %v)", tc.lit, v, huge)
			require.Equal(t, tc.huge, huge, "wholeNumber(%s) huge (value %d, whole %v)", tc.lit, v, whole)
		})
	}
}
