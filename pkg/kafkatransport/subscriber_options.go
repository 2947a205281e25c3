package kafkatransport

import (
	"log/slog"
	"time"

	"github.com/go-kit/kit/transport"
	"github.com/segmentio/kafka-go"
)

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
