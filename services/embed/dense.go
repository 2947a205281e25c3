package embed

import (
	"context"
	"errors"
	"fmt"

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
	queryPrompt string
	docPrompt   string
	truncated   prometheus.Counter
}

// NewHybrid returns an Embedder that adds enc's dense vectors to sparse's.
// Texts cut at the model's maximum length are counted on
// tributary_embed_dense_truncated_total in reg (nil: not counted).
func NewHybrid(sparse Embedder, enc *encoder.Encoder, reg prometheus.Registerer) (*Hybrid, error) {
	if sparse == nil || enc == nil {
		return nil, errors.New("hybrid embedder: needs a sparse embedder and an encoder")
	}
	h := &Hybrid{sparse: sparse, enc: enc, queryPrompt: enc.Prompt("query"), docPrompt: enc.Prompt("document"),
		truncated: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "tributary", Subsystem: "embed", Name: "dense_truncated_total",
			Help: "Texts cut at the dense model's maximum length before embedding.",
		})}
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
	out, st, err := h.enc.Embed(ctx, texts)
	if err != nil {
		return nil, fmt.Errorf("dense model %s: %w", h.enc.Name(), err)
	}
	h.truncated.Add(float64(st.Truncated))
	return out, nil
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
	return NewHybrid(sparse, enc, reg)
}
