package auditevent_test

import (
	"context"
	"fmt"
	"net"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/tributary-rag/tributary/pkg/auditevent"
	"github.com/tributary-rag/tributary/pkg/events"
	"github.com/tributary-rag/tributary/pkg/kafkatest"
	"github.com/tributary-rag/tributary/pkg/kafkatransport"
)

// TestRecorder publishes an admin action and a burst of auth failures
// from one host: the action and the first failures reach the topic as
// tributary.audit.* events with their tenant, the rest of the burst is
// dropped, so guessing keys cannot flood the audit log.
func TestRecorder(t *testing.T) {
	cluster := kafkatest.Start(t)
	topic := cluster.Topic(t, 1)
	pub := kafkatransport.NewPublisher(cluster.Brokers())
	t.Cleanup(func() { _ = pub.Close() })
	r := auditevent.New(pub, topic, "tributary/test", nil)

	ctx := context.Background()
	if err := r.Record(ctx, events.AuditEvent{Kind: events.AuditKindAdminAction, TenantID: "acme", Actor: "key-1", Action: "document.delete", Outcome: "success", Resource: "plan"}); err != nil {
		t.Fatal(err)
	}
	for range 30 {
		req := httptest.NewRequest("GET", "/v1/chat", nil)
		req.RemoteAddr = "203.0.113.7:4711"
		r.AuthFailed(req, "chat.connect")
	}
	msgs := cluster.ReadN(t, topic, 21, 30*time.Second)
	var actions, failures int
	for _, m := range msgs {
		var ev events.AuditEvent
		env, err := events.Unmarshal(m, &ev)
		if err != nil {
			t.Fatal(err)
		}
		switch ev.Kind {
		case events.AuditKindAdminAction:
			actions++
			if env.TenantID != "acme" || ev.Resource != "plan" || ev.At.IsZero() {
				t.Errorf("admin action %+v (tenant %q)", ev, env.TenantID)
			}
		case events.AuditKindAuthFailed:
			failures++
			if ev.Details["remote"] != "203.0.113.7" || ev.Action != "chat.connect" || ev.Outcome != "failure" {
				t.Errorf("auth failure %+v", ev)
			}
		}
	}
	if actions != 1 || failures != 20 {
		t.Errorf("%d admin actions and %d auth failures on the topic, want 1 and the burst of 20", actions, failures)
	}
	var nilRecorder *auditevent.Recorder
	nilRecorder.AuthFailed(httptest.NewRequest("GET", "/", nil), "x")
	if err := nilRecorder.Record(ctx, events.AuditEvent{}); err != nil {
		t.Errorf("a nil recorder returned %v", err)
	}
}

// TestAuthFailedDoesNotWait: a refusal is answered at once even when the
// broker hangs (publishing happens in the background, bounded).
func TestAuthFailedDoesNotWait(t *testing.T) {
	// A "broker" that accepts connections and never answers.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	held := make(chan net.Conn, 1024)
	t.Cleanup(func() {
		_ = ln.Close()
		for len(held) > 0 {
			_ = (<-held).Close()
		}
	})
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			select {
			case held <- c:
			default:
				_ = c.Close()
			}
		}
	}()
	pub := kafkatransport.NewPublisher([]string{ln.Addr().String()})
	t.Cleanup(func() { _ = pub.Close() })
	r := auditevent.New(pub, "audit.events", "tributary/test", nil)
	start := time.Now()
	for i := range 100 {
		req := httptest.NewRequest("GET", "/v1/chat", nil)
		req.RemoteAddr = fmt.Sprintf("198.51.100.%d:4711", i)
		r.AuthFailed(req, "chat.connect")
	}
	if took := time.Since(start); took > time.Second {
		t.Errorf("100 refusals took %v with the broker down: the request path waits for Kafka", took)
	}
}
