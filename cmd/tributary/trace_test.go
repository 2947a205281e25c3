package main

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/tributary-rag/tributary/pkg/daemon/daemontest"
	"github.com/tributary-rag/tributary/pkg/events"
	"github.com/tributary-rag/tributary/pkg/eventually"
	"github.com/tributary-rag/tributary/services/audit"
	"github.com/tributary-rag/tributary/services/edge"
	"github.com/tributary-rag/tributary/services/embed"
	"github.com/tributary-rag/tributary/services/generate"
	"github.com/tributary-rag/tributary/services/moderate"
	"github.com/tributary-rag/tributary/services/retrieve"
)

// TestDevTrace runs the dev stack with an in-memory span exporter, asks one
// question over the WebSocket and checks that it is one trace: every span
// of a message keyed by the request is in the trace the edge's "ask" span
// started, the parent chain from the edge's handling of the answer back to
// that root passes every hop in order, and the audit log's consumer span of
// the question is the child of the edge's send.
func TestDevTrace(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test: starts the whole suite")
	}
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	logs := &daemontest.Buffer{}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("dev stack logs (tail):\n%s", logs.Tail(4000))
		}
	})
	dev := startTestDevOpts(t, devOptions{DataDir: t.TempDir(), Logs: logs, SkipSample: true, TracerProvider: tp}, logs)
	res := askOK(t, context.Background(), dev.url, keyA, "When does the Aurora project ship?")

	topic := func(name string) string { return events.TopicName(events.DefaultPrefix, name) }
	answersGroup, _ := edge.Groups(devReplica)
	// The hops, root first: the consumer span of each names its group.
	want := []string{
		"ask",
		"send " + topic(events.TopicQueriesReceived),
		"process " + topic(events.TopicQueriesReceived) + " @" + moderate.KafkaGroup,
		"send " + topic(events.TopicQueriesApproved),
		"process " + topic(events.TopicQueriesApproved) + " @" + embed.KafkaGroup,
		"send " + topic(events.TopicQueriesEmbedded),
		"process " + topic(events.TopicQueriesEmbedded) + " @" + retrieve.GroupQueries,
		"send " + topic(events.TopicQueriesRetrieved),
		"process " + topic(events.TopicQueriesRetrieved) + " @" + generate.KafkaGroup,
		"send " + topic(events.TopicAnswersGenerated),
		"process " + topic(events.TopicAnswersGenerated) + " @" + moderate.KafkaGroup,
		"send " + topic(events.TopicAnswersModerated),
		"process " + topic(events.TopicAnswersModerated) + " @" + answersGroup,
	}
	label := func(s tracetest.SpanStub) string {
		for _, kv := range s.Attributes {
			if kv.Key == "messaging.consumer.group.name" {
				return s.Name + " @" + kv.Value.AsString()
			}
		}
		return s.Name
	}

	var root tracetest.SpanStub
	var chain []string
	var sendQuery tracetest.SpanStub // the edge's send of the question
	eventually.NoError(t, "the question's trace", 30*time.Second, func() error {
		spans := exp.GetSpans()
		root = tracetest.SpanStub{}
		for _, s := range spans {
			if s.Name == "ask" && attr(s.Attributes, "tributary.request_id") == res.RequestID {
				root = s
			}
		}
		if !root.SpanContext.IsValid() {
			return fmt.Errorf("no ask span for request %s", res.RequestID)
		}
		byID := map[trace.SpanID]tracetest.SpanStub{}
		var leaf tracetest.SpanStub
		for _, s := range spans {
			if s.SpanContext.TraceID() != root.SpanContext.TraceID() {
				continue
			}
			byID[s.SpanContext.SpanID()] = s
			if label(s) == want[len(want)-1] {
				leaf = s
			}
		}
		if !leaf.SpanContext.IsValid() {
			return fmt.Errorf("no %q span in the ask's trace", want[len(want)-1])
		}
		chain = nil
		for s, ok := leaf, true; ok; s, ok = byID[s.Parent.SpanID()] {
			chain = append([]string{label(s)}, chain...)
			if label(s) == want[1] {
				sendQuery = s
			}
		}
		if len(chain) != len(want) {
			return fmt.Errorf("chain %s", strings.Join(chain, " → "))
		}
		auditSeen := false // the audit log's consumer span of the question
		for _, s := range byID {
			if label(s) == "process "+topic(events.TopicQueriesReceived)+" @"+audit.Group && s.Parent.SpanID() == sendQuery.SpanContext.SpanID() {
				auditSeen = true
			}
		}
		if !auditSeen {
			return fmt.Errorf("no audit consumer span of %q", want[1])
		}
		return nil
	})
	for i := range want {
		if chain[i] != want[i] {
			t.Fatalf("parent chain:\n  %s\nwant:\n  %s", strings.Join(chain, "\n  "), strings.Join(want, "\n  "))
		}
	}
	if root.Parent.IsValid() || root.SpanKind != trace.SpanKindServer {
		t.Errorf("ask span: parent %v, kind %v; want a SERVER root", root.Parent, root.SpanKind)
	}
	// Every span of a message of this request is in the one trace.
	n := 0
	for _, s := range exp.GetSpans() {
		if attr(s.Attributes, "messaging.kafka.message.key") != res.RequestID {
			continue
		}
		n++
		if s.SpanContext.TraceID() != root.SpanContext.TraceID() {
			t.Errorf("span %q of request %s is in trace %s, not the ask's %s", label(s), res.RequestID, s.SpanContext.TraceID(), root.SpanContext.TraceID())
		}
	}
	if n < len(want)-1 {
		t.Errorf("%d spans of messages keyed by the request, want at least %d", n, len(want)-1)
	}
}

func attr(kvs []attribute.KeyValue, key attribute.Key) string {
	for _, kv := range kvs {
		if kv.Key == key {
			return kv.Value.Emit()
		}
	}
	return ""
}
