package moderate

import (
	"context"
	"errors"
	"fmt"

	"github.com/segmentio/kafka-go"

	"github.com/tributary-rag/tributary/pkg/events"
	"github.com/tributary-rag/tributary/pkg/kafkatransport"
)

// KafkaGroup is the consumer group of the service.
const KafkaGroup = "moderate"

// EventSource is the ce_source of every event the service produces.
const EventSource = "tributary/moderate"

// NewQuerySubscriber returns the Subscriber that applies the input policy
// to every question on queries.received. The verdict and its audit event
// are produced together before the question's offset is committed. An
// empty group means KafkaGroup.
func NewQuerySubscriber(brokers []string, group string, topics events.Topics, producer kafkatransport.Producer, e Endpoints, opts ...kafkatransport.SubscriberOption) *kafkatransport.Subscriber {
	if group == "" {
		group = KafkaGroup
	}
	return kafkatransport.NewSubscriber(kafkatransport.SubscriberConfig{
		Brokers:  brokers,
		Group:    group,
		Topic:    topics.QueriesReceived,
		Producer: producer,
	}, kafkatransport.PermanentFailures(permanent)(e.Query), DecodeQueryReceived, EncodeEmissions(topics), append([]kafkatransport.SubscriberOption{kafkatransport.SubscriberKeyConcurrency(kafkatransport.RequestLanes)}, opts...)...)
}

// NewAnswerSubscriber returns the Subscriber that moderates every answer
// event on answers.generated. Each event's offset is committed once the
// moderated events it completed are durable; see docs/moderate.md for
// what a restart replays. An empty group means KafkaGroup.
func NewAnswerSubscriber(brokers []string, group string, topics events.Topics, producer kafkatransport.Producer, e Endpoints, opts ...kafkatransport.SubscriberOption) *kafkatransport.Subscriber {
	if group == "" {
		group = KafkaGroup
	}
	return kafkatransport.NewSubscriber(kafkatransport.SubscriberConfig{
		Brokers:  brokers,
		Group:    group,
		Topic:    topics.AnswersGenerated,
		Producer: producer,
	}, kafkatransport.PermanentFailures(permanent)(e.Answer), DecodeAnswerEvent, EncodeEmissions(topics), append([]kafkatransport.SubscriberOption{kafkatransport.SubscriberKeyConcurrency(kafkatransport.RequestLanes)}, opts...)...)
}

// NewContextSubscriber returns the Subscriber that screens the chunks
// retrieved for each question on queries.retrieved (the same event
// generate answers from), so that the output policy knows at answer time
// which sources carry injected instructions. An empty group means
// KafkaGroup.
func NewContextSubscriber(brokers []string, group string, topics events.Topics, producer kafkatransport.Producer, e Endpoints, opts ...kafkatransport.SubscriberOption) *kafkatransport.Subscriber {
	if group == "" {
		group = KafkaGroup
	}
	return kafkatransport.NewSubscriber(kafkatransport.SubscriberConfig{
		Brokers:  brokers,
		Group:    group,
		Topic:    topics.QueriesRetrieved,
		Producer: producer,
	}, kafkatransport.PermanentFailures(permanent)(e.Context), DecodeQueryRetrieved, EncodeEmissions(topics), append([]kafkatransport.SubscriberOption{kafkatransport.SubscriberKeyConcurrency(kafkatransport.RequestLanes)}, opts...)...)
}

// DecodeQueryRetrieved decodes a tributary.query.retrieved event. Every
// error is permanent.
func DecodeQueryRetrieved(_ context.Context, msg kafka.Message) (any, error) {
	var p events.QueryRetrieved
	if err := decodeQuery(msg, &p, &p.Query); err != nil {
		return nil, err
	}
	return ContextRequest{Retrieved: p}, nil
}

// decodeQuery unmarshals the query event msg into p, whose Query is q: the
// payload's tenant must be the header's (which then fills it) and the
// request id must be set. Every error is permanent.
func decodeQuery(msg kafka.Message, p events.Payload, q *events.Query) error {
	env, err := events.Unmarshal(msg, p)
	if err != nil {
		return kafkatransport.Permanent(fmt.Errorf("%w: %w", ErrInvalid, err))
	}
	if err := sameTenant(env, q.TenantID); err != nil {
		return err
	}
	if q.RequestID == "" {
		return kafkatransport.Permanent(fmt.Errorf("%w: no request_id", ErrInvalid))
	}
	q.TenantID = env.TenantID
	return nil
}

// permanent reports whether a business error of the endpoints is
// permanent for the subscriber: ErrInvalid is; the others (a policy
// evaluation failing) are retried.
func permanent(err error) bool { return errors.Is(err, ErrInvalid) }

// DecodeQueryReceived decodes a tributary.query.received event. The tenant
// comes from the tenantid header; a payload naming another tenant is
// refused. Every error is permanent.
func DecodeQueryReceived(_ context.Context, msg kafka.Message) (any, error) {
	var p events.QueryReceived
	if err := decodeQuery(msg, &p, &p.Query); err != nil {
		return nil, err
	}
	return QueryRequest{Query: p.Query}, nil
}

// DecodeAnswerEvent decodes a tributary.answer.delta or
// tributary.answer.completed event. A completed event keeps every JSON
// field, known or not. Every error is permanent.
func DecodeAnswerEvent(_ context.Context, msg kafka.Message) (any, error) {
	env, err := events.ParseHeaders(msg.Headers)
	if err != nil {
		return nil, kafkatransport.Permanent(fmt.Errorf("%w: %w", ErrInvalid, err))
	}
	var ev AnswerEvent
	switch env.Type {
	case events.TypeAnswerDelta:
		var d events.AnswerDelta
		if _, err := events.Unmarshal(msg, &d); err != nil {
			return nil, kafkatransport.Permanent(fmt.Errorf("%w: %w", ErrInvalid, err))
		}
		if d.Seq < 0 {
			return nil, kafkatransport.Permanent(fmt.Errorf("%w: negative seq %d", ErrInvalid, d.Seq))
		}
		if err := sameTenant(env, d.TenantID); err != nil {
			return nil, err
		}
		d.TenantID = env.TenantID
		ev = AnswerEvent{RequestID: d.RequestID, TenantID: env.TenantID, Delta: &d}
	case events.TypeAnswerCompleted:
		c, err := ParseCompleted(msg.Value)
		if err != nil {
			return nil, kafkatransport.Permanent(fmt.Errorf("%w: %w", ErrInvalid, err))
		}
		if err := sameTenant(env, c.TenantID); err != nil {
			return nil, err
		}
		ev = AnswerEvent{RequestID: c.RequestID, TenantID: env.TenantID, Completed: c}
	default:
		return nil, kafkatransport.Permanent(fmt.Errorf("%w: unexpected event type %q", ErrInvalid, env.Type))
	}
	if ev.RequestID == "" {
		return nil, kafkatransport.Permanent(fmt.Errorf("%w: no request_id", ErrInvalid))
	}
	return AnswerRequest{Event: ev}, nil
}

func sameTenant(env events.Envelope, payloadTenant string) error {
	if payloadTenant != "" && payloadTenant != env.TenantID {
		return kafkatransport.Permanent(fmt.Errorf("%w: payload tenant %q differs from header tenant %q", ErrInvalid, payloadTenant, env.TenantID))
	}
	return nil
}

// EncodeEmissions turns an EmitResponse into messages for the topics of
// topics, each with its deterministic ce_id and the trace and correlation
// id of the input.
func EncodeEmissions(topics events.Topics) kafkatransport.EncodeResponseFunc {
	return func(ctx context.Context, response any) ([]kafka.Message, error) {
		resp, ok := response.(EmitResponse)
		if !ok {
			return nil, fmt.Errorf("unexpected response %T", response)
		}
		msgs := make([]kafka.Message, 0, len(resp.Emissions))
		for _, em := range resp.Emissions {
			msg, err := Message(ctx, topics, em)
			if err != nil {
				return nil, err
			}
			msgs = append(msgs, msg)
		}
		return msgs, nil
	}
}

// Message builds the Kafka message of one emission.
func Message(ctx context.Context, topics events.Topics, em Emission) (kafka.Message, error) {
	var topic string
	switch em.Sink {
	case SinkApproved:
		topic = topics.QueriesApproved
	case SinkRejected:
		topic = topics.QueriesRejected
	case SinkModerated:
		topic = topics.AnswersModerated
	case SinkAudit:
		topic = topics.AuditEvents
	case SinkSearch:
		topic = topics.SearchesModerated
	default:
		return kafka.Message{}, fmt.Errorf("unknown sink %d", em.Sink)
	}
	tenant := ""
	if t, ok := em.Payload.(interface{ Tenant() string }); ok {
		tenant = t.Tenant()
	}
	env := events.NewEnvelope(events.WithTenant(ctx, tenant), em.Payload.EventType(), EventSource)
	env.ID = em.ID
	msg, err := events.MarshalWith(env, em.Payload)
	if err != nil {
		return kafka.Message{}, fmt.Errorf("marshal %s: %w", em.Payload.EventType(), err)
	}
	msg.Topic = topic
	return msg, nil
}
