package generate

import (
	"context"
	"errors"
	"fmt"

	"github.com/tributary-rag/tributary/pkg/llm"
	"github.com/tributary-rag/tributary/pkg/tokenizer"
)

// LLMEngine is the part of *llm.Engine the Engine backend uses.
type LLMEngine interface {
	Generate(ctx context.Context, req llm.Request, onToken func(llm.Token) error) (llm.Result, error)
	ContextSize() int
}

// Engine is the Generator that runs Tributary's native engine in process
// on a GGUF model. The caller runs the engine's Run loop (cmd/generate adds
// it to its run group). Engine is safe for concurrent use: the engine
// batches concurrent requests.
type Engine struct {
	engine    LLMEngine
	tok       *tokenizer.Tokenizer
	tmpl      tokenizer.Template
	model     string
	maxTokens int
}

// NewEngine returns the backend for a loaded model and its engine; the
// chat template comes from the GGUF metadata (pkg/tokenizer). defaultMax
// bounds answers whose request names no limit (≤ 0: 256).
func NewEngine(m *llm.Model, e LLMEngine, defaultMax int) *Engine {
	tok := m.Tokenizer()
	if defaultMax <= 0 {
		defaultMax = 256
	}
	return &Engine{
		engine:    e,
		tok:       tok,
		tmpl:      tok.ChatTemplate(m.ChatTemplate(), m.Config().Arch),
		model:     m.Name(),
		maxTokens: defaultMax,
	}
}

// Mode implements Generator.
func (*Engine) Mode() string { return ModeEngine }

// Generate implements Generator. When the prompt and the answer's token
// budget do not fit the context, the last sources are left out until they
// do; a question that does not fit alone is an error.
func (g *Engine) Generate(ctx context.Context, req Request, onToken func(string) error) (Generation, error) {
	maxNew := req.MaxTokens
	if maxNew <= 0 {
		maxNew = g.maxTokens
	}
	ctxSize := g.engine.ContextSize()
	maxNew = min(maxNew, ctxSize/2)
	p := req.Prompt
	ids := g.encode(p)
	for len(ids)+maxNew > ctxSize && len(p.Sources) > 0 {
		p = p.WithSources(len(p.Sources) - 1)
		ids = g.encode(p)
	}
	if len(ids)+maxNew > ctxSize {
		return Generation{FinishReason: FinishError, Model: g.model},
			fmt.Errorf("prompt of %d tokens and %d answer tokens do not fit the context of %d", len(ids), maxNew, ctxSize)
	}
	res, err := g.engine.Generate(ctx, llm.Request{
		Prompt:    ids,
		MaxTokens: maxNew,
		Sampling:  llm.Sampling{Temperature: float32(req.Temperature), Seed: req.Seed},
	}, func(t llm.Token) error {
		if t.Text == "" {
			return nil
		}
		return onToken(t.Text)
	})
	gen := Generation{
		FinishReason:     res.FinishReason,
		PromptTokens:     res.PromptTokens,
		CompletionTokens: res.CompletionTokens,
		Model:            g.model,
	}
	if err != nil {
		if errors.Is(err, llm.ErrQueueFull) || errors.Is(err, llm.ErrClosed) {
			err = fmt.Errorf("%w: %w", ErrBackendUnavailable, err)
		}
		if gen.FinishReason != FinishCancelled {
			gen.FinishReason = FinishError
		}
		return gen, fmt.Errorf("engine: %w", err)
	}
	return gen, nil
}

func (g *Engine) encode(p Prompt) []int32 {
	msgs := make([]tokenizer.Message, len(p.Messages))
	for i, m := range p.Messages {
		msgs[i] = tokenizer.Message{Role: m.Role, Content: m.Content}
	}
	return g.tok.EncodeChat(g.tmpl, msgs, true)
}
