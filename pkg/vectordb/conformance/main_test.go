package conformance

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/qdrant/go-client/qdrant"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/tributary-rag/tributary/pkg/vectordb"
)

// target is the server under test, set up by TestMain.
var target struct {
	host     string
	port     int
	embedded bool
}

func TestMain(m *testing.M) {
	if os.Getenv(crashServerEnv) != "" {
		// Re-executed by the crash test as a server subprocess.
		if err := runCrashServer(); err != nil {
			fmt.Fprintln(os.Stderr, "crash server:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(run(m))
}

func run(m *testing.M) int {
	if addr := os.Getenv("QDRANT_ADDR"); addr != "" {
		host, port, err := splitAddr(addr)
		if err != nil {
			fmt.Fprintln(os.Stderr, "QDRANT_ADDR:", err)
			return 2
		}
		target.host, target.port = host, port
		return m.Run()
	}
	dir, err := os.MkdirTemp("", "vectordb-conformance-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	defer os.RemoveAll(dir)
	store, err := vectordb.Open(dir, vectordb.WithANNThreshold(1000))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- vectordb.Serve(ctx, store, lis, nil, 5*time.Second) }()
	target.host = "127.0.0.1"
	target.port = lis.Addr().(*net.TCPAddr).Port
	target.embedded = true
	code := m.Run()
	cancel()
	if err := <-done; err != nil {
		fmt.Fprintln(os.Stderr, "serve:", err)
		code = 1
	}
	if err := store.Close(); err != nil {
		fmt.Fprintln(os.Stderr, "close store:", err)
		code = 1
	}
	return code
}

func splitAddr(addr string) (string, int, error) {
	host, p, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, err
	}
	port, err := strconv.Atoi(p)
	if err != nil {
		return "", 0, fmt.Errorf("bad port %q", p)
	}
	return host, port, nil
}

// newClient connects the official client to the server under test.
func newClient(t *testing.T) *qdrant.Client {
	t.Helper()
	c, err := qdrant.NewClient(&qdrant.Config{Host: target.host, Port: target.port, SkipCompatibilityCheck: !target.embedded})
	if err != nil {
		t.Fatalf("NewClient: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// newCollection creates a uniquely named collection and deletes it when the
// test ends.
func newCollection(t *testing.T, c *qdrant.Client, req *qdrant.CreateCollection) string {
	t.Helper()
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	req.CollectionName = "conf_" + hex.EncodeToString(b[:])
	ctx := context.Background()
	if err := c.CreateCollection(ctx, req); err != nil {
		t.Fatalf("CreateCollection: %v", err)
	}
	t.Cleanup(func() {
		if err := c.DeleteCollection(context.Background(), req.CollectionName); err != nil {
			t.Errorf("DeleteCollection: %v", err)
		}
	})
	return req.CollectionName
}

func wantCode(t *testing.T, what string, err error, want codes.Code) {
	t.Helper()
	if err == nil {
		t.Errorf("%s: got no error, want %s", what, want)
		return
	}
	var se interface{ GRPCStatus() *status.Status }
	got := codes.Unknown
	if errors.As(err, &se) {
		got = se.GRPCStatus().Code()
	}
	if got != want {
		t.Errorf("%s: code %s (%v), want %s", what, got, err, want)
	}
}

func wait() *bool { b := true; return &b }
