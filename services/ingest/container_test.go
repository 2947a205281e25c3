//go:build containers

package ingest

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/tributary-rag/tributary/pkg/containertest"
	"github.com/tributary-rag/tributary/pkg/events"
)

// TestContainerIngest runs the ingest image beside a broker image on one
// Docker network, posts a document to the container over HTTP and reads
// its chunk events from the broker.
func TestContainerIngest(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	env := containertest.Setup(ctx, t, containertest.BinaryTributary, containertest.BinaryIngest)
	broker := env.StartBroker(ctx, t)
	svc := env.StartService(ctx, t, containertest.Service{
		Binary: containertest.BinaryIngest,
		Env: map[string]string{
			"TRIBUTARY_KAFKA_BROKERS": broker.Addr,
			"TRIBUTARY_API_KEYS":      "container-key-1:acme:",
			"TRIBUTARY_HTTP_ADDR":     "0.0.0.0:8080",
			"TRIBUTARY_DATA_DIR":      "/data",
			"TRIBUTARY_LOG_LEVEL":     "debug",
		},
	})

	doc := "# 员工手册\n\n第一条 本手册适用于全体员工。\n\n## Leave\n\nEmployees accrue leave monthly. Unused leave carries over once."
	body, _ := json.Marshal(map[string]any{
		"document_id": "handbook", "content_type": "text/markdown", "content": doc, "groups": []string{"staff"},
	})
	base := svc.URL
	post := func() map[string]any {
		req, err := http.NewRequestWithContext(ctx, "POST", base+"/v1/documents", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer container-key-1")
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("POST: %v", err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusAccepted {
			t.Fatalf("POST = %d %s\n%s", resp.StatusCode, b, containertest.Logs(ctx, svc.Container))
		}
		var res map[string]any
		if err := json.Unmarshal(b, &res); err != nil {
			t.Fatalf("POST body %q: %v", b, err)
		}
		return res
	}
	if res := post(); res["status"] != ResultAccepted || res["version"] != 1.0 {
		t.Fatalf("POST = %v, want accepted version 1", res)
	}

	topics := events.NewTopics("")
	var err error
	docs, err := broker.ReadN(ctx, topics.Documents, 1, 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	var acc events.DocumentAccepted
	if _, err := events.Unmarshal(docs[0], &acc); err != nil {
		t.Fatalf("documents event: %v", err)
	}
	if acc.DocumentID != "handbook" || acc.TenantID != "acme" || acc.ChunkCount < 2 {
		t.Fatalf("document.accepted = %+v", acc)
	}
	msgs, err := broker.ReadN(ctx, topics.Chunks, acc.ChunkCount, 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != acc.ChunkCount {
		t.Fatalf("%d chunk events, want %d", len(msgs), acc.ChunkCount)
	}
	for i, m := range msgs {
		var c events.ChunkCreated
		env, err := events.Unmarshal(m, &c)
		if err != nil {
			t.Fatalf("chunk event %d: %v", i, err)
		}
		if c.Index != i || string(m.Key) != "handbook" || env.TenantID != "acme" ||
			c.ChunkID != events.ChunkID("acme", "handbook", 1, i) || c.Groups[0] != "staff" || c.Text == "" {
			t.Fatalf("chunk event %d: key %q envelope %+v payload %+v", i, m.Key, env, c)
		}
	}

	// Stop the service (SIGTERM, drain) and start it again: the state in
	// its data directory makes a repeat a no-op.
	timeout := 20 * time.Second
	if err := svc.Container.Stop(ctx, &timeout); err != nil {
		t.Fatalf("stop ingest: %v", err)
	}
	if err := svc.Container.Start(ctx); err != nil {
		t.Fatalf("restart ingest: %v\n%s", err, containertest.Logs(ctx, svc.Container))
	}
	if base, err = svc.Container.PortEndpoint(ctx, "8080/tcp", "http"); err != nil {
		t.Fatal(err)
	}
	if res := post(); res["status"] != ResultUnchanged || res["version"] != 1.0 {
		t.Fatalf("POST after restart = %v, want unchanged version 1", res)
	}
	var again []kafka.Message
	if again, err = broker.ReadAll(ctx, topics.Chunks); err != nil || len(again) != len(msgs) {
		t.Fatalf("after the repeat the chunks topic holds %d events (%v), want %d", len(again), err, len(msgs))
	}
}
