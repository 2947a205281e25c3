//go:build containers

package generate

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/tributary-rag/tributary/pkg/containertest"
	"github.com/tributary-rag/tributary/pkg/events"
	"github.com/tributary-rag/tributary/pkg/tracecontext"
)

// TestContainerGenerate runs the generate image (extractive backend, no
// model) beside a broker image on one Docker network, publishes a
// retrieved query with two chunks from the host, and reads the streamed
// answer back: gapless answer.delta events and an answer.completed event
// that cites the chunk holding the fact asked for.
func TestContainerGenerate(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	env := containertest.Setup(ctx, t, containertest.BinaryTributary)
	env.AddImage(ctx, t, "generate", containertest.Target{
		Package:    "./services/generate/cmd/generate",
		Dockerfile: "services/generate/Dockerfile",
	})
	broker := env.StartBroker(ctx, t)
	svc := env.StartService(ctx, t, containertest.Service{
		Binary: "generate",
		Env: map[string]string{
			"TRIBUTARY_KAFKA_BROKERS":    broker.Addr,
			"TRIBUTARY_GENERATE_BACKEND": "extractive",
		},
	})

	topics := events.NewTopics("")
	shipping := chunk(0, "Shipping", "Orders ship within two business days.", 3)
	refund := chunk(1, "Returns", "Our store opened in 2004. Customers may request a refund within 30 days of delivery.", 2)
	q := events.QueryRetrieved{
		Query:   events.Query{RequestID: "req-c1", TenantID: "acme", Question: "How many days to request a refund?"},
		Results: []events.RetrievedChunk{shipping, refund},
	}
	trace := tracecontext.New()
	qr := query{q: q, correlation: "corr-c1", trace: trace}
	msg := qr.message(t, topics.QueriesRetrieved)

	// The answer the extractive backend gives, computed here with the same
	// code, fixes how many events to wait for.
	p := BuildPrompt(q.Question, q.Results, PromptOptions{})
	wantText := extract(p, 3, 0.5)
	if !strings.Contains(wantText, "refund within 30 days") {
		t.Fatalf("extractive answer %q lacks the fact; the test's fixture is wrong", wantText)
	}
	want := len(StreamPieces(wantText)) + 1

	w := &kafka.Writer{
		Addr:         kafka.TCP(broker.Addr),
		Balancer:     &kafka.Hash{},
		RequiredAcks: kafka.RequireAll,
		BatchTimeout: 5 * time.Millisecond,
		Transport:    &kafka.Transport{Dial: broker.Dialer()},
	}
	if err := w.WriteMessages(ctx, msg); err != nil {
		t.Fatalf("produce: %v", err)
	}
	if err := w.Close(); err != nil {
		t.Fatalf("close writer: %v", err)
	}

	out, err := broker.ReadN(ctx, topics.AnswersGenerated, want, 60*time.Second)
	if err != nil {
		t.Fatalf("%v\n%s", err, containertest.Logs(ctx, svc.Container))
	}
	msgs := answerOf(out, q.RequestID)
	if len(msgs) != want {
		t.Fatalf("answers topic has %d events for %s, want %d", len(msgs), q.RequestID, want)
	}
	var text strings.Builder
	for i, m := range msgs {
		envl, payload, err := events.Decode(m)
		if err != nil {
			t.Fatalf("event %d: %v", i, err)
		}
		if envl.TenantID != "acme" || envl.CorrelationID != "corr-c1" || envl.Source != EventSource {
			t.Errorf("event %d envelope %+v", i, envl)
		}
		last := i == len(msgs)-1
		switch pl := payload.(type) {
		case *events.AnswerDelta:
			if last {
				t.Fatalf("last event is a delta")
			}
			if pl.Seq != i {
				t.Errorf("delta %d has seq %d (gap or reorder)", i, pl.Seq)
			}
			text.WriteString(pl.Text)
		case *events.AnswerCompleted:
			if !last {
				t.Fatalf("completed event at %d of %d", i, len(msgs))
			}
			var c Completed
			if err := json.Unmarshal(m.Value, &c); err != nil {
				t.Fatalf("completed: %v", err)
			}
			if c.Text != text.String() || c.Text != wantText || c.Deltas != i || c.FinishReason != FinishStop ||
				c.Mode != ModeExtractive || c.PromptVersion != PromptVersion {
				t.Errorf("completed = %+v (deltas streamed %d, text %q, want %q)", c, i, text.String(), wantText)
			}
			if len(c.Citations) != 1 || c.Citations[0].ChunkID != refund.ChunkID {
				t.Errorf("citations %+v, want only %s", c.Citations, refund.ChunkID)
			}
		default:
			t.Errorf("event %d: unexpected %T", i, pl)
		}
	}
}
