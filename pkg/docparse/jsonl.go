package docparse

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// maxJSONDepth bounds the nesting of a JSON Lines record that is rendered.
const maxJSONDepth = 32

// parseJSONL parses JSON Lines: every non-blank line is one JSON value and
// becomes one block. Objects render as "key: value" lines in key order
// (nested keys dotted, arrays of scalars joined with ", "); a bare string is
// its own text. A line that is not valid JSON makes the document unreadable.
func parseJSONL(ctx context.Context, in Input) (Document, error) {
	s, enc := decodeInput(in)
	var b builder
	b.doc.Encoding = enc
	var sb strings.Builder
	for n, line := range strings.Split(unixLines(s), "\n") {
		if n%checkEvery == 0 && ctx.Err() != nil {
			return Document{}, ctx.Err()
		}
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		dec := json.NewDecoder(strings.NewReader(line))
		dec.UseNumber()
		var v any
		if err := dec.Decode(&v); err != nil {
			return Document{}, fmt.Errorf("%w: jsonl line %d: %v", ErrUnreadable, n+1, err)
		}
		if dec.More() {
			return Document{}, fmt.Errorf("%w: jsonl line %d: trailing data", ErrUnreadable, n+1)
		}
		sb.Reset()
		renderJSON(&sb, "", v, 0)
		b.text(sb.String(), 0)
	}
	return b.doc, nil
}

// renderJSON writes v as "key: value" lines under prefix.
func renderJSON(sb *strings.Builder, prefix string, v any, depth int) {
	if depth > maxJSONDepth {
		return
	}
	line := func(val string) {
		if val == "" {
			return
		}
		if sb.Len() > 0 {
			sb.WriteByte('\n')
		}
		if prefix != "" {
			sb.WriteString(prefix)
			sb.WriteString(": ")
		}
		sb.WriteString(val)
	}
	switch x := v.(type) {
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			p := k
			if prefix != "" {
				p = prefix + "." + k
			}
			renderJSON(sb, p, x[k], depth+1)
		}
	case []any:
		if allScalars(x) {
			parts := make([]string, 0, len(x))
			for _, e := range x {
				if s := scalar(e); s != "" {
					parts = append(parts, s)
				}
			}
			line(strings.Join(parts, ", "))
			return
		}
		for i, e := range x {
			p := strconv.Itoa(i)
			if prefix != "" {
				p = prefix + "." + p
			}
			renderJSON(sb, p, e, depth+1)
		}
	default:
		line(scalar(x))
	}
}

// allScalars reports whether a holds no objects or arrays.
func allScalars(a []any) bool {
	for _, e := range a {
		switch e.(type) {
		case map[string]any, []any:
			return false
		}
	}
	return true
}

// scalar renders a JSON scalar; null renders as "".
func scalar(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case json.Number:
		return x.String()
	case bool:
		return strconv.FormatBool(x)
	}
	return ""
}
