package encoder

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"

	"github.com/tributary-rag/tributary/pkg/gguf"
)

// Tokenizer turns text into a model's token ids. WordPiece (BERT) and
// Unigram (XLM-RoBERTa's SentencePiece) implement it.
type Tokenizer interface {
	// Encode returns the ids of text with the model's special tokens
	// around it, at most maxLen (0: no limit), and whether text was cut.
	Encode(text string, maxLen int) (ids []int32, truncated bool)
	// EncodePair returns the ids and token type ids of a text pair (a
	// cross-encoder's query and passage), at most maxLen in all, the
	// longer text cut first as Hugging Face's longest_first does.
	EncodePair(a, b string, maxLen int) (ids, types []int32, truncated bool)
	// VocabSize is one more than the largest token id.
	VocabSize() int
}

// Unigram is a SentencePiece Unigram tokenizer as Hugging Face's
// tokenizer.json describes it (XLM-RoBERTa, multilingual-e5, bge-m3):
// the normalizers, the Metaspace pre-tokenizer ("▁" for spaces, one
// prepended), Viterbi segmentation of each word into the pieces of highest
// total score, and the post-processor's special tokens (<s> A </s>, pair
// <s> A </s></s> B </s>).
//
// The Precompiled normalizer (SentencePiece's character map, nmt_nfkc for
// these models) is read from the file and applied as SentencePiece's
// Normalizer does: longest key first, left to right. Two deliberate
// differences from Hugging Face: its Precompiled normalizer first tries
// each grapheme cluster shorter than 6 bytes whole and replaces the
// cluster by its shortest matching key's replacement, which can drop a
// combining mark after a mapped character ("Ａ\u0301" becomes "A" there,
// "Á" here and in SentencePiece); and special tokens written in the text
// ("<s>", "</s>") stay text instead of becoming control tokens, so a
// passage cannot forge the structure of a pair.
type Unigram struct {
	pieces       map[string]int32
	scores       []float64
	maxPiece     int // bytes
	unk          int32
	unkScore     float64
	byteFallback bool
	normalizers  []func(string) string
	replacement  string
	prepend      bool
	split        bool
	single, pair []templatePiece
}

// templatePiece is one item of a post-processor template: a special
// token (seq -1) or the ids of sequence A (0) or B (1).
type templatePiece struct {
	seq int
	id  int32
	typ int32
}

// unkPenalty is how much worse than the worst piece an unknown character
// scores (Hugging Face's and SentencePiece's kUnkPenalty).
const unkPenalty = 10

type unigramJSON struct {
	AddedTokens []struct {
		ID      int32  `json:"id"`
		Content string `json:"content"`
		Special bool   `json:"special"`
	} `json:"added_tokens"`
	Normalizer    json.RawMessage `json:"normalizer"`
	PreTokenizer  json.RawMessage `json:"pre_tokenizer"`
	PostProcessor json.RawMessage `json:"post_processor"`
	Model         struct {
		Type         string              `json:"type"`
		UnkID        *int                `json:"unk_id"`
		ByteFallback bool                `json:"byte_fallback"`
		Vocab        [][]json.RawMessage `json:"vocab"`
	} `json:"model"`
}

// LoadTokenizer reads tokenizer.json: a WordPiece or a Unigram tokenizer.
func LoadTokenizer(path string) (Tokenizer, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var probe struct {
		Model struct {
			Type string `json:"type"`
		} `json:"model"`
	}
	if err := json.Unmarshal(b, &probe); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	var t Tokenizer
	switch probe.Model.Type {
	case "WordPiece":
		t, err = ParseWordPiece(b)
	case "Unigram":
		t, err = ParseUnigram(b)
	default:
		err = fmt.Errorf("tokenizer.json: model type %q is not supported (want WordPiece or Unigram)", probe.Model.Type)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return t, nil
}

// ParseUnigram parses the contents of a tokenizer.json file whose model is
// Unigram.
func ParseUnigram(b []byte) (*Unigram, error) {
	var j unigramJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return nil, fmt.Errorf("tokenizer.json: %w", err)
	}
	if j.Model.Type != "Unigram" {
		return nil, fmt.Errorf("tokenizer.json: model type %q is not supported (want Unigram)", j.Model.Type)
	}
	n := len(j.Model.Vocab)
	if n == 0 || n > 1<<24 {
		return nil, fmt.Errorf("tokenizer.json: vocab has %d pieces", n)
	}
	if j.Model.UnkID == nil || *j.Model.UnkID < 0 || *j.Model.UnkID >= n {
		return nil, fmt.Errorf("tokenizer.json: unk_id missing or outside the vocab of %d", n)
	}
	special := map[int32]bool{}
	for _, a := range j.AddedTokens {
		if a.Special {
			special[a.ID] = true
		}
	}
	u := &Unigram{pieces: make(map[string]int32, n), scores: make([]float64, n), unk: int32(*j.Model.UnkID),
		byteFallback: j.Model.ByteFallback, replacement: "▁", prepend: true, split: true}
	minScore := math.Inf(1)
	for i, e := range j.Model.Vocab {
		var piece string
		var score float64
		if len(e) != 2 || json.Unmarshal(e[0], &piece) != nil || json.Unmarshal(e[1], &score) != nil {
			return nil, fmt.Errorf("tokenizer.json: vocab entry %d is not [piece, score]", i)
		}
		if math.IsNaN(score) || math.IsInf(score, 0) {
			return nil, fmt.Errorf("tokenizer.json: vocab entry %d has score %v", i, score)
		}
		u.scores[i] = score
		minScore = min(minScore, score)
		// Special tokens are never matched in text; the first spelling of
		// a piece wins, as in Hugging Face's map.
		if _, dup := u.pieces[piece]; !dup && piece != "" && !special[int32(i)] && int32(i) != u.unk {
			u.pieces[piece] = int32(i)
			u.maxPiece = max(u.maxPiece, len(piece))
		}
	}
	u.unkScore = minScore - unkPenalty
	var err error
	if u.normalizers, err = parseNormalizer(j.Normalizer); err != nil {
		return nil, fmt.Errorf("tokenizer.json: normalizer: %w", err)
	}
	if err := u.parsePreTokenizer(j.PreTokenizer); err != nil {
		return nil, fmt.Errorf("tokenizer.json: pre_tokenizer: %w", err)
	}
	if err := u.parsePostProcessor(j.PostProcessor, int32(n)); err != nil {
		return nil, fmt.Errorf("tokenizer.json: post_processor: %w", err)
	}
	return u, nil
}

// parseNormalizer returns the normalizer's steps in order.
func parseNormalizer(raw json.RawMessage) ([]func(string) string, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	var n struct {
		Type        string            `json:"type"`
		Normalizers []json.RawMessage `json:"normalizers"`
		Pattern     struct {
			String *string `json:"String"`
			Regex  *string `json:"Regex"`
		} `json:"pattern"`
		Content    string `json:"content"`
		StripLeft  bool   `json:"strip_left"`
		StripRight bool   `json:"strip_right"`
		Prepend    string `json:"prepend"`
		Charsmap   string `json:"precompiled_charsmap"`
	}
	if err := json.Unmarshal(raw, &n); err != nil {
		return nil, err
	}
	switch n.Type {
	case "Sequence":
		var out []func(string) string
		for _, r := range n.Normalizers {
			f, err := parseNormalizer(r)
			if err != nil {
				return nil, err
			}
			out = append(out, f...)
		}
		return out, nil
	case "Precompiled":
		blob, err := base64.StdEncoding.DecodeString(n.Charsmap)
		if err != nil {
			return nil, fmt.Errorf("Precompiled: precompiled_charsmap: %w", err)
		}
		if len(blob) == 0 {
			return nil, nil // SentencePiece's identity rule: no map
		}
		p, err := parsePrecompiled(blob)
		if err != nil {
			return nil, fmt.Errorf("Precompiled: %w", err)
		}
		return []func(string) string{p.normalize}, nil
	case "NFKC":
		return []func(string) string{norm.NFKC.String}, nil
	case "NFC":
		return []func(string) string{norm.NFC.String}, nil
	case "NFD":
		return []func(string) string{norm.NFD.String}, nil
	case "NFKD":
		return []func(string) string{norm.NFKD.String}, nil
	case "Lowercase":
		return []func(string) string{strings.ToLower}, nil
	case "Strip":
		l, r := n.StripLeft, n.StripRight
		return []func(string) string{func(s string) string {
			if l {
				s = strings.TrimLeftFunc(s, unicode.IsSpace)
			}
			if r {
				s = strings.TrimRightFunc(s, unicode.IsSpace)
			}
			return s
		}}, nil
	case "Prepend":
		p := n.Prepend
		return []func(string) string{func(s string) string {
			if s == "" {
				return s
			}
			return p + s
		}}, nil
	case "Replace":
		content := n.Content
		switch {
		case n.Pattern.String != nil:
			old := *n.Pattern.String
			if old == "" {
				return nil, fmt.Errorf("Replace with an empty pattern")
			}
			return []func(string) string{func(s string) string { return strings.ReplaceAll(s, old, content) }}, nil
		case n.Pattern.Regex != nil:
			re, err := regexp.Compile(*n.Pattern.Regex)
			if err != nil {
				return nil, fmt.Errorf("Replace: %w", err)
			}
			return []func(string) string{func(s string) string { return re.ReplaceAllLiteralString(s, content) }}, nil
		}
		return nil, fmt.Errorf("Replace without a String or Regex pattern")
	}
	return nil, fmt.Errorf("%q is not supported", n.Type)
}

func (u *Unigram) parsePreTokenizer(raw json.RawMessage) error {
	if len(raw) == 0 || string(raw) == "null" {
		return fmt.Errorf("missing (want Metaspace)")
	}
	var p struct {
		Type           string            `json:"type"`
		PreTokenizers  []json.RawMessage `json:"pretokenizers"`
		Replacement    *string           `json:"replacement"`
		PrependScheme  *string           `json:"prepend_scheme"`
		AddPrefixSpace *bool             `json:"add_prefix_space"`
		Split          *bool             `json:"split"`
	}
	if err := json.Unmarshal(raw, &p); err != nil {
		return err
	}
	if p.Type == "Sequence" && len(p.PreTokenizers) == 1 {
		return u.parsePreTokenizer(p.PreTokenizers[0])
	}
	if p.Type != "Metaspace" {
		return fmt.Errorf("%q is not supported (want Metaspace)", p.Type)
	}
	if p.Replacement != nil {
		if utf8.RuneCountInString(*p.Replacement) != 1 {
			return fmt.Errorf("replacement %q is not one character", *p.Replacement)
		}
		u.replacement = *p.Replacement
	}
	if p.AddPrefixSpace != nil {
		u.prepend = *p.AddPrefixSpace
	}
	if p.PrependScheme != nil {
		switch *p.PrependScheme {
		case "always", "first":
			// Each text of a pair is pre-tokenized from its own start, so
			// "first" prepends to both, as "always" does.
			u.prepend = true
		case "never":
			u.prepend = false
		default:
			return fmt.Errorf("prepend_scheme %q is not supported", *p.PrependScheme)
		}
	}
	if p.Split != nil {
		u.split = *p.Split
	}
	return nil
}

// parsePostProcessor reads the special tokens around single texts and
// pairs; none given is XLM-RoBERTa's (<s> and </s> from the vocabulary).
func (u *Unigram) parsePostProcessor(raw json.RawMessage, vocab int32) error {
	var p struct {
		Type   string            `json:"type"`
		Single []json.RawMessage `json:"single"`
		Pair   []json.RawMessage `json:"pair"`
		Sep    []json.RawMessage `json:"sep"`
		Cls    []json.RawMessage `json:"cls"`
		Tokens map[string]struct {
			IDs []int32 `json:"ids"`
		} `json:"special_tokens"`
	}
	if len(raw) > 0 && string(raw) != "null" {
		if err := json.Unmarshal(raw, &p); err != nil {
			return err
		}
	}
	check := func(id int32) error {
		if id < 0 || id >= vocab {
			return fmt.Errorf("special token id %d outside the vocab of %d", id, vocab)
		}
		return nil
	}
	roberta := func(cls, sep int32) error {
		if err := check(cls); err != nil {
			return err
		}
		if err := check(sep); err != nil {
			return err
		}
		u.single = []templatePiece{{-1, cls, 0}, {0, 0, 0}, {-1, sep, 0}}
		u.pair = []templatePiece{{-1, cls, 0}, {0, 0, 0}, {-1, sep, 0}, {-1, sep, 0}, {1, 0, 0}, {-1, sep, 0}}
		return nil
	}
	switch p.Type {
	case "", "null":
		cls, ok1 := u.pieces["<s>"]
		sep, ok2 := u.pieces["</s>"]
		if !ok1 || !ok2 {
			return fmt.Errorf("missing, and the vocab has no <s> and </s>")
		}
		return roberta(cls, sep)
	case "RobertaProcessing":
		var cls, sep int32
		if len(p.Cls) != 2 || len(p.Sep) != 2 || json.Unmarshal(p.Cls[1], &cls) != nil || json.Unmarshal(p.Sep[1], &sep) != nil {
			return fmt.Errorf("RobertaProcessing needs cls and sep as [token, id]")
		}
		return roberta(cls, sep)
	case "TemplateProcessing":
		var err error
		parse := func(items []json.RawMessage) []templatePiece {
			var out []templatePiece
			for _, it := range items {
				var t struct {
					Special *struct {
						ID     string `json:"id"`
						TypeID int32  `json:"type_id"`
					} `json:"SpecialToken"`
					Sequence *struct {
						ID     string `json:"id"`
						TypeID int32  `json:"type_id"`
					} `json:"Sequence"`
				}
				if e := json.Unmarshal(it, &t); e != nil {
					err = e
					return nil
				}
				switch {
				case t.Special != nil:
					st, ok := p.Tokens[t.Special.ID]
					if !ok || len(st.IDs) == 0 {
						err = fmt.Errorf("template names special token %q without ids", t.Special.ID)
						return nil
					}
					for _, id := range st.IDs {
						if e := check(id); e != nil {
							err = e
							return nil
						}
						out = append(out, templatePiece{-1, id, t.Special.TypeID})
					}
				case t.Sequence != nil && (t.Sequence.ID == "A" || t.Sequence.ID == "B"):
					out = append(out, templatePiece{int(t.Sequence.ID[0] - 'A'), 0, t.Sequence.TypeID})
				default:
					err = fmt.Errorf("template item %s is not a special token or sequence A or B", it)
					return nil
				}
			}
			return out
		}
		u.single, u.pair = parse(p.Single), parse(p.Pair)
		if err != nil {
			return err
		}
		if count(u.single, 0) != 1 || count(u.single, 1) != 0 || count(u.pair, 0) != 1 || count(u.pair, 1) != 1 {
			return fmt.Errorf("templates must hold $A once (single) and $A and $B once each (pair)")
		}
		return nil
	}
	return fmt.Errorf("%q is not supported", p.Type)
}

func count(t []templatePiece, seq int) int {
	n := 0
	for _, p := range t {
		if p.seq == seq {
			n++
		}
	}
	return n
}

// VocabSize is the number of pieces.
func (u *Unigram) VocabSize() int { return len(u.scores) }

// Encode returns the ids of text in the single template, at most maxLen
// (0: no limit), and whether text was cut to fit.
func (u *Unigram) Encode(text string, maxLen int) (ids []int32, truncated bool) {
	room := -1
	if maxLen > 0 {
		room = max(maxLen-(len(u.single)-1), 0)
	}
	a := u.tokenize(text, room+1)
	if room >= 0 && len(a) > room {
		a, truncated = a[:room], true
	}
	ids, _ = apply(u.single, a, nil)
	return ids, truncated
}

// EncodePair returns the ids and type ids of the pair template.
func (u *Unigram) EncodePair(a, b string, maxLen int) (ids, types []int32, truncated bool) {
	// Both in full: which one longest_first cuts depends on their lengths.
	ta, tb := u.tokenize(a, 0), u.tokenize(b, 0)
	if maxLen > 0 {
		ta, tb, truncated = truncatePair(ta, tb, maxLen-(len(u.pair)-2))
	}
	ids, types = apply(u.pair, ta, tb)
	return ids, types, truncated
}

// apply fills a template with the sequences' ids.
func apply(t []templatePiece, a, b []int32) (ids, types []int32) {
	for _, p := range t {
		seq := []int32{p.id}
		switch p.seq {
		case 0:
			seq = a
		case 1:
			seq = b
		}
		for _, id := range seq {
			ids = append(ids, id)
			types = append(types, p.typ)
		}
	}
	return ids, types
}

// truncatePair cuts a and b to m ids in all as Hugging Face's
// longest_first strategy does: the shorter keeps all it has if it fits in
// half, else both get half (the longer the odd one).
func truncatePair(a, b []int32, m int) ([]int32, []int32, bool) {
	m = max(m, 0)
	if len(a)+len(b) <= m {
		return a, b, false
	}
	n1, n2 := len(a), len(b)
	swap := n1 > n2
	if swap {
		n1, n2 = n2, n1
	}
	if n1 > m {
		n2 = n1
	} else {
		n2 = max(n1, m-n1)
	}
	if n1+n2 > m {
		n1 = m / 2
		n2 = n1 + m%2
	}
	if swap {
		n1, n2 = n2, n1
	}
	return a[:min(n1, len(a))], b[:min(n2, len(b))], true
}

// tokenize returns the pieces of text: normalized, spaces made the
// replacement, split before each replacement, each word segmented; it
// stops after the word that brings them to limit (0: no limit), as the
// words after it cannot change them.
func (u *Unigram) tokenize(text string, limit int) []int32 {
	// The normalizers see the bytes as given: a charsmap turns each byte
	// that is not UTF-8 into U+FFFD itself, and maps a U+FFFD the text
	// held (to a space, in nmt_nfkc), as SentencePiece does.
	for _, f := range u.normalizers {
		text = f(text)
	}
	if !utf8.ValidString(text) {
		text = validUTF8(text)
	}
	if text == "" {
		return nil
	}
	text = strings.ReplaceAll(text, " ", u.replacement)
	if u.prepend && !strings.HasPrefix(text, u.replacement) {
		text = u.replacement + text
	}
	var ids []int32
	if !u.split {
		return u.viterbi(text, ids)
	}
	for len(text) > 0 && (limit <= 0 || len(ids) < limit) {
		// A word is a replacement and what follows up to the next one.
		end := len(text)
		if i := strings.Index(text[1:], u.replacement); i >= 0 {
			end = i + 1
		}
		ids = u.viterbi(text[:end], ids)
		text = text[end:]
	}
	return ids
}

// validUTF8 replaces each byte of s that starts no valid UTF-8 character
// with U+FFFD, as SentencePiece does (strings.ToValidUTF8 makes a run of
// them one).
func validUTF8(s string) string {
	var b strings.Builder
	b.Grow(len(s) + 8)
	for i, r := range s {
		if r == utf8.RuneError {
			if _, size := utf8.DecodeRuneInString(s[i:]); size == 1 {
				b.WriteString("\uFFFD")
				continue
			}
		}
		b.WriteRune(r)
	}
	return b.String()
}

// viterbi appends the segmentation of w into pieces of the highest total
// score. Ties keep the first path found (the longest last piece), and
// runs of unknown characters become one <unk> (or, with byte_fallback,
// their bytes), as in Hugging Face.
func (u *Unigram) viterbi(w string, ids []int32) []int32 {
	n := len(w)
	type node struct {
		score float64
		start int
		id    int32
		set   bool
	}
	best := make([]node, n+1)
	best[0].set = true
	for i := 0; i < n; {
		_, size := utf8.DecodeRuneInString(w[i:])
		if best[i].set {
			single := false
			for j := i + size; j <= n && j-i <= u.maxPiece; {
				if id, ok := u.pieces[w[i:j]]; ok {
					s := best[i].score + u.scores[id]
					if j == i+size {
						single = true
					}
					if !best[j].set || s > best[j].score {
						best[j] = node{s, i, id, true}
					}
				}
				if j == n {
					break
				}
				_, sz := utf8.DecodeRuneInString(w[j:])
				j += sz
			}
			if !single {
				s := best[i].score + u.unkScore
				if j := i + size; !best[j].set || s > best[j].score {
					best[j] = node{s, i, u.unk, true}
				}
			}
		}
		i += size
	}
	type seg struct {
		start, end int
		id         int32
	}
	var path []seg
	for end := n; end > 0; end = best[end].start {
		nd := best[end]
		if nd.id == u.unk && len(path) > 0 && path[len(path)-1].id == u.unk {
			path[len(path)-1].start = nd.start // fuse with the unknown run after it
			continue
		}
		path = append(path, seg{nd.start, end, nd.id})
	}
	for k := len(path) - 1; k >= 0; k-- {
		p := path[k]
		if p.id != u.unk {
			ids = append(ids, p.id)
			continue
		}
		if id, ok := u.pieces[w[p.start:p.end]]; ok {
			ids = append(ids, id)
			continue
		}
		ids = u.unknown(w[p.start:p.end], ids)
	}
	return ids
}

// unknown appends the ids of an unknown run: its bytes as <0xXX> pieces
// with byte_fallback when all exist, else <unk>.
func (u *Unigram) unknown(piece string, ids []int32) []int32 {
	if u.byteFallback {
		n0 := len(ids)
		for i := 0; i < len(piece); i++ {
			id, ok := u.pieces[fmt.Sprintf("<0x%02X>", piece[i])]
			if !ok {
				return append(ids[:n0], u.unk)
			}
			ids = append(ids, id)
		}
		return ids
	}
	return append(ids, u.unk)
}

// llama.cpp's token types (SentencePiece's piece types).
const (
	ggufTokenUnknown = 2
	ggufTokenControl = 3
	ggufTokenUnused  = 5
	ggufTokenByte    = 6
)

// unigramFromGGUF builds the tokenizer of llama.cpp's "t5" (Unigram)
// vocabulary, which its converter writes for XLM-RoBERTa: pieces, scores
// and types, and SentencePiece's normalizer spec (the precompiled
// character map, add_space_prefix, remove_extra_whitespaces) applied as
// SentencePiece (and llama.cpp) apply it, not as Hugging Face's layout
// does.
func unigramFromGGUF(f *gguf.File, tokens []string) (*Unigram, error) {
	arr, _ := f.Array("tokenizer.ggml.scores")
	scores, _ := arr.Values.([]float32)
	arr, _ = f.Array("tokenizer.ggml.token_type")
	types, _ := arr.Values.([]int32)
	if len(scores) != len(tokens) || len(types) != len(tokens) {
		return nil, fmt.Errorf("tokenizer.ggml.scores and token_type must have one entry per token (%d)", len(tokens))
	}
	// The normalizer escapes spaces and adds the prefix "▁" itself.
	u := &Unigram{pieces: make(map[string]int32, len(tokens)), scores: make([]float64, len(tokens)), unk: -1,
		replacement: "▁", split: true}
	addPrefix := true
	if v, ok := f.Bool("tokenizer.ggml.add_space_prefix"); ok {
		addPrefix = v
	}
	removeExtra, _ := f.Bool("tokenizer.ggml.remove_extra_whitespaces")
	cm, err := ggufCharsmap(f)
	if err != nil {
		return nil, err
	}
	u.normalizers = append(u.normalizers, sentencePieceNormalize(cm, addPrefix, removeExtra))
	minScore := math.Inf(1)
	for i, t := range tokens {
		s := float64(scores[i])
		if math.IsNaN(s) || math.IsInf(s, 0) {
			return nil, fmt.Errorf("tokenizer.ggml.scores[%d] is %v", i, s)
		}
		u.scores[i] = s
		minScore = min(minScore, s)
		switch types[i] {
		case ggufTokenUnknown:
			if u.unk < 0 {
				u.unk = int32(i)
			}
			continue
		case ggufTokenControl, ggufTokenUnused:
			continue
		case ggufTokenByte:
			u.byteFallback = true
		}
		if _, dup := u.pieces[t]; !dup && t != "" {
			u.pieces[t] = int32(i)
			u.maxPiece = max(u.maxPiece, len(t))
		}
	}
	u.unkScore = minScore - unkPenalty
	id := func(key string, def int32) (int32, error) {
		v, ok := f.Uint(key)
		if !ok {
			if def < 0 {
				return 0, fmt.Errorf("no %s", key)
			}
			return def, nil
		}
		if v >= uint64(len(tokens)) {
			return 0, fmt.Errorf("%s %d outside the vocabulary of %d", key, v, len(tokens))
		}
		return int32(v), nil
	}
	if u.unk, err = id("tokenizer.ggml.unknown_token_id", u.unk); err != nil {
		return nil, err
	}
	cls, err := id("tokenizer.ggml.bos_token_id", -1)
	if err != nil {
		return nil, err
	}
	sep, err := id("tokenizer.ggml.eos_token_id", -1)
	if err != nil {
		return nil, err
	}
	u.single = []templatePiece{{-1, cls, 0}, {0, 0, 0}, {-1, sep, 0}}
	u.pair = []templatePiece{{-1, cls, 0}, {0, 0, 0}, {-1, sep, 0}, {-1, sep, 0}, {1, 0, 0}, {-1, sep, 0}}
	return u, nil
}

// ggufCharsmap decodes tokenizer.ggml.precompiled_charsmap: nil when the
// key is absent or empty (no map, as in SentencePiece).
func ggufCharsmap(f *gguf.File) (*precompiled, error) {
	arr, ok := f.Array("tokenizer.ggml.precompiled_charsmap")
	if !ok {
		return nil, nil
	}
	var blob []byte
	switch v := arr.Values.(type) {
	case []uint8:
		blob = v
	case []int8:
		blob = make([]byte, len(v))
		for i, b := range v {
			blob[i] = byte(b)
		}
	default:
		return nil, fmt.Errorf("tokenizer.ggml.precompiled_charsmap is an array of %s, want bytes", arr.Elem)
	}
	if len(blob) == 0 {
		return nil, nil
	}
	cm, err := parsePrecompiled(blob)
	if err != nil {
		return nil, fmt.Errorf("tokenizer.ggml.precompiled_charsmap: %w", err)
	}
	return cm, nil
}
