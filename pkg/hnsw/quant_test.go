package hnsw

import (
	"bytes"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/tributary-rag/tributary/pkg/vecmath"
)

// exactTop returns the ids of the k vectors nearest q by metric, in float32.
func exactTop(vecs [][]float32, q []float32, k int, metric Metric) []uint32 {
	type hit struct {
		id uint32
		d  float32
	}
	hits := make([]hit, len(vecs))
	for i, v := range vecs {
		d := -vecmath.Dot(q, v)
		if metric == L2 {
			d = vecmath.L2Sq(q, v)
		}
		hits[i] = hit{uint32(i), d}
	}
	slices.SortFunc(hits, func(a, b hit) int {
		switch {
		case a.d < b.d:
			return -1
		case a.d > b.d:
			return 1
		}
		return 0
	})
	out := make([]uint32, k)
	for i := range out {
		out[i] = hits[i].id
	}
	return out
}

// TestScalarInt8Recall: a quantized index, its candidates rescored with the
// original vectors (oversampling 2), finds the exact top 10 as well as the
// float index does; and it survives WriteTo/Load unchanged.
func TestScalarInt8Recall(t *testing.T) {
	const n, dim, nq, k, ef = 6000, 64, 50, 10, 64
	r := rand.New(rand.NewPCG(5, 5))
	data := clustered(r, n+nq, dim, 40, 0.35)
	vecs, queries := data[:n], data[n:]
	for _, metric := range []Metric{Cosine, L2} {
		t.Run(metric.String(), func(t *testing.T) {
			ix := build(t, vecs, metric, M(16), EfConstruction(64), Seed(3), ScalarInt8(0.99))
			if !ix.Quantized() {
				t.Fatal("Quantized() = false")
			}
			var hit int
			for _, q := range queries {
				got := ix.Search(q, 2*k, ef, nil)
				ids := make([]uint32, len(got))
				for i, g := range got {
					ids[i] = g.ID
				}
				// Rescore with the originals.
				slices.SortFunc(ids, func(a, b uint32) int {
					da, db := -vecmath.Dot(q, vecs[a]), -vecmath.Dot(q, vecs[b])
					if metric == L2 {
						da, db = vecmath.L2Sq(q, vecs[a]), vecmath.L2Sq(q, vecs[b])
					}
					switch {
					case da < db:
						return -1
					case da > db:
						return 1
					}
					return 0
				})
				want := exactTop(vecs, q, k, metric)
				for _, id := range ids[:k] {
					if slices.Contains(want, id) {
						hit++
					}
				}
			}
			if rec := float64(hit) / float64(nq*k); rec < 0.97 {
				t.Errorf("rescored recall@%d = %.3f, want ≥ 0.97", k, rec)
			}
			st := ix.Stats()
			if perVec := st.Bytes / int64(n); perVec > int64(dim+200) {
				t.Errorf("quantized index holds %d bytes per vector, want ≤ %d", perVec, dim+200)
			}
			var buf bytes.Buffer
			if _, err := ix.WriteTo(&buf); err != nil {
				t.Fatal(err)
			}
			ix2, err := Load(&buf)
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			if !ix2.Quantized() {
				t.Fatal("loaded index is not quantized")
			}
			for _, q := range queries[:10] {
				a, b := ix.Search(q, k, ef, nil), ix2.Search(q, k, ef, nil)
				if len(a) != len(b) {
					t.Fatalf("loaded index answers %d results, original %d", len(b), len(a))
				}
				for i := range a {
					if a[i].ID != b[i].ID || a[i].Score != b[i].Score {
						t.Fatalf("loaded index differs at %d: %v vs %v", i, b[i], a[i])
					}
				}
			}
		})
	}
}
