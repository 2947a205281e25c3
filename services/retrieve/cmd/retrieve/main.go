// Command retrieve runs Tributary's retrieval service: it indexes
// tributary.chunks.embedded.v1 into Qdrant, applies the deletions and
// versions of tributary.documents.v1 (publishing document.indexed), and
// answers tributary.queries.embedded.v1 on tributary.queries.retrieved.v1.
//
// Configuration comes from TRIBUTARY_* environment variables, each
// overridable by the flag of the same name (see docs/retrieve.md).
package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"regexp"
	"time"

	"github.com/tributary-rag/tributary/pkg/daemon"
	"github.com/tributary-rag/tributary/pkg/events"
	"github.com/tributary-rag/tributary/pkg/kafkatransport"
	"github.com/tributary-rag/tributary/services/retrieve"
)

func main() { os.Exit(daemon.Main("retrieve", run)) }

// settings are the retrieve service's own settings, next to daemon.Config.
type settings struct {
	collection string
	denseSize  int
	topK       int
	maxTopK    int
	topicFlags daemon.TopicFlags
}

var collectionRE = regexp.MustCompile(`^[A-Za-z0-9_-]{1,255}$`)

func (s settings) validate() error {
	var p daemon.Problems
	if !collectionRE.MatchString(s.collection) {
		p.Addf("collection", "must be 1-255 characters of [A-Za-z0-9_-]")
	}
	if s.denseSize <= 0 || s.denseSize > 65536 {
		p.Addf("dense-size", "must be between 1 and 65536")
	}
	if s.maxTopK <= 0 || s.maxTopK > 1000 {
		p.Addf("max-top-k", "must be between 1 and 1000")
	}
	if s.topK <= 0 || s.topK > s.maxTopK {
		p.Addf("top-k", "must be between 1 and the max-top-k")
	}
	s.topicFlags.Check(&p)
	return p.Err()
}

func run(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer) error {
	fs := daemon.NewFlagSet("retrieve", stderr)
	var s settings
	fs.StringVar(&s.collection, "collection", retrieve.DefaultCollection, "Qdrant collection of the chunks")
	fs.IntVar(&s.denseSize, "dense-size", retrieve.DefaultDenseSize, "size of the dense vectors (fixed when the collection is created)")
	fs.IntVar(&s.topK, "top-k", retrieve.DefaultTopK, "results per query when the query names none")
	fs.IntVar(&s.maxTopK, "max-top-k", retrieve.MaxTopK, "most results per query")
	s.topicFlags.Register(fs)
	cfg, err := daemon.ParseConfig(fs, args, getenv, daemon.NeedKafka|daemon.NeedQdrant)
	if err != nil {
		return err
	}
	if err := s.validate(); err != nil {
		return err
	}

	logger := daemon.NewLogger(stderr, cfg.LogLevel, "retrieve")
	reg := daemon.NewRegistry()
	topics := events.NewTopics(cfg.TopicPrefix)

	// Provisioned through retry rather than TopicFlags.Provision: the
	// same retry waits for Qdrant below, and both log alike.
	if s.topicFlags.Enabled {
		specs := s.topicFlags.Specs([]string{topics.ChunksEmbedded, topics.Documents, topics.QueriesEmbedded}, topics.QueriesRetrieved)
		if err := retry(ctx, logger, "provision topics", func(ctx context.Context) error {
			return kafkatransport.EnsureTopics(ctx, cfg.KafkaBrokers, specs...)
		}); err != nil {
			return err
		}
	}

	client, err := retrieve.Dial(cfg.QdrantAddr)
	if err != nil {
		return err
	}
	defer daemon.CloseOrLog(logger, "close qdrant client", client.Close)
	index := retrieve.NewIndex(client, s.collection, s.denseSize)
	if err := retry(ctx, logger, "ensure collection", index.Ensure); err != nil {
		return err
	}

	kmetrics, err := kafkatransport.NewMetrics(reg)
	if err != nil {
		return fmt.Errorf("kafka metrics: %w", err)
	}
	pub := kafkatransport.NewPublisher(cfg.KafkaBrokers,
		kafkatransport.PublisherSource(retrieve.EventSource),
		kafkatransport.PublisherMetrics(kmetrics))
	defer daemon.CloseOrLog(logger, "close publisher", pub.Close)
	metrics, err := retrieve.NewMetrics(reg)
	if err != nil {
		return fmt.Errorf("metrics: %w", err)
	}

	var svc retrieve.Service
	svc = retrieve.NewService(index, retrieve.NewKafkaEmitter(pub, topics.Documents), retrieve.WithTopK(s.topK, s.maxTopK))
	svc = retrieve.LoggingMiddleware(logger)(svc)
	svc = retrieve.InstrumentingMiddleware(metrics)(svc)
	endpoints := retrieve.MakeEndpoints(svc)

	subOpts := []kafkatransport.SubscriberOption{
		kafkatransport.SubscriberMetrics(kmetrics),
		kafkatransport.SubscriberLogger(logger),
	}
	chunks := retrieve.NewChunksSubscriber(cfg.KafkaBrokers, topics.ChunksEmbedded, pub, endpoints, subOpts...)
	docs := retrieve.NewDocumentsSubscriber(cfg.KafkaBrokers, topics.Documents, pub, endpoints, subOpts...)
	queries := retrieve.NewQueriesSubscriber(cfg.KafkaBrokers, topics.QueriesEmbedded, topics.QueriesRetrieved, pub, endpoints, subOpts...)

	handler := daemon.NewHTTPHandler(nil, reg,
		daemon.KafkaCheck(cfg.KafkaBrokers, topics.ChunksEmbedded, topics.Documents, topics.QueriesEmbedded, topics.QueriesRetrieved),
		daemon.Check{Name: "qdrant", Run: index.Health})

	var g daemon.Group
	g.AddHTTP(daemon.NewHTTPServer(cfg.HTTPAddr, handler), nil, 10*time.Second)
	g.Add("chunks-embedded", chunks.Run)
	g.Add("documents", docs.Run)
	g.Add("queries-embedded", queries.Run)
	logger.Info("retrieve starting", "http_addr", cfg.HTTPAddr, "kafka_brokers", cfg.KafkaBrokers,
		"topic_prefix", topics.Prefix, "qdrant_addr", cfg.QdrantAddr, "collection", s.collection, "dense_size", s.denseSize)
	return g.Run(ctx, logger)
}

// retry runs fn until it succeeds, for up to a minute, so that the service
// may start together with its broker and its vector store.
func retry(ctx context.Context, logger *slog.Logger, what string, fn func(context.Context) error) error {
	deadline := time.Now().Add(time.Minute)
	for attempt := 1; ; attempt++ {
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err := fn(cctx)
		cancel()
		if err == nil {
			return nil
		}
		if ctx.Err() != nil || time.Now().After(deadline) {
			return fmt.Errorf("%s: %w", what, err)
		}
		logger.Warn(what+": not ready, retrying", "attempt", attempt, "error", err.Error())
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Second):
		}
	}
}
