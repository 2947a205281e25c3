package embed

import (
	"context"
	"fmt"
	"math"
	"slices"

	"github.com/tributary-rag/tributary/pkg/events"
)

// Vector is one embedding: a dense part, a sparse part, or both. The
// sparse embedder fills only Sparse; a dense model fills Dense.
type Vector struct {
	Dense  []float32
	Sparse *events.SparseVector
}

// Embedder turns texts into vectors. Documents and queries are separate
// calls because models may treat them differently: the sparse embedder
// normalizes document term frequencies by length and gives every query
// term the weight 1; instruction-tuned dense models (e5, bge) prefix
// "passage: " or "query: ". EmbedDocuments takes a batch so that a dense
// model can run one forward pass over many texts; it returns one vector
// per text, in order. Implementations are safe for concurrent use.
type Embedder interface {
	// Model names the model and its settings as they appear in the
	// events' model field, e.g. "bm25-fnv1a-v1".
	Model() string
	// EmbedDocuments embeds chunk texts.
	EmbedDocuments(ctx context.Context, texts []string) ([]Vector, error)
	// EmbedQuery embeds a question.
	EmbedQuery(ctx context.Context, text string) (Vector, error)
}

// BM25 parameters of the sparse embedder's defaults.
const (
	DefaultK1    = 1.2
	DefaultB     = 0.75
	DefaultAvgDL = 128
)

// SparseModel is the model name of the sparse embedder's events. Its
// suffix is a version: a change of tokenizer, hashing or weights that
// makes old vectors incomparable with new ones must change it.
const SparseModel = "bm25-fnv1a-v2"

// Sparse is the lexical embedder: every token of Tokenizer becomes an
// index (its 32-bit FNV-1a hash) with a BM25 term-frequency weight; the
// vector store multiplies by IDF (Qdrant's IDF modifier on the sparse
// vector), so a dot product of query and document vectors is the BM25
// score. The zero Sparse is not usable; call NewSparse. Sparse is safe for
// concurrent use.
type Sparse struct {
	tok   Tokenizer
	k1    float64
	b     float64
	avgdl float64
}

// SparseOption configures NewSparse.
type SparseOption func(*Sparse)

// WithBM25 sets BM25's k1 (term-frequency saturation, default DefaultK1),
// b (length normalization, default DefaultB) and the average document
// length in tokens (default DefaultAvgDL).
func WithBM25(k1, b, avgdl float64) SparseOption {
	return func(s *Sparse) { s.k1, s.b, s.avgdl = k1, b, avgdl }
}

// WithStemming turns the English S-stemmer on or off (default on).
func WithStemming(on bool) SparseOption {
	return func(s *Sparse) { s.tok.Stem = on }
}

// WithIdentifiers turns identifier tokens ("apt-transport-https" whole,
// besides its parts) on or off (default on).
func WithIdentifiers(on bool) SparseOption {
	return func(s *Sparse) { s.tok.NoIdentifiers = !on }
}

// NewSparse returns the sparse embedder, or an error when a BM25
// parameter is out of range (k1 > 0, 0 ≤ b ≤ 1, avgdl > 0).
func NewSparse(opts ...SparseOption) (*Sparse, error) {
	s := &Sparse{tok: Tokenizer{Stem: true}, k1: DefaultK1, b: DefaultB, avgdl: DefaultAvgDL}
	for _, o := range opts {
		o(s)
	}
	if err := ValidateBM25(s.k1, s.b, s.avgdl); err != nil {
		return nil, err
	}
	return s, nil
}

// ValidateBM25 checks BM25 parameters: k1 > 0, 0 ≤ b ≤ 1, avgdl > 0, all
// finite.
func ValidateBM25(k1, b, avgdl float64) error {
	finite := func(x float64) bool { return !math.IsNaN(x) && !math.IsInf(x, 0) }
	switch {
	case !finite(k1) || k1 <= 0:
		return fmt.Errorf("bm25 k1 %v: must be positive", k1)
	case !finite(b) || b < 0 || b > 1:
		return fmt.Errorf("bm25 b %v: must be between 0 and 1", b)
	case !finite(avgdl) || avgdl <= 0:
		return fmt.Errorf("bm25 average document length %v: must be positive", avgdl)
	}
	return nil
}

// Model implements Embedder.
// Without identifier tokens the vectors differ, and so does the name.
func (s *Sparse) Model() string {
	if s.tok.NoIdentifiers {
		return SparseModel + "-noid"
	}
	return SparseModel
}

// EmbedDocuments implements Embedder. It never fails except when ctx is
// done.
func (s *Sparse) EmbedDocuments(ctx context.Context, texts []string) ([]Vector, error) {
	out := make([]Vector, len(texts))
	for i, t := range texts {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		out[i] = Vector{Sparse: s.Document(t)}
	}
	return out, nil
}

// EmbedQuery implements Embedder.
func (s *Sparse) EmbedQuery(ctx context.Context, text string) (Vector, error) {
	if err := ctx.Err(); err != nil {
		return Vector{}, err
	}
	return Vector{Sparse: s.Query(text)}, nil
}

// Document returns the sparse vector of a document (chunk) text: for each
// distinct index, tf·(k1+1) / (tf + k1·(1 − b + b·dl/avgdl)), where tf
// counts the tokens with that index and dl all tokens of the text.
// Indices are ascending. A text without tokens gives an empty vector.
func (s *Sparse) Document(text string) *events.SparseVector {
	v, dl := s.count(text)
	norm := s.k1 * (1 - s.b + s.b*float64(dl)/s.avgdl)
	for i, tf := range v.Values {
		v.Values[i] = float32(float64(tf) * (s.k1 + 1) / (float64(tf) + norm))
	}
	return v
}

// Query returns the sparse vector of a question: weight 1 for every
// distinct index (binary term frequency, so repeating a word does not
// weigh it more). Indices are ascending.
func (s *Sparse) Query(text string) *events.SparseVector {
	v, _ := s.count(text)
	for i := range v.Values {
		v.Values[i] = 1
	}
	return v
}

// count returns the distinct indices of text's tokens in ascending order
// with their counts as values, and the number of tokens. Sorting the
// token indices and counting runs is cheaper than a map for chunk-sized
// texts.
func (s *Sparse) count(text string) (*events.SparseVector, int) {
	all := make([]uint32, 0, len(text)/4+1)
	s.tok.Each(text, func(tok []byte) {
		all = append(all, TokenIndex(tok))
	})
	slices.Sort(all)
	v := &events.SparseVector{Indices: make([]uint32, 0, len(all)), Values: make([]float32, 0, len(all))}
	for i := 0; i < len(all); {
		j := i + 1
		for j < len(all) && all[j] == all[i] {
			j++
		}
		v.Indices = append(v.Indices, all[i])
		v.Values = append(v.Values, float32(j-i))
		i = j
	}
	return v, len(all)
}

// TokenIndex returns the sparse index of a token: the 32-bit FNV-1a hash
// of its UTF-8 bytes. It depends on nothing but the bytes, so every
// replica and every restart agrees. Two tokens may share an index (a
// collision); their counts then add up, as if they were one term.
func TokenIndex(tok []byte) uint32 {
	const (
		offset32 = 2166136261
		prime32  = 16777619
	)
	h := uint32(offset32)
	for _, c := range tok {
		h ^= uint32(c)
		h *= prime32
	}
	return h
}
