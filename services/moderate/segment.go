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
// sentence ends after a strong end (。！？；… or a line break), or after a
// weak end (. ! ? ;) followed by whitespace; closing quotes and brackets,
// further ends and the whitespace after them belong to the sentence. The
// cut is decided only once the character after that run is known: with
// more text to come (final false), a run that reaches the end of buf gives
// ok false. A buffer with no boundary within its first maxRunes characters
// is cut at the last whitespace in the second half of them, or at
// maxRunes. With final true, what remains is one sentence.
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
			end, complete := endRun(buf, j)
			if !complete && !final {
				return 0, false
			}
			return end, true
		case weakEnd(r):
			end, complete := endRun(buf, j)
			if !complete {
				if final {
					return end, true
				}
				return 0, false
			}
			// endRun stops at a non-space; the run counts only if it took
			// whitespace.
			if k := lastRuneBefore(buf, end); unicode.IsSpace(k) {
				return end, true
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

// endRun returns the end of the run of sentence ends, closers and
// whitespace that starts at i, and whether a character after it is known.
func endRun(buf string, i int) (int, bool) {
	for i < len(buf) {
		r, size := utf8.DecodeRuneInString(buf[i:])
		if !(strongEnd(r) || weakEnd(r) || closer(r) || unicode.IsSpace(r)) {
			return i, true
		}
		i += size
	}
	return i, false
}

func lastRuneBefore(buf string, i int) rune {
	r, _ := utf8.DecodeLastRuneInString(buf[:i])
	return r
}
