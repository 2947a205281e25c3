// Package tokenizer turns text into token ids and back for the vocabularies
// that GGUF files carry in their metadata: SentencePiece-style BPE with scores
// and byte fallback ("llama": Llama 2, Mistral, TinyLlama) and GPT-2 byte-level
// BPE with ranked merges ("gpt2": Llama 3, Qwen2, SmolLM). It also renders chat
// conversations with the Llama 2, Llama 3 and ChatML templates.
//
// The algorithms follow llama.cpp's llm_tokenizer_spm and llm_tokenizer_bpe so
// that ids match what the model was trained on.
package tokenizer

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"
)

// Token types as stored in the GGUF key tokenizer.ggml.token_type.
const (
	TypeUndefined   int32 = 0
	TypeNormal      int32 = 1
	TypeUnknown     int32 = 2
	TypeControl     int32 = 3
	TypeUserDefined int32 = 4
	TypeUnused      int32 = 5
	TypeByte        int32 = 6
)

// Config describes a vocabulary. Callers fill it from GGUF metadata:
//
//	Model          tokenizer.ggml.model ("llama" or "gpt2")
//	Pre            tokenizer.ggml.pre (gpt2 only: "llama-bpe"/"llama3", "qwen2", "smollm"; other values use GPT-2's rules)
//	Tokens         tokenizer.ggml.tokens
//	Scores         tokenizer.ggml.scores (llama; merge priority, higher first)
//	Types          tokenizer.ggml.token_type (optional; all normal when empty)
//	Merges         tokenizer.ggml.merges (gpt2; "left right", rank = index)
//	BOS, EOS, EOT  tokenizer.ggml.bos_token_id, eos_token_id, eot_token_id
//	Unknown, Pad   tokenizer.ggml.unknown_token_id, padding_token_id
//	AddBOS         tokenizer.ggml.add_bos_token (llama.cpp's default: true for llama, false for gpt2)
//	AddSpacePrefix tokenizer.ggml.add_space_prefix (llama.cpp's default: true for llama)
//
// Ids that are absent (or stored as 0xFFFFFFFF) are -1.
type Config struct {
	Model  string
	Pre    string
	Tokens []string
	Scores []float32
	Types  []int32
	Merges []string

	BOS, EOS, EOT, Unknown, Pad int32

	AddBOS         bool
	AddSpacePrefix bool
}

// ErrInvalidConfig reports a vocabulary that cannot be used.
var ErrInvalidConfig = errors.New("invalid tokenizer config")

// Tokenizer encodes and decodes text for one vocabulary. It is immutable after
// New and safe for concurrent use.
type Tokenizer struct {
	model  string // "llama" or "gpt2"
	pre    preTokenizer
	bl     *byteLevel
	tokens []string
	scores []float32
	types  []int32
	ids    map[string]int32
	ranks  map[mergeKey]int32

	// pieces caches Piece for every id.
	pieces [][]byte
	// byteIDs maps a byte to its <0xNN> token (llama) or its byte-level
	// character token (gpt2); -1 when the vocabulary lacks it.
	byteIDs [256]int32
	// specials are control and user-defined tokens matched verbatim in text,
	// indexed by first byte, longest first.
	specials [256][]special
	nspecial int

	bos, eos, eot, unk, pad int32
	addBOS, addSpacePrefix  bool
}

type special struct {
	text string
	id   int32
}

type mergeKey struct{ left, right string }

// New builds a tokenizer from cfg. It keeps cfg's slices: do not modify
// them afterwards.
func New(cfg Config) (*Tokenizer, error) {
	n := len(cfg.Tokens)
	if n == 0 {
		return nil, fmt.Errorf("%w: empty vocabulary", ErrInvalidConfig)
	}
	if n > 1<<24 {
		return nil, fmt.Errorf("%w: vocabulary of %d tokens is too large", ErrInvalidConfig, n)
	}
	if len(cfg.Scores) != 0 && len(cfg.Scores) != n {
		return nil, fmt.Errorf("%w: %d scores for %d tokens", ErrInvalidConfig, len(cfg.Scores), n)
	}
	if len(cfg.Types) != 0 && len(cfg.Types) != n {
		return nil, fmt.Errorf("%w: %d token types for %d tokens", ErrInvalidConfig, len(cfg.Types), n)
	}
	t := &Tokenizer{
		model:          cfg.Model,
		tokens:         cfg.Tokens,
		scores:         cfg.Scores,
		types:          cfg.Types,
		ids:            make(map[string]int32, n),
		addBOS:         cfg.AddBOS,
		addSpacePrefix: cfg.AddSpacePrefix,
	}
	if t.scores == nil {
		t.scores = make([]float32, n)
	}
	if t.types == nil {
		t.types = make([]int32, n)
		for i := range t.types {
			t.types[i] = TypeNormal
		}
	}
	var err error
	for _, f := range []struct {
		name string
		in   int32
		out  *int32
	}{
		{"bos", cfg.BOS, &t.bos},
		{"eos", cfg.EOS, &t.eos},
		{"eot", cfg.EOT, &t.eot},
		{"unknown", cfg.Unknown, &t.unk},
		{"padding", cfg.Pad, &t.pad},
	} {
		*f.out, err = checkID(f.name, f.in, n)
		if err != nil {
			return nil, err
		}
	}
	// A string listed twice maps to its lowest id.
	for i := n - 1; i >= 0; i-- {
		t.ids[cfg.Tokens[i]] = int32(i)
	}
	switch cfg.Model {
	case "llama":
		t.initSPM()
	case "gpt2":
		t.pre = preTokenizerFor(cfg.Pre)
		if err := t.initBPE(cfg.Merges); err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("%w: unsupported tokenizer model %q (want llama or gpt2)", ErrInvalidConfig, cfg.Model)
	}
	for i, tok := range cfg.Tokens {
		ty := t.types[i]
		if (ty == TypeControl || ty == TypeUserDefined) && tok != "" {
			t.specials[tok[0]] = append(t.specials[tok[0]], special{text: tok, id: int32(i)})
			t.nspecial++
		}
	}
	for i := range t.specials {
		sortSpecials(t.specials[i])
	}
	return t, nil
}

func checkID(name string, id int32, n int) (int32, error) {
	if id < 0 {
		return -1, nil
	}
	if int(id) >= n {
		return -1, fmt.Errorf("%w: %s token id %d outside vocabulary of %d", ErrInvalidConfig, name, id, n)
	}
	return id, nil
}

// sortSpecials orders longest first so that "<|im_start|>" wins over a
// hypothetical "<|im" token; equal lengths keep id order.
func sortSpecials(s []special) {
	slices.SortFunc(s, func(a, b special) int {
		if len(a.text) != len(b.text) {
			return len(b.text) - len(a.text)
		}
		return int(a.id - b.id)
	})
}

// VocabSize returns the number of tokens.
func (t *Tokenizer) VocabSize() int { return len(t.tokens) }

// BOS returns the beginning-of-sequence id, or -1.
func (t *Tokenizer) BOS() int32 { return t.bos }

// EOS returns the end-of-sequence id, or -1.
func (t *Tokenizer) EOS() int32 { return t.eos }

// AddBOS reports whether the model expects a BOS token before a prompt.
func (t *Tokenizer) AddBOS() bool { return t.addBOS }

// Token returns the vocabulary string of id ("" when out of range).
func (t *Tokenizer) Token(id int32) string {
	if id < 0 || int(id) >= len(t.tokens) {
		return ""
	}
	return t.tokens[id]
}

// ID returns the id of the vocabulary string s, or -1.
func (t *Tokenizer) ID(s string) int32 {
	if id, ok := t.ids[s]; ok {
		return id
	}
	return -1
}

// Type returns the token type of id (TypeUndefined when out of range).
func (t *Tokenizer) Type(id int32) int32 {
	if id < 0 || int(id) >= len(t.types) {
		return TypeUndefined
	}
	return t.types[id]
}

// IsEOG reports whether id ends generation: EOS, EOT, or a control token
// that chat models use as a turn end (<|im_end|>, <|eot_id|>, <|end_of_text|>,
// <|endoftext|>, </s>, <end_of_turn>).
func (t *Tokenizer) IsEOG(id int32) bool {
	if id < 0 || int(id) >= len(t.tokens) {
		return false
	}
	if id == t.eos || id == t.eot {
		return true
	}
	if t.types[id] != TypeControl && t.types[id] != TypeUserDefined {
		return false
	}
	switch t.tokens[id] {
	case "<|im_end|>", "<|eot_id|>", "<|end_of_text|>", "<|endoftext|>", "</s>", "<end_of_turn>", "<|end|>", "<|eom_id|>":
		return true
	}
	return false
}

// Piece returns the raw bytes of one token: SentencePiece's '▁' becomes a
// space, byte tokens (<0xNN>) become that byte, and GPT-2 byte-level
// characters become their bytes. Control and user-defined tokens return their
// text verbatim. The result must not be modified.
func (t *Tokenizer) Piece(id int32) []byte {
	if id < 0 || int(id) >= len(t.pieces) {
		return nil
	}
	return t.pieces[id]
}

// Decode returns the text of ids, always valid UTF-8. Control tokens (BOS,
// EOS, turn markers) are left out; the dummy space prefix that Encode adds for
// SentencePiece vocabularies is removed from the start. Bytes that do not
// form valid UTF-8, e.g. a multi-byte character cut off by max tokens, become
// U+FFFD; use DecodeBytes for the raw bytes, and StreamDecoder to hold back
// incomplete characters while streaming.
func (t *Tokenizer) Decode(ids []int32) string {
	return strings.ToValidUTF8(string(t.DecodeBytes(ids)), "\uFFFD")
}

// DecodeBytes is Decode without the UTF-8 repair: Encode then DecodeBytes
// returns the original bytes, invalid UTF-8 included.
func (t *Tokenizer) DecodeBytes(ids []int32) []byte {
	var b bytes.Buffer
	first := true
	for _, id := range ids {
		if id < 0 || int(id) >= len(t.tokens) || t.types[id] == TypeControl {
			continue
		}
		p := t.pieces[id]
		if first && t.model == "llama" && t.addSpacePrefix && len(p) > 0 && p[0] == ' ' {
			p = p[1:]
		}
		first = false
		b.Write(p)
	}
	return b.Bytes()
}

// Encode returns the token ids of text, with the BOS token first when addBOS
// is true and the vocabulary has one. Control and user-defined tokens written
// in text (e.g. "<|im_start|>", "</s>") are matched verbatim and become their
// ids, so callers must not pass untrusted text that should stay literal
// through a template without escaping it; see EncodeLiteral.
func (t *Tokenizer) Encode(text string, addBOS bool) []int32 {
	return t.encode(text, addBOS, true)
}

// EncodeLiteral is Encode without special-token matching: every byte of text
// is ordinary text.
func (t *Tokenizer) EncodeLiteral(text string, addBOS bool) []int32 {
	return t.encode(text, addBOS, false)
}

func (t *Tokenizer) encode(text string, addBOS, parseSpecial bool) []int32 {
	return t.encodeWith(text, addBOS, parseSpecial, nil)
}

// encodeWith encodes text; special tokens are not matched inside the
// sorted, disjoint byte ranges of literals.
func (t *Tokenizer) encodeWith(text string, addBOS, parseSpecial bool, literals [][2]int) []int32 {
	out := make([]int32, 0, len(text)/3+2)
	if addBOS && t.bos >= 0 {
		out = append(out, t.bos)
	}
	prevSpecial := true // the first text fragment gets the dummy prefix
	emitText := func(s string) {
		if s == "" {
			return
		}
		if t.model == "llama" {
			out = t.encodeSPM(out, s, t.addSpacePrefix && prevSpecial)
		} else {
			out = t.encodeBPE(out, s)
		}
		prevSpecial = false
	}
	if !parseSpecial || t.nspecial == 0 {
		emitText(text)
		return out
	}
	start := 0
	for i := 0; i < len(text); {
		for len(literals) > 0 && literals[0][1] <= i {
			literals = literals[1:]
		}
		if len(literals) > 0 && literals[0][0] <= i {
			i = literals[0][1]
			continue
		}
		if sp, ok := t.matchSpecial(text[i:]); ok {
			emitText(text[start:i])
			out = append(out, sp.id)
			prevSpecial = true
			i += len(sp.text)
			start = i
			continue
		}
		_, w := utf8.DecodeRuneInString(text[i:])
		i += w
	}
	emitText(text[start:])
	return out
}

func (t *Tokenizer) matchSpecial(s string) (special, bool) {
	for _, sp := range t.specials[s[0]] {
		if strings.HasPrefix(s, sp.text) {
			return sp, true
		}
	}
	return special{}, false
}
