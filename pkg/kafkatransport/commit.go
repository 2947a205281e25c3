package kafkatransport

import (
	"context"
	"time"

	"github.com/segmentio/kafka-go"
)

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
		s.metrics.Committed.WithLabelValues(s.cfg.Topic, s.cfg.Group).Add(float64(finished))
		finished = 0
		clear(pending)
	}
}
