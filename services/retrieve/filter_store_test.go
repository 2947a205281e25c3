package retrieve

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"testing"
	"time"

	"github.com/tributary-rag/tributary/pkg/events"
)

// TestSearchFilterInStore: a query's filter is searched inside the store,
// so a document far below the tenant's best hits is still found when the
// filter names it, and the access filter still bounds it to the tenant.
func TestSearchFilterInStore(t *testing.T) {
	client, err := Dial(qdrantAddr, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = client.Close() })
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	var b [5]byte
	_, _ = rand.Read(b[:])
	name := "retrieve_filter_" + hex.EncodeToString(b[:])
	ix := NewIndex(client, name, testDense)
	if err := ix.Ensure(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = client.DeleteCollection(context.Background(), name) })

	// 300 chunks that match the query better than the one we filter for.
	blog := doc{tenant: "t1", id: "blog", version: 1}
	for i := range 300 {
		blog.texts = append(blog.texts, fmt.Sprintf("alpha beta gamma alpha beta post %d", i))
	}
	manual := doc{tenant: "t1", id: "manual", version: 1, texts: []string{"alpha is mentioned once in the unit manual"}}
	other := doc{tenant: "t2", id: "manual", version: 1, texts: []string{"alpha in another tenant's manual"}}
	for _, d := range []struct {
		doc    doc
		source string
	}{{blog, "blog/post.md"}, {manual, "manuals/unit.md"}, {other, "manuals/unit.md"}} {
		chunks := d.doc.chunks()
		for i := range chunks {
			chunks[i].Source = d.source
		}
		if err := ix.UpsertMany(ctx, chunks); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range []*events.QueryFilter{
		{DocumentIDs: []string{"manual"}},
		{SourcePrefix: "manuals/"},
		{DocumentIDs: []string{"manual", "blog"}, SourcePrefix: "manuals/"},
	} {
		hits, err := ix.Search(ctx, SearchRequest{Tenant: "t1", Sparse: sparseOf("alpha beta gamma"), Limit: 20, Filter: f})
		if err != nil {
			t.Fatal(err)
		}
		if len(hits) != 1 || hits[0].DocumentID != "manual" || hits[0].Source != "manuals/unit.md" {
			t.Errorf("filter %+v: %d hits %v, want tenant t1's manual only", f, len(hits), hits)
		}
	}
	hits, err := ix.Search(ctx, SearchRequest{Tenant: "t1", Sparse: sparseOf("alpha beta gamma"), Limit: 20})
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range hits {
		if h.DocumentID != "blog" {
			t.Fatalf("without a filter the manual (%v) is not among the 20 best: the test no longer shows a filter searched in the store", h)
		}
	}
}
