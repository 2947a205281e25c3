// Command generate runs Tributary's answer generation service: it consumes
// tributary.queries.retrieved.v1 and streams cited answers to
// tributary.answers.generated.v1, generating with an OpenAI-compatible
// server, the native engine on a GGUF file, or extractively without a
// model.
//
// Configuration comes from TRIBUTARY_* environment variables, each
// overridable by the flag of the same name (see docs/generate.md).
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
	"github.com/tributary-rag/tributary/services/generate"
)

func main() { os.Exit(daemon.Main("generate", run)) }

// settings are the generate service's own settings, next to daemon.Config.
type settings struct {
	backend    generate.BackendConfig
	svc        generate.Config
	fallback   bool
	lanes      int
	topicFlags daemon.TopicFlags
}

func (s settings) validate() error {
	var p daemon.Problems
	if _, err := s.backend.Resolve(); err != nil {
		p.Add("generate-backend", err)
	}
	if s.backend.InferenceURL != "" {
		if _, err := generate.NewOpenAI(generate.OpenAIConfig{BaseURL: s.backend.InferenceURL}); err != nil {
			p.Add("inference-url", err)
		}
	}
	if s.backend.InferenceTimeout <= 0 {
		p.Addf("inference-timeout", "must be positive")
	}
	if s.svc.MaxTokens <= 0 {
		p.Addf("max-tokens", "must be positive")
	}
	if s.svc.Temperature < 0 || s.svc.Temperature > 2 {
		p.Addf("temperature", "must be between 0 and 2")
	}
	if s.svc.Timeout <= 0 {
		p.Addf("generate-timeout", "must be positive")
	}
	if s.svc.Prompt.MaxSources <= 0 {
		p.Addf("max-sources", "must be positive")
	}
	if s.svc.Prompt.MaxSourceRunes <= 0 {
		p.Addf("max-source-runes", "must be positive")
	}
	if s.svc.Prompt.MaxContextRunes <= 0 {
		p.Addf("max-context-runes", "must be positive")
	}
	if s.backend.Threads < 0 || s.backend.MaxBatch < 0 || s.backend.ContextSize < 0 {
		p.Addf("threads", "threads, max-batch and context must not be negative")
	}
	if s.lanes < 1 || s.lanes > 256 {
		p.Addf("answers-per-partition", "must be between 1 and 256")
	}
	s.topicFlags.Check(&p)
	return p.Err()
}

func run(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer) error {
	fs := daemon.NewFlagSet("generate", stderr)
	var s settings
	var minScore float64
	fs.StringVar(&s.backend.Backend, "generate-backend", generate.BackendAuto, "auto, openai, engine or extractive (auto: openai with an inference url, engine with a model, else extractive)")
	fs.StringVar(&s.backend.InferenceURL, "inference-url", "", "base URL of an OpenAI-compatible server (Tributary inference, vLLM, TGI, llama.cpp, Ollama)")
	fs.StringVar(&s.backend.InferenceModel, "inference-model", "", "model id sent to the server (empty: the first of its /v1/models)")
	fs.StringVar(&s.backend.InferenceAPIKey, "inference-api-key", "", "bearer token for the server, if it wants one")
	fs.DurationVar(&s.backend.InferenceTimeout, "inference-timeout", time.Minute, "longest wait for the server's response headers and between two stream events")
	fs.StringVar(&s.backend.ModelPath, "model", "", "GGUF file for the engine backend")
	fs.IntVar(&s.backend.Threads, "threads", 0, "engine: CPU threads (0: all cores)")
	fs.IntVar(&s.backend.MaxBatch, "max-batch", 0, "engine: sequences per forward step (0: 8)")
	fs.IntVar(&s.backend.ContextSize, "context", 0, "engine: positions per sequence (0: the model's, at most 4096)")
	fs.IntVar(&s.svc.MaxTokens, "max-tokens", 512, "longest answer, in tokens")
	fs.Float64Var(&s.svc.Temperature, "temperature", 0, "sampling temperature (0: greedy)")
	fs.DurationVar(&s.svc.Timeout, "generate-timeout", 2*time.Minute, "longest generation; the answer ends with finish_reason length")
	fs.Float64Var(&minScore, "min-score", 0, "chunks scoring at or below this are not relevant")
	fs.IntVar(&s.svc.Prompt.MaxSources, "max-sources", 8, "most numbered sources in a prompt")
	fs.IntVar(&s.svc.Prompt.MaxSourceRunes, "max-source-runes", 2000, "longest source text, in characters")
	fs.IntVar(&s.svc.Prompt.MaxContextRunes, "max-context-runes", 12000, "all source texts together, in characters")
	fs.BoolVar(&s.fallback, "fallback-extractive", true, "answer extractively when the model backend fails before its first token")
	fs.IntVar(&s.lanes, "answers-per-partition", kafkatransport.RequestLanes, "questions answered at once per partition this instance owns (bounds the load on the model backend)")
	s.topicFlags.Register(fs)
	cfg, err := daemon.ParseConfig(fs, args, getenv, daemon.NeedKafka)
	if err != nil {
		return err
	}
	s.svc.Prompt.MinScore = float32(minScore)
	s.backend.MaxTokens = s.svc.MaxTokens
	if err := s.validate(); err != nil {
		return err
	}

	logger := daemon.NewLogger(stderr, cfg.LogLevel, "generate")
	reg := daemon.NewRegistry()
	topics := events.NewTopics(cfg.TopicPrefix)
	specs := s.topicFlags.Specs([]string{topics.QueriesRetrieved, topics.AnswersGenerated})
	if err := s.topicFlags.Provision(ctx, logger, cfg.KafkaBrokers, specs...); err != nil {
		return err
	}

	backend, err := generate.OpenBackend(s.backend)
	if err != nil {
		return fmt.Errorf("open backend: %w", err)
	}
	defer daemon.CloseOrLog(logger, "close backend", backend.Close)
	if s.fallback && backend.Mode() != generate.ModeExtractive {
		s.svc.Fallback = generate.Extractive{}
	}

	kmetrics, err := kafkatransport.NewMetrics(reg)
	if err != nil {
		return fmt.Errorf("kafka metrics: %w", err)
	}
	pub := kafkatransport.NewPublisher(cfg.KafkaBrokers,
		kafkatransport.PublisherSource(generate.EventSource),
		kafkatransport.PublisherMetrics(kmetrics))
	defer daemon.CloseOrLog(logger, "close publisher", pub.Close)
	metrics, err := generate.NewMetrics(reg)
	if err != nil {
		return fmt.Errorf("metrics: %w", err)
	}

	var svc generate.Service
	svc = generate.NewService(backend.Generator, generate.NewKafkaEmitter(pub, topics.AnswersGenerated), s.svc)
	svc = generate.LoggingMiddleware(logger)(svc)
	svc = generate.InstrumentingMiddleware(metrics)(svc)
	endpoints := generate.MakeEndpoints(svc)

	sub := generate.NewAnswerSubscriber(cfg.KafkaBrokers, generate.KafkaGroup, topics.QueriesRetrieved, pub, endpoints,
		kafkatransport.SubscriberMetrics(kmetrics),
		kafkatransport.SubscriberLogger(logger),
		// Generations can take the whole generate timeout: let in-flight
		// answers finish on shutdown for a while before cutting them.
		kafkatransport.SubscriberDrainTimeout(30*time.Second),
		kafkatransport.SubscriberKeyConcurrency(s.lanes))

	handler := daemon.NewHTTPHandler(http.NotFoundHandler(), reg,
		daemon.KafkaCheck(cfg.KafkaBrokers, topics.QueriesRetrieved, topics.AnswersGenerated))
	var g daemon.Group
	g.AddHTTP(daemon.NewHTTPServer(cfg.HTTPAddr, handler), nil, 10*time.Second)
	g.Add("queries-retrieved", backend.Around(sub.Run))
	logger.Info("generate starting", "http_addr", cfg.HTTPAddr, "kafka_brokers", cfg.KafkaBrokers,
		"topic_prefix", topics.Prefix, "backend", backend.Description, "prompt_version", generate.PromptVersion,
		"fallback", s.svc.Fallback != nil)
	return g.Run(ctx, logger)
}
