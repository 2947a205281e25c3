package llm

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"testing"
)

// Golden logits come from tools/goldens/gen.py, an independent NumPy
// forward pass (float64) over the same weights, dequantized from the same
// ggml blocks. Float weights must match within 1e-4. Quantized weights are
// multiplied against activations quantized to 8 bits per 32-element block,
// as ggml does, so those fixtures carry that rounding: their tolerances
// are two to three times the largest difference measured when the fixtures
// were generated, relative to the largest |logit| of the fixture.
var goldens = []struct {
	name string
	tol  float64 // max |got-want| / max |want|
	abs  bool    // tol is absolute
}{
	{"llama_gqa_f32", 1e-4, true},
	{"llama_linear_rope_f32", 1e-4, true},
	{"llama_rope_freqs_partial_f32", 1e-4, true},
	{"qwen2_bias_f32", 1e-4, true},
	{"llama_gqa_f16", 1e-4, true},
	{"llama_gqa_q8_0", 0.02, false},
	{"llama_q4_k", 0.02, false},
}

type golden struct {
	Model  string      `json:"model"`
	Tokens []int32     `json:"tokens"`
	Logits [][]float64 `json:"logits"`
}

func loadGolden(t *testing.T, name string) (*Model, golden) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name+".golden.json"))
	if err != nil {
		t.Fatal(err)
	}
	var g golden
	if err := json.Unmarshal(b, &g); err != nil {
		t.Fatalf("golden %s: %v", name, err)
	}
	m, err := Load(filepath.Join("testdata", g.Model), WithThreads(2))
	if err != nil {
		t.Fatalf("Load(%s): %v", g.Model, err)
	}
	t.Cleanup(func() { _ = m.Close() })
	return m, g
}

// maxErr returns the largest |got-want| and the largest |want|.
func maxErr(got []float32, want []float64) (float64, float64) {
	var e, s float64
	for i, w := range want {
		e = math.Max(e, math.Abs(float64(got[i])-w))
		s = math.Max(s, math.Abs(w))
	}
	return e, s
}

func TestGoldenLogits(t *testing.T) {
	for _, tt := range goldens {
		t.Run(tt.name, func(t *testing.T) {
			m, g := loadGolden(t, tt.name)
			vocab := m.Config().Vocab
			check := func(mode string, pos int, got []float32) {
				e, s := maxErr(got, g.Logits[pos])
				limit := tt.tol
				if !tt.abs {
					limit *= s
				}
				if e > limit {
					t.Errorf("%s: position %d: max |logit error| %.3g > %.3g (max |logit| %.3g)", mode, pos, e, limit, s)
				}
			}
			// One batched prefill with logits at every position.
			cache := newKVCache(m.Config().Layers)
			entries := make([]batchEntry, len(g.Tokens))
			for i, tok := range g.Tokens {
				entries[i] = batchEntry{cache: cache, token: tok, pos: i, wantLogits: true}
			}
			logits, err := m.forward(entries)
			if err != nil {
				t.Fatal(err)
			}
			for i := range g.Tokens {
				check("prefill", i, logits[i*vocab:(i+1)*vocab])
			}
			// Token by token through the KV cache.
			cache = newKVCache(m.Config().Layers)
			for i, tok := range g.Tokens {
				logits, err := m.forward([]batchEntry{{cache: cache, token: tok, pos: i, wantLogits: true}})
				if err != nil {
					t.Fatal(err)
				}
				check("decode", i, logits)
			}
		})
	}
}

// dequantBackend is a reference Backend: it decodes each weight row to
// float32 and multiplies with unquantized activations. With it, quantized
// fixtures must match the golden logits as closely as float ones, which
// checks the block decoders apart from activation rounding.
type dequantBackend struct{ cpu *CPU }

func (d dequantBackend) MatMul(out []float32, w *Weight, x []float32, n int) {
	row := make([]float32, w.Cols)
	for r := 0; r < w.Rows; r++ {
		w.DequantizeRow(r, row)
		for i := 0; i < n; i++ {
			out[i*w.Rows+r] = dotF32Go(row, x[i*w.Cols:(i+1)*w.Cols])
		}
	}
}

func (d dequantBackend) Attention(out []float32, qs []AttentionQuery, nHead, nKVHead, headDim int) {
	d.cpu.Attention(out, qs, nHead, nKVHead, headDim)
}

func TestGoldenLogitsDequantized(t *testing.T) {
	for _, tt := range goldens {
		t.Run(tt.name, func(t *testing.T) {
			m, g := loadGolden(t, tt.name)
			m.backend = dequantBackend{cpu: NewCPU(1)}
			cache := newKVCache(m.Config().Layers)
			entries := make([]batchEntry, len(g.Tokens))
			for i, tok := range g.Tokens {
				entries[i] = batchEntry{cache: cache, token: tok, pos: i, wantLogits: true}
			}
			logits, err := m.forward(entries)
			if err != nil {
				t.Fatal(err)
			}
			vocab := m.Config().Vocab
			for i := range g.Tokens {
				if e, s := maxErr(logits[i*vocab:(i+1)*vocab], g.Logits[i]); e > 1e-4*max(1, s) {
					t.Errorf("position %d: max |logit error| %.3g (max |logit| %.3g)", i, e, s)
				}
			}
		})
	}
}

// TestGoldenCatchesRoPEMode guards the golden test itself: the other RoPE
// pairing must give logits far outside the tolerance.
func TestGoldenCatchesRoPEMode(t *testing.T) {
	for _, name := range []string{"llama_gqa_f32", "qwen2_bias_f32"} {
		m, g := loadGolden(t, name)
		m.cfg.RopeNeox = !m.cfg.RopeNeox
		cache := newKVCache(m.Config().Layers)
		var worst float64
		for i, tok := range g.Tokens {
			logits, err := m.forward([]batchEntry{{cache: cache, token: tok, pos: i, wantLogits: true}})
			if err != nil {
				t.Fatal(err)
			}
			e, _ := maxErr(logits, g.Logits[i])
			worst = math.Max(worst, e)
		}
		if worst < 1e-2 {
			t.Errorf("%s with the wrong RoPE mode is within %.3g of the golden logits", name, worst)
		}
	}
}

// TestGoldenCatchesRoPEFactors: ignoring Llama 3.1's rope_freqs factors
// must move the logits far outside the tolerance.
func TestGoldenCatchesRoPEFactors(t *testing.T) {
	m, g := loadGolden(t, "llama_rope_freqs_partial_f32")
	c := m.Config()
	for i := range m.invFreq {
		m.invFreq[i] = math.Pow(c.RopeBase, -2*float64(i)/float64(c.RopeDim))
	}
	cache := newKVCache(c.Layers)
	var worst float64
	for i, tok := range g.Tokens {
		logits, err := m.forward([]batchEntry{{cache: cache, token: tok, pos: i, wantLogits: true}})
		if err != nil {
			t.Fatal(err)
		}
		e, _ := maxErr(logits, g.Logits[i])
		worst = math.Max(worst, e)
	}
	if worst < 1e-2 {
		t.Errorf("without frequency factors the logits are within %.3g of the golden ones", worst)
	}
}
