package ingest

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
)

// TestStoreListPages pages through a tenant's records in shuffled insertion
// order, with a filter and another tenant beside it: every kept record
// once, in id order, and nothing else.
func TestStoreListPages(t *testing.T) {
	st, err := OpenStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	r := rand.New(rand.NewPCG(1, 2))
	var want []string
	for _, i := range r.Perm(300) {
		id := fmt.Sprintf("doc-%04d", i)
		for _, tenant := range []string{"acme", "globex"} {
			if err := st.Put(Record{Tenant: tenant, DocumentID: id, Version: 1, Status: StatusActive, Size: int64(i)}); err != nil {
				t.Fatal(err)
			}
		}
		if i%3 != 0 {
			want = append(want, id)
		}
	}
	slices.Sort(want)
	keep := func(rec Record) bool { return rec.Size%3 != 0 }
	var got []string
	for after := ""; ; {
		page := st.List("acme", after, keep, 7)
		for _, rec := range page {
			if rec.Tenant != "acme" {
				t.Fatalf("record of %s listed for acme", rec.Tenant)
			}
			got = append(got, rec.DocumentID)
		}
		if len(page) < 7 {
			break
		}
		after = page[len(page)-1].DocumentID
	}
	if !slices.Equal(got, want) {
		t.Fatalf("listed %d ids %v…, want %d in order", len(got), got[:min(5, len(got))], len(want))
	}
}
