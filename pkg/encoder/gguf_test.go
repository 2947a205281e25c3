package encoder

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tributary-rag/tributary/pkg/gguf"
)

// toGGUF writes the safetensors model in dir as llama.cpp's converter
// would: bert.* hyperparameters, phantom-space vocabulary, GGUF tensor
// names; q8 stores the layer matrices as Q8_0.
func toGGUF(t *testing.T, dir string, pooling uint32, q8 bool) string {
	t.Helper()
	e, err := Load(dir, Options{Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	ts, err := ReadSafetensors(filepath.Join(dir, "model.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	c := e.cfg
	tokens := ggufVocab(e, c.VocabSize)
	kvs := []gguf.KV{
		{Key: "general.architecture", Value: "bert"},
		{Key: "general.name", Value: "tiny-bert"},
		{Key: "bert.context_length", Value: uint32(c.MaxPositions)},
		{Key: "bert.embedding_length", Value: uint32(c.Hidden)},
		{Key: "bert.feed_forward_length", Value: uint32(c.Intermediate)},
		{Key: "bert.block_count", Value: uint32(c.Layers)},
		{Key: "bert.attention.head_count", Value: uint32(c.Heads)},
		{Key: "bert.attention.layer_norm_epsilon", Value: float32(c.LayerNormEps)},
		{Key: "bert.attention.causal", Value: false},
		{Key: "bert.pooling_type", Value: pooling},
		{Key: "tokenizer.ggml.model", Value: "bert"},
		{Key: "tokenizer.ggml.tokens", Value: gguf.Array{Elem: gguf.TypeString, Values: tokens}},
	}
	return writeTestGGUF(t, "tiny.gguf", kvs, ggufNames, ts, c.Layers, q8)
}

func TestGGUFMatchesSafetensors(t *testing.T) {
	ctx := context.Background()
	for _, c := range []struct {
		pooling Pooling
		code    uint32
	}{{PoolMean, 1}, {PoolCLS, 2}} {
		dir := tinyModel(t, Synthetic{Seed: 12, Pooling: c.pooling, Normalize: true})
		st, err := Load(dir, Options{Normalize: true})
		if err != nil {
			t.Fatal(err)
		}
		want, _, err := st.Embed(ctx, texts)
		if err != nil {
			t.Fatal(err)
		}
		for _, q8 := range []bool{false, true} {
			g, err := Load(toGGUF(t, dir, c.code, q8), Options{Normalize: true})
			if err != nil {
				t.Fatal(err)
			}
			if g.Pooling() != c.pooling || g.Name() != "tiny-bert" || g.Dim() != 32 {
				t.Errorf("GGUF model: pooling %s name %q dim %d", g.Pooling(), g.Name(), g.Dim())
			}
			got, _, err := g.Embed(ctx, texts)
			if err != nil {
				t.Fatal(err)
			}
			for i := range want {
				var dot float64
				for j := range want[i] {
					dot += float64(want[i][j]) * float64(got[i][j])
				}
				if d := maxDiff(got[i], toF64(want[i])); (!q8 && d > 1e-6) || dot < 0.999 {
					t.Errorf("pooling %s q8 %v text %d: max |diff| %.3g, cosine %.5f to the safetensors model", c.pooling, q8, i, d, dot)
				}
			}
			g.Close()
		}
	}
}

func TestGGUFErrors(t *testing.T) {
	dir := tinyModel(t, Synthetic{Seed: 13})
	good, err := os.ReadFile(toGGUF(t, dir, 1, false))
	if err != nil {
		t.Fatal(err)
	}
	write := func(b []byte) string {
		p := filepath.Join(t.TempDir(), "m.gguf")
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	replace := func(old, new string) []byte {
		if !strings.Contains(string(good), old) {
			t.Fatalf("%q not in the file", old)
		}
		return []byte(strings.Replace(string(good), old, new, 1))
	}
	for name, c := range map[string]struct {
		b    []byte
		want string
	}{
		"truncated":    {good[:len(good)-64], ""},
		"architecture": {replace("bert.context_length", "bart.context_length"), "bert.context_length"},
		"tensor":       {replace("blk.1.ffn_down.weight", "blk.1.ffn_dowX.weight"), "encoder.layer.1.output.dense.weight"},
		"pooling":      {replace("bert.pooling_type", "bert.pooling_typX"), ""},
		"garbage":      {[]byte("GGUF nonsense"), ""},
	} {
		e, err := Load(write(c.b), Options{})
		if name == "pooling" {
			// Without pooling_type: mean, as llama.cpp defaults for BERT.
			if err != nil || e.Pooling() != PoolMean {
				t.Errorf("%s: %v, pooling %v", name, err, e.Pooling())
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want an error containing %q", name, err, c.want)
		}
	}
}

// ggufVocab is e's WordPiece vocabulary (n entries) in llama.cpp's
// spelling: "▁" before a word start, no "##" before a continuation.
func ggufVocab(e *Encoder, n int) []string {
	tokens := make([]string, n)
	for tok, id := range e.tok.(*WordPiece).vocab {
		switch {
		case strings.HasPrefix(tok, "[") && strings.HasSuffix(tok, "]"):
		case strings.HasPrefix(tok, "##"):
			tok = tok[2:]
		default:
			tok = "▁" + tok
		}
		tokens[id] = tok
	}
	return tokens
}

// writeTestGGUF writes kvs and the tensors of ts under their GGUF names
// (names maps a GGUF name to the Hugging Face one, "%d" standing for each
// of layers) to file in a temporary directory: F32, or Q8_0 for the
// layers' matrices when q8.
func writeTestGGUF(t *testing.T, file string, kvs []gguf.KV, names map[string]string, ts map[string]Tensor, layers int, q8 bool) string {
	t.Helper()
	var out []gguf.WriteTensor
	for g, h := range names {
		for i := range layers {
			gn, hn := g, h
			if strings.Contains(g, "%d") {
				gn, hn = fmt.Sprintf(g, i), fmt.Sprintf(h, i)
			} else if i > 0 {
				break
			}
			for _, suffix := range []string{".weight", ".bias"} {
				st, ok := ts[hn+suffix]
				if !ok {
					continue
				}
				dims := make([]uint64, len(st.Shape))
				for k, d := range st.Shape {
					dims[len(st.Shape)-1-k] = uint64(d)
				}
				wt := gguf.WriteTensor{Name: gn + suffix, Dims: dims, Type: gguf.F32, Data: st.Data}
				if q8 && len(dims) == 2 && strings.HasPrefix(gn, "blk.") {
					v, _ := st.F32()
					wt.Type, wt.Data = gguf.Q8_0, gguf.QuantizeQ8_0(v)
				}
				out = append(out, wt)
			}
		}
	}
	path := filepath.Join(t.TempDir(), file)
	fh, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	if err := gguf.Write(fh, kvs, out); err != nil {
		t.Fatal(err)
	}
	return path
}
