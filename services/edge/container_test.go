//go:build containers

package edge

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/segmentio/kafka-go"

	"github.com/tributary-rag/tributary/pkg/containertest"
	"github.com/tributary-rag/tributary/pkg/events"
)

// TestContainerEdge runs the edge image beside a broker image on one Docker
// network, asks over a WebSocket from the host, reads the question from the
// broker, plays the pipeline's answer into the broker and reads it back
// over the WebSocket.
func TestContainerEdge(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	env := containertest.Setup(ctx, t, containertest.BinaryTributary)
	const binary = "edge"
	env.AddImage(ctx, t, binary, containertest.Target{Package: "./services/edge/cmd/edge", Dockerfile: "services/edge/Dockerfile"})
	broker := env.StartBroker(ctx, t)
	svc := env.StartService(ctx, t, containertest.Service{
		Binary: binary,
		Env: map[string]string{
			"TRIBUTARY_KAFKA_BROKERS": broker.Addr,
			"TRIBUTARY_API_KEYS":      "container-key-1:acme:staff",
			"TRIBUTARY_REPLICA_ID":    "container-1",
			"TRIBUTARY_LOG_LEVEL":     "debug",
		},
	})
	url := "ws" + strings.TrimPrefix(svc.URL, "http") + "/v1/chat"

	if _, resp, err := websocket.DefaultDialer.DialContext(ctx, url, nil); err == nil || resp == nil || resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("dial without a key: %v %v, want 401", err, resp)
	}
	conn, _, err := websocket.DefaultDialer.DialContext(ctx, url, http.Header{"Authorization": {"Bearer container-key-1"}})
	if err != nil {
		t.Fatalf("dial: %v\n%s", err, containertest.Logs(ctx, svc.Container))
	}
	defer conn.Close()
	c := &client{t: t, conn: conn}
	c.ask("q1", "What does the handbook say about leave?")
	acc := c.expect(TypeAccepted, "q1")

	topics := events.NewTopics("")
	msgs, err := broker.ReadN(ctx, topics.QueriesReceived, 1, 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	var q events.QueryReceived
	if _, err := events.Unmarshal(msgs[0], &q); err != nil || q.RequestID != acc.RequestID || q.TenantID != "acme" || string(msgs[0].Key) != acc.RequestID {
		t.Fatalf("queries.received %+v (key %q): %v", q, msgs[0].Key, err)
	}

	// Play the answer into the broker from the host, again until it
	// arrives: /readyz waits for the edge's consumer groups, but the
	// newest offset is resolved on the first fetch. Duplicates are what
	// the edge drops.
	w := &kafka.Writer{Addr: kafka.TCP(broker.HostAddr), Topic: topics.AnswersModerated, Balancer: &kafka.Hash{},
		RequiredAcks: kafka.RequireAll, BatchTimeout: time.Millisecond, Transport: &kafka.Transport{Dial: broker.Dialer()}}
	defer w.Close()
	var out []kafka.Message
	for i, p := range []events.Payload{
		events.AnswerDelta{RequestID: acc.RequestID, TenantID: "acme", Seq: 1, Text: "carries over."},
		events.AnswerDelta{RequestID: acc.RequestID, TenantID: "acme", Seq: 0, Text: "Leave "},
		events.AnswerCompleted{RequestID: acc.RequestID, TenantID: "acme", FinishReason: "stop", Deltas: 2,
			Citations: []events.Citation{{DocumentID: "handbook", ChunkID: "c1", Title: "Handbook", Score: 1}}},
	} {
		m, err := events.Marshal(ctx, "tributary/moderate", p)
		if err != nil {
			t.Fatalf("event %d: %v", i, err)
		}
		out = append(out, m)
	}
	got := make(chan serverMsg, 16)
	go func() {
		defer close(got)
		for {
			m, err := c.read(time.Minute)
			if err != nil {
				return
			}
			got <- m
		}
	}()
	var text string
	for done := false; !done; {
		if err := w.WriteMessages(ctx, out...); err != nil {
			t.Fatalf("produce answers: %v", err)
		}
		timer := time.After(3 * time.Second)
	read:
		for {
			select {
			case m, ok := <-got:
				if !ok {
					t.Fatalf("connection closed\n%s", containertest.Logs(ctx, svc.Container))
				}
				switch m.Type {
				case TypeToken:
					text += m.Text
				case TypeDone:
					if m.FinishReason != FinishStop {
						t.Fatalf("done %+v", m)
					}
					done = true
					break read
				}
			case <-timer:
				break read
			case <-ctx.Done():
				t.Fatalf("no answer\n%s", containertest.Logs(ctx, svc.Container))
			}
		}
	}
	if text != "Leave carries over." {
		t.Fatalf("answer %q", text)
	}
}
