package conformance

import (
	"context"
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/qdrant/go-client/qdrant"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

func TestHealthCheck(t *testing.T) {
	c := newClient(t)
	r, err := c.HealthCheck(context.Background())
	if err != nil {
		t.Fatalf("HealthCheck: %v", err)
	}
	if r.GetVersion() == "" || r.GetTitle() == "" {
		t.Errorf("HealthCheck = %v, want title and version", r)
	}
}

func TestCollectionLifecycle(t *testing.T) {
	ctx := context.Background()
	c := newClient(t)
	name := newCollection(t, c, &qdrant.CreateCollection{
		VectorsConfig: qdrant.NewVectorsConfig(&qdrant.VectorParams{Size: 4, Distance: qdrant.Distance_Cosine}),
	})
	ok, err := c.CollectionExists(ctx, name)
	if err != nil || !ok {
		t.Fatalf("CollectionExists(%q) = %v, %v; want true", name, ok, err)
	}
	names, err := c.ListCollections(ctx)
	if err != nil || !slices.Contains(names, name) {
		t.Fatalf("ListCollections = %v, %v; want it to contain %q", names, err, name)
	}
	info, err := c.GetCollectionInfo(ctx, name)
	if err != nil {
		t.Fatalf("GetCollectionInfo: %v", err)
	}
	p := info.GetConfig().GetParams().GetVectorsConfig().GetParams()
	if p.GetSize() != 4 || p.GetDistance() != qdrant.Distance_Cosine {
		t.Errorf("vector params = %v, want size 4 cosine", p)
	}
	if info.GetPointsCount() != 0 {
		t.Errorf("points count = %d, want 0", info.GetPointsCount())
	}
	err = c.CreateCollection(ctx, &qdrant.CreateCollection{
		CollectionName: name,
		VectorsConfig:  qdrant.NewVectorsConfig(&qdrant.VectorParams{Size: 4, Distance: qdrant.Distance_Cosine}),
	})
	wantCode(t, "create existing collection", err, codes.InvalidArgument)

	missing := name + "_missing"
	ok, err = c.CollectionExists(ctx, missing)
	if err != nil || ok {
		t.Errorf("CollectionExists(missing) = %v, %v; want false", ok, err)
	}
	_, err = c.GetCollectionInfo(ctx, missing)
	wantCode(t, "get missing collection", err, codes.NotFound)

	tmp := newCollection(t, c, &qdrant.CreateCollection{
		VectorsConfig: qdrant.NewVectorsConfig(&qdrant.VectorParams{Size: 2, Distance: qdrant.Distance_Dot}),
	})
	if err := c.DeleteCollection(ctx, tmp); err != nil {
		t.Fatalf("DeleteCollection: %v", err)
	}
	if ok, _ := c.CollectionExists(ctx, tmp); ok {
		t.Errorf("collection %q exists after delete", tmp)
	}
	// Recreate so the cleanup's delete finds it.
	if err := c.CreateCollection(ctx, &qdrant.CreateCollection{
		CollectionName: tmp,
		VectorsConfig:  qdrant.NewVectorsConfig(&qdrant.VectorParams{Size: 2, Distance: qdrant.Distance_Dot}),
	}); err != nil {
		t.Fatalf("recreate: %v", err)
	}
}

func TestErrors(t *testing.T) {
	ctx := context.Background()
	c := newClient(t)
	name := newCollection(t, c, &qdrant.CreateCollection{
		VectorsConfig: qdrant.NewVectorsConfig(&qdrant.VectorParams{Size: 3, Distance: qdrant.Distance_Dot}),
	})
	tests := []struct {
		name string
		call func() error
		want codes.Code
	}{
		{"upsert wrong dimension", func() error {
			_, err := c.Upsert(ctx, &qdrant.UpsertPoints{CollectionName: name, Wait: wait(), Points: []*qdrant.PointStruct{
				{Id: qdrant.NewIDNum(1), Vectors: qdrant.NewVectors(1, 2)},
			}})
			return err
		}, codes.InvalidArgument},
		{"query wrong dimension", func() error {
			_, err := c.Query(ctx, &qdrant.QueryPoints{CollectionName: name, Query: qdrant.NewQuery(1, 2, 3, 4)})
			return err
		}, codes.InvalidArgument},
		{"upsert missing collection", func() error {
			_, err := c.Upsert(ctx, &qdrant.UpsertPoints{CollectionName: name + "_nope", Wait: wait(), Points: []*qdrant.PointStruct{
				{Id: qdrant.NewIDNum(1), Vectors: qdrant.NewVectors(1, 2, 3)},
			}})
			return err
		}, codes.NotFound},
		{"query missing collection", func() error {
			_, err := c.Query(ctx, &qdrant.QueryPoints{CollectionName: name + "_nope", Query: qdrant.NewQuery(1, 2, 3)})
			return err
		}, codes.NotFound},
		{"scroll missing collection", func() error {
			_, err := c.Scroll(ctx, &qdrant.ScrollPoints{CollectionName: name + "_nope"})
			return err
		}, codes.NotFound},
		{"unknown vector name", func() error {
			_, err := c.Upsert(ctx, &qdrant.UpsertPoints{CollectionName: name, Wait: wait(), Points: []*qdrant.PointStruct{
				{Id: qdrant.NewIDNum(1), Vectors: qdrant.NewVectorsMap(map[string]*qdrant.Vector{"nope": qdrant.NewVector(1, 2, 3)})},
			}})
			return err
		}, codes.InvalidArgument},
		{"bad uuid", func() error {
			_, err := c.Upsert(ctx, &qdrant.UpsertPoints{CollectionName: name, Wait: wait(), Points: []*qdrant.PointStruct{
				{Id: qdrant.NewIDUUID("not-a-uuid"), Vectors: qdrant.NewVectors(1, 2, 3)},
			}})
			return err
		}, codes.InvalidArgument},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { wantCode(t, tt.name, tt.call(), tt.want) })
	}
	if target.embedded {
		// What the store does not implement, a method or a whole service,
		// answers Unimplemented with the store's own message.
		_, err := c.GetPointsClient().Recommend(ctx, &qdrant.RecommendPoints{CollectionName: name})
		wantCode(t, "recommend (not implemented by the embedded store)", err, codes.Unimplemented)
		if !strings.Contains(status.Convert(err).Message(), "tributary vectordb") {
			t.Errorf("recommend: message %q, want the store's own", status.Convert(err).Message())
		}
		err = c.GetConnection().Invoke(ctx, "/qdrant.QdrantInternal/GetConsensusCommit", &qdrant.HealthCheckRequest{}, &qdrant.HealthCheckReply{})
		wantCode(t, "unknown service", err, codes.Unimplemented)
		if !strings.Contains(status.Convert(err).Message(), "tributary vectordb") {
			t.Errorf("unknown service: message %q, want the store's own", status.Convert(err).Message())
		}
	}
}

// payloadFixture exercises every JSON shape.
func payloadFixture() map[string]any {
	return map[string]any{
		"title":   "Hello, world",
		"n":       int64(42),
		"neg":     int64(-7),
		"price":   12.5,
		"ok":      true,
		"none":    nil,
		"tags":    []any{"a", "b", int64(3), nil, map[string]any{"deep": "x"}},
		"empty":   []any{},
		"nested":  map[string]any{"level": int64(2), "inner": map[string]any{"name": "n2", "list": []any{1.5, false}}},
		"unicode": "héllo ✓",
	}
}

func TestUpsertGetRoundTrip(t *testing.T) {
	ctx := context.Background()
	c := newClient(t)
	name := newCollection(t, c, &qdrant.CreateCollection{
		VectorsConfig: qdrant.NewVectorsConfig(&qdrant.VectorParams{Size: 3, Distance: qdrant.Distance_Cosine}),
	})
	const uid = "5c56c793-69f3-4fbf-87e6-c4bf54c28c26"
	payload := qdrant.NewValueMap(payloadFixture())
	res, err := c.Upsert(ctx, &qdrant.UpsertPoints{CollectionName: name, Wait: wait(), Points: []*qdrant.PointStruct{
		{Id: qdrant.NewIDNum(7), Vectors: qdrant.NewVectors(3, 0, 4), Payload: payload},
		{Id: qdrant.NewIDUUID(uid), Vectors: qdrant.NewVectors(0, 2, 0), Payload: qdrant.NewValueMap(map[string]any{"k": "v"})},
	}})
	if err != nil {
		t.Fatalf("Upsert: %v", err)
	}
	if res.GetStatus() != qdrant.UpdateStatus_Completed {
		t.Errorf("Upsert status = %v, want Completed", res.GetStatus())
	}
	got, err := c.Get(ctx, &qdrant.GetPoints{
		CollectionName: name,
		Ids:            []*qdrant.PointId{qdrant.NewIDNum(7), qdrant.NewIDUUID(uid), qdrant.NewIDNum(999)},
		WithPayload:    qdrant.NewWithPayload(true),
		WithVectors:    qdrant.NewWithVectors(true),
	})
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	if len(got) != 2 {
		t.Fatalf("Get returned %d points, want 2 (missing ids are skipped)", len(got))
	}
	byID := map[string]*qdrant.RetrievedPoint{}
	for _, p := range got {
		byID[p.GetId().String()] = p
	}
	p7 := byID[qdrant.NewIDNum(7).String()]
	if p7 == nil {
		t.Fatalf("point 7 missing from %v", got)
	}
	want := &qdrant.Struct{Fields: payload}
	if !proto.Equal(&qdrant.Struct{Fields: p7.GetPayload()}, want) {
		t.Errorf("payload round trip:\n got %v\nwant %v", p7.GetPayload(), payload)
	}
	// Cosine vectors come back normalized.
	assertVec(t, "point 7 vector", p7.GetVectors().GetVector().GetDenseVector().GetData(), []float64{0.6, 0, 0.8})
	pu := byID[qdrant.NewIDUUID(uid).String()]
	if pu == nil || pu.GetId().GetUuid() != uid {
		t.Fatalf("uuid point = %v, want id %s", pu, uid)
	}
	assertVec(t, "uuid point vector", pu.GetVectors().GetVector().GetDenseVector().GetData(), []float64{0, 1, 0})

	// Upsert replaces the whole point.
	if _, err := c.Upsert(ctx, &qdrant.UpsertPoints{CollectionName: name, Wait: wait(), Points: []*qdrant.PointStruct{
		{Id: qdrant.NewIDNum(7), Vectors: qdrant.NewVectors(1, 0, 0), Payload: qdrant.NewValueMap(map[string]any{"only": int64(1)})},
	}}); err != nil {
		t.Fatalf("Upsert again: %v", err)
	}
	got, err = c.Get(ctx, &qdrant.GetPoints{CollectionName: name, Ids: []*qdrant.PointId{qdrant.NewIDNum(7)}, WithPayload: qdrant.NewWithPayload(true)})
	if err != nil || len(got) != 1 {
		t.Fatalf("Get after replace = %v, %v", got, err)
	}
	if len(got[0].GetPayload()) != 1 || got[0].GetPayload()["only"].GetIntegerValue() != 1 {
		t.Errorf("payload after replace = %v, want {only: 1}", got[0].GetPayload())
	}
	n, err := c.Count(ctx, &qdrant.CountPoints{CollectionName: name, Exact: wait()})
	if err != nil || n != 2 {
		t.Errorf("Count = %d, %v; want 2", n, err)
	}
}

func assertVec(t *testing.T, what string, got []float32, want []float64) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%s = %v, want %v", what, got, want)
		return
	}
	for i := range got {
		if math.Abs(float64(got[i])-want[i]) > 1e-5 {
			t.Errorf("%s = %v, want %v", what, got, want)
			return
		}
	}
}

func TestPayloadSelectorsAndSetPayload(t *testing.T) {
	ctx := context.Background()
	c := newClient(t)
	name := newCollection(t, c, &qdrant.CreateCollection{
		VectorsConfig: qdrant.NewVectorsConfig(&qdrant.VectorParams{Size: 2, Distance: qdrant.Distance_Dot}),
	})
	if _, err := c.Upsert(ctx, &qdrant.UpsertPoints{CollectionName: name, Wait: wait(), Points: []*qdrant.PointStruct{
		{Id: qdrant.NewIDNum(1), Vectors: qdrant.NewVectors(1, 0), Payload: qdrant.NewValueMap(payloadFixture())},
	}}); err != nil {
		t.Fatalf("Upsert: %v", err)
	}
	get := func(sel *qdrant.WithPayloadSelector) map[string]*qdrant.Value {
		t.Helper()
		got, err := c.Get(ctx, &qdrant.GetPoints{CollectionName: name, Ids: []*qdrant.PointId{qdrant.NewIDNum(1)}, WithPayload: sel})
		if err != nil || len(got) != 1 {
			t.Fatalf("Get = %v, %v", got, err)
		}
		return got[0].GetPayload()
	}
	keys := func(m map[string]*qdrant.Value) []string {
		var ks []string
		for k := range m {
			ks = append(ks, k)
		}
		slices.Sort(ks)
		return ks
	}
	if got := keys(get(qdrant.NewWithPayloadInclude("title", "n"))); !slices.Equal(got, []string{"n", "title"}) {
		t.Errorf("include title,n: keys %v", got)
	}
	if got := get(qdrant.NewWithPayloadInclude("nested.level")); !proto.Equal(&qdrant.Struct{Fields: got},
		&qdrant.Struct{Fields: qdrant.NewValueMap(map[string]any{"nested": map[string]any{"level": int64(2)}})}) {
		t.Errorf("include nested.level = %v", got)
	}
	excl := get(qdrant.NewWithPayloadExclude("tags", "nested"))
	if _, ok := excl["tags"]; ok {
		t.Errorf("exclude tags: still present in %v", keys(excl))
	}
	if _, ok := excl["title"]; !ok {
		t.Errorf("exclude tags: title missing from %v", keys(excl))
	}
	if got := get(qdrant.NewWithPayload(false)); len(got) != 0 {
		t.Errorf("with_payload=false returned %v", got)
	}

	// SetPayload merges keys; with a key it merges into a nested object.
	if _, err := c.SetPayload(ctx, &qdrant.SetPayloadPoints{CollectionName: name, Wait: wait(),
		Payload:        qdrant.NewValueMap(map[string]any{"title": "changed", "added": int64(5)}),
		PointsSelector: qdrant.NewPointsSelector(qdrant.NewIDNum(1)),
	}); err != nil {
		t.Fatalf("SetPayload: %v", err)
	}
	key := "nested.inner"
	if _, err := c.SetPayload(ctx, &qdrant.SetPayloadPoints{CollectionName: name, Wait: wait(),
		Payload:        qdrant.NewValueMap(map[string]any{"extra": "yes"}),
		PointsSelector: qdrant.NewPointsSelectorFilter(&qdrant.Filter{Must: []*qdrant.Condition{qdrant.NewMatchInt("n", 42)}}),
		Key:            &key,
	}); err != nil {
		t.Fatalf("SetPayload with key: %v", err)
	}
	p := get(qdrant.NewWithPayload(true))
	if p["title"].GetStringValue() != "changed" || p["added"].GetIntegerValue() != 5 || p["price"].GetDoubleValue() != 12.5 {
		t.Errorf("after SetPayload: %v", p)
	}
	inner := p["nested"].GetStructValue().GetFields()["inner"].GetStructValue().GetFields()
	if inner["extra"].GetStringValue() != "yes" || inner["name"].GetStringValue() != "n2" {
		t.Errorf("after SetPayload with key: nested.inner = %v", inner)
	}
}

func TestScrollCountDelete(t *testing.T) {
	ctx := context.Background()
	c := newClient(t)
	name := newCollection(t, c, &qdrant.CreateCollection{
		VectorsConfig: qdrant.NewVectorsConfig(&qdrant.VectorParams{Size: 2, Distance: qdrant.Distance_Euclid}),
	})
	var pts []*qdrant.PointStruct
	for i := 0; i < 25; i++ {
		pts = append(pts, &qdrant.PointStruct{
			Id:      qdrant.NewIDNum(uint64(100 - i*3)),
			Vectors: qdrant.NewVectors(float32(i), 1),
			Payload: qdrant.NewValueMap(map[string]any{"parity": []string{"even", "odd"}[i%2], "i": int64(i)}),
		})
	}
	uuids := []string{"00000000-0000-0000-0000-000000000002", "00000000-0000-0000-0000-000000000001"}
	for _, u := range uuids {
		pts = append(pts, &qdrant.PointStruct{Id: qdrant.NewIDUUID(u), Vectors: qdrant.NewVectors(0, 0), Payload: qdrant.NewValueMap(map[string]any{"parity": "none"})})
	}
	if _, err := c.Upsert(ctx, &qdrant.UpsertPoints{CollectionName: name, Wait: wait(), Points: pts}); err != nil {
		t.Fatalf("Upsert: %v", err)
	}
	// Walk all pages: ids come in order, numbers before UUIDs.
	var ids []string
	var offset *qdrant.PointId
	for page := 0; page < 10; page++ {
		limit := uint32(7)
		res, next, err := c.ScrollAndOffset(ctx, &qdrant.ScrollPoints{CollectionName: name, Limit: &limit, Offset: offset})
		if err != nil {
			t.Fatalf("Scroll: %v", err)
		}
		for _, p := range res {
			ids = append(ids, idString(p.GetId()))
		}
		if next == nil {
			break
		}
		offset = next
	}
	var want []string
	for i := 24; i >= 0; i-- {
		want = append(want, idString(qdrant.NewIDNum(uint64(100-i*3))))
	}
	want = append(want, uuids[1], uuids[0])
	if !slices.Equal(ids, want) {
		t.Errorf("scroll order:\n got %v\nwant %v", ids, want)
	}
	even := &qdrant.Filter{Must: []*qdrant.Condition{qdrant.NewMatchKeyword("parity", "even")}}
	if n, err := c.Count(ctx, &qdrant.CountPoints{CollectionName: name, Filter: even, Exact: wait()}); err != nil || n != 13 {
		t.Errorf("Count(even) = %d, %v; want 13", n, err)
	}
	if _, err := c.Delete(ctx, &qdrant.DeletePoints{CollectionName: name, Wait: wait(), Points: qdrant.NewPointsSelectorFilter(even)}); err != nil {
		t.Fatalf("Delete by filter: %v", err)
	}
	if _, err := c.Delete(ctx, &qdrant.DeletePoints{CollectionName: name, Wait: wait(), Points: qdrant.NewPointsSelector(qdrant.NewIDUUID(uuids[0]), qdrant.NewIDNum(97))}); err != nil {
		t.Fatalf("Delete by ids: %v", err)
	}
	if n, err := c.Count(ctx, &qdrant.CountPoints{CollectionName: name, Exact: wait()}); err != nil || n != 27-13-2 {
		t.Errorf("Count after deletes = %d, %v; want %d", n, err, 27-13-2)
	}
	res, err := c.Scroll(ctx, &qdrant.ScrollPoints{CollectionName: name, Filter: even})
	if err != nil || len(res) != 0 {
		t.Errorf("Scroll(even) after delete = %v, %v; want none", res, err)
	}
}

func idString(id *qdrant.PointId) string {
	if u := id.GetUuid(); u != "" {
		return u
	}
	return fmt.Sprintf("n%d", id.GetNum())
}
