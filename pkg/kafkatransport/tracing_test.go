package kafkatransport_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/tributary-rag/tributary/pkg/events"
	"github.com/tributary-rag/tributary/pkg/eventually"
	"github.com/tributary-rag/tributary/pkg/kafkatest"
	kt "github.com/tributary-rag/tributary/pkg/kafkatransport"
	"github.com/tributary-rag/tributary/pkg/tracecontext"
)

// spanNamed returns the one ended span named name in trace tid.
func spanNamed(t *testing.T, spans tracetest.SpanStubs, tid trace.TraceID, name string) tracetest.SpanStub {
	t.Helper()
	var found []tracetest.SpanStub
	for _, s := range spans {
		if s.Name == name && s.SpanContext.TraceID() == tid {
			found = append(found, s)
		}
	}
	if len(found) != 1 {
		t.Fatalf("%d spans %q in trace %s, want 1 (all: %v)", len(found), name, tid, spanNames(spans))
	}
	return found[0]
}

func spanNames(spans tracetest.SpanStubs) []string {
	var names []string
	for _, s := range spans {
		names = append(names, s.Name+"/"+s.SpanContext.TraceID().String()[:8])
	}
	return names
}

func attrs(s tracetest.SpanStub) map[attribute.Key]attribute.Value {
	m := map[attribute.Key]attribute.Value{}
	for _, kv := range s.Attributes {
		m[kv.Key] = kv.Value
	}
	return m
}

// TestTracingParentChain publishes an event inside a root span; a
// Subscriber handles it and its output goes to a second topic. The send
// span is the root's child, the consumer span the send span's, the
// output's send span the consumer span's, and the output's traceparent
// header names that last span, so the next hop continues the chain. With
// batching the outputs of one write each keep their own message's chain.
func TestTracingParentChain(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		opts []kt.SubscriberOption
	}{
		{"single", nil},
		{"batch", []kt.SubscriberOption{kt.SubscriberBatch(8, 50*time.Millisecond)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			exp := tracetest.NewInMemoryExporter()
			tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
			t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
			in, out := cluster.Topic(t, 1), cluster.Topic(t, 1)
			group := cluster.Group(t)
			pub := newPublisher(t, kt.PublisherTracer(tp))

			enc := func(ctx context.Context, resp any) ([]kafka.Message, error) {
				m, err := events.Marshal(ctx, "tributary/echo", resp.(*events.AnswerDelta))
				m.Topic = out
				return []kafka.Message{m}, err
			}
			e := func(_ context.Context, req any) (any, error) { return req.(kt.Event).Payload, nil }
			sub := kt.NewSubscriber(kt.SubscriberConfig{Brokers: cluster.Brokers(), Group: group, Topic: in, Producer: pub},
				e, kt.DecodeEvent, enc, append([]kt.SubscriberOption{kt.SubscriberTracer(tp)}, tc.opts...)...)

			// Two questions, two traces, written before the subscriber
			// starts so that a batch holds both.
			tracer := tp.Tracer("test")
			var roots []trace.SpanContext
			for _, req := range []string{"req-a", "req-b"} {
				ctx, root := tracer.Start(events.WithTenant(context.Background(), "acme"), "ask "+req)
				if err := pub.Publish(ctx, in, delta(req, 0)); err != nil {
					t.Fatal(err)
				}
				root.End()
				roots = append(roots, root.SpanContext())
			}
			start(t, sub)
			outs := cluster.ReadN(t, out, 2, 30*time.Second)
			var spans tracetest.SpanStubs
			eventually.True(t, "output send spans ended", 10*time.Second, func() bool {
				spans = exp.GetSpans()
				n := 0
				for _, s := range spans {
					if s.Name == "send "+out {
						n++
					}
				}
				return n == 2
			})

			for i, root := range roots {
				tid := root.TraceID()
				send := spanNamed(t, spans, tid, "send "+in)
				process := spanNamed(t, spans, tid, "process "+in)
				sendOut := spanNamed(t, spans, tid, "send "+out)
				for _, link := range []struct {
					child    tracetest.SpanStub
					parentID trace.SpanID
				}{
					{send, root.SpanID()},
					{process, send.SpanContext.SpanID()},
					{sendOut, process.SpanContext.SpanID()},
				} {
					if got := link.child.Parent.SpanID(); got != link.parentID {
						t.Errorf("trace %d: %q has parent %s, want %s", i, link.child.Name, got, link.parentID)
					}
				}
				if send.SpanKind != trace.SpanKindProducer || process.SpanKind != trace.SpanKindConsumer || sendOut.SpanKind != trace.SpanKindProducer {
					t.Errorf("kinds %v %v %v, want producer, consumer, producer", send.SpanKind, process.SpanKind, sendOut.SpanKind)
				}
				pa := attrs(process)
				for k, want := range map[attribute.Key]string{
					"messaging.system": "kafka", "messaging.operation.type": "process", "messaging.destination.name": in,
					"messaging.consumer.group.name": group, "messaging.kafka.message.key": []string{"req-a", "req-b"}[i],
				} {
					if got := pa[k].Emit(); got != want {
						t.Errorf("process %s = %q, want %q", k, got, want)
					}
				}
				if _, ok := pa["messaging.kafka.offset"]; !ok {
					t.Error("process span has no messaging.kafka.offset")
				}
				if sa := attrs(send); sa["messaging.operation.type"].Emit() != "send" || sa["messaging.destination.name"].Emit() != in {
					t.Errorf("send span attributes %v", send.Attributes)
				}
			}
			// The output on the wire names its send span, in the same
			// format as ever.
			for _, m := range outs {
				hdr := kafkatest.Header(m, tracecontext.Header)
				tpo, err := tracecontext.Parse(hdr)
				if err != nil || tpo.String() != hdr {
					t.Fatalf("output traceparent %q: %v", hdr, err)
				}
				sendOut := spanNamed(t, spans, trace.TraceID(tpo.TraceID), "send "+out)
				if sendOut.SpanContext.SpanID() != trace.SpanID(tpo.SpanID) {
					t.Errorf("output traceparent %s, want span %s", hdr, sendOut.SpanContext.SpanID())
				}
			}
		})
	}
}

// TestTracingOffKeepsHeader checks that a no-op provider changes nothing:
// no span, and the traceparent the event was built with goes out as is.
func TestTracingOffKeepsHeader(t *testing.T) {
	t.Parallel()
	topic := cluster.Topic(t, 1)
	pub := newPublisher(t, kt.PublisherTracer(noop.NewTracerProvider()))
	m, err := events.Marshal(events.WithTenant(context.Background(), "acme"), "tributary/test", delta("req-a", 0))
	if err != nil {
		t.Fatal(err)
	}
	m.Topic = topic
	want := kafkatest.Header(m, tracecontext.Header)
	if err := pub.WriteMessages(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	if got := kafkatest.Header(cluster.ReadN(t, topic, 1, 10*time.Second)[0], tracecontext.Header); got != want {
		t.Errorf("traceparent %q, want %q", got, want)
	}
}

// TestTracingDeadLetter: a message dead-lettered at once has a consumer
// span marked with the outcome, and the dead letter's send span is its
// child.
func TestTracingDeadLetter(t *testing.T) {
	t.Parallel()
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	in := cluster.Topic(t, 1) // and its dead-letter topic
	pub := newPublisher(t, kt.PublisherTracer(tp))
	e := func(context.Context, any) (any, error) { return nil, kt.Permanent(errors.New("no")) }
	sub := kt.NewSubscriber(kt.SubscriberConfig{Brokers: cluster.Brokers(), Group: cluster.Group(t), Topic: in, Producer: pub},
		e, kt.DecodeEvent, nil, kt.SubscriberTracer(tp))
	if err := pub.Publish(events.WithTenant(context.Background(), "acme"), in, delta("req-a", 0)); err != nil {
		t.Fatal(err)
	}
	start(t, sub)
	dl := cluster.ReadN(t, events.DLQ(in), 1, 30*time.Second)[0]
	var spans tracetest.SpanStubs
	eventually.True(t, "dead letter send span ended", 10*time.Second, func() bool {
		spans = exp.GetSpans()
		return len(spans) == 3
	})
	tid := spans[0].SpanContext.TraceID()
	process := spanNamed(t, spans, tid, "process "+in)
	send := spanNamed(t, spans, tid, "send "+events.DLQ(in))
	if send.Parent.SpanID() != process.SpanContext.SpanID() {
		t.Errorf("dead letter send span's parent %s, want the process span %s", send.Parent.SpanID(), process.SpanContext.SpanID())
	}
	if process.Status.Code != codes.Error || attrs(process)["error.type"].Emit() != "dead_letter" {
		t.Errorf("process span status %v, attributes %v", process.Status, process.Attributes)
	}
	if tpo, err := tracecontext.Parse(kafkatest.Header(dl, tracecontext.Header)); err != nil || trace.SpanID(tpo.SpanID) != send.SpanContext.SpanID() {
		t.Errorf("dead letter traceparent %q, want the send span", kafkatest.Header(dl, tracecontext.Header))
	}
}
