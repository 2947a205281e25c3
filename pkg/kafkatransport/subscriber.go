package kafkatransport

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/go-kit/kit/endpoint"
	"github.com/go-kit/kit/transport"
	"github.com/segmentio/kafka-go"
	"go.opentelemetry.io/otel/trace"

	"github.com/tributary-rag/tributary/pkg/events"
)

// DecodeRequestFunc turns a message into an endpoint request. An error is
// permanent: the message is dead-lettered without retry.
type DecodeRequestFunc func(ctx context.Context, msg kafka.Message) (request any, err error)

// EncodeResponseFunc turns an endpoint response into messages to produce
// (each with its Topic set) before the input is committed. It may return
// none.
type EncodeResponseFunc func(ctx context.Context, response any) ([]kafka.Message, error)

// RequestFunc may take information from a message into the context before
// decoding.
type RequestFunc func(ctx context.Context, msg kafka.Message) context.Context

// SubscriberConfig names what a Subscriber consumes and where it writes.
type SubscriberConfig struct {
	// Brokers are the bootstrap addresses (host:port).
	Brokers []string
	// Group is the consumer group, by convention the service's name.
	Group string
	// Topic is the full topic name to consume.
	Topic string
	// Producer writes outputs and dead letters; usually a *Publisher.
	Producer Producer
}

// Subscriber consumes one topic in a consumer group and hands every message
// to a go-kit endpoint. See the package documentation for the delivery
// rules. Run may be called once.
type Subscriber struct {
	cfg    SubscriberConfig
	e      endpoint.Endpoint
	dec    DecodeRequestFunc
	enc    EncodeResponseFunc
	before []RequestFunc

	errorHandler transport.ErrorHandler
	logger       *slog.Logger
	metrics      *Metrics     // never nil: unregistered when the caller gives none
	tracer       trace.Tracer // nil: tracing off
	policy       ErrorPolicy
	maxAttempts  int
	backoffBase  time.Duration
	backoffMax   time.Duration
	drainTimeout time.Duration
	queueSize    int
	dlqTopic     string
	readerOpts   []func(*kafka.ReaderConfig)

	keyLanes int // > 1: messages with different keys of one partition overlap

	batchMax    int           // > 1: handle up to batchMax queued messages together
	batchLinger time.Duration // how long a batch waits for more messages
	batchE      BatchEndpoint // nil: the endpoint is called per message
}

// NewSubscriber returns a Subscriber that consumes cfg.Topic in cfg.Group
// and serves each message with dec, e and enc. enc may be nil when the
// endpoint produces nothing.
func NewSubscriber(cfg SubscriberConfig, e endpoint.Endpoint, dec DecodeRequestFunc, enc EncodeResponseFunc, opts ...SubscriberOption) *Subscriber {
	s := &Subscriber{
		cfg:          cfg,
		e:            e,
		dec:          binaryMode(dec),
		enc:          enc,
		logger:       slog.New(slog.DiscardHandler),
		policy:       DefaultErrorPolicy,
		maxAttempts:  5,
		backoffBase:  100 * time.Millisecond,
		backoffMax:   5 * time.Second,
		drainTimeout: 10 * time.Second,
		queueSize:    64,
		dlqTopic:     events.DLQ(cfg.Topic),
	}
	for _, o := range opts {
		o(s)
	}
	if s.metrics == nil {
		s.metrics = newMetrics()
	}
	return s
}

func (s *Subscriber) validate() error {
	switch {
	case len(s.cfg.Brokers) == 0:
		return errors.New("subscriber: no brokers")
	case s.cfg.Group == "":
		return errors.New("subscriber: no group")
	case s.cfg.Topic == "":
		return errors.New("subscriber: no topic")
	case s.cfg.Producer == nil:
		return errors.New("subscriber: no producer")
	case s.e == nil || s.dec == nil:
		return errors.New("subscriber: no endpoint or decoder")
	case s.keyLanes > 1 && s.batchMax > 1:
		return errors.New("subscriber: key concurrency and batching are exclusive")
	}
	return nil
}

// Run consumes until ctx is done or the reader fails, then drains: it stops
// fetching, lets in-flight handlers finish (up to the drain timeout),
// commits what they finished, and closes the reader. Messages fetched but
// not finished stay uncommitted and are delivered again. Run returns nil
// after a drain caused by ctx.
func (s *Subscriber) Run(ctx context.Context) error {
	if err := s.validate(); err != nil {
		return err
	}
	rc := kafka.ReaderConfig{
		Brokers:  s.cfg.Brokers,
		GroupID:  s.cfg.Group,
		Topic:    s.cfg.Topic,
		MinBytes: 1,
		MaxBytes: 10 << 20,
		MaxWait:  500 * time.Millisecond,
		// A member notices a rebalance at its next heartbeat, and the
		// group waits for every member: with kafka-go's 3 s default a
		// second subscriber joining a service's group stalled the first
		// for up to 3 s.
		HeartbeatInterval: time.Second,
		StartOffset:       kafka.FirstOffset,
		ReadBackoffMin:    10 * time.Millisecond,
		ReadBackoffMax:    500 * time.Millisecond,
		ErrorLogger: kafka.LoggerFunc(func(msg string, args ...any) {
			s.logger.Warn("kafka reader: "+fmt.Sprintf(msg, args...), "topic", s.cfg.Topic, "group", s.cfg.Group)
		}),
	}
	for _, fn := range s.readerOpts {
		fn(&rc)
	}
	rc.GroupID, rc.Topic, rc.GroupTopics, rc.Partition, rc.CommitInterval = s.cfg.Group, s.cfg.Topic, nil, 0, 0
	r := kafka.NewReader(rc)

	// Handlers run on a context that outlives ctx by the drain timeout, so
	// in-flight work can finish after ctx is done.
	hctx, hcancel := context.WithCancel(context.WithoutCancel(ctx))
	defer hcancel()
	stopping := make(chan struct{})

	commits := make(chan kafka.Message, s.queueSize)
	committerDone := make(chan struct{})
	go func() {
		defer close(committerDone)
		// Commits outlive the drain timeout: finished work must be committed.
		s.commitLoop(context.WithoutCancel(ctx), r, commits)
	}()

	var wg sync.WaitGroup
	workers := map[int]chan kafka.Message{}
	var fetchErr error
	for {
		msg, err := r.FetchMessage(ctx)
		if err != nil {
			if ctx.Err() == nil {
				fetchErr = fmt.Errorf("fetch from %s: %w", s.cfg.Topic, err)
			}
			break
		}
		s.metrics.Consumed.WithLabelValues(msg.Topic, s.cfg.Group).Inc()
		if msg.HighWaterMark > 0 {
			s.metrics.Lag.WithLabelValues(msg.Topic, s.cfg.Group, strconv.Itoa(msg.Partition)).Set(float64(max(0, msg.HighWaterMark-msg.Offset-1)))
		}
		q, ok := workers[msg.Partition]
		if !ok {
			q = make(chan kafka.Message, s.queueSize)
			workers[msg.Partition] = q
			wg.Add(1)
			go func() {
				defer wg.Done()
				if s.keyLanes > 1 {
					s.workKeyed(hctx, stopping, q, commits)
					return
				}
				s.work(hctx, stopping, q, commits)
			}()
		}
		select {
		case q <- msg:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
	}

	// Drain.
	close(stopping)
	for _, q := range workers {
		close(q)
	}
	timer := time.AfterFunc(s.drainTimeout, hcancel)
	wg.Wait()
	timer.Stop()
	close(commits)
	<-committerDone
	if err := r.Close(); err != nil && fetchErr == nil {
		fetchErr = fmt.Errorf("close reader: %w", err)
	}
	return fetchErr
}

// work handles one partition's messages in order.
func (s *Subscriber) work(ctx context.Context, stopping <-chan struct{}, q <-chan kafka.Message, commits chan<- kafka.Message) {
	for msg := range q {
		select {
		case <-stopping:
			continue // fetched but not started: leave it uncommitted
		default:
		}
		if s.batchMax > 1 {
			s.handleBatch(ctx, stopping, s.collect(stopping, q, msg), commits)
			continue
		}
		if s.handle(ctx, stopping, msg) {
			commits <- msg
		}
	}
}

// messageContext is the context a message is handled in: its event's
// tenant, correlation id and trace, its consumer span when tracing is on
// (the caller ends it), then the Before functions.
func (s *Subscriber) messageContext(ctx context.Context, msg kafka.Message) (context.Context, trace.Span) {
	env, _, err := events.ParseMessage(msg)
	if err == nil {
		ctx = env.Context(ctx)
	}
	var span trace.Span
	if s.tracer != nil {
		ctx, span = s.startProcess(ctx, msg, env, err == nil)
	}
	for _, f := range s.before {
		ctx = f(ctx, msg)
	}
	return ctx, span
}

func (s *Subscriber) reportError(ctx context.Context, err error) {
	if s.errorHandler != nil {
		s.errorHandler.Handle(ctx, err)
	}
	s.logger.Debug("handler error", "topic", s.cfg.Topic, "group", s.cfg.Group, "error", err)
}
