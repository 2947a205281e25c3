package vectordb

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/qdrant/go-client/qdrant"
)

// benchStore fills a store with n 64-dim points of 500 documents, with or
// without int8 quantization and on_disk originals.
func benchStore(b *testing.B, n int, quantized bool) (*Store, [][]float32) {
	b.Helper()
	s, err := Open(b.TempDir(), WithANNThreshold(1000))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	const dim = 64
	vp := &qdrant.VectorParams{Size: dim, Distance: qdrant.Distance_Cosine}
	if quantized {
		vp.OnDisk = qdrant.PtrOf(true)
		vp.QuantizationConfig = qdrant.NewQuantizationScalar(&qdrant.ScalarQuantization{Type: qdrant.QuantizationType_Int8, Quantile: qdrant.PtrOf(float32(0.99))})
	}
	ctx := context.Background()
	if err := s.CreateCollection(ctx, &qdrant.CreateCollection{CollectionName: "b", VectorsConfig: qdrant.NewVectorsConfig(vp)}); err != nil {
		b.Fatal(err)
	}
	r := rand.New(rand.NewPCG(1, 1))
	vec := func() []float32 {
		v := make([]float32, dim)
		for i := range v {
			v[i] = float32(r.NormFloat64())
		}
		return v
	}
	for lo := 0; lo < n; lo += 1000 {
		var ps []*qdrant.PointStruct
		for i := lo; i < min(lo+1000, n); i++ {
			ps = append(ps, &qdrant.PointStruct{Id: qdrant.NewIDNum(uint64(i)), Vectors: qdrant.NewVectorsDense(vec()),
				Payload: qdrant.NewValueMap(map[string]any{"doc": fmt.Sprint("d", i%500)})})
		}
		if _, err := s.Upsert(ctx, &qdrant.UpsertPoints{CollectionName: "b", Points: ps}); err != nil {
			b.Fatal(err)
		}
	}
	qs := make([][]float32, 64)
	for i := range qs {
		qs[i] = vec()
	}
	return s, qs
}

// BenchmarkQueryGroups: top 10 documents, 3 hits each, over 5000 points.
func BenchmarkQueryGroups(b *testing.B) {
	s, qs := benchStore(b, 5000, false)
	ctx := context.Background()
	i := 0
	for b.Loop() {
		if _, err := s.QueryGroups(ctx, &qdrant.QueryPointGroups{CollectionName: "b", Query: qdrant.NewQueryDense(qs[i%len(qs)]),
			GroupBy: "doc", Limit: qdrant.PtrOf(uint64(10)), GroupSize: qdrant.PtrOf(uint64(3))}); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

// BenchmarkQueryQuantized compares a float32 graph with an int8 graph
// (on_disk originals, oversampling 2, rescored) on 5000 points.
func BenchmarkQueryQuantized(b *testing.B) {
	for _, quantized := range []bool{false, true} {
		b.Run(fmt.Sprintf("int8=%v", quantized), func(b *testing.B) {
			s, qs := benchStore(b, 5000, quantized)
			ctx := context.Background()
			i := 0
			for b.Loop() {
				if _, err := s.Query(ctx, &qdrant.QueryPoints{CollectionName: "b", Query: qdrant.NewQueryDense(qs[i%len(qs)]), Limit: qdrant.PtrOf(uint64(10)),
					Params: &qdrant.SearchParams{Quantization: &qdrant.QuantizationSearchParams{Oversampling: qdrant.PtrOf(2.0)}}}); err != nil {
					b.Fatal(err)
				}
				i++
			}
		})
	}
}

// BenchmarkCollectionSnapshot writes a snapshot of 5000 points.
func BenchmarkCollectionSnapshot(b *testing.B) {
	s, _ := benchStore(b, 5000, false)
	ctx := context.Background()
	for b.Loop() {
		d, err := s.CreateSnapshot(ctx, "b")
		if err != nil {
			b.Fatal(err)
		}
		if err := s.DeleteSnapshot(ctx, "b", d.GetName()); err != nil {
			b.Fatal(err)
		}
	}
}
