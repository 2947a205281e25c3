package vectordb

import (
	"context"
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
