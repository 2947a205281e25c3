package embed

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/tributary-rag/tributary/pkg/daemon"
	"github.com/tributary-rag/tributary/pkg/encoder"
	"github.com/tributary-rag/tributary/pkg/events"
	"github.com/tributary-rag/tributary/pkg/inference"
	"github.com/tributary-rag/tributary/pkg/kafkatest"
	"github.com/tributary-rag/tributary/pkg/kafkatransport"
)

// synthEncoder loads a tiny random BERT (2 layers, hidden 32) written by
// encoder.Synthetic.
func synthEncoder(t testing.TB) *encoder.Encoder {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "synth-e5")
	s := encoder.Synthetic{
		Config: encoder.Config{Hidden: 32, Layers: 2, Heads: 4, Intermediate: 64, MaxPositions: 64},
		Vocab: []string{"employees", "accrue", "days", "of", "paid", "leave", "per", "month", ".", "query", "passage", ":",
			"how", "much", "?"},
		Seed: 3,
	}
	if err := s.Write(dir); err != nil {
		t.Fatal(err)
	}
	enc, err := encoder.Load(dir, encoder.Options{Threads: 1, Normalize: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(enc.Close)
	return enc
}

// inferenceServer serves enc on our own inference server's
// /v1/embeddings over real HTTP (key "sk-embed", bodies up to maxBody
// bytes) and counts the requests.
func inferenceServer(t testing.TB, enc *encoder.Encoder, maxBody int64) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	srv, err := inference.New(nil, nil, inference.WithEmbedder(enc, "synth-e5", 0),
		inference.WithAPIKeys("sk-embed"), inference.WithMaxBodyBytes(maxBody))
	if err != nil {
		t.Fatal(err)
	}
	var n atomic.Int64
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		srv.Handler().ServeHTTP(w, r)
	}))
	t.Cleanup(ts.Close)
	return ts, &n
}

// TestOpenAIAgainstInference: the openai backend against our own
// inference server gives the encoder's own vectors of the prefixed texts,
// batch by batch.
func TestOpenAIAgainstInference(t *testing.T) {
	ctx := context.Background()
	enc := synthEncoder(t)
	ts, requests := inferenceServer(t, enc, 4<<20)
	o, err := NewOpenAI(newSparse(t), OpenAIConfig{URL: ts.URL, Model: "synth-e5", APIKey: "sk-embed",
		QueryPrefix: "query: ", DocumentPrefix: "passage: ", Batch: 2})
	if err != nil {
		t.Fatal(err)
	}
	if got := o.Model(); got != "bm25-fnv1a-v2+synth-e5/0" {
		t.Errorf("Model() before the first answer = %q", got)
	}
	texts := []string{"employees accrue days of paid leave per month.", "paid leave", "month"}
	vs, err := o.EmbedDocuments(ctx, texts)
	if err != nil {
		t.Fatal(err)
	}
	if n := requests.Load(); n != 2 {
		t.Errorf("%d requests for 3 texts in batches of 2, want 2", n)
	}
	prefixed := make([]string, len(texts))
	for i, x := range texts {
		prefixed[i] = "passage: " + x
	}
	want, _, err := enc.Embed(ctx, prefixed)
	if err != nil {
		t.Fatal(err)
	}
	for i, v := range vs {
		if !slices.Equal(v.Dense, want[i]) || v.Sparse == nil || len(v.Sparse.Indices) == 0 {
			t.Errorf("text %d: dense %v..., want the encoder's %v...; sparse %+v", i, v.Dense[:2], want[i][:2], v.Sparse)
		}
	}
	q, err := o.EmbedQuery(ctx, "how much paid leave?")
	if err != nil {
		t.Fatal(err)
	}
	wq, _, _ := enc.Embed(ctx, []string{"query: how much paid leave?"})
	if !slices.Equal(q.Dense, wq[0]) {
		t.Errorf("query vector differs from the encoder's of the prefixed question")
	}
	if got := o.Model(); got != "bm25-fnv1a-v2+synth-e5/32" || o.Dim() != 32 {
		t.Errorf("Model() = %q, Dim() = %d; want the dimension learned from the answer", got, o.Dim())
	}

	// A configured dimension that the model does not have is a permanent
	// error; a refused key waits for the operator (Unavailable) and is not
	// retried by the client.
	wrong, _ := NewOpenAI(newSparse(t), OpenAIConfig{URL: ts.URL + "/v1", Model: "synth-e5", APIKey: "sk-embed", Dim: 384})
	if _, err := wrong.EmbedQuery(ctx, "month"); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "dimension 32, want 384") {
		t.Errorf("dimension mismatch: %v, want ErrInvalid naming both dimensions", err)
	}
	badKey, _ := NewOpenAI(newSparse(t), OpenAIConfig{URL: ts.URL + "/v1/embeddings", Model: "synth-e5", APIKey: "sk-secret-wrong"})
	before := requests.Load()
	_, err = badKey.EmbedQuery(ctx, "month")
	if !kafkatransport.IsUnavailable(err) || strings.Contains(err.Error(), "sk-secret-wrong") || requests.Load()-before != 1 {
		t.Errorf("refused key: %v after %d requests, want one request and an Unavailable error without the key", err, requests.Load()-before)
	}
}

// TestOpenAIErrors classifies the server's answers.
func TestOpenAIErrors(t *testing.T) {
	tests := []struct {
		name        string
		status      int
		body        string
		attempts    int64
		invalid     bool
		unavailable bool
	}{
		{"bad request", 400, `{"error":{"message":"input too long"}}`, 1, true, false},
		{"unprocessable", 422, `oops`, 1, true, false},
		{"rate limited", 429, `{"error":{"message":"slow down"}}`, 3, false, true},
		{"unavailable", 503, ``, 3, false, true},
		{"server error", 500, `boom`, 3, false, false},
		{"forbidden", 403, ``, 1, false, true},
		{"wrong count", 200, `{"data":[]}`, 3, false, false},
		{"not json", 200, `<html>`, 3, false, false},
		{"empty vector", 200, `{"data":[{"index":0,"embedding":[]}]}`, 1, true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var n atomic.Int64
			ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				n.Add(1)
				if r.Header.Get("Authorization") != "Bearer k" || r.URL.Path != "/v1/embeddings" {
					t.Errorf("request %s with Authorization %q", r.URL.Path, r.Header.Get("Authorization"))
				}
				w.WriteHeader(tt.status)
				_, _ = w.Write([]byte(tt.body))
			}))
			defer ts.Close()
			o, err := NewOpenAI(newSparse(t), OpenAIConfig{URL: ts.URL, Model: "m", APIKey: "k", Timeout: time.Second})
			if err != nil {
				t.Fatal(err)
			}
			_, err = o.EmbedDocuments(context.Background(), []string{"x"})
			if err == nil {
				t.Fatal("no error")
			}
			if errors.Is(err, ErrInvalid) != tt.invalid || kafkatransport.IsUnavailable(err) != tt.unavailable || n.Load() != tt.attempts {
				t.Errorf("err %v after %d attempts: invalid %v, unavailable %v; want %v, %v after %d",
					err, n.Load(), errors.Is(err, ErrInvalid), kafkatransport.IsUnavailable(err), tt.invalid, tt.unavailable, tt.attempts)
			}
		})
	}
}

func TestEmbeddingsURL(t *testing.T) {
	tests := []struct{ in, want string }{
		{"http://tei:8080", "http://tei:8080/v1/embeddings"},
		{"http://tei:8080/", "http://tei:8080/v1/embeddings"},
		{"https://api.example/v1", "https://api.example/v1/embeddings"},
		{"http://h/openai/v1/embeddings", "http://h/openai/v1/embeddings"},
		{"http://h/api?api-version=1", "http://h/api/v1/embeddings?api-version=1"},
	}
	for _, tt := range tests {
		if got, err := EmbeddingsURL(tt.in); err != nil || got != tt.want {
			t.Errorf("EmbeddingsURL(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
	for _, bad := range []string{"", "tei:8080", "ftp://h", "http://user:key@h", "http://"} {
		if _, err := EmbeddingsURL(bad); err == nil {
			t.Errorf("EmbeddingsURL(%q): no error", bad)
		}
	}
	if got := redactURL("https://h:1/v1?key=secret"); got != "https://h:1/v1" {
		t.Errorf("redactURL = %q", got)
	}
}

func TestOpenAISettings(t *testing.T) {
	s := DefaultSettings()
	s.EmbedURL = "http://localhost:1"
	s.EmbedURLBatch = 0
	s.EmbedAPIKey, s.EmbedAPIKeyFile = "a", "b"
	var p daemon.Problems
	s.Check(&p)
	for _, flag := range []string{"embed-model", "embed-url-batch", "embed-api-key-file"} {
		if err := p.Err(); err == nil || !strings.Contains(err.Error(), daemon.EnvName(flag)+" (--"+flag+")") {
			t.Errorf("Check: %v, want a problem with %s", err, daemon.EnvName(flag))
		}
	}
	keyFile := filepath.Join(t.TempDir(), "key")
	if err := os.WriteFile(keyFile, []byte("sk-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	s = DefaultSettings()
	s.EmbedURL, s.EmbedModel, s.EmbedAPIKeyFile = "http://localhost:1", "bge", keyFile
	var ok daemon.Problems
	s.Check(&ok)
	if err := ok.Err(); err != nil {
		t.Fatal(err)
	}
	e, err := s.embedder(newSparse(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	if o, isOpenAI := e.(*OpenAI); !isOpenAI || o.cfg.APIKey != "sk-file" || o.cfg.Batch != 32 {
		t.Errorf("embedder = %T %+v, want *OpenAI with the file's key", e, e)
	}
}

// TestKafkaOpenAI runs the service over Kafka with the openai backend on
// our own inference server: a chunk comes out with the server's vector,
// and a chunk the server refuses (413, too large) is dead-lettered with
// the reason.
func TestKafkaOpenAI(t *testing.T) {
	enc := synthEncoder(t)
	ts, _ := inferenceServer(t, enc, 2048)
	o, err := NewOpenAI(newSparse(t), OpenAIConfig{URL: ts.URL, Model: "synth-e5", APIKey: "sk-embed", Dim: 32})
	if err != nil {
		t.Fatal(err)
	}
	topics := cluster.CreatePrefixTopics(t, cluster.Prefix(t), 1)
	pub := kafkatransport.NewPublisher(cluster.Brokers(), kafkatransport.PublisherSource(EventSource))
	var svc Service = NewService(o, WithContext(false))
	svc = LoggingMiddleware(slog.New(slog.DiscardHandler))(svc)
	eps := MakeEndpoints(svc)
	v, err := events.NewValidator()
	if err != nil {
		t.Fatal(err)
	}
	sub := NewChunkSubscriber(cluster.Brokers(), topics, pub, eps, v,
		kafkatransport.SubscriberReaderConfig(func(c *kafka.ReaderConfig) { c.StartOffset = kafka.FirstOffset }))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- sub.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("subscriber Run: %v", err)
		}
		pub.Close()
	})

	text := "Employees accrue days of paid leave per month."
	good := events.ChunkCreated{ChunkID: events.ChunkID("acme", "handbook", 1, 0), DocumentID: "handbook", TenantID: "acme",
		Version: 1, ChunkCount: 1, Text: text, End: len(text), ContentHash: hashOf(text)}
	long := strings.Repeat("leave ", 400)
	bad := events.ChunkCreated{ChunkID: events.ChunkID("acme", "big", 1, 0), DocumentID: "big", TenantID: "acme",
		Version: 1, ChunkCount: 1, Text: long, End: len(long), ContentHash: hashOf(long)}
	gmsg, _ := inputEvent(t, topics.Chunks, "acme", good)
	bmsg, _ := inputEvent(t, topics.Chunks, "acme", bad)
	cluster.Produce(t, bmsg, gmsg)

	out := cluster.ReadN(t, topics.ChunksEmbedded, 1, 20*time.Second)
	if len(out) != 1 {
		t.Fatalf("%d chunk events, want 1", len(out))
	}
	c := checkOutput[events.ChunkEmbedded](t, v, out[0], gmsg, events.TypeChunkEmbedded, ChunkEventID(good.ChunkID, o.Model()))
	want, _, _ := enc.Embed(context.Background(), []string{text})
	if c.Model != "bm25-fnv1a-v2+synth-e5/32" || !slices.Equal(c.Dense, want[0]) || c.Sparse == nil {
		t.Errorf("chunk.embedded model %q, %d dims, sparse %v; want the server's vector", c.Model, len(c.Dense), c.Sparse != nil)
	}
	dead := cluster.ReadN(t, events.DLQ(topics.Chunks), 1, 20*time.Second)
	if len(dead) != 1 {
		t.Fatalf("%d dead letters, want 1", len(dead))
	}
	if r, e := kafkatest.Header(dead[0], kafkatransport.DLQHeaderReason), kafkatest.Header(dead[0], kafkatransport.DLQHeaderError); r != kafkatransport.ReasonPermanent || !strings.Contains(e, "HTTP 413") {
		t.Errorf("dead letter reason %q, error %q; want permanent with the server's 413", r, e)
	}
}

// TestRebuildReplaysChunks: after the service's own group has embedded
// the chunks, a rebuild subscriber in a group of its own embeds them all
// again from the topic's beginning with the new model.
func TestRebuildReplaysChunks(t *testing.T) {
	enc := synthEncoder(t)
	ts, _ := inferenceServer(t, enc, 4<<20)
	newModel, err := NewOpenAI(newSparse(t), OpenAIConfig{URL: ts.URL, Model: "synth-e5", APIKey: "sk-embed"})
	if err != nil {
		t.Fatal(err)
	}
	topics := cluster.CreatePrefixTopics(t, cluster.Prefix(t), 1)
	pub := kafkatransport.NewPublisher(cluster.Brokers(), kafkatransport.PublisherSource(EventSource))
	t.Cleanup(func() { pub.Close() })
	var msgs []kafka.Message
	for i, text := range []string{"paid leave per month", "office hours"} {
		c := events.ChunkCreated{ChunkID: events.ChunkID("acme", "handbook", 1, i), DocumentID: "handbook", TenantID: "acme",
			Version: 1, Index: i, ChunkCount: 2, Text: text, End: len(text), ContentHash: hashOf(text)}
		m, _ := inputEvent(t, topics.Chunks, "acme", c)
		msgs = append(msgs, m)
	}
	cluster.Produce(t, msgs...)
	run := func(sub *kafkatransport.Subscriber, want int) {
		t.Helper()
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- sub.Run(ctx) }()
		out := cluster.ReadN(t, topics.ChunksEmbedded, want, 20*time.Second)
		cancel()
		if err := <-done; err != nil {
			t.Fatalf("subscriber Run: %v", err)
		}
		if len(out) != want {
			t.Fatalf("%d chunk.embedded events, want %d", len(out), want)
		}
	}
	old := MakeEndpoints(NewService(newSparse(t)))
	run(NewChunkSubscriber(cluster.Brokers(), topics, pub, old, nil), 2)
	rebuilt := MakeEndpoints(NewService(newModel))
	run(NewRebuildSubscriber(cluster.Brokers(), topics, "embed-rebuild-synth", pub, rebuilt, nil), 4)
	out := cluster.ReadN(t, topics.ChunksEmbedded, 4, 5*time.Second)
	models := map[string]int{}
	for _, m := range out {
		var c events.ChunkEmbedded
		if _, err := events.Unmarshal(m, &c); err != nil {
			t.Fatal(err)
		}
		models[c.Model]++
	}
	if models["bm25-fnv1a-v2"] != 2 || models["bm25-fnv1a-v2+synth-e5/32"] != 2 {
		t.Errorf("models of the events: %v, want two of each", models)
	}

	var p daemon.Problems
	s := DefaultSettings()
	s.RebuildGroup = KafkaGroup
	s.Check(&p)
	if err := p.Err(); err == nil || !strings.Contains(err.Error(), "TRIBUTARY_REBUILD_GROUP") {
		t.Errorf("rebuild group %q: %v, want a problem", KafkaGroup, err)
	}
}

// BenchmarkOpenAIBackend embeds 32 chunk texts through the openai backend
// and our inference server (real HTTP on loopback, JSON floats) against
// the same encoder called directly: the cost of running the model behind
// an HTTP API.
func BenchmarkOpenAIBackend(b *testing.B) {
	enc := synthEncoder(b)
	ts, _ := inferenceServer(b, enc, 64<<20)
	o, err := NewOpenAI(newSparse(b), OpenAIConfig{URL: ts.URL, Model: "synth-e5", APIKey: "sk-embed"})
	if err != nil {
		b.Fatal(err)
	}
	texts := make([]string, 32)
	for i := range texts {
		texts[i] = strings.Repeat("employees accrue days of paid leave per month . ", 6)[:200+i]
	}
	ctx := context.Background()
	b.Run("direct", func(b *testing.B) {
		for b.Loop() {
			if _, _, err := enc.Embed(ctx, texts); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("http", func(b *testing.B) {
		for b.Loop() {
			if _, err := o.Embed(ctx, texts); err != nil {
				b.Fatal(err)
			}
		}
	})
}
