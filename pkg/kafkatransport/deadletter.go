package kafkatransport

import (
	"context"
	"strconv"
	"time"

	"github.com/segmentio/kafka-go"
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
			s.metrics.DeadLettered.WithLabelValues(msg.Topic, s.cfg.Group, reason).Inc()
			return true
		}
		s.logger.Error("write dead letter", "topic", s.dlqTopic, "error", err)
		if ctx.Err() != nil || !sleep(stopping, s.backoff(try)) {
			return false
		}
	}
}
