package docparse

import (
	"context"
	"strings"
)

// parseMarkdown parses CommonMark-style Markdown into blocks: ATX ("# …") and
// setext (underlined) headings set the heading path; fenced code blocks,
// lists, tables and paragraphs become blocks with their text kept as written.
// The first level-1 heading is the title.
func parseMarkdown(ctx context.Context, in Input) (Document, error) {
	s, enc := decodeInput(in)
	var b builder
	b.doc.Encoding = enc
	lines := strings.Split(unixLines(s), "\n")
	var para []string
	flush := func() {
		if len(para) > 0 {
			b.text(strings.Join(para, "\n"), 0)
			para = para[:0]
		}
	}
	var fence string // the opening fence while inside a fenced code block
	for i := 0; i < len(lines); i++ {
		if i%checkEvery == 0 && ctx.Err() != nil {
			return Document{}, ctx.Err()
		}
		line := lines[i]
		trimmed := strings.TrimSpace(line)
		if fence != "" {
			if strings.HasPrefix(trimmed, fence) && strings.Trim(trimmed, fence[:1]) == "" {
				fence = ""
				flush()
				continue
			}
			para = append(para, line)
			continue
		}
		if f := fenceOf(trimmed); f != "" {
			flush()
			fence = f
			continue
		}
		if level, text, ok := atxHeading(line); ok {
			flush()
			if h := b.heading(level, text); level == 1 && b.doc.Title == "" {
				b.doc.Title = h
			}
			continue
		}
		if trimmed == "" {
			flush()
			continue
		}
		if len(para) == 1 && isSetextUnderline(trimmed) && !isListItem(para[0]) {
			level := 1
			if trimmed[0] == '-' {
				level = 2
			}
			text := para[0]
			para = para[:0]
			if h := b.heading(level, text); level == 1 && b.doc.Title == "" {
				b.doc.Title = h
			}
			continue
		}
		para = append(para, line)
	}
	flush()
	return b.doc, nil
}

// fenceOf returns the fence ("```" or "~~~", possibly longer) that line opens,
// or "".
func fenceOf(line string) string {
	for _, c := range []string{"`", "~"} {
		n := 0
		for n < len(line) && line[n] == c[0] {
			n++
		}
		if n >= 3 {
			return line[:n]
		}
	}
	return ""
}

// atxHeading parses "## Heading ##" (up to three leading spaces).
func atxHeading(line string) (int, string, bool) {
	s := strings.TrimLeft(line, " ")
	if len(line)-len(s) > 3 {
		return 0, "", false
	}
	level := 0
	for level < len(s) && s[level] == '#' {
		level++
	}
	if level == 0 || level > 6 {
		return 0, "", false
	}
	rest := s[level:]
	if rest != "" && rest[0] != ' ' && rest[0] != '\t' {
		return 0, "", false
	}
	rest = strings.TrimSpace(rest)
	if t := strings.TrimRight(rest, "#"); t == "" || strings.HasSuffix(t, " ") {
		rest = strings.TrimSpace(t)
	}
	return level, rest, true
}

// isSetextUnderline reports whether line is "===" or "---" (any length ≥ 1
// for "=", ≥ 2 for "-").
func isSetextUnderline(line string) bool {
	if line == "" {
		return false
	}
	c := line[0]
	if c != '=' && c != '-' {
		return false
	}
	if strings.Trim(line, string(c)) != "" {
		return false
	}
	return c == '=' || len(line) >= 2
}

// isListItem reports whether line starts a list item.
func isListItem(line string) bool {
	s := strings.TrimLeft(line, " ")
	if len(s) >= 2 && (s[0] == '-' || s[0] == '*' || s[0] == '+') && s[1] == ' ' {
		return true
	}
	i := 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	return i > 0 && i+1 < len(s) && (s[i] == '.' || s[i] == ')') && s[i+1] == ' '
}
