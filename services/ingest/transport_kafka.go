package ingest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/tributary-rag/tributary/pkg/events"
	"github.com/tributary-rag/tributary/pkg/kafkatransport"
)

// Consumer groups, one per topic as in the retrieve service: each
// subscriber has its own kafka-go reader, and separate groups keep a
// rebalance of one from pausing the other.
const (
	// KafkaGroup consumes tributary.ingest.requests.v1. It keeps the
	// service's name from before there was a second group: under a new
	// name the group would start over and replay every request.
	KafkaGroup = "ingest"
	// KafkaGroupDocuments consumes tributary.documents.v1 for
	// document.indexed (see DocumentsGroup).
	KafkaGroupDocuments = "ingest.documents"
)

// DocumentsGroup returns the consumer group of the documents subscriber
// of an instance: KafkaGroupDocuments, followed by "." and instanceID when
// that is not empty. Document state is per instance, so every instance
// must read every document.indexed event (and ignore those of documents
// it does not hold): instances side by side need distinct ids, or each
// would see only the events of its share of the partitions.
func DocumentsGroup(instanceID string) string {
	if instanceID == "" {
		return KafkaGroupDocuments
	}
	return KafkaGroupDocuments + "." + instanceID
}

// NewIngestSubscriber returns the Subscriber that serves
// tributary.ingest.requests.v1: every request takes the same path as
// POST /v1/documents. The endpoint publishes the document's events itself
// (before it records the version), so the subscriber has nothing to
// produce and commits once the endpoint returns. Requests that can never
// succeed (malformed, unsupported, unreadable, too large, forbidden) go to
// the dead-letter topic at once with the reason; broker failures are
// retried with backoff.
func NewIngestSubscriber(brokers []string, topic string, producer Producer, e Endpoints, opts ...kafkatransport.SubscriberOption) *kafkatransport.Subscriber {
	opts = append([]kafkatransport.SubscriberOption{
		kafkatransport.SubscriberBefore(correlationFromEvent),
	}, opts...)
	return kafkatransport.NewSubscriber(kafkatransport.SubscriberConfig{
		Brokers:  brokers,
		Group:    KafkaGroup,
		Topic:    topic,
		Producer: producer,
	}, kafkatransport.PermanentFailures(permanent)(e.Ingest), DecodeIngestRequested, nil, opts...)
}

// NewDocumentsSubscriber returns the Subscriber that serves
// tributary.documents.v1 in group (empty means KafkaGroupDocuments; see
// DocumentsGroup): tributary.document.indexed goes to MarkIndexed, so GET
// reports the version as indexed; every other event type on the topic
// (the service's own accepted, rejected and deleted events, and types
// added later) is committed untouched. A malformed document.indexed event is dead-lettered
// at once to "<topic>.dlq"; a failed store write is retried with backoff.
// Nothing is produced.
func NewDocumentsSubscriber(brokers []string, group, topic string, producer Producer, e Endpoints, opts ...kafkatransport.SubscriberOption) *kafkatransport.Subscriber {
	if group == "" {
		group = KafkaGroupDocuments
	}
	route := func(ctx context.Context, request any) (any, error) {
		if req, ok := request.(MarkIndexedRequest); ok {
			return e.MarkIndexed(ctx, req)
		}
		return request, nil
	}
	return kafkatransport.NewSubscriber(kafkatransport.SubscriberConfig{
		Brokers:  brokers,
		Group:    group,
		Topic:    topic,
		Producer: producer,
	}, kafkatransport.PermanentFailures(permanent)(route), DecodeDocumentEvent, nil, opts...)
}

// IgnoredEvent is what DecodeDocumentEvent returns for an event type the
// service does not act on.
type IgnoredEvent struct {
	// Type is the event's ce_type.
	Type string
}

// DecodeDocumentEvent decodes an event of the documents topic: a
// tributary.document.indexed event into a MarkIndexedRequest, any message
// whose ce_type names another type into an IgnoredEvent, without looking
// further (other consumers of the topic judge those). A document.indexed
// event that is not a valid event (envelope, JSON, payload tenant other
// than the tenantid header), and a message without ce_type, is a permanent
// error. The service checks the document id and version.
func DecodeDocumentEvent(_ context.Context, msg kafka.Message) (any, error) {
	if typ := lastHeader(msg.Headers, events.HeaderType); typ != "" && typ != events.TypeDocumentIndexed {
		return IgnoredEvent{Type: typ}, nil
	}
	var p events.DocumentIndexed
	env, err := events.Unmarshal(msg, &p)
	if err != nil {
		return nil, kafkatransport.Permanent(fmt.Errorf("%w: %w", ErrInvalid, err))
	}
	if p.TenantID != env.TenantID {
		return nil, kafkatransport.Permanent(fmt.Errorf("%w: payload tenant %q differs from header tenant %q", ErrInvalid, p.TenantID, env.TenantID))
	}
	return MarkIndexedRequest{Tenant: env.TenantID, DocumentID: p.DocumentID, Version: p.Version}, nil
}

// lastHeader returns the value of the last header named key, as
// events.ParseHeaders reads it, or "".
func lastHeader(hs []kafka.Header, key string) string {
	v := ""
	for _, h := range hs {
		if h.Key == key {
			v = string(h.Value)
		}
	}
	return v
}

// permanent reports whether a business error of the endpoints is
// permanent for the subscriber: whatever Retryable does not retry.
func permanent(err error) bool { return !Retryable(err) }

// correlationFromEvent ties the document's events to the request that
// caused them when the request carries no correlation id.
func correlationFromEvent(ctx context.Context, msg kafka.Message) context.Context {
	if correlationFrom(ctx) != "" {
		return ctx
	}
	for _, h := range msg.Headers {
		if h.Key == events.HeaderID {
			return WithCorrelationID(ctx, string(h.Value))
		}
	}
	return ctx
}

// DecodeIngestRequested decodes a tributary.ingest.requested event into an
// IngestRequest. The tenant comes from the tenantid header; a payload that
// names another tenant is refused. A Kafka producer acts for its whole
// tenant (write access to the topic is the credential), so the principal
// has no groups and the document's groups are taken as given. Every error
// is permanent.
func DecodeIngestRequested(_ context.Context, msg kafka.Message) (any, error) {
	var p events.IngestRequested
	env, err := events.Unmarshal(msg, &p)
	if err != nil {
		return nil, kafkatransport.Permanent(fmt.Errorf("%w: %w", ErrInvalid, err))
	}
	if p.TenantID != "" && p.TenantID != env.TenantID {
		return nil, kafkatransport.Permanent(fmt.Errorf("%w: payload tenant %q differs from header tenant %q", ErrInvalid, p.TenantID, env.TenantID))
	}
	return IngestRequest{
		Principal: Principal{Tenant: env.TenantID, Name: "kafka:" + env.Source},
		Document: Document{
			ID:          p.DocumentID,
			Title:       p.Title,
			ContentType: p.ContentType,
			Content:     p.Content,
			Source:      p.Source,
			Groups:      p.Groups,
			Metadata:    p.Metadata,
		},
	}, nil
}

// Retryable reports whether a failed ingest request may succeed when
// retried: only when events could not be published or the store could not
// be written. Everything else (malformed, unsupported, unreadable, too
// large, forbidden) is permanent and goes to the dead-letter topic at once.
func Retryable(err error) bool {
	if err == nil {
		return false
	}
	switch {
	case errors.Is(err, ErrInvalid), errors.Is(err, ErrUnauthenticated), errors.Is(err, ErrForbidden),
		errors.Is(err, ErrNotFound), errors.Is(err, ErrTooLarge), errors.Is(err, ErrUnsupportedType),
		errors.Is(err, ErrUnreadable):
		return false
	}
	return true
}

// EventSource is the ce_source of every event the service produces.
const EventSource = "tributary/ingest"

// publishBatch is how many messages one write carries; a large
// document is published in several calls, in order.
const publishBatch = 512

// Producer writes messages to their topics and returns once all of them
// are acknowledged by every in-sync replica; messages of one call that
// share a key keep their order. *kafkatransport.Publisher implements it.
type Producer interface {
	WriteMessages(ctx context.Context, msgs ...kafka.Message) error
}

// KafkaEmitter is the Emitter that turns versions and deletions into
// CloudEvents on the documents and chunks topics. Event ids are
// deterministic (chunk id, document version), so a version published twice
// carries the same idempotency keys. KafkaEmitter is safe for concurrent
// use if its Producer is.
type KafkaEmitter struct {
	pub    Producer
	topics events.Topics
	now    func() time.Time
}

// NewKafkaEmitter returns an emitter that publishes to the topics of
// prefix (empty means events.DefaultPrefix) through pub.
func NewKafkaEmitter(pub Producer, prefix string) *KafkaEmitter {
	return &KafkaEmitter{pub: pub, topics: events.NewTopics(prefix), now: time.Now}
}

// Topics returns the topic names the emitter writes to and reads from.
func (e *KafkaEmitter) Topics() events.Topics { return e.topics }

func (e *KafkaEmitter) envelope(ctx context.Context, tenant, typ, id string) events.Envelope {
	env := events.NewEnvelope(events.WithTenant(ctx, tenant), typ, EventSource)
	env.ID = id
	env.TenantID = tenant
	env.Time = e.now().UTC()
	if c := correlationFrom(ctx); c != "" {
		env.CorrelationID = c
	}
	return env
}

// Accepted publishes the chunk.created events of v in index order on the
// chunks topic, then document.accepted on the documents topic.
func (e *KafkaEmitter) Accepted(ctx context.Context, v Version) error {
	msgs := make([]kafka.Message, 0, min(len(v.Pieces)+1, publishBatch))
	flush := func() error {
		if len(msgs) == 0 {
			return nil
		}
		if err := e.pub.WriteMessages(ctx, msgs...); err != nil {
			return err
		}
		msgs = msgs[:0]
		return nil
	}
	for i, p := range v.Pieces {
		id := events.ChunkID(v.Tenant, v.DocumentID, v.Version, i)
		h := sha256.Sum256([]byte(p.Text))
		payload := events.ChunkCreated{
			ChunkID:     id,
			DocumentID:  v.DocumentID,
			TenantID:    v.Tenant,
			Version:     v.Version,
			Index:       i,
			ChunkCount:  len(v.Pieces),
			Text:        p.Text,
			Start:       p.Start,
			End:         p.End,
			Page:        p.Page,
			PageEnd:     p.PageEnd,
			HeadingPath: p.HeadingPath,
			ContentHash: "sha256:" + hex.EncodeToString(h[:]),
			Title:       v.Title,
			Source:      v.Source,
			ContentType: v.ContentType,
			Groups:      v.Groups,
			Metadata:    v.Metadata,
		}
		msg, err := events.MarshalWith(e.envelope(ctx, v.Tenant, events.TypeChunkCreated,
			events.DeterministicID(id, events.TypeChunkCreated)), payload)
		if err != nil {
			return fmt.Errorf("marshal chunk %d: %w", i, err)
		}
		msg.Topic = e.topics.Chunks
		msgs = append(msgs, msg)
		if len(msgs) == publishBatch {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	acc := events.DocumentAccepted{
		DocumentID:  v.DocumentID,
		TenantID:    v.Tenant,
		Version:     v.Version,
		Title:       v.Title,
		Source:      v.Source,
		ContentType: v.ContentType,
		ContentHash: v.ContentHash,
		SizeBytes:   v.Size,
		ChunkCount:  len(v.Pieces),
		Pages:       v.Pages,
		Groups:      v.Groups,
		Metadata:    v.Metadata,
	}
	msg, err := events.MarshalWith(e.envelope(ctx, v.Tenant, events.TypeDocumentAccepted,
		events.DeterministicID(v.Tenant, v.DocumentID, strconv.Itoa(v.Version), events.TypeDocumentAccepted)), acc)
	if err != nil {
		return fmt.Errorf("marshal document.accepted: %w", err)
	}
	msg.Topic = e.topics.Documents
	msgs = append(msgs, msg)
	return flush()
}

// Rejected publishes document.rejected with the reason's code and message.
func (e *KafkaEmitter) Rejected(ctx context.Context, tenant, documentID string, reason error) error {
	_, code := HTTPStatus(reason)
	p := events.DocumentRejected{
		DocumentID: documentID,
		TenantID:   tenant,
		Code:       code,
		Message:    reason.Error(),
	}
	msg, err := events.MarshalWith(e.envelope(ctx, tenant, events.TypeDocumentRejected, events.NewID()), p)
	if err != nil {
		return fmt.Errorf("marshal document.rejected: %w", err)
	}
	msg.Topic = e.topics.Documents
	return e.pub.WriteMessages(ctx, msg)
}

// Deleted publishes document.deleted for the last version of a document.
func (e *KafkaEmitter) Deleted(ctx context.Context, tenant, documentID string, version int) error {
	p := events.DocumentDeleted{DocumentID: documentID, TenantID: tenant, Version: version}
	msg, err := events.MarshalWith(e.envelope(ctx, tenant, events.TypeDocumentDeleted,
		events.DeterministicID(tenant, documentID, strconv.Itoa(version), events.TypeDocumentDeleted)), p)
	if err != nil {
		return fmt.Errorf("marshal document.deleted: %w", err)
	}
	msg.Topic = e.topics.Documents
	return e.pub.WriteMessages(ctx, msg)
}
