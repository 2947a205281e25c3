package encoder

import (
	"encoding/json"

	"fmt"
	"os"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// WordPiece is BERT's tokenizer as Hugging Face's tokenizer.json describes
// it: the BertNormalizer (control characters dropped, CJK ideographs split,
// accents stripped, lower-cased, each as configured), the BertPreTokenizer
// (whitespace and punctuation split) and greedy longest-match WordPiece with
// "##" continuations, wrapped in [CLS] … [SEP].
type WordPiece struct {
	vocab        map[string]int32
	unk          int32
	cls, sep     int32
	prefix       string
	maxWordChars int
	cleanText    bool
	chinese      bool
	stripAccents bool
	lowercase    bool
}

// tokenizerJSON is the part of tokenizer.json a WordPiece tokenizer needs.
type tokenizerJSON struct {
	Normalizer *struct {
		Type               string `json:"type"`
		CleanText          *bool  `json:"clean_text"`
		HandleChineseChars *bool  `json:"handle_chinese_chars"`
		StripAccents       *bool  `json:"strip_accents"`
		Lowercase          *bool  `json:"lowercase"`
	} `json:"normalizer"`
	Model struct {
		Type                    string          `json:"type"`
		UnkToken                string          `json:"unk_token"`
		ContinuingSubwordPrefix string          `json:"continuing_subword_prefix"`
		MaxInputCharsPerWord    int             `json:"max_input_chars_per_word"`
		Vocab                   json.RawMessage `json:"vocab"`
	} `json:"model"`
}

// LoadWordPiece reads a WordPiece tokenizer from a tokenizer.json file.
func LoadWordPiece(path string) (*WordPiece, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	t, err := ParseWordPiece(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return t, nil
}

// ParseWordPiece parses the contents of a tokenizer.json file.
func ParseWordPiece(b []byte) (*WordPiece, error) {
	var j tokenizerJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return nil, fmt.Errorf("tokenizer.json: %w", err)
	}
	if j.Model.Type != "WordPiece" {
		return nil, fmt.Errorf("tokenizer.json: model type %q is not supported (want WordPiece)", j.Model.Type)
	}
	var vocab map[string]int32
	if err := json.Unmarshal(j.Model.Vocab, &vocab); err != nil {
		return nil, fmt.Errorf("tokenizer.json: vocab: %w", err)
	}
	cleanText, chinese, lowercase := true, true, true
	if n := j.Normalizer; n != nil {
		if n.Type != "BertNormalizer" {
			return nil, fmt.Errorf("tokenizer.json: normalizer %q is not supported (want BertNormalizer)", n.Type)
		}
		set := func(dst *bool, v *bool) {
			if v != nil {
				*dst = *v
			}
		}
		set(&cleanText, n.CleanText)
		set(&chinese, n.HandleChineseChars)
		set(&lowercase, n.Lowercase)
	}
	// As in Hugging Face: accents are stripped when lower-casing unless
	// strip_accents says otherwise.
	stripAccents := lowercase
	if n := j.Normalizer; n != nil && n.StripAccents != nil {
		stripAccents = *n.StripAccents
	}
	t, err := newWordPiece(vocab, j.Model.UnkToken, j.Model.ContinuingSubwordPrefix, j.Model.MaxInputCharsPerWord,
		cleanText, chinese, stripAccents, lowercase)
	if err != nil {
		return nil, fmt.Errorf("tokenizer.json: %w", err)
	}
	return t, nil
}

// newWordPiece checks the vocabulary and fills in the defaults.
func newWordPiece(vocab map[string]int32, unk, prefix string, maxWordChars int, cleanText, chinese, stripAccents, lowercase bool) (*WordPiece, error) {
	t := &WordPiece{vocab: vocab, prefix: prefix, maxWordChars: maxWordChars,
		cleanText: cleanText, chinese: chinese, stripAccents: stripAccents, lowercase: lowercase}
	if t.prefix == "" {
		t.prefix = "##"
	}
	if t.maxWordChars <= 0 {
		t.maxWordChars = 100
	}
	if unk == "" {
		unk = "[UNK]"
	}
	var missing []string
	look := func(tok string) int32 {
		id, ok := vocab[tok]
		if !ok {
			missing = append(missing, tok)
		}
		return id
	}
	t.unk, t.cls, t.sep = look(unk), look("[CLS]"), look("[SEP]")
	if len(missing) > 0 {
		return nil, fmt.Errorf("vocabulary lacks %s", strings.Join(missing, ", "))
	}
	for tok, id := range vocab {
		if id < 0 {
			return nil, fmt.Errorf("token %q has negative id %d", tok, id)
		}
	}
	return t, nil
}

// VocabSize is one more than the largest token id.
func (t *WordPiece) VocabSize() int {
	n := int32(0)
	for _, id := range t.vocab {
		n = max(n, id+1)
	}
	return int(n)
}

// Encode returns the token ids of text wrapped in [CLS] and [SEP], at most
// maxLen of them (0: no limit), and whether text was cut to fit.
func (t *WordPiece) Encode(text string, maxLen int) (ids []int32, truncated bool) {
	ids = append(ids, t.cls)
	limit := -1
	if maxLen > 0 {
		limit = max(maxLen-1, 1) // room for [SEP]
	}
	t.words(t.normalize(text), func(w string) bool {
		ids = t.wordPiece(w, ids)
		if limit >= 0 && len(ids) > limit {
			ids, truncated = ids[:limit], true
			return false
		}
		return true
	})
	return append(ids, t.sep), truncated
}

// Tokens returns the WordPiece tokens of text, without [CLS] and [SEP].
func (t *WordPiece) Tokens(text string) []string {
	ids, _ := t.Encode(text, 0)
	inv := make(map[int32]string, len(ids))
	for tok, id := range t.vocab {
		inv[id] = tok
	}
	out := make([]string, 0, len(ids)-2)
	for _, id := range ids[1 : len(ids)-1] {
		out = append(out, inv[id])
	}
	return out
}

func (t *WordPiece) normalize(s string) string {
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "\uFFFD")
	}
	var b strings.Builder
	b.Grow(len(s))
	for _, r := range s {
		if t.cleanText {
			if r == 0 || r == utf8.RuneError || isControl(r) {
				continue
			}
			if isWhitespace(r) {
				r = ' '
			}
		}
		if t.chinese && isCJK(r) {
			b.WriteByte(' ')
			b.WriteRune(r)
			b.WriteByte(' ')
			continue
		}
		b.WriteRune(r)
	}
	s = b.String()
	if t.stripAccents {
		s = stripMarks(s)
	}
	if t.lowercase {
		s = strings.ToLower(s)
	}
	return s
}

func stripMarks(s string) string {
	d := norm.NFD.String(s)
	var b strings.Builder
	b.Grow(len(d))
	for _, r := range d {
		if !unicode.Is(unicode.Mn, r) {
			b.WriteRune(r)
		}
	}
	return b.String()
}

// words calls f with each whitespace-separated word, every punctuation
// character a word of its own, until f returns false.
func (t *WordPiece) words(s string, f func(string) bool) {
	start := -1
	for i, r := range s {
		switch {
		case isWhitespace(r):
			if start >= 0 && !f(s[start:i]) {
				return
			}
			start = -1
		case isPunct(r):
			if start >= 0 && !f(s[start:i]) {
				return
			}
			start = -1
			if !f(s[i : i+utf8.RuneLen(r)]) {
				return
			}
		default:
			if start < 0 {
				start = i
			}
		}
	}
	if start >= 0 {
		f(s[start:])
	}
}

// wordPiece appends the ids of word: greedy longest match first, "##"
// pieces after the first, and [UNK] for the whole word when any part has
// no match or the word is too long.
func (t *WordPiece) wordPiece(word string, ids []int32) []int32 {
	if utf8.RuneCountInString(word) > t.maxWordChars {
		return append(ids, t.unk)
	}
	n0 := len(ids)
	for start := 0; start < len(word); {
		end := len(word)
		found := false
		for end > start {
			piece := word[start:end]
			if start > 0 {
				piece = t.prefix + piece
			}
			if id, ok := t.vocab[piece]; ok {
				ids = append(ids, id)
				found = true
				break
			}
			_, size := utf8.DecodeLastRuneInString(word[start:end])
			end -= size
		}
		if !found {
			return append(ids[:n0], t.unk)
		}
		start = end
	}
	return ids
}

func isWhitespace(r rune) bool {
	return r == ' ' || r == '\t' || r == '\n' || r == '\r' || unicode.Is(unicode.Zs, r)
}

func isControl(r rune) bool {
	if r == '\t' || r == '\n' || r == '\r' {
		return false
	}
	return unicode.In(r, unicode.Cc, unicode.Cf, unicode.Co) || !unicode.In(r, unicode.L, unicode.M, unicode.N, unicode.P, unicode.S, unicode.Z, unicode.C)
}

func isPunct(r rune) bool {
	return (r >= 33 && r <= 47) || (r >= 58 && r <= 64) || (r >= 91 && r <= 96) || (r >= 123 && r <= 126) || unicode.IsPunct(r)
}

func isCJK(r rune) bool {
	return (r >= 0x4E00 && r <= 0x9FFF) || (r >= 0x3400 && r <= 0x4DBF) || (r >= 0x20000 && r <= 0x2A6DF) ||
		(r >= 0x2A700 && r <= 0x2B73F) || (r >= 0x2B740 && r <= 0x2B81F) || (r >= 0x2B820 && r <= 0x2CEAF) ||
		(r >= 0xF900 && r <= 0xFAFF) || (r >= 0x2F800 && r <= 0x2FA1F)
}

// EncodePair returns [CLS] a [SEP] b [SEP] with token types 0 up to the
// first [SEP] and 1 after it, as BERT cross-encoders take a query and a
// passage; at most maxLen ids (0: no limit), the longer text cut first.
func (t *WordPiece) EncodePair(a, b string, maxLen int) (ids, types []int32, truncated bool) {
	ia, _ := t.Encode(a, 0)
	ib, _ := t.Encode(b, 0)
	ta, tb := ia[1:len(ia)-1], ib[1:len(ib)-1]
	if maxLen > 0 {
		ta, tb, truncated = truncatePair(ta, tb, maxLen-3)
	}
	ids = append(append(append(append(append(ids, t.cls), ta...), t.sep), tb...), t.sep)
	types = make([]int32, len(ids))
	for i := len(ta) + 2; i < len(ids); i++ {
		types[i] = 1
	}
	return ids, types, truncated
}
