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
)

func TestRunVectorDBServesAndStops(t *testing.T) {
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		err := runVectorDB(ctx, []string{"--listen", "127.0.0.1:0", "--data-dir", dir, "--log-level", "error"}, pw, testWriter{t})
		pw.Close()
		done <- err
	}()
	line, err := bufio.NewReader(pr).ReadString('\n')
	if err != nil {
		t.Fatalf("read listen line: %v", err)
	}
	go io.Copy(io.Discard, pr)
	addr := strings.TrimSpace(strings.TrimPrefix(line, "vectordb listening on "))
	host, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatalf("listen line %q: %v", line, err)
	}
	port, _ := strconv.Atoi(p)
	c, err := qdrant.NewClient(&qdrant.Config{Host: host, Port: port})
	if err != nil {
		t.Fatalf("NewClient: %v", err)
	}
	defer c.Close()
	if _, err := c.HealthCheck(ctx); err != nil {
		t.Fatalf("HealthCheck: %v", err)
	}
	if err := c.CreateCollection(ctx, &qdrant.CreateCollection{CollectionName: "cli",
		VectorsConfig: qdrant.NewVectorsConfig(&qdrant.VectorParams{Size: 2, Distance: qdrant.Distance_Dot})}); err != nil {
		t.Fatalf("CreateCollection: %v", err)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("runVectorDB = %v, want nil after cancel", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("runVectorDB did not stop after cancel")
	}
	snaps, _ := filepath.Glob(filepath.Join(dir, "snapshot-*.snap"))
	if len(snaps) != 1 {
		t.Errorf("snapshots after graceful stop = %v, want one", snaps)
	}
}

func TestRunVectorDBUsage(t *testing.T) {
	tests := []struct {
		name string
		args []string
	}{
		{"no data dir", []string{"--listen", "127.0.0.1:0"}},
		{"bad flag", []string{"--nope"}},
		{"bad log level", []string{"--data-dir", "x", "--log-level", "loud"}},
		{"every interface without a key", []string{"--data-dir", "x", "--listen", "0.0.0.0:6334"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := runVectorDB(context.Background(), tt.args, io.Discard, io.Discard); err != errUsage {
				t.Errorf("runVectorDB(%v) = %v, want errUsage", tt.args, err)
			}
		})
	}
}

// testWriter sends the server's log lines to the test log.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}
