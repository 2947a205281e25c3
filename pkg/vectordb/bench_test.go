package vectordb

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/qdrant/go-client/qdrant"
)

// BenchmarkStore384 measures the store itself (no gRPC) on clustered
// 384-dim cosine vectors with a sparse vector per point: build rate, query
// latency and recall@10 against exact search, filtered queries at 1% and
// 50% selectivity (keyword-indexed), hybrid RRF queries, and 16 concurrent
// clients.
//
//	go test -run '^$' -bench Store384 -benchtime 1x ./pkg/vectordb
//
// VECTORDB_BENCH_N sets the number of points (default 20000).
func BenchmarkStore384(b *testing.B) {
	ctx := context.Background()
	n := 20000
	if s := os.Getenv("VECTORDB_BENCH_N"); s != "" {
		if _, err := fmt.Sscan(s, &n); err != nil {
			b.Fatalf("VECTORDB_BENCH_N: %v", err)
		}
	}
	const dim = 384
	vecs := benchVectors(n, dim, 1)
	queries := benchVectors(200, dim, 2)
	r := rand.New(rand.NewPCG(3, 3))
	sparse := func() *qdrant.Vector {
		seen := map[uint32]bool{}
		var idx []uint32
		var val []float32
		for len(idx) < 20 {
			t := uint32(r.ExpFloat64() * 2000)
			if !seen[t] {
				seen[t] = true
				idx = append(idx, t)
				val = append(val, float32(1+r.IntN(3)))
			}
		}
		return qdrant.NewVectorSparse(idx, val)
	}
	for range b.N {
		s, err := Open(b.TempDir(), WithANNThreshold(1000))
		if err != nil {
			b.Fatal(err)
		}
		if err := s.CreateCollection(ctx, &qdrant.CreateCollection{CollectionName: "b",
			VectorsConfig:       qdrant.NewVectorsConfigMap(map[string]*qdrant.VectorParams{"d": {Size: dim, Distance: qdrant.Distance_Cosine}}),
			SparseVectorsConfig: qdrant.NewSparseVectorsConfig(map[string]*qdrant.SparseVectorParams{"s": {Modifier: qdrant.Modifier_Idf.Enum()}}),
		}); err != nil {
			b.Fatal(err)
		}
		if _, err := s.CreateFieldIndex(ctx, &qdrant.CreateFieldIndexCollection{CollectionName: "b", FieldName: "tenant", FieldType: qdrant.FieldType_FieldTypeKeyword.Enum()}); err != nil {
			b.Fatal(err)
		}
		if _, err := s.CreateFieldIndex(ctx, &qdrant.CreateFieldIndexCollection{CollectionName: "b", FieldName: "half", FieldType: qdrant.FieldType_FieldTypeInteger.Enum()}); err != nil {
			b.Fatal(err)
		}
		start := time.Now()
		for lo := 0; lo < n; lo += 1000 {
			var pts []*qdrant.PointStruct
			for i := lo; i < min(lo+1000, n); i++ {
				pts = append(pts, &qdrant.PointStruct{Id: qdrant.NewIDNum(uint64(i)),
					Vectors: qdrant.NewVectorsMap(map[string]*qdrant.Vector{"d": qdrant.NewVectorDense(vecs[i]), "s": sparse()}),
					Payload: qdrant.NewValueMap(map[string]any{"tenant": fmt.Sprint("t", i%100), "half": int64(i % 2)})})
			}
			if _, err := s.Upsert(ctx, &qdrant.UpsertPoints{CollectionName: "b", Wait: ptr(true), Points: pts}); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(n)/time.Since(start).Seconds(), "upserts/s")
		using := ptr("d")
		exactTop := func(q []float32, f *qdrant.Filter) map[uint64]bool {
			res, err := s.Query(ctx, &qdrant.QueryPoints{CollectionName: "b", Query: qdrant.NewQueryDense(q), Using: using, Filter: f, Params: &qdrant.SearchParams{Exact: ptr(true)}})
			if err != nil {
				b.Fatal(err)
			}
			m := map[uint64]bool{}
			for _, p := range res {
				m[p.GetId().GetNum()] = true
			}
			return m
		}
		hybridSparse := sparse().GetSparse()
		cases := []struct {
			name string
			req  func(q []float32) *qdrant.QueryPoints
			f    *qdrant.Filter
		}{
			{"ann", func(q []float32) *qdrant.QueryPoints {
				return &qdrant.QueryPoints{CollectionName: "b", Query: qdrant.NewQueryDense(q), Using: using}
			}, nil},
			{"exact", func(q []float32) *qdrant.QueryPoints {
				return &qdrant.QueryPoints{CollectionName: "b", Query: qdrant.NewQueryDense(q), Using: using, Params: &qdrant.SearchParams{Exact: ptr(true)}}
			}, nil},
			{"filter50", nil, &qdrant.Filter{Must: []*qdrant.Condition{qdrant.NewMatchInt("half", 1)}}},
			{"filter1", nil, &qdrant.Filter{Must: []*qdrant.Condition{qdrant.NewMatchKeyword("tenant", "t7")}}},
			{"hybrid", func(q []float32) *qdrant.QueryPoints {
				return &qdrant.QueryPoints{CollectionName: "b", Query: qdrant.NewQueryFusion(qdrant.Fusion_RRF), Prefetch: []*qdrant.PrefetchQuery{
					{Query: qdrant.NewQueryDense(q), Using: using, Limit: ptr[uint64](20)},
					{Query: qdrant.NewQuerySparse(hybridSparse.Indices, hybridSparse.Values), Using: ptr("s"), Limit: ptr[uint64](20)},
				}}
			}, nil},
		}
		for _, c := range cases {
			req := c.req
			if req == nil {
				f := c.f
				req = func(q []float32) *qdrant.QueryPoints {
					return &qdrant.QueryPoints{CollectionName: "b", Query: qdrant.NewQueryDense(q), Using: using, Filter: f}
				}
			}
			var ds []time.Duration
			found, total := 0, 0
			for _, q := range queries {
				t0 := time.Now()
				res, err := s.Query(ctx, req(q))
				ds = append(ds, time.Since(t0))
				if err != nil {
					b.Fatal(err)
				}
				if c.name == "hybrid" {
					continue
				}
				want := exactTop(q, c.f)
				for _, p := range res {
					if want[p.GetId().GetNum()] {
						found++
					}
				}
				total += len(want)
			}
			p50, p99 := percentiles(ds)
			b.ReportMetric(float64(p50.Microseconds()), c.name+"-p50-us")
			b.ReportMetric(float64(p99.Microseconds()), c.name+"-p99-us")
			if total > 0 {
				b.ReportMetric(float64(found)/float64(total), c.name+"-recall@10")
			}
		}
		// 16 concurrent clients issuing ANN queries.
		var mu sync.Mutex
		var ds []time.Duration
		var wg sync.WaitGroup
		t0 := time.Now()
		for w := 0; w < 16; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := w; i < len(queries); i += 16 {
					t := time.Now()
					if _, err := s.Query(ctx, &qdrant.QueryPoints{CollectionName: "b", Query: qdrant.NewQueryDense(queries[i]), Using: using}); err != nil {
						b.Error(err)
						return
					}
					d := time.Since(t)
					mu.Lock()
					ds = append(ds, d)
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		b.ReportMetric(float64(len(queries))/time.Since(t0).Seconds(), "conc16-qps")
		p50, p99 := percentiles(ds)
		b.ReportMetric(float64(p50.Microseconds()), "conc16-p50-us")
		b.ReportMetric(float64(p99.Microseconds()), "conc16-p99-us")
		if err := s.Close(); err != nil {
			b.Fatal(err)
		}
	}
}

func percentiles(ds []time.Duration) (p50, p99 time.Duration) {
	sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
	return ds[len(ds)/2], ds[min(len(ds)-1, len(ds)*99/100)]
}

func benchVectors(n, dim int, seed uint64) [][]float32 {
	r := rand.New(rand.NewPCG(seed, 1))
	centers := make([][]float32, 100)
	for i := range centers {
		centers[i] = make([]float32, dim)
		for j := range centers[i] {
			centers[i][j] = float32(r.NormFloat64())
		}
	}
	out := make([][]float32, n)
	for i := range out {
		c := centers[r.IntN(len(centers))]
		v := make([]float32, dim)
		for j := range v {
			v[j] = c[j] + 0.5*float32(r.NormFloat64())
		}
		out[i] = v
	}
	return out
}
