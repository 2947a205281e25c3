package main

import (
	"bufio"
	"context"
	"io"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/qdrant/go-client/qdrant"

	"github.com/tributary-rag/tributary/pkg/vectordb"
)

// TestRunVectorDBRestoresSnapshot: --restore-snapshot PATH:NAME restores a
// collection snapshot under NAME before serving; a truncated file stops
// start-up with an error.
func TestRunVectorDBRestoresSnapshot(t *testing.T) {
	ctx := context.Background()
	src := t.TempDir()
	s, err := vectordb.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.CreateCollection(ctx, &qdrant.CreateCollection{CollectionName: "orig",
		VectorsConfig: qdrant.NewVectorsConfig(&qdrant.VectorParams{Size: 2, Distance: qdrant.Distance_Dot})}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Upsert(ctx, &qdrant.UpsertPoints{CollectionName: "orig", Points: []*qdrant.PointStruct{
		{Id: qdrant.NewIDNum(1), Vectors: qdrant.NewVectors(1, 2)}, {Id: qdrant.NewIDNum(2), Vectors: qdrant.NewVectors(3, 4)},
	}}); err != nil {
		t.Fatal(err)
	}
	d, err := s.CreateSnapshot(ctx, "orig")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(src, "snapshots", "collections", "orig", d.GetName())

	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		err := runVectorDB(rctx, []string{"--listen", "127.0.0.1:0", "--data-dir", t.TempDir(), "--log-level", "error",
			"--restore-snapshot", file + ":copy"}, pw, testWriter{t})
		pw.Close()
		done <- err
	}()
	line, err := bufio.NewReader(pr).ReadString('\n')
	if err != nil {
		t.Fatalf("read listen line: %v (%v)", err, <-done)
	}
	go io.Copy(io.Discard, pr)
	host, p, err := net.SplitHostPort(strings.TrimSpace(strings.TrimPrefix(line, "vectordb listening on ")))
	if err != nil {
		t.Fatal(err)
	}
	port, _ := strconv.Atoi(p)
	c, err := qdrant.NewClient(&qdrant.Config{Host: host, Port: port, SkipCompatibilityCheck: true})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if n, err := c.Count(ctx, &qdrant.CountPoints{CollectionName: "copy"}); err != nil || n != 2 {
		t.Errorf("Count(copy) = %d, %v; want 2", n, err)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("runVectorDB = %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("runVectorDB did not stop")
	}

	// A missing file: start-up fails and says which.
	err = runVectorDB(ctx, []string{"--listen", "127.0.0.1:0", "--data-dir", t.TempDir(), "--log-level", "error",
		"--restore-snapshot", file + ".missing"}, io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "restore snapshot") {
		t.Errorf("runVectorDB with a missing snapshot = %v, want a restore error", err)
	}
}
