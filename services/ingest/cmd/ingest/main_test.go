package main

import (
	"bytes"
	"context"
	"encoding/json"
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
	base := map[string]string{
		"TRIBUTARY_KAFKA_BROKERS": "localhost:9092",
		"TRIBUTARY_DATA_DIR":      t.TempDir(),
		"TRIBUTARY_API_KEYS":      "key-12345:acme:",
	}
	daemontest.RejectsConfig(t, run, base, []daemontest.BadConfig{
		{Name: "no api keys", Env: map[string]string{"TRIBUTARY_API_KEYS": ""}, Want: []string{"TRIBUTARY_API_KEYS"}},
		{Name: "no data dir", Env: map[string]string{"TRIBUTARY_DATA_DIR": ""}, Want: []string{"TRIBUTARY_DATA_DIR"}},
		{Name: "bad broker", Env: map[string]string{"TRIBUTARY_KAFKA_BROKERS": "nohostport"}, Want: []string{"TRIBUTARY_KAFKA_BROKERS"}},
		{Name: "bad size", Env: map[string]string{"TRIBUTARY_MAX_DOCUMENT_BYTES": "-1"}, Want: []string{"TRIBUTARY_MAX_DOCUMENT_BYTES"}},
		{Name: "size not a number", Env: map[string]string{"TRIBUTARY_MAX_DOCUMENT_BYTES": "big"}, Want: []string{"TRIBUTARY_MAX_DOCUMENT_BYTES"}},
		{Name: "overlap over size", Args: []string{"--chunk-size", "100", "--chunk-overlap", "100"}, Want: []string{"TRIBUTARY_CHUNK_OVERLAP"}},
		{Name: "no upload slots", Env: map[string]string{"TRIBUTARY_MAX_CONCURRENT_UPLOADS": "0"}, Want: []string{"TRIBUTARY_MAX_CONCURRENT_UPLOADS"}},
		{Name: "bad log level", Env: map[string]string{"TRIBUTARY_LOG_LEVEL": "loud"}, Want: []string{"TRIBUTARY_LOG_LEVEL"}},
		{Name: "bad instance id", Env: map[string]string{"TRIBUTARY_INSTANCE_ID": "a/b"}, Want: []string{"TRIBUTARY_INSTANCE_ID"}},
		{Name: "negative parse workers", Env: map[string]string{"TRIBUTARY_PARSE_WORKERS": "-1"}, Want: []string{"TRIBUTARY_PARSE_WORKERS"}},
		{Name: "tiny parse memory", Args: []string{"--parse-memory", "1000"}, Want: []string{"TRIBUTARY_PARSE_MEMORY"}},
		{Name: "instance id flag", Args: []string{"--instance-id", "-x"}, Want: []string{"TRIBUTARY_INSTANCE_ID"}},
		{Name: "topic settings and instance id", Env: map[string]string{"TRIBUTARY_TOPIC_PARTITIONS": "0", "TRIBUTARY_INSTANCE_ID": ".x"},
			Want: []string{"TRIBUTARY_INSTANCE_ID (--instance-id): \".x\" must be 1-100 characters of [A-Za-z0-9._-]\nTRIBUTARY_TOPIC_PARTITIONS"}},
	})
}

// TestRunServesAndDrains starts the whole binary's wiring against the test
// broker, waits for /readyz, ingests a document, and stops it.
func TestRunServesAndDrains(t *testing.T) {
	cluster := kafkatest.Start(t)
	prefix := cluster.Prefix(t)
	addr := daemontest.FreeAddr(t)
	svc := daemontest.Start(t, run, map[string]string{
		"TRIBUTARY_KAFKA_BROKERS": strings.Join(cluster.Brokers(), ","),
		"TRIBUTARY_TOPIC_PREFIX":  prefix,
		"TRIBUTARY_HTTP_ADDR":     addr,
		"TRIBUTARY_DATA_DIR":      t.TempDir(),
		"TRIBUTARY_API_KEYS":      "key-12345:acme:",
	})
	svc.WaitReady(t, addr, 30*time.Second)
	base := "http://" + addr

	req, _ := http.NewRequest("POST", base+"/v1/documents", strings.NewReader(`{"document_id":"d","content":"hello world"}`))
	req.Header.Set("Authorization", "Bearer key-12345")
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 202 {
		t.Fatalf("POST = %d %s", resp.StatusCode, body)
	}
	msgs := cluster.ReadN(t, events.NewTopics(prefix).Chunks, 1, 10*time.Second)
	if len(msgs) != 1 {
		t.Fatalf("%d chunk events, want 1", len(msgs))
	}

	// The retrieve service announces the version as indexed; the
	// documents subscriber records it and GET reports it.
	topics := events.NewTopics(prefix)
	indexed, err := events.Marshal(events.WithTenant(context.Background(), "acme"), "tributary/retrieve",
		events.DocumentIndexed{DocumentID: "d", TenantID: "acme", Version: 1, ChunkCount: 1})
	if err != nil {
		t.Fatal(err)
	}
	indexed.Topic = topics.Documents
	cluster.Produce(t, indexed)
	var info struct {
		Version        int    `json:"version"`
		Status         string `json:"status"`
		IndexedVersion int    `json:"indexed_version"`
	}
	svc.WaitFor(t, "status indexed after document.indexed", 30*time.Second, func() bool {
		req, _ := http.NewRequest("GET", base+"/v1/documents/d", nil)
		req.Header.Set("Authorization", "Bearer key-12345")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("GET = %d %s", resp.StatusCode, body)
		}
		if err := json.Unmarshal(body, &info); err != nil {
			t.Fatalf("GET body %q: %v", body, err)
		}
		if info.Status != "active" && info.Status != "indexed" {
			t.Fatalf("GET status %q, want active, then indexed", info.Status)
		}
		return info.Status == "indexed"
	})
	if info.Version != 1 || info.IndexedVersion != 1 {
		t.Fatalf("GET = %+v, want version 1 indexed", info)
	}

	resp, err = http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{
		`tributary_ingest_requests_total{method="ingest",outcome="accepted"} 1`,
		`tributary_ingest_requests_total{method="mark_indexed",outcome="indexed"} 1`,
	} {
		if !bytes.Contains(metrics, []byte(want)) {
			t.Errorf("metrics lack %s:\n%s", want, metrics)
		}
	}

	svc.Stop(t, 30*time.Second)
	daemontest.CheckLogs(t, svc.Logs.String(), "ingest")
	if strings.Contains(svc.Logs.String(), "key-12345") {
		t.Errorf("the API key appears in the logs")
	}
}
