package retrieve

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"net"
	"os"
	"strings"
	"testing"
	"time"
	"unicode"

	"github.com/segmentio/kafka-go"

	"github.com/tributary-rag/tributary/pkg/events"
	"github.com/tributary-rag/tributary/pkg/eventually"
	"github.com/tributary-rag/tributary/pkg/kafkatest"
	"github.com/tributary-rag/tributary/pkg/kafkatransport"
	"github.com/tributary-rag/tributary/pkg/vectordb"
)

// The package's tests share one Kafka cluster (kfake, or
// TRIBUTARY_TEST_KAFKA_BROKERS) and one vector store: the embedded store
// served in process on a random port, or the Qdrant at QDRANT_ADDR. Each
// test uses its own topic prefix and collection.
var (
	cluster    *kafkatest.Cluster
	qdrantAddr string
)

func TestMain(m *testing.M) { os.Exit(testMain(m)) }

func testMain(m *testing.M) int {
	c, err := kafkatest.New()
	if err != nil {
		fmt.Fprintln(os.Stderr, "kafkatest:", err)
		return 1
	}
	cluster = c
	defer c.Close()
	if addr := os.Getenv("QDRANT_ADDR"); addr != "" {
		qdrantAddr = addr
		return m.Run()
	}
	dir, err := os.MkdirTemp("", "retrieve-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	store, err := vectordb.Open(dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, "vectordb:", err)
		return 1
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- vectordb.Serve(ctx, store, lis, nil, 5*time.Second) }()
	qdrantAddr = lis.Addr().String()
	code := m.Run()
	cancel()
	if err := <-done; err != nil {
		fmt.Fprintln(os.Stderr, "vectordb serve:", err)
		code = 1
	}
	if err := store.Close(); err != nil {
		fmt.Fprintln(os.Stderr, "vectordb close:", err)
		code = 1
	}
	return code
}

// testDense is the dense size of the tests' collections.
const testDense = 8

// harness is one running retrieve service: its index, its topics and its
// three subscribers.
type harness struct {
	t      testing.TB
	index  *Index
	topics events.Topics
	svc    Service
}

// start runs the service on a fresh prefix and collection until the test
// ends.
func start(t testing.TB) *harness {
	t.Helper()
	return startWith(t, 3)
}

// startWith is start with topics of the given number of partitions.
func startWith(t testing.TB, partitions int) *harness {
	t.Helper()
	return startWithOpts(t, partitions)
}

// startWithOpts is startWith with more options for the chunks subscriber.
func startWithOpts(t testing.TB, partitions int, chunkOpts ...kafkatransport.SubscriberOption) *harness {
	t.Helper()
	prefix := cluster.Prefix(t)
	topics := cluster.CreatePrefixTopics(t, prefix, partitions)
	client, err := Dial(qdrantAddr, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	var b [5]byte
	_, _ = rand.Read(b[:])
	index := NewIndex(client, "retrieve_test_"+hex.EncodeToString(b[:]), testDense)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	if err := index.Ensure(ctx); err != nil {
		t.Fatalf("Ensure: %v", err)
	}
	// A second Ensure (another replica, a restart) changes nothing.
	if err := index.Ensure(ctx); err != nil {
		t.Fatalf("second Ensure: %v", err)
	}
	pub := kafkatransport.NewPublisher(cluster.Brokers(), kafkatransport.PublisherSource(EventSource))
	svc := NewService(index, NewKafkaEmitter(pub, topics.Documents))
	e := MakeEndpoints(svc)
	opts := []kafkatransport.SubscriberOption{kafkatransport.SubscriberRetry(3, 10*time.Millisecond, 50*time.Millisecond)}
	subs := []*kafkatransport.Subscriber{
		NewChunksSubscriber(cluster.Brokers(), topics.ChunksEmbedded, pub, e, append(opts, chunkOpts...)...),
		NewDocumentsSubscriber(cluster.Brokers(), topics.Documents, pub, e, opts...),
		NewQueriesSubscriber(cluster.Brokers(), topics.QueriesEmbedded, topics.QueriesRetrieved, pub, e, opts...),
	}
	runCtx, stop := context.WithCancel(context.Background())
	errs := make(chan error, len(subs))
	for _, s := range subs {
		go func() { errs <- s.Run(runCtx) }()
	}
	t.Cleanup(func() {
		stop()
		for range subs {
			if err := <-errs; err != nil {
				t.Errorf("subscriber: %v", err)
			}
		}
		if err := pub.Close(); err != nil {
			t.Errorf("close publisher: %v", err)
		}
		if err := client.DeleteCollection(context.Background(), index.Collection()); err != nil {
			t.Errorf("delete collection: %v", err)
		}
		_ = client.Close()
	})
	return &harness{t: t, index: index, topics: topics, svc: svc}
}

// sparseOf is a toy lexical embedding: lower-cased words hashed to
// dimensions, weighted by term frequency.
func sparseOf(text string) *events.SparseVector {
	tf := map[uint32]float32{}
	for _, w := range strings.FieldsFunc(strings.ToLower(text), func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsDigit(r) }) {
		h := fnv.New32a()
		h.Write([]byte(w))
		tf[h.Sum32()]++
	}
	sv := &events.SparseVector{}
	for i, v := range tf {
		sv.Indices = append(sv.Indices, i)
		sv.Values = append(sv.Values, v)
	}
	return sv
}

// doc is a document version to index.
type doc struct {
	tenant, id string
	version    int
	groups     []string
	texts      []string
	dense      bool
}

// chunks returns the version's chunk.embedded payloads.
func (d doc) chunks() []events.ChunkEmbedded {
	out := make([]events.ChunkEmbedded, len(d.texts))
	for i, text := range d.texts {
		c := events.ChunkEmbedded{
			ChunkCreated: events.ChunkCreated{
				ChunkID:     events.ChunkID(d.tenant, d.id, d.version, i),
				DocumentID:  d.id,
				TenantID:    d.tenant,
				Version:     d.version,
				Index:       i,
				ChunkCount:  len(d.texts),
				Text:        text,
				Page:        i + 1,
				HeadingPath: []string{"Handbook", fmt.Sprintf("Part %d", i)},
				ContentHash: "sha256:00",
				Title:       "Title of " + d.id,
				Groups:      d.groups,
				Metadata:    map[string]string{"lang": "en"},
			},
			Model:  "test-bm25",
			Sparse: sparseOf(text),
		}
		if d.dense {
			c.Dense = denseOf(text)
		}
		out[i] = c
	}
	return out
}

// denseOf is a toy dense embedding of testDense dimensions.
func denseOf(text string) []float32 {
	v := make([]float32, testDense)
	for _, w := range strings.Fields(strings.ToLower(text)) {
		h := fnv.New32a()
		h.Write([]byte(w))
		v[h.Sum32()%testDense]++
	}
	v[0] += 0.01
	return v
}

// message marshals a payload for topic with the tenant in its headers.
func message(t testing.TB, topic, tenant string, p events.Payload) kafka.Message {
	t.Helper()
	ctx := events.WithCorrelationID(events.WithTenant(context.Background(), tenant), "corr-"+tenant)
	msg, err := events.Marshal(ctx, "test", p)
	if err != nil {
		t.Fatalf("marshal %s: %v", p.EventType(), err)
	}
	msg.Topic = topic
	return msg
}

// produceChunks publishes the chunk events of d.
func (h *harness) produceChunks(d doc) {
	h.t.Helper()
	var msgs []kafka.Message
	for _, c := range d.chunks() {
		msgs = append(msgs, message(h.t, h.topics.ChunksEmbedded, d.tenant, c))
	}
	cluster.Produce(h.t, msgs...)
}

// poison publishes, keyed like document id, a chunk event whose payload
// names another tenant than its headers: the service must dead-letter it.
// Being on the document's partition, it also marks when everything the
// document had before it was handled.
func (h *harness) poison(tenant, id string) {
	h.t.Helper()
	c := doc{tenant: "intruder", id: id, version: 1, texts: []string{"poison"}}.chunks()[0]
	value, err := json.Marshal(c)
	if err != nil {
		h.t.Fatal(err)
	}
	env := events.NewEnvelope(events.WithTenant(context.Background(), tenant), events.TypeChunkEmbedded, "test")
	msg := kafka.Message{Topic: h.topics.ChunksEmbedded, Key: []byte(id), Headers: env.Headers(), Value: value}
	cluster.Produce(h.t, msg)
}

// count returns the number of points of one version of a document.
func (h *harness) count(tenant, id string, version int) int {
	h.t.Helper()
	n, err := h.index.CountVersion(h.t.Context(), tenant, id, version)
	if err != nil {
		h.t.Fatalf("CountVersion: %v", err)
	}
	return n
}

// indexedEvents returns the document.indexed events on the documents topic.
func (h *harness) indexedEvents() []events.DocumentIndexed {
	h.t.Helper()
	var out []events.DocumentIndexed
	for _, m := range cluster.ReadAll(h.t, h.topics.Documents) {
		if kafkatest.Header(m, events.HeaderType) != events.TypeDocumentIndexed {
			continue
		}
		var d events.DocumentIndexed
		env, err := events.Unmarshal(m, &d)
		if err != nil {
			h.t.Fatalf("document.indexed: %v", err)
		}
		if env.TenantID != d.TenantID || string(m.Key) != d.DocumentID || env.ID != IndexedID(d.TenantID, d.DocumentID, d.Version) {
			h.t.Fatalf("document.indexed: key %q envelope %+v payload %+v", m.Key, env, d)
		}
		out = append(out, d)
	}
	return out
}

// waitIndexed waits for a document.indexed event of a version.
func (h *harness) waitIndexed(tenant, id string, version int) {
	h.t.Helper()
	eventually.NoError(h.t, fmt.Sprintf("document.indexed %s v%d", id, version), 30*time.Second, func() error {
		evs := h.indexedEvents()
		for _, e := range evs {
			if e.TenantID == tenant && e.DocumentID == id && e.Version == version {
				return nil
			}
		}
		return fmt.Errorf("%d indexed events", len(evs))
	})
}

// indexedCount counts the document.indexed events of one version.
func (h *harness) indexedCount(tenant, id string, version int) int {
	n := 0
	for _, e := range h.indexedEvents() {
		if e.TenantID == tenant && e.DocumentID == id && e.Version == version {
			n++
		}
	}
	return n
}

// waitDLQ waits until the chunks DLQ holds n messages and returns them.
func (h *harness) waitDLQ(topic string, n int) []kafka.Message {
	h.t.Helper()
	return cluster.ReadN(h.t, events.DLQ(topic), n, 30*time.Second)
}
