package vectordb

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"sort"
	"testing"
	"time"

	"github.com/qdrant/go-client/qdrant"
)

// Benchmarks of the store itself (no gRPC), on clustered 384-dim vectors.
// Run: go test -run '^$' -bench . -benchtime 1x ./pkg/vectordb
// VECTORDB_BENCH_N sets the number of points (default 20000).

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

func benchN(b *testing.B) int {
	n := 20000
	if s := getenv("VECTORDB_BENCH_N"); s != "" {
		fmt.Sscan(s, &n)
	}
	return n
}

func BenchmarkStore384(b *testing.B) {
	ctx := context.Background()
	n := benchN(b)
	const dim = 384
	vecs := benchVectors(n, dim, 1)
	queries := benchVectors(200, dim, 2)
	for range b.N {
		s, err := Open(b.TempDir(), WithANNThreshold(1000))
		if err != nil {
			b.Fatal(err)
		}
		if err := s.CreateCollection(ctx, &qdrant.CreateCollection{CollectionName: "b",
			VectorsConfig: qdrant.NewVectorsConfig(&qdrant.VectorParams{Size: dim, Distance: qdrant.Distance_Cosine})}); err != nil {
			b.Fatal(err)
		}
		start := time.Now()
		for lo := 0; lo < n; lo += 1000 {
			var pts []*qdrant.PointStruct
			for i := lo; i < min(lo+1000, n); i++ {
				pts = append(pts, &qdrant.PointStruct{Id: qdrant.NewIDNum(uint64(i)), Vectors: qdrant.NewVectorsDense(vecs[i]),
					Payload: qdrant.NewValueMap(map[string]any{"tenant": fmt.Sprint("t", i%100), "half": int64(i % 2)})})
			}
			if _, err := s.Upsert(ctx, &qdrant.UpsertPoints{CollectionName: "b", Wait: ptr(true), Points: pts}); err != nil {
				b.Fatal(err)
			}
		}
		build := time.Since(start)
		b.ReportMetric(float64(n)/build.Seconds(), "upserts/s")
		lat := func(filter *qdrant.Filter, exact bool) (p50, p99 time.Duration, recall float64) {
			var ds []time.Duration
			found, total := 0, 0
			for _, q := range queries {
				t0 := time.Now()
				res, err := s.Query(ctx, &qdrant.QueryPoints{CollectionName: "b", Query: qdrant.NewQueryDense(q), Filter: filter, Params: &qdrant.SearchParams{Exact: &exact}})
				ds = append(ds, time.Since(t0))
				if err != nil {
					b.Fatal(err)
				}
				ex, _ := s.Query(ctx, &qdrant.QueryPoints{CollectionName: "b", Query: qdrant.NewQueryDense(q), Filter: filter, Params: &qdrant.SearchParams{Exact: ptr(true)}})
				want := map[uint64]bool{}
				for _, p := range ex {
					want[p.GetId().GetNum()] = true
				}
				for _, p := range res {
					if want[p.GetId().GetNum()] {
						found++
					}
				}
				total += len(ex)
			}
			sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
			return ds[len(ds)/2], ds[len(ds)*99/100], float64(found) / float64(max(total, 1))
		}
		for _, c := range []struct {
			name   string
			filter *qdrant.Filter
			exact  bool
		}{
			{"ann", nil, false},
			{"exact", nil, true},
			{"filter50", &qdrant.Filter{Must: []*qdrant.Condition{qdrant.NewMatchInt("half", 1)}}, false},
			{"filter1", &qdrant.Filter{Must: []*qdrant.Condition{qdrant.NewMatchKeyword("tenant", "t7")}}, false},
		} {
			p50, p99, rec := lat(c.filter, c.exact)
			b.ReportMetric(float64(p50.Microseconds()), c.name+"-p50-us")
			b.ReportMetric(float64(p99.Microseconds()), c.name+"-p99-us")
			b.ReportMetric(rec, c.name+"-recall@10")
		}
		s.Close()
	}
}

func getenv(k string) string { return os.Getenv(k) }
