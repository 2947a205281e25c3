package kafkatransport_test

import (
	"context"
	"encoding/json"
	"sync"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/tributary-rag/tributary/pkg/events"
	"github.com/tributary-rag/tributary/pkg/eventually"
	"github.com/tributary-rag/tributary/pkg/kafkatest"
	kt "github.com/tributary-rag/tributary/pkg/kafkatransport"
)

// TestSubscriberContentModes sends one delta in each form a CloudEvents
// producer may write it (ours, structured mode without time, the legacy
// unprefixed tenant headers) and a structured event that cannot be read.
// A decoder that reads headers and value directly, as some services' do,
// sees every readable one in binary mode with ce_tenantid; the context
// carries its tenant and correlation id; the broken one is dead-lettered
// as it arrived.
func TestSubscriberContentModes(t *testing.T) {
	t.Parallel()
	in := cluster.Topic(t, 1)
	group := cluster.Group(t)
	pub := newPublisher(t, kt.PublisherSource("tributary/test"))

	ours, err := events.Marshal(events.WithCorrelationID(events.WithTenant(context.Background(), "acme"), "c0"), "test", delta("r0", 0))
	if err != nil {
		t.Fatal(err)
	}
	data, err := json.Marshal(delta("r1", 0))
	if err != nil {
		t.Fatal(err)
	}
	sv, err := json.Marshal(map[string]any{"specversion": "1.0", "id": "e1", "source": "sdk", "type": events.TypeAnswerDelta,
		"tenantid": "acme", "correlationid": "c1", "data": json.RawMessage(data)})
	if err != nil {
		t.Fatal(err)
	}
	structured := kafka.Message{Key: []byte("r1"), Value: sv, Headers: []kafka.Header{{Key: events.HeaderContentType, Value: []byte(events.ContentTypeCloudEventsJSON)}}}
	legacyData, err := json.Marshal(delta("r2", 0))
	if err != nil {
		t.Fatal(err)
	}
	legacy := kafka.Message{Key: []byte("r2"), Value: legacyData, Headers: []kafka.Header{
		{Key: events.HeaderSpecVersion, Value: []byte("1.0")}, {Key: events.HeaderID, Value: []byte("e2")},
		{Key: events.HeaderSource, Value: []byte("old")}, {Key: events.HeaderType, Value: []byte(events.TypeAnswerDelta)},
		{Key: events.LegacyHeaderTenantID, Value: []byte("acme")}, {Key: events.LegacyHeaderCorrelationID, Value: []byte("c2")},
	}}
	broken := kafka.Message{Key: []byte("r3"), Value: []byte(`{"specversion":"1.0","tenantid":7}`), Headers: structured.Headers}
	msgs := []kafka.Message{ours, structured, broken, legacy}
	for i := range msgs {
		msgs[i].Topic = in
	}
	cluster.Produce(t, msgs...)

	var mu sync.Mutex
	seen := map[string]string{} // request id → "tenant header/ctx tenant/ctx correlation"
	dec := func(ctx context.Context, msg kafka.Message) (any, error) {
		var d events.AnswerDelta
		if err := json.Unmarshal(msg.Value, &d); err != nil {
			return nil, kt.Permanent(err)
		}
		return []string{d.RequestID, kafkatest.Header(msg, events.HeaderTenantID) + "/" + events.Tenant(ctx) + "/" + events.CorrelationID(ctx)}, nil
	}
	e := func(_ context.Context, req any) (any, error) {
		r := req.([]string)
		mu.Lock()
		seen[r[0]] = r[1]
		mu.Unlock()
		return nil, nil
	}
	sub := kt.NewSubscriber(kt.SubscriberConfig{Brokers: cluster.Brokers(), Group: group, Topic: in, Producer: pub}, e, dec, nil)
	start(t, sub)

	dl := cluster.ReadN(t, events.DLQ(in), 1, 30*time.Second)
	if len(dl) != 1 || string(dl[0].Value) != string(broken.Value) || kafkatest.Header(dl[0], events.HeaderContentType) != events.ContentTypeCloudEventsJSON {
		t.Fatalf("dead letters = %+v, want the broken structured event as it arrived", dl)
	}
	want := map[string]string{"r0": "acme/acme/c0", "r1": "acme/acme/c1", "r2": "acme/acme/c2"}
	eventually.True(t, "every readable event handled", 30*time.Second, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(seen) == len(want)
	})
	mu.Lock()
	defer mu.Unlock()
	for k, v := range want {
		if seen[k] != v {
			t.Errorf("%s: tenant header/ctx tenant/ctx correlation = %q, want %q", k, seen[k], v)
		}
	}
}
