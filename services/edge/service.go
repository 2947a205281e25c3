// Package edge is Tributary's WebSocket edge: it authenticates chat
// clients, publishes their questions to tributary.queries.received.v1 and
// streams the moderated answers (tributary.answers.moderated.v1) and
// refusals (tributary.queries.rejected.v1) back to the connection that
// asked, in order, without gaps or duplicates.
//
// Layers, as in every go-kit service: Service (this file: the routing of
// answers to requests), endpoints, the WebSocket transport
// (transport_ws.go), the Kafka transport (transport_kafka.go) and the
// logging and instrumenting middlewares.
package edge

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/tributary-rag/tributary/pkg/apikey"
	"github.com/tributary-rag/tributary/pkg/events"
	"github.com/tributary-rag/tributary/pkg/tracecontext"
)

// EventSource is the ce_source of the events the edge produces.
const EventSource = "tributary/edge"

// ErrUnavailable reports a question that could not be published.
var ErrUnavailable = errors.New("question could not be published")

// Sink receives the server messages of one connection's requests. Send
// must not block: it queues the message and returns false when the
// connection is gone or too slow, and the request is then abandoned.
type Sink interface {
	Send(m Message) bool
}

// Question is an ask from an authenticated client.
type Question struct {
	// ID is the client's id of the ask, echoed in every reply.
	ID             string
	Question       string
	ConversationID string
	TopK           int
	Principal      apikey.Principal
}

// Reply kinds: the event types the edge routes back.
const (
	ReplyDelta     = events.TypeAnswerDelta
	ReplyCompleted = events.TypeAnswerCompleted
	ReplyRejected  = events.TypeQueryRejected
)

// Reply is an answer event for a request: a delta, the completion or a
// refusal.
type Reply struct {
	Kind      string
	RequestID string
	TenantID  string
	// Delta.
	Seq  int
	Text string
	// Completed.
	FinishReason string
	Deltas       int
	Citations    []events.Citation
	// Rejected.
	Code    string
	Message string
}

// Outcomes of Deliver.
const (
	Delivered      = "delivered"       // sent, or buffered until its turn
	Duplicate      = "duplicate"       // seen before (at-least-once redelivery)
	UnknownRequest = "unknown_request" // not a request of this replica
	Finished       = "finished"        // its request already ended
	TenantMismatch = "tenant_mismatch" // the event's tenant is not the asker's
	OutOfWindow    = "out_of_window"   // seq too far ahead of the next expected
)

// Publisher publishes events; *kafkatransport.Publisher implements it.
type Publisher interface {
	Publish(ctx context.Context, topic string, payloads ...events.Payload) error
}

// Service routes answers to the requests of this replica.
type Service interface {
	// Ask publishes q and routes its answer to sink: accepted first, then
	// tokens in seq order, citations and done. It returns the new request
	// id, or ErrUnavailable when the question could not be published (then
	// nothing is sent to sink).
	Ask(ctx context.Context, q Question, sink Sink) (requestID string, err error)
	// Cancel ends a request: no more of its answer is forwarded and sink
	// gets done with finish_reason cancelled. It reports whether the request
	// was in flight.
	Cancel(ctx context.Context, requestID string) bool
	// Abandon forgets a request without telling its sink (the connection
	// closed).
	Abandon(ctx context.Context, requestID string)
	// Deliver routes one answer event to its request and reports what
	// happened to it (one of the outcome constants).
	Deliver(ctx context.Context, r Reply) (outcome string, err error)
}

// Config tunes the service. Zero values take the documented defaults.
type Config struct {
	// QueriesTopic is the full name of the queries.received topic.
	QueriesTopic string
	// AnswerTimeout is how long a request may go without any answer event
	// (from the ask, then between events) before the edge sends error
	// "timeout" and done; default 60s.
	AnswerTimeout time.Duration
	// PublishTimeout bounds publishing a question; default 10s.
	PublishTimeout time.Duration
	// MaxPending bounds how far ahead of the next expected seq a delta may
	// be buffered; default 4096.
	MaxPending int
	// Observer, if set, is told of first tokens and of the requests in
	// flight.
	Observer Observer
}

// Observer is told what the router sees; *Metrics implements it.
type Observer interface {
	FirstToken(d time.Duration)
	InFlight(delta int)
	Done(finishReason string)
}

type nopObserver struct{}

func (nopObserver) FirstToken(time.Duration) {}
func (nopObserver) InFlight(int)             {}
func (nopObserver) Done(string)              {}

// NewService returns the Service publishing through pub.
func NewService(pub Publisher, cfg Config) Service {
	if cfg.AnswerTimeout <= 0 {
		cfg.AnswerTimeout = 60 * time.Second
	}
	if cfg.PublishTimeout <= 0 {
		cfg.PublishTimeout = 10 * time.Second
	}
	if cfg.MaxPending <= 0 {
		cfg.MaxPending = 4096
	}
	if cfg.Observer == nil {
		cfg.Observer = nopObserver{}
	}
	return &router{pub: pub, cfg: cfg, streams: map[string]*stream{}}
}

// router is the Service: a map from request id to the request's stream.
type router struct {
	pub Publisher
	cfg Config

	mu      sync.RWMutex
	streams map[string]*stream
}

// stream is one request's state: its reorder buffer and completion.
type stream struct {
	r         *router
	id        string // the client's id
	requestID string
	tenant    string
	sink      Sink
	start     time.Time

	mu        sync.Mutex
	accepted  bool
	done      bool
	next      int // next seq to send
	pending   map[int]string
	completed *Reply
	timer     *time.Timer
}

func (r *router) Ask(ctx context.Context, q Question, sink Sink) (string, error) {
	requestID := events.NewID()
	s := &stream{r: r, id: q.ID, requestID: requestID, tenant: q.Principal.Tenant, sink: sink, start: time.Now(), pending: map[int]string{}}
	// Route before publishing: the answer may come back before Publish
	// returns. Events that arrive before accepted is sent wait in the
	// reorder buffer.
	r.mu.Lock()
	r.streams[requestID] = s
	r.mu.Unlock()
	r.cfg.Observer.InFlight(1)

	ctx = events.WithTenant(ctx, q.Principal.Tenant)
	ctx = events.WithCorrelationID(ctx, requestID)
	if tp, ok := tracecontext.FromContext(ctx); ok {
		ctx = tracecontext.WithContext(ctx, tp.Child())
	} else {
		ctx = tracecontext.WithContext(ctx, tracecontext.New())
	}
	pctx, cancel := context.WithTimeout(ctx, r.cfg.PublishTimeout)
	defer cancel()
	err := r.pub.Publish(pctx, r.cfg.QueriesTopic, events.QueryReceived{Query: events.Query{
		RequestID:      requestID,
		TenantID:       q.Principal.Tenant,
		Groups:         q.Principal.Groups,
		Question:       q.Question,
		ConversationID: q.ConversationID,
		TopK:           q.TopK,
		Principal:      q.Principal.Name,
	}})
	if err != nil {
		s.mu.Lock()
		s.finishLocked("")
		s.mu.Unlock()
		return requestID, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.done {
		return requestID, nil
	}
	s.accepted = true
	if !s.send(Message{Type: TypeAccepted}) {
		return requestID, nil
	}
	s.timer = time.AfterFunc(r.cfg.AnswerTimeout, s.expire)
	s.flushLocked()
	return requestID, nil
}

func (r *router) lookup(requestID string) *stream {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.streams[requestID]
}

func (r *router) Cancel(_ context.Context, requestID string) bool {
	s := r.lookup(requestID)
	if s == nil {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.done {
		return false
	}
	// A later version can also tell generate to stop (a cancel event keyed
	// by request id); for now the edge stops forwarding.
	s.send(Message{Type: TypeDone, FinishReason: FinishCancelled})
	s.finishLocked(FinishCancelled)
	return true
}

func (r *router) Abandon(_ context.Context, requestID string) {
	s := r.lookup(requestID)
	if s == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.finishLocked("abandoned")
}

func (r *router) Deliver(_ context.Context, rep Reply) (string, error) {
	s := r.lookup(rep.RequestID)
	if s == nil {
		return UnknownRequest, nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.done {
		return Finished, nil
	}
	if rep.TenantID != s.tenant {
		return TenantMismatch, nil
	}
	switch rep.Kind {
	case ReplyDelta:
		if rep.Seq < s.next {
			return Duplicate, nil
		}
		if _, ok := s.pending[rep.Seq]; ok {
			return Duplicate, nil
		}
		if rep.Seq-s.next >= r.cfg.MaxPending {
			return OutOfWindow, nil
		}
		s.pending[rep.Seq] = rep.Text
	case ReplyCompleted:
		if s.completed != nil {
			return Duplicate, nil
		}
		c := rep
		s.completed = &c
	case ReplyRejected:
		if s.accepted {
			s.send(Message{Type: TypeDone, FinishReason: FinishRefused, Code: rep.Code, Message: rep.Message})
			s.finishLocked(FinishRefused)
		} else {
			c := rep
			s.completed = &c
		}
		return Delivered, nil
	default:
		return "", fmt.Errorf("deliver: unknown reply kind %q", rep.Kind)
	}
	if s.timer != nil {
		s.timer.Reset(r.cfg.AnswerTimeout)
	}
	s.flushLocked()
	return Delivered, nil
}

// send queues m for the client; when the sink refuses, the request is
// abandoned.
func (s *stream) send(m Message) bool {
	if s.done {
		return false
	}
	m.ID, m.RequestID = s.id, s.requestID
	if s.sink.Send(m) {
		return true
	}
	s.finishLocked("abandoned")
	return false
}

// flushLocked sends every token whose turn has come, then the completion
// once all the deltas it counts were sent.
func (s *stream) flushLocked() {
	if !s.accepted || s.done {
		return
	}
	for {
		text, ok := s.pending[s.next]
		if !ok {
			break
		}
		delete(s.pending, s.next)
		if s.next == 0 {
			s.r.cfg.Observer.FirstToken(time.Since(s.start))
		}
		if !s.send(Message{Type: TypeToken, Seq: s.next, Text: text}) {
			return
		}
		s.next++
	}
	c := s.completed
	if c == nil {
		return
	}
	if c.Kind == ReplyRejected {
		s.send(Message{Type: TypeDone, FinishReason: FinishRefused, Code: c.Code, Message: c.Message})
		s.finishLocked(FinishRefused)
		return
	}
	if s.next < c.Deltas {
		return // a delta is still on its way
	}
	if !s.send(Message{Type: TypeCitations, Citations: CitationsOf(c.Citations)}) {
		return
	}
	reason := finishReason(c.FinishReason)
	s.send(Message{Type: TypeDone, FinishReason: reason})
	s.finishLocked(reason)
}

func finishReason(r string) string {
	switch r {
	case FinishStop, FinishLength, FinishRefused, FinishModerated, FinishCancelled, FinishError:
		return r
	case "":
		return FinishStop
	}
	return FinishError
}

// expire ends a request that got no answer event in time.
func (s *stream) expire() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.done {
		return
	}
	if !s.send(Message{Type: TypeError, Code: CodeTimeout, Message: "no answer within " + s.r.cfg.AnswerTimeout.String()}) {
		return
	}
	s.send(Message{Type: TypeDone, FinishReason: FinishError})
	s.finishLocked(CodeTimeout)
}

// finishLocked ends the stream and removes its route; reason is recorded
// ("" when it never started).
func (s *stream) finishLocked(reason string) {
	if s.done {
		return
	}
	s.done = true
	s.pending = nil
	if s.timer != nil {
		s.timer.Stop()
	}
	s.r.mu.Lock()
	delete(s.r.streams, s.requestID)
	s.r.mu.Unlock()
	s.r.cfg.Observer.InFlight(-1)
	if reason != "" {
		s.r.cfg.Observer.Done(reason)
	}
}
