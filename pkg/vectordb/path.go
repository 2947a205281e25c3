package vectordb

import (
	"strconv"
	"strings"

	"github.com/qdrant/go-client/qdrant"
)

// pathItem is one step of a payload key path: an object key, an array index,
// or every array element ("[]").
type pathItem struct {
	key   string
	index int
	kind  byte // 'k' key, 'i' index, 'w' wildcard
}

// keyPath is a parsed payload key such as "a.b[].c" or "tags[0]".
type keyPath []pathItem

// parseKeyPath parses Qdrant's payload key syntax: dot-separated keys, each
// optionally followed by "[]" (all elements) or "[n]" (one element). Keys may
// be double-quoted to contain dots or brackets.
func parseKeyPath(s string) (keyPath, error) {
	if s == "" {
		return nil, invalidf("payload key is empty")
	}
	var p keyPath
	i := 0
	for {
		// key
		var key string
		if i < len(s) && s[i] == '"' {
			j := strings.IndexByte(s[i+1:], '"')
			if j < 0 {
				return nil, invalidf("bad payload key %q: unterminated quote", s)
			}
			key = s[i+1 : i+1+j]
			i += j + 2
		} else {
			j := i
			for j < len(s) && s[j] != '.' && s[j] != '[' {
				j++
			}
			key = s[i:j]
			i = j
		}
		if key == "" {
			return nil, invalidf("bad payload key %q: empty segment", s)
		}
		p = append(p, pathItem{key: key, kind: 'k'})
		for i < len(s) && s[i] == '[' {
			j := strings.IndexByte(s[i:], ']')
			if j < 0 {
				return nil, invalidf("bad payload key %q: unterminated bracket", s)
			}
			inner := s[i+1 : i+j]
			if inner == "" {
				p = append(p, pathItem{kind: 'w'})
			} else {
				n, err := strconv.Atoi(inner)
				if err != nil || n < 0 {
					return nil, invalidf("bad payload key %q: bad index %q", s, inner)
				}
				p = append(p, pathItem{kind: 'i', index: n})
			}
			i += j + 1
		}
		if i == len(s) {
			return p, nil
		}
		if s[i] != '.' {
			return nil, invalidf("bad payload key %q", s)
		}
		i++
	}
}

// values returns the payload values the path leads to. Keys do not descend
// into arrays implicitly (use "[]"), as in Qdrant.
func (p keyPath) values(payload map[string]*qdrant.Value, out []*qdrant.Value) []*qdrant.Value {
	v, ok := payload[p[0].key]
	if !ok {
		return out
	}
	if len(p) == 1 && out == nil {
		return []*qdrant.Value{v}
	}
	return collectValues(p[1:], v, out)
}

func collectValues(p keyPath, v *qdrant.Value, out []*qdrant.Value) []*qdrant.Value {
	if v == nil {
		return out
	}
	if len(p) == 0 {
		return append(out, v)
	}
	switch p[0].kind {
	case 'k':
		if s := v.GetStructValue(); s != nil {
			if c, ok := s.GetFields()[p[0].key]; ok {
				return collectValues(p[1:], c, out)
			}
		}
	case 'i':
		if l := v.GetListValue(); l != nil && p[0].index < len(l.GetValues()) {
			return collectValues(p[1:], l.GetValues()[p[0].index], out)
		}
	case 'w':
		if l := v.GetListValue(); l != nil {
			for _, c := range l.GetValues() {
				out = collectValues(p[1:], c, out)
			}
		}
	}
	return out
}
