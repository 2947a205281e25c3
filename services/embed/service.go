// Package embed is Tributary's embedding service: it reads chunks
// (tributary.chunks.v1) and approved questions (tributary.queries.approved.v1),
// computes their vectors with an Embedder, and emits
// tributary.chunk.embedded on chunks.embedded.v1 and
// tributary.query.embedded on queries.embedded.v1.
//
// The layers follow go-kit: Service (this file) holds the logic,
// endpoint.go adapts it to endpoints, transport_kafka.go to Kafka, and
// middleware.go adds logging and metrics. See docs/embed.md.
package embed

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/tributary-rag/tributary/pkg/events"
)

// Business errors. They are permanent: the same input fails the same way.
var (
	// ErrInvalid is an input that lacks a required field.
	ErrInvalid = errors.New("invalid input")
)

// Service embeds chunks and questions.
type Service interface {
	// EmbedChunk returns the chunk with its vectors; every field of c is
	// carried over.
	EmbedChunk(ctx context.Context, c events.ChunkCreated) (events.ChunkEmbedded, error)
	// EmbedQuery returns the approved question with its vectors.
	EmbedQuery(ctx context.Context, q events.QueryApproved) (events.QueryEmbedded, error)
}

// ServiceOption configures NewService.
type ServiceOption func(*service)

// WithContext turns the chunk context (IndexText) on or off (default on).
func WithContext(on bool) ServiceOption {
	return func(s *service) { s.noContext = !on }
}

// NewService returns a Service that embeds with e.
func NewService(e Embedder, opts ...ServiceOption) Service {
	s := service{e: e}
	for _, o := range opts {
		o(&s)
	}
	return s
}

type service struct {
	e         Embedder
	noContext bool
}

func (s service) EmbedChunk(ctx context.Context, c events.ChunkCreated) (events.ChunkEmbedded, error) {
	if err := checkChunk(c); err != nil {
		return events.ChunkEmbedded{}, err
	}
	text := c.Text
	if !s.noContext {
		text = IndexText(c)
	}
	vs, err := s.e.EmbedDocuments(ctx, []string{text})
	if err != nil {
		return events.ChunkEmbedded{}, fmt.Errorf("embed chunk %s: %w", c.ChunkID, err)
	}
	if len(vs) != 1 {
		return events.ChunkEmbedded{}, fmt.Errorf("embed chunk %s: embedder returned %d vectors for 1 text", c.ChunkID, len(vs))
	}
	return events.ChunkEmbedded{ChunkCreated: c, Model: s.e.Model(), Dense: vs[0].Dense, Sparse: vs[0].Sparse}, nil
}

func (s service) EmbedQuery(ctx context.Context, q events.QueryApproved) (events.QueryEmbedded, error) {
	if err := checkQuery(q); err != nil {
		return events.QueryEmbedded{}, err
	}
	v, err := s.e.EmbedQuery(ctx, q.Question)
	if err != nil {
		return events.QueryEmbedded{}, fmt.Errorf("embed query %s: %w", q.RequestID, err)
	}
	return events.QueryEmbedded{Query: q.Query, Model: s.e.Model(), Dense: v.Dense, Sparse: v.Sparse}, nil
}

// IndexText returns what is embedded for a chunk: its context (document
// title, source, heading path and page) on a first line, then its text. A
// chunk of a licence file that never names its package is still found by
// the package name that its title and path carry. The snippet users see
// stays the chunk's own text; only the vectors see the context.
func IndexText(c events.ChunkCreated) string {
	var b strings.Builder
	b.Grow(len(c.Title) + len(c.Source) + len(c.Text) + 64)
	for _, part := range []string{c.Title, c.Source} {
		if part != "" {
			b.WriteString(part)
			b.WriteString(" | ")
		}
	}
	for _, h := range c.HeadingPath {
		b.WriteString(h)
		b.WriteString(" | ")
	}
	if c.Page > 0 {
		fmt.Fprintf(&b, "page %d | ", c.Page)
	}
	if b.Len() > 0 {
		b.WriteByte('\n')
	}
	b.WriteString(c.Text)
	return b.String()
}

func checkChunk(c events.ChunkCreated) error {
	var missing []string
	if c.ChunkID == "" {
		missing = append(missing, "chunk_id")
	}
	if c.DocumentID == "" {
		missing = append(missing, "document_id")
	}
	if c.TenantID == "" {
		missing = append(missing, "tenant_id")
	}
	if len(missing) > 0 {
		return fmt.Errorf("%w: chunk without %s", ErrInvalid, strings.Join(missing, ", "))
	}
	return nil
}

func checkQuery(q events.QueryApproved) error {
	var missing []string
	if q.RequestID == "" {
		missing = append(missing, "request_id")
	}
	if q.TenantID == "" {
		missing = append(missing, "tenant_id")
	}
	if len(missing) > 0 {
		return fmt.Errorf("%w: query without %s", ErrInvalid, strings.Join(missing, ", "))
	}
	return nil
}

// isInvalid reports whether err is a business error of the input.
func isInvalid(err error) bool { return errors.Is(err, ErrInvalid) }
