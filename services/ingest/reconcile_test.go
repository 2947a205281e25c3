package ingest

import (
	"context"
	"errors"
	"testing"
	"time"
)

// TestReconcileAfterCrashBetweenPublishAndRecord kills Ingest (a
// failpoint) after the version's events were published and before it was
// recorded, restarts on the same store, and checks that the version is
// recorded: readable and deletable, where before GET and DELETE answered
// 404 for a document that was searchable. The same content sent again
// makes a new version instead of being skipped.
func TestReconcileAfterCrashBetweenPublishAndRecord(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	st, err := OpenStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	em := &recordingEmitter{}
	crashed := errors.New("killed")
	s := NewService(st, newTestChunker(t), em).(*service)
	s.crashAfterPublish = func() error { return crashed }
	doc := Document{ID: "plan", Title: "Plan", ContentType: "text/plain", Source: "docs/plan.txt", Content: []byte("Aurora ships in March.")}
	if _, err := s.Ingest(ctx, acme, doc); !errors.Is(err, crashed) {
		t.Fatalf("Ingest through the failpoint = %v", err)
	}
	if a, _, _ := em.counts(); a != 1 {
		t.Fatalf("%d versions published before the crash, want 1", a)
	}
	if _, err := s.Get(ctx, acme, "plan"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("before reconciling, Get = %v: the failpoint did not leave the version unrecorded", err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}

	// Restart.
	st, err = OpenStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	n, err := st.Reconcile(time.Now())
	if err != nil || n != 1 {
		t.Fatalf("Reconcile = %d, %v; want 1 version recorded", n, err)
	}
	em = &recordingEmitter{}
	svc := NewService(st, newTestChunker(t), em)
	info, err := svc.Get(ctx, acme, "plan")
	if err != nil || info.Version != 1 || info.Title != "Plan" || info.Source != "docs/plan.txt" {
		t.Fatalf("after reconciling, Get = %+v, %v; want version 1 with its title and source", info, err)
	}
	// The same bytes again: a new version, since whether every chunk of
	// version 1 left is unknown.
	res, err := svc.Ingest(ctx, acme, doc)
	if err != nil || res.Status != ResultAccepted || res.Version != 2 {
		t.Fatalf("re-sending the content = %+v, %v; want version 2 accepted", res, err)
	}
	if _, err := svc.Delete(ctx, acme, "plan"); err != nil {
		t.Fatalf("Delete after reconciling: %v", err)
	}
	if _, _, d := em.counts(); d != 1 {
		t.Errorf("%d document.deleted events, want 1", d)
	}
	if n, err := st.Reconcile(time.Now()); err != nil || n != 0 {
		t.Errorf("second Reconcile = %d, %v; want nothing left", n, err)
	}
}
