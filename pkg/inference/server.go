// Package inference is Tributary's OpenAI-compatible inference server: it
// serves POST /v1/completions and /v1/chat/completions (JSON, or server-sent
// events with "stream": true), GET /v1/models, /healthz, /readyz and
// Prometheus /metrics over the native engine in package llm. Clients written
// for OpenAI, vLLM, TGI, llama.cpp or Ollama's OpenAI API talk to it
// unchanged, and services/generate can point at any of those instead.
package inference

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	mrand "math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/tributary-rag/tributary/pkg/llm"
	"github.com/tributary-rag/tributary/pkg/tokenizer"
)

// Engine generates tokens; *llm.Engine implements it. Generate blocks until
// the request ends and must be safe for concurrent use; it returns
// llm.ErrQueueFull when no request can wait, and stops when ctx ends or
// onToken fails. Stats feeds the queue depth and batch size metrics.
type Engine interface {
	Generate(ctx context.Context, req llm.Request, onToken func(llm.Token) error) (llm.Result, error)
	Stats() llm.Stats
}

// Server is the HTTP API. Its handler is safe for concurrent use.
type Server struct {
	engine           Engine
	tok              *tokenizer.Tokenizer
	template         tokenizer.Template
	model            string
	maxTokens        int
	defaultMaxTokens int
	maxBody          int64
	logger           *slog.Logger
	registry         *prometheus.Registry
	metrics          *metrics
	created          int64
	handler          http.Handler
	apiKeys          [][32]byte
	// embedder serves /v1/embeddings (see WithEmbedder).
	embedder     Embedder
	embedModel   string
	embedSlots   chan struct{}
	embedMetrics *embedMetrics
}

// Option configures New.
type Option func(*Server)

// WithAPIKeys makes every /v1/ route require "Authorization: Bearer
// <key>" with one of keys, as vLLM's --api-key does (401 otherwise);
// health and metrics stay open. No keys: no authentication.
func WithAPIKeys(keys ...string) Option {
	return func(s *Server) {
		for _, k := range keys {
			if k != "" {
				s.apiKeys = append(s.apiKeys, sha256.Sum256([]byte(k)))
			}
		}
	}
}

// WithModelName sets the model id that /v1/models lists and responses carry
// (default "tributary").
func WithModelName(name string) Option { return func(s *Server) { s.model = name } }

// WithChatTemplate sets the chat format for /v1/chat/completions (default:
// the tokenizer's choice for an unknown template and architecture).
func WithChatTemplate(t tokenizer.Template) Option { return func(s *Server) { s.template = t } }

// WithMaxTokens sets the largest max_tokens a request may ask for (default
// 4096); the engine still ends a sequence when its context is full.
func WithMaxTokens(n int) Option { return func(s *Server) { s.maxTokens = n } }

// WithDefaultMaxTokens sets max_tokens for requests that leave it out
// (default 256, at most the WithMaxTokens limit).
func WithDefaultMaxTokens(n int) Option { return func(s *Server) { s.defaultMaxTokens = n } }

// WithMaxBodyBytes bounds request bodies; larger ones get 413 (default 4 MiB).
func WithMaxBodyBytes(n int64) Option { return func(s *Server) { s.maxBody = n } }

// WithLogger sets the logger (default, and when l is nil: discard).
func WithLogger(l *slog.Logger) Option { return func(s *Server) { s.logger = l } }

// WithRegistry registers the server's metrics in r and serves r on /metrics
// (default: a new registry of the server's own).
func WithRegistry(r *prometheus.Registry) Option { return func(s *Server) { s.registry = r } }

// New returns a server that generates with engine and tokenizes with tok.
// Both may be nil when WithEmbedder is given: an embeddings-only server,
// without the generation routes.
func New(engine Engine, tok *tokenizer.Tokenizer, opts ...Option) (*Server, error) {
	s := &Server{
		engine:           engine,
		tok:              tok,
		model:            "tributary",
		maxTokens:        4096,
		defaultMaxTokens: 256,
		maxBody:          4 << 20,
		created:          time.Now().Unix(),
	}
	if tok != nil {
		s.template = tok.ChatTemplate("", "")
	}
	for _, o := range opts {
		o(s)
	}
	if engine == nil || tok == nil {
		if s.embedder == nil {
			return nil, errors.New("inference server: needs an engine and its tokenizer, or an embedder")
		}
		s.engine = nil
	}
	if s.logger == nil {
		s.logger = slog.New(slog.DiscardHandler)
	}
	s.maxTokens = max(1, s.maxTokens)
	s.defaultMaxTokens = min(max(1, s.defaultMaxTokens), s.maxTokens)
	s.maxBody = max(1, s.maxBody)
	if s.registry == nil {
		s.registry = prometheus.NewRegistry()
	}
	m, err := newMetrics(s.registry, s.engine)
	if err != nil {
		return nil, err
	}
	s.metrics = m

	mux := http.NewServeMux()
	if s.engine != nil {
		mux.Handle("/v1/completions", s.route("completions", http.MethodPost, s.authenticated(s.handleCompletion(false))))
		mux.Handle("/v1/chat/completions", s.route("chat_completions", http.MethodPost, s.authenticated(s.handleCompletion(true))))
	}
	if s.embedder != nil {
		if s.embedMetrics, err = newEmbedMetrics(s.registry); err != nil {
			return nil, fmt.Errorf("register inference metrics: %w", err)
		}
		mux.Handle("/v1/embeddings", s.route("embeddings", http.MethodPost, s.authenticated(s.handleEmbeddings)))
	}
	mux.Handle("/v1/models", s.route("models", http.MethodGet, s.authenticated(s.handleModels)))
	mux.Handle("/v1/models/{id}", s.route("models", http.MethodGet, s.authenticated(s.handleModel)))
	mux.Handle("/healthz", s.route("healthz", http.MethodGet, handleOK))
	mux.Handle("/readyz", s.route("readyz", http.MethodGet, handleOK))
	mux.Handle("/metrics", s.route("metrics", http.MethodGet, promhttp.HandlerFor(s.registry, promhttp.HandlerOpts{}).ServeHTTP))
	mux.Handle("/", s.route("not_found", "", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, &apiError{Status: http.StatusNotFound, Type: "invalid_request_error", Message: "no route for " + r.Method + " " + r.URL.Path})
	}))
	s.handler = mux
	return s, nil
}

// authenticated lets a request through h when it carries one of the API
// keys. Keys are compared as SHA-256 digests in constant time, against
// every key, so timing tells nothing about which or how much matched.
func (s *Server) authenticated(h http.HandlerFunc) http.HandlerFunc {
	if len(s.apiKeys) == 0 {
		return h
	}
	return func(w http.ResponseWriter, r *http.Request) {
		token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		sum := sha256.Sum256([]byte(strings.TrimSpace(token)))
		match := 0
		for _, k := range s.apiKeys {
			match |= subtle.ConstantTimeCompare(sum[:], k[:])
		}
		if !ok || match != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="tributary inference"`)
			writeError(w, withCode(&apiError{Status: http.StatusUnauthorized, Type: "invalid_request_error", Message: "missing or invalid API key"}, "invalid_api_key"))
			return
		}
		h(w, r)
	}
}

// Handler returns the HTTP handler of every route.
func (s *Server) Handler() http.Handler { return s.handler }

// route wraps h with the method check and request metrics.
func (s *Server) route(name, method string, h http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		defer func() { s.metrics.requests.WithLabelValues(name, strconv.Itoa(rec.status)).Inc() }()
		if method != "" && r.Method != method && !(method == http.MethodGet && r.Method == http.MethodHead) {
			rec.Header().Set("Allow", method)
			writeError(rec, &apiError{Status: http.StatusMethodNotAllowed, Type: "invalid_request_error", Message: "method " + r.Method + " not allowed, use " + method})
			return
		}
		h(rec, r)
	})
}

func handleOK(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	_, _ = io.WriteString(w, `{"status":"ok"}`+"\n")
}

// models are the ids the server answers for: its generation model and its
// embedding model, when it has them.
func (s *Server) models() []modelInfo {
	var out []modelInfo
	if s.engine != nil {
		out = append(out, modelInfo{ID: s.model, Object: "model", Created: s.created, OwnedBy: "tributary"})
	}
	if s.embedder != nil {
		out = append(out, modelInfo{ID: s.embedModel, Object: "model", Created: s.created, OwnedBy: "tributary"})
	}
	return out
}

func (s *Server) handleModels(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, modelList{Object: "list", Data: s.models()})
}

func (s *Server) handleModel(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	for _, m := range s.models() {
		if m.ID == id {
			writeJSON(w, http.StatusOK, m)
			return
		}
	}
	writeError(w, withCode(&apiError{Status: http.StatusNotFound, Type: "invalid_request_error", Message: "model " + id + " does not exist"}, "model_not_found"))
}

// handleCompletion serves both generation routes.
func (s *Server) handleCompletion(chat bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		j, aerr := s.decodeJob(w, r, chat)
		if aerr != nil {
			writeError(w, aerr)
			return
		}
		s.metrics.inFlight.Inc()
		defer s.metrics.inFlight.Dec()
		if j.stream {
			s.serveStream(w, r, j)
		} else {
			s.serveJSON(w, r, j)
		}
	}
}

func (s *Server) decodeJob(w http.ResponseWriter, r *http.Request, chat bool) (job, *apiError) {
	var j job
	data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.maxBody))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return j, withCode(&apiError{Status: http.StatusRequestEntityTooLarge, Type: "invalid_request_error", Message: "request body is larger than " + strconv.FormatInt(s.maxBody, 10) + " bytes"}, "request_too_large")
		}
		return j, invalid("", "read request body: %v", err)
	}
	var body completionRequest
	if err := json.Unmarshal(data, &body); err != nil {
		return j, withCode(invalid("", "request body is not valid JSON for this route: %v", err), "invalid_json")
	}
	req, aerr := s.parseSampling(&body)
	if aerr != nil {
		return j, aerr
	}
	if chat {
		req.Prompt, aerr = s.parseMessages(body.Messages)
	} else {
		req.Prompt, aerr = s.parsePrompt(body.Prompt)
	}
	if aerr != nil {
		return j, aerr
	}
	if len(req.Prompt) == 0 {
		return j, invalid("prompt", "the prompt encodes to no tokens and the model has no BOS token")
	}
	j.chat, j.req, j.stream = chat, req, body.Stream
	j.includeUsage = body.StreamOptions != nil && body.StreamOptions.IncludeUsage
	return j, nil
}

func (s *Server) serveJSON(w http.ResponseWriter, r *http.Request, j job) {
	id, created := newID(j.chat), time.Now().Unix()
	var text strings.Builder
	res, err := s.engine.Generate(r.Context(), j.req, func(t llm.Token) error {
		text.WriteString(t.Text)
		return nil
	})
	s.observe(r, j, res, err, false)
	if err != nil {
		s.writeEngineError(w, r, err)
		return
	}
	reason := res.FinishReason
	u := &usage{PromptTokens: res.PromptTokens, CompletionTokens: res.CompletionTokens, TotalTokens: res.PromptTokens + res.CompletionTokens}
	if j.chat {
		writeJSON(w, http.StatusOK, chatResponse{
			ID: id, Object: "chat.completion", Created: created, Model: s.model, Usage: u,
			Choices: []chatChoice{{Message: &chatMessageOut{Role: "assistant", Content: text.String()}, FinishReason: &reason}},
		})
		return
	}
	writeJSON(w, http.StatusOK, completionResponse{
		ID: id, Object: "text_completion", Created: created, Model: s.model, Usage: u,
		Choices: []completionChoice{{Text: text.String(), FinishReason: &reason}},
	})
}

// serveStream answers with server-sent events. Headers go out with the
// first token, so a request the engine refuses (queue full, prompt too
// long) still gets its status code.
func (s *Server) serveStream(w http.ResponseWriter, r *http.Request, j job) {
	id, created := newID(j.chat), time.Now().Unix()
	rc := http.NewResponseController(w)
	flush := func() error {
		if err := rc.Flush(); err != nil && !errors.Is(err, http.ErrNotSupported) {
			return err
		}
		return nil
	}
	started := false
	send := func(v any) error {
		b, err := json.Marshal(v)
		if err != nil {
			return err
		}
		if _, err := w.Write(append(append([]byte("data: "), b...), '\n', '\n')); err != nil {
			return err
		}
		return flush()
	}
	chunk := func(text string, role string, reason *string) any {
		if j.chat {
			var d chatDelta
			d.Role, d.Content = role, text
			return chatResponse{ID: id, Object: "chat.completion.chunk", Created: created, Model: s.model,
				Choices: []chatChoice{{Delta: &d, FinishReason: reason}}}
		}
		return completionResponse{ID: id, Object: "text_completion", Created: created, Model: s.model,
			Choices: []completionChoice{{Text: text, FinishReason: reason}}}
	}
	begin := func() error {
		started = true
		h := w.Header()
		h.Set("Content-Type", "text/event-stream")
		h.Set("Cache-Control", "no-cache")
		h.Set("X-Accel-Buffering", "no")
		w.WriteHeader(http.StatusOK)
		if j.chat {
			return send(chunk("", "assistant", nil))
		}
		return flush()
	}
	clientGone := false // a write failed: the client disconnected
	res, err := s.engine.Generate(r.Context(), j.req, func(t llm.Token) error {
		if !started {
			if err := begin(); err != nil {
				clientGone = true
				return err
			}
		}
		if t.Text == "" {
			return nil
		}
		if err := send(chunk(t.Text, "", nil)); err != nil {
			clientGone = true
			return err
		}
		return nil
	})
	s.observe(r, j, res, err, clientGone)
	if err != nil {
		if !started {
			s.writeEngineError(w, r, err)
			return
		}
		if !clientGone && r.Context().Err() == nil {
			// Too late for a status code: report in the stream, as
			// OpenAI does.
			aerr := engineError(err)
			_ = send(map[string]*apiError{"error": aerr})
			s.logError(r, err)
		}
		return
	}
	if !started {
		if err := begin(); err != nil {
			return
		}
	}
	reason := res.FinishReason
	if err := send(chunk("", "", &reason)); err != nil {
		return
	}
	if j.includeUsage {
		u := &usage{PromptTokens: res.PromptTokens, CompletionTokens: res.CompletionTokens, TotalTokens: res.PromptTokens + res.CompletionTokens}
		var v any
		if j.chat {
			v = chatResponse{ID: id, Object: "chat.completion.chunk", Created: created, Model: s.model, Choices: []chatChoice{}, Usage: u}
		} else {
			v = completionResponse{ID: id, Object: "text_completion", Created: created, Model: s.model, Choices: []completionChoice{}, Usage: u}
		}
		if err := send(v); err != nil {
			return
		}
	}
	if _, err := io.WriteString(w, "data: [DONE]\n\n"); err == nil {
		_ = flush()
	}
}

// observe records a finished generation in the metrics and the log.
// clientGone says that a write to the client failed.
func (s *Server) observe(r *http.Request, j job, res llm.Result, err error, clientGone bool) {
	reason := res.FinishReason
	switch {
	case errors.Is(err, llm.ErrQueueFull):
		reason = "rejected_queue_full"
	case errors.Is(err, llm.ErrInvalidRequest):
		reason = "rejected_invalid"
	case err != nil && (r.Context().Err() != nil || clientGone):
		reason = llm.FinishCancelled
	case err != nil:
		reason = "error"
	}
	s.metrics.observe(res, reason)
	s.logger.Debug("generation", "path", r.URL.Path, "stream", j.stream,
		"prompt_tokens", res.PromptTokens, "completion_tokens", res.CompletionTokens,
		"finish_reason", reason, "ttft", res.TimeToFirstToken.String(), "duration", res.Duration.String())
}

// engineError maps an engine error to its API error.
func engineError(err error) *apiError {
	switch {
	case errors.Is(err, llm.ErrQueueFull):
		return withCode(&apiError{Status: http.StatusTooManyRequests, Type: "rate_limit_error", Message: "the server is at capacity: too many requests are waiting; retry later"}, "queue_full")
	case errors.Is(err, llm.ErrInvalidRequest):
		return withCode(invalid("prompt", "%v", err), "invalid_prompt")
	case errors.Is(err, llm.ErrClosed):
		return withCode(&apiError{Status: http.StatusServiceUnavailable, Type: "server_error", Message: "the engine is shutting down"}, "unavailable")
	}
	return &apiError{Status: http.StatusInternalServerError, Type: "server_error", Message: "generation failed"}
}

func (s *Server) writeEngineError(w http.ResponseWriter, r *http.Request, err error) {
	if r.Context().Err() != nil {
		return // the client is gone; nobody reads a response
	}
	aerr := engineError(err)
	if aerr.Status >= 500 {
		s.logError(r, err)
	}
	if aerr.Status == http.StatusTooManyRequests {
		w.Header().Set("Retry-After", "1")
	}
	writeError(w, aerr)
}

func (s *Server) logError(r *http.Request, err error) {
	s.logger.Error("generation failed", "path", r.URL.Path, "err", err)
}

func writeError(w http.ResponseWriter, e *apiError) {
	writeJSON(w, e.Status, map[string]*apiError{"error": e})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		b = []byte(`{"error":{"message":"encode response","type":"server_error","param":null,"code":null}}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}

// newID returns an OpenAI-style response id.
func newID(chat bool) string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	if chat {
		return "chatcmpl-" + hex.EncodeToString(b[:])
	}
	return "cmpl-" + hex.EncodeToString(b[:])
}

// seed draws a sampling seed for a request that gives none.
func (s *Server) seed() uint64 { return mrand.Uint64() }

// statusRecorder remembers the status code for the request metrics; Unwrap
// lets http.ResponseController reach the connection's Flush.
type statusRecorder struct {
	http.ResponseWriter
	status int
	wrote  bool
}

func (r *statusRecorder) WriteHeader(code int) {
	if !r.wrote {
		r.status, r.wrote = code, true
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *statusRecorder) Write(b []byte) (int, error) {
	r.wrote = true
	return r.ResponseWriter.Write(b)
}

func (r *statusRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }
