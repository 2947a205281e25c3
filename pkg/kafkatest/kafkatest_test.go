package kafkatest_test

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/tributary-rag/tributary/pkg/events"
	"github.com/tributary-rag/tributary/pkg/kafkatest"
	"github.com/tributary-rag/tributary/pkg/kafkatransport"
)

var cluster *kafkatest.Cluster

func TestMain(m *testing.M) { os.Exit(kafkatest.Main(m, &cluster)) }

func TestCluster(t *testing.T) {
	if len(cluster.Brokers()) == 0 {
		t.Fatal("no brokers")
	}
	a, b := cluster.Topic(t, 2), cluster.Topic(t, 2)
	if a == b || !strings.Contains(a, "TestCluster") {
		t.Errorf("Topic names %q, %q: want unique and named for the test", a, b)
	}
	if g1, g2 := cluster.Group(t), cluster.Group(t); g1 == g2 {
		t.Error("Group names repeat")
	}
	if got := cluster.ReadAll(t, a); len(got) != 0 {
		t.Errorf("new topic has %d messages", len(got))
	}
	var msgs []kafka.Message
	for _, k := range []string{"x", "y", "x", "z", "x"} {
		msgs = append(msgs, kafka.Message{Topic: a, Key: []byte(k), Value: []byte(k), Headers: []kafka.Header{{Key: "k", Value: []byte(k)}}})
	}
	cluster.Produce(t, msgs...)
	got := cluster.ReadN(t, a, 5, 10*time.Second)
	if len(got) != 5 {
		t.Fatalf("ReadN = %d messages, want 5", len(got))
	}
	xs := 0
	for i, m := range got {
		if kafkatest.Header(m, "k") != string(m.Key) {
			t.Errorf("header k = %q on key %q", kafkatest.Header(m, "k"), m.Key)
		}
		if i > 0 && (m.Partition < got[i-1].Partition || m.Partition == got[i-1].Partition && m.Offset <= got[i-1].Offset) {
			t.Errorf("ReadAll not ordered by partition and offset")
		}
		if string(m.Key) == "x" {
			xs++
		}
	}
	if xs != 3 {
		t.Errorf("got %d x messages, want 3", xs)
	}
	if kafkatest.Header(got[0], "absent") != "" {
		t.Error("Header of an absent key is not empty")
	}
}

func TestCreatePrefixTopics(t *testing.T) {
	prefix := cluster.Prefix(t)
	topics := cluster.CreatePrefixTopics(t, prefix, 1)
	if topics.Chunks != prefix+".chunks.v1" {
		t.Errorf("Chunks = %q", topics.Chunks)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	all := topics.All()
	for _, tp := range topics.All() {
		all = append(all, events.DLQ(tp))
	}
	if err := kafkatransport.CheckTopics(ctx, cluster.Brokers(), kafkatransport.Security{}, all...); err != nil {
		t.Error(err)
	}
}
