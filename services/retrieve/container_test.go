//go:build containers

package retrieve

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/tributary-rag/tributary/pkg/containertest"
	"github.com/tributary-rag/tributary/pkg/events"
	"github.com/tributary-rag/tributary/pkg/eventually"
)

// TestContainerRetrieve runs the retrieve image beside a broker container
// and a vector store container (`tributary vectordb`) on one Docker
// network: it indexes two tenants' documents, asks over Kafka, replaces a
// version and deletes a document, checking the points through the Qdrant
// client from the host.
func TestContainerRetrieve(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	env := containertest.Setup(ctx, t, containertest.BinaryTributary)
	env.AddImage(ctx, t, "retrieve", containertest.Target{
		Package: "./services/retrieve/cmd/retrieve", Dockerfile: "services/retrieve/Dockerfile",
	})
	broker := env.StartBroker(ctx, t)
	vdb := env.StartVectorDB(ctx, t)
	svc := env.StartService(ctx, t, containertest.Service{
		Binary: "retrieve",
		Env: map[string]string{
			"TRIBUTARY_KAFKA_BROKERS":  broker.Addr,
			"TRIBUTARY_QDRANT_ADDR":    vdb.Addr,
			"TRIBUTARY_QDRANT_API_KEY": vdb.APIKey,
			"TRIBUTARY_HTTP_ADDR":      "0.0.0.0:8080",
			"TRIBUTARY_DENSE_SIZE":     "8",
			"TRIBUTARY_LOG_LEVEL":      "debug",
		},
	})
	logs := func() string { return containertest.Logs(ctx, svc.Container) }

	client, err := Dial(vdb.HostAddr, vdb.APIKey, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	index := NewIndex(client, DefaultCollection, 8)

	topics := events.NewTopics("")
	w := &kafka.Writer{
		Addr:         kafka.TCP(broker.Addr),
		Balancer:     &kafka.Hash{},
		RequiredAcks: kafka.RequireAll,
		BatchTimeout: 5 * time.Millisecond,
		Transport:    &kafka.Transport{Dial: broker.Dialer()},
	}
	defer w.Close()
	produce := func(msgs ...kafka.Message) {
		t.Helper()
		if err := w.WriteMessages(ctx, msgs...); err != nil {
			t.Fatalf("produce: %v", err)
		}
	}
	chunkMsgs := func(d doc) []kafka.Message {
		var out []kafka.Message
		for _, c := range d.chunks() {
			out = append(out, message(t, topics.ChunksEmbedded, d.tenant, c))
		}
		return out
	}
	indexed := func(n int) []events.DocumentIndexed {
		t.Helper()
		msgs, err := broker.ReadN(ctx, topics.Documents, n, 60*time.Second)
		if err != nil {
			t.Fatalf("%v\n%s", err, logs())
		}
		var out []events.DocumentIndexed
		for _, m := range msgs {
			var d events.DocumentIndexed
			if _, err := events.Unmarshal(m, &d); err == nil {
				out = append(out, d)
			}
		}
		return out
	}

	acme := doc{tenant: "acme", id: "handbook", version: 1, groups: []string{"staff"}, dense: true,
		texts: []string{"parental leave lasts sixteen weeks", "员工 每月 累积 年假"}}
	globex := doc{tenant: "globex", id: "handbook", version: 1, dense: true,
		texts: []string{"parental leave lasts eight weeks"}}
	produce(append(chunkMsgs(acme), chunkMsgs(globex)...)...)
	if got := indexed(2); len(got) != 2 {
		t.Fatalf("document.indexed events = %+v, want 2", got)
	}
	for _, d := range []doc{acme, globex} {
		if n, err := index.CountVersion(ctx, d.tenant, d.id, 1); err != nil || n != len(d.texts) {
			t.Fatalf("%s: %d points (%v), want %d", d.tenant, n, err, len(d.texts))
		}
	}

	q := query("globex", []string{"staff"}, "parental leave weeks", 5)
	q.Dense = denseOf("parental leave weeks")
	produce(message(t, topics.QueriesEmbedded, "globex", q))
	out, err := broker.ReadN(ctx, topics.QueriesRetrieved, 1, 60*time.Second)
	if err != nil {
		t.Fatalf("%v\n%s", err, logs())
	}
	var r events.QueryRetrieved
	if _, err := events.Unmarshal(out[0], &r); err != nil {
		t.Fatal(err)
	}
	if string(out[0].Key) != q.RequestID || len(r.Results) != 1 ||
		r.Results[0].ChunkID != events.ChunkID("globex", "handbook", 1, 0) || r.Results[0].Text != globex.texts[0] {
		t.Fatalf("query.retrieved for globex = key %q %+v", out[0].Key, r)
	}

	// A new version replaces the old one; a deletion removes the rest.
	v2 := acme
	v2.version, v2.texts = 2, []string{"parental leave lasts twenty weeks"}
	produce(chunkMsgs(v2)...)
	indexed(3)
	if n, _ := index.CountVersion(ctx, "acme", "handbook", 1); n != 0 {
		t.Errorf("after v2, %d points of v1 remain", n)
	}
	produce(message(t, topics.Documents, "acme", events.DocumentDeleted{DocumentID: "handbook", TenantID: "acme", Version: 2}))
	defer func() {
		if t.Failed() { // the wait below fails without the service's logs
			t.Logf("retrieve output:\n%s", logs())
		}
	}()
	eventually.NoError(t, "the deletion to remove version 2", 60*time.Second, func() error {
		n, err := index.CountVersion(ctx, "acme", "handbook", 2)
		if err != nil {
			return err
		}
		if n != 0 {
			return fmt.Errorf("%d points remain", n)
		}
		return nil
	})
	if n, _ := index.CountVersion(ctx, "globex", "handbook", 1); n != 1 {
		t.Errorf("the other tenant's document has %d points after acme's deletion, want 1", n)
	}
}
