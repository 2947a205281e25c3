package interop_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/cloudevents/sdk-go/protocol/kafka_sarama/v2"
	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/cloudevents/sdk-go/v2/binding"
	"github.com/segmentio/kafka-go"

	"github.com/tributary-rag/tributary/pkg/apikey"
	"github.com/tributary-rag/tributary/pkg/daemon"
	"github.com/tributary-rag/tributary/pkg/docparse"
	"github.com/tributary-rag/tributary/pkg/events"
	"github.com/tributary-rag/tributary/pkg/eventually"
	"github.com/tributary-rag/tributary/pkg/kafkatest"
	"github.com/tributary-rag/tributary/pkg/kafkatransport"
	"github.com/tributary-rag/tributary/pkg/vectordb"
	"github.com/tributary-rag/tributary/services/embed"
	"github.com/tributary-rag/tributary/services/ingest"
	"github.com/tributary-rag/tributary/services/retrieve"
)

var cluster *kafkatest.Cluster

func TestMain(m *testing.M) {
	// The ingest service parses documents in child processes of this binary.
	if code, ok := docparse.RunChild(); ok {
		os.Exit(code)
	}
	os.Exit(kafkatest.Main(m, &cluster))
}

func saramaConfig() *sarama.Config {
	cfg := sarama.NewConfig()
	cfg.ClientID = "cloudevents-interop-test"
	cfg.Producer.RequiredAcks = sarama.WaitForAll
	cfg.Producer.Return.Successes = true
	return cfg
}

// sdkReader reads topics from the start with sarama and converts each
// message with the SDK's Kafka binding, as a downstream team would.
type sdkReader struct {
	t        *testing.T
	consumer sarama.Consumer
	mu       sync.Mutex
	got      map[string][]cloudevents.Event // by topic
	errs     []string
}

func newSDKReader(t *testing.T, topics ...string) *sdkReader {
	t.Helper()
	c, err := sarama.NewConsumer(cluster.Brokers(), saramaConfig())
	if err != nil {
		t.Fatalf("sarama consumer: %v", err)
	}
	r := &sdkReader{t: t, consumer: c, got: map[string][]cloudevents.Event{}}
	var wg sync.WaitGroup
	var pcs []sarama.PartitionConsumer
	t.Cleanup(func() {
		// sarama wants every partition consumer closed before the consumer.
		for _, pc := range pcs {
			pc.AsyncClose()
		}
		wg.Wait()
		if err := c.Close(); err != nil {
			t.Errorf("close consumer: %v", err)
		}
	})
	for _, topic := range topics {
		parts, err := c.Partitions(topic)
		if err != nil {
			t.Fatalf("partitions of %s: %v", topic, err)
		}
		for _, p := range parts {
			pc, err := c.ConsumePartition(topic, p, sarama.OffsetOldest)
			if err != nil {
				t.Fatalf("consume %s/%d: %v", topic, p, err)
			}
			pcs = append(pcs, pc)
			wg.Add(1)
			go func() {
				defer wg.Done()
				for cm := range pc.Messages() {
					ev, err := binding.ToEvent(context.Background(), kafka_sarama.NewMessageFromConsumerMessage(cm))
					r.mu.Lock()
					if err != nil {
						r.errs = append(r.errs, fmt.Sprintf("%s@%d: %v", cm.Topic, cm.Offset, err))
					} else {
						r.got[cm.Topic] = append(r.got[cm.Topic], *ev)
					}
					r.mu.Unlock()
				}
			}()
		}
	}
	return r
}

// events returns what the SDK read from topic so far, and its errors.
func (r *sdkReader) events(topic string) ([]cloudevents.Event, []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]cloudevents.Event(nil), r.got[topic]...), append([]string(nil), r.errs...)
}

// wait waits until the SDK has read n events from topic and returns them.
func (r *sdkReader) wait(topic string, n int) []cloudevents.Event {
	r.t.Helper()
	var evs []cloudevents.Event
	eventually.True(r.t, fmt.Sprintf("the SDK to read %d events from %s", n, topic), 30*time.Second, func() bool {
		var errs []string
		evs, errs = r.events(topic)
		if len(errs) > 0 {
			r.t.Fatalf("the SDK could not read our events: %v", errs)
		}
		return len(evs) >= n
	})
	return evs
}

func ext(ev cloudevents.Event, name string) string {
	v, _ := ev.Extensions()[name].(string)
	return v
}

// TestSDKReadsEveryTopic publishes an event of every type (the golden
// fixtures, encoded as every service encodes its events) on its topic; the
// SDK reads each with every attribute, the tenantid and correlationid
// extensions and the JSON data.
func TestSDKReadsEveryTopic(t *testing.T) {
	t.Parallel()
	topics := cluster.CreatePrefixTopics(t, cluster.Prefix(t), 1)
	topicsOf := map[string][]string{} // answer types travel on two topics
	for i, info := range events.Catalog() {
		for _, typ := range info.Types {
			topicsOf[typ] = append(topicsOf[typ], topics.All()[i])
		}
	}
	files, err := filepath.Glob("../../../pkg/events/testdata/fixtures/*.json")
	if err != nil || len(files) == 0 {
		t.Fatalf("no golden fixtures: %v", err)
	}
	type sent struct {
		env  events.Envelope
		data []byte
	}
	want := map[string][]sent{}
	var msgs []kafka.Message
	for _, file := range files {
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		var fx struct {
			Headers map[string]string `json:"headers"`
			Data    json.RawMessage   `json:"data"`
		}
		if err := json.Unmarshal(b, &fx); err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		var hs []kafka.Header
		for k, v := range fx.Headers {
			hs = append(hs, kafka.Header{Key: k, Value: []byte(v)})
		}
		env, p, err := events.Decode(kafka.Message{Headers: hs, Value: fx.Data})
		if err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		msg, err := events.MarshalWith(env, p)
		if err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		dests := topicsOf[env.Type]
		if strings.HasPrefix(env.Type, events.AuditTypePrefix) {
			dests = []string{topics.AuditEvents} // the catalog says tributary.audit.*
		}
		if len(dests) == 0 {
			t.Fatalf("%s: no topic carries %s", file, env.Type)
		}
		for _, topic := range dests {
			msg.Topic = topic
			msgs = append(msgs, msg)
			want[topic] = append(want[topic], sent{env, msg.Value})
		}
	}
	cluster.Produce(t, msgs...)

	r := newSDKReader(t, topics.All()...)
	for _, topic := range topics.All() {
		ws := want[topic]
		if len(ws) == 0 {
			t.Errorf("no fixture for topic %s", topic)
			continue
		}
		got := r.wait(topic, len(ws))
		if len(got) != len(ws) {
			t.Errorf("%s: the SDK read %d events, want %d", topic, len(got), len(ws))
			continue
		}
		for i, w := range ws {
			ev := got[i]
			if err := ev.Validate(); err != nil {
				t.Errorf("%s: SDK event %s invalid: %v", topic, ev.ID(), err)
			}
			if ev.SpecVersion() != "1.0" || ev.ID() != w.env.ID || ev.Source() != w.env.Source || ev.Type() != w.env.Type ||
				!ev.Time().Equal(w.env.Time) || ev.DataContentType() != events.ContentTypeJSON {
				t.Errorf("%s: SDK event %s %s %s %s %v %s, want %+v", topic, ev.SpecVersion(), ev.ID(), ev.Source(), ev.Type(), ev.Time(), ev.DataContentType(), w.env)
			}
			if ext(ev, events.ExtensionTenantID) != w.env.TenantID || w.env.TenantID == "" ||
				ext(ev, events.ExtensionCorrelationID) != w.env.CorrelationID || w.env.CorrelationID == "" {
				t.Errorf("%s: SDK extensions %v, want tenantid %q correlationid %q", topic, ev.Extensions(), w.env.TenantID, w.env.CorrelationID)
			}
			if !jsonEqual(ev.Data(), w.data) {
				t.Errorf("%s: SDK data %s, want %s", topic, ev.Data(), w.data)
			}
		}
	}
}

func jsonEqual(a, b []byte) bool {
	var x, y any
	return json.Unmarshal(a, &x) == nil && json.Unmarshal(b, &y) == nil && reflect.DeepEqual(x, y)
}

// startPipeline runs the ingest, embed and retrieve services (each wired
// as its own binary wires it) on the test broker, with the embedded vector
// store behind Qdrant's gRPC API.
func startPipeline(t *testing.T, topics events.Topics) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	logger := slog.New(slog.DiscardHandler)
	store, err := vectordb.Open(t.TempDir())
	if err != nil {
		t.Fatalf("vectordb: %v", err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	vdone := make(chan error, 1)
	go func() { vdone <- vectordb.Serve(ctx, store, lis, logger, time.Second) }()

	keys, err := apikey.Parse("interop-key:acme:staff")
	if err != nil {
		t.Fatal(err)
	}
	reg := daemon.NewRegistry()
	km, err := kafkatransport.NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	w := daemon.NewWiring()
	deps := daemon.Deps{Brokers: cluster.Brokers(), Topics: topics, Registry: reg, KafkaMetrics: km, Logger: logger,
		Keys: keys, QdrantAddr: lis.Addr().String()}
	ingestDeps := deps
	ingestDeps.DataDir = t.TempDir()
	retrieveSettings := retrieve.DefaultSettings()
	retrieveSettings.Collection = strings.ReplaceAll(topics.Prefix, ".", "_")
	for name, wire := range map[string]func() error{
		"ingest":   func() error { return ingest.DefaultSettings().Wire(ctx, w, ingestDeps) },
		"embed":    func() error { return embed.DefaultSettings().Wire(ctx, w, deps) },
		"retrieve": func() error { return retrieveSettings.Wire(ctx, w, deps) },
	} {
		if err := wire(); err != nil {
			cancel()
			t.Fatalf("wire %s: %v", name, err)
		}
	}
	done := make(chan error, 1)
	go func() { done <- w.Group.Run(ctx, logger) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("services stopped with: %v", err)
			}
		case <-time.After(60 * time.Second):
			t.Errorf("services did not stop within 60s")
		}
		if err := w.Close(); err != nil {
			t.Errorf("close services: %v", err)
		}
		<-vdone
		if err := store.Close(); err != nil {
			t.Errorf("close vector store: %v", err)
		}
	})
}

// TestSDKIngestRequestIsIndexed sends two ingest requests with the SDK's
// client, one in binary mode and one in structured mode without the
// optional time, into ingest.requests; the ingest, embed and retrieve
// services index both (document.indexed), nothing is dead-lettered, and
// the SDK reads the services' events with the request's tenant and
// correlation id.
func TestSDKIngestRequestIsIndexed(t *testing.T) {
	t.Parallel()
	topics := cluster.CreatePrefixTopics(t, cluster.Prefix(t), 1)
	startPipeline(t, topics)

	sender, err := kafka_sarama.NewSender(cluster.Brokers(), saramaConfig(), topics.IngestRequests)
	if err != nil {
		t.Fatalf("SDK sender: %v", err)
	}
	client, err := cloudevents.NewClient(sender)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := sender.Close(context.Background()); err != nil {
			t.Errorf("close sender: %v", err)
		}
	})
	requests := []struct {
		doc, mode string
		withTime  bool
	}{
		{"sdk-binary", "binary", true},
		{"sdk-structured", "structured", false},
	}
	for _, rq := range requests {
		ev := cloudevents.NewEvent()
		ev.SetID("sdk-" + rq.doc)
		ev.SetSource("partner/crm")
		ev.SetType(events.TypeIngestRequested)
		ev.SetExtension(events.ExtensionTenantID, "acme")
		ev.SetExtension(events.ExtensionCorrelationID, "corr-"+rq.doc)
		if rq.withTime {
			ev.SetTime(time.Now())
		}
		if err := ev.SetData(cloudevents.ApplicationJSON, events.IngestRequested{
			DocumentID: rq.doc, RequestID: "req-" + rq.doc, TenantID: "acme", Title: "Partner note " + rq.doc,
			ContentType: "text/plain", Content: []byte("Shipments to the Lisbon warehouse leave on Thursdays (" + rq.mode + ")."),
			Groups: []string{"staff"},
		}); err != nil {
			t.Fatal(err)
		}
		ctx := kafka_sarama.WithMessageKey(context.Background(), sarama.StringEncoder(rq.doc))
		if rq.mode == "structured" {
			ctx = cloudevents.WithEncodingStructured(ctx)
		} else {
			ctx = cloudevents.WithEncodingBinary(ctx)
		}
		if res := client.Send(ctx, ev); !cloudevents.IsACK(res) {
			t.Fatalf("SDK send %s: %v", rq.mode, res)
		}
	}
	// The messages are in the form the test means to send.
	sentMsgs := cluster.ReadN(t, topics.IngestRequests, len(requests), 30*time.Second)
	for _, m := range sentMsgs {
		structured := kafkatest.Header(m, events.HeaderContentType) == events.ContentTypeCloudEventsJSON
		if structured != (string(m.Key) == "sdk-structured") || (kafkatest.Header(m, events.HeaderTime) != "") != (string(m.Key) == "sdk-binary") {
			t.Fatalf("SDK wrote %s with headers %v", m.Key, m.Headers)
		}
	}

	r := newSDKReader(t, topics.Documents, topics.Chunks)
	indexed := map[string]cloudevents.Event{}
	chunked := map[string]bool{}
	dlq := events.DLQ(topics.IngestRequests)
	// Each topic has its own partition consumer, so the SDK can have read a
	// document's indexed event before the chunks written ahead of it: wait
	// for both.
	eventually.True(t, "both documents indexed and their chunks read", 60*time.Second, func() bool {
		if dl := cluster.ReadAll(t, dlq); len(dl) > 0 {
			t.Fatalf("dead-lettered %s: %s", dl[0].Key, kafkatest.Header(dl[0], kafkatransport.DLQHeaderError))
		}
		evs, errs := r.events(topics.Documents)
		if len(errs) > 0 {
			t.Fatalf("the SDK could not read our events: %v", errs)
		}
		for _, ev := range evs {
			if ev.Type() == events.TypeDocumentRejected {
				t.Fatalf("document rejected: %s", ev.Data())
			}
			if ev.Type() == events.TypeDocumentIndexed {
				var p events.DocumentIndexed
				if err := ev.DataAs(&p); err != nil {
					t.Fatalf("document.indexed data: %v", err)
				}
				indexed[p.DocumentID] = ev
			}
		}
		chunks, _ := r.events(topics.Chunks)
		for _, ev := range chunks {
			var p struct {
				DocumentID string `json:"document_id"`
			}
			if ev.Type() == events.TypeChunkCreated && ev.DataAs(&p) == nil {
				chunked[p.DocumentID] = true
			}
		}
		for _, rq := range requests {
			if !chunked[rq.doc] {
				return false
			}
		}
		return len(indexed) == len(requests)
	})
	for _, rq := range requests {
		if _, ok := indexed[rq.doc]; !ok {
			t.Errorf("%s (%s mode) not indexed", rq.doc, rq.mode)
		}
	}
	// What ingest wrote for each request carries its tenant and
	// correlation id, as the SDK sees them.
	evs, _ := r.events(topics.Documents)
	chunks, _ := r.events(topics.Chunks)
	seen := map[string]bool{}
	for _, ev := range append(evs, chunks...) {
		var p struct {
			DocumentID string `json:"document_id"`
		}
		if err := ev.DataAs(&p); err != nil {
			t.Fatalf("%s data: %v", ev.Type(), err)
		}
		if ext(ev, events.ExtensionTenantID) != "acme" {
			t.Errorf("%s of %s: tenantid %q, want acme", ev.Type(), p.DocumentID, ext(ev, events.ExtensionTenantID))
		}
		if ev.Type() != events.TypeDocumentIndexed && ext(ev, events.ExtensionCorrelationID) != "corr-"+p.DocumentID {
			t.Errorf("%s of %s: correlationid %q, want corr-%s", ev.Type(), p.DocumentID, ext(ev, events.ExtensionCorrelationID), p.DocumentID)
		}
		seen[ev.Type()] = true
	}
	var types []string
	for typ := range seen {
		types = append(types, typ)
	}
	sort.Strings(types)
	if want := []string{events.TypeChunkCreated, events.TypeDocumentAccepted, events.TypeDocumentIndexed}; !reflect.DeepEqual(types, want) {
		t.Errorf("event types %v, want %v", types, want)
	}
	if dl := cluster.ReadAll(t, dlq); len(dl) > 0 {
		t.Errorf("dead-lettered %d ingest requests: %s", len(dl), kafkatest.Header(dl[0], kafkatransport.DLQHeaderError))
	}
}
