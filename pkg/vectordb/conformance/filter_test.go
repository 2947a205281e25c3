package conformance

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/qdrant/go-client/qdrant"
)

// The filter property test upserts points with random payloads, runs random
// filters through Scroll, Count and a filtered Query, and compares the
// results with a brute-force evaluator written here, independently of the
// server.

var colors = []string{"red", "green", "blue", "black"}

func randPayload(r *rand.Rand) map[string]any {
	p := map[string]any{}
	if r.IntN(10) > 0 {
		p["color"] = colors[r.IntN(len(colors))]
	}
	if r.IntN(10) > 0 {
		p["n"] = int64(r.IntN(10))
	}
	if r.IntN(4) > 0 {
		p["flag"] = r.IntN(2) == 0
	}
	if r.IntN(5) > 0 {
		p["price"] = float64(r.IntN(1000)) / 10
	}
	switch r.IntN(4) {
	case 0:
	case 1:
		p["tags"] = []any{}
	default:
		var tags []any
		for i := 0; i < 1+r.IntN(3); i++ {
			tags = append(tags, colors[r.IntN(len(colors))])
		}
		p["tags"] = tags
	}
	if r.IntN(3) == 0 {
		p["opt"] = nil
	} else if r.IntN(2) == 0 {
		p["opt"] = "set"
	}
	if r.IntN(5) > 0 {
		meta := map[string]any{"level": int64(r.IntN(4))}
		if r.IntN(2) == 0 {
			meta["owner"] = []any{"alice", "bob", "carol"}[r.IntN(3)]
		}
		p["meta"] = meta
	}
	if r.IntN(3) == 0 {
		p["nums"] = []any{int64(r.IntN(10)), int64(r.IntN(10))}
	}
	return p
}

// cond is a condition and its reference evaluator.
type cond struct {
	c    *qdrant.Condition
	eval func(id uint64, p map[string]any) bool
	desc string
}

// lookup follows a dotted key through nested objects (no implicit array
// descent), returning the value and whether it exists.
func lookup(p map[string]any, key []string) (any, bool) {
	var cur any = p
	for _, k := range key {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil, false
		}
		if cur, ok = m[k]; !ok {
			return nil, false
		}
	}
	return cur, true
}

// anyElem applies f to the value, or to each element when it is an array.
func anyElem(v any, ok bool, f func(any) bool) bool {
	if !ok {
		return false
	}
	if arr, isArr := v.([]any); isArr {
		return slices.ContainsFunc(arr, f)
	}
	return f(v)
}

func randCond(r *rand.Rand, depth int, ids []uint64) cond {
	k := r.IntN(11)
	if depth > 1 && k == 10 {
		k = 0
	}
	switch k {
	case 0:
		kw := colors[r.IntN(len(colors))]
		key := []string{"color", "tags"}[r.IntN(2)]
		return cond{qdrant.NewMatchKeyword(key, kw), func(_ uint64, p map[string]any) bool {
			v, ok := lookup(p, []string{key})
			return anyElem(v, ok, func(x any) bool { return x == kw })
		}, fmt.Sprintf("%s=%s", key, kw)}
	case 1:
		n := int64(r.IntN(10))
		key := []string{"n", "nums"}[r.IntN(2)]
		return cond{qdrant.NewMatchInt(key, n), func(_ uint64, p map[string]any) bool {
			v, ok := lookup(p, []string{key})
			return anyElem(v, ok, func(x any) bool { return x == n })
		}, fmt.Sprintf("%s=%d", key, n)}
	case 2:
		b := r.IntN(2) == 0
		return cond{qdrant.NewMatchBool("flag", b), func(_ uint64, p map[string]any) bool {
			v, ok := lookup(p, []string{"flag"})
			return ok && v == b
		}, fmt.Sprintf("flag=%v", b)}
	case 3:
		kws := []string{colors[r.IntN(4)], colors[r.IntN(4)]}
		key := []string{"color", "tags"}[r.IntN(2)]
		return cond{qdrant.NewMatchKeywords(key, kws...), func(_ uint64, p map[string]any) bool {
			v, ok := lookup(p, []string{key})
			return anyElem(v, ok, func(x any) bool { s, isS := x.(string); return isS && slices.Contains(kws, s) })
		}, fmt.Sprintf("%s in %v", key, kws)}
	case 4:
		ns := []int64{int64(r.IntN(10)), int64(r.IntN(10)), int64(r.IntN(10))}
		return cond{qdrant.NewMatchInts("n", ns...), func(_ uint64, p map[string]any) bool {
			v, ok := lookup(p, []string{"n"})
			return anyElem(v, ok, func(x any) bool { i, isI := x.(int64); return isI && slices.Contains(ns, i) })
		}, fmt.Sprintf("n in %v", ns)}
	case 5:
		rg := &qdrant.Range{}
		key := []string{"price", "n"}[r.IntN(2)]
		// Bounds often equal stored values, so boundary semantics matter.
		lo, hi := float64(r.IntN(600))/10, float64(400+r.IntN(600))/10
		if key == "n" {
			lo, hi = float64(r.IntN(6)), float64(3+r.IntN(7))
		}
		switch r.IntN(4) {
		case 0:
			rg.Gt = &lo
		case 1:
			rg.Gte = &lo
			rg.Lt = &hi
		case 2:
			rg.Lte = &hi
		default:
			rg.Gt, rg.Lte = &lo, &hi
		}
		return cond{qdrant.NewRange(key, rg), func(_ uint64, p map[string]any) bool {
			v, ok := lookup(p, []string{key})
			return anyElem(v, ok, func(x any) bool {
				var f float64
				switch t := x.(type) {
				case int64:
					f = float64(t)
				case float64:
					f = t
				default:
					return false
				}
				return (rg.Gt == nil || f > *rg.Gt) && (rg.Gte == nil || f >= *rg.Gte) && (rg.Lt == nil || f < *rg.Lt) && (rg.Lte == nil || f <= *rg.Lte)
			})
		}, fmt.Sprintf("range %s %v", key, rg)}
	case 6:
		var pick []*qdrant.PointId
		set := map[uint64]bool{}
		for i := 0; i < 1+r.IntN(20); i++ {
			id := ids[r.IntN(len(ids))]
			pick = append(pick, qdrant.NewIDNum(id))
			set[id] = true
		}
		return cond{qdrant.NewHasID(pick...), func(id uint64, _ map[string]any) bool { return set[id] }, "has_id"}
	case 7:
		lv := int64(r.IntN(4))
		return cond{qdrant.NewMatchInt("meta.level", lv), func(_ uint64, p map[string]any) bool {
			v, ok := lookup(p, []string{"meta", "level"})
			return ok && v == lv
		}, fmt.Sprintf("meta.level=%d", lv)}
	case 8:
		owner := []string{"alice", "bob", "carol"}[r.IntN(3)]
		return cond{qdrant.NewMatchKeyword("meta.owner", owner), func(_ uint64, p map[string]any) bool {
			v, ok := lookup(p, []string{"meta", "owner"})
			return ok && v == owner
		}, "meta.owner=" + owner}
	case 9:
		if r.IntN(2) == 0 {
			key := []string{"tags", "opt", "color"}[r.IntN(3)]
			return cond{qdrant.NewIsEmpty(key), func(_ uint64, p map[string]any) bool {
				v, ok := lookup(p, []string{key})
				if !ok || v == nil {
					return true
				}
				arr, isArr := v.([]any)
				return isArr && len(arr) == 0
			}, "is_empty " + key}
		}
		return cond{qdrant.NewIsNull("opt"), func(_ uint64, p map[string]any) bool {
			v, ok := lookup(p, []string{"opt"})
			return ok && v == nil
		}, "is_null opt"}
	default:
		f, eval, desc := randFilter(r, depth+1, ids)
		return cond{qdrant.NewFilterAsCondition(f), eval, "(" + desc + ")"}
	}
}

func randFilter(r *rand.Rand, depth int, ids []uint64) (*qdrant.Filter, func(uint64, map[string]any) bool, string) {
	f := &qdrant.Filter{}
	var must, should, mustNot []cond
	for i := 0; i < r.IntN(3); i++ {
		must = append(must, randCond(r, depth, ids))
	}
	for i := 0; i < r.IntN(3); i++ {
		should = append(should, randCond(r, depth, ids))
	}
	for i := 0; i < r.IntN(2); i++ {
		mustNot = append(mustNot, randCond(r, depth, ids))
	}
	desc := ""
	for _, c := range must {
		f.Must = append(f.Must, c.c)
		desc += " +" + c.desc
	}
	for _, c := range should {
		f.Should = append(f.Should, c.c)
		desc += " ?" + c.desc
	}
	for _, c := range mustNot {
		f.MustNot = append(f.MustNot, c.c)
		desc += " -" + c.desc
	}
	eval := func(id uint64, p map[string]any) bool {
		for _, c := range must {
			if !c.eval(id, p) {
				return false
			}
		}
		for _, c := range mustNot {
			if c.eval(id, p) {
				return false
			}
		}
		if len(should) == 0 {
			return true
		}
		for _, c := range should {
			if c.eval(id, p) {
				return true
			}
		}
		return false
	}
	return f, eval, desc
}

func TestFilterSemantics(t *testing.T) {
	ctx := context.Background()
	c := newClient(t)
	tests := []struct {
		name    string
		indexed bool
	}{
		{"no payload index", false},
		{"keyword and integer indexes", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := rand.New(rand.NewPCG(42, 1))
			name := newCollection(t, c, &qdrant.CreateCollection{
				VectorsConfig: qdrant.NewVectorsConfig(&qdrant.VectorParams{Size: 4, Distance: qdrant.Distance_Dot}),
			})
			if tt.indexed {
				for key, ft := range map[string]qdrant.FieldType{"color": qdrant.FieldType_FieldTypeKeyword, "tags": qdrant.FieldType_FieldTypeKeyword, "n": qdrant.FieldType_FieldTypeInteger, "meta.level": qdrant.FieldType_FieldTypeInteger} {
					if _, err := c.CreateFieldIndex(ctx, &qdrant.CreateFieldIndexCollection{CollectionName: name, Wait: wait(), FieldName: key, FieldType: ft.Enum()}); err != nil {
						t.Fatalf("CreateFieldIndex(%s): %v", key, err)
					}
				}
			}
			const n = 300
			payloads := map[uint64]map[string]any{}
			vecs := map[uint64][]float32{}
			var ids []uint64
			var pts []*qdrant.PointStruct
			for i := 0; i < n; i++ {
				id := uint64(1000 + i*7)
				ids = append(ids, id)
				payloads[id] = randPayload(r)
				vecs[id] = randVec(r, 4)
				pts = append(pts, &qdrant.PointStruct{Id: qdrant.NewIDNum(id), Vectors: qdrant.NewVectorsDense(vecs[id]), Payload: qdrant.NewValueMap(payloads[id])})
			}
			if _, err := c.Upsert(ctx, &qdrant.UpsertPoints{CollectionName: name, Wait: wait(), Points: pts}); err != nil {
				t.Fatalf("Upsert: %v", err)
			}
			if tt.indexed {
				info, err := c.GetCollectionInfo(ctx, name)
				if err != nil {
					t.Fatalf("GetCollectionInfo: %v", err)
				}
				if s := info.GetPayloadSchema()["color"]; s.GetDataType() != qdrant.PayloadSchemaType_Keyword {
					t.Errorf("payload schema for color = %v, want keyword", s)
				}
			}
			for trial := 0; trial < 60; trial++ {
				f, eval, desc := randFilter(r, 0, ids)
				var want []uint64
				for _, id := range ids {
					if eval(id, payloads[id]) {
						want = append(want, id)
					}
				}
				limit := uint32(n + 1)
				res, err := c.Scroll(ctx, &qdrant.ScrollPoints{CollectionName: name, Filter: f, Limit: &limit, WithPayload: qdrant.NewWithPayload(false)})
				if err != nil {
					t.Fatalf("Scroll(%s): %v", desc, err)
				}
				var got []uint64
				for _, p := range res {
					got = append(got, p.GetId().GetNum())
				}
				if !slices.Equal(got, want) {
					t.Errorf("Scroll filter%s:\n got %v\nwant %v", desc, got, want)
					continue
				}
				cnt, err := c.Count(ctx, &qdrant.CountPoints{CollectionName: name, Filter: f, Exact: wait()})
				if err != nil || cnt != uint64(len(want)) {
					t.Errorf("Count filter%s = %d, %v; want %d", desc, cnt, err, len(want))
				}
				// A filtered nearest query returns exactly the best matches.
				q := randVec(r, 4)
				var hits []hit
				for _, id := range want {
					hits = append(hits, hit{id, expectedScore(qdrant.Distance_Dot, q, vecs[id])})
				}
				rankHits(hits, false)
				qr, err := c.Query(ctx, &qdrant.QueryPoints{CollectionName: name, Query: qdrant.NewQueryDense(q), Filter: f, Limit: qdrant.PtrOf(uint64(10))})
				if err != nil {
					t.Fatalf("Query(%s): %v", desc, err)
				}
				checkHits(t, "filtered query"+desc, qr, hits[:min(10, len(hits))])
			}
		})
	}
}
