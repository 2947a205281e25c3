package hnsw

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// BenchmarkBuild measures single-goroutine insertion of 5k clustered 384-dim
// vectors (M 16, efConstruction 200). The full 100k comparison with FAISS and
// hnswlib lives in bench/ann.
func BenchmarkBuild(b *testing.B) {
	const n, dim = 5000, 384
	data := clustered(rand.New(rand.NewPCG(1, 1)), n, dim, 50, 0.5)
	b.ReportAllocs()
	for b.Loop() {
		ix, err := New(dim, Cosine)
		if err != nil {
			b.Fatal(err)
		}
		for i, v := range data {
			if err := ix.Add(uint32(i), v); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "vectors/s")
}

// BenchmarkSearch measures one query at ef 64 on a 20k × 384 index.
func BenchmarkSearch(b *testing.B) {
	const n, dim = 20000, 384
	data := clustered(rand.New(rand.NewPCG(2, 1)), n+100, dim, 50, 0.5)
	ix := build(b, data[:n], Cosine, EfConstruction(100))
	for _, pf := range []bool{true, false} {
		b.Run(fmt.Sprintf("prefetch=%v", pf), func(b *testing.B) {
			ix.noPrefetch = !pf
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				ix.Search(data[n+i%100], 10, 64, nil)
				i++
			}
		})
	}
}
