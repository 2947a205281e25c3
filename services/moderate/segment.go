package moderate

import (
	"unicode"
	"unicode/utf8"
)

// DefaultMaxSentenceRunes is the longest run of text moderated as one unit
// when no sentence boundary comes.
const DefaultMaxSentenceRunes = 400

// strongEnd ends a sentence whatever follows it: CJK sentence punctuation
// (full-width forms included) and line breaks.
func strongEnd(r rune) bool {
	switch r {
	case '。', '！', '？', '；', '…', '｡', '\n', '\r', '\u2028', '\u2029':
		return true
	}
	return false
}

// weakEnd ends a sentence only when whitespace follows it, so "3.5",
// "e-mail.com" and "a.b@c.com" stay whole.
func weakEnd(r rune) bool {
	switch r {
	case '.', '!', '?', ';':
		return true
	}
	return false
}

// closer may follow a sentence end and belongs to the sentence.
func closer(r rune) bool {
	switch r {
	case '"', '\'', ')', ']', '}', '”', '’', '」', '』', '）', '】', '》', '〉':
		return true
	}
	return false
}

// NextCut reports where the first sentence of buf ends, in bytes. A
// sentence ends right after a strong end (。！？；… or a line break), so
// CJK text flows without waiting for the next token; or after a weak end
// (. ! ? ;), with any further weak ends and closing quotes or brackets,
// followed by one whitespace character, which belongs to the sentence. A
// weak end is decided only once the character after it is known: with more
// text to come (final false), a weak end at the end of buf gives ok false.
// A buffer with no boundary within its first maxRunes characters is cut
// after the last whitespace in the second half of them, or at maxRunes.
// With final true, what remains is one sentence.
//
// NextCut is a function of the text alone: a cut found in a prefix of a
// text is the cut found in the whole text, so the same answer is cut into
// the same sentences however its deltas were split.
func NextCut(buf string, maxRunes int, final bool) (n int, ok bool) {
	if buf == "" {
		return 0, false
	}
	if maxRunes <= 0 {
		maxRunes = DefaultMaxSentenceRunes
	}
	runes := 0
	lastSpace := -1 // byte offset after the last whitespace in the second half
	for i := 0; i < len(buf); {
		if runes >= maxRunes {
			if lastSpace > 0 {
				return lastSpace, true
			}
			return i, true
		}
		r, size := utf8.DecodeRuneInString(buf[i:])
		runes++
		j := i + size
		switch {
		case strongEnd(r):
			return j, true
		case weakEnd(r):
			k := j
			for k < len(buf) {
				r2, size2 := utf8.DecodeRuneInString(buf[k:])
				if !weakEnd(r2) && !closer(r2) {
					break
				}
				k += size2
			}
			if k == len(buf) {
				if final {
					return k, true
				}
				return 0, false
			}
			if r2, size2 := utf8.DecodeRuneInString(buf[k:]); unicode.IsSpace(r2) {
				return k + size2, true
			}
		case unicode.IsSpace(r) && runes > maxRunes/2:
			lastSpace = j
		}
		i = j
	}
	if final {
		return len(buf), true
	}
	return 0, false
}
