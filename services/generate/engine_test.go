package generate

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/tributary-rag/tributary/pkg/events"
	"github.com/tributary-rag/tributary/pkg/llm"
)

// startEngine loads stories260K and runs its engine until the test ends.
func startEngine(t *testing.T, opts ...llm.EngineOption) (*llm.Model, *llm.Engine) {
	t.Helper()
	m, err := llm.Load(modelPath)
	if err != nil {
		t.Fatalf("load %s: %v", modelPath, err)
	}
	e := llm.NewEngine(m, opts...)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		_ = e.Run(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		wg.Wait()
		_ = m.Close()
	})
	return m, e
}

func TestEngineBackend(t *testing.T) {
	m, e := startEngine(t, llm.WithContextSize(1024))
	g := NewEngine(m, e, 0)
	if g.Mode() != ModeEngine {
		t.Errorf("Mode = %q", g.Mode())
	}
	req := Request{Prompt: storyPrompt(), MaxTokens: 20, Temperature: 0.8, Seed: 42}
	text, pieces, gen := collect(t, g, req)
	if text == "" || len(pieces) == 0 {
		t.Fatalf("no text streamed")
	}
	if gen.CompletionTokens != 20 || gen.FinishReason != FinishLength || gen.PromptTokens < 50 || gen.Model == "" {
		t.Errorf("generation = %+v, want 20 tokens, finish length, the prompt's tokens, a model name", gen)
	}
	// The seed makes sampling reproducible: a redelivered query gets the
	// same answer.
	if again, _, _ := collect(t, g, req); again != text {
		t.Errorf("same seed, different answers: %q vs %q", text, again)
	}

	ctx, cancel := context.WithCancel(context.Background())
	n := 0
	gen, err := g.Generate(ctx, Request{Prompt: storyPrompt(), MaxTokens: 400}, func(string) error {
		if n++; n == 2 {
			cancel()
		}
		return nil
	})
	if !errors.Is(err, context.Canceled) || gen.FinishReason != FinishCancelled {
		t.Errorf("cancelled: %+v, %v", gen, err)
	}
}

func TestEngineBackendFitsContext(t *testing.T) {
	m, e := startEngine(t, llm.WithContextSize(768))
	g := NewEngine(m, e, 0)
	long := strings.Repeat("Lily played in the park with a red ball. ", 12)
	p := BuildPrompt("Who is Lily?", []events.RetrievedChunk{chunk(0, "a", long, 3), chunk(1, "b", long, 2), chunk(2, "c", long, 1)}, PromptOptions{})
	full := len(g.encode(p))
	if full <= 768 {
		t.Fatalf("prompt of %d tokens fits 768 already; make the sources longer", full)
	}
	_, _, gen := collect(t, g, Request{Prompt: p, MaxTokens: 16})
	if gen.PromptTokens+16 > 768 || gen.CompletionTokens == 0 {
		t.Errorf("generation = %+v, want the prompt cut to fit 768 positions", gen)
	}
	huge := BuildPrompt(strings.Repeat("why ", 1200), nil, PromptOptions{})
	if _, err := g.Generate(context.Background(), Request{Prompt: huge, MaxTokens: 16}, func(string) error { return nil }); err == nil {
		t.Errorf("a question longer than the context: no error")
	}
}
