package llm

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/tributary-rag/tributary/pkg/gguf"
)

// Token types of tokenizer.ggml.token_type (llama.cpp's llama_token_type).
const (
	tokenNormal      = 1
	tokenUnknown     = 2
	tokenControl     = 3
	tokenUserDefined = 4
	tokenUnused      = 5
	tokenByte        = 6
)

// vocab is what the engine needs to turn sampled ids into bytes: each
// token's output bytes and the end-of-generation ids.
type vocab struct {
	model  string // tokenizer.ggml.model
	pieces [][]byte
	bos    int32
	eos    int32
	eog    map[int32]bool
}

func newVocab(f *gguf.File, n int) (*vocab, error) {
	v := &vocab{bos: -1, eos: -1, eog: map[int32]bool{}}
	v.model, _ = f.String("tokenizer.ggml.model")
	ta, ok := f.Array("tokenizer.ggml.tokens")
	if !ok {
		return nil, fmt.Errorf("%w: tokenizer.ggml.tokens missing", ErrUnsupported)
	}
	tokens, ok := ta.Values.([]string)
	if !ok {
		return nil, fmt.Errorf("%w: tokenizer.ggml.tokens is not a string array", ErrUnsupported)
	}
	if len(tokens) > n {
		return nil, fmt.Errorf("%w: %d tokens but the embedding has %d rows", ErrUnsupported, len(tokens), n)
	}
	var types []int32
	if a, ok := f.Array("tokenizer.ggml.token_type"); ok {
		types, _ = a.Values.([]int32)
	}
	var byteDecoder map[rune]byte
	if v.model == "gpt2" {
		byteDecoder = gpt2ByteDecoder()
	}
	v.pieces = make([][]byte, n)
	for i, t := range tokens {
		typ := int32(tokenNormal)
		if i < len(types) {
			typ = types[i]
		}
		switch {
		case typ == tokenControl || typ == tokenUnused:
			v.pieces[i] = nil
		case typ == tokenByte || (byteDecoder == nil && isByteToken(t)):
			if b, ok := parseByteToken(t); ok {
				v.pieces[i] = []byte{b}
			}
		case typ == tokenUserDefined:
			v.pieces[i] = []byte(t)
		case byteDecoder != nil:
			out := make([]byte, 0, len(t))
			for _, r := range t {
				if b, ok := byteDecoder[r]; ok {
					out = append(out, b)
				} else {
					out = append(out, string(r)...)
				}
			}
			v.pieces[i] = out
		default:
			v.pieces[i] = []byte(strings.ReplaceAll(t, "\u2581", " "))
		}
	}
	id := func(key string) int32 {
		x, ok := f.Uint(key)
		if !ok || x >= uint64(n) {
			return -1
		}
		return int32(x)
	}
	v.bos = id("tokenizer.ggml.bos_token_id")
	v.eos = id("tokenizer.ggml.eos_token_id")
	for _, k := range []string{"tokenizer.ggml.eos_token_id", "tokenizer.ggml.eot_token_id", "tokenizer.ggml.eom_token_id"} {
		if x := id(k); x >= 0 {
			v.eog[x] = true
		}
	}
	// Chat models often end turns with a control token the metadata does
	// not name as EOS; treat the well-known ones as end of generation.
	for i, t := range tokens {
		switch t {
		case "<|eot_id|>", "<|im_end|>", "<|end_of_text|>", "<|endoftext|>", "<end_of_turn>", "<|end|>":
			v.eog[int32(i)] = true
		}
	}
	return v, nil
}

func (v *vocab) piece(id int32) []byte {
	if id < 0 || int(id) >= len(v.pieces) {
		return nil
	}
	return v.pieces[id]
}

func isByteToken(t string) bool {
	return len(t) == 6 && strings.HasPrefix(t, "<0x") && t[5] == '>'
}

func parseByteToken(t string) (byte, bool) {
	if !isByteToken(t) {
		return 0, false
	}
	b, err := strconv.ParseUint(t[3:5], 16, 8)
	return byte(b), err == nil
}

// gpt2ByteDecoder inverts GPT-2's bytes_to_unicode table.
func gpt2ByteDecoder() map[rune]byte {
	m := make(map[rune]byte, 256)
	n := 0
	for b := 0; b < 256; b++ {
		if (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF) {
			m[rune(b)] = byte(b)
		} else {
			m[rune(256+n)] = byte(b)
			n++
		}
	}
	return m
}
