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
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"regexp"
	"syscall"
	"time"

	"github.com/tributary-rag/tributary/pkg/daemon"
	"github.com/tributary-rag/tributary/pkg/events"
	"github.com/tributary-rag/tributary/pkg/kafkatransport"
	"github.com/tributary-rag/tributary/services/retrieve"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Getenv, os.Stderr)
	stop()
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
	default:
		fmt.Fprintln(os.Stderr, "retrieve:", err)
		os.Exit(1)
	}
}

// settings are the retrieve service's own settings, next to daemon.Config.
type settings struct {
	collection  string
	denseSize   int
	topK        int
	maxTopK     int
	partitions  int
	replication int
	provision   bool
}

var collectionRE = regexp.MustCompile(`^[A-Za-z0-9_-]{1,255}$`)

func (s settings) validate() error {
	var errs []error
	bad := func(flagName, msg string) {
		errs = append(errs, fmt.Errorf("%s (--%s): %s", daemon.EnvName(flagName), flagName, msg))
	}
	if !collectionRE.MatchString(s.collection) {
		bad("collection", "must be 1-255 characters of [A-Za-z0-9_-]")
	}
	if s.denseSize <= 0 || s.denseSize > 65536 {
		bad("dense-size", "must be between 1 and 65536")
	}
	if s.maxTopK <= 0 || s.maxTopK > 1000 {
		bad("max-top-k", "must be between 1 and 1000")
	}
	if s.topK <= 0 || s.topK > s.maxTopK {
		bad("top-k", "must be between 1 and the max-top-k")
	}
	if s.partitions <= 0 {
		bad("topic-partitions", "must be positive")
	}
	if s.replication <= 0 {
		bad("topic-replication", "must be positive")
	}
	if len(errs) > 0 {
		return fmt.Errorf("invalid configuration: %w", errors.Join(errs...))
	}
	return nil
}

func run(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer) error {
	fs := flag.NewFlagSet("retrieve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var s settings
	fs.StringVar(&s.collection, "collection", retrieve.DefaultCollection, "Qdrant collection of the chunks")
	fs.IntVar(&s.denseSize, "dense-size", retrieve.DefaultDenseSize, "size of the dense vectors (fixed when the collection is created)")
	fs.IntVar(&s.topK, "top-k", retrieve.DefaultTopK, "results per query when the query names none")
	fs.IntVar(&s.maxTopK, "max-top-k", retrieve.MaxTopK, "most results per query")
	fs.IntVar(&s.partitions, "topic-partitions", 3, "partitions of topics created at start")
	fs.IntVar(&s.replication, "topic-replication", 1, "replication factor of topics created at start")
	fs.BoolVar(&s.provision, "provision-topics", true, "create missing topics at start")
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

	if s.provision {
		specs := kafkatransport.TopicSpecs(s.partitions, s.replication,
			topics.ChunksEmbedded, topics.Documents, topics.QueriesEmbedded)
		specs = append(specs, kafkatransport.TopicSpec{Name: topics.QueriesRetrieved, Partitions: s.partitions, ReplicationFactor: s.replication})
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
	defer func() {
		if err := client.Close(); err != nil {
			logger.Error("close qdrant client", "error", err.Error())
		}
	}()
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
	defer func() {
		if err := pub.Close(); err != nil {
			logger.Error("close publisher", "error", err.Error())
		}
	}()
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
	g.AddHTTP(&http.Server{
		Addr:              cfg.HTTPAddr,
		Handler:           handler,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
	}, nil, 10*time.Second)
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
