package policy

import "unicode/utf8"

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

// emptyConfigMsg is the syntax error for input that holds only white space.
const emptyConfigMsg = `the configuration is empty; expected a JSON object such as {"defaultAction": "deny", "rules": []}`

// parseJSON builds a jnode tree from data (RFC 8259 JSON), or returns a
// syntaxError at the offset of the first offending byte (len(data) when
// the input ends early). The messages follow encoding/json's wording
// ("invalid character 'x' looking for beginning of value"), and strings are
// decoded the way encoding/json decodes them: invalid UTF-8 and unpaired
// surrogate escapes become U+FFFD. Nesting is limited to maxDepth.
func parseJSON(data []byte) (*jnode, *syntaxError) {
	p := jparser{data: data}
	p.skipSpace()
	if p.pos == len(data) {
		return nil, &syntaxError{offset: 0, msg: emptyConfigMsg}
	}
	n := p.value(0)
	if p.err != nil {
		return nil, p.err
	}
	p.skipSpace()
	if p.pos < len(data) {
		return nil, p.trailing()
	}
	return n, nil
}

// trailing reports what follows the top-level value. Like the
// encoding/json token stream this parser replaced, the offset is just past
// the next token: past an opening bracket, or past a complete scalar. An
// invalid token is reported as such.
func (p *jparser) trailing() *syntaxError {
	switch p.data[p.pos] {
	case '{', '[':
		p.pos++
	default:
		if p.value(0) == nil {
			return p.err
		}
	}
	return &syntaxError{offset: int64(p.pos), msg: "unexpected data after the top-level value"}
}

// jparser is a recursive-descent JSON parser over a byte slice. After the
// first error, err is set and every method returns nil.
type jparser struct {
	data []byte
	pos  int
	err  *syntaxError
	// slab hands out nodes in blocks (one allocation per jnodeBlock nodes).
	slab []jnode
	// keyStack, valStack and elemStack hold the members of the objects and
	// arrays being parsed (nested ones stacked on top); a finished container
	// copies its members into exactly sized slices, so that growing them
	// costs no garbage.
	keyStack  []string
	valStack  []*jnode
	elemStack []*jnode
}

// jnodeBlock is the number of nodes allocated at once.
const jnodeBlock = 64

// node returns a new node of kind k.
func (p *jparser) node(k jkind) *jnode {
	if len(p.slab) == 0 {
		p.slab = make([]jnode, jnodeBlock)
	}
	n := &p.slab[0]
	p.slab = p.slab[1:]
	n.kind = k
	return n
}

// skipSpace advances past JSON white space (space, tab, CR, LF).
func (p *jparser) skipSpace() {
	for p.pos < len(p.data) {
		switch p.data[p.pos] {
		case ' ', '\t', '\n', '\r':
			p.pos++
		default:
			return
		}
	}
}

// fail records "invalid character ..." for the byte at offset i.
func (p *jparser) fail(i int, context string) *jnode {
	if p.err == nil {
		p.err = &syntaxError{offset: int64(i), msg: "invalid character " + quoteChar(p.data[i]) + " " + context}
	}
	return nil
}

// eof records that the input ended inside a value.
func (p *jparser) eof() *jnode {
	if p.err == nil {
		p.err = &syntaxError{offset: int64(len(p.data)), msg: "unexpected end of JSON input"}
	}
	return nil
}

// quoteChar renders an offending byte in single quotes, as encoding/json's
// syntax errors do.
func quoteChar(c byte) string {
	switch c {
	case '\'':
		return `'\''`
	case '"':
		return `'"'`
	}
	s := quote(string(rune(c)))
	return "'" + s[1:len(s)-1] + "'"
}

// value parses one value starting at the next non-space byte.
func (p *jparser) value(depth int) *jnode {
	p.skipSpace()
	if p.pos >= len(p.data) {
		return p.eof()
	}
	switch c := p.data[p.pos]; {
	case c == '{':
		return p.object(depth)
	case c == '[':
		return p.array(depth)
	case c == '"':
		s, ok := p.string()
		if !ok {
			return nil
		}
		n := p.node(jString)
		n.str = s
		return n
	case c == '-' || c >= '0' && c <= '9':
		return p.number()
	case c == 't':
		n := p.node(jBool)
		n.b = true
		return p.literal("true", n)
	case c == 'f':
		return p.literal("false", p.node(jBool))
	case c == 'n':
		return p.literal("null", p.node(jNull))
	}
	return p.fail(p.pos, "looking for beginning of value")
}

// tooDeep reports a container that would exceed maxDepth.
func (p *jparser) tooDeep() *jnode {
	p.err = &syntaxError{offset: int64(p.pos), msg: "nesting deeper than " + itoa(maxDepth) + " levels"}
	return nil
}

// object parses an object; p.pos is at '{'.
func (p *jparser) object(depth int) *jnode {
	if depth >= maxDepth {
		return p.tooDeep()
	}
	p.pos++
	n := p.node(jObject)
	p.skipSpace()
	if p.pos < len(p.data) && p.data[p.pos] == '}' {
		p.pos++
		return n
	}
	base := len(p.keyStack)
	defer func() {
		clear(p.keyStack[base:])
		clear(p.valStack[base:])
		p.keyStack, p.valStack = p.keyStack[:base], p.valStack[:base]
	}()
	for {
		p.skipSpace()
		if p.pos >= len(p.data) {
			return p.eof()
		}
		if p.data[p.pos] != '"' {
			return p.fail(p.pos, "looking for beginning of object key string")
		}
		k, ok := p.string()
		if !ok {
			return nil
		}
		p.skipSpace()
		if p.pos >= len(p.data) {
			return p.eof()
		}
		if p.data[p.pos] != ':' {
			return p.fail(p.pos, "after object key")
		}
		p.pos++
		v := p.value(depth + 1)
		if v == nil {
			return nil
		}
		p.keyStack = append(p.keyStack, k)
		p.valStack = append(p.valStack, v)
		p.skipSpace()
		if p.pos >= len(p.data) {
			return p.eof()
		}
		switch p.data[p.pos] {
		case ',':
			p.pos++
		case '}':
			p.pos++
			n.keys = append([]string(nil), p.keyStack[base:]...)
			n.vals = append([]*jnode(nil), p.valStack[base:]...)
			return n
		default:
			return p.fail(p.pos, "after object key:value pair")
		}
	}
}

// array parses an array; p.pos is at '['.
func (p *jparser) array(depth int) *jnode {
	if depth >= maxDepth {
		return p.tooDeep()
	}
	p.pos++
	n := p.node(jArray)
	p.skipSpace()
	if p.pos < len(p.data) && p.data[p.pos] == ']' {
		p.pos++
		return n
	}
	base := len(p.elemStack)
	defer func() {
		clear(p.elemStack[base:])
		p.elemStack = p.elemStack[:base]
	}()
	for {
		v := p.value(depth + 1)
		if v == nil {
			return nil
		}
		p.elemStack = append(p.elemStack, v)
		p.skipSpace()
		if p.pos >= len(p.data) {
			return p.eof()
		}
		switch p.data[p.pos] {
		case ',':
			p.pos++
		case ']':
			p.pos++
			n.elems = append([]*jnode(nil), p.elemStack[base:]...)
			return n
		default:
			return p.fail(p.pos, "after array element")
		}
	}
}

// literal parses true, false or null; p.pos is at its first byte.
func (p *jparser) literal(word string, n *jnode) *jnode {
	for i := 1; i < len(word); i++ {
		j := p.pos + i
		if j >= len(p.data) {
			return p.eof()
		}
		if p.data[j] != word[i] {
			return p.fail(j, "in literal "+word+" (expecting "+quoteChar(word[i])+")")
		}
	}
	p.pos += len(word)
	return n
}

// isDigit reports whether c is an ASCII digit.
func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// number parses a number, keeping its literal text; p.pos is at '-' or a
// digit. The byte after the number is left for the caller to judge.
func (p *jparser) number() *jnode {
	d := p.data
	start, i := p.pos, p.pos
	if d[i] == '-' {
		i++
		if i >= len(d) {
			return p.eof()
		}
		if !isDigit(d[i]) {
			return p.fail(i, "in numeric literal")
		}
	}
	if d[i] == '0' {
		i++
	} else {
		for i < len(d) && isDigit(d[i]) {
			i++
		}
	}
	if i < len(d) && d[i] == '.' {
		i++
		if i >= len(d) {
			return p.eof()
		}
		if !isDigit(d[i]) {
			return p.fail(i, "after decimal point in numeric literal")
		}
		for i < len(d) && isDigit(d[i]) {
			i++
		}
	}
	if i < len(d) && (d[i] == 'e' || d[i] == 'E') {
		i++
		if i < len(d) && (d[i] == '+' || d[i] == '-') {
			i++
		}
		if i >= len(d) {
			return p.eof()
		}
		if !isDigit(d[i]) {
			return p.fail(i, "in exponent of numeric literal")
		}
		for i < len(d) && isDigit(d[i]) {
			i++
		}
	}
	p.pos = i
	n := p.node(jNumber)
	n.str = string(d[start:i])
	return n
}

// hexVal returns the value of a hex digit, or -1.
func hexVal(c byte) rune {
	switch {
	case c >= '0' && c <= '9':
		return rune(c - '0')
	case c >= 'a' && c <= 'f':
		return rune(c - 'a' + 10)
	case c >= 'A' && c <= 'F':
		return rune(c - 'A' + 10)
	}
	return -1
}

// string parses a string literal; p.pos is at the opening quote. It checks
// the syntax first and decodes only when the literal has escapes or
// non-ASCII bytes.
func (p *jparser) string() (string, bool) {
	d := p.data
	start := p.pos + 1
	plain := true
	i := start
	for {
		if i >= len(d) {
			p.eof()
			return "", false
		}
		c := d[i]
		switch {
		case c == '"':
			p.pos = i + 1
			if plain {
				return string(d[start:i]), true
			}
			return unescape(d[start:i]), true
		case c == '\\':
			plain = false
			i++
			if i >= len(d) {
				p.eof()
				return "", false
			}
			switch d[i] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i++
			case 'u':
				for k := 0; k < 4; k++ {
					i++
					if i >= len(d) {
						p.eof()
						return "", false
					}
					if hexVal(d[i]) < 0 {
						p.fail(i, `in \u hexadecimal character escape`)
						return "", false
					}
				}
				i++
			default:
				p.fail(i, "in string escape code")
				return "", false
			}
		case c < 0x20:
			p.fail(i, "in string literal")
			return "", false
		default:
			if c >= utf8.RuneSelf {
				plain = false
			}
			i++
		}
	}
}

// hex4 decodes the four hex digits of a \u escape whose syntax has already
// been checked.
func hex4(b []byte) rune {
	return hexVal(b[0])<<12 | hexVal(b[1])<<8 | hexVal(b[2])<<4 | hexVal(b[3])
}

// unescape decodes the body of a syntactically valid string literal.
// A high surrogate escape followed by a low one forms one character; any
// other surrogate escape, and every invalid UTF-8 byte, becomes U+FFFD.
func unescape(raw []byte) string {
	b := make([]byte, 0, len(raw))
	for i := 0; i < len(raw); {
		c := raw[i]
		if c == '\\' {
			e := raw[i+1]
			i += 2
			switch e {
			case 'b':
				b = append(b, '\b')
			case 'f':
				b = append(b, '\f')
			case 'n':
				b = append(b, '\n')
			case 'r':
				b = append(b, '\r')
			case 't':
				b = append(b, '\t')
			case 'u':
				r := hex4(raw[i:])
				i += 4
				if r >= 0xD800 && r < 0xE000 {
					if r < 0xDC00 && i+6 <= len(raw) && raw[i] == '\\' && raw[i+1] == 'u' {
						if r2 := hex4(raw[i+2:]); r2 >= 0xDC00 && r2 < 0xE000 {
							b = utf8.AppendRune(b, 0x10000+(r-0xD800)<<10+(r2-0xDC00))
							i += 6
							continue
						}
					}
					r = utf8.RuneError
				}
				b = utf8.AppendRune(b, r)
			default: // '"', '\\', '/'
				b = append(b, e)
			}
			continue
		}
		if c < utf8.RuneSelf {
			b = append(b, c)
			i++
			continue
		}
		r, size := utf8.DecodeRune(raw[i:])
		if r == utf8.RuneError && size == 1 {
			b = utf8.AppendRune(b, utf8.RuneError)
		} else {
			b = append(b, raw[i:i+size]...)
		}
		i += size
	}
	return string(b)
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
		return "string " + quote(s)
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
