package generate

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/tributary-rag/tributary/pkg/events"
	"github.com/tributary-rag/tributary/pkg/kafkatransport"
)

// KafkaGroup is the consumer group of the service.
const KafkaGroup = "generate"

// EventSource is the ce_source of every event the service produces.
const EventSource = "tributary/generate"

// Completed is the payload of tributary.answer.completed as this service
// writes it: the contract's events.AnswerCompleted plus how the answer was
// made. Consumers that decode events.AnswerCompleted read it unchanged and
// ignore the extra fields.
type Completed struct {
	events.AnswerCompleted
	// Mode is "openai", "engine", "extractive" or "no_context".
	Mode string `json:"mode"`
	// PromptVersion names the prompt template, e.g. "prompt.v1".
	PromptVersion string `json:"prompt_version,omitempty"`
	// Language is the question's language ("en" or "zh").
	Language string   `json:"language,omitempty"`
	Timings  *Timings `json:"timings,omitempty"`
	// Error says why the backend failed, when it did.
	Error string `json:"error,omitempty"`
}

// DeltaID returns the ce_id of delta seq of a request: deterministic, so a
// query answered again after a redelivery carries the same idempotency
// keys and consumers drop the duplicates.
func DeltaID(tenant, requestID string, seq int) string {
	return events.DeterministicID(tenant, requestID, events.TypeAnswerDelta, strconv.Itoa(seq))
}

// CompletedID returns the ce_id of a request's answer.completed event.
func CompletedID(tenant, requestID string) string {
	return events.DeterministicID(tenant, requestID, events.TypeAnswerCompleted)
}

// Producer writes messages and returns once every in-sync replica has
// them; messages of one call that share a key keep their order.
// *kafkatransport.Publisher implements it.
type Producer interface {
	WriteMessages(ctx context.Context, msgs ...kafka.Message) error
}

// KafkaEmitter is the Emitter that publishes answers to the
// answers.generated topic, keyed by request id (one partition per request,
// so in order). A stream's deltas are written by one goroutine in batches:
// whatever accumulated while the previous write was in flight goes in the
// next, so a fast backend is not held to one broker round trip per token
// and a slow one still sees each token published at once. KafkaEmitter is
// safe for concurrent use.
type KafkaEmitter struct {
	pub   Producer
	topic string
	now   func() time.Time
}

// NewKafkaEmitter returns an emitter writing to topic through pub.
func NewKafkaEmitter(pub Producer, topic string) *KafkaEmitter {
	return &KafkaEmitter{pub: pub, topic: topic, now: time.Now}
}

// Open implements Emitter.
func (e *KafkaEmitter) Open(ctx context.Context, q Question) Stream {
	s := &kafkaStream{e: e, ctx: ctx, q: q, wake: make(chan struct{}, 1), done: make(chan struct{})}
	go s.run()
	return s
}

func (e *KafkaEmitter) message(ctx context.Context, tenant, id string, p events.Payload) (kafka.Message, error) {
	env := events.NewEnvelope(events.WithTenant(ctx, tenant), p.EventType(), EventSource)
	env.ID = id
	env.TenantID = tenant
	env.Time = e.now().UTC()
	msg, err := events.MarshalWith(env, p)
	if err != nil {
		return kafka.Message{}, err
	}
	msg.Topic = e.topic
	return msg, nil
}

type kafkaStream struct {
	e    *KafkaEmitter
	ctx  context.Context //nolint:containedctx // the stream lives for one request
	q    Question
	wake chan struct{}
	done chan struct{}

	mu      sync.Mutex
	pending []kafka.Message
	err     error
	closed  bool
}

func (s *kafkaStream) Delta(seq int, text string) error {
	msg, err := s.e.message(s.ctx, s.q.TenantID, DeltaID(s.q.TenantID, s.q.RequestID, seq),
		events.AnswerDelta{RequestID: s.q.RequestID, TenantID: s.q.TenantID, Seq: seq, Text: text})
	if err != nil {
		return fmt.Errorf("marshal answer.delta: %w", err)
	}
	s.mu.Lock()
	if s.err != nil {
		err := s.err
		s.mu.Unlock()
		return err
	}
	s.pending = append(s.pending, msg)
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
	return nil
}

// run writes pending deltas until the stream is finished or a write fails.
func (s *kafkaStream) run() {
	defer close(s.done)
	for {
		s.mu.Lock()
		batch, closed := s.pending, s.closed
		s.pending = nil
		s.mu.Unlock()
		if len(batch) > 0 {
			if err := s.e.pub.WriteMessages(s.ctx, batch...); err != nil {
				s.mu.Lock()
				s.err = err
				s.mu.Unlock()
				return
			}
			continue
		}
		if closed {
			return
		}
		select {
		case <-s.wake:
		case <-s.ctx.Done():
			s.mu.Lock()
			s.err = s.ctx.Err()
			s.mu.Unlock()
			return
		}
	}
}

func (s *kafkaStream) Finish(ctx context.Context, a *Answer) error {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
	<-s.done
	s.mu.Lock()
	err := s.err
	s.mu.Unlock()
	if err != nil || a == nil {
		return err
	}
	p := Completed{
		AnswerCompleted: events.AnswerCompleted{
			RequestID:    a.RequestID,
			TenantID:     a.TenantID,
			FinishReason: a.FinishReason,
			Text:         a.Text,
			Deltas:       a.Deltas,
			Citations:    a.Citations,
			Model:        a.Model,
			Usage:        &events.Usage{PromptTokens: a.Usage.PromptTokens, CompletionTokens: a.Usage.CompletionTokens},
		},
		Mode:          a.Mode,
		PromptVersion: a.PromptVersion,
		Language:      a.Lang,
		Timings:       &a.Timings,
		Error:         a.Error,
	}
	msg, err := s.e.message(ctx, a.TenantID, CompletedID(a.TenantID, a.RequestID), p)
	if err != nil {
		return fmt.Errorf("marshal answer.completed: %w", err)
	}
	return s.e.pub.WriteMessages(ctx, msg)
}

// NewAnswerSubscriber returns the Subscriber that answers every query on
// the queries.retrieved topic. The endpoint publishes the answer's events
// itself while it streams, so the subscriber has nothing to produce and
// commits once the completed event is durable. Malformed queries go to the
// dead-letter topic at once; publishing failures are retried with backoff.
// An empty group means KafkaGroup.
func NewAnswerSubscriber(brokers []string, group, topic string, producer kafkatransport.Producer, e Endpoints, opts ...kafkatransport.SubscriberOption) *kafkatransport.Subscriber {
	if group == "" {
		group = KafkaGroup
	}
	return kafkatransport.NewSubscriber(kafkatransport.SubscriberConfig{
		Brokers:  brokers,
		Group:    group,
		Topic:    topic,
		Producer: producer,
	}, kafkatransport.PermanentFailures(permanent)(e.Answer), DecodeQueryRetrieved, nil, append([]kafkatransport.SubscriberOption{kafkatransport.SubscriberKeyConcurrency(kafkatransport.RequestLanes)}, opts...)...)
}

// permanent reports whether a business error of the endpoint is
// permanent for the subscriber: ErrInvalid is, the rest are retried.
func permanent(err error) bool { return errors.Is(err, ErrInvalid) }

// DecodeQueryRetrieved decodes a tributary.query.retrieved event into an
// AnswerRequest. The tenant comes from the tenantid header; a payload that
// names another tenant is refused. Every error is permanent.
func DecodeQueryRetrieved(_ context.Context, msg kafka.Message) (any, error) {
	var p events.QueryRetrieved
	env, err := events.Unmarshal(msg, &p)
	if err != nil {
		return nil, kafkatransport.Permanent(fmt.Errorf("%w: %w", ErrInvalid, err))
	}
	if p.TenantID != "" && p.TenantID != env.TenantID {
		return nil, kafkatransport.Permanent(fmt.Errorf("%w: payload tenant %q differs from header tenant %q", ErrInvalid, p.TenantID, env.TenantID))
	}
	if p.RequestID == "" {
		return nil, kafkatransport.Permanent(fmt.Errorf("%w: no request_id", ErrInvalid))
	}
	if p.Mode == events.ModeSearch {
		// The edge's search reads the retrieval itself; an answer would
		// cost a generation nobody reads.
		return AnswerRequest{Skip: true}, nil
	}
	return AnswerRequest{Question: Question{
		RequestID: p.RequestID,
		TenantID:  env.TenantID,
		Question:  p.Question,
		Chunks:    p.Results,
	}}, nil
}
