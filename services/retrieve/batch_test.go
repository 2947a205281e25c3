package retrieve

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tributary-rag/tributary/pkg/events"
)

// ctxRecorder records announcements with the correlation id of the
// context they were emitted in.
type ctxRecorder struct {
	mu      sync.Mutex
	indexed []string
}

func (r *ctxRecorder) Indexed(ctx context.Context, d events.DocumentIndexed) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.indexed = append(r.indexed, fmt.Sprintf("%s v%d n%d by %s", d.DocumentID, d.Version, d.ChunkCount, events.CorrelationID(ctx)))
	return nil
}

// TestIndexChunksMatchesSequential indexes one sequence of chunks — two
// documents, a new version that supersedes the first, a stale replay and
// an invalid chunk — once with IndexChunk per chunk and once with one
// IndexChunks batch on another collection: the results, the errors, the
// announcements (with the completing chunk's context), the points left and
// the document states are the same.
func TestIndexChunksMatchesSequential(t *testing.T) {
	a1 := doc{tenant: "acme", id: "a", version: 1, texts: []string{"alpha one", "alpha two", "alpha three"}}.chunks()
	a2 := doc{tenant: "acme", id: "a", version: 2, texts: []string{"alpha new one", "alpha new two"}}.chunks()
	b1 := doc{tenant: "acme", id: "b", version: 1, texts: []string{"beta one", "beta two"}}.chunks()
	bad := a1[0]
	bad.ChunkID = "not-the-deterministic-id"
	seq := []events.ChunkEmbedded{a1[0], a1[1], a1[2], bad, b1[0], a2[0], a2[1], a1[1], b1[1]}
	want := []string{StatusPending, StatusPending, StatusIndexed, "error", StatusPending, StatusPending, StatusIndexed, StatusStale, StatusIndexed}

	type outcome struct {
		statuses  []string
		announced []string
		counts    []int
		states    []DocState
	}
	run := func(t *testing.T, batch bool) outcome {
		h := start(t)
		rec := &ctxRecorder{}
		svc := NewService(h.index, rec)
		ctxs := make([]context.Context, len(seq))
		for i := range seq {
			ctxs[i] = events.WithCorrelationID(t.Context(), fmt.Sprintf("corr-%d", i))
		}
		var o outcome
		if batch {
			chunks := make([]ContextChunk, len(seq))
			for i, c := range seq {
				chunks[i] = ContextChunk{Ctx: ctxs[i], Chunk: c}
			}
			// Through the middlewares, as the service is wired.
			wrapped := InstrumentingMiddleware(newTestMetrics(t))(LoggingMiddleware(slog.New(slog.DiscardHandler))(svc))
			results, errs, err := IndexChunks(t.Context(), wrapped, chunks)
			if err != nil {
				t.Fatalf("IndexChunks: %v", err)
			}
			for i := range seq {
				if errs[i] != nil {
					o.statuses = append(o.statuses, "error")
				} else {
					o.statuses = append(o.statuses, results[i].Status)
				}
			}
		} else {
			for i, c := range seq {
				res, err := svc.IndexChunk(ctxs[i], c)
				if err != nil {
					o.statuses = append(o.statuses, "error")
				} else {
					o.statuses = append(o.statuses, res.Status)
				}
			}
		}
		rec.mu.Lock()
		o.announced = append(o.announced, rec.indexed...)
		rec.mu.Unlock()
		o.counts = []int{h.count("acme", "a", 1), h.count("acme", "a", 2), h.count("acme", "b", 1)}
		for _, id := range []string{"a", "b"} {
			st, err := h.index.State(t.Context(), "acme", id)
			if err != nil {
				t.Fatal(err)
			}
			o.states = append(o.states, st)
		}
		return o
	}
	one := run(t, false)
	batched := run(t, true)

	if fmt.Sprint(one.statuses) != fmt.Sprint(want) {
		t.Errorf("sequential statuses %v, want %v", one.statuses, want)
	}
	if fmt.Sprint(batched.statuses) != fmt.Sprint(want) {
		t.Errorf("batched statuses %v, want %v", batched.statuses, want)
	}
	wantAnnounced := "[a v1 n3 by corr-2 a v2 n2 by corr-6 b v1 n2 by corr-8]"
	for name, o := range map[string]outcome{"sequential": one, "batched": batched} {
		if got := fmt.Sprint(o.announced); got != wantAnnounced {
			t.Errorf("%s announced %s, want %s", name, got, wantAnnounced)
		}
		if got := fmt.Sprint(o.counts); got != "[0 2 2]" {
			t.Errorf("%s points of a v1, a v2, b v1 = %s, want [0 2 2]", name, got)
		}
	}
	if fmt.Sprint(one.states) != fmt.Sprint(batched.states) {
		t.Errorf("states: sequential %+v, batched %+v", one.states, batched.states)
	}
}

func newTestMetrics(t *testing.T) *Metrics {
	t.Helper()
	m, err := NewMetrics(prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	return m
}
