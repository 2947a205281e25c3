package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tributary-rag/tributary/pkg/events"
	"github.com/tributary-rag/tributary/pkg/kafkatest"
	"github.com/tributary-rag/tributary/services/generate"
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
		want string
	}{
		{"unknown backend", map[string]string{"TRIBUTARY_GENERATE_BACKEND": "gpt"}, nil, "TRIBUTARY_GENERATE_BACKEND"},
		{"openai without url", nil, []string{"--generate-backend", "openai"}, "needs an inference url"},
		{"engine without model", map[string]string{"TRIBUTARY_GENERATE_BACKEND": "engine"}, nil, "needs a model path"},
		{"bad url", map[string]string{"TRIBUTARY_INFERENCE_URL": "localhost:8080"}, nil, "TRIBUTARY_INFERENCE_URL"},
		{"bad temperature", nil, []string{"--temperature", "3"}, "TRIBUTARY_TEMPERATURE"},
		{"zero max tokens", map[string]string{"TRIBUTARY_MAX_TOKENS": "0"}, nil, "TRIBUTARY_MAX_TOKENS"},
		{"bad timeout", map[string]string{"TRIBUTARY_GENERATE_TIMEOUT": "soon"}, nil, "TRIBUTARY_GENERATE_TIMEOUT"},
		{"bad broker", map[string]string{"TRIBUTARY_KAFKA_BROKERS": "nohostport"}, nil, "TRIBUTARY_KAFKA_BROKERS"},
		{"missing model file", map[string]string{"TRIBUTARY_MODEL": filepath.Join(t.TempDir(), "none.gguf"), "TRIBUTARY_PROVISION_TOPICS": "false"}, nil, "none.gguf"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stderr syncBuffer
			err := run(context.Background(), tt.args, envFrom(tt.env), &stderr)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("run = %v, want an error naming %q", err, tt.want)
			}
		})
	}
}

// TestRunAnswersWithEngine wires the whole service as main does, with the
// native engine on the committed toy model, and answers one query over a
// real Kafka-protocol broker.
func TestRunAnswersWithEngine(t *testing.T) {
	cluster := kafkatest.Start(t)
	prefix := cluster.Prefix(t)
	topics := events.NewTopics(prefix)
	env := map[string]string{
		"TRIBUTARY_KAFKA_BROKERS": strings.Join(cluster.Brokers(), ","),
		"TRIBUTARY_TOPIC_PREFIX":  prefix,
		"TRIBUTARY_HTTP_ADDR":     "127.0.0.1:0",
		"TRIBUTARY_MODEL":         filepath.Join("..", "..", "..", "..", "models", "stories260K.gguf"),
		"TRIBUTARY_MAX_TOKENS":    "12",
		"TRIBUTARY_LOG_LEVEL":     "debug",
	}
	ctx, cancel := context.WithCancel(context.Background())
	var stderr syncBuffer
	done := make(chan error, 1)
	go func() { done <- run(ctx, nil, envFrom(env), &stderr) }()
	defer func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("run: %v", err)
			}
		case <-time.After(60 * time.Second):
			t.Errorf("run did not stop")
		}
		if t.Failed() {
			t.Logf("logs:\n%s", stderr.String())
		}
	}()

	// Wait until the service has created its topics.
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(stderr.String(), "generate starting") {
		if time.Now().After(deadline) {
			t.Fatalf("service did not start:\n%s", stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	q := events.QueryRetrieved{
		Query: events.Query{RequestID: "req-1", TenantID: "acme", Question: "Who is Lily?"},
		Results: []events.RetrievedChunk{{
			ChunkID: events.ChunkID("acme", "story", 1, 0), DocumentID: "story", Version: 1, Score: 1,
			Title: "Story", Text: "Lily is a little girl who loves to play in the park.",
		}},
	}
	msg, err := events.Marshal(events.WithCorrelationID(events.WithTenant(context.Background(), "acme"), "corr-1"), "test", q)
	if err != nil {
		t.Fatal(err)
	}
	msg.Topic = topics.QueriesRetrieved
	cluster.Produce(t, msg)

	var completed generate.Completed
	deadline = time.Now().Add(60 * time.Second)
	for completed.RequestID == "" {
		if time.Now().After(deadline) {
			t.Fatalf("no answer.completed")
		}
		for _, m := range cluster.ReadAll(t, topics.AnswersGenerated) {
			if kafkatest.Header(m, events.HeaderType) == events.TypeAnswerCompleted {
				if err := json.Unmarshal(m.Value, &completed); err != nil {
					t.Fatal(err)
				}
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	out := cluster.ReadAll(t, topics.AnswersGenerated)
	if completed.Mode != generate.ModeEngine || completed.FinishReason != "length" || completed.Deltas == 0 ||
		completed.Deltas != len(out)-1 || completed.Usage == nil || completed.Usage.CompletionTokens != 12 || completed.Model == "" {
		t.Errorf("completed = %+v with %d events on the topic", completed, len(out))
	}
	if _, err := os.Stat(env["TRIBUTARY_MODEL"]); err != nil {
		t.Errorf("model: %v", err)
	}
}
