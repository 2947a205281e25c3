package vectordb

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/qdrant/go-client/qdrant"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/prototext"
)

func mustOpen(t *testing.T, dir string, opts ...Option) *Store {
	t.Helper()
	s, err := Open(dir, opts...)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return s
}

// dump renders a store's whole state canonically.
func dump(t *testing.T, s *Store) string {
	t.Helper()
	var b strings.Builder
	for _, name := range s.ListCollections() {
		c, _ := s.collection(name)
		c.mu.RLock()
		fmt.Fprintf(&b, "collection %s live=%d shard_keys=%v\n", name, c.live, c.sortedShardKeys())
		fmt.Fprintf(&b, "config %s\n", prototext.Format(c.create))
		var idx []string
		for k, fi := range c.indexes {
			idx = append(idx, fmt.Sprintf("%s:%v:%d", k, fi.typ, len(fi.count)))
		}
		sort.Strings(idx)
		fmt.Fprintf(&b, "indexes %v\n", idx)
		shardName := map[uint32]string{0: "-"}
		for ks, n := range c.shardNum {
			shardName[n] = ks
		}
		for _, slot := range c.sortedSlots() {
			p := c.points[slot]
			vec := c.vectorsOutput(slot, vectorSelector{all: true})
			fmt.Fprintf(&b, "%s shard=%s %s %s\n", p.id, shardName[p.shard], prototext.Format(&qdrant.Struct{Fields: p.payload}), prototext.Format(vec))
		}
		c.mu.RUnlock()
	}
	as, err := s.ListAliases(context.Background(), "")
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range as {
		fmt.Fprintf(&b, "alias %s -> %s\n", a.GetAliasName(), a.GetCollectionName())
	}
	return b.String()
}

func wait() *bool { b := true; return &b }

func selKeys(keys ...*qdrant.ShardKey) *qdrant.ShardKeySelector {
	return &qdrant.ShardKeySelector{ShardKeys: keys}
}

// populate writes a mix of every operation.
func populate(t *testing.T, s *Store, r *rand.Rand, round int) {
	t.Helper()
	ctx := context.Background()
	if round == 0 {
		for _, req := range []*qdrant.CreateCollection{
			{CollectionName: "plain", VectorsConfig: qdrant.NewVectorsConfig(&qdrant.VectorParams{Size: 4, Distance: qdrant.Distance_Cosine})},
			{CollectionName: "hybrid",
				VectorsConfig:       qdrant.NewVectorsConfigMap(map[string]*qdrant.VectorParams{"d": {Size: 3, Distance: qdrant.Distance_Euclid}}),
				SparseVectorsConfig: qdrant.NewSparseVectorsConfig(map[string]*qdrant.SparseVectorParams{"s": {Modifier: qdrant.Modifier_Idf.Enum()}})},
			{CollectionName: "doomed", VectorsConfig: qdrant.NewVectorsConfig(&qdrant.VectorParams{Size: 2, Distance: qdrant.Distance_Dot})},
		} {
			if err := s.CreateCollection(ctx, req); err != nil {
				t.Fatalf("CreateCollection(%s): %v", req.CollectionName, err)
			}
		}
		if _, err := s.CreateFieldIndex(ctx, &qdrant.CreateFieldIndexCollection{CollectionName: "plain", FieldName: "k", FieldType: qdrant.FieldType_FieldTypeKeyword.Enum(), Wait: wait()}); err != nil {
			t.Fatal(err)
		}
		if err := s.CreateCollection(ctx, &qdrant.CreateCollection{CollectionName: "sharded", ShardingMethod: qdrant.ShardingMethod_Custom.Enum(),
			VectorsConfig: qdrant.NewVectorsConfig(&qdrant.VectorParams{Size: 2, Distance: qdrant.Distance_Dot})}); err != nil {
			t.Fatal(err)
		}
		for _, k := range []*qdrant.ShardKey{qdrant.NewShardKey("a"), qdrant.NewShardKeyNum(7), qdrant.NewShardKey("gone")} {
			if err := s.CreateShardKey(ctx, &qdrant.CreateShardKeyRequest{CollectionName: "sharded", Request: &qdrant.CreateShardKey{ShardKey: k}}); err != nil {
				t.Fatal(err)
			}
		}
		// Points under the key deleted next go with it.
		if _, err := s.Upsert(ctx, &qdrant.UpsertPoints{CollectionName: "sharded", ShardKeySelector: selKeys(qdrant.NewShardKey("gone")),
			Points: []*qdrant.PointStruct{{Id: qdrant.NewIDNum(1000), Vectors: qdrant.NewVectors(1, 1)}}}); err != nil {
			t.Fatal(err)
		}
		if err := s.DeleteShardKey(ctx, &qdrant.DeleteShardKeyRequest{CollectionName: "sharded", Request: &qdrant.DeleteShardKey{ShardKey: qdrant.NewShardKey("gone")}}); err != nil {
			t.Fatal(err)
		}
		if err := s.UpdateAliases(ctx, &qdrant.ChangeAliases{Actions: []*qdrant.AliasOperations{
			qdrant.NewAliasCreate("live", "plain"), qdrant.NewAliasCreate("tmp", "hybrid"), qdrant.NewAliasCreate("old", "doomed"),
		}}); err != nil {
			t.Fatal(err)
		}
	}
	if round == 1 {
		if ok, err := s.DeleteCollection(ctx, "doomed"); !ok || err != nil {
			t.Fatalf("DeleteCollection = %v, %v", ok, err)
		}
	}
	for i := 0; i < 50; i++ {
		id := uint64(r.IntN(80))
		if _, err := s.Upsert(ctx, &qdrant.UpsertPoints{CollectionName: "plain", Wait: wait(), Points: []*qdrant.PointStruct{{
			Id: qdrant.NewIDNum(id), Vectors: qdrant.NewVectors(r.Float32(), r.Float32(), r.Float32(), 1),
			Payload: qdrant.NewValueMap(map[string]any{"k": fmt.Sprint("v", r.IntN(3)), "r": int64(round), "nest": map[string]any{"a": []any{nil, 1.5}}}),
		}}}); err != nil {
			t.Fatalf("Upsert: %v", err)
		}
		if _, err := s.Upsert(ctx, &qdrant.UpsertPoints{CollectionName: "hybrid", Points: []*qdrant.PointStruct{{
			Id: qdrant.NewIDUUID(fmt.Sprintf("00000000-0000-0000-0000-%012d", r.IntN(60))),
			Vectors: qdrant.NewVectorsMap(map[string]*qdrant.Vector{
				"d": qdrant.NewVector(r.Float32(), r.Float32(), r.Float32()),
				"s": qdrant.NewVectorSparse([]uint32{uint32(r.IntN(5)), 9}, []float32{r.Float32(), 1}),
			}),
		}}}); err != nil {
			t.Fatalf("Upsert hybrid: %v", err)
		}
	}
	if _, err := s.Delete(ctx, &qdrant.DeletePoints{CollectionName: "plain", Points: qdrant.NewPointsSelectorFilter(&qdrant.Filter{Must: []*qdrant.Condition{qdrant.NewMatchKeyword("k", "v0")}})}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.SetPayload(ctx, &qdrant.SetPayloadPoints{CollectionName: "plain", Payload: qdrant.NewValueMap(map[string]any{"extra": round}),
		PointsSelector: qdrant.NewPointsSelectorFilter(&qdrant.Filter{Must: []*qdrant.Condition{qdrant.NewMatchKeyword("k", "v1")}})}, false); err != nil {
		t.Fatal(err)
	}
	if err := s.UpdateCollection(ctx, &qdrant.UpdateCollection{CollectionName: "plain",
		OptimizersConfig: &qdrant.OptimizersConfigDiff{IndexingThreshold: qdrant.PtrOf(uint64(1000 + round))},
		HnswConfig:       &qdrant.HnswConfigDiff{M: qdrant.PtrOf(uint64(8 + round))}}); err != nil {
		t.Fatal(err)
	}
	if err := s.UpdateAliases(ctx, &qdrant.ChangeAliases{Actions: []*qdrant.AliasOperations{
		qdrant.NewAliasRename("tmp", fmt.Sprint("tmp", round+1)),
	}}); err != nil && round == 0 {
		t.Fatal(err)
	}
	// Through the alias: UpdateVectors, DeleteVectors, DeletePayload and
	// ClearPayload each rewrite part of a point.
	for i := 0; i < 10; i++ {
		id := qdrant.NewIDNum(uint64(r.IntN(80)))
		var err error
		switch i % 4 {
		case 0:
			_, err = s.UpdateVectors(ctx, &qdrant.UpdatePointVectors{CollectionName: "live", Points: []*qdrant.PointVectors{{Id: id, Vectors: qdrant.NewVectors(r.Float32(), 2, 3, 4)}}})
		case 1:
			_, err = s.DeleteVectors(ctx, &qdrant.DeletePointVectors{CollectionName: "live", PointsSelector: qdrant.NewPointsSelector(id), Vectors: &qdrant.VectorsSelector{Names: []string{""}}})
		case 2:
			_, err = s.DeletePayload(ctx, &qdrant.DeletePayloadPoints{CollectionName: "live", PointsSelector: qdrant.NewPointsSelector(id), Keys: []string{"nest.a", "r"}})
		case 3:
			_, err = s.ClearPayload(ctx, &qdrant.ClearPayloadPoints{CollectionName: "live", Points: qdrant.NewPointsSelector(id)})
		}
		if err != nil && status.Code(err) != codes.NotFound {
			t.Fatalf("op %d: %v", i, err)
		}
	}
	// Sharded points: even ids under "a", odd under 7; rewrites keep them
	// there.
	for i := 0; i < 20; i++ {
		id := uint64(r.IntN(30))
		sel := selKeys(qdrant.NewShardKey("a"))
		if id%2 == 1 {
			sel = selKeys(qdrant.NewShardKeyNum(7))
		}
		if _, err := s.Upsert(ctx, &qdrant.UpsertPoints{CollectionName: "sharded", ShardKeySelector: sel,
			Points: []*qdrant.PointStruct{{Id: qdrant.NewIDNum(id), Vectors: qdrant.NewVectors(r.Float32(), 1), Payload: qdrant.NewValueMap(map[string]any{"r": int64(round)})}}}); err != nil {
			t.Fatalf("sharded upsert: %v", err)
		}
	}
	if _, err := s.UpdateVectors(ctx, &qdrant.UpdatePointVectors{CollectionName: "sharded",
		Points: []*qdrant.PointVectors{{Id: qdrant.NewIDNum(uint64(r.IntN(30))), Vectors: qdrant.NewVectors(3, 3)}}}); err != nil && status.Code(err) != codes.NotFound {
		t.Fatal(err)
	}
	if _, err := s.Delete(ctx, &qdrant.DeletePoints{CollectionName: "sharded", ShardKeySelector: selKeys(qdrant.NewShardKeyNum(7)),
		Points: qdrant.NewPointsSelector(qdrant.NewIDNum(uint64(r.IntN(30))))}); err != nil {
		t.Fatal(err)
	}
	key := "nest"
	if _, err := s.SetPayload(ctx, &qdrant.SetPayloadPoints{CollectionName: "plain", Payload: qdrant.NewValueMap(map[string]any{"b": "x"}), Key: &key,
		PointsSelector: qdrant.NewPointsSelector(qdrant.NewIDNum(uint64(r.IntN(80))))}, false); err != nil {
		t.Fatal(err)
	}
}

func TestRecoveryMatchesState(t *testing.T) {
	tests := []struct {
		name     string
		snapshot bool // snapshot midway
		crash    bool // abandon instead of Close
	}{
		{"wal only, crash", false, true},
		{"snapshot then wal, crash", true, true},
		{"clean close", true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			r := rand.New(rand.NewPCG(3, 4))
			s := mustOpen(t, dir)
			populate(t, s, r, 0)
			if tt.snapshot {
				if err := s.Snapshot(); err != nil {
					t.Fatalf("Snapshot: %v", err)
				}
			}
			populate(t, s, r, 1)
			// wait=false writes must be in the OS's hands before a crash.
			if err := s.wal.Sync(s.wal.LastSeq()); err != nil {
				t.Fatal(err)
			}
			want := dump(t, s)
			if tt.crash {
				s.abandon()
			} else if err := s.Close(); err != nil {
				t.Fatalf("Close: %v", err)
			}
			s2 := mustOpen(t, dir)
			defer s2.Close()
			if got := dump(t, s2); got != want {
				t.Errorf("state after reopen differs:\n got %s\nwant %s", got, want)
			}
			// And it keeps working: more writes, another reopen.
			populate(t, s2, r, 2)
			want = dump(t, s2)
			if err := s2.Close(); err != nil {
				t.Fatal(err)
			}
			s3 := mustOpen(t, dir)
			defer s3.Close()
			if got := dump(t, s3); got != want {
				t.Errorf("state after second reopen differs")
			}
		})
	}
}

func TestDataDirLocked(t *testing.T) {
	dir := t.TempDir()
	s := mustOpen(t, dir)
	defer s.Close()
	if s2, err := Open(dir); err == nil {
		s2.Close()
		t.Fatal("second Open of the same data dir succeeded")
	}
}

func TestConcurrentReadersWritersAndSnapshots(t *testing.T) {
	tests := []struct {
		name string
		ann  int
	}{
		{"exact", 1 << 30},
		{"hnsw", 50},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { testConcurrent(t, tt.ann) })
	}
}

func testConcurrent(t *testing.T, annThreshold int) {
	dir := t.TempDir()
	s := mustOpen(t, dir, WithSnapshotThreshold(32<<10), WithANNThreshold(annThreshold))
	ctx := context.Background()
	if err := s.CreateCollection(ctx, &qdrant.CreateCollection{CollectionName: "c", VectorsConfig: qdrant.NewVectorsConfig(&qdrant.VectorParams{Size: 8, Distance: qdrant.Distance_Dot})}); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for w := 0; w < 3; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(w), 1))
			for i := 0; i < 150; i++ {
				id := uint64(w*1000 + i)
				if i%7 == 3 && i > 20 {
					id -= 20 // re-upsert an older point: its HNSW node goes stale
				}
				v := make([]float32, 8)
				for j := range v {
					v[j] = r.Float32()
				}
				if _, err := s.Upsert(ctx, &qdrant.UpsertPoints{CollectionName: "c", Wait: wait(), Points: []*qdrant.PointStruct{{Id: qdrant.NewIDNum(id), Vectors: qdrant.NewVectorsDense(v), Payload: qdrant.NewValueMap(map[string]any{"w": int64(w)})}}}); err != nil {
					errs <- err
					return
				}
				if i%10 == 0 {
					if _, err := s.Delete(ctx, &qdrant.DeletePoints{CollectionName: "c", Points: qdrant.NewPointsSelector(qdrant.NewIDNum(id - 5))}); err != nil {
						errs <- err
						return
					}
				}
			}
		}()
	}
	for rd := 0; rd < 2; rd++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 100; i++ {
				res, err := s.Query(ctx, &qdrant.QueryPoints{CollectionName: "c", Query: qdrant.NewQuery(1, 1, 1, 1, 1, 1, 1, 1), Filter: &qdrant.Filter{Must: []*qdrant.Condition{qdrant.NewMatchInt("w", 1)}}, WithPayload: qdrant.NewWithPayload(true)})
				if err != nil {
					errs <- err
					return
				}
				seen := map[uint64]bool{}
				for _, p := range res {
					if seen[p.GetId().GetNum()] || p.GetPayload()["w"].GetIntegerValue() != 1 {
						errs <- fmt.Errorf("query returned a duplicate or a filtered-out point: %v", p)
						return
					}
					seen[p.GetId().GetNum()] = true
				}
				if _, err := s.Query(ctx, &qdrant.QueryPoints{CollectionName: "c", Query: qdrant.NewQuery(1, 1, 1, 1, 1, 1, 1, 1)}); err != nil {
					errs <- err
					return
				}
				if _, _, err := s.Scroll(ctx, &qdrant.ScrollPoints{CollectionName: "c"}); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; i < 5; i++ {
			if err := s.Snapshot(); err != nil {
				errs <- err
				return
			}
		}
	}()
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("concurrent op: %v", err)
	}
	want := dump(t, s)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s2 := mustOpen(t, dir)
	defer s2.Close()
	if got := dump(t, s2); got != want {
		t.Errorf("state after concurrent run and reopen differs")
	}
	// Every hit scores as its current vector: no stale HNSW node leaks.
	q := []float32{1, 1, 1, 1, 1, 1, 1, 1}
	res, err := s2.Query(ctx, &qdrant.QueryPoints{CollectionName: "c", Query: qdrant.NewQueryDense(q), Limit: ptr[uint64](50), WithVectors: qdrant.NewWithVectors(true)})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range res {
		var want float32
		for i, x := range p.GetVectors().GetVector().GetDenseVector().GetData() {
			want += q[i] * x
		}
		if d := want - p.GetScore(); d > 1e-4 || d < -1e-4 {
			t.Errorf("point %d scored %v, its vector gives %v", p.GetId().GetNum(), p.GetScore(), want)
		}
	}
}

func TestANNRecallAndFilteredSearch(t *testing.T) {
	ctx := context.Background()
	s := mustOpen(t, t.TempDir(), WithANNThreshold(500))
	defer s.Close()
	s.opts.ann.minANNMatches = 200 // scaled down with the collection
	const dim, n = 24, 1500
	if err := s.CreateCollection(ctx, &qdrant.CreateCollection{CollectionName: "ann", VectorsConfig: qdrant.NewVectorsConfig(&qdrant.VectorParams{Size: dim, Distance: qdrant.Distance_Cosine}),
		HnswConfig: &qdrant.HnswConfigDiff{EfConstruct: ptr[uint64](64)}}); err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(5, 5))
	centers := make([][]float32, 20)
	for i := range centers {
		centers[i] = make([]float32, dim)
		for j := range centers[i] {
			centers[i][j] = float32(r.NormFloat64())
		}
	}
	var pts []*qdrant.PointStruct
	for i := 0; i < n; i++ {
		c := centers[r.IntN(len(centers))]
		v := make([]float32, dim)
		for j := range v {
			v[j] = c[j] + 0.3*float32(r.NormFloat64())
		}
		tenant := "big"
		if i%25 == 0 {
			tenant = "small"
		}
		pts = append(pts, &qdrant.PointStruct{Id: qdrant.NewIDNum(uint64(i)), Vectors: qdrant.NewVectorsDense(v),
			Payload: qdrant.NewValueMap(map[string]any{"tenant": tenant, "half": int64(i % 2)})})
		if len(pts) == 500 {
			if _, err := s.Upsert(ctx, &qdrant.UpsertPoints{CollectionName: "ann", Points: pts}); err != nil {
				t.Fatal(err)
			}
			pts = nil
		}
	}
	c, _ := s.collection("ann")
	if c.dense[""].ann == nil {
		t.Fatal("ANN index was not built past the threshold")
	}
	filters := []struct {
		name   string
		filter *qdrant.Filter
		check  func(p *qdrant.ScoredPoint) bool
		ann    bool // whether the graph should serve it
	}{
		{"none", nil, func(*qdrant.ScoredPoint) bool { return true }, true},
		{"half (broad, graph search)", &qdrant.Filter{Must: []*qdrant.Condition{qdrant.NewMatchInt("half", 1)}},
			func(p *qdrant.ScoredPoint) bool { return p.GetPayload()["half"].GetIntegerValue() == 1 }, true},
		{"small tenant (selective, exact)", &qdrant.Filter{Must: []*qdrant.Condition{qdrant.NewMatchKeyword("tenant", "small")}},
			func(p *qdrant.ScoredPoint) bool { return p.GetPayload()["tenant"].GetStringValue() == "small" }, false},
	}
	for _, ft := range filters {
		t.Run(ft.name, func(t *testing.T) {
			annBefore := c.annSearches.Load()
			var found, total int
			for qi := 0; qi < 30; qi++ {
				q := make([]float32, dim)
				for j := range q {
					q[j] = float32(r.NormFloat64())
				}
				ann, err := s.Query(ctx, &qdrant.QueryPoints{CollectionName: "ann", Query: qdrant.NewQueryDense(q), Filter: ft.filter, WithPayload: qdrant.NewWithPayload(true)})
				if err != nil {
					t.Fatal(err)
				}
				exact, err := s.Query(ctx, &qdrant.QueryPoints{CollectionName: "ann", Query: qdrant.NewQueryDense(q), Filter: ft.filter, Params: &qdrant.SearchParams{Exact: wait()}})
				if err != nil {
					t.Fatal(err)
				}
				var want []uint64
				for _, p := range exact {
					want = append(want, p.GetId().GetNum())
				}
				for _, p := range ann {
					if !ft.check(p) {
						t.Fatalf("point %d violates the filter: %v", p.GetId().GetNum(), p.GetPayload())
					}
					if slices.Contains(want, p.GetId().GetNum()) {
						found++
					}
				}
				total += len(want)
			}
			if used := c.annSearches.Load() > annBefore; used != ft.ann {
				t.Errorf("graph search used = %v, want %v", used, ft.ann)
			}
			recall := float64(found) / float64(total)
			if recall < 0.95 {
				t.Errorf("recall@10 = %.3f, want >= 0.95", recall)
			}
			t.Logf("recall@10 = %.3f", recall)
		})
	}
}

func TestANNGraphPersistsInSnapshot(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := mustOpen(t, dir, WithANNThreshold(150))
	const dim = 16
	if err := s.CreateCollection(ctx, &qdrant.CreateCollection{CollectionName: "p", VectorsConfig: qdrant.NewVectorsConfig(&qdrant.VectorParams{Size: dim, Distance: qdrant.Distance_Dot}),
		HnswConfig: &qdrant.HnswConfigDiff{EfConstruct: ptr[uint64](64)}}); err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(9, 9))
	upsert := func(lo, hi int) {
		var pts []*qdrant.PointStruct
		for i := lo; i < hi; i++ {
			v := make([]float32, dim)
			for j := range v {
				v[j] = float32(r.NormFloat64())
			}
			pts = append(pts, &qdrant.PointStruct{Id: qdrant.NewIDNum(uint64(i)), Vectors: qdrant.NewVectorsDense(v)})
		}
		if _, err := s.Upsert(ctx, &qdrant.UpsertPoints{CollectionName: "p", Points: pts}); err != nil {
			t.Fatal(err)
		}
	}
	upsert(0, 400)
	upsert(100, 150) // re-upserts leave tombstoned nodes behind
	if _, err := s.Delete(ctx, &qdrant.DeletePoints{CollectionName: "p", Points: qdrant.NewPointsSelector(qdrant.NewIDNum(5), qdrant.NewIDNum(6))}); err != nil {
		t.Fatal(err)
	}
	query := func(s *Store) string {
		var b strings.Builder
		for i := 0; i < 20; i++ {
			q := make([]float32, dim)
			q[i%dim] = 1
			res, err := s.Query(ctx, &qdrant.QueryPoints{CollectionName: "p", Query: qdrant.NewQueryDense(q)})
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range res {
				fmt.Fprintf(&b, "%d:%.5f ", p.GetId().GetNum(), p.GetScore())
			}
			b.WriteByte('\n')
		}
		return b.String()
	}
	c, _ := s.collection("p")
	nodes := len(c.dense[""].ann.(*hnswANN).slotOf)
	before := query(s)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s2 := mustOpen(t, dir, WithANNThreshold(150), WithLogger(slog.New(slog.NewTextHandler(testLogWriter{t}, nil))))
	defer s2.Close()
	c2, _ := s2.collection("p")
	a, ok := c2.dense[""].ann.(*hnswANN)
	if !ok {
		t.Fatal("no HNSW graph after reopen")
	}
	if len(a.slotOf) != nodes {
		t.Errorf("graph has %d nodes after reopen, want %d (loaded, not rebuilt)", len(a.slotOf), nodes)
	}
	if after := query(s2); after != before {
		t.Errorf("results differ after reopen:\n got %s\nwant %s", after, before)
	}
	// The loaded graph keeps taking writes.
	s = s2
	upsert(400, 450)
	if n, _ := s2.Count(ctx, &qdrant.CountPoints{CollectionName: "p"}); n != 448 {
		t.Errorf("Count = %d, want 448", n)
	}
}

type testLogWriter struct{ t *testing.T }

func (w testLogWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}
