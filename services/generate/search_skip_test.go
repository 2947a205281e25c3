package generate

import (
	"context"
	"testing"

	"github.com/tributary-rag/tributary/pkg/events"
	"github.com/tributary-rag/tributary/pkg/tracecontext"
)

// countingService counts answers it is asked for.
type countingService struct {
	Service
	n int
}

func (c *countingService) Answer(context.Context, Question) (Answer, error) {
	c.n++
	return Answer{}, nil
}

// TestSearchIsNotAnswered checks that a query.retrieved of a search (the
// edge's POST /v1/search reads the retrieval itself) costs no generation,
// while a question is answered.
func TestSearchIsNotAnswered(t *testing.T) {
	svc := &countingService{}
	e := MakeEndpoints(svc)
	for _, tt := range []struct {
		mode    string
		answers int
	}{{events.ModeSearch, 0}, {"", 1}} {
		svc.n = 0
		q := events.QueryRetrieved{}
		q.RequestID, q.TenantID, q.Question, q.Mode = "req-1", "acme", "What is Aurora?", tt.mode
		req, err := DecodeQueryRetrieved(context.Background(), query{q: q, trace: tracecontext.New()}.message(t, "t"))
		if err != nil {
			t.Fatalf("mode %q: decode: %v", tt.mode, err)
		}
		if _, err := e.Answer(context.Background(), req); err != nil {
			t.Fatalf("mode %q: answer: %v", tt.mode, err)
		}
		if svc.n != tt.answers {
			t.Errorf("mode %q: %d answers, want %d", tt.mode, svc.n, tt.answers)
		}
	}
}
