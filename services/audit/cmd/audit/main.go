// Command audit runs Tributary's audit service: it consumes every
// tributary topic and audit.events into an encrypted, hash-chained log in
// the data directory and serves GET /v1/audit/export to API keys with the
// compliance group.
//
// Configuration comes from TRIBUTARY_* environment variables, each
// overridable by the flag of the same name (see docs/audit.md).
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/tributary-rag/tributary/pkg/apikey"
	"github.com/tributary-rag/tributary/pkg/daemon"
	"github.com/tributary-rag/tributary/services/audit"
)

func main() { os.Exit(daemon.Main("audit", run)) }

// settings are the audit service's own settings, next to daemon.Config.
type settings struct {
	keyFile     string
	segmentSize int64
	maxBatch    int
	topicFlags  daemon.TopicFlags
}

func (s settings) validate() error {
	var p daemon.Problems
	if s.segmentSize < 4096 {
		p.Addf("audit-segment-bytes", "must be at least 4096")
	}
	if s.maxBatch <= 0 {
		p.Addf("audit-max-batch", "must be positive")
	}
	s.topicFlags.Check(&p)
	return p.Err()
}

func run(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer) error {
	fs := daemon.NewFlagSet("audit", stderr)
	var s settings
	fs.StringVar(&s.keyFile, "audit-key-file", "", "key file of the key-encryption keys (default <data-dir>/audit.key; created 0600 if missing)")
	fs.Int64Var(&s.segmentSize, "audit-segment-bytes", audit.DefaultSegmentSize, "size at which a segment is sealed and the next started")
	fs.IntVar(&s.maxBatch, "audit-max-batch", 512, "most messages recorded with one fsync")
	s.topicFlags.Register(fs)
	cfg, err := daemon.ParseConfig(fs, args, getenv, daemon.NeedKafka|daemon.NeedDataDir|daemon.NeedAPIKeys)
	if err != nil {
		return err
	}
	if err := s.validate(); err != nil {
		return err
	}
	if s.keyFile == "" {
		s.keyFile = filepath.Join(cfg.DataDir, "audit.key")
	}

	logger := daemon.NewLogger(stderr, cfg.LogLevel, "audit")
	reg := daemon.NewRegistry()
	topics := audit.Topics(cfg.TopicPrefix)

	if err := s.topicFlags.Provision(ctx, logger, cfg.KafkaBrokers, s.topicFlags.Specs(topics)...); err != nil {
		return err
	}

	keys, err := audit.LoadKeyFile(s.keyFile)
	if err != nil {
		return err
	}
	log, err := audit.Open(ctx, cfg.DataDir, keys, audit.WithSegmentSize(s.segmentSize), audit.WithLogger(logger))
	if err != nil {
		return err
	}
	defer daemon.CloseOrLog(logger, "close audit log", log.Close)

	metrics, err := audit.NewMetrics(reg)
	if err != nil {
		return fmt.Errorf("metrics: %w", err)
	}
	var svc audit.Service
	svc = audit.NewService(log)
	svc = audit.LoggingMiddleware(logger)(svc)
	svc = audit.InstrumentingMiddleware(metrics)(svc)
	endpoints := audit.MakeEndpoints(svc)

	auth := audit.AuthenticatorFunc(func(key string) (audit.Principal, bool) {
		p, ok := cfg.APIKeys.Lookup(key)
		return principal(p), ok
	})
	api := audit.MakeHTTPHandler(endpoints, auth, logger)
	handler := daemon.NewHTTPHandler(api, reg, daemon.KafkaCheck(cfg.KafkaBrokers, topics...))

	consumer := audit.NewConsumer(audit.ConsumerConfig{
		Brokers:  cfg.KafkaBrokers,
		Topics:   topics,
		MaxBatch: s.maxBatch,
	}, endpoints.Record, logger)

	var g daemon.Group
	// Exports stream for as long as the log is: NewHTTPServer sets no
	// WriteTimeout, and shutdown waits longer for them.
	g.AddHTTP(daemon.NewHTTPServer(cfg.HTTPAddr, handler), nil, 30*time.Second)
	g.Add("audit-consumer", consumer.Run)
	lastSeq, segments := log.Stats()
	logger.Info("audit starting", "http_addr", cfg.HTTPAddr, "kafka_brokers", cfg.KafkaBrokers,
		"topic_prefix", cfg.TopicPrefix, "data_dir", cfg.DataDir, "key_id", keys.CurrentKeyID(),
		"last_seq", lastSeq, "segments", segments, "api_keys", cfg.APIKeys.Len())
	return g.Run(ctx, logger)
}

func principal(p apikey.Principal) audit.Principal {
	return audit.Principal{Tenant: p.Tenant, Groups: p.Groups, Name: p.Name}
}
