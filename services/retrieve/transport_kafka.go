package retrieve

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/go-kit/kit/endpoint"
	"github.com/segmentio/kafka-go"

	"github.com/tributary-rag/tributary/pkg/events"
	"github.com/tributary-rag/tributary/pkg/kafkatransport"
)

// EventSource is the ce_source of every event the service produces.
const EventSource = "tributary/retrieve"

// Consumer groups, one per topic: each topic has its own kafka-go reader,
// and separate groups keep a rebalance of the indexing consumers from
// pausing queries (and the other way round).
const (
	GroupChunks    = "retrieve.chunks"
	GroupDocuments = "retrieve.documents"
	GroupQueries   = "retrieve.queries"
)

// Producer writes messages and returns once every in-sync replica has
// them. *kafkatransport.Publisher implements it.
type Producer interface {
	WriteMessages(ctx context.Context, msgs ...kafka.Message) error
}

// DefaultChunkBatch is how many queued chunk messages of a partition the
// chunks subscriber indexes with one upsert when Endpoints.IndexChunks is
// set.
const DefaultChunkBatch = 64

// NewChunksSubscriber consumes tributary.chunks.embedded.v1 into
// IndexChunk. The point is written with wait=true inside the endpoint, so
// the offset is committed only after the point is durable. When
// e.IndexChunks is set, the messages queued on a partition (up to
// DefaultChunkBatch) are indexed together with one wait=true upsert; a
// failed batch falls back to IndexChunk one message at a time, and an
// invalid chunk is dead-lettered alone. kafkatransport.SubscriberBatch(1,
// 0) in opts turns batching off.
func NewChunksSubscriber(brokers []string, topic string, producer Producer, e Endpoints, opts ...kafkatransport.SubscriberOption) *kafkatransport.Subscriber {
	if e.IndexChunks != nil {
		opts = append([]kafkatransport.SubscriberOption{
			kafkatransport.SubscriberBatch(DefaultChunkBatch, 0),
			kafkatransport.SubscriberBatchEndpoint(e.IndexChunks),
		}, opts...)
	}
	return kafkatransport.NewSubscriber(kafkatransport.SubscriberConfig{
		Brokers: brokers, Group: GroupChunks, Topic: topic, Producer: producer,
	}, storeOutages(kafkatransport.PermanentFailures(permanent)(e.IndexChunk)), DecodeChunkEmbedded, nil, opts...)
}

// NewDocumentsSubscriber consumes tributary.documents.v1: document.deleted
// into DeleteDocument, document.accepted into AcceptDocument (which acts
// only on versions without chunks); other types are committed untouched.
func NewDocumentsSubscriber(brokers []string, topic string, producer Producer, e Endpoints, opts ...kafkatransport.SubscriberOption) *kafkatransport.Subscriber {
	route := func(ctx context.Context, request any) (any, error) {
		switch request.(type) {
		case DeleteDocumentRequest:
			return e.DeleteDocument(ctx, request)
		case AcceptDocumentRequest:
			return e.AcceptDocument(ctx, request)
		}
		return IgnoredRequest{}, nil
	}
	return kafkatransport.NewSubscriber(kafkatransport.SubscriberConfig{
		Brokers: brokers, Group: GroupDocuments, Topic: topic, Producer: producer,
	}, storeOutages(kafkatransport.PermanentFailures(permanent)(route)), DecodeDocumentEvent, nil, opts...)
}

// NewQueriesSubscriber consumes tributary.queries.embedded.v1 into
// Retrieve and produces each answer to out (queries.retrieved) before the
// query's offset is committed.
func NewQueriesSubscriber(brokers []string, topic, out string, producer Producer, e Endpoints, opts ...kafkatransport.SubscriberOption) *kafkatransport.Subscriber {
	return kafkatransport.NewSubscriber(kafkatransport.SubscriberConfig{
		Brokers: brokers, Group: GroupQueries, Topic: topic, Producer: producer,
	}, kafkatransport.PermanentFailures(permanent)(e.Retrieve), DecodeQueryEmbedded, EncodeQueryRetrieved(out, time.Now), append([]kafkatransport.SubscriberOption{kafkatransport.SubscriberKeyConcurrency(kafkatransport.RequestLanes)}, opts...)...)
}

// storeOutages makes a vector store failure kafkatransport.Unavailable on
// the indexing paths: chunks and deletes wait (with backoff) for the store
// to come back instead of being dead-lettered, which left a document that
// got a 202 unindexed for good. Queries keep their bounded retries: the
// asker has stopped waiting long before an outage ends.
func storeOutages(next endpoint.Endpoint) endpoint.Endpoint {
	return func(ctx context.Context, request any) (any, error) {
		resp, err := next(ctx, request)
		if errors.Is(err, ErrStore) {
			return nil, kafkatransport.Unavailable(err)
		}
		return resp, err
	}
}

// permanent reports whether a business error of the endpoints is
// permanent for the subscriber (dead-lettered at once): ErrInvalid is, the
// rest is retried with backoff (see Retryable).
func permanent(err error) bool { return !Retryable(err) }

// checkTenant requires the payload's tenant to be the envelope's: an event
// never acts for one tenant while its headers name another.
func checkTenant(env events.Envelope, payloadTenant string) error {
	if env.TenantID == "" || payloadTenant != env.TenantID {
		return kafkatransport.Permanent(fmt.Errorf("%w: payload tenant %q, header tenant %q", ErrInvalid, payloadTenant, env.TenantID))
	}
	return nil
}

// DecodeChunkEmbedded decodes a tributary.chunk.embedded event into an
// IndexChunkRequest. Every error is permanent.
func DecodeChunkEmbedded(_ context.Context, msg kafka.Message) (any, error) {
	var c events.ChunkEmbedded
	env, err := events.Unmarshal(msg, &c)
	if err != nil {
		return nil, kafkatransport.Permanent(fmt.Errorf("%w: %w", ErrInvalid, err))
	}
	if err := checkTenant(env, c.TenantID); err != nil {
		return nil, err
	}
	return IndexChunkRequest{Chunk: c}, nil
}

// DecodeDocumentEvent decodes an event of the documents topic into a
// DeleteDocumentRequest, an AcceptDocumentRequest or an IgnoredRequest.
// Every error is permanent.
func DecodeDocumentEvent(_ context.Context, msg kafka.Message) (any, error) {
	env, p, err := events.Decode(msg)
	if err != nil {
		return nil, kafkatransport.Permanent(fmt.Errorf("%w: %w", ErrInvalid, err))
	}
	switch d := p.(type) {
	case *events.DocumentDeleted:
		if err := checkTenant(env, d.TenantID); err != nil {
			return nil, err
		}
		return DeleteDocumentRequest{Document: *d}, nil
	case *events.DocumentAccepted:
		if err := checkTenant(env, d.TenantID); err != nil {
			return nil, err
		}
		return AcceptDocumentRequest{Document: *d}, nil
	case *events.DocumentRejected, *events.DocumentIndexed:
		return IgnoredRequest{}, nil
	}
	return nil, kafkatransport.Permanent(fmt.Errorf("%w: %s does not belong on the documents topic", ErrInvalid, env.Type))
}

// DecodeQueryEmbedded decodes a tributary.query.embedded event into a
// RetrieveRequest. Every error is permanent.
func DecodeQueryEmbedded(_ context.Context, msg kafka.Message) (any, error) {
	var q events.QueryEmbedded
	env, err := events.Unmarshal(msg, &q)
	if err != nil {
		return nil, kafkatransport.Permanent(fmt.Errorf("%w: %w", ErrInvalid, err))
	}
	if err := checkTenant(env, q.TenantID); err != nil {
		return nil, err
	}
	if q.RequestID == "" {
		return nil, kafkatransport.Permanent(fmt.Errorf("%w: query without request id", ErrInvalid))
	}
	return RetrieveRequest{Query: q}, nil
}

// RetrievedID returns the ce_id of a request's query.retrieved event:
// deterministic, so an answer produced again after a redelivery carries
// the same idempotency key.
func RetrievedID(tenant, requestID string) string {
	return events.DeterministicID(tenant, requestID, events.TypeQueryRetrieved)
}

// EncodeQueryRetrieved returns the encoder of Retrieve's responses: one
// query.retrieved event on topic, keyed by request id, continuing the
// query's trace and keeping its tenant and correlation id (they ride in
// ctx, set by the subscriber from the query's envelope).
func EncodeQueryRetrieved(topic string, now func() time.Time) kafkatransport.EncodeResponseFunc {
	return func(ctx context.Context, response any) ([]kafka.Message, error) {
		resp, ok := response.(RetrieveResponse)
		if !ok {
			return nil, errors.New("encode query.retrieved: unexpected response")
		}
		r := resp.Retrieved
		env := events.NewEnvelope(events.WithTenant(ctx, r.TenantID), events.TypeQueryRetrieved, EventSource)
		env.ID = RetrievedID(r.TenantID, r.RequestID)
		env.Time = now().UTC()
		msg, err := events.MarshalWith(env, r)
		if err != nil {
			return nil, fmt.Errorf("marshal query.retrieved: %w", err)
		}
		msg.Topic = topic
		return []kafka.Message{msg}, nil
	}
}

// KafkaEmitter publishes document.indexed on the documents topic. It is
// safe for concurrent use if its Producer is.
type KafkaEmitter struct {
	pub   Producer
	topic string
	now   func() time.Time
}

// NewKafkaEmitter returns an emitter writing to topic (the documents
// topic) through pub.
func NewKafkaEmitter(pub Producer, topic string) *KafkaEmitter {
	return &KafkaEmitter{pub: pub, topic: topic, now: time.Now}
}

// IndexedID returns the ce_id of a version's document.indexed event.
func IndexedID(tenant, documentID string, version int) string {
	return events.DeterministicID(tenant, documentID, strconv.Itoa(version), events.TypeDocumentIndexed)
}

// Indexed implements Emitter.
func (e *KafkaEmitter) Indexed(ctx context.Context, d events.DocumentIndexed) error {
	env := events.NewEnvelope(events.WithTenant(ctx, d.TenantID), events.TypeDocumentIndexed, EventSource)
	env.ID = IndexedID(d.TenantID, d.DocumentID, d.Version)
	env.Time = e.now().UTC()
	msg, err := events.MarshalWith(env, d)
	if err != nil {
		return fmt.Errorf("marshal document.indexed: %w", err)
	}
	msg.Topic = e.topic
	return e.pub.WriteMessages(ctx, msg)
}
