// Package kafkatest gives tests a Kafka cluster: an in-process franz-go
// kfake cluster speaking the real Kafka wire protocol, or, when the
// environment variable TRIBUTARY_TEST_KAFKA_BROKERS names brokers
// (comma-separated host:port), that real cluster. The same tests run
// against both.
//
// Starting a cluster and closing consumer groups cost seconds, so a test
// package shares one cluster and each test uses its own topics and groups:
//
//	var cluster *kafkatest.Cluster
//
//	func TestMain(m *testing.M) { os.Exit(kafkatest.Main(m, &cluster)) }
//
//	func TestSomething(t *testing.T) {
//		topic := cluster.Topic(t, 3)      // unique, with its ".dlq"
//		prefix := cluster.Prefix(t)       // unique topic prefix for a service
//		group := cluster.Group(t)
//		...
//		msgs := cluster.ReadN(t, topic, 5, 10*time.Second)
//	}
package kafkatest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"regexp"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/tributary-rag/tributary/pkg/events"
	"github.com/tributary-rag/tributary/pkg/kafkatransport"
)

// EnvBrokers names the environment variable that points tests at a real
// cluster.
const EnvBrokers = "TRIBUTARY_TEST_KAFKA_BROKERS"

// Cluster is a Kafka cluster for tests. Its methods are safe for concurrent
// use.
type Cluster struct {
	brokers []string
	fake    *kfake.Cluster
	run     string
	seq     atomic.Int64
}

// New starts an in-process kfake cluster with one broker, or connects to
// the brokers in TRIBUTARY_TEST_KAFKA_BROKERS. opts apply to kfake only.
func New(opts ...kfake.Opt) (*Cluster, error) {
	c := &Cluster{run: randomHex(3)}
	if env := strings.TrimSpace(os.Getenv(EnvBrokers)); env != "" {
		for _, b := range strings.Split(env, ",") {
			if b = strings.TrimSpace(b); b != "" {
				c.brokers = append(c.brokers, b)
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := ping(ctx, c.brokers); err != nil {
			return nil, fmt.Errorf("%s=%s: %w", EnvBrokers, env, err)
		}
		return c, nil
	}
	all := append([]kfake.Opt{kfake.NumBrokers(1), kfake.DefaultNumPartitions(3)}, opts...)
	f, err := kfake.NewCluster(all...)
	if err != nil {
		return nil, fmt.Errorf("start kfake: %w", err)
	}
	c.fake = f
	c.brokers = f.ListenAddrs()
	return c, nil
}

// Start is New for one test: the cluster closes when the test ends.
func Start(tb testing.TB, opts ...kfake.Opt) *Cluster {
	tb.Helper()
	c, err := New(opts...)
	if err != nil {
		tb.Fatalf("kafkatest: %v", err)
	}
	tb.Cleanup(c.Close)
	return c
}

// Main starts a cluster, stores it in *c, runs the package's tests and
// closes the cluster; it returns the exit code for os.Exit.
func Main(m *testing.M, c **Cluster) int {
	cl, err := New()
	if err != nil {
		fmt.Fprintln(os.Stderr, "kafkatest:", err)
		return 1
	}
	*c = cl
	defer cl.Close()
	return m.Run()
}

// Brokers returns the bootstrap addresses.
func (c *Cluster) Brokers() []string { return append([]string(nil), c.brokers...) }

// External reports whether the cluster is a real one from
// TRIBUTARY_TEST_KAFKA_BROKERS.
func (c *Cluster) External() bool { return c.fake == nil }

// Fake returns the kfake cluster, or nil for an external cluster; tests
// that inject faults use it and skip when it is nil.
func (c *Cluster) Fake() *kfake.Cluster { return c.fake }

// Close stops the in-process cluster; an external one is left alone.
func (c *Cluster) Close() {
	if c.fake != nil {
		c.fake.Close()
	}
}

var nonName = regexp.MustCompile(`[^A-Za-z0-9_-]+`)

// Name returns a name unique to this cluster, run and call, built from
// kind and the test's name, usable as topic, group or prefix.
func (c *Cluster) Name(tb testing.TB, kind string) string {
	tn := nonName.ReplaceAllString(tb.Name(), "-")
	if len(tn) > 60 {
		tn = tn[:60]
	}
	return fmt.Sprintf("%s-%s-%d-%s", kind, c.run, c.seq.Add(1), tn)
}

// Group returns a unique consumer group name.
func (c *Cluster) Group(tb testing.TB) string { return c.Name(tb, "g") }

// Prefix returns a unique topic prefix, so a test can run a service with
// its full topic set (events.NewTopics(prefix)) without seeing other
// tests' events. The topics are not created.
func (c *Cluster) Prefix(tb testing.TB) string { return c.Name(tb, "p") }

// Topic creates a unique topic with partitions partitions and its
// dead-letter topic, and returns the topic's name.
func (c *Cluster) Topic(tb testing.TB, partitions int) string {
	tb.Helper()
	name := c.Name(tb, "t")
	c.CreateTopics(tb, partitions, name)
	return name
}

// CreateTopics creates names and their dead-letter topics (idempotently).
func (c *Cluster) CreateTopics(tb testing.TB, partitions int, names ...string) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(tb.Context(), 30*time.Second)
	defer cancel()
	if err := kafkatransport.EnsureTopics(ctx, c.brokers, kafkatransport.Security{}, kafkatransport.TopicSpecs(partitions, 1, names...)...); err != nil {
		tb.Fatalf("kafkatest: %v", err)
	}
	all := append([]string(nil), names...)
	for _, n := range names {
		all = append(all, events.DLQ(n))
	}
	// Wait until metadata shows them, so readers and writers see them.
	for {
		err := kafkatransport.CheckTopics(ctx, c.brokers, kafkatransport.Security{}, all...)
		if err == nil {
			return
		}
		if ctx.Err() != nil {
			tb.Fatalf("kafkatest: topics not visible: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// CreatePrefixTopics creates every catalog topic for prefix (see
// events.NewTopics) with its dead-letter topic.
func (c *Cluster) CreatePrefixTopics(tb testing.TB, prefix string, partitions int) events.Topics {
	tb.Helper()
	topics := events.NewTopics(prefix)
	c.CreateTopics(tb, partitions, topics.All()...)
	return topics
}

// Produce writes msgs (each with its Topic) synchronously with acks from
// all replicas.
func (c *Cluster) Produce(tb testing.TB, msgs ...kafka.Message) {
	tb.Helper()
	p := kafkatransport.NewPublisher(c.brokers)
	defer func() {
		if err := p.Close(); err != nil {
			tb.Errorf("kafkatest: %v", err)
		}
	}()
	ctx, cancel := context.WithTimeout(tb.Context(), 30*time.Second)
	defer cancel()
	if err := p.WriteMessages(ctx, msgs...); err != nil {
		tb.Fatalf("kafkatest: produce: %v", err)
	}
}

// ReadAll returns every message now in topic, ordered by partition and
// offset, without using a consumer group.
func (c *Cluster) ReadAll(tb testing.TB, topic string) []kafka.Message {
	tb.Helper()
	ctx, cancel := context.WithTimeout(tb.Context(), 30*time.Second)
	defer cancel()
	msgs, err := c.readAll(ctx, topic)
	if err != nil {
		tb.Fatalf("kafkatest: read %s: %v", topic, err)
	}
	return msgs
}

// ReadN waits up to timeout for topic to hold at least n messages and
// returns all of them (ordered by partition and offset). The test fails if
// fewer arrive.
func (c *Cluster) ReadN(tb testing.TB, topic string, n int, timeout time.Duration) []kafka.Message {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	for {
		msgs := c.ReadAll(tb, topic)
		if len(msgs) >= n {
			return msgs
		}
		if time.Now().After(deadline) {
			tb.Fatalf("kafkatest: %s has %d messages after %v, want %d", topic, len(msgs), timeout, n)
		}
		time.Sleep(25 * time.Millisecond)
	}
}

func (c *Cluster) readAll(ctx context.Context, topic string) ([]kafka.Message, error) {
	t := &kafka.Transport{MetadataTTL: time.Second}
	defer t.CloseIdleConnections()
	cl := &kafka.Client{Addr: kafka.TCP(c.brokers...), Transport: t, Timeout: 10 * time.Second}
	meta, err := cl.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{topic}})
	if err != nil {
		return nil, fmt.Errorf("metadata: %w", err)
	}
	var reqs []kafka.OffsetRequest
	for _, tp := range meta.Topics {
		if tp.Name != topic {
			continue
		}
		if tp.Error != nil {
			return nil, tp.Error
		}
		for _, p := range tp.Partitions {
			reqs = append(reqs, kafka.FirstOffsetOf(p.ID), kafka.LastOffsetOf(p.ID))
		}
	}
	if len(reqs) == 0 {
		return nil, errors.New("no partitions")
	}
	offs, err := cl.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{topic: reqs}})
	if err != nil {
		return nil, fmt.Errorf("list offsets: %w", err)
	}
	var out []kafka.Message
	for _, po := range offs.Topics[topic] {
		if po.Error != nil {
			return nil, fmt.Errorf("partition %d: %w", po.Partition, po.Error)
		}
		if po.LastOffset <= po.FirstOffset {
			continue
		}
		r := kafka.NewReader(kafka.ReaderConfig{
			Brokers: c.brokers, Topic: topic, Partition: po.Partition,
			MinBytes: 1, MaxBytes: 10 << 20, MaxWait: 100 * time.Millisecond,
		})
		if err := r.SetOffset(po.FirstOffset); err != nil {
			_ = r.Close()
			return nil, err
		}
		for {
			m, err := r.FetchMessage(ctx)
			if err != nil {
				_ = r.Close()
				return nil, fmt.Errorf("partition %d: %w", po.Partition, err)
			}
			out = append(out, m)
			if m.Offset >= po.LastOffset-1 {
				break
			}
		}
		if err := r.Close(); err != nil {
			return nil, err
		}
	}
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].Partition != out[j].Partition {
			return out[i].Partition < out[j].Partition
		}
		return out[i].Offset < out[j].Offset
	})
	return out, nil
}

// Header returns the value of the first header named key, or "".
func Header(m kafka.Message, key string) string {
	for _, h := range m.Headers {
		if h.Key == key {
			return string(h.Value)
		}
	}
	return ""
}

func ping(ctx context.Context, brokers []string) error {
	t := &kafka.Transport{}
	defer t.CloseIdleConnections()
	cl := &kafka.Client{Addr: kafka.TCP(brokers...), Transport: t}
	if _, err := cl.Metadata(ctx, &kafka.MetadataRequest{}); err != nil {
		return fmt.Errorf("metadata: %w", err)
	}
	return nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
