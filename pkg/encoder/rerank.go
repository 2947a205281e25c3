package encoder

import (
	"context"
	"fmt"
)

// Reranker is a cross-encoder (ms-marco-MiniLM, bge-reranker): a BERT or
// XLM-RoBERTa encoder with a one-label classification head that reads a
// query and a passage together and scores how well the passage answers.
// It is safe for concurrent use.
type Reranker struct {
	e *Encoder
}

// LoadReranker reads a cross-encoder from path, a directory or a GGUF file
// as Load reads encoders, whose weights include the classification head.
func LoadReranker(path string, o Options) (*Reranker, error) {
	o.head = true
	e, err := Load(path, o)
	if err != nil {
		return nil, err
	}
	return &Reranker{e: e}, nil
}

// Name is the model's name (its directory or GGUF general.name).
func (r *Reranker) Name() string { return r.e.Name() }

// MaxLength is the most tokens of one query-passage pair; longer pairs are
// cut, the longer text first.
func (r *Reranker) MaxLength() int { return r.e.MaxLength() }

// Close releases the encoder.
func (r *Reranker) Close() { r.e.Close() }

// Score returns one score per passage: the head's logit for (query,
// passage), higher is more relevant. Passages run packed in one pass.
func (r *Reranker) Score(ctx context.Context, query string, passages []string) ([]float32, Stats, error) {
	var st Stats
	ids := make([][]int32, len(passages))
	types := make([][]int32, len(passages))
	for i, p := range passages {
		var cut bool
		ids[i], types[i], cut = r.e.tok.EncodePair(query, p, r.e.maxLen)
		st.Tokens += len(ids[i])
		if cut {
			st.Truncated++
		}
	}
	scores, err := r.ScoreIDs(ctx, ids, types)
	return scores, st, err
}

// ScoreIDs scores token sequences with their token type ids.
func (r *Reranker) ScoreIDs(ctx context.Context, ids, types [][]int32) ([]float32, error) {
	if len(types) != len(ids) {
		return nil, fmt.Errorf("encoder: %d type sequences for %d sequences", len(types), len(ids))
	}
	states, err := r.e.run(ctx, ids, types, true)
	if err != nil {
		return nil, err
	}
	scores := make([]float32, len(states))
	for i, x := range states {
		scores[i] = r.e.head.score(x)
	}
	return scores, nil
}
