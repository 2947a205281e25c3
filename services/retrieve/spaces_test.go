package retrieve

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"hash/fnv"
	"math"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/qdrant/go-client/qdrant"
	"github.com/segmentio/kafka-go"

	"github.com/tributary-rag/tributary/pkg/events"
	"github.com/tributary-rag/tributary/pkg/eventually"
	"github.com/tributary-rag/tributary/pkg/kafkatransport"
)

// Two synthetic embedding models of different spaces and dimensions: A
// hashes words into 8 dimensions, B into 5 with another hash.
const (
	modelA = "test-bm25+synth-a/8"
	modelB = "test-bm25+synth-b/5"
)

func embedA(text string) []float32 { return denseOf(text) }

func embedB(text string) []float32 {
	v := make([]float32, 5)
	for _, w := range strings.Fields(strings.ToLower(text)) {
		h := fnv.New64()
		h.Write([]byte(w))
		v[h.Sum64()%5] += 2
	}
	v[4] += 0.5
	return v
}

func cosine(a, b []float32) float64 {
	var ab, aa, bb float64
	for i := range a {
		ab += float64(a[i]) * float64(b[i])
		aa += float64(a[i]) * float64(a[i])
		bb += float64(b[i]) * float64(b[i])
	}
	return ab / math.Sqrt(aa*bb)
}

// modelChunks are d's chunk.embedded payloads as the embed service with
// model (A or B) makes them.
func modelChunks(d doc, model string) []events.ChunkEmbedded {
	cs := d.chunks()
	for i := range cs {
		cs[i].Model = model
		if model == modelA {
			cs[i].Dense = embedA(cs[i].Text)
		} else {
			cs[i].Dense = embedB(cs[i].Text)
		}
	}
	return cs
}

func denseQuery(model, text string) events.QueryEmbedded {
	q := query("t1", nil, text, 3)
	q.Model, q.Sparse = model, nil
	if model == modelA {
		q.Dense = embedA(text)
	} else {
		q.Dense = embedB(text)
	}
	return q
}

// TestModelChangeWithoutDowntime indexes documents with model A over
// Kafka, then rebuilds model B's collection from replayed chunks while
// questions keep being answered from A; the alias moves to B in one
// request once B holds A's chunks, questions of B are then answered from
// B, A's linger during the grace period and are never run against B's
// vectors, and A's collection is dropped after it.
func TestModelChangeWithoutDowntime(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	client, err := Dial(qdrantAddr, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = client.Close() })
	var rb [5]byte
	_, _ = rand.Read(rb[:])
	base := "retrieve_spaces_" + hex.EncodeToString(rb[:])
	nameA, nameB := SpaceName(base, modelA, 8), SpaceName(base, modelB, 5)
	t.Cleanup(func() {
		for _, c := range []string{nameA, nameB} {
			_ = client.DeleteCollection(context.Background(), c)
		}
	})

	topics := cluster.CreatePrefixTopics(t, cluster.Prefix(t), 1)
	pub := kafkatransport.NewPublisher(cluster.Brokers(), kafkatransport.PublisherSource(EventSource))
	clock := time.Now()
	var clockMu sync.Mutex
	spaces := NewSpaces(client, base, testDense, NewKafkaEmitter(pub, topics.Documents), WithRetireAfter(time.Hour))
	spaces.now = func() time.Time { clockMu.Lock(); defer clockMu.Unlock(); return clock }
	if err := spaces.Load(ctx); err != nil {
		t.Fatal(err)
	}
	e := MakeEndpoints(spaces)
	opts := []kafkatransport.SubscriberOption{kafkatransport.SubscriberRetry(3, 10*time.Millisecond, 50*time.Millisecond),
		kafkatransport.SubscriberReaderConfig(func(c *kafka.ReaderConfig) { c.StartOffset = kafka.FirstOffset })}
	subs := []*kafkatransport.Subscriber{
		NewChunksSubscriber(cluster.Brokers(), topics.ChunksEmbedded, pub, e, opts...),
		NewDocumentsSubscriber(cluster.Brokers(), topics.Documents, pub, e, opts...),
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
		_ = pub.Close()
	})
	produce := func(d doc, model string) {
		t.Helper()
		var msgs []kafka.Message
		for _, c := range modelChunks(d, model) {
			msgs = append(msgs, message(t, topics.ChunksEmbedded, d.tenant, c))
		}
		cluster.Produce(t, msgs...)
	}
	count := func(collection string) int {
		n, err := client.Count(ctx, &qdrant.CountPoints{CollectionName: collection, Exact: qdrant.PtrOf(true),
			Filter: &qdrant.Filter{Must: []*qdrant.Condition{qdrant.NewMatchKeyword(FieldKind, KindChunk)}}})
		if err != nil {
			return -1
		}
		return int(n)
	}
	ask := func(q events.QueryEmbedded) []events.RetrievedChunk {
		t.Helper()
		out, err := spaces.Retrieve(ctx, q)
		if err != nil {
			t.Fatalf("Retrieve: %v", err)
		}
		return out.Results
	}
	// answeredFrom checks that the best hit's score is the cosine in the
	// given model's space.
	answeredFrom := func(what string, hits []events.RetrievedChunk, q events.QueryEmbedded, embed func(string) []float32) {
		t.Helper()
		if len(hits) == 0 {
			t.Fatalf("%s: no hits", what)
		}
		if want := cosine(q.Dense, embed(hits[0].Text)); math.Abs(float64(hits[0].Score)-want) > 1e-4 {
			t.Fatalf("%s: best score %v, want %v (the cosine in its own model's space)", what, hits[0].Score, want)
		}
	}

	handbook := doc{tenant: "t1", id: "handbook", version: 1, texts: []string{"paid leave accrues monthly", "the office opens at nine"}}
	gone := doc{tenant: "t1", id: "gone", version: 1, texts: []string{"obsolete travel policy"}}
	produce(handbook, modelA)
	produce(gone, modelA)
	eventually.True(t, "model A indexed", 20*time.Second, func() bool { return count(nameA) == 3 })
	if spaces.Active() != nameA {
		t.Fatalf("active collection %q, want %q", spaces.Active(), nameA)
	}
	cluster.Produce(t, message(t, topics.Documents, "t1", events.DocumentDeleted{DocumentID: "gone", TenantID: "t1", Version: 1}))
	eventually.True(t, "deletion applied", 20*time.Second, func() bool { return count(nameA) == 2 })

	qA := denseQuery(modelA, "paid leave")
	answeredFrom("model A before the change", ask(qA), qA, embedA)

	// The rebuild: the chunks topic replayed through model B (the deleted
	// document included, as a replay has it), while a new document arrives
	// through both models.
	produce(handbook, modelB)
	eventually.True(t, "model B collection started", 20*time.Second, func() bool { return count(nameB) == 2 })
	produce(gone, modelB)
	fresh := doc{tenant: "t1", id: "fresh", version: 1, texts: []string{"new parking rules"}}
	produce(fresh, modelA)
	eventually.True(t, "fresh document in A", 20*time.Second, func() bool { return count(nameA) == 3 })

	// B is behind (no "fresh" yet): the alias stays on A, and questions of
	// either model are answered from A, B's never with its dense vector.
	if err := spaces.Checkpoint(ctx); err != nil {
		t.Fatal(err)
	}
	if spaces.Active() != nameA {
		t.Fatalf("switched to %q before B caught up", spaces.Active())
	}
	answeredFrom("model A during the rebuild", ask(qA), qA, embedA)
	qB := denseQuery(modelB, "paid leave")
	if hits := ask(qB); len(hits) != 0 {
		t.Fatalf("model B question during the rebuild got %d hits from A's collection", len(hits))
	}
	if n := testutil.ToFloat64(spaces.dropped.WithLabelValues("dense")); n != 1 {
		t.Errorf("dropped dense vectors = %v, want 1", n)
	}

	produce(fresh, modelB)
	eventually.True(t, "model B caught up", 20*time.Second, func() bool { return count(nameB) == 3 })

	// The switch: questions through the alias never fail meanwhile.
	var failures, reads atomic.Int64
	probeCtx, stopProbe := context.WithCancel(ctx)
	probeDone := make(chan struct{})
	go func() {
		defer close(probeDone)
		for probeCtx.Err() == nil {
			_, err := client.Query(probeCtx, &qdrant.QueryPoints{CollectionName: base, Limit: qdrant.PtrOf(uint64(1)),
				Query: qdrant.NewQuerySparse(sparseOf("paid leave").Indices, sparseOf("paid leave").Values), Using: qdrant.PtrOf(SparseVector)})
			if err != nil && probeCtx.Err() == nil {
				failures.Add(1)
			}
			reads.Add(1)
		}
	}()
	time.Sleep(20 * time.Millisecond)
	if err := spaces.Checkpoint(ctx); err != nil {
		t.Fatal(err)
	}
	time.Sleep(20 * time.Millisecond)
	stopProbe()
	<-probeDone
	if failures.Load() != 0 || reads.Load() == 0 {
		t.Fatalf("%d of %d queries through the alias failed during the switch", failures.Load(), reads.Load())
	}
	aliases, err := client.ListAliases(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var targets []string
	for _, a := range aliases {
		if a.GetAliasName() == base {
			targets = append(targets, a.GetCollectionName())
		}
	}
	if spaces.Active() != nameB || len(targets) != 1 || targets[0] != nameB {
		t.Fatalf("after the switch: active %q, alias %s → %v; want %s", spaces.Active(), base, targets, nameB)
	}
	answeredFrom("model B after the switch", ask(qB), qB, embedB)
	answeredFrom("model A in the grace period", ask(qA), qA, embedA)

	// A second replica that knows A's collection.
	other := NewSpaces(client, base, testDense, NewKafkaEmitter(pub, topics.Documents))
	if err := other.Load(ctx); err != nil {
		t.Fatal(err)
	}
	// After the grace period A's collection goes; a question still
	// embedded with A is answered without its dense vector.
	clockMu.Lock()
	clock = clock.Add(2 * time.Hour)
	clockMu.Unlock()
	if err := spaces.Checkpoint(ctx); err != nil {
		t.Fatal(err)
	}
	if ok, err := client.CollectionExists(ctx, nameA); err != nil || ok {
		t.Fatalf("collection A exists after its grace period: %v %v", ok, err)
	}
	if hits := ask(qA); len(hits) != 0 {
		t.Fatalf("model A question after A was dropped got %d hits from B's collection", len(hits))
	}
	// The other replica's deletions skip the collection dropped under it.
	if err := other.DeleteDocument(ctx, events.DocumentDeleted{DocumentID: "fresh", TenantID: "t1", Version: 1}); err != nil {
		t.Fatalf("DeleteDocument with a collection dropped by another replica: %v", err)
	}
	if n := count(nameB); n != 2 {
		t.Fatalf("%d chunks in B after deleting fresh, want 2", n)
	}
	// A restarted replica finds the same state.
	again := NewSpaces(client, base, testDense, NewKafkaEmitter(pub, topics.Documents))
	if err := again.Load(ctx); err != nil || again.Active() != nameB {
		t.Fatalf("reloaded: active %q, %v; want %s", again.Active(), err, nameB)
	}
}

func TestSpaceName(t *testing.T) {
	a := SpaceName("chunks", "bm25-fnv1a-v2+BAAI/bge-small-en-v1.5/384", 384)
	if !strings.HasPrefix(a, "chunks__bm25-fnv1a-v2-baai-bge-small-en-v1-5-384") || !strings.HasSuffix(a, "_384") || !collectionRE.MatchString(a) {
		t.Errorf("SpaceName = %q", a)
	}
	if b := SpaceName("chunks", "bm25-fnv1a-v2+BAAI/bge_small-en-v1.5/384", 384); a == b {
		t.Errorf("two models share collection %q", a)
	}
	long := SpaceName("c", strings.Repeat("x", 500), 1)
	if len(long) > 100 || !collectionRE.MatchString(long) {
		t.Errorf("SpaceName of a long model = %q", long)
	}
}

// TestSpacesUpgradeFromOneCollection: a collection made before spaces
// stays the active one and keeps taking its model's chunks; a new model's
// collection replaces it once it holds the same chunks.
func TestSpacesUpgradeFromOneCollection(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	client, err := Dial(qdrantAddr, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = client.Close() })
	var rb [5]byte
	_, _ = rand.Read(rb[:])
	base := "retrieve_upgrade_" + hex.EncodeToString(rb[:])
	legacy := NewIndex(client, base, testDense, WithAlias())
	if err := legacy.Ensure(ctx); err != nil {
		t.Fatal(err)
	}
	nameB := SpaceName(base, modelB, 5)
	t.Cleanup(func() {
		for _, c := range []string{base + "_v1", nameB} {
			_ = client.DeleteCollection(context.Background(), c)
		}
	})
	handbook := doc{tenant: "t1", id: "handbook", version: 1, texts: []string{"paid leave accrues monthly", "the office opens at nine"}}
	if err := legacy.UpsertMany(ctx, modelChunks(handbook, modelA)); err != nil {
		t.Fatal(err)
	}
	spaces := NewSpaces(client, base, testDense, &recorder{})
	if err := spaces.Load(ctx); err != nil {
		t.Fatal(err)
	}
	if spaces.Active() != base+"_v1" {
		t.Fatalf("active %q, want the existing %s_v1", spaces.Active(), base)
	}
	fresh := modelChunks(doc{tenant: "t1", id: "fresh", version: 1, texts: []string{"new parking rules"}}, modelA)[0]
	if _, err := spaces.IndexChunk(ctx, fresh); err != nil {
		t.Fatal(err)
	}
	if ok, _ := client.CollectionExists(ctx, SpaceName(base, modelA, 8)); ok {
		t.Fatal("a chunk of the existing collection's model made a collection of its own")
	}
	for _, c := range append(modelChunks(handbook, modelB), modelChunks(doc{tenant: "t1", id: "fresh", version: 1, texts: []string{"new parking rules"}}, modelB)...) {
		if _, err := spaces.IndexChunk(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	if err := spaces.Checkpoint(ctx); err != nil {
		t.Fatal(err)
	}
	if spaces.Active() != nameB {
		t.Fatalf("active %q after B caught up, want %s", spaces.Active(), nameB)
	}
	qB := denseQuery(modelB, "parking")
	out, err := spaces.Retrieve(ctx, qB)
	if err != nil || len(out.Results) != 3 || math.Abs(float64(out.Results[0].Score)-cosine(qB.Dense, embedB(out.Results[0].Text))) > 1e-4 {
		t.Fatalf("model B question after the switch: %v %+v; want the three chunks scored in B's space", err, out.Results)
	}
}
