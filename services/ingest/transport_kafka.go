package ingest

import (
	"context"
	"errors"
	"fmt"

	"github.com/go-kit/kit/endpoint"
	"github.com/segmentio/kafka-go"

	"github.com/tributary-rag/tributary/pkg/events"
	"github.com/tributary-rag/tributary/pkg/kafkatransport"
)

// KafkaGroup is the consumer group of the service.
const KafkaGroup = "ingest"

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
	}, permanentFailures(e.Ingest), DecodeIngestRequested, nil, opts...)
}

// permanentFailures marks the endpoint's non-retryable business errors as
// permanent for the subscriber.
func permanentFailures(next endpoint.Endpoint) endpoint.Endpoint {
	return func(ctx context.Context, request any) (any, error) {
		resp, err := next(ctx, request)
		if err != nil {
			return nil, err
		}
		if f, ok := resp.(endpoint.Failer); ok && f.Failed() != nil {
			if Retryable(f.Failed()) {
				return nil, f.Failed()
			}
			return nil, kafkatransport.Permanent(f.Failed())
		}
		return resp, nil
	}
}

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
		Principal: Principal{Tenant: env.TenantID},
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
