package kafkatransport_test

import (
	"context"
	"encoding/binary"
	"os"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/tributary-rag/tributary/pkg/events"
	kt "github.com/tributary-rag/tributary/pkg/kafkatransport"
)

// benchEvent builds a small real event (a 64-byte answer delta) whose value
// is prefixed by nothing; the send time travels in a header.
func benchEvent(b *testing.B, topic string, key string, seq int) kafka.Message {
	m, err := events.Marshal(events.WithTenant(context.Background(), "acme"), "tributary/bench",
		events.AnswerDelta{RequestID: key, TenantID: "acme", Seq: seq, Text: "a token of about sixty-four bytes of generated answer text"})
	if err != nil {
		b.Fatal(err)
	}
	m.Topic = topic
	return m
}

// benchBatchTimeout is the Publisher batch timeout under test:
// TRIBUTARY_BENCH_BATCH_TIMEOUT (a duration) or the default.
func benchBatchTimeout() time.Duration {
	if d, err := time.ParseDuration(os.Getenv("TRIBUTARY_BENCH_BATCH_TIMEOUT")); err == nil {
		return d
	}
	return kt.DefaultBatchTimeout
}

// benchEnvInt reads a positive integer setting from the environment.
func benchEnvInt(name string, def int) int {
	if n, err := strconv.Atoi(os.Getenv(name)); err == nil && n > 0 {
		return n
	}
	return def
}

// benchTracing returns the tracer options under test from
// TRIBUTARY_BENCH_TRACING: "noop" (what a service gets with tracing off),
// "sdk" (every span sampled and recorded, none exported); unset: none.
func benchTracing(b *testing.B) (kt.PublisherOption, kt.SubscriberOption) {
	var tp trace.TracerProvider
	switch os.Getenv("TRIBUTARY_BENCH_TRACING") {
	case "noop":
		tp = noop.NewTracerProvider()
	case "sdk":
		sdk := sdktrace.NewTracerProvider()
		b.Cleanup(func() { _ = sdk.Shutdown(context.Background()) })
		tp = sdk
	}
	return kt.PublisherTracer(tp), kt.SubscriberTracer(tp)
}

func stamp(m *kafka.Message) {
	var ts [8]byte
	binary.BigEndian.PutUint64(ts[:], uint64(time.Now().UnixNano()))
	m.Headers = append(m.Headers, kafka.Header{Key: "bench_sent", Value: ts[:]})
}

func sentAt(m kafka.Message) time.Time {
	for _, h := range m.Headers {
		if h.Key == "bench_sent" && len(h.Value) == 8 {
			return time.Unix(0, int64(binary.BigEndian.Uint64(h.Value)))
		}
	}
	return time.Time{}
}

// BenchmarkProduceToHandlerLatency sends b.N events at 1,000 per second
// (each a synchronous Publisher write from its own goroutine, RequireAll,
// 2 ms batch timeout) to a 3-partition topic and measures the time from
// just before the write to the moment the Subscriber's endpoint runs. Run:
//
//	go test -run '^$' -bench ProduceToHandlerLatency -benchtime 5000x ./pkg/kafkatransport
//
// with TRIBUTARY_BENCH_TRACING=noop or sdk to measure tracing's cost.
func BenchmarkProduceToHandlerLatency(b *testing.B) {
	const rate = 1000
	topic := cluster.Topic(b, 3)
	pubTracer, subTracer := benchTracing(b)
	pub := kt.NewPublisher(cluster.Brokers(), kt.PublisherBatchTimeout(benchBatchTimeout()), pubTracer)
	defer pub.Close()

	var mu sync.Mutex
	lat := make([]time.Duration, 0, b.N)
	got := make(chan struct{}, b.N)
	sub := kt.NewSubscriber(kt.SubscriberConfig{Brokers: cluster.Brokers(), Group: cluster.Group(b), Topic: topic, Producer: pub},
		func(ctx context.Context, req any) (any, error) {
			d := time.Since(sentAt(req.(kt.Event).Message))
			mu.Lock()
			lat = append(lat, d)
			mu.Unlock()
			got <- struct{}{}
			return nil, nil
		}, kt.DecodeEvent, nil, subTracer)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- sub.Run(ctx) }()
	defer func() {
		cancel()
		<-done
	}()
	// Warm up: the group join and first fetches are not part of the
	// steady state.
	for i := 0; i < 3; i++ {
		m := benchEvent(b, topic, "warm", i)
		stamp(&m)
		if err := pub.WriteMessages(context.Background(), m); err != nil {
			b.Fatal(err)
		}
	}
	for i := 0; i < 3; i++ {
		select {
		case <-got:
		case <-time.After(30 * time.Second):
			b.Fatal("warm-up events never arrived")
		}
	}
	mu.Lock()
	lat = lat[:0]
	mu.Unlock()

	msgs := make([]kafka.Message, b.N)
	for i := range msgs {
		msgs[i] = benchEvent(b, topic, "req-"+string(rune('a'+i%26)), i)
	}
	var werr atomic.Value
	acks := make([]time.Duration, len(msgs))
	b.ResetTimer()
	tick := time.NewTicker(time.Second / rate)
	var wg sync.WaitGroup
	for i := range msgs {
		<-tick.C
		wg.Add(1)
		go func(i int, m kafka.Message) {
			defer wg.Done()
			stamp(&m)
			t0 := time.Now()
			if err := pub.WriteMessages(context.Background(), m); err != nil {
				werr.Store(err)
			}
			acks[i] = time.Since(t0)
		}(i, msgs[i])
	}
	tick.Stop()
	for i := 0; i < b.N; i++ {
		select {
		case <-got:
		case <-time.After(30 * time.Second):
			b.Fatalf("only %d of %d events arrived", i, b.N)
		}
	}
	b.StopTimer()
	wg.Wait()
	if err, _ := werr.Load().(error); err != nil {
		b.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	q := func(p float64) float64 { return float64(lat[int(p*float64(len(lat)-1))]) / 1e6 }
	b.ReportMetric(q(0.50), "p50-ms")
	b.ReportMetric(q(0.99), "p99-ms")
	b.ReportMetric(q(1), "max-ms")
	sort.Slice(acks, func(i, j int) bool { return acks[i] < acks[j] })
	b.ReportMetric(float64(acks[len(acks)/2])/1e6, "ack-p50-ms")
	b.ReportMetric(float64(acks[len(acks)*99/100])/1e6, "ack-p99-ms")
	b.ReportMetric(0, "ns/op")
}

// BenchmarkThroughput produces b.N events (16 concurrent synchronous
// writers, 100-event writes) to a 3-partition topic and consumes them with
// a Subscriber (no-op endpoint, commits included); it reports produced and
// end-to-end handled events per second. Run:
//
//	go test -run '^$' -bench Throughput -benchtime 200000x ./pkg/kafkatransport
func BenchmarkThroughput(b *testing.B) {
	topic := cluster.Topic(b, 3)
	pubTracer, subTracer := benchTracing(b)
	pub := kt.NewPublisher(cluster.Brokers(), kt.PublisherBatchTimeout(benchBatchTimeout()), pubTracer,
		kt.PublisherWriter(func(w *kafka.Writer) { w.BatchSize = benchEnvInt("TRIBUTARY_BENCH_BATCH_SIZE", 100) }))
	defer pub.Close()
	var handled atomic.Int64
	all := make(chan struct{})
	n := int64(b.N)
	sub := kt.NewSubscriber(kt.SubscriberConfig{Brokers: cluster.Brokers(), Group: cluster.Group(b), Topic: topic, Producer: pub},
		func(ctx context.Context, req any) (any, error) {
			if handled.Add(1) == n {
				close(all)
			}
			return nil, nil
		}, kt.DecodeEvent, nil, kt.SubscriberQueueSize(1024), subTracer)
	msgs := make([]kafka.Message, b.N)
	for i := range msgs {
		msgs[i] = benchEvent(b, topic, "req-"+string(rune('a'+i%26)), i)
	}
	b.ResetTimer()
	start := time.Now()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- sub.Run(ctx) }()
	defer func() {
		cancel()
		<-done
	}()
	writers, batch := benchEnvInt("TRIBUTARY_BENCH_WRITERS", 16), benchEnvInt("TRIBUTARY_BENCH_WRITE_SIZE", 100)
	var next atomic.Int64
	var wg sync.WaitGroup
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(int64(batch))) - batch
				if i >= len(msgs) {
					return
				}
				if err := pub.WriteMessages(context.Background(), msgs[i:min(i+batch, len(msgs))]...); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	produced := time.Since(start)
	select {
	case <-all:
	case <-time.After(2 * time.Minute):
		b.Fatalf("handled %d of %d", handled.Load(), n)
	}
	consumed := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(n)/produced.Seconds(), "produced/s")
	b.ReportMetric(float64(n)/consumed.Seconds(), "handled/s")
}
