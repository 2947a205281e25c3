package embed

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tributary-rag/tributary/pkg/encoder"
)

// Hybrid is an Embedder that fills both parts of each Vector: the sparse
// part from a lexical embedder, the dense part from a sentence-embedding
// model (pkg/encoder), with the model's own query and document prompts
// (e5's "query: "/"passage: ", bge's query instruction).
type Hybrid struct {
	sparse      Embedder
	enc         *encoder.Encoder
	batch       *batcher
	queryPrompt string
	docPrompt   string
	truncated   prometheus.Counter
}

// HybridOption configures NewHybrid.
type HybridOption func(*batcher)

// WithDenseBatching sets how concurrent calls share forward passes: the
// first call to an idle model waits up to window for others to join it
// (0: it starts at once), a pass takes at most maxTexts texts (calls are
// never split), and calls that arrive while a pass runs join the next one.
// Defaults: window 0, 64 texts.
func WithDenseBatching(window time.Duration, maxTexts int) HybridOption {
	return func(b *batcher) { b.window, b.max = window, max(1, maxTexts) }
}

// NewHybrid returns an Embedder that adds enc's dense vectors to sparse's.
// Texts cut at the model's maximum length are counted on
// tributary_embed_dense_truncated_total in reg (nil: not counted).
func NewHybrid(sparse Embedder, enc *encoder.Encoder, reg prometheus.Registerer, opts ...HybridOption) (*Hybrid, error) {
	if sparse == nil || enc == nil {
		return nil, errors.New("hybrid embedder: needs a sparse embedder and an encoder")
	}
	h := &Hybrid{sparse: sparse, enc: enc, queryPrompt: enc.Prompt("query"), docPrompt: enc.Prompt("document"),
		truncated: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "tributary", Subsystem: "embed", Name: "dense_truncated_total",
			Help: "Texts cut at the dense model's maximum length before embedding.",
		})}
	h.batch = &batcher{model: enc, max: 64, truncated: h.truncated}
	for _, o := range opts {
		o(h.batch)
	}
	if h.docPrompt == "" {
		h.docPrompt = enc.Prompt("passage")
	}
	if reg != nil {
		if err := reg.Register(h.truncated); err != nil {
			return nil, fmt.Errorf("hybrid embedder metrics: %w", err)
		}
	}
	return h, nil
}

// Model implements Embedder: the sparse model's name, "+", the dense
// model's directory name and dimension, e.g.
// "bm25-fnv1a-v1+all-MiniLM-L6-v2/384". Another model or dimension is
// another name, so vectors of different spaces never share an event id.
func (h *Hybrid) Model() string {
	return fmt.Sprintf("%s+%s/%d", h.sparse.Model(), h.enc.Name(), h.enc.Dim())
}

// Dim is the length of the dense vectors.
func (h *Hybrid) Dim() int { return h.enc.Dim() }

// EmbedDocuments implements Embedder; the texts share one encoder call.
func (h *Hybrid) EmbedDocuments(ctx context.Context, texts []string) ([]Vector, error) {
	vs, err := h.sparse.EmbedDocuments(ctx, texts)
	if err != nil {
		return nil, err
	}
	if len(vs) != len(texts) {
		return nil, fmt.Errorf("sparse embedder returned %d vectors for %d texts", len(vs), len(texts))
	}
	prompted := make([]string, len(texts))
	for i, t := range texts {
		prompted[i] = h.docPrompt + t
	}
	dense, err := h.dense(ctx, prompted)
	if err != nil {
		return nil, err
	}
	for i := range vs {
		vs[i].Dense = dense[i]
	}
	return vs, nil
}

// EmbedQuery implements Embedder.
func (h *Hybrid) EmbedQuery(ctx context.Context, text string) (Vector, error) {
	v, err := h.sparse.EmbedQuery(ctx, text)
	if err != nil {
		return Vector{}, err
	}
	dense, err := h.dense(ctx, []string{h.queryPrompt + text})
	if err != nil {
		return Vector{}, err
	}
	v.Dense = dense[0]
	return v, nil
}

func (h *Hybrid) dense(ctx context.Context, texts []string) ([][]float32, error) {
	out, err := h.batch.embed(ctx, texts)
	if err != nil {
		return nil, fmt.Errorf("dense model %s: %w", h.enc.Name(), err)
	}
	return out, nil
}

// textEncoder is what the batcher needs of an encoder.
type textEncoder interface {
	Embed(ctx context.Context, texts []string) ([][]float32, encoder.Stats, error)
}

// batcher joins the texts of concurrent calls into one forward pass: the
// encoder packs them by length, and a pass over many short texts costs
// little more than over one (the weights are read once for all).
type batcher struct {
	model     textEncoder
	window    time.Duration
	max       int
	truncated prometheus.Counter

	mu      sync.Mutex
	pending []*denseCall
	texts   int           // in pending
	running bool          // a drain goroutine owns the passes
	full    chan struct{} // closed when pending reaches max in the window
}

type denseCall struct {
	ctx   context.Context
	texts []string
	out   [][]float32
	err   error
	done  chan struct{}
}

// embed returns the vectors of texts, computed in a pass shared with the
// calls around it. A pass's results do not depend on the other texts in
// it (the encoder keeps each text's attention to itself).
func (b *batcher) embed(ctx context.Context, texts []string) ([][]float32, error) {
	c := &denseCall{ctx: ctx, texts: texts, done: make(chan struct{})}
	b.mu.Lock()
	b.pending = append(b.pending, c)
	b.texts += len(texts)
	if b.running {
		if b.full != nil && b.texts >= b.max {
			close(b.full)
			b.full = nil
		}
		b.mu.Unlock()
	} else {
		b.running = true
		full := make(chan struct{})
		if b.window <= 0 || b.texts >= b.max {
			close(full)
		} else {
			b.full = full
		}
		b.mu.Unlock()
		go b.drain(full)
	}
	select {
	case <-c.done:
		return c.out, c.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// drain waits out the window (or until max texts are pending), then runs
// passes until no call is pending, and ends.
func (b *batcher) drain(full chan struct{}) {
	t := time.NewTimer(b.window)
	select {
	case <-t.C:
	case <-full:
	}
	t.Stop()
	for {
		b.mu.Lock()
		b.full = nil
		if len(b.pending) == 0 {
			b.running = false
			b.mu.Unlock()
			return
		}
		n, texts := 0, 0
		for n < len(b.pending) && (n == 0 || texts+len(b.pending[n].texts) <= b.max) {
			texts += len(b.pending[n].texts)
			n++
		}
		calls := b.pending[:n:n]
		b.pending = b.pending[n:]
		b.texts -= texts
		b.mu.Unlock()
		b.run(calls)
	}
}

// run embeds the texts of calls in one encoder call; a call whose context
// has ended is left out. The pass runs without the callers' cancellation:
// it serves them all.
func (b *batcher) run(calls []*denseCall) {
	var all []string
	var live []*denseCall
	for _, c := range calls {
		if c.ctx.Err() != nil {
			close(c.done)
			continue
		}
		live = append(live, c)
		all = append(all, c.texts...)
	}
	if len(live) == 0 {
		return
	}
	out, st, err := b.model.Embed(context.WithoutCancel(live[0].ctx), all)
	b.truncated.Add(float64(st.Truncated))
	for _, c := range live {
		if err != nil {
			c.err = err
		} else {
			c.out, out = out[:len(c.texts):len(c.texts)], out[len(c.texts):]
		}
		close(c.done)
	}
}

// withDense returns sparse alone without an embed model, else a Hybrid on
// the model in s.EmbedModel.
func (s Settings) withDense(sparse Embedder, reg prometheus.Registerer) (Embedder, error) {
	if s.EmbedModel == "" {
		return sparse, nil
	}
	enc, err := encoder.Load(s.EmbedModel, encoder.Options{Threads: s.EmbedThreads, Normalize: true})
	if err != nil {
		return nil, fmt.Errorf("embed-model: %w", err)
	}
	return NewHybrid(sparse, enc, reg, WithDenseBatching(s.EmbedBatchWindow, s.EmbedBatchTexts))
}
