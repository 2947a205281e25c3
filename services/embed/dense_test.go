package embed

import (
	"context"
	"errors"
	"log/slog"
	"math"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/segmentio/kafka-go"

	"github.com/tributary-rag/tributary/pkg/encoder"
	"github.com/tributary-rag/tributary/pkg/events"
	"github.com/tributary-rag/tributary/pkg/kafkatransport"
)

// denseModel writes a tiny random BERT (2 layers, hidden 32) with e5-style
// prompts and returns its directory.
func denseModel(t testing.TB, maxPos int) string {
	t.Helper()
	dir := t.TempDir()
	s := encoder.Synthetic{
		Config: encoder.Config{Hidden: 32, Layers: 2, Heads: 4, Intermediate: 64, MaxPositions: maxPos},
		Vocab: []string{"employees", "accrue", "days", "of", "paid", "leave", "per", "month", ".", "query", "passage", ":",
			"how", "much", "?", "年", "假"},
		Seed: 11, Prompts: map[string]string{"query": "query: ", "passage": "passage: "},
	}
	if err := s.Write(dir); err != nil {
		t.Fatal(err)
	}
	return dir
}

func newHybrid(t testing.TB, maxPos int, reg prometheus.Registerer) (*Hybrid, *encoder.Encoder) {
	t.Helper()
	enc, err := encoder.Load(denseModel(t, maxPos), encoder.Options{Threads: 2, Normalize: true})
	if err != nil {
		t.Fatal(err)
	}
	h, err := NewHybrid(newSparse(t), enc, reg)
	if err != nil {
		t.Fatal(err)
	}
	return h, enc
}

func unitNorm(v []float32) bool {
	var s float64
	for _, a := range v {
		s += float64(a) * float64(a)
	}
	return math.Abs(s-1) < 1e-5
}

func TestHybridEmbedder(t *testing.T) {
	reg := prometheus.NewRegistry()
	h, enc := newHybrid(t, 64, reg)
	ctx := context.Background()
	text := "Employees accrue days of paid leave per month."
	docs, err := h.EmbedDocuments(ctx, []string{text, "how much?"})
	if err != nil {
		t.Fatal(err)
	}
	q, err := h.EmbedQuery(ctx, text)
	if err != nil {
		t.Fatal(err)
	}
	sparse := newSparse(t)
	if want := sparse.Document(text); !slices.Equal(docs[0].Sparse.Indices, want.Indices) || !slices.Equal(docs[0].Sparse.Values, want.Values) {
		t.Errorf("sparse part %+v, want the sparse embedder's %+v", docs[0].Sparse, want)
	}
	if q.Sparse == nil || len(q.Sparse.Indices) == 0 {
		t.Error("query without a sparse part")
	}
	// Documents and queries get the model's own prompts.
	want, _, err := enc.Embed(ctx, []string{"passage: " + text, "query: " + text})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(docs[0].Dense, want[0]) || !slices.Equal(q.Dense, want[1]) {
		t.Error("dense vectors are not the prompted texts' embeddings")
	}
	if slices.Equal(docs[0].Dense, q.Dense) {
		t.Error("a query and a document of the same text embed the same despite different prompts")
	}
	for _, v := range [][]float32{docs[0].Dense, docs[1].Dense, q.Dense} {
		if len(v) != 32 || !unitNorm(v) {
			t.Errorf("dense vector of %d dims, unit norm %v", len(v), unitNorm(v))
		}
	}
	if m := h.Model(); !strings.HasPrefix(m, sparse.Model()+"+") || !strings.HasSuffix(m, "/32") {
		t.Errorf("Model() = %q", m)
	}
	if h.Dim() != 32 {
		t.Errorf("Dim() = %d", h.Dim())
	}

	// Texts cut at the model's maximum length are counted.
	short, _ := newHybrid(t, 6, prometheus.NewRegistry())
	if _, err := short.EmbedDocuments(ctx, []string{text, "how"}); err != nil {
		t.Fatal(err)
	}
	if n := testutil.ToFloat64(short.truncated); n != 1 {
		t.Errorf("truncated = %v, want 1", n)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := h.EmbedQuery(cctx, "x"); err == nil {
		t.Error("EmbedQuery with a cancelled context: no error")
	}
}

func TestWithDense(t *testing.T) {
	s := DefaultSettings()
	sparse := newSparse(t)
	if e, err := s.withDense(sparse, nil); err != nil || e != Embedder(sparse) {
		t.Errorf("no embed model: %v, %v; want the sparse embedder", e, err)
	}
	s.EmbedModel = t.TempDir()
	if _, err := s.withDense(sparse, nil); err == nil || !strings.Contains(err.Error(), "embed-model") || !strings.Contains(err.Error(), "config.json") {
		t.Errorf("empty model directory: %v, want an error naming embed-model and config.json", err)
	}
	s.EmbedModel = denseModel(t, 64)
	e, err := s.withDense(sparse, prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := e.(*Hybrid); !ok {
		t.Errorf("with a model: %T, want *Hybrid", e)
	}
}

// TestKafkaHybrid runs the service with a dense model over Kafka: chunk and
// query events carry both vectors and pass their schemas.
func TestKafkaHybrid(t *testing.T) {
	h, _ := newHybrid(t, 64, nil)
	topics := cluster.CreatePrefixTopics(t, cluster.Prefix(t), 1)
	pub := kafkatransport.NewPublisher(cluster.Brokers(), kafkatransport.PublisherSource(EventSource))
	var svc Service = NewService(h)
	svc = LoggingMiddleware(slog.New(slog.DiscardHandler))(svc)
	eps := MakeEndpoints(svc)
	v, err := events.NewValidator()
	if err != nil {
		t.Fatal(err)
	}
	opts := []kafkatransport.SubscriberOption{
		kafkatransport.SubscriberReaderConfig(func(c *kafka.ReaderConfig) { c.StartOffset = kafka.FirstOffset }),
	}
	subs := []*kafkatransport.Subscriber{
		NewChunkSubscriber(cluster.Brokers(), topics, pub, eps, v, opts...),
		NewQuerySubscriber(cluster.Brokers(), topics, pub, eps, v, opts...),
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, len(subs))
	for _, s := range subs {
		go func() { done <- s.Run(ctx) }()
	}
	t.Cleanup(func() {
		cancel()
		for range subs {
			if err := <-done; err != nil {
				t.Errorf("subscriber Run: %v", err)
			}
		}
		pub.Close()
	})

	text := "Employees accrue days of paid leave per month."
	chunk := events.ChunkCreated{ChunkID: events.ChunkID("acme", "handbook", 1, 0), DocumentID: "handbook", TenantID: "acme",
		Version: 1, ChunkCount: 1, Text: text, End: len(text), ContentHash: hashOf(text)}
	cmsg, _ := inputEvent(t, topics.Chunks, "acme", chunk)
	query := events.QueryApproved{Query: events.Query{RequestID: "req-1", TenantID: "acme", Question: "how much paid leave?", TopK: 5}, Policy: "default@1"}
	qmsg, _ := inputEvent(t, topics.QueriesApproved, "acme", query)
	cluster.Produce(t, cmsg, qmsg)

	out := cluster.ReadN(t, topics.ChunksEmbedded, 1, 20*time.Second)
	qout := cluster.ReadN(t, topics.QueriesEmbedded, 1, 20*time.Second)
	if len(out) != 1 || len(qout) != 1 {
		t.Fatalf("%d chunk and %d query events, want 1 and 1", len(out), len(qout))
	}
	c := checkOutput[events.ChunkEmbedded](t, v, out[0], cmsg, events.TypeChunkEmbedded, ChunkEventID(chunk.ChunkID, h.Model()))
	q := checkOutput[events.QueryEmbedded](t, v, qout[0], qmsg, events.TypeQueryEmbedded, QueryEventID("acme", "req-1", h.Model()))
	for name, e := range map[string]struct {
		model  string
		dense  []float32
		sparse *events.SparseVector
	}{"chunk": {c.Model, c.Dense, c.Sparse}, "query": {q.Model, q.Dense, q.Sparse}} {
		if e.model != h.Model() || len(e.dense) != 32 || !unitNorm(e.dense) || e.sparse == nil || len(e.sparse.Indices) == 0 {
			t.Errorf("%s event: model %q, %d dense dims, sparse %+v", name, e.model, len(e.dense), e.sparse)
		}
	}
}

// countingEncoder counts the encoder calls (forward passes) of a real
// encoder.
type countingEncoder struct {
	enc    *encoder.Encoder
	passes atomic.Int64
}

func (c *countingEncoder) Embed(ctx context.Context, texts []string) ([][]float32, encoder.Stats, error) {
	c.passes.Add(1)
	return c.enc.Embed(ctx, texts)
}

// TestDenseBatching proves that concurrent calls share one forward pass
// and get the vectors they would get alone.
func TestDenseBatching(t *testing.T) {
	h, enc := newHybrid(t, 64, nil)
	texts := []string{"how much paid leave ?", "employees accrue", "年假", "days of leave per month .", "query", "leave", "paid leave ?", "month"}
	// A long window: the pass starts when the last call arrives (max
	// texts reached), however slowly the goroutines start.
	WithDenseBatching(time.Minute, len(texts)+1)(h.batch)
	counter := &countingEncoder{enc: enc}
	h.batch.model = counter
	got := make([]Vector, len(texts))
	var wg sync.WaitGroup
	for i := range texts {
		wg.Go(func() {
			var err error
			if i == 0 {
				// One call with two texts: calls are joined whole.
				var vs []Vector
				vs, err = h.EmbedDocuments(context.Background(), []string{texts[0], "leave"})
				if err == nil {
					got[0] = vs[0]
				}
			} else {
				got[i], err = h.EmbedQuery(context.Background(), texts[i])
			}
			if err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if n := counter.passes.Load(); n != 1 {
		t.Fatalf("%d concurrent calls ran %d forward passes, want 1", len(texts), n)
	}
	for i, text := range texts {
		prompt := "query: "
		if i == 0 {
			prompt = "passage: "
		}
		alone, _, err := enc.Embed(context.Background(), []string{prompt + text})
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(got[i].Dense, alone[0]) {
			t.Errorf("text %d: batched vector differs from the unbatched one", i)
		}
	}

	// Without a window a lone call runs at once, in its own pass.
	WithDenseBatching(0, 64)(h.batch)
	start := time.Now()
	if _, err := h.EmbedQuery(context.Background(), "leave"); err != nil {
		t.Fatal(err)
	}
	if n := counter.passes.Load(); n != 2 || time.Since(start) > 10*time.Second {
		t.Fatalf("passes = %d after a lone call", n)
	}

	// A call whose context ends while it waits returns its error and is
	// left out of the pass.
	WithDenseBatching(time.Minute, 64)(h.batch)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, err := h.EmbedQuery(ctx, "leave"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want the deadline", err)
	}
}
