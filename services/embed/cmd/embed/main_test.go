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
	tests := []struct {
		name string
		env  map[string]string
		args []string
		want []string
	}{
		{"bad broker", map[string]string{"TRIBUTARY_KAFKA_BROKERS": "nohostport"}, nil, []string{"TRIBUTARY_KAFKA_BROKERS"}},
		{"k1 zero", map[string]string{"TRIBUTARY_BM25_K1": "0"}, nil, []string{"TRIBUTARY_BM25_K1"}},
		{"b over one", nil, []string{"--bm25-b", "1.5"}, []string{"TRIBUTARY_BM25_B"}},
		{"avgdl not a number", map[string]string{"TRIBUTARY_BM25_AVGDL": "long"}, nil, []string{"TRIBUTARY_BM25_AVGDL"}},
		{"several at once", map[string]string{"TRIBUTARY_BM25_AVGDL": "-1", "TRIBUTARY_TOPIC_PARTITIONS": "0"}, nil,
			[]string{"TRIBUTARY_BM25_AVGDL", "TRIBUTARY_TOPIC_PARTITIONS"}},
		{"batch timeout zero", map[string]string{"TRIBUTARY_PUBLISH_BATCH_TIMEOUT": "0s"}, nil, []string{"TRIBUTARY_PUBLISH_BATCH_TIMEOUT"}},
		{"stem not a bool", map[string]string{"TRIBUTARY_STEM": "maybe"}, nil, []string{"TRIBUTARY_STEM"}},
		{"bad log level", map[string]string{"TRIBUTARY_LOG_LEVEL": "loud"}, nil, []string{"TRIBUTARY_LOG_LEVEL"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := map[string]string{"TRIBUTARY_KAFKA_BROKERS": "localhost:1"}
			for k, v := range tt.env {
				env[k] = v
			}
			var stderr syncBuffer
			err := run(context.Background(), tt.args, envFrom(env), &stderr)
			for _, w := range tt.want {
				if err == nil || !strings.Contains(err.Error(), w) {
					t.Fatalf("run() = %v, want an error naming %s", err, w)
				}
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
// broker, waits for /readyz, embeds a question, and stops it.
func TestRunServesAndDrains(t *testing.T) {
	cluster := kafkatest.Start(t)
	prefix := cluster.Prefix(t)
	topics := events.NewTopics(prefix)
	addr := freeAddr(t)
	env := map[string]string{
		"TRIBUTARY_KAFKA_BROKERS": strings.Join(cluster.Brokers(), ","),
		"TRIBUTARY_TOPIC_PREFIX":  prefix,
		"TRIBUTARY_HTTP_ADDR":     addr,
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

	msg, err := events.Marshal(events.WithTenant(ctx, "acme"), "test", events.QueryApproved{Query: events.Query{
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

	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !bytes.Contains(metrics, []byte(`tributary_embed_embedded_total{kind="query",outcome="ok"} 1`)) {
		t.Errorf("metrics lack the embedded query:\n%s", metrics)
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
	var line map[string]any
	first, _, _ := strings.Cut(stderr.String(), "\n")
	if err := json.Unmarshal([]byte(first), &line); err != nil || line["service"] != "embed" {
		t.Errorf("first log line %q is not a JSON record of service embed", first)
	}
}
