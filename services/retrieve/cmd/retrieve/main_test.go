package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/tributary-rag/tributary/pkg/kafkatest"
	"github.com/tributary-rag/tributary/pkg/vectordb"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestRunRejectsBadConfig(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"dense size", []string{"--dense-size", "0"}, "TRIBUTARY_DENSE_SIZE"},
		{"collection", []string{"--collection", "a/b"}, "TRIBUTARY_COLLECTION"},
		{"top-k above max", []string{"--top-k", "60", "--max-top-k", "50"}, "TRIBUTARY_TOP_K"},
		{"max-top-k", []string{"--max-top-k", "0"}, "TRIBUTARY_MAX_TOP_K"},
		{"partitions", []string{"--topic-partitions", "0"}, "TRIBUTARY_TOPIC_PARTITIONS"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stderr bytes.Buffer
			err := run(t.Context(), tt.args, env(nil), &stderr)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("run(%v) = %v, want an error naming %s", tt.args, err, tt.want)
			}
		})
	}
}

// TestRunServes starts the service on a kfake broker and the embedded
// vector store and waits until /readyz reports ready, then stops it.
func TestRunServes(t *testing.T) {
	cluster := kafkatest.Start(t)
	store, err := vectordb.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	vctx, vstop := context.WithCancel(context.Background())
	vdone := make(chan error, 1)
	go func() { vdone <- vectordb.Serve(vctx, store, lis, nil, time.Second) }()
	t.Cleanup(func() {
		vstop()
		if err := <-vdone; err != nil {
			t.Errorf("vectordb: %v", err)
		}
		if err := store.Close(); err != nil {
			t.Errorf("close store: %v", err)
		}
	})
	hl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	httpAddr := hl.Addr().String()
	hl.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, nil, env(map[string]string{
			"TRIBUTARY_KAFKA_BROKERS": strings.Join(cluster.Brokers(), ","),
			"TRIBUTARY_QDRANT_ADDR":   lis.Addr().String(),
			"TRIBUTARY_HTTP_ADDR":     httpAddr,
			"TRIBUTARY_TOPIC_PREFIX":  cluster.Prefix(t),
			"TRIBUTARY_DENSE_SIZE":    "16",
		}), io.Discard)
	}()
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get(fmt.Sprintf("http://%s/readyz", httpAddr))
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			cancel()
			<-done
			t.Fatalf("not ready after 60 s: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("run: %v", err)
	}
}
