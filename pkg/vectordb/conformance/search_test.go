package conformance

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"sort"
	"testing"

	"github.com/qdrant/go-client/qdrant"
)

type hit struct {
	id    uint64
	score float64
}

func randVec(r *rand.Rand, dim int) []float32 {
	v := make([]float32, dim)
	for i := range v {
		v[i] = float32(r.NormFloat64())
	}
	return v
}

// expectedScore computes Qdrant's score in float64, independently of the
// server's code.
func expectedScore(dist qdrant.Distance, q, v []float32) float64 {
	var dot, nq, nv, l2 float64
	for i := range q {
		a, b := float64(q[i]), float64(v[i])
		dot += a * b
		nq += a * a
		nv += b * b
		l2 += (a - b) * (a - b)
	}
	switch dist {
	case qdrant.Distance_Cosine:
		return dot / math.Sqrt(nq) / math.Sqrt(nv)
	case qdrant.Distance_Euclid:
		return math.Sqrt(l2)
	default:
		return dot
	}
}

func rankHits(hits []hit, smallerBetter bool) {
	sort.Slice(hits, func(i, j int) bool {
		if smallerBetter {
			return hits[i].score < hits[j].score
		}
		return hits[i].score > hits[j].score
	})
}

func checkHits(t *testing.T, what string, got []*qdrant.ScoredPoint, want []hit) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%s: %d hits, want %d", what, len(got), len(want))
	}
	for i := 0; i < min(len(got), len(want)); i++ {
		if got[i].GetId().GetNum() != want[i].id || math.Abs(float64(got[i].GetScore())-want[i].score) > 1e-4 {
			t.Errorf("%s: hit %d = (%d, %.6f), want (%d, %.6f)", what, i, got[i].GetId().GetNum(), got[i].GetScore(), want[i].id, want[i].score)
		}
	}
}

func TestDenseSearchScores(t *testing.T) {
	ctx := context.Background()
	c := newClient(t)
	tests := []struct {
		name    string
		dist    qdrant.Distance
		smaller bool
	}{
		{"cosine", qdrant.Distance_Cosine, false},
		{"dot", qdrant.Distance_Dot, false},
		{"euclid", qdrant.Distance_Euclid, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			const dim, n = 8, 80
			r := rand.New(rand.NewPCG(1, uint64(tt.dist)))
			name := newCollection(t, c, &qdrant.CreateCollection{
				VectorsConfig: qdrant.NewVectorsConfig(&qdrant.VectorParams{Size: dim, Distance: tt.dist}),
			})
			vecs := make([][]float32, n)
			var pts []*qdrant.PointStruct
			for i := range vecs {
				vecs[i] = randVec(r, dim)
				pts = append(pts, &qdrant.PointStruct{
					Id:      qdrant.NewIDNum(uint64(i + 1)),
					Vectors: qdrant.NewVectorsDense(vecs[i]),
					Payload: qdrant.NewValueMap(map[string]any{"group": fmt.Sprintf("g%d", i%5), "i": int64(i)}),
				})
			}
			if _, err := c.Upsert(ctx, &qdrant.UpsertPoints{CollectionName: name, Wait: wait(), Points: pts}); err != nil {
				t.Fatalf("Upsert: %v", err)
			}
			q := randVec(r, dim)
			all := make([]hit, n)
			var g1 []hit
			for i, v := range vecs {
				all[i] = hit{uint64(i + 1), expectedScore(tt.dist, q, v)}
				if i%5 == 1 {
					g1 = append(g1, all[i])
				}
			}
			rankHits(all, tt.smaller)
			rankHits(g1, tt.smaller)

			got, err := c.Query(ctx, &qdrant.QueryPoints{CollectionName: name, Query: qdrant.NewQueryDense(q), Limit: qdrant.PtrOf(uint64(10))})
			if err != nil {
				t.Fatalf("Query: %v", err)
			}
			checkHits(t, "query top 10", got, all[:10])

			got, err = c.Query(ctx, &qdrant.QueryPoints{CollectionName: name, Query: qdrant.NewQueryDense(q), Limit: qdrant.PtrOf(uint64(4)), Offset: qdrant.PtrOf(uint64(3))})
			if err != nil {
				t.Fatalf("Query offset: %v", err)
			}
			checkHits(t, "query offset 3 limit 4", got, all[3:7])

			thr := float32((all[5].score + all[6].score) / 2)
			got, err = c.Query(ctx, &qdrant.QueryPoints{CollectionName: name, Query: qdrant.NewQueryDense(q), Limit: qdrant.PtrOf(uint64(50)), ScoreThreshold: &thr})
			if err != nil {
				t.Fatalf("Query threshold: %v", err)
			}
			checkHits(t, "query score threshold", got, all[:6])

			filter := &qdrant.Filter{Must: []*qdrant.Condition{qdrant.NewMatchKeyword("group", "g1")}}
			got, err = c.Query(ctx, &qdrant.QueryPoints{CollectionName: name, Query: qdrant.NewQueryDense(q), Filter: filter, Limit: qdrant.PtrOf(uint64(5)),
				WithPayload: qdrant.NewWithPayload(true), WithVectors: qdrant.NewWithVectors(true)})
			if err != nil {
				t.Fatalf("Query filtered: %v", err)
			}
			checkHits(t, "filtered query", got, g1[:5])
			for _, p := range got {
				if p.GetPayload()["group"].GetStringValue() != "g1" {
					t.Errorf("filtered query returned payload %v", p.GetPayload())
				}
				if len(p.GetVectors().GetVector().GetDenseVector().GetData()) != dim {
					t.Errorf("with_vectors: got %v", p.GetVectors())
				}
			}

			// The classic Search API gives the same answer.
			sr, err := c.GetPointsClient().Search(ctx, &qdrant.SearchPoints{CollectionName: name, Vector: q, Limit: 10})
			if err != nil {
				t.Fatalf("Search: %v", err)
			}
			checkHits(t, "search top 10", sr.GetResult(), all[:10])
			if len(sr.GetResult()) > 0 && len(sr.GetResult()[0].GetPayload()) > 0 {
				t.Errorf("search without with_payload returned a payload")
			}
			br, err := c.GetPointsClient().SearchBatch(ctx, &qdrant.SearchBatchPoints{CollectionName: name, SearchPoints: []*qdrant.SearchPoints{
				{CollectionName: name, Vector: q, Limit: 3},
				{CollectionName: name, Vector: q, Limit: 5, Filter: filter},
			}})
			if err != nil {
				t.Fatalf("SearchBatch: %v", err)
			}
			if len(br.GetResult()) != 2 {
				t.Fatalf("SearchBatch returned %d results, want 2", len(br.GetResult()))
			}
			checkHits(t, "search batch 0", br.GetResult()[0].GetResult(), all[:3])
			checkHits(t, "search batch 1", br.GetResult()[1].GetResult(), g1[:5])

			// Nearest to a stored point: scored with its vector, itself excluded.
			const seed = 17
			var byPoint []hit
			for i, v := range vecs {
				if i+1 != seed {
					byPoint = append(byPoint, hit{uint64(i + 1), expectedScore(tt.dist, vecs[seed-1], v)})
				}
			}
			rankHits(byPoint, tt.smaller)
			got, err = c.Query(ctx, &qdrant.QueryPoints{CollectionName: name, Query: qdrant.NewQueryID(qdrant.NewIDNum(seed)), Limit: qdrant.PtrOf(uint64(5))})
			if err != nil {
				t.Fatalf("Query by id: %v", err)
			}
			checkHits(t, "query nearest to point", got, byPoint[:5])
		})
	}
}

// sparsePoint is a generated sparse vector.
type sparsePoint struct {
	idx []uint32
	val []float32
}

func TestSparseAndHybrid(t *testing.T) {
	ctx := context.Background()
	c := newClient(t)
	name := newCollection(t, c, &qdrant.CreateCollection{
		VectorsConfig: qdrant.NewVectorsConfigMap(map[string]*qdrant.VectorParams{"dense": {Size: 4, Distance: qdrant.Distance_Dot}}),
		SparseVectorsConfig: qdrant.NewSparseVectorsConfig(map[string]*qdrant.SparseVectorParams{
			"text":  {Modifier: qdrant.Modifier_Idf.Enum()},
			"plain": {},
		}),
	})
	const n = 40
	r := rand.New(rand.NewPCG(7, 7))
	dense := make([][]float32, n)
	sparse := make([]sparsePoint, n)
	df := map[uint32]int{}
	var pts []*qdrant.PointStruct
	for i := 0; i < n; i++ {
		dense[i] = randVec(r, 4)
		perm := r.Perm(20)[:3+r.IntN(4)]
		var sp sparsePoint
		for _, x := range perm {
			sp.idx = append(sp.idx, uint32(x))
			sp.val = append(sp.val, float32(r.IntN(9)+1)/4)
			df[uint32(x)]++
		}
		sparse[i] = sp
		pts = append(pts, &qdrant.PointStruct{
			Id: qdrant.NewIDNum(uint64(i + 1)),
			Vectors: qdrant.NewVectorsMap(map[string]*qdrant.Vector{
				"dense": qdrant.NewVectorDense(dense[i]),
				"text":  qdrant.NewVectorSparse(sp.idx, sp.val),
				"plain": qdrant.NewVectorSparse(sp.idx, sp.val),
			}),
			Payload: qdrant.NewValueMap(map[string]any{"third": int64(i % 3)}),
		})
	}
	if _, err := c.Upsert(ctx, &qdrant.UpsertPoints{CollectionName: name, Wait: wait(), Points: pts}); err != nil {
		t.Fatalf("Upsert: %v", err)
	}
	qIdx, qVal := []uint32{2, 5, 11, 19}, []float32{1, 0.5, 2, 1.5}
	sparseExpected := func(useIDF bool) []hit {
		var hits []hit
		for i, sp := range sparse {
			var s float64
			overlap := false
			for k, qi := range qIdx {
				for j, di := range sp.idx {
					if di == qi {
						w := float64(qVal[k])
						if useIDF {
							N, d := float64(n), float64(df[qi])
							w *= math.Log((N-d+0.5)/(d+0.5) + 1)
						}
						s += w * float64(sp.val[j])
						overlap = true
					}
				}
			}
			if overlap {
				hits = append(hits, hit{uint64(i + 1), s})
			}
		}
		rankHits(hits, false)
		return hits
	}
	idfHits, plainHits := sparseExpected(true), sparseExpected(false)

	got, err := c.Query(ctx, &qdrant.QueryPoints{CollectionName: name, Query: qdrant.NewQuerySparse(qIdx, qVal), Using: qdrant.PtrOf("text"), Limit: qdrant.PtrOf(uint64(10))})
	if err != nil {
		t.Fatalf("sparse idf query: %v", err)
	}
	checkHitsTies(t, "sparse idf query", got, idfHits[:min(10, len(idfHits))])
	got, err = c.Query(ctx, &qdrant.QueryPoints{CollectionName: name, Query: qdrant.NewQuerySparse(qIdx, qVal), Using: qdrant.PtrOf("plain"), Limit: qdrant.PtrOf(uint64(10))})
	if err != nil {
		t.Fatalf("sparse query: %v", err)
	}
	checkHitsTies(t, "sparse plain query", got, plainHits[:min(10, len(plainHits))])
	// Filtered: only points whose id-1 is a multiple of 3; the best
	// unfiltered hits are mostly rejected, so the search must look past them.
	var thirdHits []hit
	for _, h := range idfHits {
		if (h.id-1)%3 == 0 {
			thirdHits = append(thirdHits, h)
		}
	}
	got, err = c.Query(ctx, &qdrant.QueryPoints{CollectionName: name, Query: qdrant.NewQuerySparse(qIdx, qVal), Using: qdrant.PtrOf("text"),
		Filter: &qdrant.Filter{Must: []*qdrant.Condition{qdrant.NewMatchInt("third", 0)}}, Limit: qdrant.PtrOf(uint64(5))})
	if err != nil {
		t.Fatalf("filtered sparse query: %v", err)
	}
	checkHitsTies(t, "filtered sparse query", got, thirdHits[:min(5, len(thirdHits))])
	sr, err := c.GetPointsClient().Search(ctx, &qdrant.SearchPoints{CollectionName: name, Vector: qVal, SparseIndices: &qdrant.SparseIndices{Data: qIdx}, VectorName: qdrant.PtrOf("text"), Limit: 10})
	if err != nil {
		t.Fatalf("sparse Search: %v", err)
	}
	checkHitsTies(t, "sparse search", sr.GetResult(), idfHits[:min(10, len(idfHits))])

	dq := randVec(r, 4)
	var denseHits []hit
	for i, v := range dense {
		denseHits = append(denseHits, hit{uint64(i + 1), expectedScore(qdrant.Distance_Dot, dq, v)})
	}
	rankHits(denseHits, false)
	got, err = c.Query(ctx, &qdrant.QueryPoints{CollectionName: name, Query: qdrant.NewQueryDense(dq), Using: qdrant.PtrOf("dense"), Limit: qdrant.PtrOf(uint64(10))})
	if err != nil {
		t.Fatalf("dense query: %v", err)
	}
	checkHits(t, "named dense query", got, denseHits[:10])

	// Hybrid: RRF over a dense and a sparse prefetch.
	const pl = 10
	rrfExpected := func(k float64) map[uint64]float64 {
		m := map[uint64]float64{}
		for rank, h := range denseHits[:pl] {
			m[h.id] += 1 / (float64(rank) + k)
		}
		for rank, h := range idfHits[:min(pl, len(idfHits))] {
			m[h.id] += 1 / (float64(rank) + k)
		}
		return m
	}
	prefetch := []*qdrant.PrefetchQuery{
		{Query: qdrant.NewQueryDense(dq), Using: qdrant.PtrOf("dense"), Limit: qdrant.PtrOf(uint64(pl))},
		{Query: qdrant.NewQuerySparse(qIdx, qVal), Using: qdrant.PtrOf("text"), Limit: qdrant.PtrOf(uint64(pl))},
	}
	tests := []struct {
		name  string
		query *qdrant.Query
		k     float64
	}{
		{"fusion rrf", qdrant.NewQueryFusion(qdrant.Fusion_RRF), 2},
		{"rrf k=60", qdrant.NewQueryRRF(&qdrant.Rrf{K: qdrant.PtrOf(uint32(60))}), 60},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want := rrfExpected(tt.k)
			got, err := c.Query(ctx, &qdrant.QueryPoints{CollectionName: name, Prefetch: prefetch, Query: tt.query, Limit: qdrant.PtrOf(uint64(8))})
			if err != nil {
				t.Fatalf("hybrid query: %v", err)
			}
			var all []hit
			for id, s := range want {
				all = append(all, hit{id, s})
			}
			rankHits(all, false)
			checkHitsTies(t, tt.name, got, all[:8])
		})
	}
}

// checkHitsTies compares ranked hits where equal scores may come in any
// order: scores must match position by position, and each id must carry
// its expected score.
func checkHitsTies(t *testing.T, what string, got []*qdrant.ScoredPoint, want []hit) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%s: %d hits, want %d", what, len(got), len(want))
		return
	}
	byID := map[uint64]float64{}
	for _, h := range want {
		byID[h.id] = h.score
	}
	for i := range got {
		if math.Abs(float64(got[i].GetScore())-want[i].score) > 1e-4 {
			t.Errorf("%s: hit %d score %.6f, want %.6f", what, i, got[i].GetScore(), want[i].score)
		}
		exp, ok := byID[got[i].GetId().GetNum()]
		// A tie at the cut may admit an id outside want with the same score.
		if ok && math.Abs(exp-float64(got[i].GetScore())) > 1e-4 {
			t.Errorf("%s: id %d score %.6f, want %.6f", what, got[i].GetId().GetNum(), got[i].GetScore(), exp)
		}
	}
}
