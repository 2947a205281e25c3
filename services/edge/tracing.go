package edge

import (
	"context"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/tributary-rag/tributary/pkg/tracecontext"
)

// TracingMiddleware starts the root span of every question ("ask", kind
// SERVER): one question is one trace, from here through every service's
// consumer spans back to the edge. The span links to the trace of the
// WebSocket handshake, which every question on the connection shares. A
// nil or no-op provider returns the service unchanged.
func TracingMiddleware(tp trace.TracerProvider) Middleware {
	tracer := tracecontext.Tracer(tp, "github.com/tributary-rag/tributary/services/edge")
	return func(next Service) Service {
		if tracer == nil {
			return next
		}
		return tracingMiddleware{Service: next, tracer: tracer}
	}
}

type tracingMiddleware struct {
	Service
	tracer trace.Tracer
}

func (mw tracingMiddleware) Ask(ctx context.Context, q Question, sink Sink) (requestID string, err error) {
	opts := []trace.SpanStartOption{trace.WithNewRoot(), trace.WithSpanKind(trace.SpanKindServer),
		trace.WithAttributes(attribute.String("tributary.tenant_id", q.Principal.Tenant))}
	if conn, ok := tracecontext.FromContext(ctx); ok {
		opts = append(opts, trace.WithLinks(trace.Link{SpanContext: conn.SpanContext()}))
	}
	ctx, span := mw.tracer.Start(ctx, "ask", opts...)
	defer func() {
		span.SetAttributes(attribute.String("tributary.request_id", requestID))
		if err != nil {
			span.RecordError(err)
			span.SetStatus(codes.Error, err.Error())
		}
		span.End()
	}()
	// Events built in ctx (and the logs) continue this trace.
	ctx = tracecontext.WithContext(ctx, tracecontext.FromSpanContext(span.SpanContext()))
	return mw.Service.Ask(ctx, q, sink)
}
