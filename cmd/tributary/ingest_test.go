package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/tributary-rag/tributary/services/ingest"
)

// syncServer is the real ingest service and HTTP API over a store in a
// temporary directory, with an emitter that keeps every event and a
// chunker that makes one piece per document (parsing is not under test).
type syncServer struct {
	url      string
	posts    atomic.Int64
	conns    atomic.Int64 // connections accepted
	mu       sync.Mutex
	accepted map[string]int // document id → newest version
	deleted  map[string]bool
}

func (s *syncServer) Accepted(_ context.Context, v ingest.Version) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.accepted[v.DocumentID] = v.Version
	delete(s.deleted, v.DocumentID)
	return nil
}

func (s *syncServer) Rejected(context.Context, string, string, error) error { return nil }

func (s *syncServer) Deleted(_ context.Context, _, id string, _ int) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.deleted[id] = true
	return nil
}

type onePiece struct{}

func (onePiece) Chunk(_ context.Context, _, _ string, content []byte) (ingest.Chunked, error) {
	return ingest.Chunked{ContentType: "text/plain", Pieces: []ingest.Piece{{Text: string(content)}}}, nil
}

func newSyncServer(t testing.TB) *syncServer {
	t.Helper()
	return newSyncServerAt(t, t.TempDir())
}

// newSyncServerAt is newSyncServer with its store in dir.
func newSyncServerAt(t testing.TB, dir string) *syncServer {
	t.Helper()
	st, err := ingest.OpenStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	s := &syncServer{accepted: map[string]int{}, deleted: map[string]bool{}}
	svc := ingest.NewService(st, onePiece{}, s)
	auth := ingest.AuthenticatorFunc(func(key string) (ingest.Principal, bool) {
		return ingest.Principal{Tenant: "acme"}, key == "k"
	})
	h := ingest.MakeHTTPHandler(ingest.MakeEndpoints(svc), auth, slog.New(slog.DiscardHandler))
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost {
			s.posts.Add(1)
		}
		h.ServeHTTP(w, r)
	}))
	srv.Config.ConnState = func(_ net.Conn, state http.ConnState) {
		if state == http.StateNew {
			s.conns.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	s.url = srv.URL
	return s
}

func (s *syncServer) live() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.accepted) - len(s.deleted)
}

func writeTree(t testing.TB, dir string, files map[string]string) {
	t.Helper()
	for name, body := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o750); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// TestIngestIsASync runs `tributary ingest DIR` against the real ingest
// API again and again: it never duplicates, skips unchanged files without
// uploading them, makes a changed file a new version of the same
// document, deletes gone files only with --prune, and reports a symlink
// loop, a dangling link and a name in GBK without failing the sync.
func TestIngestIsASync(t *testing.T) {
	srv := newSyncServer(t)
	dir := filepath.Join(t.TempDir(), "docs")
	writeTree(t, dir, map[string]string{
		"gpl/copyright":          "GNU General Public License",
		"gpl-3/copyright":        "GNU General Public License", // same bytes, another document
		"README.Debian":          "Notes for Debian.",
		"sub/deep/a.txt":         "alpha",
		".git/config":            "hidden",
		"\xc4\xe3\xba\xc3.txt":   "你好 in GBK file name",
		"changelog.Debian.gz.md": "changes",
	})
	if err := os.Symlink("..", filepath.Join(dir, "sub", "loop")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("missing", filepath.Join(dir, "dangling")); err != nil {
		t.Fatal(err)
	}
	sync := func(args ...string) (string, string, error) {
		var out, errb bytes.Buffer
		err := run(context.Background(), append([]string{"ingest", dir, "--server", srv.url, "--api-key", "k"}, args...), &out, &errb)
		return out.String(), errb.String(), err
	}

	out, errs, err := sync()
	if err != nil {
		t.Fatalf("first sync: %v\n%s", err, errs)
	}
	if got := srv.live(); got != 6 {
		t.Fatalf("after the first sync %d documents, want 6\n%s", got, out)
	}
	for _, want := range []string{"loops back", "dangling", "6 added"} {
		if !strings.Contains(errs, want) {
			t.Errorf("first sync stderr lacks %q:\n%s", want, errs)
		}
	}
	up := uploader{base: srv.url, key: "k", client: http.DefaultClient}
	listed, err := up.list(context.Background(), "docs/")
	if err != nil {
		t.Fatal(err)
	}
	for _, src := range []string{"docs/%C4%E3%BA%C3.txt", "docs/gpl/copyright", "docs/gpl-3/copyright", "docs/sub/deep/a.txt"} {
		if _, ok := listed[src]; !ok {
			t.Errorf("no document with source %q; have %v", src, listed)
		}
	}

	posts := srv.posts.Load()
	out, errs, err = sync()
	if err != nil || out != "" || srv.posts.Load() != posts || !strings.Contains(errs, "6 unchanged") {
		t.Fatalf("second sync: err %v, %d uploads, stdout %q; want nothing uploaded\n%s", err, srv.posts.Load()-posts, out, errs)
	}

	writeTree(t, dir, map[string]string{"sub/deep/a.txt": "alpha, edited"})
	if err := os.Remove(filepath.Join(dir, "README.Debian")); err != nil {
		t.Fatal(err)
	}
	out, errs, err = sync()
	if err != nil || !strings.Contains(out, "a.txt\t") || !strings.Contains(out, "\tv2\taccepted") || srv.live() != 6 {
		t.Fatalf("sync after an edit: err %v, %d documents, stdout %q; want a.txt v2 and still 6\n%s", err, srv.live(), out, errs)
	}
	out, errs, err = sync("--prune")
	if err != nil || !strings.Contains(out, "deleted") || srv.live() != 5 {
		t.Fatalf("sync --prune: err %v, %d documents, stdout %q; want README.Debian deleted\n%s", err, srv.live(), out, errs)
	}
	if !strings.Contains(errs, "1 deleted") {
		t.Errorf("prune summary: %s", errs)
	}
}

func TestSourceName(t *testing.T) {
	tests := []struct{ in, want string }{
		{"README.md", "README.md"},
		{"说明.txt", "说明.txt"},
		{"\xc4\xe3\xba\xc3.txt", "%C4%E3%BA%C3.txt"},
	}
	for _, tt := range tests {
		if got := sourceName(tt.in); got != tt.want {
			t.Errorf("sourceName(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestReadStableRefusesLargeFiles(t *testing.T) {
	p := filepath.Join(t.TempDir(), "big")
	if err := os.WriteFile(p, bytes.Repeat([]byte("x"), 100), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := readStable(p, 10, nil); err == nil {
		t.Error("readStable over the limit succeeded")
	}
	b, stable, err := readStable(p, 100, nil)
	if err != nil || !stable || len(b) != 100 {
		t.Errorf("readStable = %d bytes, %v, %v", len(b), stable, err)
	}
}

// BenchmarkSyncUnchanged measures a sync of a tree of tiny files that the
// server already has: listing, hashing and skipping, no upload. ns/op is
// per sync of the whole tree. The setup uploads the tree once: for 100000
// files about ten seconds with the store on /dev/shm, minutes on a disk.
func BenchmarkSyncUnchanged(b *testing.B) {
	for _, n := range []int{1000, 10000, 100000} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			srv := newSyncServerAt(b, memTempDir(b))
			dir := filepath.Join(memTempDir(b), "tiny")
			writeTinyTree(b, dir, n)
			opts := syncOptions{parallel: 4, maxSize: 1 << 20}
			up := uploader{base: srv.url, key: "k", client: syncClient(opts.parallel)}
			if _, err := syncTrees(context.Background(), up, []string{dir}, opts, io.Discard, io.Discard); err != nil {
				b.Fatal(err)
			}
			posts := srv.posts.Load()
			b.ResetTimer()
			for b.Loop() {
				st, err := syncTrees(context.Background(), up, []string{dir}, opts, io.Discard, io.Discard)
				if err != nil || st.unchanged != n {
					b.Fatalf("sync: %+v, %v", st, err)
				}
			}
			b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "files/s")
			if srv.posts.Load() != posts {
				b.Fatalf("an unchanged sync uploaded %d files", srv.posts.Load()-posts)
			}
		})
	}
}

// TestIngestWatch runs `tributary ingest --watch` and adds a file while it
// runs: the next sync uploads it, and cancelling ends the command cleanly.
func TestIngestWatch(t *testing.T) {
	srv := newSyncServer(t)
	dir := filepath.Join(t.TempDir(), "w")
	writeTree(t, dir, map[string]string{"a.txt": "alpha"})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"ingest", dir, "--server", srv.url, "--api-key", "k", "--watch", "--watch-interval", "20ms"}, io.Discard, io.Discard)
	}()
	waitLive := func(n int) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for srv.live() != n {
			if time.Now().After(deadline) {
				t.Fatalf("%d documents, want %d", srv.live(), n)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	waitLive(1)
	writeTree(t, dir, map[string]string{"b.txt": "beta"})
	waitLive(2)
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("ingest --watch ended with %v, want nil", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("ingest --watch did not stop")
	}
}

func FuzzSourceName(f *testing.F) {
	for _, s := range []string{"README.md", "说明.txt", "\xc4\xe3\xba\xc3.txt", "a%b", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		got := sourceName(name)
		if !utf8.ValidString(got) {
			t.Fatalf("sourceName(%q) = %q, not UTF-8", name, got)
		}
		if utf8.ValidString(name) && got != name {
			t.Fatalf("sourceName(%q) = %q, want it unchanged", name, got)
		}
		if sourceName(got) != got {
			t.Fatalf("sourceName is not idempotent on %q", got)
		}
	})
}
