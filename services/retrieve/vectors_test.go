package retrieve

import (
	"slices"
	"testing"

	"github.com/tributary-rag/tributary/pkg/events"
)

// TestSearchVectors: hybrid finds both the chunk that shares the query's
// words and the one whose dense vector matches it; dense only finds the
// dense match first, sparse only never finds the chunk without the words.
func TestSearchVectors(t *testing.T) {
	h := start(t)
	const question = "how often is the pump serviced"
	lexical := doc{tenant: "acme", id: "lexical", version: 1, texts: []string{"the pump is serviced how often the manual says"}}
	semantic := doc{tenant: "acme", id: "semantic", version: 1, texts: []string{"maintenance every 37 days"}}
	qd := denseOf(question)
	var chunks []events.ChunkEmbedded
	for _, d := range []doc{lexical, semantic} {
		c := d.chunks()[0]
		c.Dense = make([]float32, len(qd))
		for i, x := range qd {
			if d.id == "semantic" {
				c.Dense[i] = x // the dense match
			} else {
				c.Dense[i] = -x // the opposite direction
			}
		}
		chunks = append(chunks, c)
	}
	if err := h.index.UpsertMany(t.Context(), chunks); err != nil {
		t.Fatal(err)
	}
	q := query("acme", nil, question, 2)
	q.Dense = qd
	for _, c := range []struct {
		vectors string
		want    []string // document ids, in order when first matters
		first   string
	}{
		{VectorsHybrid, []string{"lexical", "semantic"}, ""},
		{VectorsDense, nil, "semantic"},
		{VectorsSparse, []string{"lexical"}, "lexical"},
	} {
		res, err := NewService(h.index, nil, WithSearchVectors(c.vectors)).Retrieve(t.Context(), q)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, r := range res.Results {
			got = append(got, r.DocumentID)
		}
		if c.first != "" && (len(got) == 0 || got[0] != c.first) {
			t.Errorf("%s: results %v, want %s first", c.vectors, got, c.first)
		}
		if c.want != nil {
			slices.Sort(got)
			if !slices.Equal(got, c.want) {
				t.Errorf("%s: documents %v, want %v", c.vectors, got, c.want)
			}
		}
	}
}
