package embed

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tributary-rag/tributary/pkg/daemon"
	"github.com/tributary-rag/tributary/pkg/kafkatransport"
)

// OpenAIConfig configures an OpenAI embedder.
type OpenAIConfig struct {
	// URL is the server: a base URL ("http://tei:8080"), its /v1, or the
	// full /v1/embeddings address.
	URL string
	// Model is the model name sent with every request.
	Model string
	// APIKey, when set, is sent as "Authorization: Bearer <key>". It is
	// never logged nor put in an error.
	APIKey string
	// Dim is the dimension the vectors must have; 0 takes it from the
	// first response and holds every later one to it.
	Dim int
	// QueryPrefix and DocumentPrefix go before questions and chunks (e5's
	// "query: " and "passage: ", bge's query instruction).
	QueryPrefix, DocumentPrefix string
	// Batch is the most texts one request carries (default 32).
	Batch int
	// Timeout bounds one request (default 30s).
	Timeout time.Duration
	// Attempts is how many times one request is tried on 429, 5xx or a
	// network error before the error goes to the subscriber, which retries
	// with its own backoff (default 3).
	Attempts int
	// Client sends the requests (default: a new http.Client).
	Client *http.Client
}

// OpenAI is an Embedder that fills the sparse part of each Vector with a
// lexical embedder and the dense part from an OpenAI-compatible
// POST /v1/embeddings server (TEI, vLLM, Ollama, OpenAI, tributary
// inference). It is safe for concurrent use.
//
// Errors tell the subscriber what to do: a 400, 404, 413 or 422 answer
// and a vector of the wrong dimension are ErrInvalid (dead-lettered with
// the reason); 401, 403, 429, 502, 503, 504 and network errors are
// kafkatransport.Unavailable (the partition waits for the server, nothing
// is dead-lettered during an outage); any other answer is an ordinary
// error, retried with backoff and then dead-lettered.
type OpenAI struct {
	sparse   Embedder
	cfg      OpenAIConfig
	endpoint string
	dim      atomic.Int64
}

// NewOpenAI returns an OpenAI embedder on cfg beside sparse.
func NewOpenAI(sparse Embedder, cfg OpenAIConfig) (*OpenAI, error) {
	if sparse == nil {
		return nil, errors.New("openai embedder: needs a sparse embedder")
	}
	endpoint, err := EmbeddingsURL(cfg.URL)
	if err != nil {
		return nil, err
	}
	if strings.TrimSpace(cfg.Model) == "" {
		return nil, errors.New("openai embedder: needs a model name")
	}
	if cfg.Dim < 0 {
		return nil, errors.New("openai embedder: dimension must not be negative")
	}
	if cfg.Batch <= 0 {
		cfg.Batch = 32
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 30 * time.Second
	}
	if cfg.Attempts <= 0 {
		cfg.Attempts = 3
	}
	if cfg.Client == nil {
		cfg.Client = &http.Client{}
	}
	o := &OpenAI{sparse: sparse, cfg: cfg, endpoint: endpoint}
	o.dim.Store(int64(cfg.Dim))
	return o, nil
}

// EmbeddingsURL returns the /v1/embeddings address of raw: a base URL gets
// /v1/embeddings, one ending in /v1 gets /embeddings, one ending in
// /embeddings is kept.
func EmbeddingsURL(raw string) (string, error) {
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil {
		return "", fmt.Errorf("embed url: %w", err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", fmt.Errorf("embed url %q: want http(s)://host[:port][/path]", raw)
	}
	if u.User != nil {
		return "", errors.New("embed url: put the API key in TRIBUTARY_EMBED_API_KEY, not in the URL")
	}
	p := strings.TrimSuffix(u.Path, "/")
	switch {
	case strings.HasSuffix(p, "/embeddings"):
	case strings.HasSuffix(p, "/v1"):
		p += "/embeddings"
	default:
		p += "/v1/embeddings"
	}
	u.Path = p
	return u.String(), nil
}

// Model implements Embedder: the sparse model's name, "+", the dense
// model's name and its dimension, e.g.
// "bm25-fnv1a-v2+BAAI/bge-small-en-v1.5/384" (the dimension is 0 until
// the first answer when it is not configured).
func (o *OpenAI) Model() string {
	return fmt.Sprintf("%s+%s/%d", o.sparse.Model(), o.cfg.Model, o.dim.Load())
}

// Dim is the dimension of the dense vectors (0: not known yet).
func (o *OpenAI) Dim() int { return int(o.dim.Load()) }

// EmbedDocuments implements Embedder; texts go Batch at a time.
func (o *OpenAI) EmbedDocuments(ctx context.Context, texts []string) ([]Vector, error) {
	vs, err := o.sparse.EmbedDocuments(ctx, texts)
	if err != nil {
		return nil, err
	}
	if len(vs) != len(texts) {
		return nil, fmt.Errorf("sparse embedder returned %d vectors for %d texts", len(vs), len(texts))
	}
	for lo := 0; lo < len(texts); lo += o.cfg.Batch {
		hi := min(lo+o.cfg.Batch, len(texts))
		in := make([]string, hi-lo)
		for i, t := range texts[lo:hi] {
			in[i] = o.cfg.DocumentPrefix + t
		}
		dense, err := o.Embed(ctx, in)
		if err != nil {
			return nil, err
		}
		for i, d := range dense {
			vs[lo+i].Dense = d
		}
	}
	return vs, nil
}

// EmbedQuery implements Embedder.
func (o *OpenAI) EmbedQuery(ctx context.Context, text string) (Vector, error) {
	v, err := o.sparse.EmbedQuery(ctx, text)
	if err != nil {
		return Vector{}, err
	}
	dense, err := o.Embed(ctx, []string{o.cfg.QueryPrefix + text})
	if err != nil {
		return Vector{}, err
	}
	v.Dense = dense[0]
	return v, nil
}

type embeddingsRequest struct {
	Input          []string `json:"input"`
	Model          string   `json:"model"`
	EncodingFormat string   `json:"encoding_format"`
}

type embeddingsResponse struct {
	Data []struct {
		Index     int       `json:"index"`
		Embedding []float32 `json:"embedding"`
	} `json:"data"`
}

// Embed returns the server's vectors of texts, as they are (no prefix),
// in one request.
func (o *OpenAI) Embed(ctx context.Context, texts []string) ([][]float32, error) {
	body, err := json.Marshal(embeddingsRequest{Input: texts, Model: o.cfg.Model, EncodingFormat: "float"})
	if err != nil {
		return nil, fmt.Errorf("embeddings request: %w", err)
	}
	var lastErr error
	for attempt := 1; attempt <= o.cfg.Attempts; attempt++ {
		out, wait, err := o.post(ctx, body, len(texts))
		if err == nil {
			return out, nil
		}
		lastErr = err
		if wait < 0 || attempt == o.cfg.Attempts {
			break
		}
		if wait == 0 {
			wait = time.Duration(100<<(attempt-1)) * time.Millisecond
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(min(wait, 5*time.Second)):
		}
	}
	return nil, lastErr
}

// post sends one request. wait is how long to wait before trying again
// (0: the default backoff), or -1 when trying again cannot help.
func (o *OpenAI) post(ctx context.Context, body []byte, n int) (_ [][]float32, wait time.Duration, _ error) {
	ctx, cancel := context.WithTimeout(ctx, o.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, o.endpoint, bytes.NewReader(body))
	if err != nil {
		return nil, -1, fmt.Errorf("embeddings request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	if o.cfg.APIKey != "" {
		req.Header.Set("Authorization", "Bearer "+o.cfg.APIKey)
	}
	resp, err := o.cfg.Client.Do(req)
	if err != nil {
		// The URL holds no secret (EmbeddingsURL refuses user info).
		return nil, 0, kafkatransport.Unavailable(fmt.Errorf("embeddings server %s: %w", o.cfg.Model, err))
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 256<<20))
	if err != nil {
		return nil, 0, kafkatransport.Unavailable(fmt.Errorf("embeddings server %s: read answer: %w", o.cfg.Model, err))
	}
	if resp.StatusCode != http.StatusOK {
		return nil, retryAfter(resp), statusError(o.cfg.Model, resp.StatusCode, data)
	}
	var r embeddingsResponse
	if err := json.Unmarshal(data, &r); err != nil {
		return nil, 0, fmt.Errorf("embeddings server %s: answer is not an embeddings list: %w", o.cfg.Model, err)
	}
	if len(r.Data) != n {
		return nil, 0, fmt.Errorf("embeddings server %s: %d vectors for %d texts", o.cfg.Model, len(r.Data), n)
	}
	out := make([][]float32, n)
	for _, d := range r.Data {
		if d.Index < 0 || d.Index >= n || out[d.Index] != nil {
			return nil, 0, fmt.Errorf("embeddings server %s: bad or repeated index %d", o.cfg.Model, d.Index)
		}
		if err := o.checkDim(len(d.Embedding)); err != nil {
			return nil, -1, err
		}
		for _, x := range d.Embedding {
			if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
				return nil, -1, fmt.Errorf("%w: embeddings server %s returned a non-finite value", ErrInvalid, o.cfg.Model)
			}
		}
		out[d.Index] = d.Embedding
	}
	return out, 0, nil
}

// checkDim holds every vector to the configured dimension, or to the first
// one seen: vectors of two sizes are of two models, never to be mixed.
func (o *OpenAI) checkDim(n int) error {
	if n == 0 {
		return fmt.Errorf("%w: embeddings server %s returned an empty vector", ErrInvalid, o.cfg.Model)
	}
	if o.dim.CompareAndSwap(0, int64(n)) {
		return nil
	}
	if want := o.dim.Load(); int64(n) != want {
		return fmt.Errorf("%w: embeddings server %s returned a vector of dimension %d, want %d (did the server's model change?)", ErrInvalid, o.cfg.Model, n, want)
	}
	return nil
}

// statusError classifies a non-200 answer (see OpenAI).
func statusError(model string, code int, body []byte) error {
	msg := string(body)
	var e struct {
		Error json.RawMessage `json:"error"`
	}
	if json.Unmarshal(body, &e) == nil && len(e.Error) > 0 {
		var inner struct {
			Message string `json:"message"`
		}
		if json.Unmarshal(e.Error, &inner) == nil && inner.Message != "" {
			msg = inner.Message
		} else {
			msg = string(e.Error)
		}
	}
	if len(msg) > 300 {
		msg = msg[:300] + "…"
	}
	err := fmt.Errorf("embeddings server %s: HTTP %d: %s", model, code, strings.TrimSpace(msg))
	switch code {
	case http.StatusBadRequest, http.StatusNotFound, http.StatusRequestEntityTooLarge, http.StatusUnprocessableEntity:
		return fmt.Errorf("%w: %w", ErrInvalid, err)
	case http.StatusTooManyRequests, http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout,
		// A refused key is the deployment's fault, not the message's: wait
		// for the operator instead of dead-lettering every chunk.
		http.StatusUnauthorized, http.StatusForbidden:
		return kafkatransport.Unavailable(err)
	}
	return err
}

// retryAfter is the wait a 429 or 503 asks for (Retry-After in seconds),
// -1 for an answer that a retry cannot fix, else 0.
func retryAfter(resp *http.Response) time.Duration {
	switch resp.StatusCode {
	case http.StatusBadRequest, http.StatusNotFound, http.StatusRequestEntityTooLarge, http.StatusUnprocessableEntity,
		http.StatusUnauthorized, http.StatusForbidden:
		return -1
	}
	if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && s > 0 {
		return time.Duration(s) * time.Second
	}
	return 0
}

// checkRemote records in p each --embed-url setting out of range.
func (s Settings) checkRemote(p *daemon.Problems) {
	if s.EmbedURL == "" {
		if s.EmbedAPIKey != "" || s.EmbedAPIKeyFile != "" {
			p.Addf("embed-api-key", "needs --embed-url")
		}
		return
	}
	if _, err := EmbeddingsURL(s.EmbedURL); err != nil {
		p.Add("embed-url", err)
	}
	if strings.TrimSpace(s.EmbedModel) == "" {
		p.Addf("embed-model", "required with --embed-url: the name of the server's model")
	}
	if s.EmbedAPIKey != "" && s.EmbedAPIKeyFile != "" {
		p.Addf("embed-api-key-file", "set either the key or its file, not both")
	}
	if s.EmbedDim < 0 || s.EmbedDim > 65536 {
		p.Addf("embed-dim", "must be between 0 (the first answer's) and 65536")
	}
	if s.EmbedURLBatch < 1 || s.EmbedURLBatch > 2048 {
		p.Addf("embed-url-batch", "must be between 1 and 2048")
	}
	if s.EmbedURLTimeout <= 0 {
		p.Addf("embed-url-timeout", "must be positive")
	}
}

// embedder returns the Embedder the settings ask for: the embeddings
// server at EmbedURL, else the local model (withDense), else sparse alone.
func (s Settings) embedder(sparse Embedder, reg prometheus.Registerer) (Embedder, error) {
	if s.EmbedURL == "" {
		return s.withDense(sparse, reg)
	}
	key := s.EmbedAPIKey
	if s.EmbedAPIKeyFile != "" {
		b, err := os.ReadFile(s.EmbedAPIKeyFile)
		if err != nil {
			return nil, fmt.Errorf("embed-api-key-file: %w", err)
		}
		key = strings.TrimSuffix(strings.TrimSuffix(string(b), "\n"), "\r")
	}
	return NewOpenAI(sparse, OpenAIConfig{URL: s.EmbedURL, Model: s.EmbedModel, APIKey: key, Dim: s.EmbedDim,
		QueryPrefix: s.EmbedQueryPrefix, DocumentPrefix: s.EmbedDocumentPrefix, Batch: s.EmbedURLBatch, Timeout: s.EmbedURLTimeout})
}

// redactURL is raw without user info and query, for logs.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || raw == "" {
		return ""
	}
	return u.Scheme + "://" + u.Host + u.Path
}
