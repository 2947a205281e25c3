package audit

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"
	"unicode/utf16"
	"unicode/utf8"
)

// The audit log stores records in canonical JSON (see Record.Marshal).
// The form was first defined by encoding/json: a payload decoded into
// `any` (numbers as json.Number) and encoded without HTML escaping, and
// the Record struct encoded the same way. Going through `any` was most of
// the CPU of an append, so this file produces the same bytes in one pass
// without it; FuzzCanonicalJSON and FuzzRecordCodec hold it to the
// encoding/json definition byte for byte, because records written by
// either must verify under the other.

// maxDepth is encoding/json's nesting limit: deeper input is an error.
const maxDepth = 10000

// canonicalJSON re-encodes a JSON value with sorted object keys (the last
// of duplicate keys wins), no insignificant whitespace, strings re-escaped
// minimally and numbers kept as written. Invalid UTF-8 is refused rather
// than silently replaced.
func canonicalJSON(b []byte) ([]byte, error) {
	if !utf8.Valid(b) {
		return nil, errors.New("invalid utf-8")
	}
	return canonicalize(b, false)
}

// canonicalize is canonicalJSON without the UTF-8 check; with redact,
// every string member named "text" or "content", at any depth, is
// replaced by "[omitted: N bytes, sha256 HEX]" (the audit log's default:
// chunk and question texts are not kept, their hashes are).
func canonicalize(b []byte, redact bool) ([]byte, error) {
	c := canonicalizer{in: b, redact: redact}
	c.space()
	out, err := c.value(make([]byte, 0, len(b)), 0)
	if err != nil {
		return nil, err
	}
	c.space()
	if c.pos != len(b) {
		return nil, errors.New("trailing data after json value")
	}
	return out, nil
}

// canonicalizer is one pass over a JSON text. members and keys are stacks
// shared by the nested objects being sorted, so an object costs no
// allocation once they have grown.
type canonicalizer struct {
	in      []byte
	pos     int
	redact  bool // replace text and content strings (see canonicalize)
	members []member
	keys    []byte
	tmp     []byte
}

// member is one object member written to the output: its decoded key
// (keys[k0:k1]) and its canonical bytes (out[o0:o1], `"key":value`).
type member struct{ k0, k1, o0, o1 int }

func (c *canonicalizer) space() {
	for c.pos < len(c.in) {
		switch c.in[c.pos] {
		case ' ', '\t', '\n', '\r':
			c.pos++
		default:
			return
		}
	}
}

func (c *canonicalizer) errorf(format string, args ...any) error {
	return fmt.Errorf("json at offset %d: %s", c.pos, fmt.Sprintf(format, args...))
}

func (c *canonicalizer) value(out []byte, depth int) ([]byte, error) {
	if c.pos >= len(c.in) {
		return nil, c.errorf("unexpected end of input")
	}
	switch ch := c.in[c.pos]; {
	case ch == '{':
		return c.object(out, depth+1)
	case ch == '[':
		return c.array(out, depth+1)
	case ch == '"':
		if end := c.plainString(); end > 0 {
			out = append(out, c.in[c.pos:end]...)
			c.pos = end
			return out, nil
		}
		s, err := c.str(nil)
		if err != nil {
			return nil, err
		}
		return appendJSONString(out, s), nil
	case ch == '-' || ch >= '0' && ch <= '9':
		start := c.pos
		if err := c.number(); err != nil {
			return nil, err
		}
		return append(out, c.in[start:c.pos]...), nil
	default:
		for _, lit := range [...]string{"true", "false", "null"} {
			if bytes.HasPrefix(c.in[c.pos:], []byte(lit)) {
				c.pos += len(lit)
				return append(out, lit...), nil
			}
		}
		return nil, c.errorf("invalid character %q", ch)
	}
}

func (c *canonicalizer) object(out []byte, depth int) ([]byte, error) {
	if depth > maxDepth {
		return nil, c.errorf("exceeded max depth")
	}
	c.pos++ // {
	c.space()
	out = append(out, '{')
	if c.pos < len(c.in) && c.in[c.pos] == '}' {
		c.pos++
		return append(out, '}'), nil
	}
	base, kbase, start := len(c.members), len(c.keys), len(out)
	defer func() { c.members, c.keys = c.members[:base], c.keys[:kbase] }()
	for {
		if c.pos >= len(c.in) || c.in[c.pos] != '"' {
			return nil, c.errorf("want an object key")
		}
		k0 := len(c.keys)
		keys, err := c.str(c.keys)
		if err != nil {
			return nil, err
		}
		c.keys = keys
		m := member{k0: k0, k1: len(c.keys), o0: len(out)}
		out = appendJSONString(out, c.keys[m.k0:m.k1])
		c.space()
		if c.pos >= len(c.in) || c.in[c.pos] != ':' {
			return nil, c.errorf("want ':' after an object key")
		}
		c.pos++
		c.space()
		out = append(out, ':')
		if k := string(c.keys[m.k0:m.k1]); c.redact && (k == "text" || k == "content") && c.pos < len(c.in) && c.in[c.pos] == '"' {
			var s []byte
			if end := c.plainString(); end > 0 {
				s, c.pos = c.in[c.pos+1:end-1], end
			} else if s, err = c.str(nil); err != nil {
				return nil, err
			}
			out = appendOmitted(out, s)
		} else if out, err = c.value(out, depth); err != nil {
			return nil, err
		}
		m.o1 = len(out)
		c.members = append(c.members, m)
		c.space()
		if c.pos >= len(c.in) {
			return nil, c.errorf("unexpected end of input in an object")
		}
		if c.in[c.pos] == '}' {
			c.pos++
			break
		}
		if c.in[c.pos] != ',' {
			return nil, c.errorf("want ',' or '}' in an object")
		}
		c.pos++
		c.space()
	}
	// Members in key order, a later duplicate winning as decoding into a
	// map does; the stable sort costs a pass when they are already sorted.
	ms := c.members[base:]
	key := func(m member) []byte { return c.keys[m.k0:m.k1] }
	slices.SortStableFunc(ms, func(a, b member) int { return bytes.Compare(key(a), key(b)) })
	c.tmp = append(c.tmp[:0], out[start:]...)
	out = out[:start]
	first := true
	for i, m := range ms {
		if i+1 < len(ms) && bytes.Equal(key(m), key(ms[i+1])) {
			continue
		}
		if !first {
			out = append(out, ',')
		}
		first = false
		out = append(out, c.tmp[m.o0-start:m.o1-start]...)
	}
	return append(out, '}'), nil
}

func (c *canonicalizer) array(out []byte, depth int) ([]byte, error) {
	if depth > maxDepth {
		return nil, c.errorf("exceeded max depth")
	}
	c.pos++ // [
	c.space()
	out = append(out, '[')
	if c.pos < len(c.in) && c.in[c.pos] == ']' {
		c.pos++
		return append(out, ']'), nil
	}
	for {
		var err error
		if out, err = c.value(out, depth); err != nil {
			return nil, err
		}
		c.space()
		if c.pos >= len(c.in) {
			return nil, c.errorf("unexpected end of input in an array")
		}
		if c.in[c.pos] == ']' {
			c.pos++
			return append(out, ']'), nil
		}
		if c.in[c.pos] != ',' {
			return nil, c.errorf("want ',' or ']' in an array")
		}
		c.pos++
		c.space()
		out = append(out, ',')
	}
}

// number checks the JSON number grammar and moves past it.
func (c *canonicalizer) number() error {
	in, i := c.in, c.pos
	digits := func() int {
		n := 0
		for i < len(in) && in[i] >= '0' && in[i] <= '9' {
			i++
			n++
		}
		return n
	}
	if in[i] == '-' {
		i++
	}
	switch {
	case i < len(in) && in[i] == '0':
		i++
	case digits() == 0:
		c.pos = i
		return c.errorf("invalid number")
	}
	if i < len(in) && in[i] == '.' {
		i++
		if digits() == 0 {
			c.pos = i
			return c.errorf("invalid number")
		}
	}
	if i < len(in) && (in[i] == 'e' || in[i] == 'E') {
		i++
		if i < len(in) && (in[i] == '+' || in[i] == '-') {
			i++
		}
		if digits() == 0 {
			c.pos = i
			return c.errorf("invalid number")
		}
	}
	c.pos = i
	return nil
}

// appendOmitted appends the JSON string that stands for a redacted text:
// "[omitted: N bytes, sha256 HEX]".
func appendOmitted(out, text []byte) []byte {
	sum := sha256.Sum256(text)
	out = append(out, `"[omitted: `...)
	out = strconv.AppendInt(out, int64(len(text)), 10)
	out = append(out, ` bytes, sha256 `...)
	out = hex.AppendEncode(out, sum[:])
	return append(out, `]"`...)
}

// plainString returns the end of the string at c.pos when its raw bytes
// are already its canonical encoding (no escapes, no control characters,
// no U+2028 or U+2029: the common case), else 0.
func (c *canonicalizer) plainString() int {
	in := c.in
	for i := c.pos + 1; i < len(in); i++ {
		switch b := in[i]; {
		case b == '"':
			return i + 1
		case b < 0x20 || b == '\\':
			return 0
		case b == 0xE2 && i+2 < len(in) && in[i+1] == 0x80 && (in[i+2] == 0xA8 || in[i+2] == 0xA9):
			return 0
		}
	}
	return 0
}

// str decodes the string at c.pos (which is '"') onto dst, as
// encoding/json does: a lone or broken UTF-16 surrogate becomes U+FFFD.
func (c *canonicalizer) str(dst []byte) ([]byte, error) {
	in := c.in
	i := c.pos + 1
	start := i
	for {
		if i >= len(in) {
			c.pos = i
			return nil, c.errorf("unexpected end of input in a string")
		}
		switch b := in[i]; {
		case b == '"':
			c.pos = i + 1
			return append(dst, in[start:i]...), nil
		case b < 0x20:
			c.pos = i
			return nil, c.errorf("control character in a string")
		case b != '\\':
			i++
			continue
		}
		dst = append(dst, in[start:i]...)
		if i+1 >= len(in) {
			c.pos = i
			return nil, c.errorf("unexpected end of input in a string")
		}
		switch e := in[i+1]; e {
		case '"', '\\', '/':
			dst = append(dst, e)
			i += 2
		case 'b':
			dst, i = append(dst, '\b'), i+2
		case 'f':
			dst, i = append(dst, '\f'), i+2
		case 'n':
			dst, i = append(dst, '\n'), i+2
		case 'r':
			dst, i = append(dst, '\r'), i+2
		case 't':
			dst, i = append(dst, '\t'), i+2
		case 'u':
			r := hex4(in[i+2:])
			if r < 0 {
				c.pos = i
				return nil, c.errorf("invalid \\u escape")
			}
			i += 6
			if utf16.IsSurrogate(r) {
				if len(in) >= i+6 && in[i] == '\\' && in[i+1] == 'u' {
					if r2 := hex4(in[i+2:]); r2 >= 0 {
						if d := utf16.DecodeRune(r, r2); d != utf8.RuneError {
							dst = utf8.AppendRune(dst, d)
							i += 6
							break
						}
					}
				}
				r = utf8.RuneError
			}
			dst = utf8.AppendRune(dst, r)
		default:
			c.pos = i
			return nil, c.errorf("invalid escape %q", e)
		}
		start = i
	}
}

// hex4 returns the value of four hex digits at the start of b, or -1.
func hex4(b []byte) rune {
	if len(b) < 4 {
		return -1
	}
	var r rune
	for _, ch := range b[:4] {
		switch {
		case ch >= '0' && ch <= '9':
			ch -= '0'
		case ch >= 'a' && ch <= 'f':
			ch = ch - 'a' + 10
		case ch >= 'A' && ch <= 'F':
			ch = ch - 'A' + 10
		default:
			return -1
		}
		r = r<<4 | rune(ch)
	}
	return r
}

const hexDigits = "0123456789abcdef"

// appendJSONString appends s as a JSON string the way encoding/json does
// without HTML escaping: short escapes for \b \f \n \r \t, \u00XX for the
// other control characters, \ufffd for invalid UTF-8, U+2028 and U+2029
// escaped.
func appendJSONString[S []byte | string](dst []byte, s S) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		b := s[i]
		if b < utf8.RuneSelf {
			if b >= 0x20 && b != '"' && b != '\\' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch b {
			case '\\', '"':
				dst = append(dst, '\\', b)
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[b>>4], hexDigits[b&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(string(s[i:min(len(s), i+utf8.UTFMax)]))
		switch {
		case r == utf8.RuneError && size == 1:
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

// appendRecord appends r's canonical JSON, payload as given (which must
// already be canonical): the keys in sorted order, optional ones omitted
// when empty, as encoding/json encodes the Record struct.
func appendRecord(dst []byte, r *Record, payload []byte) ([]byte, error) {
	dst = append(dst, `{"ce_id":`...)
	dst = appendJSONString(dst, r.ID)
	if r.Source != "" {
		dst = append(dst, `,"ce_source":`...)
		dst = appendJSONString(dst, r.Source)
	}
	dst = append(dst, `,"ce_type":`...)
	dst = appendJSONString(dst, r.Type)
	if r.CorrelationID != "" {
		dst = append(dst, `,"correlation_id":`...)
		dst = appendJSONString(dst, r.CorrelationID)
	}
	dst = append(dst, `,"offset":`...)
	dst = strconv.AppendInt(dst, r.Offset, 10)
	dst = append(dst, `,"partition":`...)
	dst = strconv.AppendInt(dst, int64(r.Partition), 10)
	dst = append(dst, `,"payload":`...)
	dst = append(dst, payload...)
	if r.PayloadEncoding != "" {
		dst = append(dst, `,"payload_encoding":`...)
		dst = appendJSONString(dst, r.PayloadEncoding)
	}
	dst = append(dst, `,"seq":`...)
	dst = strconv.AppendUint(dst, r.Seq, 10)
	dst = append(dst, `,"tenant":`...)
	dst = appendJSONString(dst, r.Tenant)
	dst = append(dst, `,"time":"`...)
	dst, err := r.Time.AppendText(dst)
	if err != nil {
		return nil, fmt.Errorf("encode record time: %w", err)
	}
	dst = append(dst, `","topic":`...)
	dst = appendJSONString(dst, r.Topic)
	return append(dst, '}'), nil
}

// decodeRecord decodes record JSON as encoding/json would into a Record
// with unknown fields disallowed; it is lenient about key order and
// whitespace, which UnmarshalRecord catches by encoding again. The
// payload aliases b.
func decodeRecord(b []byte) (Record, error) {
	var r Record
	c := canonicalizer{in: b}
	c.space()
	if c.pos >= len(b) || b[c.pos] != '{' {
		return r, c.errorf("record is not a json object")
	}
	c.pos++
	c.space()
	if c.pos < len(b) && b[c.pos] == '}' {
		c.pos++
		return r, c.end()
	}
	var key []byte
	for {
		if c.pos >= len(b) || b[c.pos] != '"' {
			return r, c.errorf("want an object key")
		}
		var err error
		if key, err = c.str(key[:0]); err != nil {
			return r, err
		}
		c.space()
		if c.pos >= len(b) || b[c.pos] != ':' {
			return r, c.errorf("want ':' after an object key")
		}
		c.pos++
		c.space()
		if err := c.field(&r, string(key)); err != nil {
			return r, err
		}
		c.space()
		if c.pos >= len(b) {
			return r, c.errorf("unexpected end of input in a record")
		}
		if b[c.pos] == '}' {
			c.pos++
			return r, c.end()
		}
		if b[c.pos] != ',' {
			return r, c.errorf("want ',' or '}' in a record")
		}
		c.pos++
		c.space()
	}
}

// skip moves past the value at c.pos, checking only that its strings end
// and its brackets balance: a decoded payload is either authenticated
// bytes the log wrote, or canonicalized again by UnmarshalRecord.
func (c *canonicalizer) skip() error {
	depth := 0
	for c.pos < len(c.in) {
		switch c.in[c.pos] {
		case '"':
			if _, err := c.str(c.tmp[:0]); err != nil {
				return err
			}
		case '{', '[':
			depth++
			c.pos++
		case '}', ']':
			if depth == 0 {
				return c.errorf("unbalanced %q", c.in[c.pos])
			}
			depth--
			c.pos++
		case ',', ':':
			if depth == 0 {
				return nil
			}
			c.pos++
		default:
			c.pos++
		}
		if depth == 0 {
			c.space()
			if c.pos < len(c.in) && c.in[c.pos] != ',' && c.in[c.pos] != '}' {
				continue // a scalar's later bytes
			}
			return nil
		}
	}
	return c.errorf("unexpected end of input in a value")
}

func (c *canonicalizer) end() error {
	c.space()
	if c.pos != len(c.in) {
		return c.errorf("trailing data after the record")
	}
	return nil
}

// field decodes the value of one record field at c.pos into r.
func (c *canonicalizer) field(r *Record, key string) error {
	text := func(dst *string) error {
		if c.pos >= len(c.in) || c.in[c.pos] != '"' {
			return c.errorf("field %q: want a string", key)
		}
		s, err := c.str(c.tmp[:0])
		c.tmp = s
		*dst = string(s)
		return err
	}
	integer := func(bits int, signed bool) (int64, uint64, error) {
		start := c.pos
		if c.pos >= len(c.in) || (c.in[c.pos] != '-' && (c.in[c.pos] < '0' || c.in[c.pos] > '9')) {
			return 0, 0, c.errorf("field %q: want a number", key)
		}
		if err := c.number(); err != nil {
			return 0, 0, err
		}
		if signed {
			v, err := strconv.ParseInt(string(c.in[start:c.pos]), 10, bits)
			return v, 0, err
		}
		v, err := strconv.ParseUint(string(c.in[start:c.pos]), 10, bits)
		return 0, v, err
	}
	var err error
	switch key {
	case "ce_id":
		return text(&r.ID)
	case "ce_source":
		return text(&r.Source)
	case "ce_type":
		return text(&r.Type)
	case "correlation_id":
		return text(&r.CorrelationID)
	case "payload_encoding":
		return text(&r.PayloadEncoding)
	case "tenant":
		return text(&r.Tenant)
	case "topic":
		return text(&r.Topic)
	case "offset":
		r.Offset, _, err = integer(64, true)
	case "partition":
		var p int64
		p, _, err = integer(strconv.IntSize, true)
		r.Partition = int(p)
	case "seq":
		_, r.Seq, err = integer(64, false)
	case "time":
		var s string
		if err = text(&s); err == nil {
			r.Time, err = time.Parse(time.RFC3339Nano, s)
		}
	case "payload":
		start := c.pos
		if err = c.skip(); err == nil {
			r.Payload = c.in[start:c.pos:c.pos]
		}
	default:
		return c.errorf("unknown field %q", key)
	}
	if err != nil {
		return fmt.Errorf("record field %q: %w", key, err)
	}
	return nil
}
