package generate

import (
	"context"
	"math"
	"sort"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Extractive is the Generator that needs no model: it answers with the
// source sentences that best match the question, each followed by its [n]
// citation, and streams the answer token by token (a word with its
// trailing space, or one CJK character). Its answers are exactly as good as
// retrieval and never say anything the sources do not. Extractive is safe
// for concurrent use.
type Extractive struct {
	// MaxSentences is how many sentences an answer holds at most
	// (default 3).
	MaxSentences int
	// MinRelative drops sentences scoring below this fraction of the best
	// one (default 0.5).
	MinRelative float64
}

// Mode implements Generator.
func (Extractive) Mode() string { return ModeExtractive }

// Generate implements Generator. Sentences that share no term with the
// question are never chosen; when no sentence qualifies, the answer is the
// refusal in the prompt's language.
func (x Extractive) Generate(ctx context.Context, req Request, onToken func(string) error) (Generation, error) {
	maxSent := x.MaxSentences
	if maxSent <= 0 {
		maxSent = 3
	}
	minRel := x.MinRelative
	if minRel <= 0 {
		minRel = 0.5
	}
	answer := extract(req.Prompt, maxSent, minRel)
	if answer == "" {
		answer = Refusal(req.Prompt.Lang)
	}
	gen := Generation{FinishReason: FinishStop, Model: ModeExtractive}
	pieces := StreamPieces(answer)
	if req.MaxTokens > 0 && len(pieces) > req.MaxTokens {
		pieces, gen.FinishReason = pieces[:req.MaxTokens], FinishLength
	}
	for _, p := range pieces {
		if err := ctx.Err(); err != nil {
			gen.FinishReason = FinishCancelled
			return gen, err
		}
		if err := onToken(p); err != nil {
			gen.FinishReason = FinishCancelled
			return gen, err
		}
		gen.CompletionTokens++
	}
	return gen, nil
}

type scored struct {
	source, pos int // source index and sentence position in it
	text        string
	score       float64
}

// extract returns the chosen sentences with their citations, best first,
// or "" when no sentence shares a term with the question.
func extract(p Prompt, maxSent int, minRel float64) string {
	q := termSet(p.Question)
	if len(q) == 0 {
		return ""
	}
	var cands []scored
	seen := make(map[string]bool)
	for si, s := range p.Sources {
		for pos, sent := range SplitSentences(s.Text) {
			key := strings.Join(strings.Fields(sent), " ")
			if seen[key] {
				continue
			}
			seen[key] = true
			terms := termSet(sent)
			var hit float64
			for t, w := range q {
				if _, ok := terms[t]; ok {
					hit += w
				}
			}
			if hit == 0 {
				continue
			}
			// Overlap weighted by term length, damped by sentence length so
			// that a long paragraph does not win by size alone; a tiny bonus
			// keeps retrieval order among equals.
			score := hit/math.Sqrt(1+math.Log1p(float64(len(terms)))) - 1e-6*float64(si)
			cands = append(cands, scored{source: si, pos: pos, text: sent, score: score})
		}
	}
	if len(cands) == 0 {
		return ""
	}
	sort.SliceStable(cands, func(i, j int) bool { return cands[i].score > cands[j].score })
	best := cands[0].score
	var b strings.Builder
	prevCJK := false // the previous sentence ended in CJK text
	for i, c := range cands {
		if i == maxSent || c.score < best*minRel {
			break
		}
		text := strings.TrimSpace(c.text)
		first, _ := utf8.DecodeRuneInString(text)
		last, _ := utf8.DecodeLastRuneInString(text)
		cjkStart := isCJK(first) || isCJKPunct(first)
		if b.Len() > 0 && !(prevCJK && cjkStart) {
			b.WriteByte(' ')
		}
		b.WriteString(text)
		prevCJK = isCJK(last) || isCJKPunct(last)
		if !prevCJK {
			b.WriteByte(' ')
		}
		b.WriteString("[" + strconv.Itoa(p.Sources[c.source].N) + "]")
	}
	return b.String()
}

// SplitSentences splits text into sentences, CJK-aware: a sentence ends at
// 。！？；… (with any closing quotes after them), at . ! ? followed by a
// space or the end (so "3.5" and "v1.2" stay whole), and at a blank line or
// line break. Whitespace-only sentences are dropped.
func SplitSentences(text string) []string {
	var out []string
	start := 0
	emit := func(end int) {
		if s := strings.TrimSpace(text[start:end]); s != "" {
			out = append(out, s)
		}
		start = end
	}
	for i := 0; i < len(text); {
		r, size := utf8.DecodeRuneInString(text[i:])
		j := i + size
		switch {
		case r == '\n':
			emit(j)
		case r == '。' || r == '！' || r == '？' || r == '；' || r == '…':
			j = skipClosers(text, j)
			emit(j)
		case r == '.' || r == '!' || r == '?':
			k := skipClosers(text, j)
			if k == len(text) {
				emit(k)
				j = k
				break
			}
			if next, _ := utf8.DecodeRuneInString(text[k:]); unicode.IsSpace(next) && !abbreviation(text[start:i]) {
				emit(k)
				j = k
			}
		}
		i = j
	}
	emit(len(text))
	return out
}

// skipClosers moves past closing quotes and brackets after a terminator.
func skipClosers(s string, i int) int {
	for i < len(s) {
		r, size := utf8.DecodeRuneInString(s[i:])
		if !strings.ContainsRune(`"')]”’」』）`, r) {
			break
		}
		i += size
	}
	return i
}

// abbreviation reports whether the text before a period ends in a common
// abbreviation, so "e.g. this" and "Dr. Smith" are not split.
func abbreviation(before string) bool {
	f := strings.Fields(before)
	if len(f) == 0 {
		return false
	}
	w := strings.ToLower(f[len(f)-1])
	switch w {
	case "e.g", "i.e", "etc", "mr", "mrs", "ms", "dr", "prof", "vs", "no", "fig", "st", "inc", "ltd", "co":
		return true
	}
	return false
}

func isCJKPunct(r rune) bool {
	return strings.ContainsRune("。！？；：，、…“”「」『』（）《》【】", r)
}

// stopwords are English words too common to say anything about a match.
var stopwords = map[string]bool{
	"a": true, "an": true, "the": true, "is": true, "are": true, "was": true, "were": true, "be": true,
	"to": true, "of": true, "in": true, "on": true, "at": true, "for": true, "and": true, "or": true,
	"what": true, "which": true, "who": true, "whom": true, "how": true, "when": true, "where": true, "why": true,
	"do": true, "does": true, "did": true, "it": true, "its": true, "this": true, "that": true, "with": true,
	"by": true, "from": true, "as": true, "about": true, "can": true, "i": true, "you": true, "we": true,
	"me": true, "my": true, "our": true, "your": true, "please": true, "tell": true, "there": true, "has": true, "have": true,
}

// cjkStop are Chinese characters too common to matter alone.
var cjkStop = map[string]bool{"的": true, "是": true, "了": true, "吗": true, "呢": true, "什": true, "么": true, "我": true, "你": true, "在": true, "有": true, "和": true}

// termSet returns the weighted terms of s: lowercased English words and
// numbers (stopwords dropped, a light plural stem), weighted by length; and
// Chinese character bigrams (a lone character counts as itself), weight 1.
func termSet(s string) map[string]float64 {
	terms := make(map[string]float64)
	var word []rune
	var han []rune
	flushWord := func() {
		if len(word) == 0 {
			return
		}
		w := strings.ToLower(string(word))
		word = word[:0]
		if stopwords[w] {
			return
		}
		if len(w) > 3 && strings.HasSuffix(w, "s") && !strings.HasSuffix(w, "ss") {
			w = w[:len(w)-1]
		}
		terms[w] = math.Min(1+float64(utf8.RuneCountInString(w))/6, 2.5)
	}
	flushHan := func() {
		switch {
		case len(han) == 1:
			if c := string(han); !cjkStop[c] {
				terms[c] = 1
			}
		case len(han) > 1:
			for i := 0; i+1 < len(han); i++ {
				terms[string(han[i:i+2])] = 1
			}
		}
		han = han[:0]
	}
	for _, r := range s {
		switch {
		case isCJK(r):
			flushWord()
			han = append(han, r)
		case unicode.IsLetter(r) || unicode.IsDigit(r):
			flushHan()
			word = append(word, r)
		default:
			flushWord()
			flushHan()
		}
	}
	flushWord()
	flushHan()
	return terms
}

// StreamPieces splits an answer into the pieces it is streamed in: each CJK
// character or CJK punctuation mark is a piece, each other run of non-space
// characters (a word, a number, a citation marker) is a piece, and
// whitespace sticks to the piece before it. The pieces concatenate to text
// exactly.
func StreamPieces(text string) []string {
	var out []string
	start := 0
	prevSpace, prevCJK := false, false
	for i, r := range text {
		space := unicode.IsSpace(r)
		cjk := isCJK(r) || isCJKPunct(r)
		if !space && i > start && (cjk || prevSpace || prevCJK) {
			out = append(out, text[start:i])
			start = i
		}
		prevSpace, prevCJK = space, cjk
	}
	if start < len(text) {
		out = append(out, text[start:])
	}
	return out
}
