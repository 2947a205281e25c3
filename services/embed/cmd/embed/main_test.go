package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/tributary-rag/tributary/pkg/daemon/daemontest"
	"github.com/tributary-rag/tributary/pkg/events"
	"github.com/tributary-rag/tributary/pkg/kafkatest"
)

func TestRunRejectsBadConfiguration(t *testing.T) {
	base := map[string]string{"TRIBUTARY_KAFKA_BROKERS": "localhost:1"}
	daemontest.RejectsConfig(t, run, base, []daemontest.BadConfig{
		{Name: "bad broker", Env: map[string]string{"TRIBUTARY_KAFKA_BROKERS": "nohostport"}, Want: []string{"TRIBUTARY_KAFKA_BROKERS"}},
		{Name: "k1 zero", Env: map[string]string{"TRIBUTARY_BM25_K1": "0"}, Want: []string{"TRIBUTARY_BM25_K1"}},
		{Name: "b over one", Args: []string{"--bm25-b", "1.5"}, Want: []string{"TRIBUTARY_BM25_B"}},
		{Name: "avgdl not a number", Env: map[string]string{"TRIBUTARY_BM25_AVGDL": "long"}, Want: []string{"TRIBUTARY_BM25_AVGDL"}},
		{Name: "several at once", Env: map[string]string{"TRIBUTARY_BM25_AVGDL": "-1", "TRIBUTARY_TOPIC_PARTITIONS": "0"},
			Want: []string{"TRIBUTARY_BM25_AVGDL", "TRIBUTARY_TOPIC_PARTITIONS"}},
		{Name: "batch timeout zero", Env: map[string]string{"TRIBUTARY_PUBLISH_BATCH_TIMEOUT": "0s"}, Want: []string{"TRIBUTARY_PUBLISH_BATCH_TIMEOUT"}},
		{Name: "stem not a bool", Env: map[string]string{"TRIBUTARY_STEM": "maybe"}, Want: []string{"TRIBUTARY_STEM"}},
		{Name: "bad log level", Env: map[string]string{"TRIBUTARY_LOG_LEVEL": "loud"}, Want: []string{"TRIBUTARY_LOG_LEVEL"}},
	})
}

// TestRunServesAndDrains starts the whole binary's wiring against the test
// broker, waits for /readyz, embeds a question, and stops it.
func TestRunServesAndDrains(t *testing.T) {
	cluster := kafkatest.Start(t)
	prefix := cluster.Prefix(t)
	topics := events.NewTopics(prefix)
	addr := daemontest.FreeAddr(t)
	svc := daemontest.Start(t, run, map[string]string{
		"TRIBUTARY_KAFKA_BROKERS": strings.Join(cluster.Brokers(), ","),
		"TRIBUTARY_TOPIC_PREFIX":  prefix,
		"TRIBUTARY_HTTP_ADDR":     addr,
	})
	svc.WaitReady(t, addr, 30*time.Second)

	msg, err := events.Marshal(events.WithTenant(context.Background(), "acme"), "test", events.QueryApproved{Query: events.Query{
		RequestID: "r1", TenantID: "acme", Question: "leave policy",
	}})
	if err != nil {
		t.Fatal(err)
	}
	msg.Topic = topics.QueriesApproved
	cluster.Produce(t, msg)
	out := cluster.ReadN(t, topics.QueriesEmbedded, 1, 15*time.Second)
	var q events.QueryEmbedded
	if _, err := events.Unmarshal(out[0], &q); err != nil || q.RequestID != "r1" || q.Sparse == nil || len(q.Sparse.Indices) != 2 {
		t.Fatalf("query.embedded = %+v, %v", q, err)
	}

	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !bytes.Contains(metrics, []byte(`tributary_embed_embedded_total{kind="query",outcome="ok"} 1`)) {
		t.Errorf("metrics lack the embedded query:\n%s", metrics)
	}

	svc.Stop(t, 30*time.Second)
	daemontest.CheckLogs(t, svc.Logs.String(), "embed")
}
