// Command ingest runs Tributary's document ingest service: the HTTP API
// POST/GET/DELETE /v1/documents and the consumer of
// tributary.ingest.requests.v1, publishing document and chunk events, and
// the consumer of tributary.documents.v1 that records which versions the
// retrieve service has indexed.
//
// Configuration comes from TRIBUTARY_* environment variables, each
// overridable by the flag of the same name (see docs/ingest.md).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"regexp"
	"syscall"
	"time"

	"github.com/tributary-rag/tributary/pkg/apikey"
	"github.com/tributary-rag/tributary/pkg/chunk"
	"github.com/tributary-rag/tributary/pkg/daemon"
	"github.com/tributary-rag/tributary/pkg/docparse"
	"github.com/tributary-rag/tributary/pkg/events"
	"github.com/tributary-rag/tributary/pkg/kafkatransport"
	"github.com/tributary-rag/tributary/services/ingest"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Getenv, os.Stderr)
	stop()
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
	default:
		fmt.Fprintln(os.Stderr, "ingest:", err)
		os.Exit(1)
	}
}

// settings are the ingest service's own settings, next to daemon.Config.
type settings struct {
	maxBytes     int64
	maxUploads   int
	chunkSize    int
	chunkOverlap int
	parseTimeout time.Duration
	partitions   int
	replication  int
	provision    bool
	// instanceID names this instance's documents consumer group (see
	// ingest.DocumentsGroup); empty for a single instance.
	instanceID string
}

var instancePattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$`)

func (s settings) validate() error {
	var errs []error
	bad := func(flagName, msg string) {
		errs = append(errs, fmt.Errorf("%s (--%s): %s", daemon.EnvName(flagName), flagName, msg))
	}
	if s.maxBytes <= 0 {
		bad("max-document-bytes", "must be positive")
	}
	if s.maxUploads <= 0 {
		bad("max-concurrent-uploads", "must be positive")
	}
	if s.chunkSize <= 0 {
		bad("chunk-size", "must be positive")
	}
	if s.chunkOverlap < 0 || s.chunkOverlap >= s.chunkSize {
		bad("chunk-overlap", "must be at least 0 and smaller than the chunk size")
	}
	if s.parseTimeout <= 0 {
		bad("parse-timeout", "must be positive")
	}
	if s.partitions <= 0 {
		bad("topic-partitions", "must be positive")
	}
	if s.replication <= 0 {
		bad("topic-replication", "must be positive")
	}
	if s.instanceID != "" && !instancePattern.MatchString(s.instanceID) {
		bad("instance-id", fmt.Sprintf("%q must be 1-100 characters of [A-Za-z0-9._-]", s.instanceID))
	}
	if len(errs) > 0 {
		return fmt.Errorf("invalid configuration: %w", errors.Join(errs...))
	}
	return nil
}

func run(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer) error {
	fs := flag.NewFlagSet("ingest", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var s settings
	fs.Int64Var(&s.maxBytes, "max-document-bytes", ingest.DefaultMaxDocumentSize, "largest accepted document, in bytes")
	fs.IntVar(&s.maxUploads, "max-concurrent-uploads", ingest.DefaultMaxUploads, "POST requests read and processed at once; others wait")
	fs.IntVar(&s.chunkSize, "chunk-size", chunk.DefaultSize, "largest chunk, in runes")
	fs.IntVar(&s.chunkOverlap, "chunk-overlap", chunk.DefaultOverlap, "most runes a chunk repeats from the previous one (0: none)")
	fs.DurationVar(&s.parseTimeout, "parse-timeout", docparse.DefaultTimeout, "time limit for parsing one document")
	fs.IntVar(&s.partitions, "topic-partitions", 3, "partitions of topics created at start")
	fs.IntVar(&s.replication, "topic-replication", 1, "replication factor of topics created at start")
	fs.BoolVar(&s.provision, "provision-topics", true, "create missing topics at start")
	fs.StringVar(&s.instanceID, "instance-id", "", "this instance's id when several run side by side; its documents consumer group is ingest.documents.<id> (empty: ingest.documents)")
	cfg, err := daemon.ParseConfig(fs, args, getenv, daemon.NeedKafka|daemon.NeedDataDir|daemon.NeedAPIKeys)
	if err != nil {
		return err
	}
	if err := s.validate(); err != nil {
		return err
	}

	logger := daemon.NewLogger(stderr, cfg.LogLevel, "ingest")
	reg := daemon.NewRegistry()
	topics := events.NewTopics(cfg.TopicPrefix)

	if s.provision {
		// The two topics the service consumes get their dead-letter
		// topics too.
		specs := append(
			kafkatransport.TopicSpecs(s.partitions, s.replication, topics.IngestRequests, topics.Documents),
			kafkatransport.TopicSpec{Name: topics.Chunks, Partitions: s.partitions, ReplicationFactor: s.replication},
		)
		if err := kafkatransport.Provision(ctx, logger, time.Minute, cfg.KafkaBrokers, specs...); err != nil {
			return err
		}
	}

	store, err := ingest.OpenStore(cfg.DataDir)
	if err != nil {
		return err
	}
	defer func() {
		if err := store.Close(); err != nil {
			logger.Error("close store", "error", err.Error())
		}
	}()

	kmetrics, err := kafkatransport.NewMetrics(reg)
	if err != nil {
		return fmt.Errorf("kafka metrics: %w", err)
	}
	pub := kafkatransport.NewPublisher(cfg.KafkaBrokers,
		kafkatransport.PublisherSource(ingest.EventSource),
		kafkatransport.PublisherMetrics(kmetrics))
	defer func() {
		if err := pub.Close(); err != nil {
			logger.Error("close publisher", "error", err.Error())
		}
	}()

	overlap := s.chunkOverlap
	if overlap == 0 {
		overlap = -1 // package chunk reads 0 as "the default"
	}
	chunker, err := ingest.NewDocChunker(chunk.Options{Size: s.chunkSize, Overlap: overlap},
		docparse.Limits{MaxBytes: s.maxBytes, Timeout: s.parseTimeout})
	if err != nil {
		return err
	}
	metrics, err := ingest.NewMetrics(reg)
	if err != nil {
		return fmt.Errorf("metrics: %w", err)
	}

	var svc ingest.Service
	svc = ingest.NewService(store, chunker, ingest.NewKafkaEmitter(pub, cfg.TopicPrefix), ingest.WithMaxDocumentSize(s.maxBytes))
	svc = ingest.LoggingMiddleware(logger)(svc)
	svc = ingest.InstrumentingMiddleware(metrics)(svc)
	endpoints := ingest.MakeEndpoints(svc)

	auth := ingest.AuthenticatorFunc(func(key string) (ingest.Principal, bool) {
		p, ok := cfg.APIKeys.Lookup(key)
		return principal(p), ok
	})
	api := ingest.MakeHTTPHandler(endpoints, auth, logger, ingest.WithHTTPMaxDocumentSize(s.maxBytes), ingest.WithHTTPMaxUploads(s.maxUploads))
	handler := daemon.NewHTTPHandler(api, reg,
		daemon.KafkaCheck(cfg.KafkaBrokers, topics.IngestRequests, topics.Documents, topics.Chunks))

	sub := ingest.NewIngestSubscriber(cfg.KafkaBrokers, topics.IngestRequests, pub, endpoints,
		kafkatransport.SubscriberMetrics(kmetrics),
		kafkatransport.SubscriberLogger(logger))
	documentsGroup := ingest.DocumentsGroup(s.instanceID)
	indexed := ingest.NewDocumentsSubscriber(cfg.KafkaBrokers, documentsGroup, topics.Documents, pub, endpoints,
		kafkatransport.SubscriberMetrics(kmetrics),
		kafkatransport.SubscriberLogger(logger))

	var g daemon.Group
	g.AddHTTP(&http.Server{
		Addr:              cfg.HTTPAddr,
		Handler:           handler,
		ReadHeaderTimeout: 10 * time.Second,
		// Uploads of up to the size limit on slow links: no ReadTimeout,
		// but idle connections go.
		IdleTimeout: 2 * time.Minute,
	}, nil, 30*time.Second)
	g.Add("ingest-requests", sub.Run)
	g.Add("ingest-documents", indexed.Run)
	logger.Info("ingest starting", "http_addr", cfg.HTTPAddr, "kafka_brokers", cfg.KafkaBrokers,
		"topic_prefix", topics.Prefix, "groups", []string{ingest.KafkaGroup, documentsGroup}, "data_dir", cfg.DataDir, "documents", store.Len(), "api_keys", cfg.APIKeys.Len())
	return g.Run(ctx, logger)
}

func principal(p apikey.Principal) ingest.Principal {
	return ingest.Principal{Tenant: p.Tenant, Groups: p.Groups, Name: p.Name}
}
