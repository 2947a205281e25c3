package kafkatransport_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/segmentio/kafka-go"

	"github.com/tributary-rag/tributary/pkg/events"
	"github.com/tributary-rag/tributary/pkg/eventually"
	kt "github.com/tributary-rag/tributary/pkg/kafkatransport"
)

func TestEnsureTopicsIdempotent(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	name := cluster.Name(t, "t")
	specs := kt.TopicSpecs(2, 1, name)
	if len(specs) != 2 || specs[1].Name != events.DLQ(name) {
		t.Fatalf("TopicSpecs = %+v, want the topic and its DLQ", specs)
	}
	if err := kt.CheckTopics(ctx, cluster.Brokers(), kt.Security{}, name); !errors.Is(err, kt.ErrMissingTopics) {
		t.Fatalf("CheckTopics before creation = %v, want ErrMissingTopics", err)
	}
	for i := 0; i < 3; i++ {
		if err := kt.EnsureTopics(ctx, cluster.Brokers(), kt.Security{}, specs...); err != nil {
			t.Fatalf("EnsureTopics call %d: %v", i+1, err)
		}
	}
	eventually.True(t, "topics visible", 10*time.Second, func() bool {
		return kt.CheckTopics(ctx, cluster.Brokers(), kt.Security{}, name, events.DLQ(name)) == nil
	})
	err := kt.CheckTopics(ctx, cluster.Brokers(), kt.Security{}, name, name+".other")
	if !errors.Is(err, kt.ErrMissingTopics) || !strings.Contains(err.Error(), name+".other") || strings.Contains(err.Error(), name+",") {
		t.Errorf("CheckTopics with one missing = %v", err)
	}
	if err := kt.EnsureTopics(ctx, cluster.Brokers(), kt.Security{}, kt.TopicSpec{Name: "x", Partitions: 0, ReplicationFactor: 1}); err == nil {
		t.Error("EnsureTopics accepted zero partitions")
	}
	if err := kt.EnsureTopics(ctx, nil, kt.Security{}, specs...); err == nil {
		t.Error("EnsureTopics without brokers succeeded")
	}
}

func TestCheckTopicsUnreachable(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := kt.CheckTopics(ctx, []string{"127.0.0.1:1"}, kt.Security{}, "t"); err == nil || errors.Is(err, kt.ErrMissingTopics) {
		t.Errorf("CheckTopics on a closed port = %v, want a connection error", err)
	}
}

// TestPublisherSurfacesErrors: a write that cannot succeed returns its
// error to the caller and counts it.
func TestPublisherSurfacesErrors(t *testing.T) {
	t.Parallel()
	metrics := newMetrics(t)
	pub := newPublisher(t, kt.PublisherMetrics(metrics))
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if err := pub.WriteMessages(ctx, kafka.Message{Value: []byte("x")}); err == nil {
		t.Error("write without topic succeeded")
	}
	missing := cluster.Name(t, "missing")
	if err := pub.WriteMessages(ctx, kafka.Message{Topic: missing, Value: []byte("x")}); err == nil {
		t.Errorf("write to a topic that does not exist succeeded")
	}
	if got := testutil.ToFloat64(metrics.ProduceErrors.WithLabelValues(missing)); got != 1 {
		t.Errorf("produce errors = %v, want 1", got)
	}
	// A payload without tenant cannot become an event.
	if err := pub.Publish(context.Background(), cluster.Topic(t, 1), delta("r", 0)); err != nil {
		t.Errorf("Publish with tenant in payload only: %v", err)
	}
	if err := pub.Publish(context.Background(), "t", events.DocumentDeleted{DocumentID: "d"}); !errors.Is(err, events.ErrInvalidEnvelope) {
		t.Errorf("Publish without tenant = %v, want ErrInvalidEnvelope", err)
	}
}

func TestPublisherKeysPartitionsMetrics(t *testing.T) {
	t.Parallel()
	topic := cluster.Topic(t, 3)
	metrics := newMetrics(t)
	pub := newPublisher(t, kt.PublisherMetrics(metrics), kt.PublisherSource("tributary/test"))
	ctx := events.WithTenant(context.Background(), "acme")
	var ps []events.Payload
	for i := 0; i < 20; i++ {
		ps = append(ps, delta("req-a", i), delta("req-b", i))
	}
	if err := pub.Publish(ctx, topic, ps...); err != nil {
		t.Fatal(err)
	}
	if got := testutil.ToFloat64(metrics.Produced.WithLabelValues(topic)); got != 40 {
		t.Errorf("produced = %v, want 40", got)
	}
	msgs := cluster.ReadN(t, topic, 40, 10*time.Second)
	part := map[string]int{}
	next := map[string]int{}
	for _, m := range msgs {
		k := string(m.Key)
		if p, ok := part[k]; ok && p != m.Partition {
			t.Errorf("key %s on partitions %d and %d", k, p, m.Partition)
		}
		part[k] = m.Partition
		var d events.AnswerDelta
		env, err := events.Unmarshal(m, &d)
		if err != nil {
			t.Fatal(err)
		}
		if env.Source != "tributary/test" {
			t.Errorf("source = %q", env.Source)
		}
		if d.Seq != next[k] {
			t.Errorf("key %s: seq %d, want %d", k, d.Seq, next[k])
		}
		next[k] = d.Seq + 1
	}
}
