package kafkatransport_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/segmentio/kafka-go"

	"github.com/tributary-rag/tributary/pkg/events"
	"github.com/tributary-rag/tributary/pkg/eventually"
	"github.com/tributary-rag/tributary/pkg/kafkatest"
	kt "github.com/tributary-rag/tributary/pkg/kafkatransport"
)

// countingProducer counts WriteMessages calls and their sizes, and fails
// writes of more than failAbove messages (0: never).
type countingProducer struct {
	kt.Producer
	failAbove int

	mu      sync.Mutex
	writes  int
	largest int
	failed  int
}

func (p *countingProducer) WriteMessages(ctx context.Context, msgs ...kafka.Message) error {
	p.mu.Lock()
	p.writes++
	p.largest = max(p.largest, len(msgs))
	fail := p.failAbove > 0 && len(msgs) > p.failAbove
	if fail {
		p.failed++
	}
	p.mu.Unlock()
	if fail {
		return errors.New("injected produce failure")
	}
	return p.Producer.WriteMessages(ctx, msgs...)
}

func (p *countingProducer) stats() (writes, largest, failed int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.writes, p.largest, p.failed
}

// produceDeltas writes n deltas per key, in order, before any consumer
// runs, so the partitions' queues fill and batches form.
func produceDeltas(t *testing.T, topic string, keys []string, n int) {
	t.Helper()
	var msgs []kafka.Message
	for i := 0; i < n; i++ {
		for _, k := range keys {
			m, err := events.Marshal(events.WithTenant(context.Background(), "acme"), "s", delta(k, i))
			if err != nil {
				t.Fatal(err)
			}
			m.Topic = topic
			msgs = append(msgs, m)
		}
	}
	cluster.Produce(t, msgs...)
}

// echoEncoder writes each delta to out.
func echoEncoder(out string) kt.EncodeResponseFunc {
	return func(ctx context.Context, resp any) ([]kafka.Message, error) {
		m, err := events.Marshal(ctx, "tributary/echo", resp.(*events.AnswerDelta))
		m.Topic = out
		return []kafka.Message{m}, err
	}
}

// checkOrder reports keys whose sequence is not 0, 1, ..., n-1.
func checkOrder(t *testing.T, what string, seen map[string][]int, keys []string, n int) {
	t.Helper()
	for _, k := range keys {
		got := seen[k]
		if len(got) != n {
			t.Errorf("%s: key %s has %d messages, want %d", what, k, len(got), n)
			continue
		}
		for i, seq := range got {
			if seq != i {
				t.Errorf("%s: key %s message %d has seq %d (out of order)", what, k, i, seq)
				break
			}
		}
	}
}

// TestBatchOrderOutputsMetrics runs output batching (endpoint per message,
// one write per batch) and a BatchEndpoint over two partitions: each key's
// messages are served and their outputs written in order, batches really
// form (fewer writes than messages), every message is committed, and the
// metrics count messages, not batches.
func TestBatchOrderOutputsMetrics(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		batch bool // use a BatchEndpoint
	}{
		{"output batching", false},
		{"batch endpoint", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			in, out := cluster.Topic(t, 2), cluster.Topic(t, 2)
			group := cluster.Group(t)
			keys := []string{"a", "b", "c", "d"}
			const perKey = 60
			produceDeltas(t, in, keys, perKey)

			prod := &countingProducer{Producer: newPublisher(t)}
			reg := prometheus.NewRegistry()
			metrics, err := kt.NewMetrics(reg)
			if err != nil {
				t.Fatal(err)
			}
			var mu sync.Mutex
			seen := map[string][]int{}
			var batchSizes []int
			var ctxErrs int
			serve := func(ctx context.Context, req any) any {
				d := req.(kt.Event).Payload.(*events.AnswerDelta)
				if events.Tenant(ctx) != "acme" {
					ctxErrs++
				}
				seen[d.RequestID] = append(seen[d.RequestID], d.Seq)
				return d
			}
			e := func(ctx context.Context, req any) (any, error) {
				mu.Lock()
				defer mu.Unlock()
				return serve(ctx, req), nil
			}
			opts := []kt.SubscriberOption{kt.SubscriberMetrics(metrics), kt.SubscriberBatch(16, 20*time.Millisecond)}
			if tt.batch {
				opts = append(opts, kt.SubscriberBatchEndpoint(func(_ context.Context, batch []kt.BatchRequest) ([]any, error) {
					mu.Lock()
					defer mu.Unlock()
					batchSizes = append(batchSizes, len(batch))
					resps := make([]any, len(batch))
					for i, r := range batch {
						resps[i] = serve(r.Ctx, r.Request)
					}
					return resps, nil
				}))
			}
			sub := kt.NewSubscriber(kt.SubscriberConfig{Brokers: cluster.Brokers(), Group: group, Topic: in, Producer: prod},
				e, kt.DecodeEvent, echoEncoder(out), opts...)
			r := start(t, sub)
			total := len(keys) * perKey
			outs := cluster.ReadN(t, out, total, 30*time.Second)
			eventually.True(t, "commits", 10*time.Second, func() bool {
				return testutil.ToFloat64(metrics.Committed.WithLabelValues(in, group)) == float64(total)
			})
			r.stop(t)

			mu.Lock()
			defer mu.Unlock()
			if ctxErrs > 0 {
				t.Errorf("%d requests served without their event's tenant in ctx", ctxErrs)
			}
			checkOrder(t, "served", seen, keys, perKey)
			outSeen := map[string][]int{}
			for _, m := range outs {
				_, p, err := events.Decode(m)
				if err != nil {
					t.Fatalf("output: %v", err)
				}
				d := p.(*events.AnswerDelta)
				outSeen[d.RequestID] = append(outSeen[d.RequestID], d.Seq)
			}
			checkOrder(t, "output", outSeen, keys, perKey)
			writes, largest, _ := prod.stats()
			if writes >= total || largest < 2 {
				t.Errorf("%d writes for %d messages, largest %d: no batches formed", writes, total, largest)
			}
			if tt.batch {
				n, big := 0, 0
				for _, s := range batchSizes {
					n += s
					big = max(big, s)
				}
				if n != total || big < 2 || big > 16 {
					t.Errorf("batch endpoint served %d requests in batches %v, want %d in batches of 2..16", n, batchSizes, total)
				}
			}
			if got := testutil.ToFloat64(metrics.Consumed.WithLabelValues(in, group)); got != float64(total) {
				t.Errorf("consumed = %v, want %d", got, total)
			}
			if got := histogramCount(t, reg, in, group, "ok"); got != total {
				t.Errorf("handler latency observations (ok) = %d, want %d (one per message)", got, total)
			}
		})
	}
}

// histogramCount returns how many observations reg's handler histogram
// has for one outcome.
func histogramCount(t *testing.T, reg *prometheus.Registry, topic, group, outcome string) int {
	t.Helper()
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, f := range fams {
		if f.GetName() != "tributary_kafka_handler_seconds" {
			continue
		}
		for _, m := range f.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["topic"] == topic && labels["group"] == group && labels["outcome"] == outcome {
				n += int(m.GetHistogram().GetSampleCount())
			}
		}
	}
	return n
}

// TestBatchPoisonDeadLettersAlone puts an undecodable message and one the
// endpoint refuses permanently inside batches of one partition: each goes
// to the DLQ alone, every other message is served and written in order,
// and everything is committed. A third case fails every multi-message
// write, so each batch falls back to one message at a time.
func TestBatchPoisonDeadLettersAlone(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		batch     bool
		failAbove int
	}{
		{"output batching", false, 0},
		{"batch endpoint", true, 0},
		{"failing batch writes", false, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			in, out := cluster.Topic(t, 1), cluster.Topic(t, 1)
			group := cluster.Group(t)
			const n = 40
			var msgs []kafka.Message
			for i := 0; i < n; i++ {
				m, _ := events.Marshal(events.WithTenant(context.Background(), "acme"), "s", delta("r", i))
				m.Topic = in
				if i == 10 {
					m = kafka.Message{Topic: in, Key: []byte("r"), Value: []byte("\x00\xffnot json")}
				}
				msgs = append(msgs, m)
			}
			cluster.Produce(t, msgs...)
			const refused = 25 // the endpoint refuses this seq permanently

			prod := &countingProducer{Producer: newPublisher(t), failAbove: tt.failAbove}
			metrics := newMetrics(t)
			var mu sync.Mutex
			var served []int
			serve := func(req any) (any, error) {
				d := req.(kt.Event).Payload.(*events.AnswerDelta)
				if d.Seq == refused {
					return nil, kt.Permanent(fmt.Errorf("seq %d refused", d.Seq))
				}
				return d, nil
			}
			e := func(_ context.Context, req any) (any, error) {
				resp, err := serve(req)
				if err == nil {
					mu.Lock()
					served = append(served, resp.(*events.AnswerDelta).Seq)
					mu.Unlock()
				}
				return resp, err
			}
			opts := []kt.SubscriberOption{kt.SubscriberMetrics(metrics), kt.SubscriberBatch(8, 20*time.Millisecond),
				kt.SubscriberRetry(2, time.Millisecond, time.Millisecond)}
			if tt.batch {
				opts = append(opts, kt.SubscriberBatchEndpoint(func(_ context.Context, batch []kt.BatchRequest) ([]any, error) {
					resps := make([]any, len(batch))
					for i, r := range batch {
						resp, err := serve(r.Request)
						if err != nil {
							resp = failed{err}
						} else {
							mu.Lock()
							served = append(served, resp.(*events.AnswerDelta).Seq)
							mu.Unlock()
						}
						resps[i] = resp
					}
					return resps, nil
				}))
			}
			sub := kt.NewSubscriber(kt.SubscriberConfig{Brokers: cluster.Brokers(), Group: group, Topic: in, Producer: prod},
				e, kt.DecodeEvent, echoEncoder(out), opts...)
			r := start(t, sub)
			outs := cluster.ReadN(t, out, n-2, 30*time.Second)
			dl := cluster.ReadN(t, events.DLQ(in), 2, 30*time.Second)
			eventually.True(t, "commits", 10*time.Second, func() bool {
				return testutil.ToFloat64(metrics.Committed.WithLabelValues(in, group)) == n
			})
			r.stop(t)

			if len(dl) != 2 {
				t.Fatalf("DLQ has %d messages, want 2", len(dl))
			}
			if got := kafkatest.Header(dl[0], kt.DLQHeaderOffset); got != "10" {
				t.Errorf("first dead letter is offset %s, want 10", got)
			}
			if got := kafkatest.Header(dl[1], kt.DLQHeaderOffset); got != "25" {
				t.Errorf("second dead letter is offset %s, want 25", got)
			}
			for _, d := range dl {
				if got := kafkatest.Header(d, kt.DLQHeaderReason); got != kt.ReasonPermanent {
					t.Errorf("dead letter reason %q, want permanent", got)
				}
			}
			var outSeqs []int
			for _, m := range outs {
				_, p, err := events.Decode(m)
				if err != nil {
					t.Fatalf("output: %v", err)
				}
				outSeqs = append(outSeqs, p.(*events.AnswerDelta).Seq)
			}
			var want []int
			for i := 0; i < n; i++ {
				if i != 10 && i != refused {
					want = append(want, i)
				}
			}
			if fmt.Sprint(outSeqs) != fmt.Sprint(want) {
				t.Errorf("outputs %v, want %v", outSeqs, want)
			}
			// Served may repeat a message (a failed batch is served again
			// one by one), but never goes backwards past a committed point
			// and ends with every good message.
			mu.Lock()
			defer mu.Unlock()
			last := map[int]bool{}
			for _, s := range served {
				last[s] = true
			}
			if len(last) != n-2 {
				t.Errorf("served %d distinct messages, want %d", len(last), n-2)
			}
			if got := testutil.ToFloat64(metrics.DeadLettered.WithLabelValues(in, group, kt.ReasonPermanent)); got != 2 {
				t.Errorf("dead-lettered metric = %v, want 2", got)
			}
			if _, _, failedWrites := prod.stats(); tt.failAbove > 0 && failedWrites == 0 {
				t.Error("no batch write failed: the fallback was not exercised")
			}
		})
	}
}

// failed is a response that failed (endpoint.Failer).
type failed struct{ err error }

func (f failed) Failed() error { return f.err }

// TestBatchKilledBeforeCommitRedelivers applies a batch to an idempotent
// sink and is killed before its outputs and commit: the next member gets
// the whole uncommitted batch again, and the sink holds each effect once.
func TestBatchKilledBeforeCommitRedelivers(t *testing.T) {
	t.Parallel()
	in := cluster.Topic(t, 1)
	group := cluster.Group(t)
	pub := newPublisher(t)
	const n = 12
	produceDeltas(t, in, []string{"r"}, n)

	sink := &idempotentSink{applied: map[string]int{}}
	apply := func(batch []kt.BatchRequest) []any {
		resps := make([]any, len(batch))
		for i, r := range batch {
			ev := r.Request.(kt.Event)
			sink.apply(ev.Envelope.ID, ev.Payload.(*events.AnswerDelta).Seq)
			resps[i] = ev.Payload
		}
		return resps
	}
	perMessage := func(_ context.Context, req any) (any, error) {
		ev := req.(kt.Event)
		sink.apply(ev.Envelope.ID, ev.Payload.(*events.AnswerDelta).Seq)
		return ev.Payload, nil
	}
	firstBatch := make(chan int, 1)
	first := kt.NewSubscriber(kt.SubscriberConfig{Brokers: cluster.Brokers(), Group: group, Topic: in, Producer: pub},
		func(ctx context.Context, _ any) (any, error) { <-ctx.Done(); return nil, ctx.Err() },
		kt.DecodeEvent, nil, kt.SubscriberDrainTimeout(10*time.Millisecond),
		kt.SubscriberBatch(n, 500*time.Millisecond),
		kt.SubscriberBatchEndpoint(func(ctx context.Context, batch []kt.BatchRequest) ([]any, error) {
			apply(batch)
			select {
			case firstBatch <- len(batch):
			default:
			}
			<-ctx.Done() // killed after the effect, before the commit
			return nil, ctx.Err()
		}))
	r1 := start(t, first)
	var k int
	select {
	case k = <-firstBatch:
	case <-time.After(30 * time.Second):
		t.Fatal("first consumer never got a batch")
	}
	r1.stop(t)

	metrics := newMetrics(t)
	second := kt.NewSubscriber(kt.SubscriberConfig{Brokers: cluster.Brokers(), Group: group, Topic: in, Producer: pub},
		perMessage, kt.DecodeEvent, nil, kt.SubscriberMetrics(metrics), kt.SubscriberBatch(4, 0),
		kt.SubscriberBatchEndpoint(func(_ context.Context, batch []kt.BatchRequest) ([]any, error) { return apply(batch), nil }))
	r2 := start(t, second)
	eventually.True(t, "redelivery and commit", 30*time.Second, func() bool {
		return testutil.ToFloat64(metrics.Committed.WithLabelValues(in, group)) == n
	})
	r2.stop(t)

	sink.mu.Lock()
	defer sink.mu.Unlock()
	if k < 2 {
		t.Errorf("first batch had %d messages, want several", k)
	}
	if sink.deliveries != k+n {
		t.Errorf("deliveries = %d, want %d (the first batch of %d, then all %d again)", sink.deliveries, k+n, k, n)
	}
	if len(sink.applied) != n {
		t.Errorf("sink holds %d effects, want %d", len(sink.applied), n)
	}
	for id, v := range sink.applied {
		if v < 0 || v >= n {
			t.Errorf("sink[%s] = %d", id, v)
		}
	}
}
