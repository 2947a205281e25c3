package daemon_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace/noop"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/tributary-rag/tributary/pkg/daemon"
)

func TestTracingFromEnv(t *testing.T) {
	for _, tc := range []struct {
		name string
		env  map[string]string
		want daemon.Tracing
		err  string
	}{
		{"off", nil, daemon.Tracing{Protocol: "http/protobuf"}, ""},
		{"endpoint", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"},
			daemon.Tracing{Endpoint: "http://collector:4318", Protocol: "http/protobuf"}, ""},
		{"traces endpoint wins", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://a:4318", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://b:4318/v1/traces",
			"OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "grpc"},
			daemon.Tracing{Endpoint: "http://b:4318/v1/traces", Protocol: "grpc"}, ""},
		{"bad protocol", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://a:4318", "OTEL_EXPORTER_OTLP_PROTOCOL": "http/json"}, daemon.Tracing{}, "http/json"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := daemon.TracingFromEnv(func(k string) string { return tc.env[k] })
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want one naming %q", err, tc.err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("TracingFromEnv = %+v, %v; want %+v", got, err, tc.want)
			}
		})
	}
}

// TestTracingProvider: no endpoint gives the no-op provider, which the
// Kafka clients take as tracing off; an endpoint gives the SDK's.
func TestTracingProvider(t *testing.T) {
	ctx := context.Background()
	tp, shutdown, err := daemon.Tracing{}.Provider(ctx, "tributary-test")
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := tp.(noop.TracerProvider); !ok {
		t.Errorf("no endpoint: provider %T, want the no-op one", tp)
	}
	if err := shutdown(ctx); err != nil {
		t.Error(err)
	}
	for _, proto := range []string{"http/protobuf", "grpc"} {
		tp, shutdown, err := daemon.Tracing{Endpoint: "http://127.0.0.1:1", Protocol: proto}.Provider(ctx, "tributary-test")
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := tp.(*sdktrace.TracerProvider); !ok {
			t.Errorf("%s: provider %T, want the SDK's", proto, tp)
		}
		sctx, cancel := context.WithTimeout(ctx, 0)
		_ = shutdown(sctx) // nothing listens: only that it returns
		cancel()
	}
}

// TestTracingOTLP exports a span over OTLP/HTTP to a local receiver and
// checks what the SDK took from the environment: the endpoint, the
// service name and the sampler.
func TestTracingOTLP(t *testing.T) {
	got := make(chan *coltracepb.ExportTraceServiceRequest, 4)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		req := &coltracepb.ExportTraceServiceRequest{}
		if err == nil && r.URL.Path == "/v1/traces" {
			err = proto.Unmarshal(body, req)
		}
		if err != nil || r.URL.Path != "/v1/traces" {
			t.Errorf("receiver: %s: %v", r.URL.Path, err)
		}
		got <- req
		w.Header().Set("Content-Type", "application/x-protobuf")
	}))
	defer srv.Close()
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", srv.URL)
	t.Setenv("OTEL_SERVICE_NAME", "edge-eu")

	export := func(sampler string) []*coltracepb.ExportTraceServiceRequest {
		t.Setenv("OTEL_TRACES_SAMPLER", sampler)
		tracing, err := daemon.TracingFromEnv(os.Getenv)
		if err != nil {
			t.Fatal(err)
		}
		ctx := context.Background()
		tp, shutdown, err := tracing.Provider(ctx, "tributary-edge")
		if err != nil {
			t.Fatal(err)
		}
		_, span := tp.Tracer("test").Start(ctx, "ask")
		span.End()
		if err := shutdown(ctx); err != nil {
			t.Fatal(err)
		}
		var reqs []*coltracepb.ExportTraceServiceRequest
		for {
			select {
			case r := <-got:
				reqs = append(reqs, r)
			default:
				return reqs
			}
		}
	}

	reqs := export("always_on")
	if len(reqs) != 1 || len(reqs[0].ResourceSpans) != 1 {
		t.Fatalf("always_on: %d export requests, want 1 with one resource", len(reqs))
	}
	rs := reqs[0].ResourceSpans[0]
	service := ""
	for _, kv := range rs.Resource.Attributes {
		if kv.Key == "service.name" {
			service = kv.Value.GetStringValue()
		}
	}
	if service != "edge-eu" {
		t.Errorf("service.name %q, want OTEL_SERVICE_NAME's edge-eu", service)
	}
	if len(rs.ScopeSpans) != 1 || len(rs.ScopeSpans[0].Spans) != 1 || rs.ScopeSpans[0].Spans[0].Name != "ask" {
		t.Errorf("exported %v, want the one span ask", rs.ScopeSpans)
	}
	if reqs := export("always_off"); len(reqs) != 0 {
		t.Errorf("always_off: %d export requests, want none", len(reqs))
	}
}
