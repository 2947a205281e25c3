// Package encoder is Tributary's text-encoder engine: BERT-family
// sentence-embedding models (all-MiniLM, bge, e5, nomic-embed-text) loaded from a
// sentence-transformers / Hugging Face directory and run on the CPU with
// the vecmath kernels. See docs/embed.md.
package encoder

import (
	"context"
	"fmt"
	"math"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"

	"github.com/tributary-rag/tributary/pkg/gguf"
	"github.com/tributary-rag/tributary/pkg/internal/gemm"
	"github.com/tributary-rag/tributary/pkg/internal/pool"
	"github.com/tributary-rag/tributary/pkg/llm"
	"github.com/tributary-rag/tributary/pkg/vecmath"
)

// maxPackTokens bounds the tokens of one packed forward pass, and so its
// activation memory (about 4·(4·hidden+intermediate) bytes a token, one
// intermediate more for nomic-bert's SwiGLU gate).
const maxPackTokens = 4096

// Options configure Load.
type Options struct {
	// Threads is how many goroutines one Embed call uses (0: GOMAXPROCS).
	Threads int
	// MaxLength caps tokens per text, [CLS] and [SEP] included (0: the
	// model's max_seq_length, else its position count).
	MaxLength int
	// Normalize L2-normalizes every vector even when the model's modules
	// do not say so.
	Normalize bool
	// Quantize stores the matrices of the layers as Q8_0 (int8 blocks of
	// 32 with a scale, as llama.cpp): a quarter of F32's memory and
	// bandwidth, cosine ≥ 0.999 to the F32 vectors. Embeddings and norms
	// stay F32.
	Quantize bool
	// Backend runs the matrix products and attention (nil: pkg/llm's CPU
	// backend on Threads threads), the kernels the LLM engine uses.
	Backend llm.Backend

	// head loads a sequence-classification head (LoadReranker).
	head bool
}

type layerNorm struct{ w, b []float32 }

type linear struct {
	w *llm.Weight  // out×in, row-major as PyTorch stores it
	p *gemm.Packed // w packed for the GEMM (then w is nil); see forward.go
	b []float32
}

type layer struct {
	q, k, v, o    linear
	attnLN        layerNorm
	inter, output linear
	// gate is SwiGLU's gate (nomic-bert's fc12; inter is its fc11); unset
	// in BERT.
	gate  linear
	outLN layerNorm
}

// Encoder is a loaded model. It is safe for concurrent use.
type Encoder struct {
	cfg       Config
	tok       Tokenizer
	pooling   Pooling
	normalize bool
	maxLen    int
	prompts   map[string]string
	threads   int
	name      string

	// mu serializes forward passes: the pool (and a backend) runs one at
	// a time, on all its threads.
	mu sync.Mutex
	// backend runs the matrices the GEMM does not (Q8_0), or everything
	// with a caller's backend; nil when every matrix is packed.
	backend    llm.Backend
	ownBackend bool
	// pool is the threads of the packed products, the attention and the
	// element-wise passes (the backend's quantized products have their own).
	pool *pool.Pool
	// gemm runs the packed products and the attention on the threads,
	// with att its per-thread scratch; nil with a caller's backend, which
	// then runs every product and its own Attention.
	gemm *gemm.Workers
	att  []attScratch
	// file is the memory-mapped GGUF file the weights alias, if any.
	file interface{ Close() error }

	// pos is nil where positions are rotary (nomic-bert).
	word, pos, typ []float32
	// posOffset is the position table's first row (see
	// Config.positionOffset).
	posOffset int
	embLN     layerNorm
	layers    []layer
	// head scores a text pair; nil unless loaded for reranking.
	head *classifier
}

// Load reads the model at path: a GGUF file as llama.cpp writes BERT,
// XLM-RoBERTa and nomic-bert models (a name ending in .gguf, see gguf.go),
// or a directory with
// config.json, model.safetensors and tokenizer.json, and the
// sentence-transformers files beside them when present (modules.json, the
// pooling config, sentence_bert_config.json,
// config_sentence_transformers.json).
func Load(path string, o Options) (*Encoder, error) {
	if strings.HasSuffix(path, ".gguf") {
		return loadGGUF(path, o)
	}
	dir := path
	var cfg Config
	if ok, err := readJSON(filepath.Join(dir, "config.json"), &cfg); err != nil {
		return nil, fmt.Errorf("encoder %s: %w", dir, err)
	} else if !ok {
		return nil, fmt.Errorf("encoder %s: no config.json", dir)
	}
	if cfg.Architecture == "nomic_bert" {
		var err error
		if cfg, err = readNomicConfig(filepath.Join(dir, "config.json")); err != nil {
			return nil, fmt.Errorf("encoder %s: %w", dir, err)
		}
	}
	if cfg.LayerNormEps == 0 {
		cfg.LayerNormEps = 1e-12
	}
	if cfg.Activation == "" {
		cfg.Activation = "gelu"
	}
	if err := cfg.check(); err != nil {
		return nil, fmt.Errorf("encoder %s: %w", dir, err)
	}
	st, err := readST(dir)
	if err != nil {
		return nil, fmt.Errorf("encoder %s: %w", dir, err)
	}
	tok, err := LoadTokenizer(filepath.Join(dir, "tokenizer.json"))
	if err != nil {
		return nil, fmt.Errorf("encoder %s: %w", dir, err)
	}
	if v := tok.VocabSize(); v > cfg.VocabSize {
		return nil, fmt.Errorf("encoder %s: tokenizer has %d tokens, the model's vocab_size is %d: tokenizer and model do not match", dir, v, cfg.VocabSize)
	}
	ts, err := ReadSafetensors(filepath.Join(dir, "model.safetensors"))
	if err != nil {
		return nil, fmt.Errorf("encoder %s: %w", dir, err)
	}
	return build(dir, filepath.Base(filepath.Clean(dir)), cfg, st, tok, ts, o)
}

// build makes the encoder from what either format's loader read.
func build(path, name string, cfg Config, st stConfig, tok Tokenizer, ts map[string]Tensor, o Options) (*Encoder, error) {
	dir := path
	if cfg.Architecture == "nomic-bert" && len(st.prompts) == 0 {
		st.prompts = nomicPrompts
	}
	e := &Encoder{cfg: cfg, tok: tok, pooling: st.pooling, normalize: st.normalize || o.Normalize,
		prompts: st.prompts, threads: o.Threads, name: name, posOffset: cfg.positionOffset()}
	if e.threads <= 0 {
		e.threads = runtime.GOMAXPROCS(0)
	}
	e.maxLen = cfg.MaxPositions - e.posOffset
	if st.maxSeq > 0 {
		e.maxLen = min(e.maxLen, st.maxSeq)
	}
	if o.MaxLength > 0 {
		e.maxLen = min(e.maxLen, o.MaxLength)
	}
	if e.maxLen < 3 {
		return nil, fmt.Errorf("encoder %s: maximum length %d leaves no room for text", dir, e.maxLen)
	}
	if err := e.loadWeights(ts, o.Quantize); err != nil {
		return nil, fmt.Errorf("encoder %s: %w", dir, err)
	}
	if o.head {
		if err := e.loadHead(weights(ts)); err != nil {
			return nil, fmt.Errorf("encoder %s: %w", dir, err)
		}
	}
	e.backend = o.Backend
	e.pool = pool.New(e.threads)
	if e.backend == nil {
		e.gemm, e.att = gemm.NewWorkers(e.pool), make([]attScratch, e.threads)
		if e.packWeights() {
			// Quantized matrices run on the LLM engine's kernels (and its
			// threads); a model without them starts no second pool.
			e.backend, e.ownBackend = llm.NewCPU(e.threads), true
		}
	}
	return e, nil
}

// weights looks tensors up by their BertModel names, with or without the
// "bert." or "roberta." prefix that *ForSequenceClassification
// checkpoints add.
type weights map[string]Tensor

func (ws weights) lookup(name string) (Tensor, bool) {
	for _, p := range []string{"", "bert.", "roberta."} {
		if t, ok := ws[p+name]; ok {
			return t, true
		}
	}
	return Tensor{}, false
}

func (ws weights) get(name string, shape ...int) ([]float32, error) {
	t, ok := ws.lookup(name)
	if !ok && strings.HasSuffix(name, "LayerNorm.weight") {
		return ws.get(strings.TrimSuffix(name, "weight")+"gamma", shape...)
	}
	if !ok && strings.HasSuffix(name, "LayerNorm.bias") {
		return ws.get(strings.TrimSuffix(name, "bias")+"beta", shape...)
	}
	if !ok {
		return nil, fmt.Errorf("model.safetensors: no tensor %s", name)
	}
	if !slices.Equal(t.Shape, shape) {
		return nil, fmt.Errorf("model.safetensors: tensor %s has shape %v, the config needs %v", name, t.Shape, shape)
	}
	v, err := t.F32()
	if err != nil {
		return nil, fmt.Errorf("model.safetensors: tensor %s: %w", name, err)
	}
	return v, nil
}

// matrixTypes are the stored types a weight matrix may have; Q8_0 comes
// from GGUF files.
var matrixTypes = map[string]gguf.TensorType{"F32": gguf.F32, "F16": gguf.F16, "BF16": gguf.BF16, "Q8_0": gguf.Q8_0}

// weight wraps a matrix for the backend in its stored type: F16 and BF16
// stay half the size and are widened in the dot products.
func (ws weights) weight(name string, rows, cols int, quantize bool) (*llm.Weight, error) {
	t, ok := ws.lookup(name)
	if !ok {
		return nil, fmt.Errorf("model.safetensors: no tensor %s", name)
	}
	return matrix(name, t, rows, cols, quantize)
}

// matrix is weight for the tensor t, named name in errors.
func matrix(name string, t Tensor, rows, cols int, quantize bool) (*llm.Weight, error) {
	if !slices.Equal(t.Shape, []int{rows, cols}) {
		return nil, fmt.Errorf("model.safetensors: tensor %s has shape %v, the config needs %v", name, t.Shape, []int{rows, cols})
	}
	typ, ok := matrixTypes[t.DType]
	if !ok {
		return nil, fmt.Errorf("model: tensor %s: type %s is not supported (want F32, F16, BF16 or Q8_0)", name, t.DType)
	}
	if quantize && typ != gguf.Q8_0 && cols%gguf.QK8_0 == 0 {
		v, err := t.F32()
		if err != nil {
			return nil, err
		}
		return llm.NewWeight(name, gguf.Q8_0, rows, cols, gguf.QuantizeQ8_0(v))
	}
	return llm.NewWeight(name, typ, rows, cols, t.Data)
}

func (e *Encoder) loadWeights(ts map[string]Tensor, quantize bool) error {
	ws := weights(ts)
	if e.cfg.Architecture == "nomic-bert" {
		return e.loadNomicWeights(ws, quantize)
	}
	c := e.cfg
	var errs []error
	get := func(name string, shape ...int) []float32 {
		v, err := ws.get(name, shape...)
		if err != nil {
			errs = append(errs, err)
		}
		return v
	}
	lin := func(prefix string, out, in int) linear {
		w, err := ws.weight(prefix+".weight", out, in, quantize)
		if err != nil {
			errs = append(errs, err)
		}
		return linear{w: w, b: get(prefix+".bias", out)}
	}
	ln := func(prefix string) layerNorm {
		return layerNorm{w: get(prefix+".weight", c.Hidden), b: get(prefix+".bias", c.Hidden)}
	}
	e.word = get("embeddings.word_embeddings.weight", c.VocabSize, c.Hidden)
	e.pos = get("embeddings.position_embeddings.weight", c.MaxPositions, c.Hidden)
	if c.TypeVocabSize > 0 {
		e.typ = get("embeddings.token_type_embeddings.weight", c.TypeVocabSize, c.Hidden)
	}
	e.embLN = ln("embeddings.LayerNorm")
	for i := range c.Layers {
		p := fmt.Sprintf("encoder.layer.%d.", i)
		e.layers = append(e.layers, layer{
			q:      lin(p+"attention.self.query", c.Hidden, c.Hidden),
			k:      lin(p+"attention.self.key", c.Hidden, c.Hidden),
			v:      lin(p+"attention.self.value", c.Hidden, c.Hidden),
			o:      lin(p+"attention.output.dense", c.Hidden, c.Hidden),
			attnLN: ln(p + "attention.output.LayerNorm"),
			inter:  lin(p+"intermediate.dense", c.Intermediate, c.Hidden),
			output: lin(p+"output.dense", c.Hidden, c.Intermediate),
			outLN:  ln(p + "output.LayerNorm"),
		})
		if len(errs) > 3 {
			break
		}
	}
	if len(errs) > 0 {
		return errs[0]
	}
	return nil
}

// Close releases the encoder's threads (and the backend's, when the
// encoder made it). The encoder must not be used afterwards.
func (e *Encoder) Close() {
	e.pool.Close()
	if c, ok := e.backend.(interface{ Close() }); ok && e.ownBackend {
		c.Close()
	}
	if e.file != nil {
		e.file.Close()
	}
}

// Dim is the length of the vectors.
func (e *Encoder) Dim() int { return e.cfg.Hidden }

// MaxLength is the most tokens of one text that are embedded; the rest is
// cut off (and counted in Stats.Truncated).
func (e *Encoder) MaxLength() int { return e.maxLen }

// Pooling is the model's pooling.
func (e *Encoder) Pooling() Pooling { return e.pooling }

// Normalized reports whether vectors are L2-normalized.
func (e *Encoder) Normalized() bool { return e.normalize }

// Name is the model directory's base name, e.g. "all-MiniLM-L6-v2".
func (e *Encoder) Name() string { return e.name }

// Prompt returns the model's prompt named name ("query", "document",
// "passage"…) from config_sentence_transformers.json, or "".
func (e *Encoder) Prompt(name string) string { return e.prompts[name] }

// Tokenizer is the model's tokenizer.
func (e *Encoder) Tokenizer() Tokenizer { return e.tok }

// Stats describe one Embed call.
type Stats struct {
	// Tokens is the number of tokens run through the model.
	Tokens int
	// Truncated is the number of texts cut at MaxLength.
	Truncated int
}

// Embed returns one vector per text.
func (e *Encoder) Embed(ctx context.Context, texts []string) ([][]float32, Stats, error) {
	var st Stats
	ids := make([][]int32, len(texts))
	for i, t := range texts {
		var cut bool
		ids[i], cut = e.tok.Encode(t, e.maxLen)
		st.Tokens += len(ids[i])
		if cut {
			st.Truncated++
		}
	}
	out, err := e.EmbedIDs(ctx, ids)
	return out, st, err
}

// EmbedIDs returns one vector per token sequence. Sequences are packed
// end to end into one pass (up to maxPackTokens tokens), longest first:
// every matrix product runs over all their tokens at once, and attention
// stays within each sequence, so no padding enters any result and a text
// embeds the same alone or beside longer ones.
func (e *Encoder) EmbedIDs(ctx context.Context, ids [][]int32) ([][]float32, error) {
	return e.run(ctx, ids, nil, false)
}

// run is EmbedIDs with token type ids (nil: all 0); raw returns the first
// token's final state instead of the pooled vector (a classifier's input).
func (e *Encoder) run(ctx context.Context, ids, types [][]int32, raw bool) ([][]float32, error) {
	maxPos := e.cfg.MaxPositions - e.posOffset
	for i, s := range ids {
		if len(s) == 0 || len(s) > maxPos {
			return nil, fmt.Errorf("encoder: sequence %d has %d tokens, want 1 to %d", i, len(s), maxPos)
		}
		for _, id := range s {
			if id < 0 || int(id) >= e.cfg.VocabSize {
				return nil, fmt.Errorf("encoder: sequence %d: token id %d outside the vocabulary of %d", i, id, e.cfg.VocabSize)
			}
		}
		if types == nil {
			continue
		}
		if len(types[i]) != len(s) {
			return nil, fmt.Errorf("encoder: sequence %d has %d token types for %d tokens", i, len(types[i]), len(s))
		}
		for _, ty := range types[i] {
			if ty < 0 || int(ty) >= max(e.cfg.TypeVocabSize, 1) {
				return nil, fmt.Errorf("encoder: sequence %d: token type %d outside the %d the model has", i, ty, max(e.cfg.TypeVocabSize, 1))
			}
		}
	}
	order := make([]int, len(ids))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int { return len(ids[b]) - len(ids[a]) })
	out := make([][]float32, len(ids))
	e.mu.Lock()
	defer e.mu.Unlock()
	for len(order) > 0 {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		n, tokens := 0, 0
		for n < len(order) && (n == 0 || tokens+len(ids[order[n]]) <= maxPackTokens) {
			tokens += len(ids[order[n]])
			n++
		}
		pack := make([][]int32, n)
		var packTypes [][]int32
		if types != nil {
			packTypes = make([][]int32, n)
		}
		for i, j := range order[:n] {
			pack[i] = ids[j]
			if types != nil {
				packTypes[i] = types[j]
			}
		}
		for i, v := range e.forward(pack, packTypes, tokens, raw) {
			out[order[i]] = v
		}
		order = order[n:]
	}
	return out, nil
}

// forward runs the packed sequences (tokens in all, of the given token
// types or all type 0) through the model and returns their pooled (and,
// if configured, normalized) vectors, or with raw their first token's
// final state.
func (e *Encoder) forward(seqs, types [][]int32, tokens int, raw bool) [][]float32 {
	c := e.cfg
	n, h := tokens, c.Hidden
	x := make([]float32, n*h)
	starts := make([]int, len(seqs)+1)
	for i, s := range seqs {
		starts[i+1] = starts[i] + len(s)
		for p, id := range s {
			t := starts[i] + p
			row := x[t*h : (t+1)*h]
			copy(row, e.word[int(id)*h:(int(id)+1)*h])
			if e.pos != nil {
				pp := p + e.posOffset
				addTo(row, e.pos[pp*h:(pp+1)*h])
			}
			if e.typ != nil {
				ty := 0
				if types != nil {
					ty = int(types[i][p])
				}
				addTo(row, e.typ[ty*h:(ty+1)*h])
			}
		}
	}
	e.layerNorm(x, e.embLN)
	q := make([]float32, n*h)
	k := make([]float32, n*h)
	v := make([]float32, n*h)
	ctxv := make([]float32, n*h)
	tmp := make([]float32, n*h)
	ff := make([]float32, n*c.Intermediate)
	var gate, rot []float32
	if c.Activation == "swiglu" {
		gate = make([]float32, n*c.Intermediate)
	}
	if c.RotaryDim > 0 {
		longest := 0
		for _, s := range seqs {
			longest = max(longest, len(s))
		}
		rot = e.ropeTable(longest)
	}
	// Every query attends to all the positions of its own sequence: Pos is
	// the sequence's last position, which makes the backend's (causal)
	// attention bidirectional.
	qs := make([]llm.AttentionQuery, n)
	for i := range seqs {
		lo, hi := starts[i], starts[i+1]
		for t := lo; t < hi; t++ {
			qs[t] = llm.AttentionQuery{Q: q[t*h : (t+1)*h], K: k[lo*h : hi*h], V: v[lo*h : hi*h], Pos: hi - lo - 1}
		}
	}
	for i := range e.layers {
		l := &e.layers[i]
		e.linear(q, x, n, l.q)
		e.linear(k, x, n, l.k)
		e.linear(v, x, n, l.v)
		if rot != nil {
			e.rope(q, k, starts, rot)
		}
		if e.gemm != nil {
			e.attention(ctxv, q, k, v, starts)
		} else {
			e.backend.Attention(ctxv, qs, c.Heads, c.Heads, h/c.Heads)
		}
		e.linear(tmp, ctxv, n, l.o)
		e.addNorm(x, tmp, l.attnLN)
		e.linear(ff, x, n, l.inter)
		if gate != nil {
			e.linear(gate, x, n, l.gate)
			e.swiglu(ff, gate)
		} else {
			e.activate(ff)
		}
		e.linear(tmp, ff, n, l.output)
		e.addNorm(x, tmp, l.outLN)
	}
	vecs := make([][]float32, len(seqs))
	pooling, normalize := e.pooling, e.normalize
	if raw {
		pooling, normalize = PoolCLS, false
	}
	for i := range seqs {
		lo, hi := starts[i], starts[i+1]
		out := make([]float32, h)
		switch pooling {
		case PoolCLS:
			copy(out, x[lo*h:(lo+1)*h])
		case PoolLast:
			copy(out, x[(hi-1)*h:hi*h])
		default:
			for t := lo; t < hi; t++ {
				addTo(out, x[t*h:(t+1)*h])
			}
			inv := 1 / float32(hi-lo)
			for j := range out {
				out[j] *= inv
			}
		}
		if normalize {
			vecmath.Normalize(out)
		}
		vecs[i] = out
	}
	return vecs
}

// exp32 is e^x for x ≤ 0 (softmax scores less their maximum) in float32:
// e^x = 2^n · e^y with n = round(x·log2 e) set in the exponent bits and
// |y| ≤ ln2/2 a degree-7 Taylor polynomial; relative error about 2e-7,
// without math.Exp's float64 path.
func exp32(x float32) float32 {
	if x < -87 {
		return 0
	}
	n := float32(int32(x*math.Log2E - 0.5))                 // round, for x ≤ 0
	y := (x - n*0.693145751953125) - n*1.428606820309417e-6 // ln 2 in two parts (Cody–Waite)
	p := y*(1.0/5040) + 1.0/720
	p = p*y + 1.0/120
	p = p*y + 1.0/24
	p = p*y + 1.0/6
	p = p*y + 0.5
	p = p*y + 1
	p = p*y + 1
	return math.Float32frombits(math.Float32bits(p) + uint32(int32(n))<<23)
}

// parallel runs f over [0, n) on the encoder's threads, in chunks of at
// least grain items.
func (e *Encoder) parallel(n, grain int, f func(lo, hi int)) {
	if n <= grain {
		f(0, n)
		return
	}
	e.pool.For(n, grain, func(_, lo, hi int) { f(lo, hi) })
}

func (e *Encoder) layerNorm(x []float32, ln layerNorm) {
	h := e.cfg.Hidden
	eps := e.cfg.LayerNormEps
	for t := 0; t < len(x); t += h {
		row := x[t : t+h]
		var mean float64
		for _, a := range row {
			mean += float64(a)
		}
		mean /= float64(h)
		var vr float64
		for _, a := range row {
			d := float64(a) - mean
			vr += d * d
		}
		inv := 1 / math.Sqrt(vr/float64(h)+eps)
		for j, a := range row {
			row[j] = float32((float64(a)-mean)*inv)*ln.w[j] + ln.b[j]
		}
	}
}

// activate applies the activation in place, split among the threads (the
// exact GELU's erf is a third of a small model's time on one thread).
func (e *Encoder) activate(x []float32) {
	e.parallel(len(x), 4096, func(lo, hi int) { e.activateRange(x[lo:hi]) })
}

func (e *Encoder) activateRange(x []float32) {
	switch e.cfg.Activation {
	case "relu":
		for i, a := range x {
			x[i] = max(a, 0)
		}
	case "gelu":
		gelu(x)
	default: // the tanh approximation
		for i, a := range x {
			f := float64(a)
			x[i] = float32(0.5 * f * (1 + math.Tanh(math.Sqrt(2/math.Pi)*(f+0.044715*f*f*f))))
		}
	}
}

func addTo(dst, src []float32) {
	for i := range dst {
		dst[i] += src[i]
	}
}

// erf32 is erf in float32 as a rational polynomial on [-4, 4] (Eigen's
// and XLA's), within 5e-7 of math.Erf (float32 rounding) and without its exp: the exact GELU
// of BERT took a quarter of a small model's time through math.Erf.
func erf32(x float32) float32 {
	x = min(max(x, -4), 4)
	x2 := x * x
	p := x2*-2.72614225801306e-10 + 2.77068142495902e-08
	p = x2*p + -2.10102402082508e-06
	p = x2*p + -5.69250639462346e-05
	p = x2*p + -7.34990630326855e-04
	p = x2*p + -2.95459980854025e-03
	p = x2*p + -1.60960333262415e-02
	p *= x
	q := x2*-1.45660718464996e-05 + -2.13374055278905e-04
	q = x2*q + -1.68282697438203e-03
	q = x2*q + -7.37332916720468e-03
	q = x2*q + -1.42647390514189e-02
	return p / q
}
