package retrieve

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"strings"
	"testing"
	"time"

	"github.com/qdrant/go-client/qdrant"
)

// TestIndexAliasAndGrouping: with WithAlias the index lives behind an
// alias that can be moved to a rebuilt collection without touching the
// service, with WithGrouping one document cannot fill a result, and
// WithQuantization creates the collection quantized with originals on disk.
func TestIndexAliasAndGrouping(t *testing.T) {
	client, err := Dial(qdrantAddr, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = client.Close() })
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	var b [5]byte
	_, _ = rand.Read(b[:])
	name := "retrieve_alias_" + hex.EncodeToString(b[:])
	ix := NewIndex(client, name, testDense, WithAlias(), WithGrouping(FieldDocumentID, 2), WithQuantization())
	for range 2 { // a second Ensure (restart, another replica) changes nothing
		if err := ix.Ensure(ctx); err != nil {
			t.Fatalf("Ensure: %v", err)
		}
	}
	t.Cleanup(func() {
		for _, c := range []string{name + "_v1", name + "_v2"} {
			_ = client.DeleteCollection(context.Background(), c)
		}
	})
	info, err := client.GetCollectionInfo(ctx, name) // through the alias
	if err != nil {
		t.Fatal(err)
	}
	dense := info.GetConfig().GetParams().GetVectorsConfig().GetParamsMap().GetMap()[DenseVector]
	if dense.GetQuantizationConfig().GetScalar().GetType() != qdrant.QuantizationType_Int8 || !dense.GetOnDisk() {
		t.Errorf("dense vector config %v: want int8 scalar quantization and on_disk", dense)
	}
	aliases, err := client.ListCollectionAliases(ctx, name+"_v1")
	if err != nil || len(aliases) != 1 || aliases[0] != name {
		t.Fatalf("aliases of %s_v1 = %v, %v; want [%s]", name, aliases, err, name)
	}

	// "crowded" matches the query in every chunk; the others once each.
	crowded := doc{tenant: "t1", id: "crowded", version: 1, dense: true, texts: strings.Split(strings.Repeat("alpha beta gamma|", 8), "|")[:8]}
	var docs []doc
	docs = append(docs, crowded)
	for _, id := range []string{"d1", "d2", "d3"} {
		docs = append(docs, doc{tenant: "t1", id: id, version: 1, texts: []string{"alpha and something else entirely"}})
	}
	for _, d := range docs {
		if err := ix.UpsertMany(ctx, d.chunks()); err != nil {
			t.Fatalf("UpsertMany: %v", err)
		}
	}
	hits, err := ix.Search(ctx, SearchRequest{Tenant: "t1", Sparse: sparseOf("alpha beta gamma"), Limit: 5})
	if err != nil {
		t.Fatalf("Search: %v", err)
	}
	perDoc := map[string]int{}
	for _, h := range hits {
		perDoc[h.DocumentID]++
	}
	if len(hits) != 5 || perDoc["crowded"] != 2 || len(perDoc) != 4 {
		t.Fatalf("grouped search: %d hits, per document %v; want 5 hits, 2 of crowded, 4 documents", len(hits), perDoc)
	}
	// Dense and hybrid (the dense branch carries oversampling for the
	// quantized collection) are grouped too.
	for _, req := range []SearchRequest{
		{Tenant: "t1", Dense: denseOf("alpha beta gamma"), Limit: 5},
		{Tenant: "t1", Dense: denseOf("alpha beta gamma"), Sparse: sparseOf("alpha beta gamma"), Limit: 5},
	} {
		got, err := ix.Search(ctx, req)
		if err != nil {
			t.Fatalf("Search: %v", err)
		}
		n := 0
		for _, h := range got {
			if h.DocumentID == "crowded" {
				n++
			}
		}
		if n != 2 {
			t.Errorf("search (dense %v, sparse %v): %d hits of crowded, want 2", req.Dense != nil, req.Sparse != nil, n)
		}
	}
	for i := 1; i < len(hits); i++ {
		if hits[i].Score > hits[i-1].Score {
			t.Fatalf("hits not ordered by score: %v > %v at %d", hits[i].Score, hits[i-1].Score, i)
		}
	}

	// Rebuild into a new collection and move the alias: the same Index
	// (same name) now reads the new collection.
	v2 := NewIndex(client, name+"_v2", testDense)
	if err := v2.Ensure(ctx); err != nil {
		t.Fatalf("Ensure v2: %v", err)
	}
	if err := v2.UpsertMany(ctx, doc{tenant: "t1", id: "rebuilt", version: 1, texts: []string{"alpha beta gamma"}}.chunks()); err != nil {
		t.Fatal(err)
	}
	if err := client.CreateAlias(ctx, name, name+"_v2"); err != nil {
		t.Fatalf("move alias: %v", err)
	}
	hits, err = ix.Search(ctx, SearchRequest{Tenant: "t1", Sparse: sparseOf("alpha beta gamma"), Limit: 5})
	if err != nil {
		t.Fatalf("Search after swap: %v", err)
	}
	if len(hits) != 1 || hits[0].DocumentID != "rebuilt" {
		t.Fatalf("after the alias moved: %+v; want the rebuilt collection's one hit", hits)
	}
	// Writes go through the alias too.
	if err := ix.UpsertMany(ctx, doc{tenant: "t1", id: "late", version: 1, texts: []string{"zeta"}}.chunks()); err != nil {
		t.Fatal(err)
	}
	n, err := client.Count(ctx, &qdrant.CountPoints{CollectionName: name + "_v2"})
	if err != nil || n != 2 {
		t.Fatalf("points in v2 = %d, %v; want 2", n, err)
	}
}
