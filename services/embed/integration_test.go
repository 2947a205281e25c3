package embed

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"log/slog"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/tributary-rag/tributary/pkg/events"
	"github.com/tributary-rag/tributary/pkg/kafkatest"
	"github.com/tributary-rag/tributary/pkg/kafkatransport"
	"github.com/tributary-rag/tributary/pkg/tracecontext"
)

// cluster is the Kafka cluster shared by the package's tests: in-process
// kfake, or a real cluster named by TRIBUTARY_TEST_KAFKA_BROKERS.
var cluster *kafkatest.Cluster

func TestMain(m *testing.M) { os.Exit(kafkatest.Main(m, &cluster)) }

// runService wires the service as cmd/embed does (sparse embedder,
// middlewares, endpoints, a real publisher, both subscribers in the embed
// group) on the topics of a fresh prefix, and runs it until the test ends.
func runService(t *testing.T) events.Topics {
	t.Helper()
	topics := cluster.CreatePrefixTopics(t, cluster.Prefix(t), 3)
	pub := kafkatransport.NewPublisher(cluster.Brokers(), kafkatransport.PublisherSource(EventSource))
	var svc Service = NewService(newSparse(t))
	svc = LoggingMiddleware(slog.New(slog.DiscardHandler))(svc)
	eps := MakeEndpoints(svc)
	v, err := events.NewValidator()
	if err != nil {
		t.Fatal(err)
	}
	opts := []kafkatransport.SubscriberOption{
		kafkatransport.SubscriberRetry(3, 10*time.Millisecond, 50*time.Millisecond),
		kafkatransport.SubscriberReaderConfig(func(c *kafka.ReaderConfig) { c.StartOffset = kafka.FirstOffset }),
	}
	subs := []*kafkatransport.Subscriber{
		NewChunkSubscriber(cluster.Brokers(), topics, pub, eps, v, opts...),
		NewQuerySubscriber(cluster.Brokers(), topics, pub, eps, v, opts...),
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, len(subs))
	for _, s := range subs {
		go func() { done <- s.Run(ctx) }()
	}
	t.Cleanup(func() {
		cancel()
		for range subs {
			if err := <-done; err != nil {
				t.Errorf("subscriber Run: %v", err)
			}
		}
		if err := pub.Close(); err != nil {
			t.Errorf("close publisher: %v", err)
		}
	})
	return topics
}

func hashOf(text string) string {
	h := sha256.Sum256([]byte(text))
	return "sha256:" + hex.EncodeToString(h[:])
}

// inputEvent builds an input message as an upstream service would: with a
// trace and a correlation id.
func inputEvent(t *testing.T, topic, tenant string, p events.Payload) (kafka.Message, tracecontext.TraceParent) {
	t.Helper()
	tp := tracecontext.New()
	ctx := tracecontext.WithContext(events.WithCorrelationID(events.WithTenant(context.Background(), tenant), "corr-"+p.PartitionKey()), tp)
	msg, err := events.Marshal(ctx, "test/upstream", p)
	if err != nil {
		t.Fatal(err)
	}
	msg.Topic = topic
	return msg, tp
}

// checkOutput decodes an output event, checks its envelope against the
// input's and validates the payload against its schema.
func checkOutput[P events.Payload](t *testing.T, v *events.Validator, m, in kafka.Message, typ, wantID string) P {
	t.Helper()
	env, p, err := events.Decode(m)
	if err != nil {
		t.Fatalf("output: %v", err)
	}
	inEnv, err := events.ParseHeaders(in.Headers)
	if err != nil {
		t.Fatal(err)
	}
	if env.Type != typ || env.Source != EventSource || env.ID != wantID {
		t.Errorf("output envelope = %+v, want type %s, source %s, id %s", env, typ, EventSource, wantID)
	}
	if env.TenantID != inEnv.TenantID || env.CorrelationID != inEnv.CorrelationID {
		t.Errorf("output tenant %q correlation %q, want %q %q", env.TenantID, env.CorrelationID, inEnv.TenantID, inEnv.CorrelationID)
	}
	outTP, err1 := tracecontext.Parse(env.TraceParent)
	inTP, err2 := tracecontext.Parse(inEnv.TraceParent)
	if err1 != nil || err2 != nil || outTP.TraceID != inTP.TraceID || outTP.String() == inTP.String() {
		t.Errorf("output traceparent %q, want a child of %q", env.TraceParent, inEnv.TraceParent)
	}
	if string(m.Key) != string(in.Key) || string(m.Key) != p.PartitionKey() {
		t.Errorf("output key %q, want the input's %q", m.Key, in.Key)
	}
	if err := v.Validate(typ, m.Value); err != nil {
		t.Errorf("output fails its schema: %v\n%s", err, m.Value)
	}
	return *any(p).(*P)
}

func TestKafkaEmbedsChunksAndQueries(t *testing.T) {
	topics := runService(t)
	v, err := events.NewValidator()
	if err != nil {
		t.Fatal(err)
	}
	chunks := []events.ChunkCreated{
		{
			ChunkID: events.ChunkID("acme", "handbook", 1, 0), DocumentID: "handbook", TenantID: "acme", Version: 1,
			Index: 0, ChunkCount: 2, Text: "Employees accrue 1.5 days of paid leave per month.", Start: 0, End: 50,
			HeadingPath: []string{"Leave"}, ContentHash: hashOf("Employees accrue 1.5 days of paid leave per month."), Title: "Handbook", Source: "hr/handbook.md",
			ContentType: "text/markdown", Groups: []string{"staff"}, Metadata: map[string]string{"lang": "en"},
		},
		{
			ChunkID: events.ChunkID("acme", "handbook", 1, 1), DocumentID: "handbook", TenantID: "acme", Version: 1,
			Index: 1, ChunkCount: 2, Text: "Unused leave carries over once.", Start: 50, End: 81, Page: 2, PageEnd: 3,
			ContentHash: hashOf("Unused leave carries over once."), Title: "Handbook", ContentType: "text/markdown", Groups: []string{"staff"},
		},
		{
			ChunkID: events.ChunkID("globex", "手册", 3, 0), DocumentID: "手册", TenantID: "globex", Version: 3,
			Index: 0, ChunkCount: 1, Text: "员工每月累积1.5天带薪年假。", End: 14, ContentHash: hashOf("员工每月累积1.5天带薪年假。"), Title: "员工手册",
		},
	}
	var inputs []kafka.Message
	for _, c := range chunks {
		m, _ := inputEvent(t, topics.Chunks, c.TenantID, c)
		inputs = append(inputs, m)
	}
	query := events.QueryApproved{Query: events.Query{
		RequestID: "req-1", TenantID: "globex", Groups: []string{"staff"}, Question: "年假有多少天？", TopK: 5, Principal: "key-0011aabb",
	}, Policy: "default@1"}
	qmsg, _ := inputEvent(t, topics.QueriesApproved, "globex", query)

	// Poison: not an event; a payload claiming another tenant than its
	// header; a chunk without an id.
	junk := kafka.Message{Topic: topics.Chunks, Key: []byte("junk"), Value: []byte("\x00\xffnot json")}
	wrongTenant, _ := inputEvent(t, topics.Chunks, "acme", events.ChunkCreated{ChunkID: "x", DocumentID: "d", TenantID: "acme", Text: "x"})
	wrongTenant.Value = []byte(strings.Replace(string(wrongTenant.Value), `"tenant_id":"acme"`, `"tenant_id":"globex"`, 1))
	noID, _ := inputEvent(t, topics.Chunks, "acme", events.ChunkCreated{DocumentID: "d", TenantID: "acme", Text: "x"})
	badHash, _ := inputEvent(t, topics.Chunks, "acme", events.ChunkCreated{ChunkID: "y", DocumentID: "d", TenantID: "acme", Text: "x", ContentHash: "md5:1"})
	badQuery, _ := inputEvent(t, topics.QueriesApproved, "acme", events.QueryApproved{Query: events.Query{TenantID: "acme", Question: "no request id"}})

	// The first chunk is delivered twice, as after a crash before commit.
	replay := inputs[0]
	cluster.Produce(t, append(inputs, qmsg, junk, wrongTenant, noID, badHash, badQuery, replay)...)

	out := cluster.ReadN(t, topics.ChunksEmbedded, len(chunks)+1, 20*time.Second)
	if len(out) != len(chunks)+1 {
		t.Fatalf("%d chunk.embedded events, want %d", len(out), len(chunks)+1)
	}
	byID := map[string]kafka.Message{}
	for _, m := range out {
		id := kafkatest.Header(m, events.HeaderID)
		if prev, ok := byID[id]; ok && string(prev.Value) != string(m.Value) {
			t.Errorf("replayed chunk gave event %s twice with different payloads:\n%s\n%s", id, prev.Value, m.Value)
		}
		byID[id] = m
	}
	if len(byID) != len(chunks) {
		t.Errorf("%d distinct event ids for %d chunks and a replay, want %d", len(byID), len(chunks), len(chunks))
	}
	for i, c := range chunks {
		id := ChunkEventID(c.ChunkID, SparseModel)
		m, ok := byID[id]
		if !ok {
			t.Fatalf("no chunk.embedded event with id %s for chunk %d", id, i)
		}
		got := checkOutput[events.ChunkEmbedded](t, v, m, inputs[i], events.TypeChunkEmbedded, id)
		if !reflect.DeepEqual(got.ChunkCreated, c) {
			t.Errorf("chunk %d fields not carried over:\ngot  %+v\nwant %+v", i, got.ChunkCreated, c)
		}
		want := newSparse(t).Document(IndexText(c))
		if got.Model != SparseModel || got.Dense != nil || got.Sparse == nil || len(got.Sparse.Indices) == 0 ||
			!reflect.DeepEqual(*got.Sparse, *want) {
			t.Errorf("chunk %d embedding = model %q dense %v sparse %+v, want %+v", i, got.Model, got.Dense, got.Sparse, want)
		}
	}

	qout := cluster.ReadN(t, topics.QueriesEmbedded, 1, 20*time.Second)
	if len(qout) != 1 {
		t.Fatalf("%d query.embedded events, want 1", len(qout))
	}
	q := checkOutput[events.QueryEmbedded](t, v, qout[0], qmsg, events.TypeQueryEmbedded, QueryEventID("globex", "req-1", SparseModel))
	// 年假, 假有, 有多, 多少, 少天, each with weight 1.
	if !reflect.DeepEqual(q.Query, query.Query) || q.Model != SparseModel || q.Dense != nil || q.Sparse == nil ||
		!reflect.DeepEqual(*q.Sparse, *newSparse(t).Query(query.Question)) || len(q.Sparse.Indices) != 5 {
		t.Errorf("query.embedded = %+v, want the query with 5 sparse terms", q)
	}

	checkDLQ(t, topics.Chunks, 4)
	checkDLQ(t, topics.QueriesApproved, 1)
}

func checkDLQ(t *testing.T, topic string, n int) {
	t.Helper()
	dead := cluster.ReadN(t, events.DLQ(topic), n, 20*time.Second)
	if len(dead) != n {
		t.Fatalf("%d dead letters on %s, want %d", len(dead), events.DLQ(topic), n)
	}
	for i, m := range dead {
		if r := kafkatest.Header(m, kafkatransport.DLQHeaderReason); r != kafkatransport.ReasonPermanent {
			t.Errorf("dead letter %d reason %q, want %q", i, r, kafkatransport.ReasonPermanent)
		}
		if kafkatest.Header(m, kafkatransport.DLQHeaderTopic) != topic || kafkatest.Header(m, kafkatransport.DLQHeaderGroup) != KafkaGroup ||
			kafkatest.Header(m, kafkatransport.DLQHeaderAttempts) != "1" || kafkatest.Header(m, kafkatransport.DLQHeaderError) == "" {
			t.Errorf("dead letter %d headers %v", i, m.Headers)
		}
	}
}
