package generate

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/tributary-rag/tributary/pkg/llm"
)

// Backend names accepted by BackendConfig.Backend.
const (
	BackendAuto       = "auto"
	BackendOpenAI     = ModeOpenAI
	BackendEngine     = ModeEngine
	BackendExtractive = ModeExtractive
)

// BackendConfig chooses and configures the answering backend.
type BackendConfig struct {
	// Backend is auto (the default), openai, engine or extractive. Auto
	// takes openai when InferenceURL is set, else engine when ModelPath is
	// set, else extractive.
	Backend string
	// InferenceURL, InferenceModel, InferenceAPIKey and InferenceTimeout
	// configure the openai backend (see OpenAIConfig; the timeout is the
	// header and idle timeout).
	InferenceURL     string
	InferenceModel   string
	InferenceAPIKey  string
	InferenceTimeout time.Duration
	// ModelPath is the GGUF file of the engine backend.
	ModelPath string
	// Threads, MaxBatch and ContextSize tune the native engine (0: its
	// defaults).
	Threads, MaxBatch, ContextSize int
	// MaxTokens is the engine's default answer length (0: 256).
	MaxTokens int
}

// Resolve returns the backend name auto stands for, or an error for an
// unknown or incomplete choice.
func (c BackendConfig) Resolve() (string, error) {
	b := strings.ToLower(strings.TrimSpace(c.Backend))
	switch b {
	case "", BackendAuto:
		switch {
		case c.InferenceURL != "":
			return BackendOpenAI, nil
		case c.ModelPath != "":
			return BackendEngine, nil
		}
		return BackendExtractive, nil
	case BackendOpenAI:
		if c.InferenceURL == "" {
			return "", fmt.Errorf("backend openai needs an inference url")
		}
	case BackendEngine:
		if c.ModelPath == "" {
			return "", fmt.Errorf("backend engine needs a model path")
		}
	case BackendExtractive:
	default:
		return "", fmt.Errorf("unknown backend %q: want auto, openai, engine or extractive", c.Backend)
	}
	return b, nil
}

// Backend is an opened Generator with what its owner must run and close.
type Backend struct {
	Generator
	// Run, when not nil, must run (in the service's run group) for the
	// Generator to make progress: the native engine's scheduler loop.
	Run func(ctx context.Context) error
	// Close releases the backend's resources after Run has returned.
	Close func() error
	// Description is a short human description for the start log line.
	Description string
}

// Around returns a run function for a run group that runs consume, a
// consumer of the Generator such as a subscriber's Run, with the backend's
// Run beside it. The engine outlives consume, so answers in flight during a
// graceful drain can finish, and stops once consume returns. The function
// returns consume's error, or else the engine's (a cancelled engine is not
// an error). Without a Run it is consume itself.
func (b *Backend) Around(consume func(ctx context.Context) error) func(ctx context.Context) error {
	return func(ctx context.Context) error {
		if b.Run == nil {
			return consume(ctx)
		}
		ectx, stopEngine := context.WithCancel(context.WithoutCancel(ctx))
		engineDone := make(chan error, 1)
		go func() { engineDone <- b.Run(ectx) }()
		err := consume(ctx)
		stopEngine()
		if eerr := <-engineDone; eerr != nil && !errors.Is(eerr, context.Canceled) && err == nil {
			err = fmt.Errorf("engine: %w", eerr)
		}
		return err
	}
}

// OpenBackend opens the backend cfg chooses: a model is loaded here, a
// server is only contacted when the first question arrives.
func OpenBackend(cfg BackendConfig) (*Backend, error) {
	name, err := cfg.Resolve()
	if err != nil {
		return nil, err
	}
	nop := func() error { return nil }
	switch name {
	case BackendOpenAI:
		g, err := NewOpenAI(OpenAIConfig{
			BaseURL: cfg.InferenceURL, Model: cfg.InferenceModel, APIKey: cfg.InferenceAPIKey,
			HeaderTimeout: cfg.InferenceTimeout, IdleTimeout: cfg.InferenceTimeout,
		})
		if err != nil {
			return nil, err
		}
		return &Backend{Generator: g, Close: nop, Description: "openai " + g.shown}, nil
	case BackendEngine:
		var lo []llm.Option
		if cfg.Threads > 0 {
			lo = append(lo, llm.WithThreads(cfg.Threads))
		}
		m, err := llm.Load(cfg.ModelPath, lo...)
		if err != nil {
			return nil, err
		}
		var eo []llm.EngineOption
		if cfg.MaxBatch > 0 {
			eo = append(eo, llm.WithMaxBatch(cfg.MaxBatch))
		}
		if cfg.ContextSize > 0 {
			eo = append(eo, llm.WithContextSize(cfg.ContextSize))
		}
		e := llm.NewEngine(m, eo...)
		g := NewEngine(m, e, cfg.MaxTokens)
		return &Backend{Generator: g, Run: e.Run, Close: m.Close,
			Description: fmt.Sprintf("engine %s (%s, %s, context %d)", cfg.ModelPath, m.Name(), g.tmpl.Format, e.ContextSize())}, nil
	}
	return &Backend{Generator: Extractive{}, Close: nop, Description: "extractive (no model)"}, nil
}
