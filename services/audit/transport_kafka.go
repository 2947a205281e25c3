package audit

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/go-kit/kit/endpoint"
	"github.com/segmentio/kafka-go"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/tributary-rag/tributary/pkg/events"
	"github.com/tributary-rag/tributary/pkg/kafkatransport"
)

// Group is the audit service's consumer group.
const Group = "audit"

// Topics returns every topic the audit service consumes for prefix: the
// whole catalog, audit.events included. Dead-letter topics are left out:
// they hold copies of messages already recorded from their source topic.
func Topics(prefix string) []string { return events.NewTopics(prefix).All() }

// ConsumerConfig names what a Consumer reads.
type ConsumerConfig struct {
	// Brokers are the bootstrap addresses (host:port).
	Brokers []string
	// Group is the consumer group (default Group).
	Group string
	// Topics are the full topic names to consume.
	Topics []string
	// MaxBatch bounds the messages recorded with one sync (default 512).
	MaxBatch int
	// Linger is how long to wait for more messages after the first of a
	// batch (default 2ms); messages already fetched join at once.
	Linger time.Duration
	// Reader adjusts the kafka.ReaderConfig (dialer, timeouts); GroupID,
	// GroupTopics and CommitInterval are reset afterwards.
	Reader func(*kafka.ReaderConfig)
	// TracerProvider, when not nil or no-op, gives every message recorded
	// a consumer span in its event's trace, ended once the batch is synced.
	TracerProvider trace.TracerProvider
}

// Consumer feeds every consumed message to the Record endpoint in batches
// and commits a batch's offsets only after the endpoint returned, that
// is after the records were synced to disk. It uses one consumer-group
// reader over all topics rather than pkg/kafkatransport's per-message
// Subscriber: the audit log is a sink without outputs, and one sync per
// batch instead of one per message is what makes it fast. Nothing is
// dead-lettered: any message, even a malformed event, is recorded as it
// came. Run may be called once.
type Consumer struct {
	cfg    ConsumerConfig
	e      endpoint.Endpoint
	logger *slog.Logger
	// afterRecord, for tests, runs after a batch is recorded and before
	// its offsets are committed.
	afterRecord func(batch []kafka.Message)

	waitMu  sync.Mutex
	waiting error // why the current batch waits, nil when it does not
}

// Ready reports an error while a batch waits for the key provider: the
// consumer is alive but records nothing and commits nothing.
func (c *Consumer) Ready(context.Context) error {
	c.waitMu.Lock()
	defer c.waitMu.Unlock()
	if c.waiting != nil {
		return fmt.Errorf("audit records wait for keys: %w", c.waiting)
	}
	return nil
}

func (c *Consumer) setWaiting(err error) {
	c.waitMu.Lock()
	c.waiting = err
	c.waitMu.Unlock()
}

// record calls the endpoint with batch until it succeeds or fails for a
// reason other than ErrKeysUnavailable, backing off between attempts (100
// ms doubling to 5 s): while Vault is away nothing is committed and the
// same batch is tried again, so nothing is lost and the log catches up
// when Vault returns. ctx ending stops the waiting.
func (c *Consumer) record(ctx context.Context, batch []kafka.Message) error {
	for attempt := 0; ; attempt++ {
		// Recording finishes even when ctx ends meanwhile: a batch is
		// cheap to finish and a half-recorded one costs a recovery.
		resp, err := c.e(context.WithoutCancel(ctx), RecordRequest{Messages: batch})
		if err == nil {
			if f, ok := resp.(endpoint.Failer); ok {
				err = f.Failed()
			}
		}
		if err == nil || !errors.Is(err, ErrKeysUnavailable) {
			c.setWaiting(nil)
			return err
		}
		c.setWaiting(err)
		wait := backoff(attempt)
		if attempt == 0 || wait >= 5*time.Second {
			c.logger.Warn("audit: key provider unavailable, not committing; retrying", "messages", len(batch), "retry_in", wait.String(), "error", err.Error())
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(wait):
		}
	}
}

// NewConsumer returns a Consumer of cfg.Topics that calls e with a
// RecordRequest per batch.
func NewConsumer(cfg ConsumerConfig, e endpoint.Endpoint, logger *slog.Logger) *Consumer {
	if cfg.Group == "" {
		cfg.Group = Group
	}
	if cfg.MaxBatch <= 0 {
		cfg.MaxBatch = 512
	}
	if cfg.Linger <= 0 {
		cfg.Linger = 2 * time.Millisecond
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Consumer{cfg: cfg, e: e, logger: logger}
}

// Run consumes until ctx is done or recording fails. A failed recording
// stops the consumer with the error and leaves the batch uncommitted
// (the process restarts, recovers the log and is sent the batch again);
// a failed commit is logged, and the redelivery it causes is skipped by
// the log's high-water marks. Run returns nil after ctx is done.
func (c *Consumer) Run(ctx context.Context) error {
	if len(c.cfg.Brokers) == 0 || len(c.cfg.Topics) == 0 {
		return errors.New("audit consumer: no brokers or topics")
	}
	rc := kafka.ReaderConfig{
		Brokers:        c.cfg.Brokers,
		MinBytes:       1,
		MaxBytes:       10 << 20,
		MaxWait:        250 * time.Millisecond,
		StartOffset:    kafka.FirstOffset,
		ReadBackoffMin: 10 * time.Millisecond,
		ReadBackoffMax: 250 * time.Millisecond,
		ErrorLogger: kafka.LoggerFunc(func(msg string, args ...any) {
			c.logger.Warn("kafka reader: "+fmt.Sprintf(msg, args...), "group", c.cfg.Group)
		}),
	}
	if c.cfg.Reader != nil {
		c.cfg.Reader(&rc)
	}
	rc.GroupID, rc.GroupTopics, rc.Topic, rc.Partition, rc.CommitInterval = c.cfg.Group, c.cfg.Topics, "", 0, 0
	r := kafka.NewReader(rc)
	err := c.loop(ctx, r)
	if cerr := r.Close(); cerr != nil && err == nil && ctx.Err() == nil {
		err = fmt.Errorf("close reader: %w", cerr)
	}
	return err
}

// recordTraced records batch within a consumer span per message when
// tracing is on.
func (c *Consumer) recordTraced(ctx context.Context, batch []kafka.Message) error {
	if c.cfg.TracerProvider == nil {
		return c.record(ctx, batch)
	}
	var spans []trace.Span
	for _, m := range batch {
		if span := kafkatransport.StartProcessSpan(ctx, c.cfg.TracerProvider, c.cfg.Group, m); span != nil {
			spans = append(spans, span)
		}
	}
	err := c.record(ctx, batch)
	for _, span := range spans {
		if err != nil {
			span.SetStatus(codes.Error, err.Error())
		}
		span.End()
	}
	return err
}

func (c *Consumer) loop(ctx context.Context, r *kafka.Reader) error {
	batch := make([]kafka.Message, 0, c.cfg.MaxBatch)
	for {
		m, err := r.FetchMessage(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("fetch: %w", err)
		}
		batch = append(batch[:0], m)
		lctx, cancel := context.WithTimeout(ctx, c.cfg.Linger)
		for len(batch) < c.cfg.MaxBatch {
			m, err := r.FetchMessage(lctx)
			if err != nil {
				break
			}
			batch = append(batch, m)
		}
		cancel()
		if err := c.recordTraced(ctx, batch); err != nil {
			return fmt.Errorf("record batch: %w", err)
		}
		if c.Ready(ctx) != nil && ctx.Err() != nil {
			return nil // stopped while waiting: the batch stays uncommitted
		}
		if c.afterRecord != nil {
			c.afterRecord(batch)
		}
		cctx, ccancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		err = r.CommitMessages(cctx, batch...)
		ccancel()
		if err != nil {
			c.logger.Error("commit offsets", "group", c.cfg.Group, "messages", len(batch), "error", err.Error())
		}
		if ctx.Err() != nil {
			return nil
		}
	}
}
