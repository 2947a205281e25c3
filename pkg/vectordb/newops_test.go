package vectordb

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/qdrant/go-client/qdrant"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

func wantCode(t *testing.T, what string, err error, code codes.Code) {
	t.Helper()
	if status.Code(err) != code {
		t.Errorf("%s: %v, want code %v", what, err, code)
	}
}

// groupsFixture: 3 documents; "big" has 6 points nearest the query.
func groupsFixture(t *testing.T, s *Store, name string) {
	t.Helper()
	ctx := context.Background()
	if err := s.CreateCollection(ctx, &qdrant.CreateCollection{CollectionName: name,
		VectorsConfig: qdrant.NewVectorsConfig(&qdrant.VectorParams{Size: 2, Distance: qdrant.Distance_Dot})}); err != nil {
		t.Fatal(err)
	}
	var ps []*qdrant.PointStruct
	add := func(id uint64, doc any, x float32) {
		ps = append(ps, &qdrant.PointStruct{Id: qdrant.NewIDNum(id), Vectors: qdrant.NewVectors(x, 0),
			Payload: qdrant.NewValueMap(map[string]any{"doc": doc, "flag": id%2 == 0})})
	}
	for i := range 6 {
		add(uint64(i), "big", 10-float32(i))
	}
	add(10, "small", 3)
	add(11, []any{"small", "other"}, 2.5)
	add(12, int64(-4), 2)
	add(13, nil, 100) // no group value: never in a group
	if _, err := s.Upsert(ctx, &qdrant.UpsertPoints{CollectionName: name, Points: ps, Wait: wait()}); err != nil {
		t.Fatal(err)
	}
}

func TestQueryGroups(t *testing.T) {
	s := mustOpen(t, t.TempDir())
	defer s.Close()
	groupsFixture(t, s, "g")
	ctx := context.Background()
	res, err := s.QueryGroups(ctx, &qdrant.QueryPointGroups{CollectionName: "g", Query: qdrant.NewQuery(1, 0),
		GroupBy: "doc", Limit: qdrant.PtrOf(uint64(3)), GroupSize: qdrant.PtrOf(uint64(2))})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, g := range res.GetGroups() {
		var ids []uint64
		for _, h := range g.GetHits() {
			ids = append(ids, h.GetId().GetNum())
		}
		got = append(got, fmt.Sprintf("%v:%v", g.GetId().GetKind(), ids))
	}
	want := []string{
		"&{big}:[0 1]", "&{small}:[10 11]", "&{other}:[11]",
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("groups = %v, want %v", got, want)
	}
	// Integer group ids; limit beyond the groups that exist.
	res, err = s.QueryGroups(ctx, &qdrant.QueryPointGroups{CollectionName: "g", Query: qdrant.NewQuery(1, 0), GroupBy: "doc", Limit: qdrant.PtrOf(uint64(10))})
	if err != nil || len(res.GetGroups()) != 4 || res.GetGroups()[3].GetId().GetIntegerValue() != -4 || len(res.GetGroups()[0].GetHits()) != 3 {
		t.Errorf("QueryGroups(limit 10) = %v, %v; want 4 groups, the last -4, the first with 3 hits", res, err)
	}
	_, err = s.QueryGroups(ctx, &qdrant.QueryPointGroups{CollectionName: "g", Query: qdrant.NewQuery(1, 0)})
	wantCode(t, "QueryGroups without group_by", err, codes.InvalidArgument)
	_, err = s.QueryGroups(ctx, &qdrant.QueryPointGroups{CollectionName: "g", Query: qdrant.NewQuery(1, 0), GroupBy: "doc", Limit: qdrant.PtrOf(uint64(1 << 40))})
	wantCode(t, "QueryGroups huge limit", err, codes.InvalidArgument)
}

func TestFacetAndMatrix(t *testing.T) {
	s := mustOpen(t, t.TempDir())
	defer s.Close()
	groupsFixture(t, s, "f")
	ctx := context.Background()
	_, err := s.Facet(ctx, &qdrant.FacetCounts{CollectionName: "f", Key: "doc"})
	wantCode(t, "Facet without an index", err, codes.InvalidArgument)
	if _, err := s.CreateFieldIndex(ctx, &qdrant.CreateFieldIndexCollection{CollectionName: "f", FieldName: "doc", FieldType: qdrant.FieldType_FieldTypeKeyword.Enum()}); err != nil {
		t.Fatal(err)
	}
	hits, err := s.Facet(ctx, &qdrant.FacetCounts{CollectionName: "f", Key: "doc"})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, h := range hits {
		got = append(got, fmt.Sprintf("%v=%d", h.GetValue().GetVariant(), h.GetCount()))
	}
	if want := "[&{big}=6 &{small}=2 &{-4}=1 &{other}=1]"; fmt.Sprint(got) != want {
		t.Errorf("Facet = %v, want %v", got, want)
	}

	m, err := s.SearchMatrix(ctx, &qdrant.SearchMatrixPoints{CollectionName: "f", Sample: qdrant.PtrOf(uint64(100)), Limit: qdrant.PtrOf(uint64(1)),
		Filter: &qdrant.Filter{Must: []*qdrant.Condition{qdrant.NewMatchKeyword("doc", "big")}}})
	if err != nil {
		t.Fatal(err)
	}
	if len(m.ids) != 6 || len(m.pairs) != 6 {
		t.Fatalf("matrix: %d ids, %d pairs; want 6 and 6", len(m.ids), len(m.pairs))
	}
	// Dot product: everyone's nearest is point 0 (x = 10), and 0's is 1.
	for _, p := range m.pairs {
		want := uint64(0)
		if m.ids[p.a].num == 0 {
			want = 1
		}
		if m.ids[p.b].num != want {
			t.Errorf("nearest of %v = %v, want %d", m.ids[p.a], m.ids[p.b], want)
		}
	}
	off := m.offsetsProto()
	if len(off.GetOffsetsRow()) != 6 || len(off.GetIds()) != 6 {
		t.Errorf("offsets = %v", off)
	}
	_, err = s.SearchMatrix(ctx, &qdrant.SearchMatrixPoints{CollectionName: "f", Using: qdrant.PtrOf("nope")})
	wantCode(t, "SearchMatrix unknown vector", err, codes.InvalidArgument)
}

func TestAliasesAndShardKeysRefuseBadInput(t *testing.T) {
	s := mustOpen(t, t.TempDir())
	defer s.Close()
	ctx := context.Background()
	groupsFixture(t, s, "a")
	groupsFixture(t, s, "b")
	create := func(alias, coll string) *qdrant.ChangeAliases {
		return &qdrant.ChangeAliases{Actions: []*qdrant.AliasOperations{qdrant.NewAliasCreate(alias, coll)}}
	}
	wantCode(t, "alias of a missing collection", s.UpdateAliases(ctx, create("x", "missing")), codes.NotFound)
	wantCode(t, "alias named like a collection", s.UpdateAliases(ctx, create("b", "a")), codes.InvalidArgument)
	wantCode(t, "delete an unknown alias", s.UpdateAliases(ctx, &qdrant.ChangeAliases{Actions: []*qdrant.AliasOperations{qdrant.NewAliasDelete("nope")}}), codes.NotFound)
	wantCode(t, "rename an unknown alias", s.UpdateAliases(ctx, &qdrant.ChangeAliases{Actions: []*qdrant.AliasOperations{qdrant.NewAliasRename("nope", "x")}}), codes.NotFound)
	_, err := s.Query(ctx, &qdrant.QueryPoints{CollectionName: "unknown-alias"})
	wantCode(t, "query an unknown alias", err, codes.NotFound)
	// A failing action leaves the table as it was: all or nothing.
	err = s.UpdateAliases(ctx, &qdrant.ChangeAliases{Actions: []*qdrant.AliasOperations{qdrant.NewAliasCreate("ok", "a"), qdrant.NewAliasDelete("nope")}})
	wantCode(t, "batch with a failing action", err, codes.NotFound)
	if as, _ := s.ListAliases(ctx, ""); len(as) != 0 {
		t.Errorf("aliases after a failed batch = %v, want none", as)
	}
	// Swap: one request moves the alias.
	if err := s.UpdateAliases(ctx, create("live", "a")); err != nil {
		t.Fatal(err)
	}
	if err := s.UpdateAliases(ctx, &qdrant.ChangeAliases{Actions: []*qdrant.AliasOperations{qdrant.NewAliasDelete("live"), qdrant.NewAliasCreate("live", "b")}}); err != nil {
		t.Fatal(err)
	}
	if as, _ := s.ListAliases(ctx, "b"); len(as) != 1 || as[0].GetAliasName() != "live" {
		t.Errorf("aliases of b = %v", as)
	}
	wantCode(t, "collection named like an alias", s.CreateCollection(ctx, &qdrant.CreateCollection{CollectionName: "live",
		VectorsConfig: qdrant.NewVectorsConfig(&qdrant.VectorParams{Size: 2, Distance: qdrant.Distance_Dot})}), codes.InvalidArgument)

	// Shard keys on a collection without custom sharding.
	key := &qdrant.ShardKeySelector{ShardKeys: []*qdrant.ShardKey{qdrant.NewShardKey("k")}}
	wantCode(t, "CreateShardKey without custom sharding", s.CreateShardKey(ctx, &qdrant.CreateShardKeyRequest{CollectionName: "a", Request: &qdrant.CreateShardKey{ShardKey: qdrant.NewShardKey("k")}}), codes.InvalidArgument)
	_, err = s.Upsert(ctx, &qdrant.UpsertPoints{CollectionName: "a", ShardKeySelector: key, Points: []*qdrant.PointStruct{{Id: qdrant.NewIDNum(1), Vectors: qdrant.NewVectors(1, 1)}}})
	wantCode(t, "upsert with a shard key without custom sharding", err, codes.InvalidArgument)
	if err := s.CreateCollection(ctx, &qdrant.CreateCollection{CollectionName: "c", ShardingMethod: qdrant.ShardingMethod_Custom.Enum(),
		VectorsConfig: qdrant.NewVectorsConfig(&qdrant.VectorParams{Size: 2, Distance: qdrant.Distance_Dot})}); err != nil {
		t.Fatal(err)
	}
	_, err = s.Query(ctx, &qdrant.QueryPoints{CollectionName: "c", ShardKeySelector: key})
	wantCode(t, "query with an unknown shard key", err, codes.NotFound)
	wantCode(t, "DeleteShardKey of an unknown key", s.DeleteShardKey(ctx, &qdrant.DeleteShardKeyRequest{CollectionName: "c", Request: &qdrant.DeleteShardKey{ShardKey: qdrant.NewShardKey("k")}}), codes.NotFound)
	if err := s.CreateShardKey(ctx, &qdrant.CreateShardKeyRequest{CollectionName: "c", Request: &qdrant.CreateShardKey{ShardKey: qdrant.NewShardKey("k")}}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Query(ctx, &qdrant.QueryPoints{CollectionName: "c", ShardKeySelector: key}); err != nil {
		t.Errorf("query with a known shard key: %v", err)
	}

	// Point updates on missing points and vectors.
	_, err = s.UpdateVectors(ctx, &qdrant.UpdatePointVectors{CollectionName: "a", Points: []*qdrant.PointVectors{{Id: qdrant.NewIDNum(999), Vectors: qdrant.NewVectors(1, 1)}}})
	wantCode(t, "UpdateVectors of a missing point", err, codes.NotFound)
	_, err = s.UpdateVectors(ctx, &qdrant.UpdatePointVectors{CollectionName: "a", Points: []*qdrant.PointVectors{{Id: qdrant.NewIDNum(1), Vectors: qdrant.NewVectors(1)}}})
	wantCode(t, "UpdateVectors of the wrong size", err, codes.InvalidArgument)
	_, err = s.DeleteVectors(ctx, &qdrant.DeletePointVectors{CollectionName: "a", PointsSelector: qdrant.NewPointsSelector(qdrant.NewIDNum(1)), Vectors: &qdrant.VectorsSelector{Names: []string{"nope"}}})
	wantCode(t, "DeleteVectors of an unknown vector", err, codes.InvalidArgument)
}

func TestSnapshotsRestore(t *testing.T) {
	ctx := context.Background()
	s := mustOpen(t, t.TempDir())
	groupsFixture(t, s, "src")
	if err := s.UpdateAliases(ctx, &qdrant.ChangeAliases{Actions: []*qdrant.AliasOperations{qdrant.NewAliasCreate("al", "src")}}); err != nil {
		t.Fatal(err)
	}
	groupsFixture(t, s, "src2")
	d, err := s.CreateSnapshot(ctx, "src")
	if err != nil {
		t.Fatal(err)
	}
	full, err := s.CreateFullSnapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := dump(t, s)
	list, err := s.ListSnapshots(ctx, "src")
	if err != nil || len(list) != 1 || list[0].GetName() != d.GetName() || list[0].GetChecksum() != d.GetChecksum() || list[0].GetSize() != d.GetSize() {
		t.Fatalf("ListSnapshots = %v, %v; want [%v]", list, err, d)
	}
	collFile := filepath.Join(s.snapshotDir("src"), d.GetName())
	fullFile := filepath.Join(s.snapshotDir(""), full.GetName())
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	// A fresh store restores the full snapshot: same collections, aliases.
	s2 := mustOpen(t, t.TempDir())
	defer s2.Close()
	if err := s2.RestoreSnapshot(ctx, fullFile, ""); err != nil {
		t.Fatalf("restore full: %v", err)
	}
	if got := dump(t, s2); got != want {
		t.Errorf("restored state differs:\n got %s\nwant %s", got, want)
	}
	// A collection snapshot restored under another name, twice (a restart
	// with the same flag) gives the same collection.
	for range 2 {
		if err := s2.RestoreSnapshot(ctx, collFile, "copy"); err != nil {
			t.Fatalf("restore as copy: %v", err)
		}
	}
	n, err := s2.Count(ctx, &qdrant.CountPoints{CollectionName: "copy"})
	if err != nil || n != 10 {
		t.Errorf("Count(copy) = %d, %v; want 10", n, err)
	}

	// A truncated file is refused and changes nothing.
	data, err := os.ReadFile(collFile)
	if err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(t.TempDir(), "bad.snapshot")
	if err := os.WriteFile(bad, data[:len(data)-10], 0o644); err != nil {
		t.Fatal(err)
	}
	before := dump(t, s2)
	wantCode(t, "restore a truncated snapshot", s2.RestoreSnapshot(ctx, bad, "copy"), codes.InvalidArgument)
	wantCode(t, "restore a full snapshot under one name", s2.RestoreSnapshot(ctx, fullFile, "copy"), codes.InvalidArgument)
	wantCode(t, "restore a missing file", s2.RestoreSnapshot(ctx, bad+".none", ""), codes.NotFound)
	if got := dump(t, s2); got != before {
		t.Errorf("a refused restore changed the store")
	}
	// Deletes.
	wantCode(t, "delete a missing snapshot", s2.DeleteSnapshot(ctx, "src", "nope.snapshot"), codes.NotFound)
	wantCode(t, "delete with a path", s2.DeleteSnapshot(ctx, "src", "../x.snapshot"), codes.InvalidArgument)
}

// TestShardPlacementOldRecordsAndRestore: a WAL upsert record without a
// selector (the only form written before points had shards) replays as a
// point under no key, seen only without a selector; and restoring a
// collection snapshot keeps each point under its key.
func TestShardPlacementOldRecordsAndRestore(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := mustOpen(t, dir)
	if err := s.CreateCollection(ctx, &qdrant.CreateCollection{CollectionName: "c", ShardingMethod: qdrant.ShardingMethod_Custom.Enum(),
		VectorsConfig: qdrant.NewVectorsConfig(&qdrant.VectorParams{Size: 2, Distance: qdrant.Distance_Dot})}); err != nil {
		t.Fatal(err)
	}
	k := qdrant.NewShardKey("k")
	if err := s.CreateShardKey(ctx, &qdrant.CreateShardKeyRequest{CollectionName: "c", Request: &qdrant.CreateShardKey{ShardKey: k}}); err != nil {
		t.Fatal(err)
	}
	old, err := proto.Marshal(&qdrant.UpsertPoints{CollectionName: "c", Points: []*qdrant.PointStruct{{Id: qdrant.NewIDNum(1), Vectors: qdrant.NewVectors(1, 0)}}})
	if err != nil {
		t.Fatal(err)
	}
	seq, err := s.wal.Append(opUpsert, old)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.wal.Sync(seq); err != nil {
		t.Fatal(err)
	}
	s.abandon()

	s = mustOpen(t, dir)
	defer s.Close()
	if _, err := s.Upsert(ctx, &qdrant.UpsertPoints{CollectionName: "c", Wait: wait(), ShardKeySelector: selKeys(k),
		Points: []*qdrant.PointStruct{{Id: qdrant.NewIDNum(2), Vectors: qdrant.NewVectors(0, 1)}}}); err != nil {
		t.Fatal(err)
	}
	counts := func(coll string) (all, underK uint64) {
		t.Helper()
		var err1, err2 error
		all, err1 = s.Count(ctx, &qdrant.CountPoints{CollectionName: coll})
		underK, err2 = s.Count(ctx, &qdrant.CountPoints{CollectionName: coll, ShardKeySelector: selKeys(k)})
		if err1 != nil || err2 != nil {
			t.Fatalf("Count(%s): %v, %v", coll, err1, err2)
		}
		return all, underK
	}
	if all, underK := counts("c"); all != 2 || underK != 1 {
		t.Errorf("after replaying an old record: %d points, %d under k; want 2, 1", all, underK)
	}
	d, err := s.CreateSnapshot(ctx, "c")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.RestoreSnapshot(ctx, filepath.Join(s.snapshotDir("c"), d.GetName()), "copy"); err != nil {
		t.Fatal(err)
	}
	if all, underK := counts("copy"); all != 2 || underK != 1 {
		t.Errorf("restored copy: %d points, %d under k; want 2, 1", all, underK)
	}
	// The old point stays reachable: without a selector it is updated and
	// deleted like any other.
	if _, err := s.Delete(ctx, &qdrant.DeletePoints{CollectionName: "c", Wait: wait(), Points: qdrant.NewPointsSelector(qdrant.NewIDNum(1))}); err != nil {
		t.Fatal(err)
	}
	if all, underK := counts("c"); all != 1 || underK != 1 {
		t.Errorf("after deleting the old point: %d points, %d under k; want 1, 1", all, underK)
	}
}
