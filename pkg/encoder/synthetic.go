package encoder

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"

	"github.com/tributary-rag/tributary/pkg/gguf"
)

// Synthetic describes a model with random weights, for tests and
// benchmarks: no weights ship with the project. Config.Architecture
// "nomic-bert" writes Nomic's layout (config.json with model_type
// nomic_bert, fused Wqkv, SwiGLU, no biases in the layers; Intermediate
// rounded up to a multiple of 256, RotaryDim default the head size,
// RopeBase default 1000); anything else writes BERT.
type Synthetic struct {
	Config
	// Vocab is the WordPiece vocabulary; [PAD], [UNK], [CLS] and [SEP] are
	// put first. Config.VocabSize is set from it.
	Vocab []string
	// Seed fixes the weights.
	Seed uint64
	// Pooling is written to 1_Pooling/config.json (default mean).
	Pooling Pooling
	// Normalize adds a Normalize module to modules.json.
	Normalize bool
	// Prompts go to config_sentence_transformers.json.
	Prompts map[string]string
	// DType is the stored type of the weight matrices: F32 (default), F16
	// or BF16.
	DType string
	// Classifier adds a one-label sequence-classification head
	// (BertForSequenceClassification's pooler and classifier): a
	// cross-encoder for LoadReranker.
	Classifier bool
}

// Write writes s as a sentence-transformers directory dir.
func (s Synthetic) Write(dir string) error {
	vocab := append([]string{"[PAD]", "[UNK]", "[CLS]", "[SEP]"}, s.Vocab...)
	c := s.Config
	nomic := c.Architecture == "nomic-bert"
	c.Architecture = "bert"
	c.VocabSize = len(vocab)
	if c.Activation == "" {
		c.Activation = "gelu"
	}
	if c.LayerNormEps == 0 {
		c.LayerNormEps = 1e-12
	}
	if c.TypeVocabSize == 0 {
		c.TypeVocabSize = 2
	}
	r := rand.New(rand.NewPCG(s.Seed, 1))
	rnd := func(n int, scale, center float32) []float32 {
		v := make([]float32, n)
		for i := range v {
			v[i] = center + scale*(2*r.Float32()-1)
		}
		return v
	}
	ts := map[string]Tensor{}
	put := func(name string, v []float32, shape ...int) {
		t := F32Tensor(v, shape...)
		if len(shape) == 2 && s.DType != "" && s.DType != "F32" {
			t = halfTensor(v, s.DType, shape)
		}
		ts[name] = t
	}
	h, in := c.Hidden, c.Intermediate
	var config any = c
	if nomic {
		in = (in + 255) / 256 * 256
		rd := c.RotaryDim
		if rd == 0 {
			rd = h / c.Heads
		}
		base := c.RopeBase
		if base == 0 {
			base = 1000
		}
		config = map[string]any{"model_type": "nomic_bert", "architectures": []string{"NomicBertModel"},
			"vocab_size": c.VocabSize, "n_positions": c.MaxPositions, "n_embd": h, "n_layer": c.Layers, "n_head": c.Heads,
			"n_inner": in, "activation_function": "swiglu", "layer_norm_epsilon": c.LayerNormEps, "type_vocab_size": c.TypeVocabSize,
			"rotary_emb_fraction": float64(rd) / float64(h/c.Heads), "rotary_emb_base": base, "rotary_emb_interleaved": false,
			"rotary_emb_scale_base": nil, "rotary_scaling_factor": nil, "prenorm": false, "causal": false,
			"qkv_proj_bias": false, "mlp_fc1_bias": false, "mlp_fc2_bias": false}
		put("embeddings.word_embeddings.weight", rnd(c.VocabSize*h, 1, 0), c.VocabSize, h)
		put("embeddings.token_type_embeddings.weight", rnd(c.TypeVocabSize*h, 0.5, 0), c.TypeVocabSize, h)
		ln := func(p string) {
			put(p+".weight", rnd(h, 0.2, 1), h)
			put(p+".bias", rnd(h, 0.1, 0), h)
		}
		ln("emb_ln")
		for i := range c.Layers {
			p := fmt.Sprintf("encoder.layers.%d.", i)
			put(p+"attn.Wqkv.weight", rnd(3*h*h, 0.3, 0), 3*h, h)
			put(p+"attn.out_proj.weight", rnd(h*h, 0.3, 0), h, h)
			ln(p + "norm1")
			put(p+"mlp.fc11.weight", rnd(in*h, 0.2, 0), in, h)
			put(p+"mlp.fc12.weight", rnd(in*h, 0.2, 0), in, h)
			put(p+"mlp.fc2.weight", rnd(h*in, 0.1, 0), h, in)
			ln(p + "norm2")
		}
		return s.writeFiles(dir, vocab, config, ts)
	}
	put("embeddings.word_embeddings.weight", rnd(c.VocabSize*h, 1, 0), c.VocabSize, h)
	put("embeddings.position_embeddings.weight", rnd(c.MaxPositions*h, 0.5, 0), c.MaxPositions, h)
	put("embeddings.token_type_embeddings.weight", rnd(c.TypeVocabSize*h, 0.5, 0), c.TypeVocabSize, h)
	ln := func(p string) {
		put(p+".weight", rnd(h, 0.2, 1), h)
		put(p+".bias", rnd(h, 0.1, 0), h)
	}
	lin := func(p string, out, in int, scale float32) {
		put(p+".weight", rnd(out*in, scale, 0), out, in)
		put(p+".bias", rnd(out, 0.1, 0), out)
	}
	ln("embeddings.LayerNorm")
	for i := range c.Layers {
		p := fmt.Sprintf("encoder.layer.%d.", i)
		for _, m := range []string{"attention.self.query", "attention.self.key", "attention.self.value", "attention.output.dense"} {
			lin(p+m, h, h, 0.3)
		}
		ln(p + "attention.output.LayerNorm")
		lin(p+"intermediate.dense", in, h, 0.2)
		lin(p+"output.dense", h, in, 0.1)
		ln(p + "output.LayerNorm")
	}
	if s.Classifier {
		lin("pooler.dense", h, h, 0.3)
		lin("classifier", 1, h, 0.5)
	}
	return s.writeFiles(dir, vocab, config, ts)
}

// writeFiles writes the weights ts, config.json and the tokenizer and
// sentence-transformers files.
func (s Synthetic) writeFiles(dir string, vocab []string, config any, ts map[string]Tensor) error {
	h := s.Hidden
	if err := os.MkdirAll(filepath.Join(dir, "1_Pooling"), 0o755); err != nil {
		return err
	}
	if err := WriteSafetensors(filepath.Join(dir, "model.safetensors"), ts); err != nil {
		return err
	}
	vm := make(map[string]int, len(vocab))
	for i, v := range vocab {
		vm[v] = i
	}
	modules := []map[string]any{{"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
		{"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"}}
	if s.Normalize {
		modules = append(modules, map[string]any{"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"})
	}
	pool := s.Pooling
	if pool == "" {
		pool = PoolMean
	}
	mode := map[Pooling]string{PoolMean: "mean_tokens", PoolCLS: "cls_token", PoolLast: "lasttoken"}[pool]
	files := map[string]any{
		"config.json": config,
		"tokenizer.json": map[string]any{
			"normalizer": map[string]any{"type": "BertNormalizer", "clean_text": true, "handle_chinese_chars": true, "strip_accents": nil, "lowercase": true},
			"model":      map[string]any{"type": "WordPiece", "unk_token": "[UNK]", "continuing_subword_prefix": "##", "max_input_chars_per_word": 100, "vocab": vm},
		},
		"modules.json":                      modules,
		"1_Pooling/config.json":             map[string]any{"word_embedding_dimension": h, "pooling_mode_" + mode: true},
		"config_sentence_transformers.json": map[string]any{"prompts": s.Prompts},
	}
	for name, v := range files {
		b, err := json.Marshal(v)
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			return err
		}
	}
	return nil
}

func halfTensor(v []float32, dtype string, shape []int) Tensor {
	b := make([]byte, 2*len(v))
	for i, x := range v {
		var u uint16
		if dtype == "BF16" {
			u = uint16(math.Float32bits(x) >> 16)
		} else {
			u = gguf.FloatToHalf(x)
		}
		binary.LittleEndian.PutUint16(b[2*i:], u)
	}
	return Tensor{DType: dtype, Shape: shape, Data: b}
}
