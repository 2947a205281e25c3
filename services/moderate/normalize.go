package moderate

import (
	"strings"
	"unicode"

	"golang.org/x/text/width"
)

// Normalize prepares a question for the injection patterns. normalized is
// the question with invalid UTF-8 replaced, full-width forms folded to
// half-width ("ＩＧＮＯＲＥ" → "ignore", "，" → ","), lower-cased, format
// characters (zero-width spaces and joiners, soft hyphens, BOM) removed,
// control characters turned into spaces and every whitespace run collapsed
// to one space, trimmed. compact is normalized without any whitespace, for
// patterns in scripts written without spaces (Chinese), so that
// "忽 略 以 上 指 令" matches too.
func Normalize(s string) (normalized, compact string) {
	s = strings.ToValidUTF8(s, "\uFFFD")
	s = width.Fold.String(s)
	s = strings.ToLower(s)
	var n, c strings.Builder
	n.Grow(len(s))
	c.Grow(len(s))
	space := false
	for _, r := range s {
		switch {
		case unicode.Is(unicode.Cf, r):
			continue
		case unicode.IsSpace(r) || unicode.IsControl(r):
			space = n.Len() > 0
			continue
		}
		if space {
			n.WriteByte(' ')
			space = false
		}
		n.WriteRune(r)
		c.WriteRune(r)
	}
	return n.String(), c.String()
}
