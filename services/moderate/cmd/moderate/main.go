// Command moderate runs Tributary's moderation service: embedded OPA input
// and output policies between tributary.queries.received.v1 and
// tributary.queries.approved.v1 / tributary.queries.rejected.v1, and
// between tributary.answers.generated.v1 and tributary.answers.moderated.v1,
// with every decision on tributary.audit.events.v1.
//
// Configuration comes from TRIBUTARY_* environment variables, each
// overridable by the flag of the same name (see docs/moderate.md).
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
	"syscall"
	"time"

	"github.com/tributary-rag/tributary/pkg/daemon"
	"github.com/tributary-rag/tributary/pkg/events"
	"github.com/tributary-rag/tributary/pkg/kafkatransport"
	"github.com/tributary-rag/tributary/services/moderate"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Getenv, os.Stderr)
	stop()
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
	default:
		fmt.Fprintln(os.Stderr, "moderate:", err)
		os.Exit(1)
	}
}

// settings are the moderate service's own settings, next to daemon.Config.
type settings struct {
	policyDir  string
	limits     moderate.Limits
	svc        moderate.Config
	partitions int
	replica    int
	provision  bool
}

func (s settings) validate() error {
	var errs []error
	bad := func(flagName, msg string) {
		errs = append(errs, fmt.Errorf("%s (--%s): %s", daemon.EnvName(flagName), flagName, msg))
	}
	if s.limits.MaxQuestionRunes <= 0 {
		bad("max-question-runes", "must be positive")
	}
	if s.limits.MaxRedactions <= 0 {
		bad("max-redactions", "must be positive")
	}
	if s.svc.MaxSentenceRunes < 16 {
		bad("max-sentence-runes", "must be at least 16")
	}
	if s.svc.StateTTL < time.Second {
		bad("answer-ttl", "must be at least 1s")
	}
	if s.partitions <= 0 {
		bad("topic-partitions", "must be positive")
	}
	if s.replica <= 0 {
		bad("topic-replication", "must be positive")
	}
	if len(errs) > 0 {
		return fmt.Errorf("invalid configuration: %w", errors.Join(errs...))
	}
	return nil
}

func run(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer) error {
	fs := flag.NewFlagSet("moderate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var s settings
	fs.StringVar(&s.policyDir, "policy-dir", "", "directory of a Rego policy bundle replacing the embedded default")
	fs.IntVar(&s.limits.MaxQuestionRunes, "max-question-runes", 2000, "longest question, in characters")
	fs.IntVar(&s.limits.MaxRedactions, "max-redactions", 20, "redactions one answer may need before it is withheld")
	fs.IntVar(&s.svc.MaxSentenceRunes, "max-sentence-runes", moderate.DefaultMaxSentenceRunes, "longest text moderated as one unit when no sentence boundary comes")
	fs.DurationVar(&s.svc.StateTTL, "answer-ttl", 10*time.Minute, "drop the buffer of an answer idle this long")
	fs.IntVar(&s.partitions, "topic-partitions", 3, "partitions of topics created at start")
	fs.IntVar(&s.replica, "topic-replication", 1, "replication factor of topics created at start")
	fs.BoolVar(&s.provision, "provision-topics", true, "create missing topics at start")
	cfg, err := daemon.ParseConfig(fs, args, getenv, daemon.NeedKafka)
	if err != nil {
		return err
	}
	if err := s.validate(); err != nil {
		return err
	}

	bundle, err := moderate.DefaultBundle()
	if s.policyDir != "" {
		bundle, err = moderate.LoadBundleDir(s.policyDir)
	}
	if err != nil {
		return err
	}
	policy, err := moderate.NewPolicy(ctx, bundle, s.limits)
	if err != nil {
		return err
	}

	logger := daemon.NewLogger(stderr, cfg.LogLevel, "moderate")
	reg := daemon.NewRegistry()
	topics := events.NewTopics(cfg.TopicPrefix)
	if s.provision {
		specs := kafkatransport.TopicSpecs(s.partitions, s.replica, topics.QueriesReceived, topics.QueriesApproved,
			topics.QueriesRejected, topics.AnswersGenerated, topics.AnswersModerated, topics.AuditEvents)
		if err := kafkatransport.Provision(ctx, logger, time.Minute, cfg.KafkaBrokers, specs...); err != nil {
			return err
		}
	}

	kmetrics, err := kafkatransport.NewMetrics(reg)
	if err != nil {
		return fmt.Errorf("kafka metrics: %w", err)
	}
	pub := kafkatransport.NewPublisher(cfg.KafkaBrokers,
		kafkatransport.PublisherSource(moderate.EventSource),
		kafkatransport.PublisherMetrics(kmetrics))
	defer func() {
		if err := pub.Close(); err != nil {
			logger.Error("close publisher", "error", err.Error())
		}
	}()
	metrics, err := moderate.NewMetrics(reg)
	if err != nil {
		return fmt.Errorf("metrics: %w", err)
	}

	var svc moderate.Service
	svc = moderate.NewService(policy, s.svc)
	svc = moderate.LoggingMiddleware(logger)(svc)
	svc = moderate.InstrumentingMiddleware(metrics)(svc)
	endpoints := moderate.MakeEndpoints(svc)

	subOpts := []kafkatransport.SubscriberOption{
		kafkatransport.SubscriberMetrics(kmetrics),
		kafkatransport.SubscriberLogger(logger),
	}
	querySub := moderate.NewQuerySubscriber(cfg.KafkaBrokers, moderate.KafkaGroup, topics, pub, endpoints, subOpts...)
	answerSub := moderate.NewAnswerSubscriber(cfg.KafkaBrokers, moderate.KafkaGroup, topics, pub, endpoints, subOpts...)

	handler := daemon.NewHTTPHandler(http.NotFoundHandler(), reg,
		daemon.KafkaCheck(cfg.KafkaBrokers, topics.QueriesReceived, topics.AnswersGenerated))
	var g daemon.Group
	g.AddHTTP(&http.Server{
		Addr:              cfg.HTTPAddr,
		Handler:           handler,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
	}, nil, 10*time.Second)
	g.Add("queries-received", querySub.Run)
	g.Add("answers-generated", answerSub.Run)
	logger.Info("moderate starting", "http_addr", cfg.HTTPAddr, "kafka_brokers", cfg.KafkaBrokers,
		"topic_prefix", topics.Prefix, "policy", policy.Revision(),
		"max_question_runes", s.limits.MaxQuestionRunes, "max_redactions", s.limits.MaxRedactions)
	return g.Run(ctx, logger)
}
