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
	"fmt"
	"io"
	"os"
	"regexp"
	"time"

	"github.com/tributary-rag/tributary/pkg/apikey"
	"github.com/tributary-rag/tributary/pkg/chunk"
	"github.com/tributary-rag/tributary/pkg/daemon"
	"github.com/tributary-rag/tributary/pkg/docparse"
	"github.com/tributary-rag/tributary/pkg/events"
	"github.com/tributary-rag/tributary/pkg/kafkatransport"
	"github.com/tributary-rag/tributary/services/ingest"
)

func main() { os.Exit(daemon.Main("ingest", run)) }

// settings are the ingest service's own settings, next to daemon.Config.
type settings struct {
	maxBytes     int64
	maxUploads   int
	chunkSize    int
	chunkOverlap int
	parseTimeout time.Duration
	topicFlags   daemon.TopicFlags
	// instanceID names this instance's documents consumer group (see
	// ingest.DocumentsGroup); empty for a single instance.
	instanceID string
}

var instancePattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$`)

func (s settings) validate() error {
	var p daemon.Problems
	if s.maxBytes <= 0 {
		p.Addf("max-document-bytes", "must be positive")
	}
	if s.maxUploads <= 0 {
		p.Addf("max-concurrent-uploads", "must be positive")
	}
	if s.chunkSize <= 0 {
		p.Addf("chunk-size", "must be positive")
	}
	if s.chunkOverlap < 0 || s.chunkOverlap >= s.chunkSize {
		p.Addf("chunk-overlap", "must be at least 0 and smaller than the chunk size")
	}
	if s.parseTimeout <= 0 {
		p.Addf("parse-timeout", "must be positive")
	}
	// The topic settings come before the instance id here, not last:
	// ingest has always reported its problems in this order.
	s.topicFlags.Check(&p)
	if s.instanceID != "" && !instancePattern.MatchString(s.instanceID) {
		p.Addf("instance-id", "%q must be 1-100 characters of [A-Za-z0-9._-]", s.instanceID)
	}
	return p.Err()
}

func run(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer) error {
	fs := daemon.NewFlagSet("ingest", stderr)
	var s settings
	fs.Int64Var(&s.maxBytes, "max-document-bytes", ingest.DefaultMaxDocumentSize, "largest accepted document, in bytes")
	fs.IntVar(&s.maxUploads, "max-concurrent-uploads", ingest.DefaultMaxUploads, "POST requests read and processed at once; others wait")
	fs.IntVar(&s.chunkSize, "chunk-size", chunk.DefaultSize, "largest chunk, in runes")
	fs.IntVar(&s.chunkOverlap, "chunk-overlap", chunk.DefaultOverlap, "most runes a chunk repeats from the previous one (0: none)")
	fs.DurationVar(&s.parseTimeout, "parse-timeout", docparse.DefaultTimeout, "time limit for parsing one document")
	s.topicFlags.Register(fs)
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

	// The two topics the service consumes get their dead-letter topics
	// too.
	specs := s.topicFlags.Specs([]string{topics.IngestRequests, topics.Documents}, topics.Chunks)
	if err := s.topicFlags.Provision(ctx, logger, cfg.KafkaBrokers, specs...); err != nil {
		return err
	}

	store, err := ingest.OpenStore(cfg.DataDir)
	if err != nil {
		return err
	}
	defer daemon.CloseOrLog(logger, "close store", store.Close)

	kmetrics, err := kafkatransport.NewMetrics(reg)
	if err != nil {
		return fmt.Errorf("kafka metrics: %w", err)
	}
	pub := kafkatransport.NewPublisher(cfg.KafkaBrokers,
		kafkatransport.PublisherSource(ingest.EventSource),
		kafkatransport.PublisherMetrics(kmetrics))
	defer daemon.CloseOrLog(logger, "close publisher", pub.Close)

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
	// Uploads of up to the size limit on slow links: NewHTTPServer sets no
	// ReadTimeout, and shutdown waits longer for them.
	g.AddHTTP(daemon.NewHTTPServer(cfg.HTTPAddr, handler), nil, 30*time.Second)
	g.Add("ingest-requests", sub.Run)
	g.Add("ingest-documents", indexed.Run)
	logger.Info("ingest starting", "http_addr", cfg.HTTPAddr, "kafka_brokers", cfg.KafkaBrokers,
		"topic_prefix", topics.Prefix, "groups", []string{ingest.KafkaGroup, documentsGroup}, "data_dir", cfg.DataDir, "documents", store.Len(), "api_keys", cfg.APIKeys.Len())
	return g.Run(ctx, logger)
}

func principal(p apikey.Principal) ingest.Principal {
	return ingest.Principal{Tenant: p.Tenant, Groups: p.Groups, Name: p.Name}
}
