package ingest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/tributary-rag/tributary/pkg/docparse"
	"github.com/tributary-rag/tributary/pkg/events"
	"github.com/tributary-rag/tributary/pkg/eventually"
	"github.com/tributary-rag/tributary/pkg/kafkatest"
	"github.com/tributary-rag/tributary/pkg/kafkatransport"
	"github.com/tributary-rag/tributary/pkg/tracecontext"
)

// cluster is the Kafka cluster shared by the package's tests: in-process
// kfake, or a real cluster named by TRIBUTARY_TEST_KAFKA_BROKERS.
var cluster *kafkatest.Cluster

func TestMain(m *testing.M) {
	// Tests parse through a docparse.Pool whose children are this binary.
	if code, ok := docparse.RunChild(); ok {
		os.Exit(code)
	}
	os.Exit(kafkatest.Main(m, &cluster))
}

// stack is the service wired as in cmd/ingest: store, chunker, Kafka
// emitter on a real publisher, middlewares, endpoints and HTTP handler.
type stack struct {
	t      *testing.T
	dir    string
	topics events.Topics
	pub    *kafkatransport.Publisher
	store  *Store
	svc    Service
	eps    Endpoints
	srv    *httptest.Server
}

func newStack(t *testing.T, dir string, topics events.Topics, maxSize int64) *stack {
	t.Helper()
	st, err := OpenStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	pub := kafkatransport.NewPublisher(cluster.Brokers(), kafkatransport.PublisherSource(EventSource))
	svc := NewService(st, newTestChunker(t), NewKafkaEmitter(pub, topics.Prefix), WithMaxDocumentSize(maxSize))
	svc = LoggingMiddleware(slog.New(slog.DiscardHandler))(svc)
	eps := MakeEndpoints(svc)
	srv := httptest.NewServer(MakeHTTPHandler(eps, testKeys(), slog.New(slog.DiscardHandler), WithHTTPMaxDocumentSize(maxSize)))
	s := &stack{t: t, dir: dir, topics: topics, pub: pub, store: st, svc: svc, eps: eps, srv: srv}
	t.Cleanup(s.close)
	return s
}

func (s *stack) close() {
	if s.srv == nil {
		return
	}
	s.srv.Close()
	if err := s.pub.Close(); err != nil {
		s.t.Errorf("close publisher: %v", err)
	}
	if err := s.store.Close(); err != nil {
		s.t.Errorf("close store: %v", err)
	}
	s.srv = nil
}

func newKafkaStack(t *testing.T, maxSize int64) *stack {
	t.Helper()
	topics := cluster.CreatePrefixTopics(t, cluster.Prefix(t), 3)
	return newStack(t, t.TempDir(), topics, maxSize)
}

func (s *stack) post(key, contentType string, body []byte) (int, map[string]any) {
	s.t.Helper()
	resp, b := httpCase{method: "POST", path: "/v1/documents", key: key, contentType: contentType, body: body}.do(s.t, s.srv)
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		s.t.Fatalf("POST response %q: %v", b, err)
	}
	return resp.StatusCode, m
}

// checkEvents validates every message as a Tributary event of typ for
// tenant: headers, key, schema. It returns the decoded payloads.
func checkEvents[P events.Payload](t *testing.T, msgs []kafka.Message, typ, tenant string) []P {
	t.Helper()
	v, err := events.NewValidator()
	if err != nil {
		t.Fatal(err)
	}
	out := make([]P, 0, len(msgs))
	for i, m := range msgs {
		env, p, err := events.Decode(m)
		if err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
		if env.Type != typ || env.TenantID != tenant || env.Source != EventSource || env.TraceParent == "" {
			t.Fatalf("message %d envelope = %+v, want type %s, tenant %s, source %s and a traceparent", i, env, typ, tenant, EventSource)
		}
		for _, h := range []string{events.HeaderSpecVersion, events.HeaderID, events.HeaderTime, events.HeaderContentType, events.HeaderTenantID, events.HeaderCorrelationID} {
			if kafkatest.Header(m, h) == "" {
				t.Fatalf("message %d has no %s header", i, h)
			}
		}
		if err := v.Validate(typ, m.Value); err != nil {
			t.Fatalf("message %d fails its schema: %v\n%s", i, err, m.Value)
		}
		if string(m.Key) != p.PartitionKey() {
			t.Fatalf("message %d key %q, want %q", i, m.Key, p.PartitionKey())
		}
		out = append(out, *any(p).(*P))
	}
	return out
}

func TestWiringPostEmitsOrderedChunkEvents(t *testing.T) {
	s := newKafkaStack(t, DefaultMaxDocumentSize)
	var md strings.Builder
	md.WriteString("# Handbook\n\nWelcome to the company.\n\n## Leave\n\n")
	for i := range 12 {
		md.WriteString("Employees accrue leave every month. Rule " + strconv.Itoa(i) + " applies here. ")
	}
	md.WriteString("\n\n## 休假\n\n员工每年享有带薪年假。年假天数根据工龄确定。")
	ct, body := multipartBody(t,
		multipartField{name: "document_id", value: "handbook"},
		multipartField{name: "groups", value: "staff"},
		multipartField{name: "metadata", value: `{"dept":"hr"}`},
		multipartField{name: "source", value: "s3://docs/handbook.md"},
		multipartField{name: "file", filename: "handbook.md", contentType: "text/markdown", value: md.String()})

	status, res := s.post("acme-admin", ct, body)
	if status != 202 || res["status"] != ResultAccepted || res["version"] != 1.0 {
		t.Fatalf("POST = %d %v, want 202 accepted version 1", status, res)
	}
	docs := checkEvents[events.DocumentAccepted](t, cluster.ReadN(t, s.topics.Documents, 1, 10*time.Second), events.TypeDocumentAccepted, "acme")
	acc := docs[0]
	if acc.DocumentID != "handbook" || acc.Version != 1 || acc.ChunkCount < 3 || acc.ContentType != "text/markdown" || acc.Title != "Handbook" {
		t.Fatalf("document.accepted = %+v", acc)
	}
	msgs := cluster.ReadN(t, s.topics.Chunks, acc.ChunkCount, 10*time.Second)
	if len(msgs) != acc.ChunkCount {
		t.Fatalf("%d chunk events, want %d", len(msgs), acc.ChunkCount)
	}
	chunks := checkEvents[events.ChunkCreated](t, msgs, events.TypeChunkCreated, "acme")
	sawHeading := false
	for i, c := range chunks {
		if msgs[i].Partition != msgs[0].Partition {
			t.Fatalf("chunk %d on partition %d, chunk 0 on %d: one key must keep one partition", i, msgs[i].Partition, msgs[0].Partition)
		}
		if c.Index != i {
			t.Fatalf("chunk at position %d has index %d: events out of order", i, c.Index)
		}
		if c.ChunkID != events.ChunkID("acme", "handbook", 1, i) {
			t.Errorf("chunk %d id %s is not ChunkID(acme, handbook, 1, %d)", i, c.ChunkID, i)
		}
		if id := kafkatest.Header(msgs[i], events.HeaderID); id != events.DeterministicID(c.ChunkID, events.TypeChunkCreated) {
			t.Errorf("chunk %d ce_id %s is not deterministic", i, id)
		}
		if c.Text == "" || c.End <= c.Start || c.ChunkCount != len(chunks) || c.Version != 1 ||
			c.Title != "Handbook" || c.Source != "s3://docs/handbook.md" || c.Metadata["dept"] != "hr" ||
			len(c.Groups) != 1 || c.Groups[0] != "staff" || !strings.HasPrefix(c.ContentHash, "sha256:") {
			t.Errorf("chunk %d = %+v", i, c)
		}
		if i > 0 && c.Start < chunks[i-1].Start {
			t.Errorf("chunk %d starts at %d, before chunk %d at %d", i, c.Start, i-1, chunks[i-1].Start)
		}
		if len(c.HeadingPath) > 0 && c.HeadingPath[len(c.HeadingPath)-1] == "休假" {
			sawHeading = true
		}
	}
	if !sawHeading {
		t.Errorf("no chunk records the heading path of the Chinese section")
	}
	// One request, one correlation id and one trace.
	corr := kafkatest.Header(msgs[0], events.HeaderCorrelationID)
	trace := func(m kafka.Message) string {
		tp, err := tracecontext.Parse(kafkatest.Header(m, events.HeaderTraceParent))
		if err != nil {
			t.Fatalf("traceparent: %v", err)
		}
		return tp.TraceIDString()
	}
	for i, m := range msgs {
		if kafkatest.Header(m, events.HeaderCorrelationID) != corr {
			t.Fatalf("chunk %d has another correlation id", i)
		}
		if trace(m) != trace(msgs[0]) {
			t.Fatalf("chunk %d belongs to another trace", i)
		}
	}

	// Same content: unchanged, and nothing new on either topic.
	status, res = s.post("acme-admin", ct, body)
	if status != 202 || res["status"] != ResultUnchanged || res["version"] != 1.0 {
		t.Fatalf("second POST = %d %v, want unchanged version 1", status, res)
	}
	if n := len(cluster.ReadAll(t, s.topics.Chunks)); n != len(chunks) {
		t.Fatalf("after unchanged POST the chunks topic holds %d events, want %d", n, len(chunks))
	}
	if n := len(cluster.ReadAll(t, s.topics.Documents)); n != 1 {
		t.Fatalf("after unchanged POST the documents topic holds %d events, want 1", n)
	}

	// New content: version 2 with its own chunk ids, continuing the
	// caller's trace.
	const callerTrace = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	resp, b := httpCase{method: "POST", path: "/v1/documents", key: "acme-admin", contentType: "application/json",
		header: map[string]string{"traceparent": callerTrace, "X-Correlation-ID": "sync-42"},
		body:   jsonBody(map[string]any{"document_id": "handbook", "content_type": "text/markdown", "content": "# Handbook\n\nShorter now."}),
	}.do(t, s.srv)
	if resp.StatusCode != 202 || !strings.Contains(string(b), `"version":2`) || resp.Header.Get("X-Correlation-ID") != "sync-42" {
		t.Fatalf("POST new content = %d %s, want accepted version 2 with the caller's correlation id", resp.StatusCode, b)
	}
	all := cluster.ReadN(t, s.topics.Chunks, len(chunks)+1, 10*time.Second)
	v2 := checkEvents[events.ChunkCreated](t, all[len(chunks):], events.TypeChunkCreated, "acme")
	if v2[0].Version != 2 || v2[0].ChunkID != events.ChunkID("acme", "handbook", 2, 0) {
		t.Fatalf("version 2 chunk = %+v", v2[0])
	}
	last := all[len(all)-1]
	if trace(last) != "4bf92f3577b34da6a3ce929d0e0e4736" || kafkatest.Header(last, events.HeaderCorrelationID) != "sync-42" {
		t.Fatalf("version 2 chunk headers %v: want the caller's trace and correlation id", last.Headers)
	}

	// Delete: document.deleted with the last version.
	resp, b = httpCase{method: "DELETE", path: "/v1/documents/handbook", key: "acme-admin"}.do(t, s.srv)
	if resp.StatusCode != 200 {
		t.Fatalf("DELETE = %d %s", resp.StatusCode, b)
	}
	docMsgs := cluster.ReadN(t, s.topics.Documents, 3, 10*time.Second)
	del := checkEvents[events.DocumentDeleted](t, docMsgs[2:], events.TypeDocumentDeleted, "acme")
	if del[0].DocumentID != "handbook" || del[0].Version != 2 {
		t.Fatalf("document.deleted = %+v, want handbook version 2", del[0])
	}
}

func TestIntegrationRefusalsEmitNoChunks(t *testing.T) {
	const maxSize = 64 << 10
	s := newKafkaStack(t, maxSize)
	pdfCT, pdf := multipartBody(t, multipartField{name: "file", filename: "broken.pdf", contentType: "application/pdf", value: "%PDF-1.4\n1 0 obj <<\n"})
	bombCT, bomb := multipartBody(t, multipartField{name: "file", filename: "bomb.docx",
		contentType: "application/vnd.openxmlformats-officedocument.wordprocessingml.document", value: string(zipBomb(t))})
	bigCT, big := multipartBody(t, multipartField{name: "file", filename: "big.txt", contentType: "text/plain", value: strings.Repeat("x", maxSize+1)})

	tests := []struct {
		name         string
		key          string
		contentType  string
		body         []byte
		wantStatus   int
		wantRejected bool
	}{
		{"no key", "", "application/json", jsonBody(map[string]string{"content": "x"}), 401, false},
		{"too large", "acme-admin", bigCT, big, 413, false},
		{"unsupported", "acme-admin", "application/json", jsonBody(map[string]string{"source": "img/logo.png", "content_type": "image/png", "content_base64": "iVBORw0KGgo="}), 415, true},
		{"broken pdf", "acme-admin", pdfCT, pdf, 422, true},
		{"zip bomb", "acme-admin", bombCT, bomb, 413, true},
	}
	rejected := 0
	for _, tt := range tests {
		status, res := s.post(tt.key, tt.contentType, tt.body)
		if status != tt.wantStatus {
			t.Fatalf("%s: status %d (%v), want %d", tt.name, status, res, tt.wantStatus)
		}
		if tt.wantRejected {
			rejected++
		}
	}
	msgs := cluster.ReadN(t, s.topics.Documents, rejected, 10*time.Second)
	rej := checkEvents[events.DocumentRejected](t, msgs, events.TypeDocumentRejected, "acme")
	codes := map[string]bool{}
	for _, r := range rej {
		codes[r.Code] = true
	}
	for _, want := range []string{"unsupported_type", "unreadable", "too_large"} {
		if !codes[want] {
			t.Errorf("no document.rejected with code %s among %+v", want, rej)
		}
	}
	if n := len(cluster.ReadAll(t, s.topics.Chunks)); n != 0 {
		t.Fatalf("refused documents produced %d chunk events", n)
	}
}

func TestIntegrationRestartKeepsVersions(t *testing.T) {
	topics := cluster.CreatePrefixTopics(t, cluster.Prefix(t), 3)
	dir := t.TempDir()
	body := jsonBody(map[string]any{"document_id": "notes", "content": "first text"})

	s := newStack(t, dir, topics, DefaultMaxDocumentSize)
	if status, res := s.post("acme-admin", "application/json", body); status != 202 || res["version"] != 1.0 {
		t.Fatalf("POST = %d %v", status, res)
	}
	s.close()

	s = newStack(t, dir, topics, DefaultMaxDocumentSize)
	if status, res := s.post("acme-admin", "application/json", body); status != 202 || res["status"] != ResultUnchanged {
		t.Fatalf("after restart, same content = %d %v, want unchanged", status, res)
	}
	body2 := jsonBody(map[string]any{"document_id": "notes", "content": "second text"})
	if status, res := s.post("acme-admin", "application/json", body2); status != 202 || res["version"] != 2.0 {
		t.Fatalf("after restart, new content = %d %v, want version 2", status, res)
	}
	if n := len(cluster.ReadN(t, topics.Documents, 2, 10*time.Second)); n != 2 {
		t.Fatalf("%d document events, want 2", n)
	}
}

// ingestRequest builds a tributary.ingest.requested message.
func ingestRequest(t *testing.T, topic, tenant string, p events.IngestRequested) kafka.Message {
	t.Helper()
	msg, err := events.Marshal(events.WithTenant(context.Background(), tenant), "test/producer", p)
	if err != nil {
		t.Fatal(err)
	}
	msg.Topic = topic
	return msg
}

func TestKafkaIngestRequestsAndDeadLetters(t *testing.T) {
	s := newKafkaStack(t, DefaultMaxDocumentSize)
	sub := NewIngestSubscriber(cluster.Brokers(), s.topics.IngestRequests, s.pub, s.eps,
		kafkatransport.SubscriberRetry(3, 10*time.Millisecond, 50*time.Millisecond),
		kafkatransport.SubscriberReaderConfig(func(c *kafka.ReaderConfig) { c.StartOffset = kafka.FirstOffset }))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- sub.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("subscriber Run: %v", err)
		}
	}()

	good := ingestRequest(t, s.topics.IngestRequests, "acme", events.IngestRequested{
		DocumentID: "faq", RequestID: "r1", TenantID: "acme", Title: "FAQ",
		ContentType: "text/plain", Content: []byte("Question one. Answer one.\n\nQuestion two. Answer two."),
		Groups: []string{"support"},
	})
	brokenPDF := ingestRequest(t, s.topics.IngestRequests, "acme", events.IngestRequested{
		DocumentID: "scan", RequestID: "r2", TenantID: "acme", ContentType: "application/pdf", Content: []byte("%PDF-1.7\ngarbage"),
	})
	// A producer of tenant acme that names tenant globex in the payload.
	wrongTenant := ingestRequest(t, s.topics.IngestRequests, "globex", events.IngestRequested{
		DocumentID: "x", RequestID: "r3", TenantID: "globex", ContentType: "text/plain", Content: []byte("x"),
	})
	for i, h := range wrongTenant.Headers {
		if h.Key == events.HeaderTenantID {
			wrongTenant.Headers[i].Value = []byte("acme")
		}
	}
	notAnEvent := kafka.Message{Topic: s.topics.IngestRequests, Key: []byte("junk"), Value: []byte("\x00\xffnot json")}
	cluster.Produce(t, good, brokenPDF, wrongTenant, notAnEvent)

	// The documents topic gets faq's acceptance and scan's rejection, on
	// partitions of their keys.
	var accMsgs []kafka.Message
	for _, m := range cluster.ReadN(t, s.topics.Documents, 2, 15*time.Second) {
		if kafkatest.Header(m, events.HeaderType) == events.TypeDocumentAccepted {
			accMsgs = append(accMsgs, m)
		}
	}
	acc := checkEvents[events.DocumentAccepted](t, accMsgs, events.TypeDocumentAccepted, "acme")
	if len(acc) != 1 {
		t.Fatalf("%d document.accepted events, want 1", len(acc))
	}
	if acc[0].DocumentID != "faq" || acc[0].Version != 1 || acc[0].Title != "FAQ" {
		t.Fatalf("document.accepted = %+v", acc[0])
	}
	chunks := checkEvents[events.ChunkCreated](t, cluster.ReadN(t, s.topics.Chunks, acc[0].ChunkCount, 10*time.Second), events.TypeChunkCreated, "acme")
	if chunks[0].Groups[0] != "support" || chunks[0].DocumentID != "faq" {
		t.Fatalf("chunk = %+v", chunks[0])
	}
	for _, m := range cluster.ReadAll(t, s.topics.Chunks) {
		if got := kafkatest.Header(m, events.HeaderCorrelationID); got != kafkatest.Header(good, events.HeaderID) {
			t.Fatalf("chunk correlation id %q, want the request's ce_id %q", got, kafkatest.Header(good, events.HeaderID))
		}
	}

	dead := cluster.ReadN(t, events.DLQ(s.topics.IngestRequests), 3, 15*time.Second)
	byKey := map[string]kafka.Message{}
	for _, m := range dead {
		byKey[string(m.Key)] = m
		if r := kafkatest.Header(m, kafkatransport.DLQHeaderReason); r != kafkatransport.ReasonPermanent {
			t.Errorf("dead letter %q reason %q, want %q", m.Key, r, kafkatransport.ReasonPermanent)
		}
		if kafkatest.Header(m, kafkatransport.DLQHeaderTopic) != s.topics.IngestRequests || kafkatest.Header(m, kafkatransport.DLQHeaderGroup) != KafkaGroup {
			t.Errorf("dead letter %q lacks its origin: %v", m.Key, m.Headers)
		}
		if a := kafkatest.Header(m, kafkatransport.DLQHeaderAttempts); a != "1" {
			t.Errorf("dead letter %q after %s attempts, want 1: permanent errors are not retried", m.Key, a)
		}
	}
	for key, want := range map[string]string{"scan": "pdf", "x": "tenant", "junk": "cloudevents"} {
		m, ok := byKey[key]
		if !ok {
			t.Fatalf("no dead letter for %q among %d", key, len(dead))
		}
		if e := kafkatest.Header(m, kafkatransport.DLQHeaderError); !strings.Contains(strings.ToLower(e), want) {
			t.Errorf("dead letter %q error %q does not mention %q", key, e, want)
		}
		if !bytes.Equal(m.Value, map[string]kafka.Message{"scan": brokenPDF, "x": wrongTenant, "junk": notAnEvent}[key].Value) {
			t.Errorf("dead letter %q does not carry the original value", key)
		}
	}

	// A redelivered request (a consumer that died before committing) finds
	// its version recorded and publishes nothing. A newer request for the
	// same document, behind it on the same partition, proves it was handled.
	v2 := ingestRequest(t, s.topics.IngestRequests, "acme", events.IngestRequested{
		DocumentID: "faq", RequestID: "r4", TenantID: "acme", Title: "FAQ",
		ContentType: "text/plain", Content: []byte("Question three. Answer three."), Groups: []string{"support"},
	})
	cluster.Produce(t, good, v2)
	var versions []int
	eventually.True(t, "two faq versions on the documents topic", 15*time.Second, func() bool {
		versions = versions[:0]
		for _, m := range cluster.ReadAll(t, s.topics.Documents) {
			var a events.DocumentAccepted
			if _, err := events.Unmarshal(m, &a); err == nil {
				versions = append(versions, a.Version)
			}
		}
		return len(versions) >= 2
	})
	if len(versions) != 2 || versions[0] != 1 || versions[1] != 2 {
		t.Fatalf("faq versions published %v, want [1 2]: the redelivered request must not publish again", versions)
	}
	if n := len(cluster.ReadAll(t, s.topics.Chunks)); n != len(chunks)+1 {
		t.Fatalf("chunks topic holds %d events, want %d (version 1) + 1 (version 2)", n, len(chunks))
	}

	// The broken PDF is also announced as rejected on the documents topic.
	var rejected []events.DocumentRejected
	eventually.True(t, "document.rejected on the documents topic", 10*time.Second, func() bool {
		rejected = rejected[:0]
		for _, m := range cluster.ReadAll(t, s.topics.Documents) {
			var r events.DocumentRejected
			if _, err := events.Unmarshal(m, &r); err == nil {
				rejected = append(rejected, r)
			} else if !errors.Is(err, events.ErrTypeMismatch) {
				t.Fatal(err)
			}
		}
		return len(rejected) > 0
	})
	if len(rejected) != 1 || rejected[0].DocumentID != "scan" || rejected[0].Code != "unreadable" {
		t.Fatalf("document.rejected = %+v, want one for scan with code unreadable", rejected)
	}
}
