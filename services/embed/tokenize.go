package embed

import (
	"unicode"
	"unicode/utf8"
)

// MaxTokenRunes is the longest token kept; longer words (base64, hashes,
// URLs without separators) are cut to their first MaxTokenRunes runes.
const MaxTokenRunes = 64

// Tokenizer splits text into lexical tokens for English (and other
// alphabetic scripts) and Chinese. The rules, in order:
//
//   - Invalid UTF-8 bytes, punctuation, symbols (emoji included), spaces
//     and control characters separate tokens and are dropped.
//   - Full-width ASCII forms (U+FF01–U+FF5E, common in Chinese text) are
//     folded to ASCII first, so "ＧＰＵ" and "GPU" are one token.
//   - A run of Han characters is a CJK run: it yields its character
//     bigrams ("年假制度" → "年假", "假制", "制度"), or the character itself
//     when the run is one character long.
//   - A run of other letters and decimal digits (with combining marks) is
//     a word: lowercased, an apostrophe between letters dropped ("don't" →
//     "dont"), cut at MaxTokenRunes, skipped when it is an English stop
//     word, and, when Stem is set, stemmed with the S-stemmer (Harman
//     1991: "policies" → "policy", "employees" → "employee", "days" →
//     "day"; "status", "class" unchanged).
//   - A change between a CJK run and a word ends the token: "GPU加速" gives
//     "gpu" and "加速".
//   - Words joined by a single '-', '_' or '.' with no space form an
//     identifier, which is a token too, after its parts, lowercased and
//     unstemmed with its joiners kept: "apt-transport-https" gives "apt",
//     "transport", "http" and "apt-transport-https"; "Zephyr-9" gives
//     "zephyr", "9" and "zephyr-9". So an identifier matches as a whole
//     (a rare, high-IDF token) as well as by its parts. An identifier is
//     cut at MaxTokenRunes runes.
//
// The zero Tokenizer does not stem. A Tokenizer is safe for concurrent
// use.
type Tokenizer struct {
	// Stem applies the S-stemmer to words of ASCII letters.
	Stem bool
	// NoIdentifiers leaves out the identifier tokens (the parts stay).
	NoIdentifiers bool
}

// Tokenize returns the tokens of text in order, duplicates included.
func (t Tokenizer) Tokenize(text string) []string {
	var out []string
	t.Each(text, func(tok []byte) { out = append(out, string(tok)) })
	return out
}

// Each calls fn with every token of text, in order. The slice is reused
// after fn returns; copy it to keep it.
func (t Tokenizer) Each(text string, fn func(tok []byte)) {
	var (
		word     []byte // the current word, lowercased
		wordLen  int    // runes in word
		prevHan  rune   // the previous rune of the current CJK run, or -1
		hanRun   int    // runes in the current CJK run
		pending  bool   // a letter before a possible apostrophe
		comp     []byte // the current identifier: words and joiners
		compLen  int    // runes in comp
		parts    int    // words in comp
		joiner   byte   // a joiner right after a word, 0 if none
		buf      [8]byte
		scratch  = make([]byte, 0, 64)
		finishCJ = func() {
			if hanRun == 1 {
				n := utf8.EncodeRune(buf[:], prevHan)
				fn(buf[:n])
			}
			hanRun, prevHan = 0, -1
		}
		finishWord = func() {
			if len(word) == 0 {
				return
			}
			w := word
			if t.Stem {
				w = stemS(w)
			}
			if !stopWord(w) {
				fn(w)
			}
			word, wordLen = word[:0], 0
		}
		finishComp = func() {
			if parts > 1 && !t.NoIdentifiers {
				fn(comp)
			}
			comp, compLen, parts, joiner = comp[:0], 0, 0, 0
		}
	)
	word = scratch
	comp = make([]byte, 0, 64)
	prevHan = -1
	for i := 0; i < len(text); {
		r, size := utf8.DecodeRuneInString(text[i:])
		if r == utf8.RuneError && size <= 1 {
			r = ' ' // invalid byte: a separator
		}
		i += size
		if r >= 0xFF01 && r <= 0xFF5E {
			r -= 0xFEE0 // full-width ASCII form
		}
		c := classify(r)
		if c == classMark && len(word) > 0 {
			c = classWord
		}
		switch {
		case c == classHan:
			finishWord()
			finishComp()
			pending = false
			if hanRun > 0 {
				n := utf8.EncodeRune(buf[:], prevHan)
				n += utf8.EncodeRune(buf[n:], r)
				fn(buf[:n])
			}
			prevHan = r
			hanRun++
		case c == classWord:
			if hanRun > 0 {
				finishCJ()
			}
			if len(word) == 0 {
				// A word starts: it continues the identifier when a joiner
				// follows the previous word directly, else starts one.
				if joiner != 0 && compLen < MaxTokenRunes {
					comp = append(comp, joiner)
					compLen++
				} else if joiner == 0 {
					finishComp()
				}
				joiner = 0
				parts++
			}
			if compLen < MaxTokenRunes {
				if r < utf8.RuneSelf {
					lr := r
					if 'A' <= lr && lr <= 'Z' {
						lr += 'a' - 'A'
					}
					comp = append(comp, byte(lr))
				} else {
					comp = utf8.AppendRune(comp, unicode.ToLower(r))
				}
				compLen++
			}
			if wordLen < MaxTokenRunes {
				if r < utf8.RuneSelf {
					if 'A' <= r && r <= 'Z' {
						r += 'a' - 'A'
					}
					word = append(word, byte(r))
				} else {
					word = utf8.AppendRune(word, unicode.ToLower(r))
				}
				wordLen++
			}
			pending = r > '9' && (r < utf8.RuneSelf || unicode.IsLetter(r))
		case (r == '\'' || r == '\u2019') && pending && i < len(text):
			// Keep the word going when a letter follows: "don't".
			next, _ := utf8.DecodeRuneInString(text[i:])
			if classify(next) == classWord && !unicode.IsDigit(next) {
				pending = false
				continue
			}
			finishWord()
			pending = false
		case (r == '-' || r == '_' || r == '.') && len(word) > 0 && joiner == 0:
			// Maybe a joiner: the identifier goes on if a word follows.
			finishWord()
			pending = false
			joiner = byte(r)
		default:
			if hanRun > 0 {
				finishCJ()
			}
			finishWord()
			finishComp()
			pending = false
		}
	}
	if hanRun > 0 {
		finishCJ()
	}
	finishWord()
	finishComp()
}

// Rune classes of the tokenizer.
const (
	classSep = iota
	classWord
	classHan
	classMark
)

// classify returns the tokenizer class of r: a letter or decimal digit is
// part of a word, a Han character part of a CJK run, a combining mark part
// of the word it follows; everything else separates.
func classify(r rune) int {
	if r < utf8.RuneSelf {
		if 'a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9' {
			return classWord
		}
		return classSep
	}
	switch {
	case 0x4E00 <= r && r <= 0x9FFF: // CJK Unified Ideographs, the common case
		return classHan
	case unicode.Is(unicode.Han, r):
		return classHan
	case unicode.IsLetter(r) || unicode.IsDigit(r):
		return classWord
	case unicode.In(r, unicode.Mn, unicode.Mc):
		return classMark
	}
	return classSep
}

// stopWord reports whether w is one of a short list of English function
// words that carry no topic. The list is deliberately light: BM25's IDF
// already discounts frequent words, and a long list hurts phrase-like
// questions ("to be or not to be").
func stopWord(w []byte) bool {
	switch string(w) {
	case "a", "an", "and", "are", "as", "at", "be", "but", "by", "for", "if", "in", "into",
		"is", "it", "its", "of", "on", "or", "such", "that", "the", "their", "then", "there",
		"these", "they", "this", "to", "was", "were", "will", "with",
		// Question words: every question has them, few passages are
		// about them.
		"what", "which", "who", "how", "why", "when", "where", "does", "do", "should", "about":
		return true
	}
	return false
}

// stemS is Harman's S-stemmer for ASCII words of four or more letters:
// "ies" → "y" (not after e or a), "es" → "e" (not after a, e or o), "s" →
// "" (not after u or s). It edits w in place and returns it.
func stemS(w []byte) []byte {
	n := len(w)
	if n < 4 {
		return w
	}
	for _, c := range w {
		if c < 'a' || c > 'z' {
			return w
		}
	}
	switch {
	case w[n-1] != 's':
		return w
	case w[n-3] == 'i' && w[n-2] == 'e' && w[n-4] != 'e' && w[n-4] != 'a':
		w[n-3] = 'y'
		return w[:n-2]
	case w[n-2] == 'e' && w[n-3] != 'a' && w[n-3] != 'e' && w[n-3] != 'o':
		return w[:n-1]
	case w[n-2] != 'u' && w[n-2] != 's':
		return w[:n-1]
	}
	return w
}
