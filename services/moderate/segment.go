package moderate

import (
	"strings"
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
// where no personal data can straddle the cut (see forcedCut).
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
	half := -1 // byte offset where the second half of the first maxRunes runes starts
	for i := 0; i < len(buf); {
		if runes >= maxRunes {
			next, _ := utf8.DecodeRuneInString(buf[i:])
			return forcedCut(buf[:i], next, max(half, 0)), true
		}
		if runes == maxRunes/2 {
			half = i
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
		}
		i = j
	}
	if final {
		return len(buf), true
	}
	return 0, false
}

// forcedCut picks where to cut w, a run of text without a sentence end
// that the rune after follows: the last place where no personal data can
// straddle the cut — after whitespace (or between two CJK characters),
// with no digit, "@" or spelled "at"/"dot" in the word on the left and no
// spelled "at"/"dot" on the right (personal data may start right after
// the cut: it is then whole in the next unit) — at or after byte from
// (the second half) if there is one, else before it. Failing that, the
// last place in the second half not between two letters or digits;
// failing that, the end of w (no entity is that long).
func forcedCut(w string, after rune, from int) int {
	// The second half first, so units stay long; then the first half.
	if k := safeCut(w, after, from, len(w)); k > 0 {
		return k
	}
	if k := safeCut(w, after, 1, from); k > 0 {
		return k
	}
	for k := len(w); k > from; {
		r, size := utf8.DecodeLastRuneInString(w[:k])
		next := after
		if k < len(w) {
			next, _ = utf8.DecodeRuneInString(w[k:])
		}
		if !(joinable(r) && joinable(next)) {
			return k
		}
		k -= size
	}
	return len(w)
}

// safeCut returns the last safe cut of w in [lo, hi], or 0.
func safeCut(w string, after rune, lo, hi int) int {
	for k := hi; k >= lo && k > 0; {
		r, size := utf8.DecodeLastRuneInString(w[:k])
		next := after
		if k < len(w) {
			next, _ = utf8.DecodeRuneInString(w[k:])
		}
		if (unicode.IsSpace(r) && !unicode.IsSpace(next) || unicode.Is(unicode.Han, r) && unicode.Is(unicode.Han, next)) &&
			safeWord(lastWord(w[:k])) && safeRight(w[k:], after) {
			return k
		}
		k -= size
	}
	return 0
}

// joinable runes continue an entity: letters, digits and the separators
// inside e-mail addresses and numbers.
func joinable(r rune) bool {
	return unicode.IsLetter(r) || unicode.IsDigit(r) || strings.ContainsRune("@.-_+", r)
}

// tokenRune is part of a word for the purpose of a forced cut: not
// whitespace and not a CJK character (those delimit words themselves).
func tokenRune(r rune) bool { return !unicode.IsSpace(r) && !unicode.Is(unicode.Han, r) }

// lastWord returns the word that ends s, after trailing whitespace.
func lastWord(s string) string {
	s = strings.TrimRightFunc(s, unicode.IsSpace)
	i := strings.LastIndexFunc(s, func(r rune) bool { return !tokenRune(r) })
	return s[i+1:]
}

// safeRight says whether a cut may come before s, the rest of w, which
// the rune after follows. Personal data may start on the right of a cut,
// but not continue there: the word there must not be a spelled "at" or
// "dot" (of an obfuscated e-mail address), nor, where it runs to the end
// of w, the beginning of one.
func safeRight(s string, after rune) bool {
	word := s
	i := strings.IndexFunc(s, func(r rune) bool { return !tokenRune(r) })
	if i >= 0 {
		word = s[:i]
	} else if tokenRune(after) {
		word += string(after)
	}
	if word == "" {
		return true
	}
	l := strings.ToLower(strings.TrimLeft(word, "[({<"))
	if i < 0 {
		return !strings.HasPrefix("at", l) && !strings.HasPrefix("dot", l)
	}
	l = strings.TrimRight(l, "])}>")
	return l != "at" && l != "dot"
}

func safeWord(w string) bool {
	if w == "" {
		return true
	}
	l := strings.ToLower(strings.Trim(w, "[](){}<>"))
	return !strings.ContainsFunc(w, unicode.IsDigit) && !strings.ContainsAny(w, "@＠") && l != "at" && l != "dot"
}
