package kafkatransport

import (
	"context"
	"strconv"

	"github.com/segmentio/kafka-go"
	"go.opentelemetry.io/otel/codes"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/tributary-rag/tributary/pkg/events"
	"github.com/tributary-rag/tributary/pkg/tracecontext"
)

// scope is the instrumentation scope of the spans this package starts.
const scope = "github.com/tributary-rag/tributary/pkg/kafkatransport"

// PublisherTracer makes the Publisher start a PRODUCER span ("send
// <topic>") per message it writes, as the OpenTelemetry messaging
// conventions describe, and put that span in the message's traceparent
// header. Its parent is the span in the write's context or, when there is
// none, the message's own traceparent. A nil or no-op provider leaves
// tracing off (the default).
func PublisherTracer(tp trace.TracerProvider) PublisherOption {
	return func(c *publisherConfig) { c.tracer = tracecontext.Tracer(tp, scope) }
}

// SubscriberTracer makes the Subscriber start a CONSUMER span ("process
// <topic>") per message it handles, the child of the span in the message's
// traceparent. The handler's context carries it, so what the handler
// publishes is its child. A nil or no-op provider leaves tracing off (the
// default).
func SubscriberTracer(tp trace.TracerProvider) SubscriberOption {
	return func(s *Subscriber) { s.tracer = tracecontext.Tracer(tp, scope) }
}

// startSend starts one send span per message and returns copies of msgs
// whose traceparent names them. The caller's messages are not changed.
func startSend(ctx context.Context, t trace.Tracer, msgs []kafka.Message) ([]kafka.Message, []trace.Span) {
	out := make([]kafka.Message, len(msgs))
	spans := make([]trace.Span, len(msgs))
	ambient := trace.SpanContextFromContext(ctx).IsValid()
	for i, m := range msgs {
		pctx, opts := ctx, []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindProducer), trace.WithAttributes(
			semconv.MessagingSystemKafka, semconv.MessagingOperationTypeSend, semconv.MessagingOperationName("send"),
			semconv.MessagingDestinationName(m.Topic))}
		if len(m.Key) > 0 {
			opts = append(opts, trace.WithAttributes(semconv.MessagingKafkaMessageKey(string(m.Key))))
		}
		if !ambient {
			// A batch of a Subscriber's outputs: each message names the
			// consumer span it came from.
			if tp, err := tracecontext.Parse(header(m.Headers, tracecontext.Header)); err == nil {
				pctx = trace.ContextWithRemoteSpanContext(ctx, tp.SpanContext())
			} else {
				opts = append(opts, trace.WithNewRoot())
			}
		}
		_, spans[i] = t.Start(pctx, "send "+m.Topic, opts...)
		m.Headers = withTraceParent(m.Headers, spans[i].SpanContext())
		out[i] = m
	}
	return out, spans
}

// endSend ends the send spans, marking them failed when err says so.
func endSend(spans []trace.Span, err error) {
	for _, s := range spans {
		if err != nil {
			s.RecordError(err)
			s.SetStatus(codes.Error, err.Error())
		}
		s.End()
	}
}

// startProcess starts the consumer span of msg, whose envelope is env (ok
// false: unreadable), and returns ctx carrying it, both as the OpenTelemetry
// span and as the traceparent that events built in ctx continue.
func (s *Subscriber) startProcess(ctx context.Context, msg kafka.Message, env events.Envelope, ok bool) (context.Context, trace.Span) {
	if !ok {
		env = events.Envelope{}
	}
	ctx, span := startProcess(ctx, s.tracer, s.cfg.Group, msg, env.TraceParent, env.ID, env.Type)
	return tracecontext.WithContext(ctx, tracecontext.FromSpanContext(span.SpanContext())), span
}

// StartProcessSpan starts the CONSUMER span of msg, read in group, for a
// consumer that is not a Subscriber (the audit log's batch reader): the
// same span as SubscriberTracer's, the child of the span the message's
// traceparent header names. It returns nil when tp is nil or the no-op
// provider; the caller ends the span.
func StartProcessSpan(ctx context.Context, tp trace.TracerProvider, group string, msg kafka.Message) trace.Span {
	t := tracecontext.Tracer(tp, scope)
	if t == nil {
		return nil
	}
	_, span := startProcess(ctx, t, group, msg, header(msg.Headers, tracecontext.Header),
		header(msg.Headers, events.HeaderID), header(msg.Headers, events.HeaderType))
	return span
}

// startProcess starts a consumer span as the messaging conventions
// describe; its parent is the span traceparent names, never whatever ctx
// carries.
func startProcess(ctx context.Context, t trace.Tracer, group string, msg kafka.Message, traceparent, id, typ string) (context.Context, trace.Span) {
	opts := []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindConsumer), trace.WithAttributes(
		semconv.MessagingSystemKafka, semconv.MessagingOperationTypeProcess, semconv.MessagingOperationName("process"),
		semconv.MessagingDestinationName(msg.Topic), semconv.MessagingConsumerGroupName(group),
		semconv.MessagingDestinationPartitionID(strconv.Itoa(msg.Partition)), semconv.MessagingKafkaOffset(int(msg.Offset)))}
	if len(msg.Key) > 0 {
		opts = append(opts, trace.WithAttributes(semconv.MessagingKafkaMessageKey(string(msg.Key))))
	}
	if id != "" {
		opts = append(opts, trace.WithAttributes(semconv.MessagingMessageID(id), semconv.CloudEventsEventType(typ)))
	}
	if tp, err := tracecontext.Parse(traceparent); err == nil {
		ctx = trace.ContextWithRemoteSpanContext(ctx, tp.SpanContext())
	} else {
		opts = append(opts, trace.WithNewRoot())
	}
	return t.Start(ctx, "process "+msg.Topic, opts...)
}

// endProcess ends a consumer span; outcome is the handler metric's.
func endProcess(span trace.Span, outcome string) {
	if outcome != "ok" {
		span.SetAttributes(semconv.ErrorTypeKey.String(outcome))
		if outcome != "skipped" {
			span.SetStatus(codes.Error, outcome)
		}
	}
	span.End()
}

// withTraceParent returns a copy of hs whose traceparent header names sc.
func withTraceParent(hs []kafka.Header, sc trace.SpanContext) []kafka.Header {
	v := []byte(tracecontext.FromSpanContext(sc).String())
	out := make([]kafka.Header, len(hs), len(hs)+1)
	copy(out, hs)
	for i := range out {
		if out[i].Key == tracecontext.Header {
			out[i].Value = v
			return out
		}
	}
	return append(out, kafka.Header{Key: tracecontext.Header, Value: v})
}

func header(hs []kafka.Header, key string) string {
	for _, h := range hs {
		if h.Key == key {
			return string(h.Value)
		}
	}
	return ""
}
