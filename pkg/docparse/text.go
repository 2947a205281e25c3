package docparse

import (
	"context"
	"strings"
)

// checkEvery is how many loop steps a parser takes between context checks.
const checkEvery = 1024

// decodeInput decodes the text of in using its declared charset.
func decodeInput(in Input) (string, string) {
	return decodeText(in.Data, charsetParam(in.ContentType))
}

// parseText parses plain text: paragraphs separated by blank lines.
func parseText(ctx context.Context, in Input) (Document, error) {
	s, enc := decodeInput(in)
	var b builder
	b.doc.Encoding = enc
	if err := paragraphs(ctx, unixLines(s), func(p string) { b.text(p, 0) }); err != nil {
		return Document{}, err
	}
	return b.doc, nil
}

// paragraphs calls fn with each run of non-blank lines of s.
func paragraphs(ctx context.Context, s string, fn func(string)) error {
	n := 0
	for s != "" {
		if n++; n%checkEvery == 0 && ctx.Err() != nil {
			return ctx.Err()
		}
		i := blankLine(s)
		if i < 0 {
			fn(s)
			return nil
		}
		fn(s[:i])
		s = s[i:]
		s = strings.TrimLeft(s, " \t\n")
	}
	return nil
}

// blankLine returns the index of the first line break that starts a blank
// line in s (a "\n" followed by optional spaces and another "\n"), or -1.
func blankLine(s string) int {
	for off := 0; ; {
		i := strings.IndexByte(s[off:], '\n')
		if i < 0 {
			return -1
		}
		i += off
		j := i + 1
		for j < len(s) && (s[j] == ' ' || s[j] == '\t') {
			j++
		}
		if j < len(s) && s[j] == '\n' {
			return i
		}
		off = i + 1
	}
}
