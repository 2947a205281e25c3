package retrieve

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/tributary-rag/tributary/pkg/events"
	"github.com/tributary-rag/tributary/pkg/eventually"
	"github.com/tributary-rag/tributary/pkg/kafkatest"
	"github.com/tributary-rag/tributary/pkg/kafkatransport"
	"github.com/tributary-rag/tributary/pkg/tracecontext"
)

// TestIndexReplayAndNewVersion indexes a version, replays its events (the
// point count must not change and document.indexed must not repeat), then
// indexes a new version, which must replace the old one's points.
func TestIndexReplayAndNewVersion(t *testing.T) {
	h := start(t)
	v1 := doc{tenant: "acme", id: "handbook", version: 1, groups: []string{"staff"},
		texts: []string{"leave accrues monthly", "unused leave carries over", "expenses need receipts"}}
	h.produceChunks(v1)
	h.waitIndexed("acme", "handbook", 1)
	if got := h.count("acme", "handbook", 1); got != 3 {
		t.Fatalf("after v1: %d points, want 3", got)
	}

	// Replay v1 (a redelivery, or a consumer group reset), then a poison
	// chunk on the same partition: once it is dead-lettered, the replay
	// has been handled.
	h.produceChunks(v1)
	h.produceChunks(v1)
	h.poison("acme", "handbook")
	dlq := h.waitDLQ(h.topics.ChunksEmbedded, 1)
	if r := kafkatest.Header(dlq[0], kafkatransport.DLQHeaderReason); r != kafkatransport.ReasonPermanent {
		t.Errorf("poison dead-lettered with reason %q, want %q", r, kafkatransport.ReasonPermanent)
	}
	if got := h.count("acme", "handbook", 1); got != 3 {
		t.Fatalf("after the replay: %d points, want 3", got)
	}
	if n := h.indexedCount("acme", "handbook", 1); n != 1 {
		t.Fatalf("document.indexed v1 published %d times, want 1", n)
	}

	v2 := doc{tenant: "acme", id: "handbook", version: 2, groups: []string{"staff"},
		texts: []string{"leave accrues weekly", "travel needs approval"}}
	h.produceChunks(v2)
	h.waitIndexed("acme", "handbook", 2)
	if got := h.count("acme", "handbook", 1); got != 0 {
		t.Errorf("after v2: %d points of v1 remain, want 0", got)
	}
	if got := h.count("acme", "handbook", 2); got != 2 {
		t.Errorf("after v2: %d points of v2, want 2", got)
	}
	for v, want := range map[int]int{1: 1, 2: 1} {
		if n := h.indexedCount("acme", "handbook", v); n != want {
			t.Errorf("document.indexed v%d published %d times, want %d", v, n, want)
		}
	}
	// The chunks are searchable with the payload the contract names.
	res, err := h.svc.Retrieve(t.Context(), query("acme", []string{"staff"}, "weekly leave", 5))
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Results) == 0 {
		t.Fatal("no results for a query on v2's words")
	}
	top := res.Results[0]
	want := v2.chunks()[0]
	if top.ChunkID != want.ChunkID || top.DocumentID != "handbook" || top.Version != 2 || top.Text != want.Text ||
		top.Title != want.Title || top.Page != 1 || !slices.Equal(top.HeadingPath, want.HeadingPath) ||
		top.Metadata["lang"] != "en" || top.Score <= 0 {
		t.Errorf("top result = %+v, want chunk %s of v2", top, want.ChunkID)
	}
	for _, r := range res.Results {
		if r.Version != 2 {
			t.Errorf("result of version %d after v2 was indexed: %+v", r.Version, r)
		}
	}
}

// TestOutOfOrderVersions delivers an older version after a newer one was
// indexed: the old chunks must not come back.
func TestOutOfOrderVersions(t *testing.T) {
	h := start(t)
	v3 := doc{tenant: "acme", id: "policy", version: 3, texts: []string{"remote work allowed", "core hours ten to four"}}
	v2 := doc{tenant: "acme", id: "policy", version: 2, texts: []string{"remote work forbidden"}}
	h.produceChunks(v3)
	h.waitIndexed("acme", "policy", 3)
	h.produceChunks(v2)
	h.poison("acme", "policy")
	h.waitDLQ(h.topics.ChunksEmbedded, 1)
	if got := h.count("acme", "policy", 2); got != 0 {
		t.Errorf("%d points of the stale v2, want 0", got)
	}
	if got := h.count("acme", "policy", 3); got != 2 {
		t.Errorf("%d points of v3, want 2", got)
	}
	if n := h.indexedCount("acme", "policy", 2); n != 0 {
		t.Errorf("document.indexed published for the stale v2 (%d times)", n)
	}
	st, err := h.index.State(t.Context(), "acme", "policy")
	if err != nil {
		t.Fatal(err)
	}
	if st.Indexed != 3 || st.Announced != 3 {
		t.Errorf("state = %+v, want indexed and announced 3", st)
	}
}

// TestDeleteDocument deletes an indexed document; a late redelivery of its
// chunks must not bring it back, and a new version indexes again.
func TestDeleteDocument(t *testing.T) {
	h := start(t)
	v1 := doc{tenant: "acme", id: "memo", version: 1, texts: []string{"office closes friday", "bring badges"}}
	other := doc{tenant: "acme", id: "keep", version: 1, texts: []string{"office opens monday"}}
	h.produceChunks(v1)
	h.produceChunks(other)
	h.waitIndexed("acme", "memo", 1)
	h.waitIndexed("acme", "keep", 1)
	cluster.Produce(t, message(t, h.topics.Documents, "acme", events.DocumentDeleted{DocumentID: "memo", TenantID: "acme", Version: 1}))
	eventually.NoError(t, "memo's points deleted", 30*time.Second, func() error {
		if n := h.count("acme", "memo", 1); n != 0 {
			return fmt.Errorf("%d points", n)
		}
		return nil
	})
	if got := h.count("acme", "keep", 1); got != 1 {
		t.Errorf("the other document has %d points, want 1", got)
	}
	h.produceChunks(v1) // late redelivery
	h.poison("acme", "memo")
	h.waitDLQ(h.topics.ChunksEmbedded, 1)
	if got := h.count("acme", "memo", 1); got != 0 {
		t.Errorf("a redelivered chunk of the deleted version resurrected %d points", got)
	}
	v2 := doc{tenant: "acme", id: "memo", version: 2, texts: []string{"office closes thursday"}}
	h.produceChunks(v2)
	h.waitIndexed("acme", "memo", 2)
	if got := h.count("acme", "memo", 2); got != 1 {
		t.Errorf("v2 after the deletion has %d points, want 1", got)
	}
	// A redelivery of the old deletion, then a poison event on the same
	// partition to know it was handled: the newer version stays.
	bad := message(t, h.topics.Documents, "acme", events.DocumentDeleted{DocumentID: "memo", TenantID: "acme", Version: 1})
	bad.Value = []byte("{")
	cluster.Produce(t,
		message(t, h.topics.Documents, "acme", events.DocumentDeleted{DocumentID: "memo", TenantID: "acme", Version: 1}),
		bad)
	h.waitDLQ(h.topics.Documents, 1)
	if got := h.count("acme", "memo", 2); got != 1 {
		t.Errorf("a redelivered deletion of v1 left %d points of v2, want 1", got)
	}
}

func query(tenant string, groups []string, text string, topK int) events.QueryEmbedded {
	return events.QueryEmbedded{
		Query: events.Query{
			RequestID: events.NewID(), TenantID: tenant, Groups: groups, Question: text, TopK: topK,
		},
		Model:  "test-bm25",
		Sparse: sparseOf(text),
	}
}

// TestTenancyThroughKafka asks over Kafka as several askers and checks
// that each sees exactly the documents of their tenant and groups, and
// that the answer keeps the query's key, tenant, correlation and trace.
func TestTenancyThroughKafka(t *testing.T) {
	h := start(t)
	const text = "salary review schedule"
	docs := []doc{
		{tenant: "acme", id: "hr-only", version: 1, groups: []string{"hr"}, texts: []string{text + " for hr"}, dense: true},
		{tenant: "acme", id: "everyone", version: 1, texts: []string{text + " for all"}, dense: true},
		{tenant: "acme", id: "eng-only", version: 1, groups: []string{"eng"}, texts: []string{text + " for eng"}, dense: true},
		{tenant: "globex", id: "hr-only", version: 1, groups: []string{"hr"}, texts: []string{text + " at globex"}, dense: true},
	}
	for _, d := range docs {
		h.produceChunks(d)
	}
	for _, d := range docs {
		h.waitIndexed(d.tenant, d.id, 1)
	}
	tests := []struct {
		name   string
		tenant string
		groups []string
		dense  bool
		want   []string // tenant/document ids, sorted
	}{
		{"hr member", "acme", []string{"hr"}, false, []string{"acme/everyone", "acme/hr-only"}},
		{"hr and eng member, hybrid", "acme", []string{"eng", "hr"}, true, []string{"acme/eng-only", "acme/everyone", "acme/hr-only"}},
		{"no groups", "acme", nil, false, []string{"acme/everyone"}},
		{"unknown group", "acme", []string{"finance"}, true, []string{"acme/everyone"}},
		{"other tenant", "globex", []string{"hr"}, true, []string{"globex/hr-only"}},
		{"other tenant without groups", "globex", nil, false, nil},
		{"tenant with no documents", "initech", []string{"hr"}, false, nil},
	}
	type sent struct {
		q    events.QueryEmbedded
		want []string
		name string
		tp   tracecontext.TraceParent
	}
	var all []sent
	var msgs []kafka.Message
	for _, tt := range tests {
		q := query(tt.tenant, tt.groups, text, 10)
		if tt.dense {
			q.Dense = denseOf(text)
		}
		tp := tracecontext.New()
		ctx := tracecontext.WithContext(events.WithCorrelationID(events.WithTenant(t.Context(), tt.tenant), "corr-"+tt.name), tp)
		msg, err := events.Marshal(ctx, "test", q)
		if err != nil {
			t.Fatal(err)
		}
		msg.Topic = h.topics.QueriesEmbedded
		msgs = append(msgs, msg)
		all = append(all, sent{q: q, want: tt.want, name: tt.name, tp: tp})
	}
	cluster.Produce(t, msgs...)
	out := cluster.ReadN(t, h.topics.QueriesRetrieved, len(all), 30*time.Second)
	byID := map[string]kafka.Message{}
	for _, m := range out {
		byID[string(m.Key)] = m
	}
	for _, s := range all {
		t.Run(s.name, func(t *testing.T) {
			m, ok := byID[s.q.RequestID]
			if !ok {
				t.Fatalf("no query.retrieved keyed %s", s.q.RequestID)
			}
			var r events.QueryRetrieved
			env, err := events.Unmarshal(m, &r)
			if err != nil {
				t.Fatal(err)
			}
			if env.TenantID != s.q.TenantID || r.TenantID != s.q.TenantID || r.RequestID != s.q.RequestID ||
				env.CorrelationID != "corr-"+s.name || env.ID != RetrievedID(s.q.TenantID, s.q.RequestID) || env.Source != EventSource {
				t.Errorf("envelope %+v payload tenant %q request %q", env, r.TenantID, r.RequestID)
			}
			tp, err := tracecontext.Parse(env.TraceParent)
			if err != nil || tp.TraceID != s.tp.TraceID {
				t.Errorf("traceparent %q does not continue trace %s", env.TraceParent, s.tp.TraceIDString())
			}
			var got []string
			for _, res := range r.Results {
				owner := s.q.TenantID
				for _, d := range docs {
					if events.ChunkID(d.tenant, d.id, 1, 0) == res.ChunkID {
						owner = d.tenant
					}
				}
				got = append(got, owner+"/"+res.DocumentID)
			}
			sort.Strings(got)
			if !slices.Equal(got, s.want) {
				t.Errorf("results %v, want %v", got, s.want)
			}
		})
	}
}

// TestPoisonAndInvalidEvents sends events that can never be handled; each
// goes to its topic's dead-letter topic and the partition moves on.
func TestPoisonAndInvalidEvents(t *testing.T) {
	h := start(t)
	good := doc{tenant: "acme", id: "after", version: 1, texts: []string{"still indexed"}}
	forged := doc{tenant: "acme", id: "forged", version: 1, texts: []string{"forged id"}}.chunks()[0]
	forged.ChunkID = events.ChunkID("globex", "victim", 1, 0) // someone else's point id
	wrongDim := doc{tenant: "acme", id: "wrongdim", version: 1, texts: []string{"bad dense"}}.chunks()[0]
	wrongDim.Dense = []float32{1, 2, 3}
	noVector := doc{tenant: "acme", id: "novector", version: 1, texts: []string{"nothing"}}.chunks()[0]
	noVector.Sparse = nil
	garbage := kafka.Message{Topic: h.topics.ChunksEmbedded, Key: []byte("after"), Value: []byte("{not json"),
		Headers: events.NewEnvelope(events.WithTenant(t.Context(), "acme"), events.TypeChunkEmbedded, "test").Headers()}
	cluster.Produce(t,
		message(t, h.topics.ChunksEmbedded, "acme", forged),
		message(t, h.topics.ChunksEmbedded, "acme", wrongDim),
		message(t, h.topics.ChunksEmbedded, "acme", noVector),
		garbage,
	)
	h.produceChunks(good)
	h.waitIndexed("acme", "after", 1)
	dlq := h.waitDLQ(h.topics.ChunksEmbedded, 4)
	for _, m := range dlq {
		if kafkatest.Header(m, kafkatransport.DLQHeaderError) == "" || kafkatest.Header(m, kafkatransport.DLQHeaderTopic) != h.topics.ChunksEmbedded {
			t.Errorf("dead letter without reason or origin: %v", m.Headers)
		}
	}
	if n, err := h.index.CountVersion(t.Context(), "globex", "victim", 1); err != nil || n != 0 {
		t.Errorf("forged chunk id wrote %d points for another tenant (%v)", n, err)
	}
	// A query whose header tenant differs from its payload's is refused.
	q := query("globex", nil, "still indexed", 5)
	msg := message(t, h.topics.QueriesEmbedded, "globex", q)
	q.TenantID = "acme"
	spoof := message(t, h.topics.QueriesEmbedded, "acme", q)
	spoof.Headers = msg.Headers
	cluster.Produce(t, spoof)
	h.waitDLQ(h.topics.QueriesEmbedded, 1)
	if got := cluster.ReadAll(t, h.topics.QueriesRetrieved); len(got) != 0 {
		t.Errorf("a spoofed query was answered: %d events", len(got))
	}
}

// TestRetrieveLimits checks top_k's default and cap and the answer to a
// query with no vector at all.
func TestRetrieveLimits(t *testing.T) {
	h := start(t)
	// One chunk per document: the per-document limit is not under test.
	for i := range 60 {
		d := doc{tenant: "acme", id: fmt.Sprintf("many-%d", i), version: 1, texts: []string{fmt.Sprintf("common word number %d", i)}}
		for _, c := range d.chunks() {
			if _, err := h.svc.IndexChunk(t.Context(), c); err != nil {
				t.Fatalf("IndexChunk: %v", err)
			}
		}
	}
	tests := []struct {
		topK, want int
	}{{0, DefaultTopK}, {3, 3}, {500, MaxTopK}}
	for _, tt := range tests {
		res, err := h.svc.Retrieve(t.Context(), query("acme", nil, "common word", tt.topK))
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Results) != tt.want {
			t.Errorf("Retrieve(top_k %d) = %d results, want %d", tt.topK, len(res.Results), tt.want)
		}
	}
	empty := query("acme", nil, "", 5)
	empty.Sparse = nil
	res, err := h.svc.Retrieve(t.Context(), empty)
	if err != nil || res.Results == nil || len(res.Results) != 0 {
		t.Errorf("Retrieve(no vector) = %+v, %v; want no results and no error", res.Results, err)
	}
	st, err := h.index.State(t.Context(), "acme", "many-0")
	if err != nil || st.Indexed != 1 {
		t.Errorf("state after direct indexing = %+v, %v; want indexed 1", st, err)
	}
}

// TestEmptyVersion completes a version without chunks from its
// document.accepted event: the older version's points go.
func TestEmptyVersion(t *testing.T) {
	h := start(t)
	v1 := doc{tenant: "acme", id: "blank", version: 1, texts: []string{"soon to be empty"}}
	h.produceChunks(v1)
	h.waitIndexed("acme", "blank", 1)
	cluster.Produce(t, message(t, h.topics.Documents, "acme", events.DocumentAccepted{
		DocumentID: "blank", TenantID: "acme", Version: 2, ContentType: "text/plain", ContentHash: "sha256:00", ChunkCount: 0,
	}))
	h.waitIndexed("acme", "blank", 2)
	if got := h.count("acme", "blank", 1); got != 0 {
		t.Errorf("after the empty v2, %d points of v1 remain", got)
	}
}

// recorder is an Emitter that keeps what it was asked to publish.
type recorder struct {
	mu      sync.Mutex
	indexed []events.DocumentIndexed
}

func (r *recorder) Indexed(_ context.Context, d events.DocumentIndexed) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.indexed = append(r.indexed, d)
	return nil
}

// TestRestartMidVersion hands a version's chunks to two service instances
// on the same collection, as after a restart: the second has never seen
// the first chunks, yet completes the version when the last one arrives,
// and a replay of that last chunk announces nothing more.
func TestRestartMidVersion(t *testing.T) {
	h := start(t)
	d := doc{tenant: "acme", id: "split", version: 1, texts: []string{"first part", "second part", "third part"}}
	cs := d.chunks()
	before := &recorder{}
	first := NewService(h.index, before)
	for _, c := range cs[:2] {
		if res, err := first.IndexChunk(t.Context(), c); err != nil || res.Status != StatusPending {
			t.Fatalf("IndexChunk(%d) = %+v, %v; want pending", c.Index, res, err)
		}
	}
	after := &recorder{}
	second := NewService(h.index, after)
	for range 2 {
		res, err := second.IndexChunk(t.Context(), cs[2])
		if err != nil || res.Status != StatusIndexed {
			t.Fatalf("IndexChunk(last) = %+v, %v; want indexed", res, err)
		}
	}
	if len(before.indexed) != 0 || len(after.indexed) != 1 || after.indexed[0].Version != 1 || after.indexed[0].ChunkCount != 3 {
		t.Errorf("announced before %+v, after %+v; want one announcement of v1 with 3 chunks", before.indexed, after.indexed)
	}
}
