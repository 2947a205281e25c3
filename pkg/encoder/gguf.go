package encoder

import (
	"fmt"
	"path/filepath"
	"strings"

	"github.com/tributary-rag/tributary/pkg/gguf"
)

// ggufNames maps llama.cpp's BERT tensor names to Hugging Face's; "%d" is
// the layer.
var ggufNames = map[string]string{
	"token_embd":               "embeddings.word_embeddings",
	"position_embd":            "embeddings.position_embeddings",
	"token_types":              "embeddings.token_type_embeddings",
	"token_embd_norm":          "embeddings.LayerNorm",
	"blk.%d.attn_q":            "encoder.layer.%d.attention.self.query",
	"blk.%d.attn_k":            "encoder.layer.%d.attention.self.key",
	"blk.%d.attn_v":            "encoder.layer.%d.attention.self.value",
	"blk.%d.attn_output":       "encoder.layer.%d.attention.output.dense",
	"blk.%d.attn_output_norm":  "encoder.layer.%d.attention.output.LayerNorm",
	"blk.%d.ffn_up":            "encoder.layer.%d.intermediate.dense",
	"blk.%d.ffn_down":          "encoder.layer.%d.output.dense",
	"blk.%d.layer_output_norm": "encoder.layer.%d.output.LayerNorm",
	"cls":                      "classifier.dense",
	"cls.output":               "classifier.out_proj",
}

// ggufPooling is llama.cpp's pooling_type enum; 4 (rank) is a
// cross-encoder's, whose head reads the first token.
var ggufPooling = map[uint64]Pooling{1: PoolMean, 2: PoolCLS, 3: PoolLast, 4: PoolCLS}

// loadGGUF reads a BERT model from a GGUF file as llama.cpp's converter
// writes it: architecture "bert", hyperparameters under "bert.", the
// WordPiece vocabulary in phantom-space spelling (words "▁word",
// continuations without "##", control tokens as they are), pooling_type.
// XLM-RoBERTa is written as "bert" too, with a "t5" (Unigram) vocabulary
// and the position table already cut past the padding rows; its
// classification head is cls and cls.output. The weights stay in the
// memory-mapped file. A nomic-bert file (architecture "nomic-bert",
// hyperparameters under "nomic-bert.", rope.freq_base, a WordPiece
// vocabulary; see nomic.go) is read the same way.
func loadGGUF(path string, o Options) (*Encoder, error) {
	f, err := gguf.Open(path)
	if err != nil {
		return nil, fmt.Errorf("encoder %s: %w", path, err)
	}
	e, err := fromGGUF(f, path, o)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("encoder %s: %w", path, err)
	}
	e.file = f
	return e, nil
}

func fromGGUF(f *gguf.File, path string, o Options) (*Encoder, error) {
	arch, _ := f.String("general.architecture")
	names := ggufNames
	switch arch {
	case "bert":
	case "nomic-bert":
		names = ggufNomicNames
	default:
		return nil, fmt.Errorf("architecture %q is not supported (want bert or nomic-bert)", arch)
	}
	var missing []string
	u := func(key string) int {
		v, ok := f.Uint(arch + "." + key)
		if !ok {
			missing = append(missing, arch+"."+key)
		}
		return int(min(v, 1<<30))
	}
	cfg := Config{Architecture: arch, Hidden: u("embedding_length"), Layers: u("block_count"),
		Heads: u("attention.head_count"), Intermediate: u("feed_forward_length"), MaxPositions: u("context_length"),
		Activation: "gelu", LayerNormEps: 1e-12}
	if eps, ok := f.Float(arch + ".attention.layer_norm_epsilon"); ok {
		cfg.LayerNormEps = eps
	}
	if arch == "nomic-bert" {
		// llama.cpp rotates whole heads (rope.dimension_count defaults to
		// the head size) with NeoX pairs, base 10000 unless given.
		cfg.Activation, cfg.RopeBase = "swiglu", 10000
		if b, ok := f.Float(arch + ".rope.freq_base"); ok {
			cfg.RopeBase = b
		}
		if cfg.Heads > 0 {
			cfg.RotaryDim = cfg.Hidden / cfg.Heads
		}
		if d, ok := f.Uint(arch + ".rope.dimension_count"); ok {
			cfg.RotaryDim = int(min(d, 1<<20))
		}
	}
	arr, ok := f.Array("tokenizer.ggml.tokens")
	tokens, _ := arr.Values.([]string)
	if !ok || len(tokens) == 0 {
		missing = append(missing, "tokenizer.ggml.tokens")
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("no %s", strings.Join(missing, ", "))
	}
	cfg.VocabSize = len(tokens)
	var tok Tokenizer
	switch m, _ := f.String("tokenizer.ggml.model"); m {
	case "bert":
		wp, err := wordPieceFromGGUF(tokens)
		if err != nil {
			return nil, err
		}
		tok = wp
	case "t5":
		u, err := unigramFromGGUF(f, tokens)
		if err != nil {
			return nil, err
		}
		tok = u
	default:
		return nil, fmt.Errorf("tokenizer model %q is not supported (want bert, WordPiece, or t5, Unigram)", m)
	}
	st := stConfig{pooling: PoolMean}
	if p, ok := f.Uint(arch + ".pooling_type"); ok {
		if st.pooling, ok = ggufPooling[p]; !ok {
			return nil, fmt.Errorf("%s.pooling_type %d is not supported (want 1 mean, 2 CLS, 3 last or 4 rank)", arch, p)
		}
	}
	if err := cfg.check(); err != nil {
		return nil, err
	}
	ts := map[string]Tensor{}
	put := func(gname, hname string) {
		for _, suffix := range []string{".weight", ".bias"} {
			t, ok := f.Tensor(gname + suffix)
			if !ok {
				continue
			}
			shape := make([]int, len(t.Dims))
			for i, d := range t.Dims {
				shape[len(t.Dims)-1-i] = int(d) // ggml lists the row length first
			}
			ts[hname+suffix] = Tensor{DType: t.Type.String(), Shape: shape, Data: f.Data(t)}
		}
	}
	for g, h := range names {
		if !strings.Contains(g, "%d") {
			put(g, h)
			continue
		}
		for i := range cfg.Layers {
			put(fmt.Sprintf(g, i), fmt.Sprintf(h, i))
		}
	}
	if t, ok := ts["embeddings.token_type_embeddings.weight"]; ok && len(t.Shape) == 2 {
		cfg.TypeVocabSize = t.Shape[0]
	}
	// llama.cpp pads a vocabulary to the model's vocab_size with [PADn]
	// tokens; a table with more rows than tokens still holds every token.
	if t, ok := ts["embeddings.word_embeddings.weight"]; ok && len(t.Shape) == 2 && arch == "nomic-bert" {
		cfg.VocabSize = max(cfg.VocabSize, t.Shape[0])
	}
	name := strings.TrimSuffix(filepath.Base(path), ".gguf")
	if n, ok := f.String("general.name"); ok && n != "" {
		name = n
	}
	return build(path, name, cfg, st, tok, ts, o)
}

// wordPieceFromGGUF reads llama.cpp's "bert" vocabulary.
func wordPieceFromGGUF(tokens []string) (*WordPiece, error) {
	vocab := make(map[string]int32, len(tokens))
	for i, t := range tokens {
		switch {
		case strings.HasPrefix(t, "▁"):
			t = strings.TrimPrefix(t, "▁")
		case strings.HasPrefix(t, "[") && strings.HasSuffix(t, "]"):
		default:
			t = "##" + t
		}
		if _, dup := vocab[t]; !dup {
			vocab[t] = int32(i)
		}
	}
	// llama.cpp's WordPiece always lower-cases and strips accents: the
	// uncased models this format carries.
	return newWordPiece(vocab, "[UNK]", "##", 100, true, true, true, true)
}
