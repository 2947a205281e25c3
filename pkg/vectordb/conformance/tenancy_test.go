package conformance

import (
	"context"
	"math/rand/v2"
	"testing"

	"github.com/qdrant/go-client/qdrant"
)

// TestTenantIsolation checks the filter as a security boundary on a
// collection large enough for the embedded store to search it through its
// HNSW index: every hit of a tenant-filtered query belongs to the tenant,
// a small tenant's results equal exact search, and a large tenant's recall
// stays high.
func TestTenantIsolation(t *testing.T) {
	ctx := context.Background()
	c := newClient(t)
	const dim, n = 32, 1600
	name := newCollection(t, c, &qdrant.CreateCollection{
		VectorsConfig: qdrant.NewVectorsConfig(&qdrant.VectorParams{Size: dim, Distance: qdrant.Distance_Cosine}),
		HnswConfig:    &qdrant.HnswConfigDiff{M: qdrant.PtrOf(uint64(16)), EfConstruct: qdrant.PtrOf(uint64(64))},
	})
	if _, err := c.CreateFieldIndex(ctx, &qdrant.CreateFieldIndexCollection{CollectionName: name, Wait: wait(), FieldName: "tenant", FieldType: qdrant.FieldType_FieldTypeKeyword.Enum()}); err != nil {
		t.Fatalf("CreateFieldIndex: %v", err)
	}
	r := rand.New(rand.NewPCG(11, 12))
	vecs := make([][]float32, n)
	tenants := make([]string, n)
	var pts []*qdrant.PointStruct
	for i := range vecs {
		vecs[i] = randVec(r, dim)
		switch x := r.IntN(100); {
		case x < 80:
			tenants[i] = "acme"
		case x < 95:
			tenants[i] = "globex"
		default:
			tenants[i] = "initech"
		}
		pts = append(pts, &qdrant.PointStruct{Id: qdrant.NewIDNum(uint64(i)), Vectors: qdrant.NewVectorsDense(vecs[i]),
			Payload: qdrant.NewValueMap(map[string]any{"tenant": tenants[i], "groups": []any{"all", []string{"a", "b"}[i%2]}})})
		if len(pts) == 400 {
			if _, err := c.Upsert(ctx, &qdrant.UpsertPoints{CollectionName: name, Wait: wait(), Points: pts}); err != nil {
				t.Fatalf("Upsert: %v", err)
			}
			pts = nil
		}
	}
	for _, tenant := range []string{"acme", "globex", "initech"} {
		t.Run(tenant, func(t *testing.T) {
			found, total := 0, 0
			for qi := 0; qi < 20; qi++ {
				q := randVec(r, dim)
				var hits []hit
				for i, v := range vecs {
					if tenants[i] == tenant && i%2 == 1 {
						hits = append(hits, hit{uint64(i), expectedScore(qdrant.Distance_Cosine, q, v)})
					}
				}
				rankHits(hits, false)
				want := hits[:10]
				filter := &qdrant.Filter{Must: []*qdrant.Condition{qdrant.NewMatchKeyword("tenant", tenant), qdrant.NewMatchKeyword("groups", "b")}}
				got, err := c.Query(ctx, &qdrant.QueryPoints{CollectionName: name, Query: qdrant.NewQueryDense(q), Filter: filter, Limit: qdrant.PtrOf(uint64(10)), WithPayload: qdrant.NewWithPayload(true)})
				if err != nil {
					t.Fatalf("Query: %v", err)
				}
				if len(got) != 10 {
					t.Fatalf("Query returned %d hits, want 10", len(got))
				}
				wantIDs := map[uint64]bool{}
				for _, h := range want {
					wantIDs[h.id] = true
				}
				for _, p := range got {
					id := p.GetId().GetNum()
					if tenants[id] != tenant || id%2 != 1 {
						t.Fatalf("tenant %s query returned point %d of tenant %s (payload %v)", tenant, id, tenants[id], p.GetPayload())
					}
					if wantIDs[id] {
						found++
					}
				}
				total += len(want)
				if tenant == "initech" {
					checkHits(t, "small tenant query", got, want)
				}
			}
			if recall := float64(found) / float64(total); recall < 0.9 {
				t.Errorf("tenant %s recall@10 = %.3f, want >= 0.9", tenant, recall)
			}
		})
	}
}
