package vectordb

import (
	"context"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/qdrant/go-client/qdrant"
	"google.golang.org/grpc/codes"
)

// TestQuantizedOnDisk: a collection with int8 quantization and on_disk
// vectors keeps its rows in a mapped file, searches its (quantized) graph
// with oversampling and rescoring as well as exact search does, and keeps
// doing so after a restart and after quantization is switched off.
func TestQuantizedOnDisk(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := mustOpen(t, dir, WithANNThreshold(500))
	const n, dim = 3000, 32
	err := s.CreateCollection(ctx, &qdrant.CreateCollection{CollectionName: "q",
		VectorsConfig: qdrant.NewVectorsConfig(&qdrant.VectorParams{Size: dim, Distance: qdrant.Distance_Cosine, OnDisk: qdrant.PtrOf(true),
			QuantizationConfig: qdrant.NewQuantizationScalar(&qdrant.ScalarQuantization{Type: qdrant.QuantizationType_Int8, Quantile: qdrant.PtrOf(float32(0.99)), AlwaysRam: qdrant.PtrOf(true)})})})
	if err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(1, 2))
	centers := make([][]float32, 20)
	for i := range centers {
		centers[i] = make([]float32, dim)
		for j := range centers[i] {
			centers[i][j] = float32(r.NormFloat64())
		}
	}
	vec := func() []float32 {
		c := centers[r.IntN(len(centers))]
		v := make([]float32, dim)
		for j := range v {
			v[j] = c[j] + 0.4*float32(r.NormFloat64())
		}
		return v
	}
	var ps []*qdrant.PointStruct
	for i := range n {
		ps = append(ps, &qdrant.PointStruct{Id: qdrant.NewIDNum(uint64(i)), Vectors: qdrant.NewVectorsDense(vec())})
	}
	if _, err := s.Upsert(ctx, &qdrant.UpsertPoints{CollectionName: "q", Points: ps, Wait: wait()}); err != nil {
		t.Fatal(err)
	}
	queries := make([][]float32, 40)
	for i := range queries {
		queries[i] = vec()
	}
	check := func(s *Store, wantQuantized bool) {
		t.Helper()
		c, _ := s.collection("q")
		c.mu.RLock()
		d := c.dense[""]
		a, _ := d.ann.(*hnswANN)
		quantized := a != nil && a.ix.Quantized()
		rows := d.rows != nil
		c.mu.RUnlock()
		if a == nil || quantized != wantQuantized || !rows {
			t.Fatalf("graph %v, quantized %v (want %v), rows mapped %v", a != nil, quantized, wantQuantized, rows)
		}
		hit := 0
		for _, q := range queries {
			res, err := s.Query(ctx, &qdrant.QueryPoints{CollectionName: "q", Query: qdrant.NewQueryDense(q), Limit: qdrant.PtrOf(uint64(10)),
				Params: &qdrant.SearchParams{HnswEf: qdrant.PtrOf(uint64(64)), Quantization: &qdrant.QuantizationSearchParams{Oversampling: qdrant.PtrOf(2.0)}}})
			if err != nil {
				t.Fatal(err)
			}
			exact, err := s.Query(ctx, &qdrant.QueryPoints{CollectionName: "q", Query: qdrant.NewQueryDense(q), Limit: qdrant.PtrOf(uint64(10)),
				Params: &qdrant.SearchParams{Exact: qdrant.PtrOf(true)}})
			if err != nil {
				t.Fatal(err)
			}
			if len(res) != 10 {
				t.Fatalf("%d results, want 10", len(res))
			}
			for _, e := range exact {
				if slices.ContainsFunc(res, func(p *qdrant.ScoredPoint) bool { return p.GetId().GetNum() == e.GetId().GetNum() }) {
					hit++
				}
			}
			// Scores are exact (rescored with the originals).
			for i := range res {
				if res[i].GetId().GetNum() == exact[i].GetId().GetNum() && res[i].GetScore() != exact[i].GetScore() {
					t.Fatalf("rescored score %v, exact %v", res[i].GetScore(), exact[i].GetScore())
				}
			}
		}
		if rec := float64(hit) / float64(10*len(queries)); rec < 0.97 {
			t.Errorf("recall@10 = %.3f, want ≥ 0.97", rec)
		}
	}
	check(s, true)
	entries, _ := os.ReadDir(filepath.Join(dir, "vectors"))
	if len(entries) != 1 {
		t.Fatalf("vector files: %v, want one", entries)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = mustOpen(t, dir, WithANNThreshold(500))
	defer s.Close()
	check(s, true)
	// Quantization off: the graph is rebuilt on float32 vectors.
	if err := s.UpdateCollection(ctx, &qdrant.UpdateCollection{CollectionName: "q", VectorsConfig: &qdrant.VectorsConfigDiff{
		Config: &qdrant.VectorsConfigDiff_Params{Params: &qdrant.VectorParamsDiff{QuantizationConfig: &qdrant.QuantizationConfigDiff{
			Quantization: &qdrant.QuantizationConfigDiff_Disabled{Disabled: &qdrant.Disabled{}}}}}}}); err != nil {
		t.Fatal(err)
	}
	check(s, false)

	// Bad quantization settings.
	bad := []*qdrant.QuantizationConfig{
		qdrant.NewQuantizationScalar(&qdrant.ScalarQuantization{Type: qdrant.QuantizationType_Int8, Quantile: qdrant.PtrOf(float32(0.2))}),
		qdrant.NewQuantizationScalar(&qdrant.ScalarQuantization{Type: qdrant.QuantizationType_UnknownQuantization}),
	}
	for _, q := range bad {
		err := s.CreateCollection(ctx, &qdrant.CreateCollection{CollectionName: "bad", QuantizationConfig: q,
			VectorsConfig: qdrant.NewVectorsConfig(&qdrant.VectorParams{Size: 4, Distance: qdrant.Distance_Dot})})
		wantCode(t, "bad quantization", err, codes.InvalidArgument)
	}
	err = s.CreateCollection(ctx, &qdrant.CreateCollection{CollectionName: "bad", QuantizationConfig: qdrant.NewQuantizationBinary(&qdrant.BinaryQuantization{}),
		VectorsConfig: qdrant.NewVectorsConfig(&qdrant.VectorParams{Size: 4, Distance: qdrant.Distance_Dot})})
	wantCode(t, "binary quantization", err, codes.Unimplemented)
	if err := s.CreateCollection(ctx, &qdrant.CreateCollection{CollectionName: "sp",
		SparseVectorsConfig: qdrant.NewSparseVectorsConfig(map[string]*qdrant.SparseVectorParams{"s": {}})}); err != nil {
		t.Fatal(err)
	}
	err = s.UpdateCollection(ctx, &qdrant.UpdateCollection{CollectionName: "sp", VectorsConfig: &qdrant.VectorsConfigDiff{
		Config: &qdrant.VectorsConfigDiff_ParamsMap{ParamsMap: &qdrant.VectorParamsDiffMap{Map: map[string]*qdrant.VectorParamsDiff{
			"s": {QuantizationConfig: &qdrant.QuantizationConfigDiff{Quantization: &qdrant.QuantizationConfigDiff_Scalar{Scalar: &qdrant.ScalarQuantization{Type: qdrant.QuantizationType_Int8}}}}}}}}})
	wantCode(t, "quantization on a sparse vector", err, codes.InvalidArgument)
}
