package edge

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/go-kit/kit/endpoint"
	"github.com/segmentio/kafka-go"

	"github.com/tributary-rag/tributary/pkg/events"
	"github.com/tributary-rag/tributary/pkg/kafkatransport"
)

// GroupPrefix starts the consumer groups of the edge. Every replica has its
// own groups, so every replica reads every answer and keeps those of its
// own connections (see docs/edge.md, "Routing and scaling").
const GroupPrefix = "edge-"

// Groups returns the consumer groups of replica replicaID for the answers
// and rejections topics.
func Groups(replicaID string) (answers, rejected string) {
	return GroupPrefix + replicaID + ".answers", GroupPrefix + replicaID + ".rejected"
}

// DecodeReply is a kafkatransport.DecodeRequestFunc for the answers and
// rejections topics: it turns an answer.delta, answer.completed or
// query.rejected event into a DeliverRequest.
func DecodeReply(ctx context.Context, msg kafka.Message) (any, error) {
	req, err := kafkatransport.DecodeEvent(ctx, msg)
	if err != nil {
		return nil, err
	}
	ev, _ := req.(kafkatransport.Event)
	var r Reply
	switch p := ev.Payload.(type) {
	case *events.AnswerDelta:
		r = Reply{Kind: ReplyDelta, RequestID: p.RequestID, TenantID: p.TenantID, Seq: p.Seq, Text: p.Text}
	case *events.AnswerCompleted:
		r = Reply{Kind: ReplyCompleted, RequestID: p.RequestID, TenantID: p.TenantID, FinishReason: p.FinishReason, Deltas: p.Deltas, Citations: p.Citations}
	case *events.QueryRejected:
		r = Reply{Kind: ReplyRejected, RequestID: p.RequestID, TenantID: p.TenantID, Code: p.Code, Message: p.Message}
	default:
		return nil, kafkatransport.Permanent(fmt.Errorf("unexpected event type %q", ev.Envelope.Type))
	}
	if r.TenantID == "" {
		r.TenantID = ev.Envelope.TenantID
	}
	if r.Seq < 0 || r.Deltas < 0 {
		return nil, kafkatransport.Permanent(fmt.Errorf("%s: negative seq or deltas", ev.Envelope.Type))
	}
	return DeliverRequest{Reply: r}, nil
}

// skipErrors is the edge's error policy: a reply that cannot be decoded or
// delivered is skipped, never dead-lettered. Every replica reads every
// answer, so dead-lettering would write one copy per replica, and the
// message is not the edge's to repair; it is logged and counted.
func skipErrors(error, int, int) kafkatransport.Decision { return kafkatransport.Skip }

// NewReplySubscriber returns the subscriber that consumes topic (answers
// or rejections) in group and delivers every event to e.Deliver. It starts
// at the newest offset when the group has no committed offset: a replica
// owns no requests when it starts, so older answers are not its.
func NewReplySubscriber(brokers []string, group, topic string, pub kafkatransport.Producer, e Endpoints, logger *slog.Logger, opts ...kafkatransport.SubscriberOption) *kafkatransport.Subscriber {
	all := append([]kafkatransport.SubscriberOption{
		kafkatransport.SubscriberErrorPolicy(skipErrors),
		kafkatransport.SubscriberKeyConcurrency(kafkatransport.RequestLanes),
		kafkatransport.SubscriberLogger(logger),
		kafkatransport.SubscriberErrorHandler(errorLogger{logger: logger, topic: topic}),
		kafkatransport.SubscriberReaderConfig(func(rc *kafka.ReaderConfig) {
			rc.StartOffset = kafka.LastOffset
		}),
	}, opts...)
	return kafkatransport.NewSubscriber(kafkatransport.SubscriberConfig{
		Brokers:  brokers,
		Group:    group,
		Topic:    topic,
		Producer: pub,
	}, skipUndecodable(e.Deliver), decodeOrSkip, nil, all...)
}

// undecodable is the request decodeOrSkip hands on for a message that
// DecodeReply refused. The Subscriber dead-letters decode errors without
// asking the error policy; passing them through the endpoint as a failure
// lets skipErrors skip them instead.
type undecodable struct{ err error }

func decodeOrSkip(ctx context.Context, msg kafka.Message) (any, error) {
	req, err := DecodeReply(ctx, msg)
	if err != nil {
		return undecodable{err: fmt.Errorf("decode %s/%d@%d: %w", msg.Topic, msg.Partition, msg.Offset, err)}, nil
	}
	return req, nil
}

func skipUndecodable(next endpoint.Endpoint) endpoint.Endpoint {
	return func(ctx context.Context, request any) (any, error) {
		if u, ok := request.(undecodable); ok {
			return DeliverResponse{Err: u.err}, nil
		}
		return next(ctx, request)
	}
}

type errorLogger struct {
	logger *slog.Logger
	topic  string
}

func (l errorLogger) Handle(ctx context.Context, err error) {
	l.logger.WarnContext(ctx, "reply skipped", "topic", l.topic, "error", err.Error())
}

// CheckGroups is the edge's consumer readiness check: each group must be
// Stable with at least one member, so the replica is reading the answers
// of the questions it is about to publish.
func CheckGroups(ctx context.Context, brokers []string, sec kafkatransport.Security, groups ...string) error {
	c, t := sec.Client(brokers)
	defer t.CloseIdleConnections()
	resp, err := c.DescribeGroups(ctx, &kafka.DescribeGroupsRequest{GroupIDs: groups})
	if err != nil {
		return fmt.Errorf("describe groups: %w", err)
	}
	state := map[string]string{}
	for _, g := range resp.Groups {
		switch {
		case g.Error != nil:
			state[g.GroupID] = g.Error.Error()
		case g.GroupState != "Stable" || len(g.Members) == 0:
			state[g.GroupID] = fmt.Sprintf("state %q with %d members", g.GroupState, len(g.Members))
		default:
			state[g.GroupID] = ""
		}
	}
	for _, g := range groups {
		s, ok := state[g]
		if !ok {
			s = "not described"
		}
		if s != "" {
			return fmt.Errorf("consumer group %s not ready: %s", g, s)
		}
	}
	return nil
}
