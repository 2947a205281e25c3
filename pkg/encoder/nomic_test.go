package encoder

import (
	"context"
	"encoding/json"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/tributary-rag/tributary/pkg/gguf"
	"github.com/tributary-rag/tributary/pkg/llm"
)

// nomicGolden is testdata/nomic-golden.json, written with the models
// beside it by tools/encgolden/nomic_golden.py (NumPy, float64).
type nomicGolden struct {
	MaxLen  int               `json:"max_len"`
	Prompts map[string]string `json:"prompts"`
	Texts   []nomicText       `json:"texts"`
	Bias    struct {
		MaxLen int         `json:"max_len"`
		Texts  []nomicText `json:"texts"`
	} `json:"bias"`
}

type nomicText struct {
	Prompt string    `json:"prompt"`
	Text   string    `json:"text"`
	IDs    []int32   `json:"ids"`
	Mean   []float64 `json:"mean"`
	First  []float64 `json:"first"`
}

func loadNomicGolden(t *testing.T) nomicGolden {
	t.Helper()
	b, err := os.ReadFile("testdata/nomic-golden.json")
	if err != nil {
		t.Fatal(err)
	}
	var g nomicGolden
	if err := json.Unmarshal(b, &g); err != nil {
		t.Fatal(err)
	}
	if len(g.Texts) < 5 || len(g.Bias.Texts) < 5 {
		t.Fatalf("golden file is short: %+v", g)
	}
	return g
}

// normalized is v divided by its L2 norm.
func normalized(v []float64) []float64 {
	var s float64
	for _, a := range v {
		s += a * a
	}
	out := make([]float64, len(v))
	for i, a := range v {
		out[i] = a / math.Sqrt(s)
	}
	return out
}

func cosine(a, b []float32) float64 {
	var ab, aa, bb float64
	for i := range a {
		ab += float64(a[i]) * float64(b[i])
		aa += float64(a[i]) * float64(a[i])
		bb += float64(b[i]) * float64(b[i])
	}
	return ab / math.Sqrt(aa*bb)
}

func TestNomicMatchesReference(t *testing.T) {
	g := loadNomicGolden(t)
	for _, c := range []struct {
		name, path string
		o          Options
	}{
		{"safetensors", "testdata/nomic-tiny", Options{}},
		// A GGUF file has no Normalize module and no max_seq_length: the
		// caller's options stand in.
		{"gguf", "testdata/nomic-tiny.gguf", Options{Normalize: true, MaxLength: g.MaxLen}},
	} {
		t.Run(c.name, func(t *testing.T) {
			for _, threads := range []int{0, 1, 2} {
				o := c.o
				o.Threads = threads
				if threads == 0 {
					// A caller's backend: its own products and Attention.
					o.Backend = llm.NewCPU(2)
				}
				e, err := Load(c.path, o)
				if err != nil {
					t.Fatal(err)
				}
				defer e.Close()
				if e.Pooling() != PoolMean || !e.Normalized() || e.MaxLength() != g.MaxLen || e.Dim() != 16 {
					t.Fatalf("pooling %s, normalized %v, max length %d, dim %d; want mean, true, %d, 16",
						e.Pooling(), e.Normalized(), e.MaxLength(), e.Dim(), g.MaxLen)
				}
				// The GGUF file has no prompts: nomic's are the default.
				for name, p := range g.Prompts {
					if e.Prompt(name) != p {
						t.Errorf("Prompt(%q) = %q, want %q", name, e.Prompt(name), p)
					}
				}
				texts := make([]string, len(g.Texts))
				for i, tc := range g.Texts {
					texts[i] = tc.Text
					if tc.Prompt != "" {
						texts[i] = e.Prompt(tc.Prompt) + tc.Text
					}
					if ids, _ := e.Tokenizer().Encode(texts[i], e.MaxLength()); !slices.Equal(ids, tc.IDs) {
						t.Errorf("ids of %q = %v, want %v", texts[i], ids, tc.IDs)
					}
				}
				got, st, err := e.Embed(context.Background(), texts)
				if err != nil {
					t.Fatal(err)
				}
				if st.Truncated != 1 {
					t.Errorf("truncated %d texts, want 1", st.Truncated)
				}
				for i, tc := range g.Texts {
					if d := maxDiff(got[i], normalized(tc.Mean)); d > 1e-4 {
						t.Errorf("threads %d: Embed(%q): max |diff| %.3g to the reference", threads, texts[i], d)
					}
				}
				// Rotary positions restart in every packed text: alone, a
				// text embeds the same.
				alone, _, err := e.Embed(context.Background(), texts[1:2])
				if err != nil {
					t.Fatal(err)
				}
				if d := maxDiff(alone[0], toF64(got[1])); d > 1e-6 {
					t.Errorf("threads %d: a text alone differs from the same text packed by %.3g", threads, d)
				}
			}
		})
	}
}

// TestNomicBiases runs the variant with biases in every linear, half of
// each head rotated and NomicBertConfig's defaults, CLS pooled.
func TestNomicBiases(t *testing.T) {
	g := loadNomicGolden(t)
	for _, threads := range []int{1, 2} {
		e, err := Load("testdata/nomic-bias", Options{Threads: threads})
		if err != nil {
			t.Fatal(err)
		}
		defer e.Close()
		if e.cfg.RotaryDim != 4 || e.cfg.RopeBase != 10000 || e.cfg.LayerNormEps != 1e-5 || e.cfg.Intermediate != 256 || e.cfg.VocabSize != 37 {
			t.Errorf("config %+v: want rotary dimensions 4, base 10000, epsilon 1e-5, 256 inner, 37 tokens", e.cfg)
		}
		if e.Pooling() != PoolCLS || e.Normalized() || e.MaxLength() != g.Bias.MaxLen {
			t.Fatalf("pooling %s, normalized %v, max length %d", e.Pooling(), e.Normalized(), e.MaxLength())
		}
		for _, tc := range g.Bias.Texts {
			got, _, err := e.Embed(context.Background(), []string{tc.Text})
			if err != nil {
				t.Fatal(err)
			}
			if d := maxDiff(got[0], tc.First); d > 1e-4 {
				t.Errorf("threads %d: Embed(%q): max |diff| %.3g to the reference", threads, tc.Text, d)
			}
		}
	}
}

// copyDir copies the test model src into a temporary directory.
func copyDir(t testing.TB, src string) string {
	t.Helper()
	dir := t.TempDir()
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(dir, rel), 0o755)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dir, rel), b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestNomicHalfWeights stores the golden model's matrices as F16 and BF16:
// within their rounding of the F32 reference.
func TestNomicHalfWeights(t *testing.T) {
	g := loadNomicGolden(t)
	for _, dtype := range []string{"F16", "BF16"} {
		dir := copyDir(t, "testdata/nomic-tiny")
		p := filepath.Join(dir, "model.safetensors")
		ts, err := ReadSafetensors(p)
		if err != nil {
			t.Fatal(err)
		}
		for name, x := range ts {
			if len(x.Shape) == 2 && strings.HasPrefix(name, "encoder.") {
				v, _ := x.F32()
				ts[name] = halfTensor(v, dtype, x.Shape)
			}
		}
		if err := WriteSafetensors(p, ts); err != nil {
			t.Fatal(err)
		}
		e, err := Load(dir, Options{Threads: 2})
		if err != nil {
			t.Fatal(err)
		}
		for _, tc := range g.Texts {
			text := e.Prompt(tc.Prompt) + tc.Text
			got, _, err := e.Embed(context.Background(), []string{text})
			if err != nil {
				t.Fatal(err)
			}
			want := normalized(tc.Mean)
			w32 := make([]float32, len(want))
			for i, a := range want {
				w32[i] = float32(a)
			}
			if c := cosine(got[0], w32); c < 0.999 {
				t.Errorf("%s: Embed(%q): cosine %.5f to the F32 reference", dtype, text, c)
			}
		}
		e.Close()
	}
}

// nomicGGUF writes the nomic-bert directory dir as llama.cpp's converter
// would (see tools/encgolden/nomic_golden.py); q8 stores the layer
// matrices as Q8_0.
func nomicGGUF(t *testing.T, dir string, q8 bool) string {
	t.Helper()
	e, err := Load(dir, Options{Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	ts, err := ReadSafetensors(filepath.Join(dir, "model.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	c := e.cfg
	tokens := ggufVocab(e, e.tok.VocabSize())
	a := "nomic-bert"
	kvs := []gguf.KV{
		{Key: "general.architecture", Value: a},
		{Key: a + ".context_length", Value: uint32(2048)},
		{Key: a + ".embedding_length", Value: uint32(c.Hidden)},
		{Key: a + ".feed_forward_length", Value: uint32(c.Intermediate)},
		{Key: a + ".block_count", Value: uint32(c.Layers)},
		{Key: a + ".attention.head_count", Value: uint32(c.Heads)},
		{Key: a + ".attention.layer_norm_epsilon", Value: float32(c.LayerNormEps)},
		{Key: a + ".rope.freq_base", Value: float32(c.RopeBase)},
		{Key: a + ".pooling_type", Value: uint32(1)},
		{Key: "tokenizer.ggml.model", Value: "bert"},
		{Key: "tokenizer.ggml.tokens", Value: gguf.Array{Elem: gguf.TypeString, Values: tokens}},
	}
	return writeTestGGUF(t, "nomic.gguf", kvs, ggufNomicNames, ts, c.Layers, q8)
}

// TestNomicQuantized compares Q8_0 (quantized at load, and stored so in a
// GGUF file) with F32 on a synthetic nomic-bert wide enough for Q8_0
// blocks.
func TestNomicQuantized(t *testing.T) {
	dir := tinyModel(t, Synthetic{Seed: 23, Normalize: true, Config: Config{Architecture: "nomic-bert",
		Hidden: 64, Layers: 2, Heads: 4, Intermediate: 256, MaxPositions: 128}})
	ctx := context.Background()
	f32, err := Load(dir, Options{Threads: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer f32.Close()
	want, _, err := f32.Embed(ctx, texts)
	if err != nil {
		t.Fatal(err)
	}
	ggufF32, ggufQ8 := nomicGGUF(t, dir, false), nomicGGUF(t, dir, true)
	for _, c := range []struct {
		name, path string
		o          Options
		exact      bool
	}{
		{"quantize", dir, Options{Quantize: true}, false},
		{"gguf-f32", ggufF32, Options{Normalize: true}, true},
		{"gguf-q8_0", ggufQ8, Options{Normalize: true}, false},
	} {
		e, err := Load(c.path, c.o)
		if err != nil {
			t.Fatal(err)
		}
		got, _, err := e.Embed(ctx, texts)
		if err != nil {
			t.Fatal(err)
		}
		for i := range want {
			d, cs := maxDiff(got[i], toF64(want[i])), cosine(got[i], want[i])
			if c.exact && d > 1e-6 || !c.exact && (cs < 0.999 || d == 0) {
				t.Errorf("%s text %d: max |diff| %.3g, cosine %.5f to F32", c.name, i, d, cs)
			}
		}
		e.Close()
	}
}

func TestNomicLoadErrors(t *testing.T) {
	rewrite := func(t *testing.T, dir, name, old, new string) {
		p := filepath.Join(dir, name)
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(b), old) {
			t.Fatalf("%q not in %s", old, name)
		}
		if err := os.WriteFile(p, []byte(strings.Replace(string(b), old, new, 1)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	editTensors := func(t *testing.T, dir string, f func(ts map[string]Tensor)) {
		p := filepath.Join(dir, "model.safetensors")
		ts, err := ReadSafetensors(p)
		if err != nil {
			t.Fatal(err)
		}
		f(ts)
		if err := WriteSafetensors(p, ts); err != nil {
			t.Fatal(err)
		}
	}
	config := func(old, new string) func(t *testing.T, dir string) {
		return func(t *testing.T, dir string) { rewrite(t, dir, "config.json", old, new) }
	}
	tests := []struct {
		name, want string
		edit       func(t *testing.T, dir string)
	}{
		{"wqkv shape", "encoder.layers.1.attn.Wqkv.weight has shape [32 16]", func(t *testing.T, dir string) {
			editTensors(t, dir, func(ts map[string]Tensor) {
				w := ts["encoder.layers.1.attn.Wqkv.weight"]
				ts["encoder.layers.1.attn.Wqkv.weight"] = rowSlice(w, 0, 32)
			})
		}},
		{"wqkv missing", "no tensor encoder.layers.0.attn.Wqkv.weight", func(t *testing.T, dir string) {
			editTensors(t, dir, func(ts map[string]Tensor) { delete(ts, "encoder.layers.0.attn.Wqkv.weight") })
		}},
		{"gate missing", "no tensor encoder.layers.1.mlp.fc12.weight", func(t *testing.T, dir string) {
			editTensors(t, dir, func(ts map[string]Tensor) { delete(ts, "encoder.layers.1.mlp.fc12.weight") })
		}},
		{"bias shape", "encoder.layers.0.attn.Wqkv.bias has shape [16]", func(t *testing.T, dir string) {
			editTensors(t, dir, func(ts map[string]Tensor) {
				ts["encoder.layers.0.attn.Wqkv.bias"] = F32Tensor(make([]float32, 16), 16)
			})
		}},
		{"activation", `activation_function "gelu"`, config(`"activation_function": "swiglu"`, `"activation_function": "gelu"`)},
		{"interleaved", "rotary_emb_interleaved", config(`"rotary_emb_interleaved": false`, `"rotary_emb_interleaved": true`)},
		{"prenorm", "prenorm", config(`"prenorm": false`, `"prenorm": true`)},
		{"scale base", "rotary_emb_scale_base", config(`"rotary_emb_scale_base": null`, `"rotary_emb_scale_base": 512`)},
		{"no rotary", "absolute positions", config(`"rotary_emb_fraction": 1.0`, `"rotary_emb_fraction": 0`)},
		{"odd rotary", "not an even number", config(`"rotary_emb_fraction": 1.0`, `"rotary_emb_fraction": 0.375`)},
		{"heads", "not a multiple of n_head", config(`"n_head": 2`, `"n_head": 3`)},
		{"missing width", "n_embd missing", config(`"n_embd": 16`, `"n_embdx": 16`)},
		{"vocab", "do not match", config(`"vocab_size": 37`, `"vocab_size": 30`)},
		{"vocab padding", "embeddings.word_embeddings.weight has shape [48 16]", config(`"pad_vocab_size_multiple": 16`, `"pad_vocab_size_multiple": 1`)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := copyDir(t, "testdata/nomic-tiny")
			tt.edit(t, dir)
			_, err := Load(dir, Options{})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Load: %v, want an error containing %q", err, tt.want)
			}
		})
	}
}

func TestNomicGGUFErrors(t *testing.T) {
	good, err := os.ReadFile("testdata/nomic-tiny.gguf")
	if err != nil {
		t.Fatal(err)
	}
	replace := func(old, new string) []byte {
		if !strings.Contains(string(good), old) {
			t.Fatalf("%q not in the file", old)
		}
		return []byte(strings.Replace(string(good), old, new, 1))
	}
	tests := []struct {
		name string
		b    []byte
		want string
	}{
		{"qkv missing", replace("blk.1.attn_qkv.weight", "blk.1.attn_qkX.weight"), "no tensor encoder.layers.1.attn.Wqkv.weight"},
		{"gate missing", replace("blk.0.ffn_gate.weight", "blk.0.ffn_gatX.weight"), "no tensor encoder.layers.0.mlp.fc12.weight"},
		{"hyperparameter", replace("nomic-bert.block_count", "nomic-bert.block_counX"), "no nomic-bert.block_count"},
		{"architecture", replace("nomic-bert", "nomic-bext"), `"nomic-bext" is not supported`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "m.gguf")
			if err := os.WriteFile(p, tt.b, 0o644); err != nil {
				t.Fatal(err)
			}
			_, err := Load(p, Options{})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Load: %v, want an error containing %q", err, tt.want)
			}
		})
	}
}
