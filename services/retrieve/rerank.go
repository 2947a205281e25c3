package retrieve

import (
	"context"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tributary-rag/tributary/pkg/encoder"
	"github.com/tributary-rag/tributary/pkg/events"
)

// Reranker scores passages for a query, higher more relevant: a
// cross-encoder that reads both together (pkg/encoder's Reranker).
type Reranker interface {
	Score(ctx context.Context, query string, passages []string) ([]float32, error)
}

// DefaultRerankCandidates is how many fused candidates the reranker reads
// per query.
const DefaultRerankCandidates = 50

// WithReranker adds the reranking stage: the best candidates of the fused
// dense and sparse search (after filters and crowding; at least top k)
// are scored by r against the question (each with its context line, see
// rerankText) and the top k of them returned in
// r's order, with the sigmoid of r's logit as their score (as
// sentence-transformers' CrossEncoder reports a one-label model). latency
// observes each reranking's seconds (nil: none).
func WithReranker(r Reranker, candidates int, latency prometheus.Observer) Option {
	return func(s *service) {
		s.reranker, s.rerankCandidates, s.rerankLatency = r, candidates, latency
		if s.rerankCandidates <= 0 {
			s.rerankCandidates = DefaultRerankCandidates
		}
	}
}

// rerank returns the top k of hits in the reranker's order.
func (s *service) rerank(ctx context.Context, question string, hits []events.RetrievedChunk, k int) ([]events.RetrievedChunk, error) {
	if len(hits) == 0 {
		return hits, nil
	}
	passages := make([]string, len(hits))
	for i, h := range hits {
		passages[i] = rerankText(h)
	}
	begin := time.Now()
	scores, err := s.reranker.Score(ctx, question, passages)
	if s.rerankLatency != nil {
		s.rerankLatency.Observe(time.Since(begin).Seconds())
	}
	if err != nil {
		return nil, fmt.Errorf("rerank: %w", err)
	}
	if len(scores) != len(hits) {
		return nil, fmt.Errorf("rerank: %d scores for %d passages", len(scores), len(hits))
	}
	order := make([]int, len(hits))
	for i := range order {
		order[i] = i
	}
	// Stable: equal scores keep the fused order.
	slices.SortStableFunc(order, func(a, b int) int {
		switch {
		case scores[a] > scores[b]:
			return -1
		case scores[a] < scores[b]:
			return 1
		}
		return 0
	})
	out := make([]events.RetrievedChunk, 0, min(k, len(hits)))
	for _, i := range order[:min(k, len(order))] {
		h := hits[i]
		h.Score = float32(1 / (1 + math.Exp(-float64(scores[i]))))
		out = append(out, h)
	}
	return out, nil
}

// rerankText is what the reranker reads of a hit: the context line that
// embed indexes every chunk with (embed.IndexText: title, source, heading
// path, page, each followed by " | "), then the chunk's text, so that a
// question naming a document scores its chunks as the index matched them.
func rerankText(h events.RetrievedChunk) string {
	var b strings.Builder
	for _, part := range append([]string{h.Title, h.Source}, h.HeadingPath...) {
		if part != "" {
			b.WriteString(part)
			b.WriteString(" | ")
		}
	}
	if h.Page > 0 {
		fmt.Fprintf(&b, "page %d | ", h.Page)
	}
	if b.Len() > 0 {
		b.WriteByte('\n')
	}
	b.WriteString(h.Text)
	return b.String()
}

// encoderReranker adapts pkg/encoder's cross-encoder.
type encoderReranker struct{ r *encoder.Reranker }

func (e encoderReranker) Score(ctx context.Context, query string, passages []string) ([]float32, error) {
	scores, _, err := e.r.Score(ctx, query, passages)
	return scores, err
}
