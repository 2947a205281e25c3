package embed

import (
	"context"
	"fmt"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/tributary-rag/tributary/pkg/events"
	"github.com/tributary-rag/tributary/pkg/kafkatransport"
)

// KafkaGroup is the consumer group of the service.
const KafkaGroup = "embed"

// EventSource is the ce_source of every event the service produces.
const EventSource = "tributary/embed"

// DefaultChunkBatch is how many queued chunk messages of a partition the
// chunk subscriber handles together: each is embedded in order, their
// chunk.embedded events are produced in one write, then all are committed
// (kafkatransport.SubscriberBatch, without linger). Pass
// kafkatransport.SubscriberBatch(1, 0) to NewChunkSubscriber to handle one
// message at a time.
const DefaultChunkBatch = 64

// NewChunkSubscriber returns the Subscriber that embeds the chunks of
// topics.Chunks and produces them on topics.ChunksEmbedded, keyed by
// document id, before committing. A message that is not a chunk.created
// event, or whose payload names another tenant than its header or lacks
// an id, or (when v is not nil) fails its JSON Schema, goes to the
// dead-letter topic at once; a failed produce, or an embedding that fails
// otherwise (the model's server down), is retried with backoff.
// Queued chunks are handled in batches of up to DefaultChunkBatch (one
// produce per batch); a failure falls back to one message at a time, so
// the rules above hold per message.
func NewChunkSubscriber(brokers []string, topics events.Topics, producer kafkatransport.Producer, e Endpoints, v *events.Validator, opts ...kafkatransport.SubscriberOption) *kafkatransport.Subscriber {
	return chunkSubscriber(brokers, topics, KafkaGroup, producer, e, v, opts...)
}

// chunkSubscriber is NewChunkSubscriber in consumer group group.
func chunkSubscriber(brokers []string, topics events.Topics, group string, producer kafkatransport.Producer, e Endpoints, v *events.Validator, opts ...kafkatransport.SubscriberOption) *kafkatransport.Subscriber {
	opts = append([]kafkatransport.SubscriberOption{kafkatransport.SubscriberBatch(DefaultChunkBatch, 0)}, opts...)
	return kafkatransport.NewSubscriber(kafkatransport.SubscriberConfig{
		Brokers:  brokers,
		Group:    group,
		Topic:    topics.Chunks,
		Producer: producer,
	}, kafkatransport.PermanentFailures(isInvalid)(e.EmbedChunk), validating(v, DecodeChunkCreated), EncodeChunkEmbedded(topics.ChunksEmbedded, time.Now), opts...)
}

// NewQuerySubscriber returns the Subscriber that embeds the questions of
// topics.QueriesApproved and produces them on topics.QueriesEmbedded,
// keyed by request id. Failures are handled as in NewChunkSubscriber.
func NewQuerySubscriber(brokers []string, topics events.Topics, producer kafkatransport.Producer, e Endpoints, v *events.Validator, opts ...kafkatransport.SubscriberOption) *kafkatransport.Subscriber {
	return kafkatransport.NewSubscriber(kafkatransport.SubscriberConfig{
		Brokers:  brokers,
		Group:    KafkaGroup,
		Topic:    topics.QueriesApproved,
		Producer: producer,
	}, kafkatransport.PermanentFailures(isInvalid)(e.EmbedQuery), validating(v, DecodeQueryApproved), EncodeQueryEmbedded(topics.QueriesEmbedded, time.Now), append([]kafkatransport.SubscriberOption{kafkatransport.SubscriberKeyConcurrency(kafkatransport.RequestLanes)}, opts...)...)
}

// validating checks a message's payload against the JSON Schema of its
// ce_type with v before dec decodes it; a nil v checks nothing. Failures
// are permanent.
func validating(v *events.Validator, dec kafkatransport.DecodeRequestFunc) kafkatransport.DecodeRequestFunc {
	if v == nil {
		return dec
	}
	return func(ctx context.Context, msg kafka.Message) (any, error) {
		env, err := events.ParseHeaders(msg.Headers)
		if err != nil {
			return nil, kafkatransport.Permanent(fmt.Errorf("%w: %w", ErrInvalid, err))
		}
		if err := v.Validate(env.Type, msg.Value); err != nil {
			return nil, kafkatransport.Permanent(fmt.Errorf("%w: %w", ErrInvalid, err))
		}
		return dec(ctx, msg)
	}
}

// DecodeChunkCreated decodes a tributary.chunk.created event into an
// EmbedChunkRequest. A payload whose tenant differs from the tenantid
// header is refused. Every error is permanent.
func DecodeChunkCreated(_ context.Context, msg kafka.Message) (any, error) {
	var c events.ChunkCreated
	env, err := events.Unmarshal(msg, &c)
	if err != nil {
		return nil, kafkatransport.Permanent(fmt.Errorf("%w: %w", ErrInvalid, err))
	}
	if c.TenantID != env.TenantID {
		return nil, kafkatransport.Permanent(fmt.Errorf("%w: payload tenant %q differs from header tenant %q", ErrInvalid, c.TenantID, env.TenantID))
	}
	return EmbedChunkRequest{Chunk: c}, nil
}

// DecodeQueryApproved decodes a tributary.query.approved event into an
// EmbedQueryRequest, with the same checks as DecodeChunkCreated.
func DecodeQueryApproved(_ context.Context, msg kafka.Message) (any, error) {
	var q events.QueryApproved
	env, err := events.Unmarshal(msg, &q)
	if err != nil {
		return nil, kafkatransport.Permanent(fmt.Errorf("%w: %w", ErrInvalid, err))
	}
	if q.TenantID != env.TenantID {
		return nil, kafkatransport.Permanent(fmt.Errorf("%w: payload tenant %q differs from header tenant %q", ErrInvalid, q.TenantID, env.TenantID))
	}
	return EmbedQueryRequest{Query: q}, nil
}

// envelope builds the output event's envelope: tenant, correlation id and
// a child span of the input's trace come from ctx (the subscriber puts the
// input event's there); the id is deterministic.
func envelope(ctx context.Context, typ, id, tenant string, now func() time.Time) events.Envelope {
	env := events.NewEnvelope(events.WithTenant(ctx, tenant), typ, EventSource)
	env.ID = id
	env.Time = now().UTC()
	return env
}

// ChunkEventID is the ce_id of the chunk.embedded event of a chunk: the
// same chunk embedded by the same model always gets the same id, so a
// replay carries the same idempotency key.
func ChunkEventID(chunkID, model string) string {
	return events.DeterministicID(chunkID, events.TypeChunkEmbedded, model)
}

// QueryEventID is the ce_id of the query.embedded event of a request.
func QueryEventID(tenant, requestID, model string) string {
	return events.DeterministicID(tenant, requestID, events.TypeQueryEmbedded, model)
}

// EncodeChunkEmbedded returns the encoder of EmbedChunkResponses: one
// chunk.embedded event on topic, keyed by document id.
func EncodeChunkEmbedded(topic string, now func() time.Time) kafkatransport.EncodeResponseFunc {
	return func(ctx context.Context, response any) ([]kafka.Message, error) {
		resp := response.(EmbedChunkResponse)
		c := resp.Embedded
		msg, err := events.MarshalWith(envelope(ctx, events.TypeChunkEmbedded, ChunkEventID(c.ChunkID, c.Model), c.TenantID, now), c)
		if err != nil {
			return nil, kafkatransport.Permanent(fmt.Errorf("marshal chunk.embedded %s: %w", c.ChunkID, err))
		}
		msg.Topic = topic
		return []kafka.Message{msg}, nil
	}
}

// EncodeQueryEmbedded returns the encoder of EmbedQueryResponses: one
// query.embedded event on topic, keyed by request id.
func EncodeQueryEmbedded(topic string, now func() time.Time) kafkatransport.EncodeResponseFunc {
	return func(ctx context.Context, response any) ([]kafka.Message, error) {
		resp := response.(EmbedQueryResponse)
		q := resp.Embedded
		msg, err := events.MarshalWith(envelope(ctx, events.TypeQueryEmbedded, QueryEventID(q.TenantID, q.RequestID, q.Model), q.TenantID, now), q)
		if err != nil {
			return nil, kafkatransport.Permanent(fmt.Errorf("marshal query.embedded %s: %w", q.RequestID, err))
		}
		msg.Topic = topic
		return []kafka.Message{msg}, nil
	}
}
