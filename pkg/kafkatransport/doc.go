// Package kafkatransport is a go-kit transport for Kafka on
// github.com/segmentio/kafka-go, modelled on go-kit's NATS transport.
//
// A Subscriber consumes one topic in a consumer group and, for each message,
// decodes it, calls the endpoint, encodes the response into output messages,
// produces them with acks from all in-sync replicas, and only then commits
// the message's offset: delivery is at least once and an effect is never
// committed before it is durable. Messages of one partition are handled in
// order, one at a time (per key with SubscriberKeyConcurrency); partitions
// are handled concurrently. A failing
// message is retried with exponential backoff and jitter, then written to
// the dead-letter topic "<topic>.dlq" with headers that say why (see the
// DLQHeader* constants); a permanent error (a decode failure or an error
// wrapped with Permanent) is dead-lettered at once. Either way the
// partition moves on: a poison message never stalls it.
//
// Business errors ride in a go-kit response (endpoint.Failer); wrap the
// endpoint with PermanentFailures to say which of them are permanent, e.g.
// PermanentFailures(func(err error) bool { return errors.Is(err, ErrInvalid) }).
//
// SubscriberKeyConcurrency lets messages with different keys of one
// partition be handled at once (a key's messages stay in order, offsets
// are still committed in partition order), for consumers whose work per
// message is long, such as streaming an answer.
//
// SubscriberBatch turns on batching: the messages queued on a partition
// are served in order and their outputs produced in one write before all
// are committed; SubscriberBatchEndpoint serves them with one BatchEndpoint
// call (one effect for N messages). A failure falls back to the
// per-message rules above, so a poison message is still dead-lettered
// alone and nothing is committed before its outputs are acknowledged.
//
// A Publisher writes messages with RequireAll acks, hash balancing by key
// and a small batch timeout, and returns every error to its caller.
// EnsureTopics creates topics and their dead-letter topics idempotently at
// start.
//
// PublisherTracer and SubscriberTracer add OpenTelemetry spans per the
// messaging conventions: a producer span per message written, carried in
// its traceparent header, and a consumer span per message handled, whose
// context the endpoint gets. Without them (or with the no-op provider)
// nothing is traced.
//
// Wiring a service:
//
//	topics := events.NewTopics(cfg.TopicPrefix)
//	err := kafkatransport.EnsureTopics(ctx, cfg.KafkaBrokers,
//		kafkatransport.TopicSpecs(3, 1, topics.IngestRequests, topics.Chunks)...)
//	pub := kafkatransport.NewPublisher(cfg.KafkaBrokers,
//		kafkatransport.PublisherSource("tributary/ingest"),
//		kafkatransport.PublisherMetrics(metrics))
//	defer pub.Close()
//	sub := kafkatransport.NewSubscriber(kafkatransport.SubscriberConfig{
//		Brokers:  cfg.KafkaBrokers,
//		Group:    "ingest",
//		Topic:    topics.IngestRequests,
//		Producer: pub,
//	}, makeIngestEndpoint(svc), kafkatransport.DecodeEvent, encodeIngestResponse,
//		kafkatransport.SubscriberMetrics(metrics),
//		kafkatransport.SubscriberLogger(logger))
//	err = sub.Run(ctx) // returns after a graceful drain once ctx is done
package kafkatransport
