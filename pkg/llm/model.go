// Package llm is Tributary's native LLM engine: it loads Llama-family and
// Qwen2 models from GGUF files, runs their forward pass on a Backend (the
// portable CPU backend here; CUDA can fill the same interface), samples
// tokens, and serves many concurrent requests with continuous batching.
package llm

import (
	"errors"
	"fmt"
	"math"

	"github.com/tributary-rag/tributary/pkg/gguf"
	"github.com/tributary-rag/tributary/pkg/tokenizer"
)

// ErrUnsupported is wrapped by errors about models this engine cannot run.
var ErrUnsupported = errors.New("llm: unsupported model")

// Config is a model's shape and hyperparameters, read from GGUF metadata.
type Config struct {
	Arch          string // "llama" or "qwen2"
	Name          string // general.name, may be empty
	Dim           int    // embedding length
	Hidden        int    // feed-forward length
	Layers        int
	Heads         int
	KVHeads       int
	HeadDim       int
	Vocab         int
	ContextLength int     // trained context
	RopeDim       int     // rotated dimensions per head
	RopeBase      float64 // θ
	RopeFreqScale float64 // 1/factor for linear scaling, else 1
	RopeNeox      bool    // rotate (i, i+d/2) pairs instead of adjacent pairs
	NormEps       float32
	QKVBias       bool
	TiedOutput    bool
}

type layer struct {
	attnNorm, ffnNorm []float32
	wq, wk, wv, wo    *Weight
	bq, bk, bv        []float32
	wgate, wup, wdown *Weight
}

// Model is a loaded model. Its weights alias the memory-mapped file until
// Close. A Model is used by one Engine; its forward pass is not safe for
// concurrent use on its own.
type Model struct {
	cfg          Config
	file         *gguf.File
	embed        *Weight
	layers       []layer
	outNorm      []float32
	output       *Weight
	invFreq      []float64
	vocab        *vocab
	tok          *tokenizer.Tokenizer
	chatTemplate string
	backend      Backend
	ownCPU       *CPU // the backend Load made, closed with the model
	buf          buffers
}

// Option configures Load.
type Option func(*loadOptions)

type loadOptions struct {
	backend Backend
	threads int
}

// WithBackend runs the model on b instead of the CPU backend.
func WithBackend(b Backend) Option { return func(o *loadOptions) { o.backend = b } }

// WithThreads sets the CPU backend's goroutine count (default GOMAXPROCS).
func WithThreads(n int) Option { return func(o *loadOptions) { o.threads = n } }

// Load memory-maps the GGUF file at path and prepares the model and its
// tokenizer.
func Load(path string, opts ...Option) (*Model, error) {
	var o loadOptions
	for _, opt := range opts {
		opt(&o)
	}
	f, err := gguf.Open(path)
	if err != nil {
		return nil, fmt.Errorf("load model: %w", err)
	}
	m, err := newModel(f, o)
	if err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("load model %s: %w", path, err)
	}
	return m, nil
}

// Close releases the model's file mapping; call it after every Engine
// using the model has stopped.
func (m *Model) Close() error {
	if m.ownCPU != nil {
		m.ownCPU.Close()
	}
	return m.file.Close()
}

// Config returns the model's configuration.
func (m *Model) Config() Config { return m.cfg }

// Name is general.name from the metadata, or the architecture.
func (m *Model) Name() string {
	if m.cfg.Name != "" {
		return m.cfg.Name
	}
	return m.cfg.Arch
}

// ChatTemplate is the raw tokenizer.chat_template metadata, may be "".
func (m *Model) ChatTemplate() string { return m.chatTemplate }

func readConfig(f *gguf.File) (Config, error) {
	var c Config
	arch, ok := f.String("general.architecture")
	if !ok {
		return c, fmt.Errorf("%w: general.architecture missing", ErrUnsupported)
	}
	c.Arch = arch
	switch arch {
	case "llama":
	case "qwen2":
		c.RopeNeox = true
		c.QKVBias = true
	default:
		return c, fmt.Errorf("%w: architecture %q (supported: llama, qwen2)", ErrUnsupported, arch)
	}
	c.Name, _ = f.String("general.name")
	need := func(key string) (int, error) {
		v, ok := f.Uint(arch + "." + key)
		if !ok || v == 0 || v > 1<<24 {
			return 0, fmt.Errorf("%w: metadata %s.%s missing or invalid", ErrUnsupported, arch, key)
		}
		return int(v), nil
	}
	var err error
	if c.Dim, err = need("embedding_length"); err != nil {
		return c, err
	}
	if c.Hidden, err = need("feed_forward_length"); err != nil {
		return c, err
	}
	if c.Layers, err = need("block_count"); err != nil {
		return c, err
	}
	if c.Heads, err = need("attention.head_count"); err != nil {
		return c, err
	}
	c.KVHeads = c.Heads
	if v, ok := f.Uint(arch + ".attention.head_count_kv"); ok {
		c.KVHeads = int(v)
	}
	if c.KVHeads <= 0 || c.KVHeads > c.Heads || c.Heads%c.KVHeads != 0 {
		return c, fmt.Errorf("%w: %d heads not divisible into %d kv heads", ErrUnsupported, c.Heads, c.KVHeads)
	}
	if c.Dim%c.Heads != 0 {
		return c, fmt.Errorf("%w: embedding %d not divisible by %d heads", ErrUnsupported, c.Dim, c.Heads)
	}
	c.HeadDim = c.Dim / c.Heads
	if v, ok := f.Uint(arch + ".attention.key_length"); ok && v > 0 && v <= 1<<16 {
		c.HeadDim = int(v)
	}
	c.ContextLength = 2048
	if v, ok := f.Uint(arch + ".context_length"); ok && v > 0 && v <= 1<<24 {
		c.ContextLength = int(v)
	}
	c.RopeDim = c.HeadDim
	if v, ok := f.Uint(arch + ".rope.dimension_count"); ok {
		c.RopeDim = int(v)
	}
	if c.RopeDim <= 0 || c.RopeDim > c.HeadDim || c.RopeDim%2 != 0 {
		return c, fmt.Errorf("%w: rope dimension %d with head size %d", ErrUnsupported, c.RopeDim, c.HeadDim)
	}
	c.RopeBase = 10000
	if v, ok := f.Float(arch + ".rope.freq_base"); ok && v > 0 {
		c.RopeBase = v
	}
	c.RopeFreqScale = 1
	scaling, _ := f.String(arch + ".rope.scaling.type")
	factor, hasFactor := f.Float(arch + ".rope.scaling.factor")
	if v, ok := f.Float(arch + ".rope.scale_linear"); ok && scaling == "" {
		scaling, factor, hasFactor = "linear", v, true
	}
	switch scaling {
	case "", "none":
	case "linear":
		if hasFactor && factor > 0 {
			c.RopeFreqScale = 1 / factor
		}
	default:
		return c, fmt.Errorf("%w: rope scaling %q (supported: linear, and llama3 frequency factors)", ErrUnsupported, scaling)
	}
	c.NormEps = 1e-5
	if v, ok := f.Float(arch + ".attention.layer_norm_rms_epsilon"); ok && v > 0 {
		c.NormEps = float32(v)
	}
	return c, nil
}

func newModel(f *gguf.File, o loadOptions) (*Model, error) {
	cfg, err := readConfig(f)
	if err != nil {
		return nil, err
	}
	m := &Model{cfg: cfg, file: f, backend: o.backend}
	if m.backend == nil {
		m.ownCPU = NewCPU(o.threads)
		m.backend = m.ownCPU
	}
	m.chatTemplate, _ = f.String("tokenizer.chat_template")
	qdim := cfg.Heads * cfg.HeadDim
	kvdim := cfg.KVHeads * cfg.HeadDim
	mat := func(name string, rows, cols int) (*Weight, error) {
		w, err := newWeight(f, name)
		if err != nil {
			return nil, err
		}
		if w.Rows != rows || w.Cols != cols {
			return nil, fmt.Errorf("tensor %q is %dx%d, want %dx%d", name, w.Rows, w.Cols, rows, cols)
		}
		if w.Type != gguf.F32 && w.Type != gguf.F16 && w.Type != gguf.BF16 && cols%32 != 0 {
			return nil, fmt.Errorf("tensor %q: quantized rows of %d", name, cols)
		}
		return w, nil
	}
	if m.embed, err = newWeight(f, "token_embd.weight"); err != nil {
		return nil, err
	}
	if m.embed.Cols != cfg.Dim {
		return nil, fmt.Errorf("token_embd.weight has rows of %d, want %d", m.embed.Cols, cfg.Dim)
	}
	cfg.Vocab = m.embed.Rows
	if _, ok := f.Tensor("output.weight"); ok {
		if m.output, err = mat("output.weight", cfg.Vocab, cfg.Dim); err != nil {
			return nil, err
		}
	} else {
		cfg.TiedOutput = true
		m.output = m.embed
	}
	if m.outNorm, err = vector(f, "output_norm.weight", cfg.Dim); err != nil {
		return nil, err
	}
	if cfg.Layers > len(f.Tensors) {
		return nil, fmt.Errorf("%w: %d layers but only %d tensors", ErrUnsupported, cfg.Layers, len(f.Tensors))
	}
	m.layers = make([]layer, cfg.Layers)
	for i := range m.layers {
		l := &m.layers[i]
		p := fmt.Sprintf("blk.%d.", i)
		steps := []struct {
			w          **Weight
			name       string
			rows, cols int
		}{
			{&l.wq, "attn_q", qdim, cfg.Dim},
			{&l.wk, "attn_k", kvdim, cfg.Dim},
			{&l.wv, "attn_v", kvdim, cfg.Dim},
			{&l.wo, "attn_output", cfg.Dim, qdim},
			{&l.wgate, "ffn_gate", cfg.Hidden, cfg.Dim},
			{&l.wup, "ffn_up", cfg.Hidden, cfg.Dim},
			{&l.wdown, "ffn_down", cfg.Dim, cfg.Hidden},
		}
		for _, s := range steps {
			if *s.w, err = mat(p+s.name+".weight", s.rows, s.cols); err != nil {
				return nil, err
			}
		}
		if l.attnNorm, err = vector(f, p+"attn_norm.weight", cfg.Dim); err != nil {
			return nil, err
		}
		if l.ffnNorm, err = vector(f, p+"ffn_norm.weight", cfg.Dim); err != nil {
			return nil, err
		}
		if cfg.QKVBias {
			if l.bq, err = vector(f, p+"attn_q.bias", qdim); err != nil {
				return nil, err
			}
			if l.bk, err = vector(f, p+"attn_k.bias", kvdim); err != nil {
				return nil, err
			}
			if l.bv, err = vector(f, p+"attn_v.bias", kvdim); err != nil {
				return nil, err
			}
		}
	}
	// RoPE inverse frequencies θ^(-2i/d), divided by llama3-style
	// per-dimension factors when the file carries rope_freqs.weight.
	m.invFreq = make([]float64, cfg.RopeDim/2)
	var factors []float32
	if _, ok := f.Tensor("rope_freqs.weight"); ok {
		if factors, err = vector(f, "rope_freqs.weight", cfg.RopeDim/2); err != nil {
			return nil, err
		}
	}
	for i := range m.invFreq {
		m.invFreq[i] = math.Pow(cfg.RopeBase, -2*float64(i)/float64(cfg.RopeDim))
		if factors != nil && factors[i] > 0 {
			m.invFreq[i] /= float64(factors[i])
		}
	}
	if m.vocab, err = newVocab(f, cfg.Vocab); err != nil {
		return nil, err
	}
	m.cfg = cfg
	if err := m.initTokenizer(f); err != nil {
		return nil, err
	}
	return m, nil
}

// Weights lists the matrices one decode step reads: every layer's
// projections and the output classifier.
func (m *Model) Weights() []*Weight {
	var ws []*Weight
	for i := range m.layers {
		l := &m.layers[i]
		ws = append(ws, l.wq, l.wk, l.wv, l.wo, l.wgate, l.wup, l.wdown)
	}
	return append(ws, m.output)
}
