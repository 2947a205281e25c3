package embed

import (
	"context"
	"hash/fnv"
	"math"
	"slices"
	"testing"
	"time"

	"github.com/tributary-rag/tributary/pkg/events"
	"github.com/tributary-rag/tributary/pkg/kafkatest"
)

func newSparse(t testing.TB, opts ...SparseOption) *Sparse {
	t.Helper()
	s, err := NewSparse(opts...)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// weights maps each token's index to its value in v.
func weights(t *testing.T, v *events.SparseVector, tokens ...string) map[string]float32 {
	t.Helper()
	if len(v.Indices) != len(v.Values) {
		t.Fatalf("vector has %d indices and %d values", len(v.Indices), len(v.Values))
	}
	out := make(map[string]float32, len(tokens))
	for _, tok := range tokens {
		i, ok := slices.BinarySearch(v.Indices, TokenIndex([]byte(tok)))
		if !ok {
			t.Fatalf("token %q (index %d) not in vector %v", tok, TokenIndex([]byte(tok)), v.Indices)
		}
		out[tok] = v.Values[i]
	}
	return out
}

func near(a, b float64) bool { return math.Abs(a-b) < 1e-5 }

func TestTokenIndexIsFNV1a(t *testing.T) {
	tests := []struct {
		tok  string
		want uint32
	}{
		// Published FNV-1a 32-bit test vectors.
		{"", 0x811c9dc5},
		{"a", 0xe40c292c},
		{"foobar", 0xbf9cf968},
	}
	for _, tt := range tests {
		if got := TokenIndex([]byte(tt.tok)); got != tt.want {
			t.Errorf("TokenIndex(%q) = %#x, want %#x", tt.tok, got, tt.want)
		}
	}
	for _, tok := range []string{"年假", "policy", "gpu", "ünïcode"} {
		h := fnv.New32a()
		h.Write([]byte(tok))
		if got, want := TokenIndex([]byte(tok)), h.Sum32(); got != want {
			t.Errorf("TokenIndex(%q) = %#x, hash/fnv says %#x", tok, got, want)
		}
	}
}

func TestDocumentWeights(t *testing.T) {
	tests := []struct {
		name  string
		opts  []SparseOption
		text  string
		want  map[string]float64
		terms int
	}{
		// dl = 3, norm = 1.2·(0.25 + 0.75·3/128) = 0.3210938
		{"bm25 defaults", nil, "Leave leave policy", map[string]float64{"leave": 1.8956580, "policy": 1.6652868}, 2},
		// b = 0: no length normalization, norm = k1 = 2
		{"b zero", []SparseOption{WithBM25(2, 0, 10)}, "a b b b c c c c c c", map[string]float64{"b": 1.8}, 2},
		{"stemming merges plurals", nil, "policy policies", map[string]float64{"policy": 2 * 2.2 / (2 + 1.2*(0.25+0.75*2.0/128))}, 1},
		{"chinese bigrams counted", nil, "年假年假", map[string]float64{"年假": 2 * 2.2 / (2 + 1.2*(0.25+0.75*3.0/128)), "假年": 2.2 / (1 + 1.2*(0.25+0.75*3.0/128))}, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := newSparse(t, tt.opts...).Document(tt.text)
			if len(v.Indices) != tt.terms {
				t.Fatalf("Document(%q) has %d terms, want %d", tt.text, len(v.Indices), tt.terms)
			}
			tokens := make([]string, 0, len(tt.want))
			for tok := range tt.want {
				tokens = append(tokens, tok)
			}
			got := weights(t, v, tokens...)
			for tok, want := range tt.want {
				if !near(float64(got[tok]), want) {
					t.Errorf("Document(%q)[%q] = %v, want %v", tt.text, tok, got[tok], want)
				}
			}
		})
	}
}

func TestDocumentWeightProperties(t *testing.T) {
	s := newSparse(t)
	short := weights(t, s.Document("gpu memory"), "gpu")["gpu"]
	long := weights(t, s.Document("gpu memory "+longFiller(300)), "gpu")["gpu"]
	if !(long < short) {
		t.Errorf("weight of one occurrence in a long chunk %v, want below %v in a short one", long, short)
	}
	once := weights(t, s.Document("gpu "+longFiller(50)), "gpu")["gpu"]
	twice := weights(t, s.Document("gpu gpu "+longFiller(49)), "gpu")["gpu"]
	many := weights(t, s.Document(repeat("gpu ", 1000)), "gpu")["gpu"]
	if !(once < twice && twice < many && many < DefaultK1+1) {
		t.Errorf("weights for tf 1, 2, 1000 = %v, %v, %v: want increasing and saturating below k1+1", once, twice, many)
	}
	if v := s.Document("👍 ... —"); len(v.Indices) != 0 || v.Indices == nil || v.Values == nil {
		t.Errorf("Document of text without tokens = %+v, want empty non-nil lists", v)
	}
}

func longFiller(n int) string {
	b := make([]byte, 0, n*6)
	for i := range n {
		b = append(b, "w"...)
		b = append(b, byte('a'+i%26), byte('a'+i/26%26))
		b = append(b, ' ')
	}
	return string(b)
}

func repeat(s string, n int) string {
	b := make([]byte, 0, len(s)*n)
	for range n {
		b = append(b, s...)
	}
	return string(b)
}

func TestQueryWeightsAreBinary(t *testing.T) {
	s := newSparse(t)
	v := s.Query("年假 年假 policy policies? The leave")
	got := weights(t, v, "年假", "policy", "leave")
	if len(v.Indices) != 3 {
		t.Fatalf("Query has %d terms %v, want 3 (年假, policy, leave)", len(v.Indices), v.Indices)
	}
	for tok, w := range got {
		if w != 1 {
			t.Errorf("Query weight of %q = %v, want 1", tok, w)
		}
	}
}

func TestNewSparseValidates(t *testing.T) {
	tests := []struct {
		k1, b, avgdl float64
		ok           bool
	}{
		{1.2, 0.75, 128, true},
		{0.1, 0, 1, true},
		{2, 1, 1000, true},
		{0, 0.75, 128, false},
		{1.2, -0.1, 128, false},
		{1.2, 1.1, 128, false},
		{1.2, 0.75, 0, false},
		{math.NaN(), 0.75, 128, false},
		{1.2, 0.75, math.Inf(1), false},
	}
	for _, tt := range tests {
		_, err := NewSparse(WithBM25(tt.k1, tt.b, tt.avgdl))
		if (err == nil) != tt.ok {
			t.Errorf("NewSparse(k1=%v, b=%v, avgdl=%v) error = %v, want ok=%v", tt.k1, tt.b, tt.avgdl, err, tt.ok)
		}
	}
}

func TestEmbedderInterface(t *testing.T) {
	var e Embedder = newSparse(t)
	ctx := context.Background()
	texts := []string{"employee leave policy", "员工年假制度", ""}
	vs, err := e.EmbedDocuments(ctx, texts)
	if err != nil || len(vs) != len(texts) {
		t.Fatalf("EmbedDocuments = %d vectors, %v; want %d", len(vs), err, len(texts))
	}
	for i, v := range vs {
		if v.Dense != nil || v.Sparse == nil {
			t.Errorf("vector %d = %+v, want sparse only", i, v)
		}
	}
	if len(vs[0].Sparse.Indices) != 3 || len(vs[1].Sparse.Indices) != 5 || len(vs[2].Sparse.Indices) != 0 {
		t.Errorf("terms = %d, %d, %d; want 3, 5, 0", len(vs[0].Sparse.Indices), len(vs[1].Sparse.Indices), len(vs[2].Sparse.Indices))
	}
	q, err := e.EmbedQuery(ctx, "leave policy")
	if err != nil || len(q.Sparse.Indices) != 2 {
		t.Fatalf("EmbedQuery = %+v, %v", q, err)
	}
	// The query's terms are among the document's: their dot product is
	// positive; with an unrelated document it is zero.
	if dot(q.Sparse, vs[0].Sparse) <= 0 || dot(q.Sparse, vs[1].Sparse) != 0 {
		t.Errorf("dot products %v and %v, want positive and zero", dot(q.Sparse, vs[0].Sparse), dot(q.Sparse, vs[1].Sparse))
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := e.EmbedDocuments(cctx, texts); err == nil {
		t.Error("EmbedDocuments on a cancelled context succeeded")
	}
	if e.Model() != SparseModel {
		t.Errorf("Model() = %q", e.Model())
	}
}

func dot(a, b *events.SparseVector) float64 {
	var s float64
	for i, idx := range a.Indices {
		if j, ok := slices.BinarySearch(b.Indices, idx); ok {
			s += float64(a.Values[i]) * float64(b.Values[j])
		}
	}
	return s
}

// TestDeterministicOutput checks that a chunk embedded twice, by two
// embedders (as two replicas would), gives the same event id and the same
// payload bytes.
func TestDeterministicOutput(t *testing.T) {
	chunk := events.ChunkCreated{
		ChunkID: events.ChunkID("acme", "handbook", 2, 7), DocumentID: "handbook", TenantID: "acme",
		Version: 2, Index: 7, ChunkCount: 9, Text: "Employees accrue 1.5 days of leave per month. 员工每月累积1.5天年假。",
		Title: "Handbook", Groups: []string{"staff"}, HeadingPath: []string{"Leave"}, ContentHash: "sha256:00",
	}
	encode := func() ([]byte, string) {
		svc := NewService(newSparse(t))
		out, err := svc.EmbedChunk(context.Background(), chunk)
		if err != nil {
			t.Fatal(err)
		}
		ctx := events.WithTenant(context.Background(), "acme")
		msgs, err := EncodeChunkEmbedded("t", time.Now)(ctx, EmbedChunkResponse{Embedded: out})
		if err != nil || len(msgs) != 1 {
			t.Fatalf("encode = %d messages, %v", len(msgs), err)
		}
		return msgs[0].Value, kafkatest.Header(msgs[0], events.HeaderID)
	}
	v1, id1 := encode()
	v2, id2 := encode()
	if string(v1) != string(v2) || id1 != id2 {
		t.Fatalf("two encodings differ: ids %s / %s\n%s\n%s", id1, id2, v1, v2)
	}
	if id1 != ChunkEventID(chunk.ChunkID, SparseModel) || id1 == ChunkEventID(events.ChunkID("acme", "handbook", 2, 8), SparseModel) {
		t.Errorf("event id %s is not the chunk's deterministic id", id1)
	}
	if QueryEventID("acme", "r1", SparseModel) != QueryEventID("acme", "r1", SparseModel) ||
		QueryEventID("acme", "r1", SparseModel) == QueryEventID("globex", "r1", SparseModel) {
		t.Error("query event ids are not deterministic per tenant and request")
	}
}
