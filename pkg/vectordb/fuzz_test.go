package vectordb

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/qdrant/go-client/qdrant"
	"google.golang.org/protobuf/proto"
)

// FuzzRequests feeds arbitrary bytes, decoded as each request type the
// server accepts, to a store with data in it: no input may panic, and the
// store must stay consistent enough to answer a count.
func FuzzRequests(f *testing.F) {
	seeds := []proto.Message{
		&qdrant.QueryPoints{CollectionName: "f", Query: qdrant.NewQuery(1, 2), Filter: &qdrant.Filter{Must: []*qdrant.Condition{qdrant.NewMatchKeyword("a.b[].c", "x"), qdrant.NewRange("n", &qdrant.Range{Gt: ptr(1.0)})}}},
		&qdrant.QueryPoints{CollectionName: "f", Prefetch: []*qdrant.PrefetchQuery{{Query: qdrant.NewQuerySparse([]uint32{1}, []float32{1}), Using: ptr("s")}}, Query: qdrant.NewQueryFusion(qdrant.Fusion_RRF)},
		&qdrant.UpsertPoints{CollectionName: "f", Points: []*qdrant.PointStruct{{Id: qdrant.NewIDNum(5), Vectors: qdrant.NewVectors(1, 2), Payload: qdrant.NewValueMap(map[string]any{"a": []any{map[string]any{"b": 1}}})}}},
		&qdrant.ScrollPoints{CollectionName: "f", Offset: qdrant.NewIDUUID("5c56c793-69f3-4fbf-87e6-c4bf54c28c26"), WithPayload: qdrant.NewWithPayloadInclude("a.b", "x[0]")},
		&qdrant.SetPayloadPoints{CollectionName: "f", Key: ptr("a[0].z"), Payload: qdrant.NewValueMap(map[string]any{"k": 1}), PointsSelector: qdrant.NewPointsSelector(qdrant.NewIDNum(1))},
		&qdrant.CreateCollection{},
		&qdrant.QueryPointGroups{CollectionName: "f", Query: qdrant.NewQuery(1, 2), GroupBy: "a[].b", Limit: ptr[uint64](3), GroupSize: ptr[uint64](2)},
		&qdrant.FacetCounts{CollectionName: "f", Key: "n"},
		&qdrant.SearchMatrixPoints{CollectionName: "f", Sample: ptr[uint64](5)},
		&qdrant.ChangeAliases{Actions: []*qdrant.AliasOperations{qdrant.NewAliasCreate("al", "f"), qdrant.NewAliasRename("al", "b")}},
		&qdrant.UpdateBatchPoints{CollectionName: "f", Operations: []*qdrant.PointsUpdateOperation{qdrant.NewPointsUpdateDeletePayload(&qdrant.PointsUpdateOperation_DeletePayload{Keys: []string{"a"}, PointsSelector: qdrant.NewPointsSelector(qdrant.NewIDNum(1))})}},
		&qdrant.UpdatePointVectors{CollectionName: "f", Points: []*qdrant.PointVectors{{Id: qdrant.NewIDNum(1), Vectors: qdrant.NewVectors(0, 1)}}},
		&qdrant.DeletePointVectors{CollectionName: "f", PointsSelector: qdrant.NewPointsSelector(qdrant.NewIDNum(1)), Vectors: &qdrant.VectorsSelector{Names: []string{"s"}}},
		&qdrant.UpdateCollection{CollectionName: "f", OptimizersConfig: &qdrant.OptimizersConfigDiff{IndexingThreshold: ptr[uint64](5)}},
	}
	for i, m := range seeds {
		b, err := proto.Marshal(m)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(uint8(i), b)
	}
	s, err := Open(f.TempDir())
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { s.Close() })
	ctx := context.Background()
	if err := s.CreateCollection(ctx, &qdrant.CreateCollection{CollectionName: "f",
		VectorsConfig:       qdrant.NewVectorsConfig(&qdrant.VectorParams{Size: 2, Distance: qdrant.Distance_Cosine}),
		SparseVectorsConfig: qdrant.NewSparseVectorsConfig(map[string]*qdrant.SparseVectorParams{"s": {Modifier: qdrant.Modifier_Idf.Enum()}}),
	}); err != nil {
		f.Fatal(err)
	}
	if _, err := s.Upsert(ctx, &qdrant.UpsertPoints{CollectionName: "f", Points: []*qdrant.PointStruct{
		{Id: qdrant.NewIDNum(1), Vectors: qdrant.NewVectorsMap(map[string]*qdrant.Vector{"": qdrant.NewVector(1, 0), "s": qdrant.NewVectorSparse([]uint32{1, 2}, []float32{1, 1})}),
			Payload: qdrant.NewValueMap(map[string]any{"a": []any{map[string]any{"b": []any{map[string]any{"c": "x"}}}}, "n": 2})},
	}}); err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, kind uint8, b []byte) {
		switch kind % 14 {
		case 0:
			var r qdrant.QueryPoints
			if proto.Unmarshal(b, &r) == nil {
				r.CollectionName = "f"
				s.Query(ctx, &r)
			}
		case 1:
			var r qdrant.QueryPoints
			if proto.Unmarshal(b, &r) == nil {
				r.CollectionName = "f"
				if r.Limit != nil && *r.Limit > 1000 {
					*r.Limit = 1000
				}
				s.Query(ctx, &r)
			}
		case 2:
			var r qdrant.UpsertPoints
			if proto.Unmarshal(b, &r) == nil {
				r.CollectionName = "f"
				s.Upsert(ctx, &r)
			}
		case 3:
			var r qdrant.ScrollPoints
			if proto.Unmarshal(b, &r) == nil {
				r.CollectionName = "f"
				s.Scroll(ctx, &r)
			}
		case 4:
			var r qdrant.SetPayloadPoints
			if proto.Unmarshal(b, &r) == nil {
				r.CollectionName = "f"
				s.SetPayload(ctx, &r, false)
			}
		case 5:
			var r qdrant.CreateCollection
			if proto.Unmarshal(b, &r) == nil && r.GetCollectionName() != "f" {
				if err := s.CreateCollection(ctx, &r); err == nil {
					s.DeleteCollection(ctx, r.GetCollectionName())
				}
			}
		case 6:
			var r qdrant.QueryPointGroups
			if proto.Unmarshal(b, &r) == nil {
				r.CollectionName = "f"
				s.QueryGroups(ctx, &r)
			}
		case 7:
			var r qdrant.FacetCounts
			if proto.Unmarshal(b, &r) == nil {
				r.CollectionName = "f"
				s.Facet(ctx, &r)
			}
		case 8:
			var r qdrant.SearchMatrixPoints
			if proto.Unmarshal(b, &r) == nil {
				r.CollectionName = "f"
				s.SearchMatrix(ctx, &r)
			}
		case 9:
			var r qdrant.ChangeAliases
			if proto.Unmarshal(b, &r) == nil {
				s.UpdateAliases(ctx, &r)
			}
		case 10:
			var r qdrant.UpdateBatchPoints
			if proto.Unmarshal(b, &r) == nil {
				r.CollectionName = "f"
				s.UpdateBatch(ctx, &r)
			}
		case 11:
			var r qdrant.UpdatePointVectors
			if proto.Unmarshal(b, &r) == nil {
				r.CollectionName = "f"
				s.UpdateVectors(ctx, &r)
			}
		case 12:
			var r qdrant.DeletePointVectors
			if proto.Unmarshal(b, &r) == nil {
				r.CollectionName = "f"
				s.DeleteVectors(ctx, &r)
			}
		case 13:
			var r qdrant.UpdateCollection
			if proto.Unmarshal(b, &r) == nil {
				r.CollectionName = "f"
				s.UpdateCollection(ctx, &r)
			}
		}
		if _, err := s.Count(ctx, &qdrant.CountPoints{CollectionName: "f"}); err != nil {
			t.Fatalf("Count after fuzzed request: %v", err)
		}
	})
}

// FuzzSnapshotFile restores arbitrary bytes as a snapshot file: no input
// may panic, and a refused file leaves the store as it was.
func FuzzSnapshotFile(f *testing.F) {
	ctx := context.Background()
	src, err := Open(f.TempDir())
	if err != nil {
		f.Fatal(err)
	}
	if err := src.CreateCollection(ctx, &qdrant.CreateCollection{CollectionName: "c",
		VectorsConfig: qdrant.NewVectorsConfig(&qdrant.VectorParams{Size: 2, Distance: qdrant.Distance_Dot})}); err != nil {
		f.Fatal(err)
	}
	if _, err := src.Upsert(ctx, &qdrant.UpsertPoints{CollectionName: "c", Points: []*qdrant.PointStruct{
		{Id: qdrant.NewIDNum(1), Vectors: qdrant.NewVectors(1, 2), Payload: qdrant.NewValueMap(map[string]any{"k": "v"})}}}); err != nil {
		f.Fatal(err)
	}
	d, err := src.CreateSnapshot(ctx, "c")
	if err != nil {
		f.Fatal(err)
	}
	good, err := os.ReadFile(filepath.Join(src.snapshotDir("c"), d.GetName()))
	if err != nil {
		f.Fatal(err)
	}
	src.Close()
	f.Add(good)
	f.Add(good[:len(good)/2])
	s, err := Open(f.TempDir())
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { s.Close() })
	path := filepath.Join(f.TempDir(), "in.snapshot")
	f.Fuzz(func(t *testing.T, b []byte) {
		if err := os.WriteFile(path, b, 0o644); err != nil {
			t.Fatal(err)
		}
		before := s.ListCollections()
		if err := s.RestoreSnapshot(ctx, path, "r"); err != nil {
			if after := s.ListCollections(); len(after) != len(before) {
				t.Fatalf("a refused restore changed the collections: %v -> %v", before, after)
			}
			return
		}
		if _, err := s.Count(ctx, &qdrant.CountPoints{CollectionName: "r"}); err != nil {
			t.Fatalf("Count after restore: %v", err)
		}
	})
}
