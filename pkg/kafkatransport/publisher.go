package kafkatransport

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/segmentio/kafka-go"
	"go.opentelemetry.io/otel/trace"

	"github.com/tributary-rag/tributary/pkg/events"
)

// Producer writes messages durably; each message names its topic. The
// Subscriber uses it for outputs and dead letters. *Publisher implements it.
type Producer interface {
	WriteMessages(ctx context.Context, msgs ...kafka.Message) error
}

// DefaultBatchTimeout is the Publisher's default batch timeout: how long a
// write waits for more messages to share its batch. Writes are synchronous
// and every hop of a question waits for one, so it is kept short; under
// load writes still share batches while one is in flight, and a write of
// many messages fills whole batches without waiting. kafka-go's own default
// (1 s) suits asynchronous writers only; 2 ms cost about 30 ms of
// ask-to-first-token (bench/sections/pipeline.md).
const DefaultBatchTimeout = 200 * time.Microsecond

// metadataTTL is how long a Publisher trusts cached cluster metadata.
const metadataTTL = time.Second

// Publisher writes messages to Kafka with acks from all in-sync replicas
// (RequireAll), the Hash balancer (same key, same partition, so per-key
// order) and a small batch timeout. Writes are synchronous: when
// WriteMessages or Publish returns nil, the brokers have the messages.
// Publisher is safe for concurrent use.
type Publisher struct {
	w       *kafka.Writer
	t       *kafka.Transport
	source  string
	metrics *Metrics     // never nil: unregistered when the caller gives none
	tracer  trace.Tracer // nil: tracing off
}

// PublisherOption configures a Publisher.
type PublisherOption func(*publisherConfig)

type publisherConfig struct {
	batchTimeout time.Duration
	source       string
	metrics      *Metrics
	writer       func(*kafka.Writer)
	security     Security
	tracer       trace.Tracer
}

// PublisherBatchTimeout sets the batch timeout (default DefaultBatchTimeout).
func PublisherBatchTimeout(d time.Duration) PublisherOption {
	return func(c *publisherConfig) { c.batchTimeout = d }
}

// PublisherSource sets the CloudEvents source of events built by Publish,
// e.g. "tributary/ingest" (default "tributary").
func PublisherSource(source string) PublisherOption {
	return func(c *publisherConfig) { c.source = source }
}

// PublisherMetrics records produced messages and errors in m.
func PublisherMetrics(m *Metrics) PublisherOption {
	return func(c *publisherConfig) { c.metrics = m }
}

// PublisherWriter lets the caller adjust the kafka.Writer before use (TLS,
// SASL, compression). Changing RequiredAcks weakens delivery guarantees.
func PublisherWriter(fn func(*kafka.Writer)) PublisherOption {
	return func(c *publisherConfig) { c.writer = fn }
}

// NewPublisher returns a Publisher writing to the cluster at brokers. It
// connects lazily, on the first write.
func NewPublisher(brokers []string, opts ...PublisherOption) *Publisher {
	cfg := publisherConfig{batchTimeout: DefaultBatchTimeout, source: "tributary"}
	for _, o := range opts {
		o(&cfg)
	}
	t := &kafka.Transport{MetadataTTL: metadataTTL}
	cfg.security.apply(t)
	w := &kafka.Writer{
		Addr:         kafka.TCP(brokers...),
		Balancer:     &kafka.Hash{},
		RequiredAcks: kafka.RequireAll,
		BatchTimeout: cfg.batchTimeout,
		// Each Publisher has its own transport, so metadata cached before
		// topics were provisioned elsewhere does not linger.
		Transport: t,
	}
	if cfg.writer != nil {
		cfg.writer(w)
	}
	if cfg.metrics == nil {
		cfg.metrics = newMetrics()
	}
	return &Publisher{w: w, t: t, source: cfg.source, metrics: cfg.metrics, tracer: cfg.tracer}
}

// WriteMessages writes msgs, each to its own Topic, and waits for the
// brokers' acknowledgement. Messages with the same key keep their order.
func (p *Publisher) WriteMessages(ctx context.Context, msgs ...kafka.Message) error {
	if len(msgs) == 0 {
		return nil
	}
	for i := range msgs {
		if msgs[i].Topic == "" {
			return fmt.Errorf("write messages: message %d has no topic", i)
		}
	}
	if p.tracer == nil {
		return p.write(ctx, msgs)
	}
	msgs, spans := startSend(ctx, p.tracer, msgs)
	err := p.write(ctx, msgs)
	endSend(spans, err)
	return err
}

// write is WriteMessages without the spans.
func (p *Publisher) write(ctx context.Context, msgs []kafka.Message) error {
	err := p.w.WriteMessages(ctx, msgs...)
	// A topic created after this Publisher cached the cluster's metadata
	// looks unknown until the cache expires: retry for a little longer than
	// the metadata TTL. (Messages to other topics in the same call may be
	// written twice; delivery is at least once anyway.)
	for deadline := time.Now().Add(metadataTTL + time.Second); unknownTopic(err) && time.Now().Before(deadline); {
		select {
		case <-ctx.Done():
		case <-time.After(100 * time.Millisecond):
			err = p.w.WriteMessages(ctx, msgs...)
			continue
		}
		break
	}
	p.count(msgs, err)
	if err != nil {
		return fmt.Errorf("write %d messages to %s: %w", len(msgs), msgs[0].Topic, err)
	}
	return nil
}

func (p *Publisher) count(msgs []kafka.Message, err error) {
	var werrs kafka.WriteErrors
	perMessage := errors.As(err, &werrs) && len(werrs) == len(msgs)
	for i, m := range msgs {
		failed := err != nil
		if perMessage {
			failed = werrs[i] != nil
		}
		if failed {
			p.metrics.ProduceErrors.WithLabelValues(m.Topic).Inc()
		} else {
			p.metrics.Produced.WithLabelValues(m.Topic).Inc()
		}
	}
}

// Publish builds one event per payload (see events.Marshal: a fresh
// ce_id, the Publisher's source, and the traceparent, tenant and correlation
// id from ctx) and writes them to topic.
func (p *Publisher) Publish(ctx context.Context, topic string, payloads ...events.Payload) error {
	msgs := make([]kafka.Message, 0, len(payloads))
	for _, pl := range payloads {
		m, err := events.Marshal(ctx, p.source, pl)
		if err != nil {
			return fmt.Errorf("publish to %s: %w", topic, err)
		}
		m.Topic = topic
		msgs = append(msgs, m)
	}
	return p.WriteMessages(ctx, msgs...)
}

// Source returns the CloudEvents source the Publisher puts on events.
func (p *Publisher) Source() string { return p.source }

// Close flushes pending writes and closes the connections.
func (p *Publisher) Close() error {
	err := p.w.Close()
	p.t.CloseIdleConnections()
	if err != nil {
		return fmt.Errorf("close publisher: %w", err)
	}
	return nil
}

// unknownTopic reports whether err, or any per-message error of a
// kafka.WriteErrors, is UnknownTopicOrPartition.
func unknownTopic(err error) bool {
	var werrs kafka.WriteErrors
	if errors.As(err, &werrs) {
		for _, e := range werrs {
			if errors.Is(e, kafka.UnknownTopicOrPartition) {
				return true
			}
		}
		return false
	}
	return errors.Is(err, kafka.UnknownTopicOrPartition)
}
