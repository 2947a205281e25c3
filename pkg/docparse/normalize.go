package docparse

import (
	"strings"
	"unicode"

	"golang.org/x/text/unicode/norm"
)

// normalize returns s in Unicode NFC with normalized whitespace: line breaks
// become "\n", other whitespace runs become one space, lines are trimmed,
// control and zero-width characters are dropped, at most one empty line
// separates paragraphs, and there are no leading or trailing empty lines.
func normalize(s string) string {
	s = unixLines(s)
	var b strings.Builder
	b.Grow(len(s))
	newlines := 0  // pending line breaks
	space := false // pending space inside a line
	started := false
	for _, r := range s {
		switch {
		case r == '\n' || r == '\r' || r == '\u2028' || r == '\u2029' || r == '\v' || r == '\f':
			if r == '\r' || r == '\n' || r == '\v' {
				newlines++
			} else {
				newlines += 2
			}
			space = false
			continue
		case r == '\t' || r == ' ' || unicode.IsSpace(r):
			space = true
			continue
		case r == '\u200b' || r == '\ufeff' || r == '\u00ad':
			continue
		case unicode.IsControl(r):
			continue
		}
		if started {
			switch {
			case newlines >= 2:
				b.WriteString("\n\n")
			case newlines == 1:
				b.WriteByte('\n')
			case space:
				b.WriteByte(' ')
			}
		}
		newlines, space, started = 0, false, true
		b.WriteRune(r)
	}
	// NFC last: dropping a control character can bring a base letter and a
	// combining mark together.
	return norm.NFC.String(b.String())
}

// unixLines rewrites "\r\n" and "\r" line breaks to "\n".
func unixLines(s string) string {
	if !strings.Contains(s, "\r") {
		return s
	}
	s = strings.ReplaceAll(s, "\r\n", "\n")
	return strings.ReplaceAll(s, "\r", "\n")
}

// cleanTitle normalizes a title to one NFC line.
func cleanTitle(s string) string {
	return strings.Join(strings.Fields(normalize(s)), " ")
}

// builder accumulates the blocks of a document under a heading stack.
type builder struct {
	doc   Document
	stack []heading
	path  []string
}

type heading struct {
	level int
	text  string
}

// heading records a heading of the given level (1 = outermost), adds it as
// a block and returns its normalized text; an empty heading is ignored and
// returns "".
func (b *builder) heading(level int, text string) string {
	text = normalize(text)
	text = strings.Join(strings.Fields(text), " ")
	if text == "" {
		return ""
	}
	for len(b.stack) > 0 && b.stack[len(b.stack)-1].level >= level {
		b.stack = b.stack[:len(b.stack)-1]
	}
	b.stack = append(b.stack, heading{level: level, text: text})
	path := make([]string, len(b.stack))
	for i, h := range b.stack {
		path[i] = h.text
	}
	b.path = path
	b.doc.Blocks = append(b.doc.Blocks, Block{Text: text, HeadingPath: path, Heading: true})
	return text
}

// text adds a block of body text under the current heading path.
func (b *builder) text(s string, page int) {
	s = normalize(s)
	if s == "" {
		return
	}
	b.doc.Blocks = append(b.doc.Blocks, Block{Text: s, HeadingPath: b.path, Page: page})
}
