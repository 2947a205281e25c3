package generate

import (
	"context"
	"flag"
	"fmt"
	"time"

	"github.com/tributary-rag/tributary/pkg/daemon"
	"github.com/tributary-rag/tributary/pkg/kafkatransport"
)

// Settings are the generate service's own settings, next to the shared
// daemon.Config. Its main and tributary dev both register them (Register),
// check them (Check) and wire the service with them (Wire).
type Settings struct {
	Backend BackendConfig
	Service Config
	// MinScore is the relevance floor (Service.Prompt.MinScore as the
	// float64 a flag holds).
	MinScore float64
	// Fallback answers extractively when the model backend fails before
	// its first token.
	Fallback bool
	// Lanes are the questions answered at once per owned partition.
	Lanes int
}

// DefaultSettings returns the defaults of every setting.
func DefaultSettings() Settings {
	return Settings{
		Backend: BackendConfig{Backend: BackendAuto, InferenceTimeout: time.Minute},
		Service: Config{
			MaxTokens: 512,
			Timeout:   2 * time.Minute,
			Prompt:    PromptOptions{MaxSources: 8, MaxSourceRunes: 2000, MaxContextRunes: 12000},
		},
		Fallback: true,
		Lanes:    kafkatransport.RequestLanes,
	}
}

// Register registers a flag for every setting on fs, with s's values as
// the defaults.
func (s *Settings) Register(fs *flag.FlagSet) {
	fs.StringVar(&s.Backend.Backend, "generate-backend", s.Backend.Backend, "auto, openai, engine or extractive (auto: openai with an inference url, engine with a model, else extractive)")
	fs.StringVar(&s.Backend.InferenceURL, "inference-url", s.Backend.InferenceURL, "base URL of an OpenAI-compatible server (Tributary inference, vLLM, TGI, llama.cpp, Ollama)")
	fs.StringVar(&s.Backend.InferenceModel, "inference-model", s.Backend.InferenceModel, "model id sent to the server (empty: the first of its /v1/models)")
	fs.StringVar(&s.Backend.InferenceAPIKey, "inference-api-key", s.Backend.InferenceAPIKey, "bearer token for the server, if it wants one")
	fs.DurationVar(&s.Backend.InferenceTimeout, "inference-timeout", s.Backend.InferenceTimeout, "longest wait for the server's response headers and between two stream events")
	fs.StringVar(&s.Backend.ModelPath, "model", s.Backend.ModelPath, "GGUF file for the engine backend")
	fs.IntVar(&s.Backend.Threads, "threads", s.Backend.Threads, "engine: CPU threads (0: all cores)")
	fs.IntVar(&s.Backend.MaxBatch, "max-batch", s.Backend.MaxBatch, "engine: sequences per forward step (0: 8)")
	fs.IntVar(&s.Backend.ContextSize, "context", s.Backend.ContextSize, "engine: positions per sequence (0: the model's, at most 4096)")
	fs.IntVar(&s.Service.MaxTokens, "max-tokens", s.Service.MaxTokens, "longest answer, in tokens")
	fs.Float64Var(&s.Service.Temperature, "temperature", s.Service.Temperature, "sampling temperature (0: greedy)")
	fs.DurationVar(&s.Service.Timeout, "generate-timeout", s.Service.Timeout, "longest generation; the answer ends with finish_reason length")
	fs.Float64Var(&s.MinScore, "min-score", s.MinScore, "chunks scoring at or below this are not relevant")
	fs.IntVar(&s.Service.Prompt.MaxSources, "max-sources", s.Service.Prompt.MaxSources, "most numbered sources in a prompt")
	fs.IntVar(&s.Service.Prompt.MaxSourceRunes, "max-source-runes", s.Service.Prompt.MaxSourceRunes, "longest source text, in characters")
	fs.IntVar(&s.Service.Prompt.MaxContextRunes, "max-context-runes", s.Service.Prompt.MaxContextRunes, "all source texts together, in characters")
	fs.BoolVar(&s.Fallback, "fallback-extractive", s.Fallback, "answer extractively when the model backend fails before its first token")
	fs.IntVar(&s.Lanes, "answers-per-partition", s.Lanes, "questions answered at once per partition this instance owns (bounds the load on the model backend)")
}

// Check records in p each setting out of range.
func (s Settings) Check(p *daemon.Problems) {
	if _, err := s.Backend.Resolve(); err != nil {
		p.Add("generate-backend", err)
	}
	if s.Backend.InferenceURL != "" {
		if _, err := NewOpenAI(OpenAIConfig{BaseURL: s.Backend.InferenceURL}); err != nil {
			p.Add("inference-url", err)
		}
	}
	if s.Backend.InferenceTimeout <= 0 {
		p.Addf("inference-timeout", "must be positive")
	}
	if s.Service.MaxTokens <= 0 {
		p.Addf("max-tokens", "must be positive")
	}
	if s.Service.Temperature < 0 || s.Service.Temperature > 2 {
		p.Addf("temperature", "must be between 0 and 2")
	}
	if s.Service.Timeout <= 0 {
		p.Addf("generate-timeout", "must be positive")
	}
	if s.Service.Prompt.MaxSources <= 0 {
		p.Addf("max-sources", "must be positive")
	}
	if s.Service.Prompt.MaxSourceRunes <= 0 {
		p.Addf("max-source-runes", "must be positive")
	}
	if s.Service.Prompt.MaxContextRunes <= 0 {
		p.Addf("max-context-runes", "must be positive")
	}
	if s.Backend.Threads < 0 || s.Backend.MaxBatch < 0 || s.Backend.ContextSize < 0 {
		p.Addf("threads", "threads, max-batch and context must not be negative")
	}
	if s.Lanes < 1 || s.Lanes > 256 {
		p.Addf("answers-per-partition", "must be between 1 and 256")
	}
}

// Wire opens the generation backend and adds the service, its onion and
// its subscriber to w; it describes the backend opened as "backend".
func (s Settings) Wire(_ context.Context, w *daemon.Wiring, d daemon.Deps) error {
	s.Backend.MaxTokens = s.Service.MaxTokens
	s.Service.Prompt.MinScore = float32(s.MinScore)
	backend, err := OpenBackend(s.Backend)
	if err != nil {
		return fmt.Errorf("open backend: %w", err)
	}
	w.OnClose(backend.Close)
	if s.Fallback && backend.Mode() != ModeExtractive {
		s.Service.Fallback = Extractive{}
	}
	metrics, err := NewMetrics(d.Registry)
	if err != nil {
		return fmt.Errorf("generate metrics: %w", err)
	}
	pub := d.Publisher(w, EventSource)
	var svc Service
	svc = NewService(backend.Generator, NewKafkaEmitter(pub, d.Topics.AnswersGenerated), s.Service)
	svc = LoggingMiddleware(d.Logger)(svc)
	svc = InstrumentingMiddleware(metrics)(svc)

	sub := NewAnswerSubscriber(d.Brokers, KafkaGroup, d.Topics.QueriesRetrieved, pub, MakeEndpoints(svc), d.SubscriberOptions(
		// Generations can take the whole generate timeout: let in-flight
		// answers finish on shutdown for a while before cutting them.
		kafkatransport.SubscriberDrainTimeout(30*time.Second),
		kafkatransport.SubscriberKeyConcurrency(s.Lanes))...)
	w.Group.Add("queries-retrieved", backend.Around(sub.Run))
	w.Topics([]string{d.Topics.QueriesRetrieved}, d.Topics.AnswersGenerated)
	w.Describe("backend", backend.Description, "prompt_version", PromptVersion, "fallback", s.Service.Fallback != nil)
	return nil
}
