package kafkatransport

import (
	"context"
	"fmt"
	"time"

	"github.com/go-kit/kit/endpoint"
	"github.com/segmentio/kafka-go"
	"go.opentelemetry.io/otel/trace"
)

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
			s.metrics.HandlerSeconds.WithLabelValues(m.Topic, s.cfg.Group, "ok").Observe(time.Since(start).Seconds())
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

// tryBatch decodes and serves a batch's leading messages up to the first
// failure, produces all their outputs in one write and returns how many
// are done (their outputs acknowledged). whole reports that nothing of the
// batch may be trusted (the write or the BatchEndpoint failed); otherwise
// batch[n], if any, is the message that failed.
func (s *Subscriber) tryBatch(ctx context.Context, batch []kafka.Message) (n int, whole bool) {
	reqs := make([]BatchRequest, 0, len(batch))
	var spans []trace.Span // with tracing on, one per message decoded or not
	defer func() {
		for i, span := range spans {
			outcome := "ok"
			if whole || i >= n {
				outcome = "retried_alone" // and traced again there
			}
			endProcess(span, outcome)
		}
	}()
	for _, m := range batch {
		mctx, span := s.messageContext(ctx, m)
		if span != nil {
			spans = append(spans, span)
		}
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
			if s.tracer != nil {
				// One write carries every message's outputs: each
				// names its own consumer span as the parent.
				sc := trace.SpanContextFromContext(reqs[i].Ctx)
				for j := range msgs {
					msgs[j].Headers = withTraceParent(msgs[j].Headers, sc)
				}
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
