package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tributary-rag/tributary/pkg/events"
	"github.com/tributary-rag/tributary/pkg/kafkatest"
)

// syncBuffer is a bytes.Buffer safe for the logger and the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func envFrom(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func TestRunRejectsBadConfiguration(t *testing.T) {
	base := map[string]string{
		"TRIBUTARY_KAFKA_BROKERS": "localhost:9092",
		"TRIBUTARY_DATA_DIR":      t.TempDir(),
		"TRIBUTARY_API_KEYS":      "key-12345:acme:",
	}
	tests := []struct {
		name string
		env  map[string]string
		args []string
		want string
	}{
		{"no api keys", map[string]string{"TRIBUTARY_API_KEYS": ""}, nil, "TRIBUTARY_API_KEYS"},
		{"no data dir", map[string]string{"TRIBUTARY_DATA_DIR": ""}, nil, "TRIBUTARY_DATA_DIR"},
		{"bad broker", map[string]string{"TRIBUTARY_KAFKA_BROKERS": "nohostport"}, nil, "TRIBUTARY_KAFKA_BROKERS"},
		{"bad size", map[string]string{"TRIBUTARY_MAX_DOCUMENT_BYTES": "-1"}, nil, "TRIBUTARY_MAX_DOCUMENT_BYTES"},
		{"size not a number", map[string]string{"TRIBUTARY_MAX_DOCUMENT_BYTES": "big"}, nil, "TRIBUTARY_MAX_DOCUMENT_BYTES"},
		{"overlap over size", nil, []string{"--chunk-size", "100", "--chunk-overlap", "100"}, "TRIBUTARY_CHUNK_OVERLAP"},
		{"no upload slots", map[string]string{"TRIBUTARY_MAX_CONCURRENT_UPLOADS": "0"}, nil, "TRIBUTARY_MAX_CONCURRENT_UPLOADS"},
		{"bad log level", map[string]string{"TRIBUTARY_LOG_LEVEL": "loud"}, nil, "TRIBUTARY_LOG_LEVEL"},
		{"bad instance id", map[string]string{"TRIBUTARY_INSTANCE_ID": "a/b"}, nil, "TRIBUTARY_INSTANCE_ID"},
		{"instance id flag", nil, []string{"--instance-id", "-x"}, "TRIBUTARY_INSTANCE_ID"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := map[string]string{}
			for k, v := range base {
				env[k] = v
			}
			for k, v := range tt.env {
				env[k] = v
			}
			var stderr syncBuffer
			err := run(context.Background(), tt.args, envFrom(env), &stderr)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("run() = %v, want an error naming %s", err, tt.want)
			}
		})
	}
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// TestRunServesAndDrains starts the whole binary's wiring against the test
// broker, waits for /readyz, ingests a document, and stops it.
func TestRunServesAndDrains(t *testing.T) {
	cluster := kafkatest.Start(t)
	prefix := cluster.Prefix(t)
	addr := freeAddr(t)
	env := map[string]string{
		"TRIBUTARY_KAFKA_BROKERS": strings.Join(cluster.Brokers(), ","),
		"TRIBUTARY_TOPIC_PREFIX":  prefix,
		"TRIBUTARY_HTTP_ADDR":     addr,
		"TRIBUTARY_DATA_DIR":      t.TempDir(),
		"TRIBUTARY_API_KEYS":      "key-12345:acme:",
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stderr syncBuffer
	done := make(chan error, 1)
	go func() { done <- run(ctx, nil, envFrom(env), &stderr) }()

	base := "http://" + addr
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(base + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				break
			}
		}
		select {
		case err := <-done:
			t.Fatalf("run returned early: %v\n%s", err, stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("not ready after 30s\n%s", stderr.String())
		}
		time.Sleep(50 * time.Millisecond)
	}

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
	indexed, err := events.Marshal(events.WithTenant(ctx, "acme"), "tributary/retrieve",
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
	deadline = time.Now().Add(30 * time.Second)
	for info.Status != "indexed" {
		if time.Now().After(deadline) {
			t.Fatalf("GET still reports %+v 30s after document.indexed\n%s", info, stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
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
	}
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

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("run after cancel: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("run did not drain within 30s")
	}
	// Logs are JSON lines naming the service.
	var line map[string]any
	first, _, _ := strings.Cut(stderr.String(), "\n")
	if err := json.Unmarshal([]byte(first), &line); err != nil || line["service"] != "ingest" {
		t.Errorf("first log line %q is not a JSON record of service ingest", first)
	}
	if strings.Contains(stderr.String(), "key-12345") {
		t.Errorf("the API key appears in the logs")
	}
}
