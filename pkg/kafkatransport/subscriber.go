package kafkatransport

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"math/rand/v2"
	"strconv"
	"sync"
	"time"

	"github.com/go-kit/kit/endpoint"
	"github.com/go-kit/kit/transport"
	"github.com/segmentio/kafka-go"

	"github.com/tributary-rag/tributary/pkg/events"
)

// Dead-letter headers, added to the original message's key, value and
// headers (which keep its CloudEvents attributes, so it can be replayed).
const (
	DLQHeaderError     = "dlq_error"     // the last error, at most 1 KiB
	DLQHeaderReason    = "dlq_reason"    // "permanent" or "exhausted"
	DLQHeaderAttempts  = "dlq_attempts"  // handler attempts made, decimal
	DLQHeaderTopic     = "dlq_topic"     // source topic
	DLQHeaderPartition = "dlq_partition" // source partition, decimal
	DLQHeaderOffset    = "dlq_offset"    // source offset, decimal
	DLQHeaderGroup     = "dlq_group"     // consumer group that gave up
	DLQHeaderTime      = "dlq_time"      // when, RFC 3339
)

// Dead-letter reasons (DLQHeaderReason).
const (
	ReasonPermanent = "permanent"
	ReasonExhausted = "exhausted"
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
	metrics      *Metrics
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

// BatchRequest is one message's request in a batch, with the message's
// context (tenant, correlation id and trace of its event, as the endpoint
// would get it).
type BatchRequest struct {
	Ctx     context.Context
	Request any
}

// BatchEndpoint serves several requests, in order, with one effect (one
// store write). It returns one response per request, in the same order; a
// response that is an endpoint.Failer with a non-nil Failed() fails its
// own message only. An error fails the whole batch: every message of it is
// then handled again one at a time through the Subscriber's endpoint, so
// a BatchEndpoint's effects must be idempotent and the same as the
// endpoint's.
type BatchEndpoint func(ctx context.Context, batch []BatchRequest) ([]any, error)

// SubscriberOption configures a Subscriber.
type SubscriberOption func(*Subscriber)

// SubscriberBefore adds functions run on each message's context before
// decoding.
func SubscriberBefore(before ...RequestFunc) SubscriberOption {
	return func(s *Subscriber) { s.before = append(s.before, before...) }
}

// SubscriberErrorHandler is told of every failed attempt, as go-kit
// transports do; it is for logging and metrics, not for deciding.
func SubscriberErrorHandler(h transport.ErrorHandler) SubscriberOption {
	return func(s *Subscriber) { s.errorHandler = h }
}

// SubscriberLogger sets the logger (default: discard).
func SubscriberLogger(l *slog.Logger) SubscriberOption {
	return func(s *Subscriber) { s.logger = l }
}

// SubscriberMetrics records consumption metrics in m.
func SubscriberMetrics(m *Metrics) SubscriberOption {
	return func(s *Subscriber) { s.metrics = m }
}

// SubscriberRetry sets the number of handler attempts per message before
// dead-lettering (default 5) and the exponential backoff between them,
// starting at base and capped at max (defaults 100ms and 5s), with jitter.
func SubscriberRetry(maxAttempts int, base, max time.Duration) SubscriberOption {
	return func(s *Subscriber) {
		if maxAttempts > 0 {
			s.maxAttempts = maxAttempts
		}
		if base > 0 {
			s.backoffBase = base
		}
		if max > 0 {
			s.backoffMax = max
		}
	}
}

// SubscriberErrorPolicy replaces DefaultErrorPolicy.
func SubscriberErrorPolicy(p ErrorPolicy) SubscriberOption {
	return func(s *Subscriber) { s.policy = p }
}

// SubscriberDrainTimeout bounds how long in-flight handlers may run after
// Run's context is done (default 10s); then their contexts are cancelled.
func SubscriberDrainTimeout(d time.Duration) SubscriberOption {
	return func(s *Subscriber) { s.drainTimeout = d }
}

// SubscriberQueueSize sets how many fetched messages may wait per partition
// (default 64).
func SubscriberQueueSize(n int) SubscriberOption {
	return func(s *Subscriber) {
		if n > 0 {
			s.queueSize = n
		}
	}
}

// RequestLanes is the key concurrency the services give their consumers
// of request-keyed topics (queries and answers): with a few partitions,
// tens of questions in flight would otherwise queue behind one another's
// answers.
const RequestLanes = 16

// SubscriberKeyConcurrency lets up to n messages of one partition be
// handled at once, as long as their keys differ: each message goes to one
// of n lanes chosen by a hash of its key, so messages with one key (one
// request, one document) keep their order while different keys overlap.
// Offsets are still committed in partition order: a message is committed
// once it and every earlier message of its partition are finished, so a
// crash redelivers whatever was not. Use it where ordering is only needed
// per key (the contract keys events by request or document id) and one
// message can take long, such as streaming an answer. n <= 1 keeps one
// message at a time per partition (the default). It cannot be combined
// with batching.
func SubscriberKeyConcurrency(n int) SubscriberOption {
	return func(s *Subscriber) { s.keyLanes = n }
}

// SubscriberDLQTopic overrides the dead-letter topic (default
// "<topic>.dlq").
func SubscriberDLQTopic(topic string) SubscriberOption {
	return func(s *Subscriber) { s.dlqTopic = topic }
}

// SubscriberReaderConfig lets the caller adjust the kafka.ReaderConfig
// (TLS dialer, session timeout, start offset). GroupID, Topic and
// CommitInterval are the Subscriber's and are reset afterwards.
func SubscriberReaderConfig(fn func(*kafka.ReaderConfig)) SubscriberOption {
	return func(s *Subscriber) { s.readerOpts = append(s.readerOpts, fn) }
}

// SubscriberBatch turns on batching: when a partition's queue holds
// several fetched messages, up to max of them are handled together, in
// order: each is decoded and served (by the endpoint, or by the
// BatchEndpoint), all their outputs are produced in one WriteMessages
// (acks from all), and only then are they marked for commit. A batch
// waits up to linger for more messages when the queue runs dry (0: it
// takes what is queued and never waits). Any failure falls back to
// handling messages one at a time with the usual retry and dead-letter
// rules, so a poison message is dead-lettered alone and nothing is
// committed before its outputs are acknowledged. max <= 1 turns batching
// off (the default).
func SubscriberBatch(n int, linger time.Duration) SubscriberOption {
	return func(s *Subscriber) {
		s.batchMax = n
		s.batchLinger = max(linger, 0)
	}
}

// SubscriberBatchEndpoint serves batches with fn instead of calling the
// endpoint once per message (see BatchEndpoint). It turns batching on with
// up to 64 messages per batch unless SubscriberBatch sets otherwise.
func SubscriberBatchEndpoint(fn BatchEndpoint) SubscriberOption {
	return func(s *Subscriber) {
		s.batchE = fn
		if s.batchMax == 0 {
			s.batchMax = 64
		}
	}
}

// NewSubscriber returns a Subscriber that consumes cfg.Topic in cfg.Group
// and serves each message with dec, e and enc. enc may be nil when the
// endpoint produces nothing.
func NewSubscriber(cfg SubscriberConfig, e endpoint.Endpoint, dec DecodeRequestFunc, enc EncodeResponseFunc, opts ...SubscriberOption) *Subscriber {
	s := &Subscriber{
		cfg:          cfg,
		e:            e,
		dec:          dec,
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
		if s.metrics != nil {
			s.metrics.Consumed.WithLabelValues(msg.Topic, s.cfg.Group).Inc()
			if msg.HighWaterMark > 0 {
				s.metrics.Lag.WithLabelValues(msg.Topic, s.cfg.Group, strconv.Itoa(msg.Partition)).Set(float64(max(0, msg.HighWaterMark-msg.Offset-1)))
			}
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

// workKeyed handles one partition's messages on s.keyLanes goroutines, a
// message's lane chosen by its key, and marks them for commit in offset
// order: a sequencer waits for each message's outcome in fetch order, so
// no offset is committed past an unfinished message. Once a message must
// stay uncommitted (shutting down), nothing after it is committed either.
func (s *Subscriber) workKeyed(ctx context.Context, stopping <-chan struct{}, q <-chan kafka.Message, commits chan<- kafka.Message) {
	type job struct {
		msg  kafka.Message
		done chan bool // the outcome: may it be committed
	}
	// order bounds the partition's messages in flight to the queue size.
	order := make(chan job, s.queueSize)
	lanes := make([]chan job, s.keyLanes)
	var wg sync.WaitGroup
	for i := range lanes {
		lanes[i] = make(chan job, s.queueSize)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range lanes[i] {
				select {
				case <-stopping:
					j.done <- false // fetched but not started
					continue
				default:
				}
				j.done <- s.handle(ctx, stopping, j.msg)
			}
		}()
	}
	sequenced := make(chan struct{})
	go func() {
		defer close(sequenced)
		blocked := false
		for j := range order {
			ok := <-j.done
			blocked = blocked || !ok
			if !blocked {
				commits <- j.msg
			}
		}
	}()
	for msg := range q {
		j := job{msg: msg, done: make(chan bool, 1)}
		order <- j
		lanes[lane(msg.Key, len(lanes))] <- j
	}
	for _, l := range lanes {
		close(l)
	}
	close(order)
	wg.Wait()
	<-sequenced
}

// lane maps a key to one of n lanes (FNV-1a); messages without a key share
// lane 0 and so keep their order.
func lane(key []byte, n int) int {
	if len(key) == 0 {
		return 0
	}
	h := fnv.New32a()
	h.Write(key)
	return int(h.Sum32() % uint32(n))
}

// collect returns first and the messages queued behind it, up to the
// batch size, waiting up to the linger time for more when the queue runs
// dry.
func (s *Subscriber) collect(stopping <-chan struct{}, q <-chan kafka.Message, first kafka.Message) []kafka.Message {
	batch := make([]kafka.Message, 1, s.batchMax)
	batch[0] = first
	var linger <-chan time.Time
	if s.batchLinger > 0 {
		t := time.NewTimer(s.batchLinger)
		defer t.Stop()
		linger = t.C
	}
	for len(batch) < s.batchMax {
		select {
		case m, ok := <-q:
			if !ok {
				return batch
			}
			batch = append(batch, m)
			continue
		default:
		}
		if linger == nil {
			return batch
		}
		select {
		case m, ok := <-q:
			if !ok {
				return batch
			}
			batch = append(batch, m)
		case <-linger:
			return batch
		case <-stopping:
			return batch
		}
	}
	return batch
}

// handleBatch handles one partition's batch in order and marks for commit
// every message it finished; it stops at the first message it must leave
// uncommitted (shutting down), so no later offset is committed past it.
func (s *Subscriber) handleBatch(ctx context.Context, stopping <-chan struct{}, batch []kafka.Message, commits chan<- kafka.Message) {
	for len(batch) > 0 {
		start := time.Now()
		n, whole := s.tryBatch(ctx, batch)
		for _, m := range batch[:n] {
			if s.metrics != nil {
				s.metrics.HandlerSeconds.WithLabelValues(m.Topic, s.cfg.Group, "ok").Observe(time.Since(start).Seconds())
			}
			commits <- m
		}
		batch = batch[n:]
		if len(batch) == 0 {
			return
		}
		// batch[0] failed (or, when whole, the batch's write or its
		// BatchEndpoint did): handle it alone, with retries and the DLQ.
		rest := 1
		if whole {
			rest = len(batch)
		}
		for _, m := range batch[:rest] {
			select {
			case <-stopping:
				return // not started: leave it and the rest uncommitted
			default:
			}
			if !s.handle(ctx, stopping, m) {
				return
			}
			commits <- m
		}
		batch = batch[rest:]
		select {
		case <-stopping:
			return
		default:
		}
	}
}

// messageContext is the context a message is handled in: its event's
// tenant, correlation id and trace, then the Before functions.
func (s *Subscriber) messageContext(ctx context.Context, msg kafka.Message) context.Context {
	if env, err := events.ParseHeaders(msg.Headers); err == nil {
		ctx = env.Context(ctx)
	}
	for _, f := range s.before {
		ctx = f(ctx, msg)
	}
	return ctx
}

// tryBatch decodes and serves a batch's leading messages up to the first
// failure, produces all their outputs in one write and returns how many
// are done (their outputs acknowledged). whole reports that nothing of the
// batch may be trusted (the write or the BatchEndpoint failed); otherwise
// batch[n], if any, is the message that failed.
func (s *Subscriber) tryBatch(ctx context.Context, batch []kafka.Message) (n int, whole bool) {
	reqs := make([]BatchRequest, 0, len(batch))
	for _, m := range batch {
		mctx := s.messageContext(ctx, m)
		req, err := s.dec(mctx, m)
		if err != nil {
			break
		}
		reqs = append(reqs, BatchRequest{Ctx: mctx, Request: req})
	}
	if len(reqs) == 0 {
		return 0, false
	}
	var resps []any
	if s.batchE != nil {
		var err error
		resps, err = s.batchE(ctx, reqs)
		if err == nil && len(resps) != len(reqs) {
			err = fmt.Errorf("batch endpoint returned %d responses for %d requests", len(resps), len(reqs))
		}
		if err != nil {
			s.reportError(ctx, fmt.Errorf("handle batch %s/%d@%d..%d: %w", batch[0].Topic, batch[0].Partition, batch[0].Offset, batch[len(reqs)-1].Offset, err))
			return 0, true
		}
	} else {
		resps = make([]any, 0, len(reqs))
		for _, r := range reqs {
			resp, err := s.e(r.Ctx, r.Request)
			if err != nil {
				break
			}
			resps = append(resps, resp)
		}
	}
	var out []kafka.Message
	done := 0
	for i, resp := range resps {
		if f, ok := resp.(endpoint.Failer); ok && f.Failed() != nil {
			break
		}
		if s.enc != nil {
			msgs, err := s.enc(reqs[i].Ctx, resp)
			if err != nil {
				break
			}
			out = append(out, msgs...)
		}
		done++
	}
	if len(out) > 0 {
		if err := s.cfg.Producer.WriteMessages(ctx, out...); err != nil {
			s.reportError(ctx, fmt.Errorf("produce outputs of batch %s/%d@%d..%d: %w", batch[0].Topic, batch[0].Partition, batch[0].Offset, batch[done-1].Offset, err))
			return 0, true
		}
	}
	return done, false
}

// handle serves one message and reports whether it may be committed.
func (s *Subscriber) handle(ctx context.Context, stopping <-chan struct{}, msg kafka.Message) bool {
	start := time.Now()
	outcome := "ok"
	defer func() {
		if s.metrics != nil {
			s.metrics.HandlerSeconds.WithLabelValues(msg.Topic, s.cfg.Group, outcome).Observe(time.Since(start).Seconds())
		}
	}()
	ctx = s.messageContext(ctx, msg)
	req, err := s.dec(ctx, msg)
	if err != nil {
		outcome = "dead_letter"
		s.reportError(ctx, fmt.Errorf("decode %s/%d@%d: %w", msg.Topic, msg.Partition, msg.Offset, err))
		return s.deadLetter(ctx, stopping, msg, Permanent(err), 1)
	}
	for attempt := 1; ; attempt++ {
		err := s.attempt(ctx, req)
		if err == nil {
			return true
		}
		s.reportError(ctx, fmt.Errorf("handle %s/%d@%d attempt %d: %w", msg.Topic, msg.Partition, msg.Offset, attempt, err))
		if ctx.Err() != nil {
			outcome = "abandoned"
			return false // drain timed out: leave it for redelivery
		}
		switch s.policy(err, attempt, s.maxAttempts) {
		case Skip:
			outcome = "skipped"
			return true
		case DeadLetter:
			outcome = "dead_letter"
			return s.deadLetter(ctx, stopping, msg, err, attempt)
		}
		if s.metrics != nil {
			s.metrics.Retried.WithLabelValues(msg.Topic, s.cfg.Group).Inc()
		}
		if !sleep(stopping, s.backoff(attempt)) {
			outcome = "abandoned"
			return false // shutting down: redelivered later
		}
	}
}

// attempt calls the endpoint and produces its outputs.
func (s *Subscriber) attempt(ctx context.Context, req any) error {
	resp, err := s.e(ctx, req)
	if err != nil {
		return err
	}
	if f, ok := resp.(endpoint.Failer); ok && f.Failed() != nil {
		return f.Failed()
	}
	if s.enc == nil {
		return nil
	}
	msgs, err := s.enc(ctx, resp)
	if err != nil {
		return fmt.Errorf("encode response: %w", err)
	}
	if len(msgs) == 0 {
		return nil
	}
	if err := s.cfg.Producer.WriteMessages(ctx, msgs...); err != nil {
		return fmt.Errorf("produce outputs: %w", err)
	}
	return nil
}

// deadLetter writes msg to the dead-letter topic, retrying the write until
// it succeeds or the subscriber stops; it reports whether msg may be
// committed.
func (s *Subscriber) deadLetter(ctx context.Context, stopping <-chan struct{}, msg kafka.Message, cause error, attempts int) bool {
	reason := ReasonExhausted
	if IsPermanent(cause) {
		reason = ReasonPermanent
	}
	errText := cause.Error()
	if len(errText) > 1024 {
		errText = errText[:1024]
	}
	hs := make([]kafka.Header, 0, len(msg.Headers)+8)
	for _, h := range msg.Headers {
		switch h.Key {
		case DLQHeaderError, DLQHeaderReason, DLQHeaderAttempts, DLQHeaderTopic, DLQHeaderPartition, DLQHeaderOffset, DLQHeaderGroup, DLQHeaderTime:
			continue // a replayed dead letter gets fresh ones
		}
		hs = append(hs, h)
	}
	hs = append(hs,
		kafka.Header{Key: DLQHeaderError, Value: []byte(errText)},
		kafka.Header{Key: DLQHeaderReason, Value: []byte(reason)},
		kafka.Header{Key: DLQHeaderAttempts, Value: []byte(strconv.Itoa(attempts))},
		kafka.Header{Key: DLQHeaderTopic, Value: []byte(msg.Topic)},
		kafka.Header{Key: DLQHeaderPartition, Value: []byte(strconv.Itoa(msg.Partition))},
		kafka.Header{Key: DLQHeaderOffset, Value: []byte(strconv.FormatInt(msg.Offset, 10))},
		kafka.Header{Key: DLQHeaderGroup, Value: []byte(s.cfg.Group)},
		kafka.Header{Key: DLQHeaderTime, Value: []byte(time.Now().UTC().Format(time.RFC3339Nano))},
	)
	dl := kafka.Message{Topic: s.dlqTopic, Key: msg.Key, Value: msg.Value, Headers: hs}
	for try := 1; ; try++ {
		err := s.cfg.Producer.WriteMessages(ctx, dl)
		if err == nil {
			s.logger.Warn("dead-lettered message", "topic", msg.Topic, "partition", msg.Partition,
				"offset", msg.Offset, "group", s.cfg.Group, "reason", reason, "attempts", attempts, "error", errText)
			if s.metrics != nil {
				s.metrics.DeadLettered.WithLabelValues(msg.Topic, s.cfg.Group, reason).Inc()
			}
			return true
		}
		s.logger.Error("write dead letter", "topic", s.dlqTopic, "error", err)
		if ctx.Err() != nil || !sleep(stopping, s.backoff(try)) {
			return false
		}
	}
}

// maxCommitFailures is how many times in a row a commit may fail before
// its offsets are dropped.
const maxCommitFailures = 5

// commitLoop commits finished messages, batching whatever is waiting, until
// commits is closed; then it commits the rest and returns. A failed commit
// is retried with the next batch or after a short pause.
func (s *Subscriber) commitLoop(ctx context.Context, r *kafka.Reader, commits <-chan kafka.Message) {
	pending := map[int]kafka.Message{}
	finished := 0 // messages behind the pending offsets
	add := func(m kafka.Message) {
		finished++
		if p, seen := pending[m.Partition]; !seen || m.Offset > p.Offset {
			pending[m.Partition] = m
		}
	}
	open := true
	failures := 0
	for open {
		if len(pending) == 0 {
			m, ok := <-commits
			if !ok {
				return
			}
			add(m)
		} else {
			// Earlier commit failed: retry when more arrive or soon.
			select {
			case m, ok := <-commits:
				if !ok {
					open = false
				} else {
					add(m)
				}
			case <-time.After(100 * time.Millisecond):
			}
		}
	batch:
		for open {
			select {
			case m, ok := <-commits:
				if !ok {
					open = false
					break batch
				}
				add(m)
			default:
				break batch
			}
		}
		msgs := make([]kafka.Message, 0, len(pending))
		for _, m := range pending {
			msgs = append(msgs, m)
		}
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err := r.CommitMessages(cctx, msgs...)
		cancel()
		if err != nil {
			failures++
			s.logger.Error("commit offsets", "topic", s.cfg.Topic, "group", s.cfg.Group, "error", err, "failures", failures)
			if failures < maxCommitFailures {
				continue
			}
			// Give up on these offsets (e.g. partitions lost in a
			// rebalance): their messages are delivered again, which
			// at-least-once allows; later commits carry newer offsets.
			clear(pending)
			finished = 0
			failures = 0
			continue
		}
		failures = 0
		if s.metrics != nil {
			s.metrics.Committed.WithLabelValues(s.cfg.Topic, s.cfg.Group).Add(float64(finished))
		}
		finished = 0
		clear(pending)
	}
}

func (s *Subscriber) reportError(ctx context.Context, err error) {
	if s.errorHandler != nil {
		s.errorHandler.Handle(ctx, err)
	}
	s.logger.Debug("handler error", "topic", s.cfg.Topic, "group", s.cfg.Group, "error", err)
}

// backoff returns the delay before attempt+1: exponential from the base,
// capped, with "equal jitter" (half fixed, half random).
func (s *Subscriber) backoff(attempt int) time.Duration {
	d := s.backoffBase << min(attempt-1, 30)
	if d <= 0 || d > s.backoffMax {
		d = s.backoffMax
	}
	half := d / 2
	return half + rand.N(half+1)
}

// sleep waits d or until stopping closes; it reports whether it slept fully.
func sleep(stopping <-chan struct{}, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-stopping:
		return false
	}
}
