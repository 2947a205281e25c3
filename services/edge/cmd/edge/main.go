// Command edge runs Tributary's WebSocket edge: chat clients connect to
// GET /v1/chat with an API key, ask questions (published to
// tributary.queries.received.v1) and get the moderated answers streamed
// back from tributary.answers.moderated.v1 and refusals from
// tributary.queries.rejected.v1.
//
// Configuration comes from TRIBUTARY_* environment variables, each
// overridable by the flag of the same name (see docs/edge.md).
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"regexp"
	"strings"
	"time"

	"github.com/tributary-rag/tributary/pkg/daemon"
	"github.com/tributary-rag/tributary/pkg/events"
	"github.com/tributary-rag/tributary/pkg/kafkatransport"
	"github.com/tributary-rag/tributary/services/edge"
)

func main() { os.Exit(daemon.Main("edge", run)) }

// settings are the edge's own settings, next to daemon.Config.
type settings struct {
	replicaID      string
	origins        string
	ws             edge.WSConfig
	svc            edge.Config
	topicFlags     daemon.TopicFlags
	shutdownDrain  time.Duration
	maxMessageSize int64
}

var replicaPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$`)

func (s settings) validate() error {
	var p daemon.Problems
	if !replicaPattern.MatchString(s.replicaID) {
		p.Addf("replica-id", "%q must be 1-100 characters of [A-Za-z0-9._-]", s.replicaID)
	}
	if s.maxMessageSize < 256 || s.maxMessageSize > 1<<20 {
		p.Addf("max-message-bytes", "must be between 256 and 1048576")
	}
	if s.ws.MaxInFlight <= 0 {
		p.Addf("max-in-flight", "must be positive")
	}
	if s.ws.SendBuffer <= 0 {
		p.Addf("send-buffer", "must be positive")
	}
	if s.ws.WriteWait <= 0 {
		p.Addf("write-wait", "must be positive")
	}
	if s.ws.PongWait < time.Second {
		p.Addf("pong-wait", "must be at least 1s")
	}
	if s.svc.AnswerTimeout <= 0 {
		p.Addf("answer-timeout", "must be positive")
	}
	if s.svc.PublishTimeout <= 0 {
		p.Addf("publish-timeout", "must be positive")
	}
	s.topicFlags.Check(&p)
	return p.Err()
}

func defaultReplicaID() string {
	h, err := os.Hostname()
	if err != nil || !replicaPattern.MatchString(h) {
		return "edge"
	}
	return h
}

func run(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer) error {
	fs := daemon.NewFlagSet("edge", stderr)
	var s settings
	fs.StringVar(&s.replicaID, "replica-id", defaultReplicaID(), "this replica's id; its consumer groups are edge-<id>.answers and edge-<id>.rejected (default: the host name)")
	fs.StringVar(&s.origins, "allowed-origins", "", "comma-separated Origin values accepted on /v1/chat (empty: any)")
	fs.Int64Var(&s.maxMessageSize, "max-message-bytes", 32<<10, "largest client message; larger closes the connection with 1009")
	fs.IntVar(&s.ws.MaxInFlight, "max-in-flight", 8, "asks in flight per connection")
	fs.IntVar(&s.ws.SendBuffer, "send-buffer", 1024, "messages queued per connection before a slow client is disconnected")
	fs.DurationVar(&s.ws.WriteWait, "write-wait", 10*time.Second, "longest write to a client")
	fs.DurationVar(&s.ws.PongWait, "pong-wait", 60*time.Second, "longest silence from a client; pings every 9/10 of it")
	fs.DurationVar(&s.svc.AnswerTimeout, "answer-timeout", 60*time.Second, "longest wait for the next answer event of a request")
	fs.DurationVar(&s.svc.PublishTimeout, "publish-timeout", 10*time.Second, "longest wait to publish a question")
	s.topicFlags.Register(fs)
	fs.DurationVar(&s.shutdownDrain, "shutdown-drain", 10*time.Second, "how long shutdown waits for HTTP requests")
	cfg, err := daemon.ParseConfig(fs, args, getenv, daemon.NeedKafka|daemon.NeedAPIKeys)
	if err != nil {
		return err
	}
	if err := s.validate(); err != nil {
		return err
	}
	s.ws.MaxMessageBytes = s.maxMessageSize
	for _, o := range strings.Split(s.origins, ",") {
		if o = strings.TrimSpace(o); o != "" {
			s.ws.AllowedOrigins = append(s.ws.AllowedOrigins, o)
		}
	}

	logger := daemon.NewLogger(stderr, cfg.LogLevel, "edge")
	reg := daemon.NewRegistry()
	topics := events.NewTopics(cfg.TopicPrefix)
	specs := s.topicFlags.Specs([]string{topics.QueriesReceived, topics.QueriesRejected, topics.AnswersModerated})
	if err := s.topicFlags.Provision(ctx, logger, cfg.KafkaBrokers, specs...); err != nil {
		return err
	}

	kmetrics, err := kafkatransport.NewMetrics(reg)
	if err != nil {
		return fmt.Errorf("kafka metrics: %w", err)
	}
	pub := kafkatransport.NewPublisher(cfg.KafkaBrokers,
		kafkatransport.PublisherSource(edge.EventSource),
		kafkatransport.PublisherMetrics(kmetrics))
	defer daemon.CloseOrLog(logger, "close publisher", pub.Close)
	metrics, err := edge.NewMetrics(reg)
	if err != nil {
		return fmt.Errorf("metrics: %w", err)
	}

	s.svc.QueriesTopic = topics.QueriesReceived
	s.svc.Observer = metrics
	var svc edge.Service
	svc = edge.NewService(pub, s.svc)
	svc = edge.LoggingMiddleware(logger)(svc)
	svc = edge.InstrumentingMiddleware(metrics)(svc)
	endpoints := edge.MakeEndpoints(svc)

	answersGroup, rejectedGroup := edge.Groups(s.replicaID)
	answers := edge.NewReplySubscriber(cfg.KafkaBrokers, answersGroup, topics.AnswersModerated, pub, endpoints, logger,
		kafkatransport.SubscriberMetrics(kmetrics))
	rejected := edge.NewReplySubscriber(cfg.KafkaBrokers, rejectedGroup, topics.QueriesRejected, pub, endpoints, logger,
		kafkatransport.SubscriberMetrics(kmetrics))

	s.ws.Keys = cfg.APIKeys
	s.ws.Logger = logger
	s.ws.Metrics = metrics
	ws := edge.NewWSHandler(endpoints, s.ws)
	handler := daemon.NewHTTPHandler(edge.NewHTTPHandler(ws), reg,
		daemon.KafkaCheck(cfg.KafkaBrokers, topics.QueriesReceived, topics.QueriesRejected, topics.AnswersModerated),
		daemon.Check{Name: "consumers", Run: func(ctx context.Context) error {
			return edge.CheckGroups(ctx, cfg.KafkaBrokers, answersGroup, rejectedGroup)
		}})
	srv := daemon.NewHTTPServer(cfg.HTTPAddr, handler)
	// Shutdown does not close hijacked (WebSocket) connections.
	srv.RegisterOnShutdown(ws.Close)
	var g daemon.Group
	g.AddHTTP(srv, nil, s.shutdownDrain)
	g.Add("answers-moderated", answers.Run)
	g.Add("queries-rejected", rejected.Run)
	logger.Info("edge starting", "http_addr", cfg.HTTPAddr, "kafka_brokers", cfg.KafkaBrokers,
		"topic_prefix", topics.Prefix, "replica_id", s.replicaID, "groups", []string{answersGroup, rejectedGroup})
	return g.Run(ctx, logger)
}
