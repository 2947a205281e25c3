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
	"fmt"
	"io"
	"net/http"
	"os"
	"time"

	"github.com/tributary-rag/tributary/pkg/daemon"
	"github.com/tributary-rag/tributary/pkg/events"
	"github.com/tributary-rag/tributary/pkg/kafkatransport"
	"github.com/tributary-rag/tributary/services/moderate"
)

func main() { os.Exit(daemon.Main("moderate", run)) }

// settings are the moderate service's own settings, next to daemon.Config.
type settings struct {
	policyDir  string
	limits     moderate.Limits
	svc        moderate.Config
	topicFlags daemon.TopicFlags
}

func (s settings) validate() error {
	var p daemon.Problems
	if s.limits.MaxQuestionRunes <= 0 {
		p.Addf("max-question-runes", "must be positive")
	}
	if s.limits.MaxRedactions <= 0 {
		p.Addf("max-redactions", "must be positive")
	}
	if s.svc.MaxSentenceRunes < 16 {
		p.Addf("max-sentence-runes", "must be at least 16")
	}
	if s.svc.StateTTL < time.Second {
		p.Addf("answer-ttl", "must be at least 1s")
	}
	s.topicFlags.Check(&p)
	return p.Err()
}

func run(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer) error {
	fs := daemon.NewFlagSet("moderate", stderr)
	var s settings
	fs.StringVar(&s.policyDir, "policy-dir", "", "directory of a Rego policy bundle replacing the embedded default")
	fs.IntVar(&s.limits.MaxQuestionRunes, "max-question-runes", 2000, "longest question, in characters")
	fs.IntVar(&s.limits.MaxRedactions, "max-redactions", 20, "redactions one answer may need before it is withheld")
	fs.IntVar(&s.svc.MaxSentenceRunes, "max-sentence-runes", moderate.DefaultMaxSentenceRunes, "longest text moderated as one unit when no sentence boundary comes")
	fs.DurationVar(&s.svc.StateTTL, "answer-ttl", 10*time.Minute, "drop the buffer of an answer idle this long")
	s.topicFlags.Register(fs)
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
	specs := s.topicFlags.Specs([]string{topics.QueriesReceived, topics.QueriesApproved,
		topics.QueriesRejected, topics.AnswersGenerated, topics.AnswersModerated, topics.AuditEvents})
	if err := s.topicFlags.Provision(ctx, logger, cfg.KafkaBrokers, specs...); err != nil {
		return err
	}

	kmetrics, err := kafkatransport.NewMetrics(reg)
	if err != nil {
		return fmt.Errorf("kafka metrics: %w", err)
	}
	pub := kafkatransport.NewPublisher(cfg.KafkaBrokers,
		kafkatransport.PublisherSource(moderate.EventSource),
		kafkatransport.PublisherMetrics(kmetrics))
	defer daemon.CloseOrLog(logger, "close publisher", pub.Close)
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
	g.AddHTTP(daemon.NewHTTPServer(cfg.HTTPAddr, handler), nil, 10*time.Second)
	g.Add("queries-received", querySub.Run)
	g.Add("answers-generated", answerSub.Run)
	logger.Info("moderate starting", "http_addr", cfg.HTTPAddr, "kafka_brokers", cfg.KafkaBrokers,
		"topic_prefix", topics.Prefix, "policy", policy.Revision(),
		"max_question_runes", s.limits.MaxQuestionRunes, "max_redactions", s.limits.MaxRedactions)
	return g.Run(ctx, logger)
}
