// Command embed runs Tributary's embedding service: it consumes
// tributary.chunks.v1 and tributary.queries.approved.v1 and produces
// tributary.chunks.embedded.v1 and tributary.queries.embedded.v1 with
// sparse (BM25) vectors.
//
// Configuration comes from TRIBUTARY_* environment variables, each
// overridable by the flag of the same name (see docs/embed.md).
package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"

	"github.com/tributary-rag/tributary/pkg/daemon"
	"github.com/tributary-rag/tributary/pkg/events"
	"github.com/tributary-rag/tributary/pkg/kafkatransport"
	"github.com/tributary-rag/tributary/services/embed"
)

func main() { os.Exit(daemon.Main("embed", run)) }

// settings are the embed service's own settings, next to daemon.Config.
type settings struct {
	k1         float64
	b          float64
	avgdl      float64
	stem       bool
	batch      time.Duration
	schemas    bool
	topicFlags daemon.TopicFlags
}

func (s settings) validate() error {
	var p daemon.Problems
	if err := embed.ValidateBM25(s.k1, 0.5, 1); err != nil {
		p.Addf("bm25-k1", "must be a positive number")
	}
	if err := embed.ValidateBM25(1, s.b, 1); err != nil {
		p.Addf("bm25-b", "must be between 0 and 1")
	}
	if err := embed.ValidateBM25(1, 0.5, s.avgdl); err != nil {
		p.Addf("bm25-avgdl", "must be a positive number")
	}
	if s.batch <= 0 || s.batch > time.Second {
		p.Addf("publish-batch-timeout", "must be positive and at most 1s")
	}
	s.topicFlags.Check(&p)
	return p.Err()
}

func run(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer) error {
	fs := daemon.NewFlagSet("embed", stderr)
	var s settings
	fs.Float64Var(&s.k1, "bm25-k1", embed.DefaultK1, "BM25 term-frequency saturation k1 (> 0)")
	fs.Float64Var(&s.b, "bm25-b", embed.DefaultB, "BM25 length normalization b (0 to 1)")
	fs.Float64Var(&s.avgdl, "bm25-avgdl", embed.DefaultAvgDL, "average chunk length in tokens for BM25 length normalization")
	fs.BoolVar(&s.stem, "stem", true, "apply the English S-stemmer (plural → singular)")
	fs.DurationVar(&s.batch, "publish-batch-timeout", kafkatransport.DefaultBatchTimeout, "how long a produce waits for more messages to share its batch")
	fs.BoolVar(&s.schemas, "validate-schemas", true, "check every input event against its JSON Schema (dead-letter the ones that fail)")
	s.topicFlags.Register(fs)
	cfg, err := daemon.ParseConfig(fs, args, getenv, daemon.NeedKafka)
	if err != nil {
		return err
	}
	if err := s.validate(); err != nil {
		return err
	}

	logger := daemon.NewLogger(stderr, cfg.LogLevel, "embed")
	reg := daemon.NewRegistry()
	topics := events.NewTopics(cfg.TopicPrefix)

	specs := s.topicFlags.Specs([]string{topics.Chunks, topics.QueriesApproved}, topics.ChunksEmbedded, topics.QueriesEmbedded)
	if err := s.topicFlags.Provision(ctx, logger, cfg.KafkaBrokers, specs...); err != nil {
		return err
	}

	embedder, err := embed.NewSparse(embed.WithBM25(s.k1, s.b, s.avgdl), embed.WithStemming(s.stem))
	if err != nil {
		return err
	}
	kmetrics, err := kafkatransport.NewMetrics(reg)
	if err != nil {
		return fmt.Errorf("kafka metrics: %w", err)
	}
	metrics, err := embed.NewMetrics(reg)
	if err != nil {
		return fmt.Errorf("metrics: %w", err)
	}
	pub := kafkatransport.NewPublisher(cfg.KafkaBrokers,
		kafkatransport.PublisherSource(embed.EventSource),
		kafkatransport.PublisherBatchTimeout(s.batch),
		kafkatransport.PublisherMetrics(kmetrics))
	defer daemon.CloseOrLog(logger, "close publisher", pub.Close)

	var svc embed.Service
	svc = embed.NewService(embedder)
	svc = embed.LoggingMiddleware(logger)(svc)
	svc = embed.InstrumentingMiddleware(metrics)(svc)
	endpoints := embed.MakeEndpoints(svc)

	subOpts := []kafkatransport.SubscriberOption{
		kafkatransport.SubscriberMetrics(kmetrics),
		kafkatransport.SubscriberLogger(logger),
	}
	var validator *events.Validator
	if s.schemas {
		if validator, err = events.NewValidator(); err != nil {
			return fmt.Errorf("event schemas: %w", err)
		}
	}
	chunks := embed.NewChunkSubscriber(cfg.KafkaBrokers, topics, pub, endpoints, validator, subOpts...)
	queries := embed.NewQuerySubscriber(cfg.KafkaBrokers, topics, pub, endpoints, validator, subOpts...)

	handler := daemon.NewHTTPHandler(http.NotFoundHandler(), reg,
		daemon.KafkaCheck(cfg.KafkaBrokers, topics.Chunks, topics.QueriesApproved, topics.ChunksEmbedded, topics.QueriesEmbedded))

	var g daemon.Group
	g.AddHTTP(daemon.NewHTTPServer(cfg.HTTPAddr, handler), nil, 10*time.Second)
	g.Add("chunks", chunks.Run)
	g.Add("queries-approved", queries.Run)
	logger.Info("embed starting", "http_addr", cfg.HTTPAddr, "kafka_brokers", cfg.KafkaBrokers,
		"topic_prefix", topics.Prefix, "model", embedder.Model(), "bm25_k1", s.k1, "bm25_b", s.b,
		"bm25_avgdl", s.avgdl, "stem", s.stem, "publish_batch_timeout", s.batch.String(), "validate_schemas", s.schemas)
	return g.Run(ctx, logger)
}
