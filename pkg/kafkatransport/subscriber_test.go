package kafkatransport_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
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
	"github.com/tributary-rag/tributary/pkg/tracecontext"
)

// running is a Subscriber running in the background.
type running struct {
	cancel context.CancelFunc
	done   chan error
	once   sync.Once
}

func start(t *testing.T, s *kt.Subscriber) *running {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- s.Run(ctx) }()
	t.Cleanup(func() { r.stop(t) })
	return r
}

// stop cancels the subscriber and waits for Run to return; it is safe to
// call twice.
func (r *running) stop(t *testing.T) {
	t.Helper()
	r.once.Do(func() {
		r.cancel()
		select {
		case err := <-r.done:
			if err != nil {
				t.Errorf("Run() = %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Errorf("Run did not return within 30s of cancel")
		}
	})
}

func newPublisher(t *testing.T, opts ...kt.PublisherOption) *kt.Publisher {
	t.Helper()
	p := kt.NewPublisher(cluster.Brokers(), opts...)
	t.Cleanup(func() {
		if err := p.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return p
}

func newMetrics(t *testing.T) *kt.Metrics {
	t.Helper()
	m, err := kt.NewMetrics(prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func delta(doc string, seq int) events.AnswerDelta {
	return events.AnswerDelta{RequestID: doc, TenantID: "acme", Seq: seq, Text: fmt.Sprintf("%s-%d", doc, seq)}
}

// TestSubscriberOrderHeadersOutputs publishes three keys' streams over three
// partitions; the endpoint echoes each delta to an output topic. Each key
// arrives in order, the context carries tenant, correlation id and trace,
// outputs keep key, tenant and trace id, and inputs are committed.
func TestSubscriberOrderHeadersOutputs(t *testing.T) {
	t.Parallel()
	in, out := cluster.Topic(t, 3), cluster.Topic(t, 3)
	group := cluster.Group(t)
	pub := newPublisher(t, kt.PublisherSource("tributary/test"))
	metrics := newMetrics(t)

	const keys, perKey = 3, 30
	parent := tracecontext.New()
	ctx := tracecontext.WithContext(context.Background(), parent)
	ctx = events.WithTenant(ctx, "acme")
	ctx = events.WithCorrelationID(ctx, "corr-1")
	for k := 0; k < keys; k++ {
		var ps []events.Payload
		for i := 0; i < perKey; i++ {
			ps = append(ps, delta("req-"+strconv.Itoa(k), i))
		}
		if err := pub.Publish(ctx, in, ps...); err != nil {
			t.Fatalf("Publish: %v", err)
		}
	}

	var mu sync.Mutex
	seen := map[string][]int{}
	var ctxErrs []string
	e := func(ctx context.Context, req any) (any, error) {
		ev := req.(kt.Event)
		d := ev.Payload.(*events.AnswerDelta)
		mu.Lock()
		defer mu.Unlock()
		seen[d.RequestID] = append(seen[d.RequestID], d.Seq)
		tp, ok := tracecontext.FromContext(ctx)
		if events.Tenant(ctx) != "acme" || events.CorrelationID(ctx) != "corr-1" || !ok || tp.TraceID != parent.TraceID {
			ctxErrs = append(ctxErrs, fmt.Sprintf("ctx tenant=%q corr=%q trace=%v", events.Tenant(ctx), events.CorrelationID(ctx), tp))
		}
		return d, nil
	}
	enc := func(ctx context.Context, resp any) ([]kafka.Message, error) {
		m, err := events.Marshal(ctx, "tributary/echo", resp.(*events.AnswerDelta))
		m.Topic = out
		return []kafka.Message{m}, err
	}
	sub := kt.NewSubscriber(kt.SubscriberConfig{Brokers: cluster.Brokers(), Group: group, Topic: in, Producer: pub},
		e, kt.DecodeEvent, enc, kt.SubscriberMetrics(metrics))
	r := start(t, sub)

	outs := cluster.ReadN(t, out, keys*perKey, 30*time.Second)
	eventually.True(t, "commits", 10*time.Second, func() bool {
		return testutil.ToFloat64(metrics.Committed.WithLabelValues(in, group)) > 0 &&
			testutil.ToFloat64(metrics.Consumed.WithLabelValues(in, group)) == keys*perKey
	})
	r.stop(t)

	mu.Lock()
	defer mu.Unlock()
	for _, s := range ctxErrs[:min(3, len(ctxErrs))] {
		t.Error(s)
	}
	for k := 0; k < keys; k++ {
		key := "req-" + strconv.Itoa(k)
		got := seen[key]
		if len(got) != perKey {
			t.Errorf("key %s: %d messages, want %d", key, len(got), perKey)
			continue
		}
		for i, seq := range got {
			if seq != i {
				t.Errorf("key %s: message %d has seq %d (out of order)", key, i, seq)
				break
			}
		}
	}
	lastSeq := map[string]int{}
	for _, m := range outs {
		env, p, err := events.Decode(m)
		if err != nil {
			t.Fatalf("output: %v", err)
		}
		d := p.(*events.AnswerDelta)
		if string(m.Key) != d.RequestID {
			t.Errorf("output key %q, want %q", m.Key, d.RequestID)
		}
		if env.Source != "tributary/echo" || env.TenantID != "acme" || env.CorrelationID != "corr-1" {
			t.Errorf("output envelope %+v", env)
		}
		tp, err := tracecontext.Parse(env.TraceParent)
		if err != nil || tp.TraceID != parent.TraceID {
			t.Errorf("output traceparent %q does not continue trace %x", env.TraceParent, parent.TraceID)
		}
		if prev, ok := lastSeq[d.RequestID]; ok && d.Seq <= prev {
			t.Errorf("output %s seq %d after %d", d.RequestID, d.Seq, prev)
		}
		lastSeq[d.RequestID] = d.Seq
	}
	if got := testutil.ToFloat64(metrics.Produced.WithLabelValues(out)); got != 0 {
		// The echo publisher has no metrics; only the subscriber's do.
		t.Errorf("Produced(out) = %v on subscriber metrics", got)
	}
	if n := testutil.CollectAndCount(metrics.HandlerSeconds); n == 0 {
		t.Error("no handler latency observed")
	}
	// Every partition reported its lag, and after the last message of a
	// partition the lag is 0.
	used := map[int]bool{}
	for _, m := range cluster.ReadAll(t, in) {
		used[m.Partition] = true
	}
	if n := testutil.CollectAndCount(metrics.Lag); n != len(used) {
		t.Errorf("lag reported for %d partitions, want %d", n, len(used))
	}
	for p := range used {
		if lag := testutil.ToFloat64(metrics.Lag.WithLabelValues(in, group, strconv.Itoa(p))); lag != 0 {
			t.Errorf("partition %d lag = %v after consuming everything, want 0", p, lag)
		}
	}

	// Everything was committed: a new member of the group gets nothing.
	var again sync.Map
	sub2 := kt.NewSubscriber(kt.SubscriberConfig{Brokers: cluster.Brokers(), Group: group, Topic: in, Producer: pub},
		func(ctx context.Context, req any) (any, error) {
			again.Store(req.(kt.Event).Envelope.ID, true)
			return nil, nil
		}, kt.DecodeEvent, nil)
	r2 := start(t, sub2)
	time.Sleep(1500 * time.Millisecond)
	r2.stop(t)
	n := 0
	again.Range(func(_, _ any) bool { n++; return true })
	if n != 0 {
		t.Errorf("restarted group member got %d committed messages again", n)
	}
}

// TestPoisonMessageDeadLettered sends a message that is not a CloudEvent
// between two good ones on one partition: it goes to the DLQ at once with
// its reason and origin, and the good message after it is still handled.
func TestPoisonMessageDeadLettered(t *testing.T) {
	t.Parallel()
	in := cluster.Topic(t, 1)
	group := cluster.Group(t)
	pub := newPublisher(t)
	metrics := newMetrics(t)
	good1, err := events.Marshal(events.WithTenant(context.Background(), "acme"), "s", delta("r", 0))
	if err != nil {
		t.Fatal(err)
	}
	good2, _ := events.Marshal(events.WithTenant(context.Background(), "acme"), "s", delta("r", 1))
	good1.Topic, good2.Topic = in, in
	poison := kafka.Message{Topic: in, Key: []byte("r"), Value: []byte("\x00\xffnot json"), Headers: []kafka.Header{{Key: "x-origin", Value: []byte("fuzzer")}}}
	cluster.Produce(t, good1, poison, good2)

	var mu sync.Mutex
	var handled []int
	attempts := 0
	sub := kt.NewSubscriber(kt.SubscriberConfig{Brokers: cluster.Brokers(), Group: group, Topic: in, Producer: pub},
		func(ctx context.Context, req any) (any, error) {
			mu.Lock()
			defer mu.Unlock()
			attempts++
			handled = append(handled, req.(kt.Event).Payload.(*events.AnswerDelta).Seq)
			return nil, nil
		}, kt.DecodeEvent, nil, kt.SubscriberMetrics(metrics), kt.SubscriberRetry(5, time.Second, time.Second))
	r := start(t, sub)
	dl := cluster.ReadN(t, events.DLQ(in), 1, 30*time.Second)
	eventually.True(t, "second good message", 10*time.Second, func() bool { mu.Lock(); defer mu.Unlock(); return len(handled) == 2 })
	r.stop(t)

	if len(dl) != 1 {
		t.Fatalf("DLQ has %d messages, want 1", len(dl))
	}
	d := dl[0]
	want := map[string]string{
		kt.DLQHeaderReason:    kt.ReasonPermanent,
		kt.DLQHeaderAttempts:  "1",
		kt.DLQHeaderTopic:     in,
		kt.DLQHeaderPartition: "0",
		kt.DLQHeaderOffset:    "1",
		kt.DLQHeaderGroup:     group,
		"x-origin":            "fuzzer",
	}
	for k, v := range want {
		if got := kafkatest.Header(d, k); got != v {
			t.Errorf("DLQ header %s = %q, want %q", k, got, v)
		}
	}
	if e := kafkatest.Header(d, kt.DLQHeaderError); e == "" {
		t.Error("DLQ message has no error header")
	}
	if _, err := time.Parse(time.RFC3339Nano, kafkatest.Header(d, kt.DLQHeaderTime)); err != nil {
		t.Errorf("DLQ time header: %v", err)
	}
	if string(d.Key) != "r" || string(d.Value) != string(poison.Value) {
		t.Errorf("DLQ message key %q value %q, want the original", d.Key, d.Value)
	}
	mu.Lock()
	defer mu.Unlock()
	if fmt.Sprint(handled) != "[0 1]" {
		t.Errorf("handled %v, want [0 1]", handled)
	}
	if got := testutil.ToFloat64(metrics.DeadLettered.WithLabelValues(in, group, kt.ReasonPermanent)); got != 1 {
		t.Errorf("dead-lettered metric = %v, want 1", got)
	}
}

// TestRetries covers a transient error that clears (retried, then
// handled, no DLQ) and one that never clears (dead-lettered as exhausted
// after maxAttempts), and a permanent endpoint error (dead-lettered at once).
func TestRetries(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name         string
		failures     int   // attempts that fail before success; -1 forever
		err          error // the failure
		wantAttempts int
		wantDLQ      string // reason, or "" for none
	}{
		{"transient then ok", 2, errors.New("qdrant unavailable"), 3, ""},
		{"exhausted", -1, errors.New("qdrant unavailable"), 3, kt.ReasonExhausted},
		{"permanent", -1, kt.Permanent(errors.New("chunk too large")), 1, kt.ReasonPermanent},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			in := cluster.Topic(t, 1)
			group := cluster.Group(t)
			pub := newPublisher(t)
			metrics := newMetrics(t)
			m, _ := events.Marshal(events.WithTenant(context.Background(), "acme"), "s", delta("r", 0))
			m.Topic = in
			cluster.Produce(t, m)

			var mu sync.Mutex
			attempts, succeeded := 0, false
			sub := kt.NewSubscriber(kt.SubscriberConfig{Brokers: cluster.Brokers(), Group: group, Topic: in, Producer: pub},
				func(ctx context.Context, req any) (any, error) {
					mu.Lock()
					defer mu.Unlock()
					attempts++
					if tt.failures < 0 || attempts <= tt.failures {
						return nil, tt.err
					}
					succeeded = true
					return nil, nil
				}, kt.DecodeEvent, nil, kt.SubscriberMetrics(metrics), kt.SubscriberRetry(3, 10*time.Millisecond, 50*time.Millisecond))
			r := start(t, sub)
			eventually.True(t, "commit", 20*time.Second, func() bool {
				return testutil.ToFloat64(metrics.Committed.WithLabelValues(in, group)) == 1
			})
			r.stop(t)
			mu.Lock()
			defer mu.Unlock()
			if attempts != tt.wantAttempts {
				t.Errorf("attempts = %d, want %d", attempts, tt.wantAttempts)
			}
			if got := testutil.ToFloat64(metrics.Retried.WithLabelValues(in, group)); got != float64(tt.wantAttempts-1) {
				t.Errorf("retried metric = %v, want %d", got, tt.wantAttempts-1)
			}
			dl := cluster.ReadAll(t, events.DLQ(in))
			if tt.wantDLQ == "" {
				if len(dl) != 0 || !succeeded {
					t.Errorf("DLQ has %d messages, succeeded=%v; want 0 and true", len(dl), succeeded)
				}
				return
			}
			if len(dl) != 1 {
				t.Fatalf("DLQ has %d messages, want 1", len(dl))
			}
			if got := kafkatest.Header(dl[0], kt.DLQHeaderReason); got != tt.wantDLQ {
				t.Errorf("reason = %q, want %q", got, tt.wantDLQ)
			}
			if got := kafkatest.Header(dl[0], kt.DLQHeaderAttempts); got != strconv.Itoa(tt.wantAttempts) {
				t.Errorf("attempts header = %q, want %d", got, tt.wantAttempts)
			}
			if got := kafkatest.Header(dl[0], kt.DLQHeaderError); got != tt.err.Error() {
				t.Errorf("error header = %q, want %q", got, tt.err.Error())
			}
			if got := kafkatest.Header(dl[0], events.HeaderID); got != kafkatest.Header(m, events.HeaderID) {
				t.Errorf("DLQ ce_id = %q, want the original's", got)
			}
		})
	}
}

// idempotentSink applies each event once, keyed by ce_id, as a real sink
// does with deterministic ids and upserts.
type idempotentSink struct {
	mu         sync.Mutex
	applied    map[string]int // ce_id → value
	deliveries int
}

func (s *idempotentSink) apply(id string, v int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.deliveries++
	s.applied[id] = v
}

// TestKilledBeforeCommitRedelivers kills a consumer after its effect but
// before its commit: another member of the group gets the message again,
// and the idempotent sink keyed on ce_id holds the effect once.
func TestKilledBeforeCommitRedelivers(t *testing.T) {
	t.Parallel()
	in := cluster.Topic(t, 1)
	group := cluster.Group(t)
	pub := newPublisher(t)
	m, _ := events.Marshal(events.WithTenant(context.Background(), "acme"), "s", delta("r", 7))
	m.Topic = in
	cluster.Produce(t, m)

	sink := &idempotentSink{applied: map[string]int{}}
	applied := make(chan struct{}, 1)
	// The first consumer applies the effect, then hangs until killed.
	first := kt.NewSubscriber(kt.SubscriberConfig{Brokers: cluster.Brokers(), Group: group, Topic: in, Producer: pub},
		func(ctx context.Context, req any) (any, error) {
			ev := req.(kt.Event)
			sink.apply(ev.Envelope.ID, ev.Payload.(*events.AnswerDelta).Seq)
			applied <- struct{}{}
			<-ctx.Done()
			return nil, ctx.Err()
		}, kt.DecodeEvent, nil, kt.SubscriberDrainTimeout(10*time.Millisecond))
	r1 := start(t, first)
	select {
	case <-applied:
	case <-time.After(30 * time.Second):
		t.Fatal("first consumer never got the message")
	}
	r1.stop(t) // drain times out: the handler is cancelled, nothing is committed

	metrics := newMetrics(t)
	second := kt.NewSubscriber(kt.SubscriberConfig{Brokers: cluster.Brokers(), Group: group, Topic: in, Producer: pub},
		func(ctx context.Context, req any) (any, error) {
			ev := req.(kt.Event)
			sink.apply(ev.Envelope.ID, ev.Payload.(*events.AnswerDelta).Seq)
			return nil, nil
		}, kt.DecodeEvent, nil, kt.SubscriberMetrics(metrics))
	r2 := start(t, second)
	eventually.True(t, "redelivery and commit", 30*time.Second, func() bool {
		return testutil.ToFloat64(metrics.Committed.WithLabelValues(in, group)) == 1
	})
	r2.stop(t)

	sink.mu.Lock()
	defer sink.mu.Unlock()
	if sink.deliveries != 2 {
		t.Errorf("deliveries = %d, want 2 (redelivered after the kill)", sink.deliveries)
	}
	if len(sink.applied) != 1 || sink.applied[kafkatest.Header(m, events.HeaderID)] != 7 {
		t.Errorf("sink = %v, want the one event applied once", sink.applied)
	}
}

// TestGracefulDrain cancels a subscriber while a slow handler runs: Run
// waits for it, commits it, and does not start the queued messages, which
// the next member gets.
func TestGracefulDrain(t *testing.T) {
	t.Parallel()
	in := cluster.Topic(t, 1)
	group := cluster.Group(t)
	pub := newPublisher(t)
	var msgs []kafka.Message
	for i := 0; i < 5; i++ {
		m, _ := events.Marshal(events.WithTenant(context.Background(), "acme"), "s", delta("r", i))
		m.Topic = in
		msgs = append(msgs, m)
	}
	cluster.Produce(t, msgs...)

	var mu sync.Mutex
	var firstRun, secondRun []int
	started := make(chan struct{}, 5)
	first := kt.NewSubscriber(kt.SubscriberConfig{Brokers: cluster.Brokers(), Group: group, Topic: in, Producer: pub},
		func(ctx context.Context, req any) (any, error) {
			started <- struct{}{}
			time.Sleep(300 * time.Millisecond)
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			mu.Lock()
			firstRun = append(firstRun, req.(kt.Event).Payload.(*events.AnswerDelta).Seq)
			mu.Unlock()
			return nil, nil
		}, kt.DecodeEvent, nil, kt.SubscriberDrainTimeout(5*time.Second))
	r1 := start(t, first)
	select {
	case <-started:
	case <-time.After(30 * time.Second):
		t.Fatal("handler never started")
	}
	r1.stop(t)

	metrics := newMetrics(t)
	second := kt.NewSubscriber(kt.SubscriberConfig{Brokers: cluster.Brokers(), Group: group, Topic: in, Producer: pub},
		func(ctx context.Context, req any) (any, error) {
			mu.Lock()
			secondRun = append(secondRun, req.(kt.Event).Payload.(*events.AnswerDelta).Seq)
			mu.Unlock()
			return nil, nil
		}, kt.DecodeEvent, nil, kt.SubscriberMetrics(metrics))
	r2 := start(t, second)
	eventually.True(t, "the rest", 30*time.Second, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(firstRun)+len(secondRun) >= 5
	})
	eventually.True(t, "commit", 10*time.Second, func() bool {
		return testutil.ToFloat64(metrics.Committed.WithLabelValues(in, group)) > 0
	})
	r2.stop(t)
	mu.Lock()
	defer mu.Unlock()
	if len(firstRun) != 1 || firstRun[0] != 0 {
		t.Errorf("first member finished %v, want [0] (the in-flight message only)", firstRun)
	}
	if fmt.Sprint(secondRun) != "[1 2 3 4]" {
		t.Errorf("second member got %v, want [1 2 3 4] (no redelivery of the drained message)", secondRun)
	}
}

// TestPartitionsConcurrent blocks the handler of the first message until a
// message of another partition has been handled: with partitions served
// one after another this would never happen.
func TestPartitionsConcurrent(t *testing.T) {
	t.Parallel()
	in := cluster.Topic(t, 3)
	group := cluster.Group(t)
	pub := newPublisher(t)
	ctx := events.WithTenant(context.Background(), "acme")
	var ps []events.Payload
	for i := 0; i < 12; i++ {
		ps = append(ps, delta("req-"+strconv.Itoa(i), 0))
	}
	if err := pub.Publish(ctx, in, ps...); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	first := -1
	other := make(chan struct{})
	var otherOnce sync.Once
	released := make(chan bool, 1)
	sub := kt.NewSubscriber(kt.SubscriberConfig{Brokers: cluster.Brokers(), Group: group, Topic: in, Producer: pub},
		func(ctx context.Context, req any) (any, error) {
			p := req.(kt.Event).Message.Partition
			mu.Lock()
			isFirst := first == -1
			if isFirst {
				first = p
			}
			mine := p == first
			mu.Unlock()
			switch {
			case isFirst:
				select {
				case <-other:
					released <- true
				case <-time.After(10 * time.Second):
					released <- false
				}
			case !mine:
				otherOnce.Do(func() { close(other) })
			}
			return nil, nil
		}, kt.DecodeEvent, nil)
	r := start(t, sub)
	if ok := <-released; !ok {
		t.Error("a blocked partition held up the others")
	}
	r.stop(t)
}

// TestTwoMembersShareTopic runs two subscribers in one group: every event
// is handled (duplicates allowed only around the rebalance), and each key's
// events arrive in order at whichever member handles them.
func TestTwoMembersShareTopic(t *testing.T) {
	t.Parallel()
	in := cluster.Topic(t, 3)
	group := cluster.Group(t)
	pub := newPublisher(t)
	const keys, perKey = 6, 20
	ctx := events.WithTenant(context.Background(), "acme")
	var mu sync.Mutex
	seen := map[string]bool{}
	last := map[string]int{} // "member/key" → last seq handled there
	orderErrs := 0
	endpoint := func(member int) func(context.Context, any) (any, error) {
		return func(ctx context.Context, req any) (any, error) {
			d := req.(kt.Event).Payload.(*events.AnswerDelta)
			mu.Lock()
			defer mu.Unlock()
			k := strconv.Itoa(member) + "/" + d.RequestID
			id := d.RequestID + "/" + strconv.Itoa(d.Seq)
			// A redelivery after a rebalance may repeat what was seen;
			// a new event must come after the key's last one.
			if prev, ok := last[k]; ok && d.Seq <= prev && !seen[id] {
				orderErrs++
			}
			last[k] = d.Seq
			seen[id] = true
			return nil, nil
		}
	}
	for m := 0; m < 2; m++ {
		start(t, kt.NewSubscriber(kt.SubscriberConfig{Brokers: cluster.Brokers(), Group: group, Topic: in, Producer: pub},
			endpoint(m), kt.DecodeEvent, nil))
	}
	for i := 0; i < perKey; i++ {
		var ps []events.Payload
		for k := 0; k < keys; k++ {
			ps = append(ps, delta("req-"+strconv.Itoa(k), i))
		}
		if err := pub.Publish(ctx, in, ps...); err != nil {
			t.Fatal(err)
		}
	}
	eventually.True(t, "every event", 60*time.Second, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(seen) == keys*perKey
	})
	mu.Lock()
	defer mu.Unlock()
	if orderErrs > 0 {
		t.Errorf("%d events arrived out of order at a member", orderErrs)
	}
}

// TestDeadLetterWriteRetried: while the dead-letter topic cannot be
// written, the poison message is neither committed nor dropped; once the
// topic exists it is dead-lettered and committed.
func TestDeadLetterWriteRetried(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	in := cluster.Name(t, "t")
	if err := kt.EnsureTopics(ctx, cluster.Brokers(), kt.Security{}, kt.TopicSpec{Name: in, Partitions: 1, ReplicationFactor: 1}); err != nil {
		t.Fatal(err)
	}
	eventually.True(t, "topic", 10*time.Second, func() bool { return kt.CheckTopics(ctx, cluster.Brokers(), kt.Security{}, in) == nil })
	group := cluster.Group(t)
	metrics := newMetrics(t)
	pub := newPublisher(t, kt.PublisherMetrics(metrics))
	cluster.Produce(t, kafka.Message{Topic: in, Key: []byte("k"), Value: []byte("poison")})
	sub := kt.NewSubscriber(kt.SubscriberConfig{Brokers: cluster.Brokers(), Group: group, Topic: in, Producer: pub},
		func(ctx context.Context, req any) (any, error) { return nil, nil },
		kt.DecodeEvent, nil, kt.SubscriberMetrics(metrics), kt.SubscriberRetry(3, 10*time.Millisecond, 100*time.Millisecond))
	r := start(t, sub)
	eventually.True(t, "the poison message", 20*time.Second, func() bool {
		return testutil.ToFloat64(metrics.Consumed.WithLabelValues(in, group)) == 1
	})
	// The Publisher retries unknown topics itself for a while (2 s) before
	// a write fails outright and counts as a produce error.
	eventually.True(t, "a failed dead-letter write", 20*time.Second, func() bool {
		return testutil.ToFloat64(metrics.ProduceErrors.WithLabelValues(events.DLQ(in))) >= 1
	})
	if got := testutil.ToFloat64(metrics.Committed.WithLabelValues(in, group)); got != 0 {
		t.Fatalf("committed %v messages while the DLQ was unwritable", got)
	}
	if err := kt.EnsureTopics(ctx, cluster.Brokers(), kt.Security{}, kt.TopicSpec{Name: events.DLQ(in), Partitions: 1, ReplicationFactor: 1}); err != nil {
		t.Fatal(err)
	}
	dl := cluster.ReadN(t, events.DLQ(in), 1, 20*time.Second)
	eventually.True(t, "commit", 10*time.Second, func() bool {
		return testutil.ToFloat64(metrics.Committed.WithLabelValues(in, group)) == 1
	})
	r.stop(t)
	if string(dl[0].Value) != "poison" || kafkatest.Header(dl[0], kt.DLQHeaderReason) != kt.ReasonPermanent {
		t.Errorf("dead letter %q reason %q", dl[0].Value, kafkatest.Header(dl[0], kt.DLQHeaderReason))
	}
}
