package daemon

import (
	"context"
	"fmt"

	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// Tracing says where a process's OpenTelemetry spans go. It is read from
// the standard OTLP variables; tracing is off (OpenTelemetry's no-op
// provider, which costs nothing) unless an endpoint is set. The exporter and
// the SDK read every other OTEL_* variable themselves (headers, timeouts,
// TLS, OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES, OTEL_TRACES_SAMPLER and
// its argument), as OpenTelemetry documents them.
type Tracing struct {
	// Endpoint is OTEL_EXPORTER_OTLP_TRACES_ENDPOINT or else
	// OTEL_EXPORTER_OTLP_ENDPOINT; empty: tracing off.
	Endpoint string
	// Protocol is OTEL_EXPORTER_OTLP_TRACES_PROTOCOL or else
	// OTEL_EXPORTER_OTLP_PROTOCOL: "http/protobuf" (the default) or
	// "grpc".
	Protocol string
}

// TracingFromEnv reads the OTLP variables with getenv.
func TracingFromEnv(getenv func(string) string) (Tracing, error) {
	first := func(names ...string) string {
		for _, n := range names {
			if v := getenv(n); v != "" {
				return v
			}
		}
		return ""
	}
	t := Tracing{
		Endpoint: first("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT"),
		Protocol: first("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL"),
	}
	switch t.Protocol {
	case "":
		t.Protocol = "http/protobuf"
	case "http/protobuf", "grpc":
	default:
		return Tracing{}, fmt.Errorf("OTEL_EXPORTER_OTLP_PROTOCOL %q: want http/protobuf or grpc", t.Protocol)
	}
	return t, nil
}

// Provider returns the process's tracer provider and its shutdown, which
// flushes the spans not yet exported. service is the default service.name
// (OTEL_SERVICE_NAME overrides it).
func (t Tracing) Provider(ctx context.Context, service string) (trace.TracerProvider, func(context.Context) error, error) {
	if t.Endpoint == "" {
		return noop.NewTracerProvider(), func(context.Context) error { return nil }, nil
	}
	var exp sdktrace.SpanExporter
	var err error
	if t.Protocol == "grpc" {
		exp, err = otlptracegrpc.New(ctx)
	} else {
		exp, err = otlptracehttp.New(ctx)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("otlp trace exporter: %w", err)
	}
	res, err := resource.New(ctx, resource.WithAttributes(semconv.ServiceName(service)),
		resource.WithFromEnv(), resource.WithTelemetrySDK())
	if err != nil {
		return nil, nil, fmt.Errorf("trace resource: %w", err)
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res))
	return tp, tp.Shutdown, nil
}
