package ingest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/tributary-rag/tributary/pkg/events"
	"github.com/tributary-rag/tributary/pkg/eventually"
	"github.com/tributary-rag/tributary/pkg/kafkatest"
	"github.com/tributary-rag/tributary/pkg/kafkatransport"
)

// tickingClock returns a clock that moves one second per reading.
func tickingClock() func() time.Time {
	var mu sync.Mutex
	t := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	return func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		t = t.Add(time.Second)
		return t
	}
}

func mustGet(t *testing.T, svc Service, p Principal, id string) Info {
	t.Helper()
	info, err := svc.Get(context.Background(), p, id)
	if err != nil {
		t.Fatalf("Get(%q): %v", id, err)
	}
	return info
}

func TestMarkIndexedLifecycle(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	svc, _, st := newTestService(t, dir, WithClock(tickingClock()))

	mark := func(tenant, id string, version int, want string) {
		t.Helper()
		res, err := svc.MarkIndexed(ctx, tenant, id, version)
		if err != nil {
			t.Fatalf("MarkIndexed(%s, %s, %d): %v", tenant, id, version, err)
		}
		if res != (Result{DocumentID: id, Version: version, Status: want}) {
			t.Fatalf("MarkIndexed(%s, %s, %d) = %+v, want status %s", tenant, id, version, res, want)
		}
	}
	ingest := func(text string, wantVersion int) {
		t.Helper()
		res, err := svc.Ingest(ctx, acme, textDoc("d", text))
		if err != nil || res.Version != wantVersion || res.Status != ResultAccepted {
			t.Fatalf("Ingest(%q) = %+v, %v; want version %d accepted", text, res, err, wantVersion)
		}
	}
	check := func(step string, wantVersion int, wantStatus string, wantIndexed int) Info {
		t.Helper()
		info := mustGet(t, svc, acme, "d")
		if info.Version != wantVersion || info.Status != wantStatus || info.IndexedVersion != wantIndexed {
			t.Fatalf("%s: Get = version %d %s, indexed_version %d; want version %d %s, indexed_version %d",
				step, info.Version, info.Status, info.IndexedVersion, wantVersion, wantStatus, wantIndexed)
		}
		if (wantIndexed == 0) != info.IndexedAt.IsZero() {
			t.Fatalf("%s: indexed_at %v with indexed_version %d", step, info.IndexedAt, wantIndexed)
		}
		return info
	}

	// Unknown to this instance: nothing is recorded, no record appears.
	mark("acme", "d", 1, ResultUnknown)
	if n := st.Len(); n != 0 {
		t.Fatalf("an announcement for an unknown document created %d records", n)
	}

	ingest("first text", 1)
	before := check("published", 1, StatusActive, 0)
	// A version past everything this instance published is not its own.
	mark("acme", "d", 2, ResultUnknown)
	check("announcement from the future", 1, StatusActive, 0)
	// Another tenant's document of the same id is another document.
	mark("globex", "d", 1, ResultUnknown)
	check("other tenant's announcement", 1, StatusActive, 0)

	mark("acme", "d", 1, ResultIndexed)
	first := check("indexed", 1, StatusIndexed, 1)
	rec, _ := st.Get("acme", "d")
	if !rec.UpdatedAt.Equal(before.UpdatedAt) || rec.Version != 1 || rec.Status != StatusActive || rec.Pending != nil {
		t.Fatalf("record after MarkIndexed = %+v: only the indexed fields may change", rec)
	}

	// A replay changes nothing, not even the time.
	mark("acme", "d", 1, ResultDuplicate)
	if again := check("replayed", 1, StatusIndexed, 1); !again.IndexedAt.Equal(first.IndexedAt) {
		t.Fatalf("a replay moved indexed_at from %v to %v", first.IndexedAt, again.IndexedAt)
	}

	// A newer version is pending indexing: the old one is what is indexed.
	ingest("second text", 2)
	check("version 2 published", 2, StatusActive, 1)
	mark("acme", "d", 1, ResultDuplicate)
	check("version 1 replayed while 2 is indexed", 2, StatusActive, 1)
	mark("acme", "d", 2, ResultIndexed)
	check("version 2 indexed", 2, StatusIndexed, 2)
	// A late announcement of a superseded version changes nothing.
	ingest("third text", 3)
	mark("acme", "d", 1, ResultStale)
	check("superseded version announced late", 3, StatusActive, 2)
	mark("acme", "d", 3, ResultIndexed)
	check("version 3 indexed", 3, StatusIndexed, 3)
	mark("acme", "d", 2, ResultStale)
	check("version 2 announced late", 3, StatusIndexed, 3)

	// Durable: a restart reads the same.
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	svc2, _, _ := newTestService(t, dir)
	if info := mustGet(t, svc2, acme, "d"); info.Status != StatusIndexed || info.IndexedVersion != 3 {
		t.Fatalf("after restart Get = %+v, want version 3 indexed", info)
	}

	// A deleted document stays deleted; its next version starts unindexed.
	if _, err := svc2.Delete(ctx, acme, "d"); err != nil {
		t.Fatal(err)
	}
	if res, err := svc2.MarkIndexed(ctx, "acme", "d", 3); err != nil || res.Status != ResultDuplicate {
		t.Fatalf("MarkIndexed after delete = %+v, %v; want duplicate", res, err)
	}
	if _, err := svc2.Get(ctx, acme, "d"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get of a deleted document after an announcement: err = %v, want ErrNotFound", err)
	}
	if res, err := svc2.Ingest(ctx, acme, textDoc("d", "third text")); err != nil || res.Version != 4 {
		t.Fatalf("Ingest after delete = %+v, %v; want version 4", res, err)
	}
	if info := mustGet(t, svc2, acme, "d"); info.Status != StatusActive || info.IndexedVersion != 3 {
		t.Fatalf("re-ingested after delete: Get = %+v, want version 4 active, indexed_version 3", info)
	}
}

func TestMarkIndexedRefusesInvalid(t *testing.T) {
	svc, _, _ := newTestService(t, t.TempDir())
	if _, err := svc.Ingest(context.Background(), acme, textDoc("d", "text")); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, tenant, id string
		version          int
	}{
		{"no tenant", "", "d", 1},
		{"no document", "acme", "", 1},
		{"bad document id", "acme", "a/b", 1},
		{"version 0", "acme", "d", 0},
		{"negative version", "acme", "d", -1},
	}
	for _, tt := range tests {
		res, err := svc.MarkIndexed(context.Background(), tt.tenant, tt.id, tt.version)
		if !errors.Is(err, ErrInvalid) || Retryable(err) {
			t.Errorf("%s: MarkIndexed = %+v, %v; want a permanent ErrInvalid", tt.name, res, err)
		}
	}
}

// racingEmitter announces the version as indexed from another goroutine
// while the service is still publishing it, as a fast retrieve service
// can: the announcement overtakes the Ingest call that will record it.
type racingEmitter struct {
	recordingEmitter
	svc  Service
	done chan Result
}

func (e *racingEmitter) Accepted(ctx context.Context, v Version) error {
	if err := e.recordingEmitter.Accepted(ctx, v); err != nil {
		return err
	}
	started := make(chan struct{})
	go func() {
		close(started)
		res, err := e.svc.MarkIndexed(context.WithoutCancel(ctx), v.Tenant, v.DocumentID, v.Version)
		if err != nil {
			res.Status = err.Error()
		}
		e.done <- res
	}()
	<-started
	// Give the announcement every chance to run before the version is
	// recorded; MarkIndexed must wait for the document's lock.
	time.Sleep(20 * time.Millisecond)
	return nil
}

func TestMarkIndexedOvertakingIngestIsKept(t *testing.T) {
	st, err := OpenStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	em := &racingEmitter{done: make(chan Result, 4)}
	svc := NewService(st, newTestChunker(t), em)
	em.svc = svc

	for v, text := range []string{"first text", "second text"} {
		res, err := svc.Ingest(context.Background(), acme, textDoc("d", text))
		if err != nil || res.Version != v+1 {
			t.Fatalf("Ingest = %+v, %v; want version %d", res, err, v+1)
		}
		select {
		case got := <-em.done:
			if got.Status != ResultIndexed || got.Version != v+1 {
				t.Fatalf("overtaking MarkIndexed = %+v, want version %d indexed", got, v+1)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("MarkIndexed did not return")
		}
		if info := mustGet(t, svc, acme, "d"); info.Status != StatusIndexed || info.Version != v+1 || info.IndexedVersion != v+1 {
			t.Fatalf("Get = %+v, want version %d indexed: recording the version lost the announcement", info, v+1)
		}
	}
}

func TestMarkIndexedPendingVersion(t *testing.T) {
	ctx := context.Background()
	svc, em, st := newTestService(t, t.TempDir())
	if _, err := svc.Ingest(ctx, acme, textDoc("d", "version one")); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.MarkIndexed(ctx, "acme", "d", 1); err != nil {
		t.Fatal(err)
	}
	// Version 2's events may be on the topics although the call failed
	// (a broker error after some acks, or a crash before recording).
	em.setFail(errors.New("broker down"))
	if _, err := svc.Ingest(ctx, acme, textDoc("d", "version two")); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Ingest with broker down: %v", err)
	}
	em.setFail(nil)
	if res, err := svc.MarkIndexed(ctx, "acme", "d", 2); err != nil || res.Status != ResultIndexed {
		t.Fatalf("MarkIndexed of the pending version = %+v, %v; want indexed", res, err)
	}
	// Version 1 is still the recorded one, and it is no longer what is
	// indexed (retrieve replaced its points with version 2's).
	if info := mustGet(t, svc, acme, "d"); info.Version != 1 || info.Status != StatusActive || info.IndexedVersion != 2 {
		t.Fatalf("Get with version 2 pending and indexed = %+v, want version 1 active, indexed_version 2", info)
	}
	// The same content again records version 2, which retrieve will not
	// announce a second time: the mark from before is what makes it
	// indexed.
	if res, err := svc.Ingest(ctx, acme, textDoc("d", "version two")); err != nil || res.Version != 2 {
		t.Fatalf("retried Ingest = %+v, %v; want version 2", res, err)
	}
	if info := mustGet(t, svc, acme, "d"); info.Version != 2 || info.Status != StatusIndexed {
		t.Fatalf("Get after the retry = %+v, want version 2 indexed", info)
	}

	// Different content after a failure skips the pending number; that
	// version is known, the next one is not yet.
	em.setFail(errors.New("broker down"))
	if _, err := svc.Ingest(ctx, acme, textDoc("d", "version three")); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Ingest with broker down: %v", err)
	}
	em.setFail(nil)
	if res, err := svc.Ingest(ctx, acme, textDoc("d", "version four")); err != nil || res.Version != 4 {
		t.Fatalf("Ingest of other content = %+v, %v; want version 4", res, err)
	}
	if res, err := svc.MarkIndexed(ctx, "acme", "d", 3); err != nil || res.Status != ResultIndexed {
		t.Fatalf("MarkIndexed of the abandoned version 3 = %+v, %v; want indexed", res, err)
	}
	if info := mustGet(t, svc, acme, "d"); info.Version != 4 || info.Status != StatusActive || info.IndexedVersion != 3 {
		t.Fatalf("Get = %+v, want version 4 active until it is indexed", info)
	}
	if rec, _ := st.Get("acme", "d"); rec.Pending != nil {
		t.Fatalf("record = %+v, want nothing pending", rec)
	}
}

// indexedEvent builds a tributary.document.indexed message as the retrieve
// service does.
func indexedEvent(t *testing.T, topic, tenant, id string, version int) kafka.Message {
	t.Helper()
	env := events.NewEnvelope(events.WithTenant(context.Background(), tenant), events.TypeDocumentIndexed, "tributary/retrieve")
	env.ID = events.DeterministicID(tenant, id, strconv.Itoa(version), events.TypeDocumentIndexed)
	msg, err := events.MarshalWith(env, events.DocumentIndexed{DocumentID: id, TenantID: tenant, Version: version, ChunkCount: 1})
	if err != nil {
		t.Fatal(err)
	}
	msg.Topic = topic
	return msg
}

// withHeader returns a copy of m with header key set to value (removed
// when value is empty).
func withHeader(m kafka.Message, key, value string) kafka.Message {
	hs := make([]kafka.Header, 0, len(m.Headers))
	for _, h := range m.Headers {
		if h.Key != key {
			hs = append(hs, h)
		}
	}
	if value != "" {
		hs = append(hs, kafka.Header{Key: key, Value: []byte(value)})
	}
	m.Headers = hs
	return m
}

func TestDecodeDocumentEvent(t *testing.T) {
	ctx := context.Background()
	good := indexedEvent(t, "docs", "acme", "d", 2)
	accepted, err := events.Marshal(events.WithTenant(ctx, "acme"), EventSource, events.DocumentAccepted{
		DocumentID: "d", TenantID: "acme", Version: 2, ContentType: "text/plain", ContentHash: "sha256:00", ChunkCount: 1})
	if err != nil {
		t.Fatal(err)
	}
	deleted, err := events.Marshal(events.WithTenant(ctx, "acme"), EventSource, events.DocumentDeleted{DocumentID: "d", TenantID: "acme", Version: 2})
	if err != nil {
		t.Fatal(err)
	}
	badJSON := good
	badJSON.Value = []byte(`{"document_id": "d", "version": "two"`)
	otherTenant := good
	otherTenant.Value = []byte(`{"document_id":"d","tenant_id":"globex","version":2,"chunk_count":1}`)

	tests := []struct {
		name      string
		msg       kafka.Message
		want      any
		permanent bool
	}{
		{"document.indexed", good, MarkIndexedRequest{Tenant: "acme", DocumentID: "d", Version: 2}, false},
		{"document.accepted", accepted, IgnoredEvent{Type: events.TypeDocumentAccepted}, false},
		{"document.deleted", deleted, IgnoredEvent{Type: events.TypeDocumentDeleted}, false},
		{"a type added later", withHeader(good, events.HeaderType, "tributary.document.archived"), IgnoredEvent{Type: "tributary.document.archived"}, false},
		{"another type with a broken envelope", withHeader(accepted, events.HeaderTenantID, ""), IgnoredEvent{Type: events.TypeDocumentAccepted}, false},
		{"bad JSON", badJSON, nil, true},
		{"payload tenant differs", otherTenant, nil, true},
		{"no tenantid header", withHeader(good, events.HeaderTenantID, ""), nil, true},
		{"wrong specversion", withHeader(good, events.HeaderSpecVersion, "0.3"), nil, true},
		{"no ce_type", withHeader(good, events.HeaderType, ""), nil, true},
		{"not an event", kafka.Message{Key: []byte("d"), Value: []byte("junk")}, nil, true},
	}
	for _, tt := range tests {
		got, err := DecodeDocumentEvent(ctx, tt.msg)
		if tt.permanent {
			if !kafkatransport.IsPermanent(err) || !errors.Is(err, ErrInvalid) {
				t.Errorf("DecodeDocumentEvent(%s) = %v, %v; want a permanent ErrInvalid", tt.name, got, err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("DecodeDocumentEvent(%s) = %#v, %v; want %#v", tt.name, got, err, tt.want)
		}
	}
}

// outcomeRecorder is a Service middleware that keeps MarkIndexed's results.
type outcomeRecorder struct {
	Service
	mu  sync.Mutex
	got []Result
}

func (r *outcomeRecorder) MarkIndexed(ctx context.Context, tenant, id string, version int) (Result, error) {
	res, err := r.Service.MarkIndexed(ctx, tenant, id, version)
	if err == nil {
		r.mu.Lock()
		r.got = append(r.got, Result{DocumentID: tenant + "/" + res.DocumentID, Version: res.Version, Status: res.Status})
		r.mu.Unlock()
	}
	return res, err
}

// wait returns the results once there are at least n, failing the test
// after timeout.
func (r *outcomeRecorder) wait(t *testing.T, n int, timeout time.Duration) []Result {
	t.Helper()
	var got []Result
	eventually.NoError(t, strconv.Itoa(n)+" MarkIndexed results", timeout, func() error {
		r.mu.Lock()
		got = slices.Clone(r.got)
		r.mu.Unlock()
		if len(got) < n {
			return fmt.Errorf("%d results: %+v", len(got), got)
		}
		return nil
	})
	return got
}

func TestKafkaDocumentIndexed(t *testing.T) {
	s := newKafkaStack(t, DefaultMaxDocumentSize)
	rec := &outcomeRecorder{Service: s.svc}
	// An instance id of its own, so runs against a shared cluster do not
	// meet in one group.
	group := DocumentsGroup(cluster.Name(t, "i"))
	sub := NewDocumentsSubscriber(cluster.Brokers(), group, s.topics.Documents, s.pub, MakeEndpoints(rec),
		kafkatransport.SubscriberRetry(3, 10*time.Millisecond, 50*time.Millisecond))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- sub.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("subscriber Run: %v", err)
		}
	}()

	get := func(key, id string) (int, Info) {
		t.Helper()
		resp, b := httpCase{method: "GET", path: "/v1/documents/" + id, key: key}.do(t, s.srv)
		var info Info
		if resp.StatusCode == 200 {
			if err := json.Unmarshal(b, &info); err != nil {
				t.Fatalf("GET %s: %q: %v", id, b, err)
			}
		}
		return resp.StatusCode, info
	}
	want := func(step string, version int, status string, indexed int) Info {
		t.Helper()
		code, info := get("acme-admin", "handbook")
		if code != 200 || info.Version != version || info.Status != status || info.IndexedVersion != indexed {
			t.Fatalf("%s: GET = %d %+v, want version %d %s with indexed_version %d", step, code, info, version, status, indexed)
		}
		return info
	}
	post := func(content string, version int) {
		t.Helper()
		status, res := s.post("acme-admin", "application/json", jsonBody(map[string]any{"document_id": "handbook", "content": content}))
		if status != 202 || res["version"] != float64(version) {
			t.Fatalf("POST = %d %v, want version %d", status, res, version)
		}
	}
	docs := s.topics.Documents

	// Version 1 is published (its document.accepted, on the topic the
	// subscriber reads, is skipped) and reads as active until retrieve
	// announces it.
	post("first text", 1)
	want("published", 1, StatusActive, 0)
	cluster.Produce(t, indexedEvent(t, docs, "acme", "handbook", 1))
	rec.wait(t, 1, 15*time.Second)
	first := want("announced", 1, StatusIndexed, 1)

	// A duplicate (retrieve re-publishing after a crash) changes nothing.
	cluster.Produce(t, indexedEvent(t, docs, "acme", "handbook", 1))
	rec.wait(t, 2, 15*time.Second)
	if again := want("duplicate", 1, StatusIndexed, 1); !again.IndexedAt.Equal(first.IndexedAt) {
		t.Fatalf("a duplicate moved indexed_at from %v to %v", first.IndexedAt, again.IndexedAt)
	}

	// Version 2 is pending indexing: the document is active, version 1 is
	// what searches find.
	post("second text", 2)
	want("version 2 published", 2, StatusActive, 1)

	// In one partition (key handbook), in this order: an event of another
	// type with a broken envelope (skipped, not our business), a malformed
	// document.indexed (dead-lettered), another tenant's document of the
	// same id (unknown here), version 2, and a late version 1 (stale).
	// Elsewhere: a document this instance never saw.
	accepted, err := events.Marshal(events.WithTenant(context.Background(), "acme"), "test/other", events.DocumentAccepted{
		DocumentID: "handbook", TenantID: "acme", Version: 9, ContentType: "text/plain", ContentHash: "sha256:00"})
	if err != nil {
		t.Fatal(err)
	}
	accepted = withHeader(accepted, events.HeaderTenantID, "")
	accepted.Topic = docs
	malformed := indexedEvent(t, docs, "acme", "handbook", 2)
	malformed.Value = []byte(`{"document_id":"handbook","tenant_id":"acme","version":"2"}`)
	cluster.Produce(t,
		accepted,
		malformed,
		indexedEvent(t, docs, "globex", "handbook", 1),
		indexedEvent(t, docs, "acme", "handbook", 2),
		indexedEvent(t, docs, "acme", "handbook", 1),
		indexedEvent(t, docs, "acme", "ghost", 1),
	)
	got := rec.wait(t, 6, 15*time.Second)
	var handbook, others []Result
	for _, r := range got {
		if r.DocumentID == "acme/handbook" || r.DocumentID == "globex/handbook" {
			handbook = append(handbook, r)
		} else {
			others = append(others, r)
		}
	}
	wantHandbook := []Result{
		{"acme/handbook", 1, ResultIndexed},
		{"acme/handbook", 1, ResultDuplicate},
		{"globex/handbook", 1, ResultUnknown},
		{"acme/handbook", 2, ResultIndexed},
		{"acme/handbook", 1, ResultStale},
	}
	if !slices.Equal(handbook, wantHandbook) || !slices.Equal(others, []Result{{"acme/ghost", 1, ResultUnknown}}) {
		t.Fatalf("MarkIndexed results = %+v, want %+v then acme/ghost unknown", got, wantHandbook)
	}
	want("version 2 announced, then version 1 late", 2, StatusIndexed, 2)
	if code, _ := get("acme-admin", "ghost"); code != 404 {
		t.Fatalf("GET of a document known only from an announcement = %d, want 404", code)
	}
	if code, _ := get("globex-root", "handbook"); code != 404 {
		t.Fatalf("GET by globex after its announcement = %d, want 404", code)
	}
	if _, ok := s.store.Get("acme", "ghost"); ok {
		t.Fatalf("an announcement for an unknown document created a record")
	}

	// Only the malformed document.indexed was dead-lettered, at once; it
	// preceded messages that are handled, so it is already there.
	dead := cluster.ReadAll(t, events.DLQ(docs))
	if len(dead) != 1 {
		t.Fatalf("%d dead letters, want 1 (the malformed document.indexed)", len(dead))
	}
	d := dead[0]
	if string(d.Key) != "handbook" || !slices.Equal(d.Value, malformed.Value) ||
		kafkatest.Header(d, kafkatransport.DLQHeaderReason) != kafkatransport.ReasonPermanent ||
		kafkatest.Header(d, kafkatransport.DLQHeaderAttempts) != "1" ||
		kafkatest.Header(d, kafkatransport.DLQHeaderGroup) != group ||
		kafkatest.Header(d, kafkatransport.DLQHeaderTopic) != docs {
		t.Fatalf("dead letter = key %q value %q headers %v", d.Key, d.Value, d.Headers)
	}
}

func TestDocumentsGroup(t *testing.T) {
	for id, want := range map[string]string{"": "ingest.documents", "eu-1": "ingest.documents.eu-1"} {
		if got := DocumentsGroup(id); got != want {
			t.Errorf("DocumentsGroup(%q) = %q, want %q", id, got, want)
		}
	}
}
