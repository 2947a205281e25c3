package main

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/tributary-rag/tributary/pkg/daemon/daemontest"
	"github.com/tributary-rag/tributary/pkg/kafkatest"
	"github.com/tributary-rag/tributary/pkg/vectordb"
)

func TestRunRejectsBadConfig(t *testing.T) {
	daemontest.RejectsConfig(t, run, nil, []daemontest.BadConfig{
		{Name: "dense size", Args: []string{"--dense-size", "0"}, Want: []string{"TRIBUTARY_DENSE_SIZE"}},
		{Name: "collection", Args: []string{"--collection", "a/b"}, Want: []string{"TRIBUTARY_COLLECTION"}},
		{Name: "top-k above max", Args: []string{"--top-k", "60", "--max-top-k", "50"}, Want: []string{"TRIBUTARY_TOP_K"}},
		{Name: "max-top-k", Args: []string{"--max-top-k", "0"}, Want: []string{"TRIBUTARY_MAX_TOP_K"}},
		{Name: "partitions", Args: []string{"--topic-partitions", "0"}, Want: []string{"TRIBUTARY_TOPIC_PARTITIONS"}},
	})
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
	httpAddr := daemontest.FreeAddr(t)
	svc := daemontest.Start(t, run, map[string]string{
		"TRIBUTARY_KAFKA_BROKERS": strings.Join(cluster.Brokers(), ","),
		"TRIBUTARY_QDRANT_ADDR":   lis.Addr().String(),
		"TRIBUTARY_HTTP_ADDR":     httpAddr,
		"TRIBUTARY_TOPIC_PREFIX":  cluster.Prefix(t),
		"TRIBUTARY_DENSE_SIZE":    "16",
	})
	svc.WaitReady(t, httpAddr, 60*time.Second)
	svc.Stop(t, 30*time.Second)
	daemontest.CheckLogs(t, svc.Logs.String(), "retrieve")
}
