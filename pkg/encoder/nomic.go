package encoder

import (
	"fmt"
	"math"
	"strings"

	"github.com/tributary-rag/tributary/pkg/llm"
)

// nomic-bert (nomic-embed-text-v1, v1.5) is BERT's post-LayerNorm encoder
// with three changes, as Nomic's modeling code (contrastors'
// modeling_hf_nomic_bert.py, which the models' config.json names) and
// llama.cpp's nomic-bert graph define it:
//   - no position table: the queries and keys of every head are rotated by
//     their position in the text (rotary embeddings, the first and second
//     half of the rotated dimensions paired, "NeoX" style), positions from
//     0 in every text;
//   - one fused query/key/value matrix, Wqkv (3·n_embd × n_embd: queries,
//     then keys, then values), split at load into the three BERT linears;
//   - a SwiGLU MLP: fc2(fc11(x) · silu(fc12(x))) (fc11 is llama.cpp's
//     ffn_up, fc12 its ffn_gate);
//
// and, in the released models, no biases in the attention and MLP linears
// (qkv_proj_bias, mlp_fc1_bias, mlp_fc2_bias false): a bias is used when
// its tensor is there.

// nomicPrompts are nomic-embed-text's task prefixes, which it needs (its
// model card: "the text prompt must include a task instruction prefix"):
// the prompts of a nomic-bert model that names none, as its GGUF files
// cannot.
var nomicPrompts = map[string]string{"query": "search_query: ", "document": "search_document: ",
	"classification": "classification: ", "clustering": "clustering: "}

// nomicConfig is nomic-bert's config.json: NomicBertConfig, a GPT2Config
// with its names (n_embd, n_head…). Pointers tell a missing field from a
// zero one where the default is not zero.
type nomicConfig struct {
	VocabSize         int      `json:"vocab_size"`
	PadVocabMultiple  int      `json:"pad_vocab_size_multiple"`
	Positions         int      `json:"n_positions"`
	Hidden            int      `json:"n_embd"`
	Layers            int      `json:"n_layer"`
	Heads             int      `json:"n_head"`
	Inner             *int     `json:"n_inner"`
	Activation        *string  `json:"activation_function"`
	LayerNormEps      *float64 `json:"layer_norm_epsilon"`
	TypeVocabSize     *int     `json:"type_vocab_size"`
	RotaryFraction    float64  `json:"rotary_emb_fraction"`
	RotaryBase        *float64 `json:"rotary_emb_base"`
	RotaryScaleBase   *float64 `json:"rotary_emb_scale_base"`
	RotaryInterleaved bool     `json:"rotary_emb_interleaved"`
	RotaryScaling     *float64 `json:"rotary_scaling_factor"`
	MaxTrained        *int     `json:"max_trained_positions"`
	Prenorm           bool     `json:"prenorm"`
	ParallelBlock     bool     `json:"parallel_block"`
	RMSNorm           bool     `json:"use_rms_norm"`
	RotaryHeadDim     bool     `json:"rotary_head_dim"`
}

// readNomicConfig reads a nomic_bert config.json.
func readNomicConfig(path string) (Config, error) {
	var n nomicConfig
	if _, err := readJSON(path, &n); err != nil {
		return Config{}, err
	}
	return n.config()
}

// config checks n and converts it. The defaults are NomicBertConfig's and
// GPT2Config's.
func (n nomicConfig) config() (Config, error) {
	var bad []string
	for _, f := range []struct {
		name string
		v    int
	}{{"vocab_size", n.VocabSize}, {"n_embd", n.Hidden}, {"n_layer", n.Layers}, {"n_head", n.Heads}, {"n_positions", n.Positions}} {
		if f.v <= 0 || f.v > 1<<20 {
			bad = append(bad, f.name)
		}
	}
	if len(bad) > 0 {
		return Config{}, fmt.Errorf("config.json: %s missing or out of range", strings.Join(bad, ", "))
	}
	if n.Hidden%n.Heads != 0 {
		return Config{}, fmt.Errorf("config.json: n_embd %d is not a multiple of n_head %d", n.Hidden, n.Heads)
	}
	act := "gelu_new"
	if n.Activation != nil {
		act = *n.Activation
	}
	for _, u := range []struct {
		on   bool
		what string
	}{
		{act != "swiglu", fmt.Sprintf("activation_function %q (want swiglu)", act)},
		{n.Prenorm, "prenorm (LayerNorm before each block)"},
		{n.ParallelBlock, "parallel_block"},
		{n.RMSNorm, "use_rms_norm"},
		{n.RotaryHeadDim, "rotary_head_dim"},
		{n.RotaryInterleaved, "rotary_emb_interleaved (GPT-J pairs)"},
		{n.RotaryScaleBase != nil, "rotary_emb_scale_base (XPos)"},
		{n.RotaryFraction <= 0, "rotary_emb_fraction 0 (absolute positions)"},
	} {
		if u.on {
			return Config{}, fmt.Errorf("config.json: nomic_bert with %s is not supported", u.what)
		}
	}
	headDim := n.Hidden / n.Heads
	rot := n.RotaryFraction * float64(headDim)
	if rot != math.Trunc(rot) || rot > float64(headDim) || int(rot)%2 != 0 {
		return Config{}, fmt.Errorf("config.json: rotary_emb_fraction %v of a %d-dimensional head is not an even number of dimensions", n.RotaryFraction, headDim)
	}
	// The gated MLP's width: n_inner (default 8/3 of n_embd), rounded up
	// to a multiple of 256 as NomciBertGatedMLP does.
	inner := 8 * n.Hidden / 3
	if n.Inner != nil {
		inner = *n.Inner
	}
	inner = (inner + 255) / 256 * 256
	vocab := n.VocabSize
	if m := n.PadVocabMultiple; m > 1 {
		vocab = (vocab + m - 1) / m * m
	}
	// With rotary_scaling_factor the modeling code changes the rotary base
	// past max_trained_positions (dynamic NTK): texts stop there, where
	// the plain rotation is exact.
	positions := n.Positions
	if n.RotaryScaling != nil && *n.RotaryScaling != 0 {
		trained := 2048
		if n.MaxTrained != nil {
			trained = *n.MaxTrained
		}
		positions = min(positions, trained)
	}
	c := Config{Architecture: "nomic-bert", VocabSize: vocab, Hidden: n.Hidden, Layers: n.Layers, Heads: n.Heads,
		Intermediate: inner, MaxPositions: positions, TypeVocabSize: 2, LayerNormEps: 1e-5, Activation: "swiglu",
		RotaryDim: int(rot), RopeBase: 10000}
	if n.TypeVocabSize != nil {
		c.TypeVocabSize = *n.TypeVocabSize
	}
	if n.LayerNormEps != nil {
		c.LayerNormEps = *n.LayerNormEps
	}
	if n.RotaryBase != nil {
		c.RopeBase = *n.RotaryBase
	}
	return c, c.check()
}

// checkNomic checks what nomic-bert adds to a Config (from either format).
func (c Config) checkNomic() error {
	d := c.Hidden / c.Heads
	if c.RotaryDim <= 0 || c.RotaryDim > d || c.RotaryDim%2 != 0 {
		return fmt.Errorf("config: rotary dimensions %d of a %d-dimensional head: want an even number from 2 to %d", c.RotaryDim, d, d)
	}
	if !(c.RopeBase > 1) || math.IsInf(c.RopeBase, 0) {
		return fmt.Errorf("config: rotary base %v out of range", c.RopeBase)
	}
	if c.Activation != "swiglu" {
		return fmt.Errorf("config: nomic-bert activation %q is not supported (want swiglu)", c.Activation)
	}
	if c.LayerNormEps <= 0 {
		return fmt.Errorf("config: layer_norm_epsilon %v out of range", c.LayerNormEps)
	}
	return nil
}

// ggufNomicNames maps llama.cpp's nomic-bert tensor names to Nomic's.
var ggufNomicNames = map[string]string{
	"token_embd":               "embeddings.word_embeddings",
	"token_types":              "embeddings.token_type_embeddings",
	"token_embd_norm":          "emb_ln",
	"blk.%d.attn_qkv":          "encoder.layers.%d.attn.Wqkv",
	"blk.%d.attn_output":       "encoder.layers.%d.attn.out_proj",
	"blk.%d.attn_output_norm":  "encoder.layers.%d.norm1",
	"blk.%d.ffn_up":            "encoder.layers.%d.mlp.fc11",
	"blk.%d.ffn_gate":          "encoder.layers.%d.mlp.fc12",
	"blk.%d.ffn_down":          "encoder.layers.%d.mlp.fc2",
	"blk.%d.layer_output_norm": "encoder.layers.%d.norm2",
}

// loadNomicWeights reads Nomic's tensors (the names of its
// NomicBertModel, with or without the "bert." prefix of its pretraining
// checkpoints) into the encoder's BERT-shaped layers.
func (e *Encoder) loadNomicWeights(ws weights, quantize bool) error {
	c := e.cfg
	h := c.Hidden
	var errs []error
	get := func(name string, shape ...int) []float32 {
		v, err := ws.get(name, shape...)
		if err != nil {
			errs = append(errs, err)
		}
		return v
	}
	bias := func(name string, n int) []float32 {
		if _, ok := ws.lookup(name); !ok {
			return nil
		}
		return get(name, n)
	}
	mat := func(name string, t Tensor, rows, cols int) *llm.Weight {
		w, err := matrix(name, t, rows, cols, quantize)
		if err != nil {
			errs = append(errs, err)
		}
		return w
	}
	lin := func(prefix string, out, in int) linear {
		t, ok := ws.lookup(prefix + ".weight")
		if !ok {
			errs = append(errs, fmt.Errorf("model.safetensors: no tensor %s.weight", prefix))
			return linear{}
		}
		return linear{w: mat(prefix+".weight", t, out, in), b: bias(prefix+".bias", out)}
	}
	ln := func(prefix string) layerNorm {
		return layerNorm{w: get(prefix+".weight", h), b: get(prefix+".bias", h)}
	}
	e.word = get("embeddings.word_embeddings.weight", c.VocabSize, h)
	if c.TypeVocabSize > 0 {
		e.typ = get("embeddings.token_type_embeddings.weight", c.TypeVocabSize, h)
	}
	e.embLN = ln("emb_ln")
	for i := range c.Layers {
		p := fmt.Sprintf("encoder.layers.%d.", i)
		l := layer{
			o:      lin(p+"attn.out_proj", h, h),
			attnLN: ln(p + "norm1"),
			inter:  lin(p+"mlp.fc11", c.Intermediate, h),
			gate:   lin(p+"mlp.fc12", c.Intermediate, h),
			output: lin(p+"mlp.fc2", h, c.Intermediate),
			outLN:  ln(p + "norm2"),
		}
		name := p + "attn.Wqkv.weight"
		if t, ok := ws.lookup(name); !ok {
			errs = append(errs, fmt.Errorf("model.safetensors: no tensor %s", name))
		} else if len(t.Shape) != 2 || t.Shape[0] != 3*h || t.Shape[1] != h || len(t.Data)%(3*h) != 0 {
			errs = append(errs, fmt.Errorf("model.safetensors: tensor %s has shape %v, the config needs %v (query, key and value rows of n_embd %d)", name, t.Shape, []int{3 * h, h}, h))
		} else {
			b := bias(p+"attn.Wqkv.bias", 3*h)
			for j, dst := range []*linear{&l.q, &l.k, &l.v} {
				dst.w = mat(fmt.Sprintf("%s (%s rows)", name, [3]string{"query", "key", "value"}[j]), rowSlice(t, j*h, (j+1)*h), h, h)
				if b != nil {
					dst.b = b[j*h : (j+1)*h]
				}
			}
		}
		e.layers = append(e.layers, l)
		if len(errs) > 3 {
			break
		}
	}
	if len(errs) > 0 {
		return errs[0]
	}
	return nil
}

// rowSlice is rows [lo, hi) of the matrix t, in its stored type (rows of
// every type are whole blocks, so each row is len(Data)/rows bytes).
func rowSlice(t Tensor, lo, hi int) Tensor {
	per := len(t.Data) / t.Shape[0]
	return Tensor{DType: t.DType, Shape: []int{hi - lo, t.Shape[1]}, Data: t.Data[lo*per : hi*per]}
}

// ropeTable is cos and sin of the rotary angles pos·θ_i for pos < n and
// the RotaryDim/2 frequencies θ_i = base^(−2i/RotaryDim), row pos holding
// the cosines then the sines. The frequencies and angles are rounded to
// float32 where Nomic's modeling code computes them in float32, so long
// texts turn by the angles the model was trained with.
func (e *Encoder) ropeTable(n int) []float32 {
	half := e.cfg.RotaryDim / 2
	inv := make([]float32, half)
	for i := range inv {
		ex := float32(2*i) / float32(e.cfg.RotaryDim)
		inv[i] = float32(1 / float64(float32(math.Pow(e.cfg.RopeBase, float64(ex)))))
	}
	tab := make([]float32, n*2*half)
	for p := range n {
		row := tab[p*2*half : (p+1)*2*half]
		for i, f := range inv {
			a := float64(float32(float32(p) * f)) // rounded, not fused
			row[i], row[half+i] = float32(math.Cos(a)), float32(math.Sin(a))
		}
	}
	return tab
}

// rope rotates the queries and keys of every head (n×hidden each) in
// place by their token's position in its own text (starts bound the
// packed texts): dimensions j and j+RotaryDim/2 of a head turn together.
func (e *Encoder) rope(q, k []float32, starts []int, tab []float32) {
	c := e.cfg
	h, d, half := c.Hidden, c.Hidden/c.Heads, c.RotaryDim/2
	pos := make([]int32, starts[len(starts)-1])
	for i := range len(starts) - 1 {
		for t := starts[i]; t < starts[i+1]; t++ {
			pos[t] = int32(t - starts[i])
		}
	}
	e.parallel(len(pos), 16, func(lo, hi int) {
		for t := lo; t < hi; t++ {
			cs := tab[int(pos[t])*2*half:]
			cos, sin := cs[:half], cs[half:2*half]
			for _, x := range [2][]float32{q[t*h : (t+1)*h], k[t*h : (t+1)*h]} {
				for hd := 0; hd < h; hd += d {
					a, b := x[hd:hd+half], x[hd+half:hd+2*half]
					for i := range half {
						x1, x2 := a[i], b[i]
						a[i] = x1*cos[i] - x2*sin[i]
						b[i] = x2*cos[i] + x1*sin[i]
					}
				}
			}
		}
	})
}

// swiglu sets up = up · silu(gate) element-wise, split among the threads.
func (e *Encoder) swiglu(up, gate []float32) {
	e.parallel(len(up), 4096, func(lo, hi int) {
		g := gate[lo:hi]
		for i, u := range up[lo:hi] {
			x := g[i]
			// σ(x) from e^−|x| ≤ 1, exp32's range.
			s := exp32(-abs32(x))
			sig := 1 / (1 + s)
			if x < 0 {
				sig = s / (1 + s)
			}
			up[lo+i] = u * x * sig
		}
	})
}

func abs32(x float32) float32 { return math.Float32frombits(math.Float32bits(x) &^ (1 << 31)) }
