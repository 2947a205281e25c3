package retrieve

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"testing"

	"github.com/tributary-rag/tributary/pkg/encoder"
	"github.com/tributary-rag/tributary/pkg/events"
)

// syntheticReranker is a real cross-encoder with random weights: its
// scores are arbitrary but fixed, so the stage's order can be checked
// against them.
func syntheticReranker(t *testing.T) *encoder.Reranker {
	t.Helper()
	dir := t.TempDir()
	s := encoder.Synthetic{
		Config:     encoder.Config{Hidden: 32, Layers: 2, Heads: 4, Intermediate: 64, MaxPositions: 64},
		Vocab:      []string{"pump", "valve", "filter", "service", "every", "days", "weeks", "check", "the", "unit", "how", "often"},
		Seed:       11,
		Classifier: true,
	}
	if err := s.Write(dir); err != nil {
		t.Fatal(err)
	}
	r, err := encoder.LoadReranker(dir, encoder.Options{Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Close)
	return r
}

func chunkIDs(hs []events.RetrievedChunk) []string {
	out := make([]string, len(hs))
	for i, h := range hs {
		out[i] = h.ChunkID
	}
	return out
}

func TestRerankStage(t *testing.T) {
	h := start(t)
	texts := []string{
		"check the pump every days", "service the valve every weeks", "the filter the unit",
		"how often service the pump", "check the valve", "the unit every days service",
		"pump valve filter", "often the filter every weeks",
	}
	for i, text := range texts {
		d := doc{tenant: "acme", id: fmt.Sprintf("doc-%d", i), version: 1, texts: []string{text}}
		h.produceChunks(d)
		h.waitIndexed(d.tenant, d.id, d.version)
	}
	rr := syntheticReranker(t)
	latency := &observations{}
	on := NewService(h.index, nil, WithReranker(encoderReranker{rr}, 6, latency))
	q := query("acme", nil, "how often service the pump", 3)

	// Off: the fused order, untouched.
	fused, err := h.svc.Retrieve(t.Context(), query("acme", nil, q.Question, 6))
	if err != nil {
		t.Fatal(err)
	}
	if len(fused.Results) != 6 {
		t.Fatalf("fused: %d results, want 6", len(fused.Results))
	}
	for i := 1; i < len(fused.Results); i++ {
		if fused.Results[i].Score > fused.Results[i-1].Score {
			t.Fatalf("fused results out of score order: %v", fused.Results)
		}
	}

	// On: the same six candidates, in the order of the model's scores.
	passages := make([]string, len(fused.Results))
	for i, r := range fused.Results {
		passages[i] = rerankText(r)
	}
	scores, _, err := rr.Score(context.Background(), q.Question, passages)
	if err != nil {
		t.Fatal(err)
	}
	order := []int{0, 1, 2, 3, 4, 5}
	slices.SortStableFunc(order, func(a, b int) int {
		switch {
		case scores[a] > scores[b]:
			return -1
		case scores[a] < scores[b]:
			return 1
		}
		return 0
	})
	var want []string
	for _, i := range order[:3] {
		want = append(want, fused.Results[i].ChunkID)
	}
	if slices.Equal(want, chunkIDs(fused.Results[:3])) {
		t.Fatalf("the model's scores %v keep the fused order: pick another seed", scores)
	}
	got, err := on.Retrieve(t.Context(), q)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(chunkIDs(got.Results), want) {
		t.Errorf("reranked = %v, want %v (scores %v over %v)", chunkIDs(got.Results), want, scores, chunkIDs(fused.Results))
	}
	for i, r := range got.Results {
		if w := 1 / (1 + math.Exp(-float64(scores[order[i]]))); math.Abs(float64(r.Score)-w) > 1e-6 {
			t.Errorf("result %d: score %v, want sigmoid of the logit, %v", i, r.Score, w)
		}
	}
	if len(latency.seconds) != 1 || !(latency.seconds[0] > 0) {
		t.Errorf("latency observations = %v, want one", latency.seconds)
	}

	// Without question text there is nothing to rerank against: fused.
	noText := q
	noText.Question = " "
	plain, err := on.Retrieve(t.Context(), noText)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(chunkIDs(plain.Results), chunkIDs(fused.Results[:3])) {
		t.Errorf("without text = %v, want the fused %v", chunkIDs(plain.Results), chunkIDs(fused.Results[:3]))
	}

	// A failing reranker fails the query rather than answer unranked.
	bad := NewService(h.index, nil, WithReranker(failingReranker{}, 6, nil))
	if _, err := bad.Retrieve(t.Context(), q); !errors.Is(err, errRerank) {
		t.Errorf("failing reranker: err = %v", err)
	}
}

func TestRerankText(t *testing.T) {
	h := events.RetrievedChunk{Text: "body", Title: "Pump manual", Source: "docs/pump.md", HeadingPath: []string{"Care", "Filters"}, Page: 3}
	if got, want := rerankText(h), "Pump manual | docs/pump.md | Care | Filters | page 3 | \nbody"; got != want {
		t.Errorf("rerankText = %q, want %q", got, want)
	}
	if got := rerankText(events.RetrievedChunk{Text: "body"}); got != "body" {
		t.Errorf("rerankText without context = %q", got)
	}
}

var errRerank = errors.New("reranker down")

// failingReranker stands for a reranker whose call fails (a cancelled
// context, a broken model file).
type failingReranker struct{}

func (failingReranker) Score(context.Context, string, []string) ([]float32, error) {
	return nil, errRerank
}

// observations records what a prometheus.Observer is given.
type observations struct{ seconds []float64 }

func (o *observations) Observe(v float64) { o.seconds = append(o.seconds, v) }
