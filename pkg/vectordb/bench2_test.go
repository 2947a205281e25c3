package vectordb

import (
	"context"
	"strconv"
	"testing"

	"github.com/qdrant/go-client/qdrant"
)

// BenchmarkFilteredANN measures graph search under a broad (50%) filter.
func BenchmarkFilteredANN(b *testing.B) {
	ctx := context.Background()
	const n, dim = 10000, 128
	s, err := Open(b.TempDir(), WithANNThreshold(1000))
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	if err := s.CreateCollection(ctx, &qdrant.CreateCollection{CollectionName: "b", VectorsConfig: qdrant.NewVectorsConfig(&qdrant.VectorParams{Size: dim, Distance: qdrant.Distance_Cosine})}); err != nil {
		b.Fatal(err)
	}
	if _, err := s.CreateFieldIndex(ctx, &qdrant.CreateFieldIndexCollection{CollectionName: "b", FieldName: "half", FieldType: qdrant.FieldType_FieldTypeInteger.Enum()}); err != nil {
		b.Fatal(err)
	}
	vecs := benchVectors(n, dim, 1)
	var pts []*qdrant.PointStruct
	for i, v := range vecs {
		pts = append(pts, &qdrant.PointStruct{Id: qdrant.NewIDNum(uint64(i)), Vectors: qdrant.NewVectorsDense(v), Payload: qdrant.NewValueMap(map[string]any{"half": int64(i % 2), "tenant": "x"})})
	}
	if _, err := s.Upsert(ctx, &qdrant.UpsertPoints{CollectionName: "b", Points: pts}); err != nil {
		b.Fatal(err)
	}
	qs := benchVectors(64, dim, 2)
	f := &qdrant.Filter{Must: []*qdrant.Condition{qdrant.NewMatchInt("half", 1), qdrant.NewMatchKeyword("tenant", "x")}}
	b.ResetTimer()
	for i := range b.N {
		if _, err := s.Query(ctx, &qdrant.QueryPoints{CollectionName: "b", Query: qdrant.NewQueryDense(qs[i%len(qs)]), Filter: f}); err != nil {
			b.Fatal(err)
		}
	}
}

// sparseBenchStore holds n documents of 10 chunks each with a sparse vector
// whose first terms every chunk shares (as "widget" and "grams" in the
// pipeline benchmark) and payload indexes on tenant and document id, as
// the retrieve service creates them.
func sparseBenchStore(b *testing.B, docs int) *Store {
	b.Helper()
	ctx := context.Background()
	s, err := Open(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	if err := s.CreateCollection(ctx, &qdrant.CreateCollection{CollectionName: "b",
		SparseVectorsConfig: qdrant.NewSparseVectorsConfig(map[string]*qdrant.SparseVectorParams{"text": {Modifier: qdrant.Modifier_Idf.Enum()}})}); err != nil {
		b.Fatal(err)
	}
	for _, f := range []string{"tenant", "document_id"} {
		if _, err := s.CreateFieldIndex(ctx, &qdrant.CreateFieldIndexCollection{CollectionName: "b", FieldName: f, FieldType: qdrant.FieldType_FieldTypeKeyword.Enum()}); err != nil {
			b.Fatal(err)
		}
	}
	var pts []*qdrant.PointStruct
	for d := range docs {
		for c := range 10 {
			id := uint64(d*10 + c)
			idx := []uint32{1, 2, 3, uint32(100 + id%997), uint32(2000 + d)}
			val := []float32{1, 1, 0.5, 2, 1}
			pts = append(pts, &qdrant.PointStruct{Id: qdrant.NewIDNum(id),
				Vectors: qdrant.NewVectorsMap(map[string]*qdrant.Vector{"text": qdrant.NewVectorSparse(idx, val)}),
				Payload: qdrant.NewValueMap(map[string]any{"tenant": []string{"acme", "globex"}[d%2], "document_id": "doc-" + strconv.Itoa(d), "groups": []any{"staff"}})})
		}
	}
	if _, err := s.Upsert(ctx, &qdrant.UpsertPoints{CollectionName: "b", Points: pts}); err != nil {
		b.Fatal(err)
	}
	return s
}

// BenchmarkSparseFilteredQuery is retrieve's question query: top 8 by a
// sparse vector whose common terms hit every chunk, filtered by tenant
// (half the chunks) AND group.
func BenchmarkSparseFilteredQuery(b *testing.B) {
	s := sparseBenchStore(b, 1000)
	ctx := context.Background()
	f := &qdrant.Filter{Must: []*qdrant.Condition{qdrant.NewMatchKeyword("tenant", "acme"), qdrant.NewMatchKeywords("groups", "staff", "hr")}}
	b.ResetTimer()
	for i := range b.N {
		q := qdrant.NewQuerySparse([]uint32{1, 2, uint32(100 + i%997)}, []float32{1, 1, 1})
		if _, err := s.Query(ctx, &qdrant.QueryPoints{CollectionName: "b", Query: q, Using: qdrant.PtrOf("text"), Filter: f, Limit: qdrant.PtrOf(uint64(8))}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCountByDocument is retrieve's per-document count (document id
// is indexed): it should cost the document's points, not the collection's.
func BenchmarkCountByDocument(b *testing.B) {
	s := sparseBenchStore(b, 1000)
	ctx := context.Background()
	b.ResetTimer()
	for i := range b.N {
		f := &qdrant.Filter{Must: []*qdrant.Condition{qdrant.NewMatchKeyword("tenant", "acme"), qdrant.NewMatchKeyword("document_id", "doc-"+strconv.Itoa(2*(i%500)))}}
		n, err := s.Count(ctx, &qdrant.CountPoints{CollectionName: "b", Filter: f})
		if err != nil || n != 10 {
			b.Fatalf("Count = %d, %v; want 10", n, err)
		}
	}
}
