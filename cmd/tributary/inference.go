package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/tributary-rag/tributary/pkg/encoder"
	"github.com/tributary-rag/tributary/pkg/inference"
	"github.com/tributary-rag/tributary/pkg/llm"
	"github.com/tributary-rag/tributary/pkg/tokenizer"
)

// inferenceConfig is the parsed and validated configuration of
// `tributary inference`.
type inferenceConfig struct {
	model            string
	listen           string
	name             string
	maxBatch         int
	maxQueue         int
	contextSize      int
	threads          int
	maxTokens        int
	defaultMaxTokens int
	maxBody          int64
	shutdownTimeout  time.Duration
	logLevel         slog.Level
	apiKeys          []string
	embedModel       string
	embedName        string
}

func parseInferenceFlags(args []string, stderr io.Writer) (inferenceConfig, error) {
	var c inferenceConfig
	fs := flag.NewFlagSet("inference", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: tributary inference --model PATH [--embed-model PATH] [--listen ADDR] [flags]\n\nOpenAI-compatible inference server on a GGUF model, an encoder (/v1/embeddings), or both.\n\nflags:")
		fs.PrintDefaults()
	}
	fs.StringVar(&c.model, "model", "", "GGUF model file for /v1/completions and /v1/chat/completions (required unless --embed-model)")
	fs.StringVar(&c.embedModel, "embed-model", "", "sentence-transformers directory or BERT .gguf file: serve POST /v1/embeddings with it")
	fs.StringVar(&c.embedName, "embed-model-name", "", "model id of the encoder in /v1/models and responses (default: the directory or file name without .gguf)")
	// Its own variable, not TRIBUTARY_HTTP_ADDR: a service's listen
	// setting exported in the same shell must not move the model server.
	fs.StringVar(&c.listen, "listen", envOr("TRIBUTARY_INFERENCE_ADDR", "127.0.0.1:8080"), "address to serve HTTP on (env TRIBUTARY_INFERENCE_ADDR)")
	apiKeys := fs.String("api-key", os.Getenv("TRIBUTARY_INFERENCE_API_KEY"), "comma-separated Bearer keys every /v1/ request must carry, as vLLM's --api-key (env TRIBUTARY_INFERENCE_API_KEY, which generate sends too; empty: none)")
	fs.StringVar(&c.name, "model-name", "", "model id in /v1/models and responses (default: the file name without .gguf)")
	fs.IntVar(&c.maxBatch, "max-batch", 8, "sequences that share one forward step (continuous batching)")
	fs.IntVar(&c.maxQueue, "max-queue", 64, "requests that may wait for a batch slot; more get 429")
	fs.IntVar(&c.contextSize, "context", 0, "positions per sequence, prompt included (0: the model's trained context, at most 4096)")
	fs.IntVar(&c.threads, "threads", 0, "CPU threads for the forward pass (0: all cores)")
	fs.IntVar(&c.maxTokens, "max-tokens-limit", 0, "largest max_tokens a request may ask for (0: the context size)")
	fs.IntVar(&c.defaultMaxTokens, "default-max-tokens", 256, "max_tokens of requests that leave it out")
	fs.Int64Var(&c.maxBody, "max-body-bytes", 4<<20, "largest request body; larger ones get 413")
	fs.DurationVar(&c.shutdownTimeout, "shutdown-timeout", 30*time.Second, "how long a shutdown waits for requests in flight")
	logLevel := fs.String("log-level", envOr("TRIBUTARY_LOG_LEVEL", "info"), "debug, info, warn or error (env TRIBUTARY_LOG_LEVEL)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return c, err
		}
		return c, errUsage
	}
	var problems []string
	if c.model == "" && c.embedModel == "" {
		problems = append(problems, "--model (or --embed-model) is required")
	}
	if fs.NArg() > 0 {
		problems = append(problems, fmt.Sprintf("unexpected arguments %q", fs.Args()))
	}
	if c.maxBatch < 1 {
		problems = append(problems, "--max-batch must be at least 1")
	}
	if c.maxQueue < 0 {
		problems = append(problems, "--max-queue must not be negative")
	}
	if c.contextSize < 0 || c.threads < 0 || c.maxTokens < 0 {
		problems = append(problems, "--context, --threads and --max-tokens-limit must not be negative")
	}
	if c.defaultMaxTokens < 1 {
		problems = append(problems, "--default-max-tokens must be at least 1")
	}
	if c.maxBody < 1 {
		problems = append(problems, "--max-body-bytes must be at least 1")
	}
	if c.shutdownTimeout < 0 {
		problems = append(problems, "--shutdown-timeout must not be negative")
	}
	switch *logLevel {
	case "debug", "info", "warn", "error":
		_ = c.logLevel.UnmarshalText([]byte(*logLevel)) // cannot fail on these four
	default:
		problems = append(problems, fmt.Sprintf("--log-level %q is not debug, info, warn or error", *logLevel))
	}
	c.apiKeys = splitKeys(*apiKeys)
	if host, _, err := net.SplitHostPort(c.listen); err == nil && len(c.apiKeys) == 0 && !isLoopback(host) {
		problems = append(problems, fmt.Sprintf("--listen %s is reachable from other machines: set --api-key (or listen on loopback)", c.listen))
	}
	if len(problems) > 0 {
		fmt.Fprintln(stderr, "tributary inference: "+strings.Join(problems, "; "))
		return c, errUsage
	}
	if c.name == "" && c.model != "" {
		c.name = strings.TrimSuffix(filepath.Base(c.model), ".gguf")
	}
	if c.embedName == "" && c.embedModel != "" {
		c.embedName = strings.TrimSuffix(filepath.Base(filepath.Clean(c.embedModel)), ".gguf")
	}
	return c, nil
}

// isLoopback reports whether a listen host is reachable only from this
// machine.
func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func envOr(key, def string) string {
	if v, ok := os.LookupEnv(key); ok && v != "" {
		return v
	}
	return def
}

// runInference serves the OpenAI-compatible API until ctx ends, then stops
// accepting connections, lets requests in flight finish (up to
// --shutdown-timeout), stops the engine and closes the model.
func runInference(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg, err := parseInferenceFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	if err != nil {
		return err
	}
	logger := slog.New(slog.NewJSONHandler(stderr, &slog.HandlerOptions{Level: cfg.logLevel})).With("component", "inference")

	opts := []inference.Option{
		inference.WithMaxBodyBytes(cfg.maxBody),
		inference.WithLogger(logger),
		inference.WithAPIKeys(cfg.apiKeys...),
	}
	// engine stays nil (an untyped nil for inference.New) without --model.
	var engine inference.Engine
	var llmEngine *llm.Engine
	var tok *tokenizer.Tokenizer
	served := []any{"api_keys", len(cfg.apiKeys), "max_queue", cfg.maxQueue}
	if cfg.model != "" {
		var loadOpts []llm.Option
		if cfg.threads > 0 {
			loadOpts = append(loadOpts, llm.WithThreads(cfg.threads))
		}
		m, err := llm.Load(cfg.model, loadOpts...)
		if err != nil {
			return fmt.Errorf("load model: %w", err)
		}
		defer func() {
			if cerr := m.Close(); cerr != nil {
				logger.Error("close model", "err", cerr)
			}
		}()
		engineOpts := []llm.EngineOption{llm.WithMaxBatch(cfg.maxBatch), llm.WithMaxQueue(cfg.maxQueue)}
		if cfg.contextSize > 0 {
			engineOpts = append(engineOpts, llm.WithContextSize(cfg.contextSize))
		}
		llmEngine = llm.NewEngine(m, engineOpts...)
		engine = llmEngine
		maxTokens := cfg.maxTokens
		if maxTokens == 0 {
			maxTokens = llmEngine.ContextSize()
		}
		tok = m.Tokenizer()
		tmpl := tok.ChatTemplate(m.ChatTemplate(), m.Config().Arch)
		opts = append(opts, inference.WithModelName(cfg.name), inference.WithChatTemplate(tmpl),
			inference.WithMaxTokens(maxTokens), inference.WithDefaultMaxTokens(cfg.defaultMaxTokens))
		served = append(served, "model", cfg.name, "arch", m.Config().Arch, "chat_format", string(tmpl.Format),
			"context", llmEngine.ContextSize(), "max_batch", cfg.maxBatch)
	}
	if cfg.embedModel != "" {
		enc, err := encoder.Load(cfg.embedModel, encoder.Options{Threads: cfg.threads, Normalize: true})
		if err != nil {
			return fmt.Errorf("load embed model: %w", err)
		}
		defer enc.Close()
		opts = append(opts, inference.WithEmbedder(enc, cfg.embedName, cfg.maxQueue))
		served = append(served, "embed_model", cfg.embedName, "embed_dim", enc.Dim(), "embed_max_length", enc.MaxLength())
	}
	srv, err := inference.New(engine, tok, opts...)
	if err != nil {
		return err
	}

	ln, err := net.Listen("tcp", cfg.listen)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	httpSrv := &http.Server{
		Handler:           srv.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		// No WriteTimeout: a streamed generation may run for minutes.
	}
	logger.Info("serving", append([]any{"addr", ln.Addr().String()}, served...)...)

	// The engine outlives ctx so that requests in flight can finish during
	// the graceful shutdown. Without one, engineDone never fires.
	engineCtx, stopEngine := context.WithCancel(context.WithoutCancel(ctx))
	defer stopEngine()
	engineDone := make(chan error, 1)
	if llmEngine != nil {
		go func() { engineDone <- llmEngine.Run(engineCtx) }()
	}
	serveDone := make(chan error, 1)
	go func() { serveDone <- httpSrv.Serve(ln) }()

	var runErr error
	select {
	case <-ctx.Done():
		logger.Info("shutting down")
	case err := <-serveDone:
		serveDone <- err
		runErr = fmt.Errorf("serve http: %w", err)
	case err := <-engineDone:
		engineDone <- err
		runErr = fmt.Errorf("engine stopped: %w", err)
	}
	shCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cfg.shutdownTimeout)
	if err := httpSrv.Shutdown(shCtx); err != nil {
		logger.Warn("requests still in flight at the shutdown deadline", "err", err)
		_ = httpSrv.Close()
	}
	cancel()
	if err := <-serveDone; err != nil && !errors.Is(err, http.ErrServerClosed) && runErr == nil {
		runErr = fmt.Errorf("serve http: %w", err)
	}
	stopEngine()
	if llmEngine != nil {
		<-engineDone
	}
	return runErr
}
