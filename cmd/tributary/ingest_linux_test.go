package main

import (
	"bytes"
	"context"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// TestIngestSkipsSpecialFiles syncs a tree with a named pipe, a socket, a
// link to the pipe, a link to a character device and a link to itself:
// each is reported and skipped without being opened (opening a pipe
// without a writer blocks), the regular file is uploaded and the sync
// succeeds. A named pipe given as the FILE argument is opened without
// blocking and skipped too.
func TestIngestSkipsSpecialFiles(t *testing.T) {
	srv := newSyncServer(t)
	dir := filepath.Join(t.TempDir(), "special")
	writeTree(t, dir, map[string]string{"ok.txt": "fine"})
	pipe := filepath.Join(dir, "pipe")
	if err := syscall.Mkfifo(pipe, 0o600); err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("unix", filepath.Join(dir, "sock"))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if err := os.Symlink("pipe", filepath.Join(dir, "pipe-link")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(os.DevNull, filepath.Join(dir, "null")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("self", filepath.Join(dir, "self")); err != nil {
		t.Fatal(err)
	}
	ingest := func(path string) (string, error) {
		t.Helper()
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		var errb bytes.Buffer
		done := make(chan error, 1)
		go func() {
			done <- run(ctx, []string{"ingest", path, "--server", srv.url, "--api-key", "k"}, io.Discard, &errb)
		}()
		select {
		case err := <-done:
			return errb.String(), err
		case <-time.After(time.Minute):
			t.Fatalf("ingest %s did not finish in a minute: it opened the named pipe", path)
			return "", nil
		}
	}

	errs, err := ingest(dir)
	if err != nil {
		t.Errorf("sync: %v, want nil: skipped entries are no failure", err)
	}
	for _, want := range []string{
		pipe + ": a named pipe, not a regular file; skipped",
		filepath.Join(dir, "sock") + ": a socket, not a regular file; skipped",
		filepath.Join(dir, "pipe-link") + ": a named pipe, not a regular file; skipped",
		filepath.Join(dir, "null") + ": a character device, not a regular file; skipped",
		filepath.Join(dir, "self") + ": symbolic link loop (",
		"1 files: 1 added, 0 updated, 0 unchanged, 0 deleted, 0 failed, 5 skipped",
	} {
		if !strings.Contains(errs, want) {
			t.Errorf("stderr lacks %q:\n%s", want, errs)
		}
	}
	if docs := listed(t, srv, "special/"); len(docs) != 1 {
		t.Errorf("documents %v, want special/ok.txt alone", docs)
	}

	errs, err = ingest(pipe)
	if err != nil || !strings.Contains(errs, pipe+": a named pipe, not a regular file; skipped") ||
		!strings.Contains(errs, "0 failed, 1 skipped") {
		t.Errorf("ingest PIPE: err %v, want nil and the pipe skipped\n%s", err, errs)
	}
}

// TestIngestFileReplacedAfterListing changes the tree between the listing
// and the reads (one upload at a time, in name order, so that reading
// a.txt comes first): b.txt is removed, c.txt becomes a named pipe and
// e.txt removes itself while it is read. Each is reported and skipped, and
// the files that stayed are uploaded.
func TestIngestFileReplacedAfterListing(t *testing.T) {
	srv := newSyncServer(t)
	dir := filepath.Join(t.TempDir(), "churn")
	writeTree(t, dir, map[string]string{"a.txt": "a", "b.txt": "b", "c.txt": "c", "d.txt": "d", "e.txt": "e"})
	var mu sync.Mutex
	var hookErrs []error
	opts := syncOptions{parallel: 1, maxSize: 1 << 20, afterRead: func(path string) {
		mu.Lock()
		defer mu.Unlock()
		switch filepath.Base(path) {
		case "a.txt":
			hookErrs = append(hookErrs,
				os.Remove(filepath.Join(dir, "b.txt")),
				os.Remove(filepath.Join(dir, "c.txt")),
				syscall.Mkfifo(filepath.Join(dir, "c.txt"), 0o600))
		case "e.txt":
			hookErrs = append(hookErrs, os.Remove(path))
		}
	}}
	st, errs := syncWithin(t, srv, dir, opts, time.Minute)
	for _, err := range hookErrs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if st.seen != 5 || st.added != 2 || st.skipped != 3 || st.failed != 0 {
		t.Errorf("sync = %+v, want 5 seen, 2 added, 3 skipped\n%s", st, errs)
	}
	for _, want := range []string{
		filepath.Join(dir, "b.txt") + ": removed after it was listed; skipped",
		filepath.Join(dir, "c.txt") + ": a named pipe, not a regular file; skipped",
		filepath.Join(dir, "e.txt") + ": removed while being read; skipped",
		"5 files: 2 added, 0 updated, 0 unchanged, 0 deleted, 0 failed, 3 skipped",
	} {
		if !strings.Contains(errs, want) {
			t.Errorf("stderr lacks %q:\n%s", want, errs)
		}
	}
	docs := listed(t, srv, "churn/")
	if _, ok := docs["churn/a.txt"]; !ok || len(docs) != 2 {
		t.Errorf("documents %v, want churn/a.txt and churn/d.txt", docs)
	}
}

// TestIngestHundredThousandFiles syncs a tree of 100,000 tiny files: each
// is uploaded exactly once, and a second sync uploads nothing.
func TestIngestHundredThousandFiles(t *testing.T) {
	if testing.Short() {
		t.Skip("100,000 files; skipped with -short")
	}
	const n = 100_000
	srv := newSyncServerAt(t, memTempDir(t))
	dir := filepath.Join(memTempDir(t), "tiny")
	start := time.Now()
	writeTinyTree(t, dir, n)
	t.Logf("wrote %d files in %v", n, time.Since(start).Round(time.Millisecond))

	opts := syncOptions{parallel: 4, maxSize: 1 << 20}
	start = time.Now()
	st, errs := syncWithin(t, srv, dir, opts, 10*time.Minute)
	t.Logf("first sync: %v", time.Since(start).Round(time.Millisecond))
	if st.seen != n || st.added != n || st.failed != 0 || st.skipped != 0 {
		t.Fatalf("first sync = seen %d, added %d, failed %d, skipped %d; want %d added\n%.2000s", st.seen, st.added, st.failed, st.skipped, n, errs)
	}
	// Exactly once: n uploads made n documents, each at version 1.
	if got := srv.posts.Load(); got != n {
		t.Errorf("%d uploads, want %d", got, n)
	}
	srv.mu.Lock()
	docs, notV1 := len(srv.accepted), 0
	for _, v := range srv.accepted {
		if v != 1 {
			notV1++
		}
	}
	srv.mu.Unlock()
	if docs != n || notV1 != 0 {
		t.Errorf("%d documents, %d of them past version 1; want %d at version 1", docs, notV1, n)
	}

	posts := srv.posts.Load()
	start = time.Now()
	st, errs = syncWithin(t, srv, dir, opts, 10*time.Minute)
	t.Logf("second sync: %v", time.Since(start).Round(time.Millisecond))
	// Unchanged means the server lists each file's source with the hash of
	// its bytes.
	if st.unchanged != n || srv.posts.Load() != posts || !strings.Contains(errs, "0 added, 0 updated, 100000 unchanged") {
		t.Errorf("second sync = %+v, %d uploads; want nothing uploaded\n%.2000s", st, srv.posts.Load()-posts, errs)
	}
}

// memTempDir returns a new directory on /dev/shm, a memory file system,
// when it has room for a large tree, else t.TempDir(): a tree of 100,000
// files and the server's store (two fsyncs an upload) take minutes to
// write to a disk.
func memTempDir(t testing.TB) string {
	var fs syscall.Statfs_t
	if err := syscall.Statfs("/dev/shm", &fs); err != nil || fs.Bavail*uint64(fs.Bsize) < 4<<30 {
		return t.TempDir()
	}
	dir, err := os.MkdirTemp("/dev/shm", "tributary-test-")
	if err != nil {
		return t.TempDir()
	}
	t.Cleanup(func() {
		if err := os.RemoveAll(dir); err != nil {
			t.Error(err)
		}
	})
	return dir
}
