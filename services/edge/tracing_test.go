package edge

import (
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/tributary-rag/tributary/pkg/tracecontext"
)

// TestTracingMiddleware: each question is a new trace whose root span is
// the one the published query continues, linked to the connection's
// trace; a no-op provider leaves the service as it was.
func TestTracingMiddleware(t *testing.T) {
	svc := NewService(&recordingPublisher{}, Config{QueriesTopic: "q", AnswerTimeout: time.Minute})
	if TracingMiddleware(noop.NewTracerProvider())(svc) != svc {
		t.Error("no-op provider: service wrapped")
	}

	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	pub := &recordingPublisher{}
	svc = TracingMiddleware(tp)(NewService(pub, Config{QueriesTopic: "q", AnswerTimeout: time.Minute}))
	conn := tracecontext.New()
	ctx := tracecontext.WithContext(t.Context(), conn)
	for range 2 {
		if _, err := svc.Ask(ctx, Question{ID: "q", Question: "why?", Principal: alice}, &bufferSink{}); err != nil {
			t.Fatal(err)
		}
	}
	spans := exp.GetSpans()
	if len(spans) != 2 || len(pub.ctxs) != 2 {
		t.Fatalf("%d spans, %d publishes; want 2 of each", len(spans), len(pub.ctxs))
	}
	for i, s := range spans {
		if s.Name != "ask" || s.SpanKind != trace.SpanKindServer || s.Parent.IsValid() {
			t.Errorf("span %q kind %v parent %v, want a SERVER root named ask", s.Name, s.SpanKind, s.Parent)
		}
		if s.SpanContext.TraceID() == trace.TraceID(conn.TraceID) || (i > 0 && s.SpanContext.TraceID() == spans[0].SpanContext.TraceID()) {
			t.Error("a question shares a trace with the connection or another question")
		}
		if len(s.Links) != 1 || s.Links[0].SpanContext.SpanID() != trace.SpanID(conn.SpanID) {
			t.Errorf("links %v, want the connection's span", s.Links)
		}
		// The query is published in the span: as the OpenTelemetry
		// parent and as the traceparent events are built from.
		pctx := pub.ctxs[i]
		got, _ := tracecontext.FromContext(pctx)
		if trace.SpanContextFromContext(pctx).SpanID() != s.SpanContext.SpanID() || trace.TraceID(got.TraceID) != s.SpanContext.TraceID() {
			t.Errorf("publish context not in span %s", s.SpanContext.SpanID())
		}
	}
}
