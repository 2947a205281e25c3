package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// syncWithin runs syncTrees and fails the test if it does not return
// within limit: a sync that opens a named pipe blocks for ever.
func syncWithin(t *testing.T, srv *syncServer, dir string, opts syncOptions, limit time.Duration) (syncStats, string) {
	t.Helper()
	type result struct {
		st  syncStats
		err error
	}
	var stderr bytes.Buffer
	done := make(chan result, 1)
	go func() {
		up := uploader{base: srv.url, key: "k", client: syncClient(opts.parallel)}
		st, err := syncTrees(context.Background(), up, []string{dir}, opts, io.Discard, &stderr)
		done <- result{st, err}
	}()
	select {
	case r := <-done:
		if r.err != nil {
			t.Fatalf("sync: %v\n%s", r.err, stderr.String())
		}
		return r.st, stderr.String()
	case <-time.After(limit):
		t.Fatalf("sync did not finish in %v", limit)
		return syncStats{}, ""
	}
}

// listed returns the server's documents under prefix by source.
func listed(t *testing.T, srv *syncServer, prefix string) map[string]listedDocument {
	t.Helper()
	up := uploader{base: srv.url, key: "k", client: &http.Client{}}
	docs, err := up.list(context.Background(), prefix)
	if err != nil {
		t.Fatal(err)
	}
	return docs
}

func contentHash(s string) string {
	sum := sha256.Sum256([]byte(s))
	return "sha256:" + hex.EncodeToString(sum[:])
}

// TestIngestFileChangingWhileRead changes files between a read and the
// look at their size and modification time that follows it: a file that
// settles is read again and uploaded with the bytes of the stable read,
// never with those of a read it changed under; a file that keeps changing
// is read maxReadTries times, reported and not uploaded, and the sync
// goes on with the others.
func TestIngestFileChangingWhileRead(t *testing.T) {
	srv := newSyncServer(t)
	dir := filepath.Join(t.TempDir(), "moving")
	writeTree(t, dir, map[string]string{
		"a.txt":       "alpha",
		"flaky.txt":   "flaky 0",
		"settles.txt": "first",
		"z.txt":       "zulu",
	})
	var mu sync.Mutex
	reads := map[string]int{}
	var hookErr error
	opts := syncOptions{parallel: 2, maxSize: 1 << 20, afterRead: func(path string) {
		mu.Lock()
		defer mu.Unlock()
		name := filepath.Base(path)
		reads[name]++
		var err error
		switch {
		case name == "flaky.txt":
			// A longer file each time: a change whatever the clock's resolution.
			err = os.WriteFile(path, []byte(fmt.Sprintf("flaky %d%s", reads[name], strings.Repeat("!", reads[name]))), 0o600)
		case name == "settles.txt" && reads[name] == 1:
			err = os.WriteFile(path, []byte("second, longer"), 0o600)
		}
		if err != nil && hookErr == nil {
			hookErr = err
		}
	}}
	st, errs := syncWithin(t, srv, dir, opts, time.Minute)
	if hookErr != nil {
		t.Fatal(hookErr)
	}
	if st.added != 3 || st.failed != 1 || st.skipped != 0 {
		t.Errorf("sync = %+v, want 3 added and 1 failed\n%s", st, errs)
	}
	if reads["flaky.txt"] != maxReadTries || reads["settles.txt"] != 2 || reads["a.txt"] != 1 {
		t.Errorf("reads = %v, want flaky.txt %d times, settles.txt twice, the others once", reads, maxReadTries)
	}
	for _, want := range []string{
		filepath.Join(dir, "flaky.txt") + ": changed while being read (3 tries)",
		"4 files: 3 added, 0 updated, 0 unchanged, 0 deleted, 1 failed, 0 skipped",
	} {
		if !strings.Contains(errs, want) {
			t.Errorf("stderr lacks %q:\n%s", want, errs)
		}
	}
	docs := listed(t, srv, "moving/")
	if d, ok := docs["moving/flaky.txt"]; ok {
		t.Errorf("a file that never stood still was uploaded: %+v", d)
	}
	for src, body := range map[string]string{"moving/a.txt": "alpha", "moving/settles.txt": "second, longer", "moving/z.txt": "zulu"} {
		if got := docs[src].ContentHash; got != contentHash(body) {
			t.Errorf("%s has content hash %q, want that of %q (the stable read)", src, got, body)
		}
	}
	if n := srv.posts.Load(); n != 3 {
		t.Errorf("%d uploads, want 3", n)
	}
}

// TestIngestExitStatus pins what makes `tributary ingest` exit non-zero:
// a file that failed (here one over --max-size) does, and the summary
// counts it; what is skipped by design (a dangling link) is reported and
// counted but does not.
func TestIngestExitStatus(t *testing.T) {
	srv := newSyncServer(t)
	dir := filepath.Join(t.TempDir(), "exit")
	writeTree(t, dir, map[string]string{"ok.txt": "fine", "big.txt": strings.Repeat("x", 100)})
	if err := os.Symlink("missing", filepath.Join(dir, "dangling")); err != nil {
		t.Fatal(err)
	}
	sync := func() (string, error) {
		var errb bytes.Buffer
		err := run(context.Background(), []string{"ingest", dir, "--server", srv.url, "--api-key", "k", "--max-size", "10"}, io.Discard, &errb)
		return errb.String(), err
	}
	errs, err := sync()
	if err == nil || !strings.Contains(err.Error(), "1 failed") {
		t.Errorf("sync with a file over --max-size: err %v, want 1 failed", err)
	}
	for _, want := range []string{"big.txt: 100 B, over --max-size 10 B", "dangling: dangling symbolic link", "2 files: 1 added, 0 updated, 0 unchanged, 0 deleted, 1 failed, 1 skipped"} {
		if !strings.Contains(errs, want) {
			t.Errorf("stderr lacks %q:\n%s", want, errs)
		}
	}
	if _, ok := listed(t, srv, "exit/")["exit/ok.txt"]; !ok {
		t.Error("ok.txt not uploaded")
	}

	if err := os.Remove(filepath.Join(dir, "big.txt")); err != nil {
		t.Fatal(err)
	}
	errs, err = sync()
	if err != nil || !strings.Contains(errs, "1 files: 0 added, 0 updated, 1 unchanged, 0 deleted, 0 failed, 1 skipped") {
		t.Errorf("sync with only a dangling link: err %v, want nil\n%s", err, errs)
	}
}

func tinyName(i int) string { return fmt.Sprintf("d%03d/f%06d.txt", i%100, i) }
func tinyBody(i int) string { return fmt.Sprintf("tiny file %d", i) }

// writeTinyTree writes n tiny files over 100 directories, a directory per
// goroutine: file creation is system calls, so a few run at once.
func writeTinyTree(t testing.TB, dir string, n int) {
	t.Helper()
	for d := range 100 {
		if err := os.MkdirAll(filepath.Join(dir, fmt.Sprintf("d%03d", d)), 0o750); err != nil {
			t.Fatal(err)
		}
	}
	errs := make(chan error, 100)
	var wg sync.WaitGroup
	sem := make(chan struct{}, 8)
	for d := range 100 {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			for i := d; i < n; i += 100 {
				if err := os.WriteFile(filepath.Join(dir, tinyName(i)), []byte(tinyBody(i)), 0o600); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		t.Fatal(err)
	}
}

// TestIngestKeepsConnections syncs 1,000 files with --parallel 8: the
// uploads reuse a connection each instead of dialling one for most
// uploads (http.DefaultTransport keeps only two idle per host).
func TestIngestKeepsConnections(t *testing.T) {
	srv := newSyncServer(t)
	dir := filepath.Join(t.TempDir(), "conns")
	writeTinyTree(t, dir, 1000)
	var errb bytes.Buffer
	if err := run(context.Background(), []string{"ingest", dir, "--server", srv.url, "--api-key", "k", "--parallel", "8"}, io.Discard, &errb); err != nil {
		t.Fatalf("sync: %v\n%s", err, errb.String())
	}
	if got := srv.conns.Load(); got > 16 {
		t.Errorf("1,000 uploads 8 at a time opened %d connections, want at most 16", got)
	}
}

// TestIngestLongSources syncs a tree whose sources are long (two levels
// of directories named in GBK, escaped to three bytes a byte): a page of
// the server's listing is then over a megabyte, and the second sync must
// still read it to know that nothing changed.
func TestIngestLongSources(t *testing.T) {
	srv := newSyncServer(t)
	gbk := strings.Repeat("\xc4\xe3\xba\xc3", 60) // 240 bytes, 720 in a source
	dir := filepath.Join(t.TempDir(), "long")
	files := map[string]string{}
	for i := range 1000 {
		files[filepath.Join(gbk, gbk, fmt.Sprintf("%04d.txt", i))] = fmt.Sprint(i)
	}
	writeTree(t, dir, files)
	opts := syncOptions{parallel: 4, maxSize: 1 << 20}
	if st, errs := syncWithin(t, srv, dir, opts, time.Minute); st.added != 1000 {
		t.Fatalf("first sync = %+v, want 1000 added\n%.2000s", st, errs)
	}
	posts := srv.posts.Load()
	if st, errs := syncWithin(t, srv, dir, opts, time.Minute); st.unchanged != 1000 || srv.posts.Load() != posts {
		t.Errorf("second sync = %+v, %d uploads; want 1000 unchanged and none\n%.2000s", st, srv.posts.Load()-posts, errs)
	}
}
