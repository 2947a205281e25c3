package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/tributary-rag/tributary/pkg/llm"
)

// llama2cSteps is llama2.c's default run length in positions, BOS and
// prompt included; --max-tokens defaults to what fills it.
const llama2cSteps = 200

// runLLM generates text locally: it prints the prompt, then streams the
// continuation, following llama2.c's conventions (a space is prepended to
// the prompt as SentencePiece's dummy prefix; BOS starts the sequence).
func runLLM(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("llm", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		model       = fs.String("model", "", "path of a GGUF model (required)")
		prompt      = fs.String("prompt", "", "text to continue (default: start from BOS)")
		maxTokens   = fs.Int("max-tokens", 0, "tokens to generate (default: fill llama2.c's 200 positions, prompt included)")
		temperature = fs.Float64("temperature", 0, "sampling temperature; 0 is greedy")
		topP        = fs.Float64("top-p", 0, "nucleus sampling threshold (0: off)")
		topK        = fs.Int("top-k", 0, "keep only the K most likely tokens (0: off)")
		seed        = fs.Uint64("seed", 0, "seed of the sampler's random numbers")
		threads     = fs.Int("threads", 0, "CPU threads (default: all)")
		stats       = fs.Bool("stats", false, "print timing to stderr")
	)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return errUsage
	}
	if *model == "" || fs.NArg() > 0 {
		fmt.Fprintln(stderr, "usage: tributary llm --model PATH [--prompt TEXT] [--max-tokens N] [--temperature T] [--seed S]")
		return errUsage
	}
	if *temperature < 0 || *maxTokens < 0 || *topP < 0 || *topP > 1 || *topK < 0 {
		return fmt.Errorf("llm: --temperature, --max-tokens, --top-k must be ≥ 0 and --top-p in [0,1]")
	}
	m, err := llm.Load(*model, llm.WithThreads(*threads))
	if err != nil {
		return err
	}
	defer m.Close()
	tok := m.Tokenizer()
	// Encode adds SentencePiece's dummy space prefix for llama vocabularies,
	// which is what llama2.c does by hand.
	ids := tok.Encode(*prompt, true)
	if len(ids) == 0 {
		return fmt.Errorf("llm: the model's vocabulary has no BOS token; give a --prompt")
	}
	n := *maxTokens
	if n == 0 {
		n = max(1, llama2cSteps-(len(ids)-1))
	}
	eng := llm.NewEngine(m, llm.WithMaxBatch(1), llm.WithContextSize(min(m.Config().ContextLength, len(ids)+n+1)))
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	done := make(chan error, 1)
	go func() { done <- eng.Run(runCtx) }()

	if _, err := io.WriteString(stdout, *prompt); err != nil {
		return err
	}
	res, genErr := eng.Generate(ctx, llm.Request{
		Prompt:    ids,
		MaxTokens: n,
		Sampling: llm.Sampling{
			Temperature: float32(*temperature), TopP: float32(*topP), TopK: *topK, Seed: *seed,
		},
	}, func(t llm.Token) error {
		_, err := io.WriteString(stdout, t.Text)
		return err
	})
	stop()
	<-done
	if genErr != nil {
		return fmt.Errorf("llm: %w", genErr)
	}
	if _, err := io.WriteString(stdout, "\n"); err != nil {
		return err
	}
	if *stats {
		gen := res.Duration - res.TimeToFirstToken
		tps := 0.0
		if res.CompletionTokens > 1 && gen > 0 {
			tps = float64(res.CompletionTokens-1) / gen.Seconds()
		}
		fmt.Fprintf(stderr, "prompt %d tokens, generated %d (%s), first token after %s, %.1f tokens/s\n",
			res.PromptTokens, res.CompletionTokens, res.FinishReason, res.TimeToFirstToken.Round(time.Microsecond), tps)
	}
	return nil
}
