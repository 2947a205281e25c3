package tokenizer

import (
	"unicode"
	"unicode/utf8"
)

// preTokenizer splits text into words before byte-level BPE, the job of the
// regular expression in a Hugging Face tokenizer.json. Go's regexp has no
// lookahead, so the expressions are hand-written scanners that follow
// llama.cpp's unicode_regex_split_custom_gpt2 and _llama3.
type preTokenizer struct {
	// llama3Rules selects the Llama 3 / Qwen2 expression; otherwise GPT-2's.
	llama3Rules bool
	// maxDigits is how many digits one number word holds under llama3Rules
	// (3 for Llama 3, 1 for Qwen2).
	maxDigits int
	// splitDigits first isolates every digit (SmolLM).
	splitDigits bool
	// ignoreMerges emits a whole word as one token when the vocabulary has
	// it (Llama 3).
	ignoreMerges bool
}

// preTokenizerFor picks the rules for a GGUF tokenizer.ggml.pre value.
//
//	GPT-2:   's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
//	Llama 3: (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
//	Qwen2:   the Llama 3 expression with \p{N} (single digits)
//	SmolLM:  \p{N} first, then GPT-2's expression
func preTokenizerFor(pre string) preTokenizer {
	switch pre {
	case "llama-bpe", "llama3", "llama-v3", "smaug-bpe":
		return preTokenizer{llama3Rules: true, maxDigits: 3, ignoreMerges: true}
	case "qwen2", "qwen":
		return preTokenizer{llama3Rules: true, maxDigits: 1}
	case "smollm":
		return preTokenizer{splitDigits: true}
	}
	return preTokenizer{}
}

// Character classes of the expressions. A byte that is not valid UTF-8
// counts as "other", like punctuation.
const (
	clsLetter uint8 = 1 << iota
	clsNumber
	clsSpace
	clsOther
)

func classOf(r rune) uint8 {
	switch {
	case unicode.IsLetter(r):
		return clsLetter
	case unicode.IsNumber(r):
		return clsNumber
	case unicode.Is(unicode.White_Space, r):
		return clsSpace
	}
	return clsOther
}

// scanner holds the code points of the text being split and the byte
// offset where each begins; out-of-range positions read as -1 and class 0.
type scanner struct {
	text  string
	runes []rune
	cls   []uint8
	offs  []int // len(runes)+1 entries
	words []string
	prev  int
}

func (sc *scanner) reset(text string) {
	sc.text = text
	sc.runes, sc.cls, sc.offs = sc.runes[:0], sc.cls[:0], sc.offs[:0]
	sc.prev = 0
	for i := 0; i < len(text); {
		r, w := utf8.DecodeRuneInString(text[i:])
		sc.runes = append(sc.runes, r)
		sc.cls = append(sc.cls, classOf(r))
		sc.offs = append(sc.offs, i)
		i += w
	}
	sc.offs = append(sc.offs, len(text))
}

func (sc *scanner) at(i int) rune {
	if i < 0 || i >= len(sc.runes) {
		return -1
	}
	return sc.runes[i]
}

func (sc *scanner) class(i int) uint8 {
	if i < 0 || i >= len(sc.cls) {
		return 0
	}
	return sc.cls[i]
}

// add ends the current word at code point end.
func (sc *scanner) add(end int) {
	if end > sc.prev {
		sc.words = append(sc.words, sc.text[sc.offs[sc.prev]:sc.offs[end]])
		sc.prev = end
	}
}

// split returns the words of text as substrings of it, in order; their
// concatenation is text.
func (p preTokenizer) split(text string) []string {
	var sc scanner
	if !p.splitDigits {
		sc.reset(text)
		p.scan(&sc)
		return sc.words
	}
	var words []string
	start := 0
	flush := func(end int) {
		if end > start {
			sc.reset(text[start:end])
			sc.words = sc.words[:0]
			p.scan(&sc)
			words = append(words, sc.words...)
		}
	}
	for i := 0; i < len(text); {
		r, w := utf8.DecodeRuneInString(text[i:])
		if unicode.IsNumber(r) {
			flush(i)
			words = append(words, text[i:i+w])
			start = i + w
		}
		i += w
	}
	flush(len(text))
	return words
}

func (p preTokenizer) scan(sc *scanner) {
	if p.llama3Rules {
		p.scanLlama3(sc)
	} else {
		scanGPT2(sc)
	}
}

func isContractionTail(a, b rune) (int, bool) {
	switch a {
	case 's', 't', 'm', 'd':
		return 1, true
	}
	if (a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l') {
		return 2, true
	}
	return 0, false
}

func scanGPT2(sc *scanner) {
	n := len(sc.runes)
	for pos := 0; pos < n; {
		cpt, cls := sc.at(pos), sc.class(pos)
		// 's|'t|'re|'ve|'m|'ll|'d
		if cpt == '\'' && pos+1 < n {
			if k, ok := isContractionTail(sc.at(pos+1), sc.at(pos+2)); ok {
				pos += 1 + k
				sc.add(pos)
				continue
			}
		}
		cls2 := cls
		if cpt == ' ' {
			cls2 = sc.class(pos + 1)
		}
		// ' ?\p{L}+', ' ?\p{N}+', ' ?[^\s\p{L}\p{N}]+'
		if cls2&(clsLetter|clsNumber|clsOther) != 0 {
			if cpt == ' ' {
				pos++
			}
			for sc.class(pos) == cls2 {
				pos++
			}
			sc.add(pos)
			continue
		}
		nws := 0
		for sc.class(pos+nws) == clsSpace {
			nws++
		}
		// \s+(?!\S)
		if nws > 1 && sc.at(pos+nws) != -1 {
			pos += nws - 1
			sc.add(pos)
			continue
		}
		// \s+
		if nws > 0 {
			pos += nws
			sc.add(pos)
			continue
		}
		pos++
		sc.add(pos)
	}
}

func (p preTokenizer) scanLlama3(sc *scanner) {
	n := len(sc.runes)
	isNL := func(r rune) bool { return r == '\r' || r == '\n' }
	for pos := 0; pos < n; {
		cpt, cls := sc.at(pos), sc.class(pos)
		// (?i:'s|'t|'re|'ve|'m|'ll|'d)
		if cpt == '\'' && pos+1 < n {
			if k, ok := isContractionTail(unicode.ToLower(sc.at(pos+1)), unicode.ToLower(sc.at(pos+2))); ok {
				pos += 1 + k
				sc.add(pos)
				continue
			}
		}
		// [^\r\n\p{L}\p{N}]?\p{L}+
		if !isNL(cpt) && cls != clsNumber {
			if cls == clsLetter || sc.class(pos+1) == clsLetter {
				pos++
				for sc.class(pos) == clsLetter {
					pos++
				}
				sc.add(pos)
				continue
			}
		}
		// \p{N}{1,maxDigits}
		if cls == clsNumber {
			ini := pos
			for sc.class(pos) == clsNumber {
				pos++
				if pos-ini >= p.maxDigits {
					sc.add(pos)
					ini = pos
				}
			}
			sc.add(pos)
			continue
		}
		// ' ?[^\s\p{L}\p{N}]+[\r\n]*'
		cls2 := cls
		if cpt == ' ' {
			cls2 = sc.class(pos + 1)
		}
		if cls2 == clsOther {
			if cpt == ' ' {
				pos++
			}
			for sc.class(pos) == clsOther {
				pos++
			}
			for isNL(sc.at(pos)) {
				pos++
			}
			sc.add(pos)
			continue
		}
		nws, lastNL := 0, 0
		for sc.class(pos+nws) == clsSpace {
			if isNL(sc.at(pos + nws)) {
				lastNL = pos + nws + 1
			}
			nws++
		}
		// \s*[\r\n]+
		if lastNL > 0 {
			pos = lastNL
			sc.add(pos)
			continue
		}
		// \s+(?!\S)
		if nws > 1 && sc.at(pos+nws) != -1 {
			pos += nws - 1
			sc.add(pos)
			continue
		}
		// \s+
		if nws > 0 {
			pos += nws
			sc.add(pos)
			continue
		}
		pos++
		sc.add(pos)
	}
}
