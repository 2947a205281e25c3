package kafkatransport

import (
	"context"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/go-kit/kit/endpoint"
	"github.com/segmentio/kafka-go"
)

// handle serves one message and reports whether it may be committed.
func (s *Subscriber) handle(ctx context.Context, stopping <-chan struct{}, msg kafka.Message) bool {
	start := time.Now()
	outcome := "ok"
	ctx, span := s.messageContext(ctx, msg)
	defer func() {
		s.metrics.HandlerSeconds.WithLabelValues(msg.Topic, s.cfg.Group, outcome).Observe(time.Since(start).Seconds())
		if span != nil {
			endProcess(span, outcome)
		}
	}()
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
		s.metrics.Retried.WithLabelValues(msg.Topic, s.cfg.Group).Inc()
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
