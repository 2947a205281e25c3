package ingest

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/tributary-rag/tributary/pkg/chunk"
	"github.com/tributary-rag/tributary/pkg/docparse"
)

// recordingEmitter keeps what the service emits and can fail on demand, to
// drive the paths where the broker is down.
type recordingEmitter struct {
	mu       sync.Mutex
	fail     error
	accepted []Version
	rejected []string
	deleted  []string
}

func (e *recordingEmitter) Accepted(ctx context.Context, v Version) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.fail != nil {
		return e.fail
	}
	e.accepted = append(e.accepted, v)
	return nil
}

func (e *recordingEmitter) Rejected(ctx context.Context, tenant, documentID string, reason error) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.fail != nil {
		return e.fail
	}
	e.rejected = append(e.rejected, tenant+"/"+documentID)
	return nil
}

func (e *recordingEmitter) Deleted(ctx context.Context, tenant, documentID string, version int) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.fail != nil {
		return e.fail
	}
	e.deleted = append(e.deleted, tenant+"/"+documentID)
	return nil
}

func (e *recordingEmitter) setFail(err error) {
	e.mu.Lock()
	e.fail = err
	e.mu.Unlock()
}

func (e *recordingEmitter) counts() (accepted, rejected, deleted int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.accepted), len(e.rejected), len(e.deleted)
}

func newTestChunker(t testing.TB) *DocChunker {
	t.Helper()
	p, err := docparse.NewPool(t.Context(), docparse.PoolOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	c, err := NewDocChunker(chunk.Options{Size: 64, Overlap: 8}, docparse.Limits{}, p)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func newTestService(t testing.TB, dir string, opts ...Option) (Service, *recordingEmitter, *Store) {
	t.Helper()
	st, err := OpenStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	em := &recordingEmitter{}
	return NewService(st, newTestChunker(t), em, opts...), em, st
}

var (
	acme   = Principal{Tenant: "acme"}
	globex = Principal{Tenant: "globex"}
)

func textDoc(id, text string) Document {
	return Document{ID: id, ContentType: "text/plain", Content: []byte(text)}
}

func TestServiceLifecycle(t *testing.T) {
	ctx := context.Background()
	svc, em, _ := newTestService(t, t.TempDir())
	long := strings.Repeat("The river carries water to the sea. ", 20)

	steps := []struct {
		name string
		doc  Document
		want Result
	}{
		{"first", textDoc("d1", long), Result{"d1", 1, ResultAccepted}},
		{"same content", textDoc("d1", long), Result{"d1", 1, ResultUnchanged}},
		{"new content", textDoc("d1", long+" And back again."), Result{"d1", 2, ResultAccepted}},
		{"new title only", Document{ID: "d1", Title: "River", ContentType: "text/plain", Content: []byte(long + " And back again.")}, Result{"d1", 3, ResultAccepted}},
		{"other document", textDoc("d2", "short"), Result{"d2", 1, ResultAccepted}},
	}
	wantAccepted := 0
	for _, st := range steps {
		got, err := svc.Ingest(ctx, acme, st.doc)
		if err != nil {
			t.Fatalf("%s: Ingest: %v", st.name, err)
		}
		if got != st.want {
			t.Fatalf("%s: Ingest = %+v, want %+v", st.name, got, st.want)
		}
		if got.Status == ResultAccepted {
			wantAccepted++
		}
		if n, _, _ := em.counts(); n != wantAccepted {
			t.Fatalf("%s: %d versions emitted, want %d", st.name, n, wantAccepted)
		}
	}
	v := em.accepted[0]
	if len(v.Pieces) < 2 {
		t.Fatalf("first version has %d pieces, want several of at most 64 runes", len(v.Pieces))
	}
	if v.Title != "d1" || v.ContentType != "text/plain" || v.Tenant != "acme" || !strings.HasPrefix(v.ContentHash, "sha256:") {
		t.Errorf("first version = %+v", v)
	}

	info, err := svc.Get(ctx, acme, "d1")
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	if info.Version != 3 || info.Status != StatusActive || info.Title != "River" || info.ChunkCount != len(em.accepted[2].Pieces) {
		t.Errorf("Get = %+v", info)
	}

	// Tenancy: another tenant neither sees nor deletes d1, and has its own d1.
	if _, err := svc.Get(ctx, globex, "d1"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Get by other tenant: err = %v, want ErrNotFound", err)
	}
	if _, err := svc.Delete(ctx, globex, "d1"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Delete by other tenant: err = %v, want ErrNotFound", err)
	}
	if got, err := svc.Ingest(ctx, globex, textDoc("d1", long)); err != nil || got.Version != 1 || got.Status != ResultAccepted {
		t.Errorf("Ingest by other tenant = %+v, %v; want version 1 accepted", got, err)
	}

	del, err := svc.Delete(ctx, acme, "d1")
	if err != nil || del != (Result{"d1", 3, ResultDeleted}) {
		t.Fatalf("Delete = %+v, %v", del, err)
	}
	if _, _, d := em.counts(); d != 1 {
		t.Fatalf("%d deletions emitted, want 1", d)
	}
	if _, err := svc.Get(ctx, acme, "d1"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Get after delete: err = %v, want ErrNotFound", err)
	}
	if _, err := svc.Delete(ctx, acme, "d1"); !errors.Is(err, ErrNotFound) {
		t.Errorf("second Delete: err = %v, want ErrNotFound", err)
	}
	// The same content after a delete is a new version, not "unchanged".
	if got, err := svc.Ingest(ctx, acme, textDoc("d1", long)); err != nil || got != (Result{"d1", 4, ResultAccepted}) {
		t.Errorf("Ingest after delete = %+v, %v; want version 4 accepted", got, err)
	}
}

func TestServiceBrokerFailureKeepsVersionsSafe(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	svc, em, st := newTestService(t, dir)
	down := errors.New("broker down")

	if _, err := svc.Ingest(ctx, acme, textDoc("d", "version one")); err != nil {
		t.Fatal(err)
	}
	em.setFail(down)
	if _, err := svc.Ingest(ctx, acme, textDoc("d", "version two")); !errors.Is(err, ErrUnavailable) || !errors.Is(err, down) {
		t.Fatalf("Ingest with broker down: err = %v, want ErrUnavailable wrapping the cause", err)
	}
	rec, _ := st.Get("acme", "d")
	if rec.Version != 1 || rec.Pending == nil || rec.Pending.Version != 2 {
		t.Fatalf("record after failed publish = %+v, want version 1 with version 2 pending", rec)
	}
	em.setFail(nil)
	// Different content after the failure must not reuse version 2: its
	// chunks may already be on the topics.
	got, err := svc.Ingest(ctx, acme, textDoc("d", "version three"))
	if err != nil || got != (Result{"d", 3, ResultAccepted}) {
		t.Fatalf("Ingest after failure = %+v, %v; want version 3", got, err)
	}

	// The same content retried after a failure publishes the same version.
	em.setFail(down)
	if _, err := svc.Ingest(ctx, acme, textDoc("d", "version four")); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("err = %v, want ErrUnavailable", err)
	}
	em.setFail(nil)
	got, err = svc.Ingest(ctx, acme, textDoc("d", "version four"))
	if err != nil || got != (Result{"d", 4, ResultAccepted}) {
		t.Fatalf("retry = %+v, %v; want version 4", got, err)
	}
	// Delete with the broker down leaves the document in place.
	em.setFail(down)
	if _, err := svc.Delete(ctx, acme, "d"); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Delete with broker down: err = %v, want ErrUnavailable", err)
	}
	em.setFail(nil)
	if _, err := svc.Get(ctx, acme, "d"); err != nil {
		t.Fatalf("Get after failed delete: %v", err)
	}
}

func TestServiceRestartKeepsVersions(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	st, err := OpenStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	em := &recordingEmitter{}
	svc := NewService(st, newTestChunker(t), em)
	for _, text := range []string{"one", "two"} {
		if _, err := svc.Ingest(ctx, acme, textDoc("d", text)); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}

	svc2, em2, _ := newTestService(t, dir)
	got, err := svc2.Ingest(ctx, acme, textDoc("d", "two"))
	if err != nil || got != (Result{"d", 2, ResultUnchanged}) {
		t.Fatalf("after restart, same content = %+v, %v; want version 2 unchanged", got, err)
	}
	got, err = svc2.Ingest(ctx, acme, textDoc("d", "three"))
	if err != nil || got != (Result{"d", 3, ResultAccepted}) {
		t.Fatalf("after restart, new content = %+v, %v; want version 3", got, err)
	}
	if n, _, _ := em2.counts(); n != 1 {
		t.Fatalf("after restart %d versions emitted, want 1", n)
	}
}

func TestServiceRefusals(t *testing.T) {
	ctx := context.Background()
	svc, em, _ := newTestService(t, t.TempDir(), WithMaxDocumentSize(1024))
	hr := Principal{Tenant: "acme", Groups: []string{"hr"}}
	if _, err := svc.Ingest(ctx, acme, Document{ID: "fin", ContentType: "text/plain", Content: []byte("numbers"), Groups: []string{"finance"}}); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name         string
		p            Principal
		doc          Document
		want         error
		wantRejected bool
	}{
		{"no tenant", Principal{}, textDoc("x", "a"), ErrUnauthenticated, false},
		{"too large", acme, textDoc("x", strings.Repeat("a", 1025)), ErrTooLarge, false},
		{"bad id", acme, textDoc("a/b", "a"), ErrInvalid, false},
		{"control in id", acme, textDoc("a\x00b", "a"), ErrInvalid, false},
		{"bad group", acme, Document{ID: "x", ContentType: "text/plain", Content: []byte("a"), Groups: []string{"a|b"}}, ErrInvalid, false},
		{"metadata too large", acme, Document{ID: "x", ContentType: "text/plain", Content: []byte("a"), Metadata: map[string]string{
			"a": strings.Repeat("v", 4000), "b": strings.Repeat("v", 4000), "c": strings.Repeat("v", 4000), "d": strings.Repeat("v", 4000), "e": strings.Repeat("v", 4000)}}, ErrInvalid, false},
		{"foreign group", hr, Document{ID: "x", ContentType: "text/plain", Content: []byte("a"), Groups: []string{"finance"}}, ErrForbidden, false},
		{"overwrite a document the key cannot see: not found, as GET says", hr, textDoc("fin", "other"), ErrNotFound, false},
		{"unsupported type", acme, Document{ID: "x", ContentType: "image/png", Content: []byte("\x89PNG\r\n\x1a\n\x00\x00")}, ErrUnsupportedType, true},
		{"broken pdf", acme, Document{ID: "x", ContentType: "application/pdf", Content: []byte("%PDF-1.7\n1 0 obj\n<< /Type /Catalog")}, ErrUnreadable, true},
		{"empty text", acme, textDoc("x", "   \n\n  "), ErrUnreadable, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, rejBefore, _ := em.counts()
			_, err := svc.Ingest(ctx, tt.p, tt.doc)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Ingest() err = %v, want %v", err, tt.want)
			}
			_, rejAfter, _ := em.counts()
			if got := rejAfter > rejBefore; got != tt.wantRejected {
				t.Errorf("document.rejected emitted = %v, want %v", got, tt.wantRejected)
			}
		})
	}

	// Group keys see their groups' and tenant-wide documents only.
	if _, err := svc.Get(ctx, hr, "fin"); !errors.Is(err, ErrNotFound) {
		t.Errorf("hr key Get(fin): err = %v, want ErrNotFound", err)
	}
	if _, err := svc.Delete(ctx, hr, "fin"); !errors.Is(err, ErrNotFound) {
		t.Errorf("hr key Delete(fin): err = %v, want ErrNotFound", err)
	}
	res, err := svc.Ingest(ctx, hr, textDoc("policy", "holiday policy"))
	if err != nil {
		t.Fatal(err)
	}
	info, err := svc.Get(ctx, acme, res.DocumentID)
	if err != nil || len(info.Groups) != 1 || info.Groups[0] != "hr" {
		t.Errorf("document of an hr key = %+v, %v; want groups [hr]", info, err)
	}
}

func TestServiceDerivesIDFromIdentity(t *testing.T) {
	ctx := context.Background()
	svc, _, _ := newTestService(t, t.TempDir())
	doc := Document{ContentType: "text/plain", Content: []byte("no id given"), Filename: "note.txt"}
	first, err := svc.Ingest(ctx, acme, doc)
	if err != nil {
		t.Fatal(err)
	}
	if first.DocumentID != DeriveID(acme.Tenant, "note.txt") {
		t.Fatalf("DocumentID = %q, want %q", first.DocumentID, DeriveID(acme.Tenant, "note.txt"))
	}
	again, err := svc.Ingest(ctx, acme, doc)
	if err != nil || again.Status != ResultUnchanged {
		t.Fatalf("same upload again = %+v, %v; want unchanged", again, err)
	}
	info, err := svc.Get(ctx, acme, first.DocumentID)
	if err != nil || info.Title != "note.txt" {
		t.Fatalf("Get = %+v, %v; want title from the file name", info, err)
	}

	// A changed file under the same source is a new version of the same
	// document, never a second document.
	v1 := Document{ContentType: "text/plain", Content: []byte("charges in 90 minutes"), Source: "manual/charging.txt", Filename: "charging.txt"}
	r1, err := svc.Ingest(ctx, acme, v1)
	if err != nil {
		t.Fatal(err)
	}
	v2 := v1
	v2.Content = []byte("charges in 45 minutes")
	r2, err := svc.Ingest(ctx, acme, v2)
	if err != nil || r2.DocumentID != r1.DocumentID || r2.Version != 2 {
		t.Fatalf("changed file = %+v, %v; want %s version 2", r2, err, r1.DocumentID)
	}
	// The same bytes under two sources (GPL and GPL-3) are two documents.
	twin := v2
	twin.Source = "manual/charging-copy.txt"
	r3, err := svc.Ingest(ctx, acme, twin)
	if err != nil || r3.DocumentID == r1.DocumentID {
		t.Fatalf("same bytes, other source = %+v, %v; want another document", r3, err)
	}
	// The id is scoped to the tenant.
	if DeriveID("acme", "a") == DeriveID("globex", "a") || DeriveID("acme", "a/b") == DeriveID("acme/a", "b") {
		t.Error("DeriveID does not separate tenants")
	}
	// Without id, source or file name there is no identity.
	if _, err := svc.Ingest(ctx, acme, Document{ContentType: "text/plain", Content: []byte("x")}); !errors.Is(err, ErrInvalid) {
		t.Errorf("document without identity: err = %v, want ErrInvalid", err)
	}

	page, err := svc.List(ctx, acme, ListQuery{SourcePrefix: "manual/", Limit: 1})
	if err != nil || len(page.Documents) != 1 || page.Next == "" {
		t.Fatalf("List page 1 = %+v, %v; want one entry and a next cursor", page, err)
	}
	page2, err := svc.List(ctx, acme, ListQuery{SourcePrefix: "manual/", After: page.Next, Limit: 1})
	if err != nil || len(page2.Documents) != 1 || page2.Next != "" || page2.Documents[0].DocumentID <= page.Documents[0].DocumentID {
		t.Fatalf("List page 2 = %+v, %v; want the other entry and no cursor", page2, err)
	}
	if page2.Documents[0].ContentHash == "" || page2.Documents[0].Source == "" {
		t.Errorf("List entry = %+v; want source and content hash", page2.Documents[0])
	}
	other, err := svc.List(ctx, Principal{Tenant: "globex"}, ListQuery{})
	if err != nil || len(other.Documents) != 0 {
		t.Errorf("List of another tenant = %+v, %v; want nothing", other, err)
	}
}

func TestServiceConcurrentIngestOfOneDocument(t *testing.T) {
	ctx := context.Background()
	svc, em, _ := newTestService(t, t.TempDir())
	const n = 8
	var wg sync.WaitGroup
	results := make([]Result, n)
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i], errs[i] = svc.Ingest(ctx, acme, textDoc("d", strings.Repeat("x", i+1)))
		}()
	}
	wg.Wait()
	seen := map[int]bool{}
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("Ingest %d: %v", i, errs[i])
		}
		if seen[results[i].Version] {
			t.Fatalf("version %d handed out twice", results[i].Version)
		}
		seen[results[i].Version] = true
	}
	if a, _, _ := em.counts(); a != n {
		t.Fatalf("%d versions emitted, want %d", a, n)
	}
}

// countingChunker counts the documents the real chunker parses.
type countingChunker struct {
	Chunker
	mu sync.Mutex
	n  int
}

func (c *countingChunker) Chunk(ctx context.Context, contentType, filename string, content []byte) (Chunked, error) {
	c.mu.Lock()
	c.n++
	c.mu.Unlock()
	return c.Chunker.Chunk(ctx, contentType, filename, content)
}

func TestServiceUnchangedSkipsParsing(t *testing.T) {
	ctx := context.Background()
	st, err := OpenStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	cc := &countingChunker{Chunker: newTestChunker(t)}
	svc := NewService(st, cc, &recordingEmitter{})
	for i, want := range []string{ResultAccepted, ResultUnchanged, ResultUnchanged} {
		res, err := svc.Ingest(ctx, acme, textDoc("d", "same text every night"))
		if err != nil || res.Status != want {
			t.Fatalf("upload %d = %+v, %v; want %s", i, res, err, want)
		}
	}
	if cc.n != 1 {
		t.Fatalf("parsed %d times, want 1: unchanged uploads must not be parsed again", cc.n)
	}
}
