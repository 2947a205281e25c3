package conformance

import (
	"context"
	"errors"
	"os/exec"
	"sort"
	"syscall"
	"testing"

	"github.com/qdrant/go-client/qdrant"
	"google.golang.org/grpc/codes"
)

// Two shard keys of different kinds: a keyword and a number.
var (
	keyA = qdrant.NewShardKey("tenant_a")
	keyB = qdrant.NewShardKeyNum(7)
)

func selKeys(keys ...*qdrant.ShardKey) *qdrant.ShardKeySelector {
	return &qdrant.ShardKeySelector{ShardKeys: keys}
}

// shardFixture creates keyA and keyB in coll and puts ids 1–5 under keyA
// and 11–13 under keyB, each with payload shard=<its key> and vector
// (id, 1).
func shardFixture(t *testing.T, c *qdrant.Client, coll string) {
	t.Helper()
	ctx := context.Background()
	for _, k := range []*qdrant.ShardKey{keyA, keyB} {
		if err := c.CreateShardKey(ctx, coll, &qdrant.CreateShardKey{ShardKey: k}); err != nil {
			t.Fatalf("CreateShardKey: %v", err)
		}
	}
	put := func(sel *qdrant.ShardKeySelector, tag string, ids ...uint64) {
		var pts []*qdrant.PointStruct
		for _, id := range ids {
			pts = append(pts, &qdrant.PointStruct{Id: qdrant.NewIDNum(id), Vectors: qdrant.NewVectors(float32(id), 1),
				Payload: qdrant.NewValueMap(map[string]any{"shard": tag})})
		}
		if _, err := c.Upsert(ctx, &qdrant.UpsertPoints{CollectionName: coll, Wait: wait(), ShardKeySelector: sel, Points: pts}); err != nil {
			t.Fatalf("Upsert under %s: %v", tag, err)
		}
	}
	put(selKeys(keyA), "a", 1, 2, 3, 4, 5)
	put(selKeys(keyB), "b", 11, 12, 13)
}

func numIDs[T interface{ GetId() *qdrant.PointId }](ps []T) []uint64 {
	out := make([]uint64, 0, len(ps))
	for _, p := range ps {
		out = append(out, p.GetId().GetNum())
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

func equalIDs(a, b []uint64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// verifyShards checks that each selector sees exactly its shard's points
// (want maps a selector's name to its ids) through search, count, scroll,
// retrieve and query, and that no selector sees them all.
func verifyShards(t *testing.T, c *qdrant.Client, coll string, want map[string][]uint64) {
	t.Helper()
	ctx := context.Background()
	sels := map[string]*qdrant.ShardKeySelector{"a": selKeys(keyA), "b": selKeys(keyB), "all": nil}
	for name, sel := range sels {
		ids := want[name]
		n, err := c.Count(ctx, &qdrant.CountPoints{CollectionName: coll, Exact: qdrant.PtrOf(true), ShardKeySelector: sel})
		if err != nil || n != uint64(len(ids)) {
			t.Errorf("%s: Count = %d, %v; want %d", name, n, err, len(ids))
		}
		hits, err := c.Query(ctx, &qdrant.QueryPoints{CollectionName: coll, Query: qdrant.NewQuery(1, 0), Limit: qdrant.PtrOf(uint64(100)), ShardKeySelector: sel})
		if got := numIDs(hits); err != nil || !equalIDs(got, ids) {
			t.Errorf("%s: Query = %v, %v; want %v", name, got, err, ids)
		}
		res, err := c.GetPointsClient().Search(ctx, &qdrant.SearchPoints{CollectionName: coll, Vector: []float32{1, 0}, Limit: 100, ShardKeySelector: sel})
		if got := numIDs(res.GetResult()); err != nil || !equalIDs(got, ids) {
			t.Errorf("%s: Search = %v, %v; want %v", name, got, err, ids)
		}
		page, err := c.Scroll(ctx, &qdrant.ScrollPoints{CollectionName: coll, Limit: qdrant.PtrOf(uint32(100)), ShardKeySelector: sel})
		if got := numIDs(page); err != nil || !equalIDs(got, ids) {
			t.Errorf("%s: Scroll = %v, %v; want %v", name, got, err, ids)
		}
		var every []*qdrant.PointId
		for _, id := range want["all"] {
			every = append(every, qdrant.NewIDNum(id))
		}
		got, err := c.Get(ctx, &qdrant.GetPoints{CollectionName: coll, Ids: every, ShardKeySelector: sel})
		if g := numIDs(got); err != nil || !equalIDs(g, ids) {
			t.Errorf("%s: Get of every id = %v, %v; want %v", name, g, err, ids)
		}
	}
}

func TestCustomShardPlacement(t *testing.T) {
	ctx := context.Background()
	c := newClient(t)
	coll := newCollection(t, c, &qdrant.CreateCollection{
		ShardingMethod: qdrant.ShardingMethod_Custom.Enum(),
		VectorsConfig:  qdrant.NewVectorsConfig(&qdrant.VectorParams{Size: 2, Distance: qdrant.Distance_Dot}),
	})
	shardFixture(t, c, coll)
	verifyShards(t, c, coll, map[string][]uint64{"a": {1, 2, 3, 4, 5}, "b": {11, 12, 13}, "all": {1, 2, 3, 4, 5, 11, 12, 13}})

	// A filter inside a shard, and a facet over one shard.
	if _, err := c.CreateFieldIndex(ctx, &qdrant.CreateFieldIndexCollection{CollectionName: coll, Wait: wait(), FieldName: "shard", FieldType: qdrant.FieldType_FieldTypeKeyword.Enum()}); err != nil {
		t.Fatalf("CreateFieldIndex: %v", err)
	}
	n, err := c.Count(ctx, &qdrant.CountPoints{CollectionName: coll, Exact: qdrant.PtrOf(true), ShardKeySelector: selKeys(keyB),
		Filter: &qdrant.Filter{Must: []*qdrant.Condition{qdrant.NewMatch("shard", "a")}}})
	if err != nil || n != 0 {
		t.Errorf("Count of shard a's payload under key b = %d, %v; want 0", n, err)
	}
	facet, err := c.Facet(ctx, &qdrant.FacetCounts{CollectionName: coll, Key: "shard", ShardKeySelector: selKeys(keyB)})
	if err != nil || len(facet) != 1 || facet[0].GetValue().GetStringValue() != "b" || facet[0].GetCount() != 3 {
		t.Errorf("Facet under key b = %v, %v; want b:3", facet, err)
	}
	groups, err := c.QueryGroups(ctx, &qdrant.QueryPointGroups{CollectionName: coll, Query: qdrant.NewQuery(1, 0), GroupBy: "shard", ShardKeySelector: selKeys(keyA)})
	if err != nil || len(groups) != 1 || groups[0].GetId().GetStringValue() != "a" {
		t.Errorf("QueryGroups under key a = %v, %v; want one group a", groups, err)
	}

	// Writes with a selector touch only their shard: deleting id 11 under
	// key a is a no-op, under key b it deletes.
	if _, err := c.Delete(ctx, &qdrant.DeletePoints{CollectionName: coll, Wait: wait(), ShardKeySelector: selKeys(keyA), Points: qdrant.NewPointsSelector(qdrant.NewIDNum(11))}); err != nil {
		t.Fatalf("Delete under the other key: %v", err)
	}
	if _, err := c.SetPayload(ctx, &qdrant.SetPayloadPoints{CollectionName: coll, Wait: wait(), ShardKeySelector: selKeys(keyA),
		Payload: qdrant.NewValueMap(map[string]any{"touched": true}), PointsSelector: qdrant.NewPointsSelectorFilter(&qdrant.Filter{})}); err != nil {
		t.Fatalf("SetPayload under key a: %v", err)
	}
	touched, err := c.Count(ctx, &qdrant.CountPoints{CollectionName: coll, Exact: qdrant.PtrOf(true), Filter: &qdrant.Filter{Must: []*qdrant.Condition{qdrant.NewMatchBool("touched", true)}}})
	if err != nil || touched != 5 {
		t.Errorf("points touched by SetPayload under key a = %d, %v; want 5", touched, err)
	}
	if _, err := c.Delete(ctx, &qdrant.DeletePoints{CollectionName: coll, Wait: wait(), ShardKeySelector: selKeys(keyB), Points: qdrant.NewPointsSelector(qdrant.NewIDNum(11))}); err != nil {
		t.Fatalf("Delete under its key: %v", err)
	}
	verifyShards(t, c, coll, map[string][]uint64{"a": {1, 2, 3, 4, 5}, "b": {12, 13}, "all": {1, 2, 3, 4, 5, 12, 13}})

	// Fallback: a missing key reads and writes its fallback's shard.
	fb := &qdrant.ShardKeySelector{ShardKeys: []*qdrant.ShardKey{qdrant.NewShardKey("absent")}, Fallback: keyB}
	if _, err := c.Upsert(ctx, &qdrant.UpsertPoints{CollectionName: coll, Wait: wait(), ShardKeySelector: fb,
		Points: []*qdrant.PointStruct{{Id: qdrant.NewIDNum(14), Vectors: qdrant.NewVectors(14, 1), Payload: qdrant.NewValueMap(map[string]any{"shard": "b"})}}}); err != nil {
		t.Fatalf("Upsert with a fallback: %v", err)
	}
	if n, err := c.Count(ctx, &qdrant.CountPoints{CollectionName: coll, Exact: qdrant.PtrOf(true), ShardKeySelector: fb}); err != nil || n != 3 {
		t.Errorf("Count with a fallback = %d, %v; want 3", n, err)
	}
	_, err = c.Count(ctx, &qdrant.CountPoints{CollectionName: coll, ShardKeySelector: selKeys(qdrant.NewShardKey("absent"))})
	wantCode(t, "Count under a missing key without fallback", err, codes.NotFound)

	if target.embedded {
		// The store's own choices (docs/vectordb.md): one copy per id, and
		// writes that add points name their shard.
		_, err = c.Upsert(ctx, &qdrant.UpsertPoints{CollectionName: coll, Wait: wait(), ShardKeySelector: selKeys(keyB),
			Points: []*qdrant.PointStruct{{Id: qdrant.NewIDNum(1), Vectors: qdrant.NewVectors(1, 1)}}})
		wantCode(t, "Upsert of an id stored under another key", err, codes.InvalidArgument)
		_, err = c.Upsert(ctx, &qdrant.UpsertPoints{CollectionName: coll, Wait: wait(),
			Points: []*qdrant.PointStruct{{Id: qdrant.NewIDNum(99), Vectors: qdrant.NewVectors(1, 1)}}})
		wantCode(t, "Upsert without a shard key", err, codes.InvalidArgument)
		_, err = c.Upsert(ctx, &qdrant.UpsertPoints{CollectionName: coll, Wait: wait(), ShardKeySelector: selKeys(keyA, keyB),
			Points: []*qdrant.PointStruct{{Id: qdrant.NewIDNum(99), Vectors: qdrant.NewVectors(1, 1)}}})
		wantCode(t, "Upsert under two keys", err, codes.InvalidArgument)
	}

	// Deleting a key drops its points; the other shard stays.
	if err := c.DeleteShardKey(ctx, coll, &qdrant.DeleteShardKey{ShardKey: keyB}); err != nil {
		t.Fatalf("DeleteShardKey: %v", err)
	}
	n, err = c.Count(ctx, &qdrant.CountPoints{CollectionName: coll, Exact: qdrant.PtrOf(true)})
	if err != nil || n != 5 {
		t.Errorf("Count after deleting key b = %d, %v; want 5", n, err)
	}
	_, err = c.Count(ctx, &qdrant.CountPoints{CollectionName: coll, ShardKeySelector: selKeys(keyB)})
	wantCode(t, "Count under a deleted key", err, codes.NotFound)
}

// TestShardPlacementSurvivesRestart kills the store (SIGKILL: WAL replay),
// then stops it cleanly (a snapshot) and checks placement after each start.
func TestShardPlacementSurvivesRestart(t *testing.T) {
	if !target.embedded {
		t.Skip("restarts the embedded store")
	}
	ctx := context.Background()
	dir := t.TempDir()
	const coll = "sharded"
	want := map[string][]uint64{"a": {1, 2, 3, 4, 5}, "b": {11, 12, 13}, "all": {1, 2, 3, 4, 5, 11, 12, 13}}
	cmd, c := startCrashServer(t, dir)
	if err := c.CreateCollection(ctx, &qdrant.CreateCollection{CollectionName: coll, ShardingMethod: qdrant.ShardingMethod_Custom.Enum(),
		VectorsConfig: qdrant.NewVectorsConfig(&qdrant.VectorParams{Size: 2, Distance: qdrant.Distance_Dot})}); err != nil {
		t.Fatalf("CreateCollection: %v", err)
	}
	shardFixture(t, c, coll)
	verifyShards(t, c, coll, want)
	c.Close()
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatalf("SIGKILL: %v", err)
	}
	var ee *exec.ExitError
	if err := cmd.Wait(); !errors.As(err, &ee) {
		t.Fatalf("server wait: %v", err)
	}

	cmd, c = startCrashServer(t, dir)
	verifyShards(t, c, coll, want)
	c.Close()
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatalf("SIGTERM: %v", err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("server exit after SIGTERM: %v", err)
	}

	cmd, c = startCrashServer(t, dir)
	defer func() {
		c.Close()
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
	}()
	verifyShards(t, c, coll, want)
}
