package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tributary-rag/tributary/pkg/daemon/daemontest"
	"github.com/tributary-rag/tributary/pkg/events"
	"github.com/tributary-rag/tributary/pkg/eventually"
	"github.com/tributary-rag/tributary/pkg/kafkatest"
	"github.com/tributary-rag/tributary/services/generate"
)

func TestRunRejectsBadConfiguration(t *testing.T) {
	daemontest.RejectsConfig(t, run, nil, []daemontest.BadConfig{
		{Name: "unknown backend", Env: map[string]string{"TRIBUTARY_GENERATE_BACKEND": "gpt"}, Want: []string{"TRIBUTARY_GENERATE_BACKEND"}},
		{Name: "openai without url", Args: []string{"--generate-backend", "openai"}, Want: []string{"needs an inference url"}},
		{Name: "engine without model", Env: map[string]string{"TRIBUTARY_GENERATE_BACKEND": "engine"}, Want: []string{"needs a model path"}},
		{Name: "bad url", Env: map[string]string{"TRIBUTARY_INFERENCE_URL": "localhost:8080"}, Want: []string{"TRIBUTARY_INFERENCE_URL"}},
		{Name: "bad temperature", Args: []string{"--temperature", "3"}, Want: []string{"TRIBUTARY_TEMPERATURE"}},
		{Name: "zero max tokens", Env: map[string]string{"TRIBUTARY_MAX_TOKENS": "0"}, Want: []string{"TRIBUTARY_MAX_TOKENS"}},
		{Name: "bad timeout", Env: map[string]string{"TRIBUTARY_GENERATE_TIMEOUT": "soon"}, Want: []string{"TRIBUTARY_GENERATE_TIMEOUT"}},
		{Name: "bad broker", Env: map[string]string{"TRIBUTARY_KAFKA_BROKERS": "nohostport"}, Want: []string{"TRIBUTARY_KAFKA_BROKERS"}},
		{Name: "no answer lanes", Env: map[string]string{"TRIBUTARY_ANSWERS_PER_PARTITION": "0"}, Want: []string{"TRIBUTARY_ANSWERS_PER_PARTITION"}},
		{Name: "missing model file", Env: map[string]string{"TRIBUTARY_MODEL": filepath.Join(t.TempDir(), "none.gguf"), "TRIBUTARY_PROVISION_TOPICS": "false"},
			Want: []string{"none.gguf"}},
	})
}

// TestRunAnswersWithEngine wires the whole service as main does, with the
// native engine on the committed toy model, and answers one query over a
// real Kafka-protocol broker.
func TestRunAnswersWithEngine(t *testing.T) {
	cluster := kafkatest.Start(t)
	prefix := cluster.Prefix(t)
	topics := events.NewTopics(prefix)
	model := filepath.Join("..", "..", "..", "..", "models", "stories260K.gguf")
	svc := daemontest.Start(t, run, map[string]string{
		"TRIBUTARY_KAFKA_BROKERS": strings.Join(cluster.Brokers(), ","),
		"TRIBUTARY_TOPIC_PREFIX":  prefix,
		"TRIBUTARY_HTTP_ADDR":     "127.0.0.1:0",
		"TRIBUTARY_MODEL":         model,
		"TRIBUTARY_MAX_TOKENS":    "12",
		"TRIBUTARY_LOG_LEVEL":     "debug",
	})
	defer func() {
		svc.Stop(t, 60*time.Second)
		daemontest.CheckLogs(t, svc.Logs.String(), "generate")
	}()

	// Wait until the service has created its topics.
	svc.WaitFor(t, "the start log line", 30*time.Second, func() bool {
		return strings.Contains(svc.Logs.String(), "generate starting")
	})
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
	eventually.True(t, "answer.completed", 60*time.Second, func() bool {
		for _, m := range cluster.ReadAll(t, topics.AnswersGenerated) {
			if kafkatest.Header(m, events.HeaderType) == events.TypeAnswerCompleted {
				if err := json.Unmarshal(m.Value, &completed); err != nil {
					t.Fatal(err)
				}
			}
		}
		return completed.RequestID != ""
	})
	out := cluster.ReadAll(t, topics.AnswersGenerated)
	if completed.Mode != generate.ModeEngine || completed.FinishReason != "length" || completed.Deltas == 0 ||
		completed.Deltas != len(out)-1 || completed.Usage == nil || completed.Usage.CompletionTokens != 12 || completed.Model == "" {
		t.Errorf("completed = %+v with %d events on the topic", completed, len(out))
	}
	if _, err := os.Stat(model); err != nil {
		t.Errorf("model: %v", err)
	}
}
