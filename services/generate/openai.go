package generate

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

// ErrBackendUnavailable wraps errors that mean the model server could not
// answer now (connection refused, 429, 5xx, timeouts); a later attempt may
// succeed.
var ErrBackendUnavailable = errors.New("inference backend unavailable")

// APIError is a non-2xx answer of an OpenAI-compatible server, with the
// fields of its {"error":{…}} body when it sent one.
type APIError struct {
	StatusCode int
	Type       string
	Code       string
	Param      string
	Message    string
}

func (e *APIError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "inference server: status %d", e.StatusCode)
	if e.Type != "" {
		b.WriteString(" ")
		b.WriteString(e.Type)
	}
	if e.Code != "" {
		fmt.Fprintf(&b, " (%s)", e.Code)
	}
	if e.Message != "" {
		b.WriteString(": ")
		b.WriteString(e.Message)
	}
	return b.String()
}

// Unwrap makes 429 and 5xx errors match ErrBackendUnavailable.
func (e *APIError) Unwrap() error {
	if e.StatusCode == http.StatusTooManyRequests || e.StatusCode >= 500 {
		return ErrBackendUnavailable
	}
	return nil
}

// OpenAIConfig configures the client of an OpenAI-compatible server.
type OpenAIConfig struct {
	// BaseURL is the server, with or without the trailing /v1
	// (TRIBUTARY_INFERENCE_URL), e.g. http://inference:8080.
	BaseURL string
	// Model is the model id sent in requests; empty asks the server's
	// /v1/models once and uses the first id.
	Model string
	// APIKey, when set, is sent as "Authorization: Bearer <key>".
	APIKey string
	// ConnectTimeout bounds dialing (default 5s).
	ConnectTimeout time.Duration
	// HeaderTimeout bounds the wait for the response headers, which
	// streaming servers send with the first token (default 60s).
	HeaderTimeout time.Duration
	// IdleTimeout bounds the silence between two stream events (default
	// 60s); a stalled server is abandoned.
	IdleTimeout time.Duration
	// Client replaces the HTTP client (tests); its Timeout must be zero
	// for streams.
	Client *http.Client
}

// OpenAI is the Generator that calls an OpenAI-compatible server's
// /v1/chat/completions with stream: true: Tributary's inference service,
// vLLM, TGI, llama.cpp or Ollama. OpenAI is safe for concurrent use.
type OpenAI struct {
	cfg      OpenAIConfig
	endpoint string
	models   string
	// shown is the endpoint with any password in the URL redacted, for
	// errors and logs.
	shown  string
	client *http.Client

	mu    sync.Mutex
	model string
}

// NewOpenAI returns a client for the server at cfg.BaseURL.
func NewOpenAI(cfg OpenAIConfig) (*OpenAI, error) {
	u, err := url.Parse(strings.TrimSpace(cfg.BaseURL))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("inference url %q: want http(s)://host[:port][/v1]", cfg.BaseURL)
	}
	base := strings.TrimSuffix(u.String(), "/")
	if !strings.HasSuffix(base, "/v1") {
		base += "/v1"
	}
	if cfg.ConnectTimeout <= 0 {
		cfg.ConnectTimeout = 5 * time.Second
	}
	if cfg.HeaderTimeout <= 0 {
		cfg.HeaderTimeout = 60 * time.Second
	}
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = 60 * time.Second
	}
	client := cfg.Client
	if client == nil {
		client = &http.Client{Transport: &http.Transport{
			Proxy:                 http.ProxyFromEnvironment,
			DialContext:           (&net.Dialer{Timeout: cfg.ConnectTimeout, KeepAlive: 30 * time.Second}).DialContext,
			ResponseHeaderTimeout: cfg.HeaderTimeout,
			MaxIdleConnsPerHost:   64,
			IdleConnTimeout:       90 * time.Second,
			TLSHandshakeTimeout:   cfg.ConnectTimeout,
		}}
	}
	shown := strings.TrimSuffix(u.Redacted(), "/")
	if !strings.HasSuffix(shown, "/v1") {
		shown += "/v1"
	}
	return &OpenAI{cfg: cfg, endpoint: base + "/chat/completions", models: base + "/models",
		shown: shown + "/chat/completions", client: client, model: cfg.Model}, nil
}

// Mode implements Generator.
func (*OpenAI) Mode() string { return ModeOpenAI }

type chatRequest struct {
	Model         string        `json:"model,omitempty"`
	Messages      []chatMessage `json:"messages"`
	Stream        bool          `json:"stream"`
	StreamOptions *struct {
		IncludeUsage bool `json:"include_usage"`
	} `json:"stream_options,omitempty"`
	MaxTokens   int     `json:"max_tokens,omitempty"`
	Temperature float64 `json:"temperature"`
	Seed        *int64  `json:"seed,omitempty"`
}

type chatMessage struct {
	Role    string `json:"role"`
	Content string `json:"content"`
}

type apiErrorBody struct {
	Error *struct {
		Message string          `json:"message"`
		Type    string          `json:"type"`
		Param   json.RawMessage `json:"param"`
		Code    json.RawMessage `json:"code"`
	} `json:"error"`
}

// chatChunk is one streamed chunk (chat.completion.chunk), or an error
// event.
type chatChunk struct {
	Model   string `json:"model"`
	Choices []struct {
		Delta struct {
			Content *string `json:"content"`
		} `json:"delta"`
		FinishReason *string `json:"finish_reason"`
	} `json:"choices"`
	Usage *struct {
		PromptTokens     int `json:"prompt_tokens"`
		CompletionTokens int `json:"completion_tokens"`
	} `json:"usage"`
	apiErrorBody
}

// Generate implements Generator.
func (o *OpenAI) Generate(ctx context.Context, req Request, onToken func(string) error) (Generation, error) {
	model, err := o.modelID(ctx)
	if err != nil {
		return Generation{FinishReason: FinishError}, err
	}
	body := chatRequest{Model: model, Stream: true, MaxTokens: req.MaxTokens, Temperature: req.Temperature}
	body.StreamOptions = &struct {
		IncludeUsage bool `json:"include_usage"`
	}{true}
	seed := int64(req.Seed >> 1) // OpenAI seeds are signed 64-bit
	body.Seed = &seed
	for _, m := range req.Prompt.Messages {
		body.Messages = append(body.Messages, chatMessage{Role: m.Role, Content: m.Content})
	}
	data, err := json.Marshal(body)
	if err != nil {
		return Generation{FinishReason: FinishError}, fmt.Errorf("encode chat request: %w", err)
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, o.endpoint, bytes.NewReader(data))
	if err != nil {
		return Generation{FinishReason: FinishError}, fmt.Errorf("chat request: %w", err)
	}
	hreq.Header.Set("Content-Type", "application/json")
	hreq.Header.Set("Accept", "text/event-stream")
	if o.cfg.APIKey != "" {
		hreq.Header.Set("Authorization", "Bearer "+o.cfg.APIKey)
	}
	resp, err := o.client.Do(hreq)
	if err != nil {
		if ctx.Err() != nil && context.Cause(ctx) != nil {
			return Generation{FinishReason: FinishCancelled}, context.Cause(ctx)
		}
		return Generation{FinishReason: FinishError}, fmt.Errorf("%w: post %s: %w", ErrBackendUnavailable, o.shown, redactURLError(err))
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return Generation{FinishReason: FinishError}, readAPIError(resp)
	}
	// A watchdog cancels the request when the server falls silent.
	activity := make(chan struct{}, 1)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTimer(o.cfg.IdleTimeout)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-activity:
				t.Reset(o.cfg.IdleTimeout) // Go ≥ 1.23: no stale tick to drain
			case <-t.C:
				cancel(fmt.Errorf("%w: no stream event for %s", ErrBackendUnavailable, o.cfg.IdleTimeout))
				return
			}
		}
	}()
	gen, err := readChatStream(resp.Body, func() {
		select {
		case activity <- struct{}{}:
		default:
		}
	}, onToken)
	close(stop)
	wg.Wait()
	if gen.Model == "" {
		gen.Model = model
	}
	if err != nil {
		if cause := context.Cause(ctx); cause != nil {
			err = cause
		}
		if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
			gen.FinishReason = FinishCancelled
		} else if gen.FinishReason == "" || gen.FinishReason == FinishStop {
			gen.FinishReason = FinishError
		}
		return gen, err
	}
	return gen, nil
}

// errStreamEnded reports a stream that ended without [DONE] or a finish
// reason.
var errStreamEnded = fmt.Errorf("%w: stream ended before the answer was complete", ErrBackendUnavailable)

// readChatStream reads an OpenAI chat completion event stream, calling
// tick on every event and onToken for each content delta, until [DONE].
// Any byte sequence gives a Generation and an error or nil, never a panic.
func readChatStream(r io.Reader, tick func(), onToken func(string) error) (Generation, error) {
	var gen Generation
	sse := newSSEReader(r)
	for {
		data, err := sse.Next()
		if err != nil {
			if err == io.EOF {
				if gen.FinishReason != "" {
					return gen, nil // some servers omit [DONE]
				}
				return gen, errStreamEnded
			}
			return gen, fmt.Errorf("read event stream: %w", err)
		}
		tick()
		if string(bytes.TrimSpace(data)) == "[DONE]" {
			if gen.FinishReason == "" {
				gen.FinishReason = FinishStop
			}
			return gen, nil
		}
		var c chatChunk
		if err := json.Unmarshal(data, &c); err != nil {
			return gen, fmt.Errorf("inference server sent an invalid event: %w", err)
		}
		if c.Error != nil {
			return gen, &APIError{StatusCode: http.StatusInternalServerError, Type: c.Error.Type,
				Code: rawString(c.Error.Code), Param: rawString(c.Error.Param), Message: c.Error.Message}
		}
		if c.Model != "" {
			gen.Model = c.Model
		}
		if c.Usage != nil {
			gen.PromptTokens, gen.CompletionTokens = c.Usage.PromptTokens, c.Usage.CompletionTokens
		}
		for _, ch := range c.Choices {
			if ch.Delta.Content != nil && *ch.Delta.Content != "" {
				if err := onToken(*ch.Delta.Content); err != nil {
					gen.FinishReason = FinishCancelled
					return gen, err
				}
				if c.Usage == nil {
					gen.CompletionTokens++
				}
			}
			if ch.FinishReason != nil && *ch.FinishReason != "" {
				gen.FinishReason = normalizeFinish(*ch.FinishReason)
			}
		}
	}
}

// normalizeFinish maps a server's finish reason onto ours.
func normalizeFinish(s string) string {
	switch s {
	case "stop", "eos_token", "stop_sequence", "end_turn":
		return FinishStop
	case "length", "max_tokens":
		return FinishLength
	case "cancelled", "abort":
		return FinishCancelled
	}
	return FinishStop
}

// rawString renders a JSON string or number field as text.
func rawString(raw json.RawMessage) string {
	if len(raw) == 0 || string(raw) == "null" {
		return ""
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	return string(raw)
}

// readAPIError turns a non-2xx response into an *APIError, with the
// OpenAI error body's fields when it has one.
func readAPIError(resp *http.Response) error {
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	e := &APIError{StatusCode: resp.StatusCode}
	var b apiErrorBody
	if json.Unmarshal(body, &b) == nil && b.Error != nil {
		e.Type, e.Message = b.Error.Type, b.Error.Message
		e.Code, e.Param = rawString(b.Error.Code), rawString(b.Error.Param)
	} else {
		e.Message = strings.TrimSpace(truncateRunes(strings.ToValidUTF8(string(body), "\uFFFD"), 300))
	}
	return e
}

// modelID returns the configured model, or the first id the server lists.
// A server without /v1/models gets requests without a model field.
func (o *OpenAI) modelID(ctx context.Context) (string, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.model != "" {
		return o.model, nil
	}
	ctx, cancel := context.WithTimeout(ctx, o.cfg.HeaderTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, o.models, nil)
	if err != nil {
		return "", fmt.Errorf("models request: %w", err)
	}
	if o.cfg.APIKey != "" {
		req.Header.Set("Authorization", "Bearer "+o.cfg.APIKey)
	}
	resp, err := o.client.Do(req)
	if err != nil {
		return "", fmt.Errorf("%w: get models: %w", ErrBackendUnavailable, redactURLError(err))
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		if resp.StatusCode == http.StatusNotFound {
			return "", nil
		}
		return "", readAPIError(resp)
	}
	var list struct {
		Data []struct {
			ID string `json:"id"`
		} `json:"data"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&list); err != nil || len(list.Data) == 0 {
		return "", nil
	}
	o.model = list.Data[0].ID
	return o.model, nil
}

// redactURLError drops the URL (which may hold credentials) from the
// *url.Error net/http returns, keeping the operation and the cause.
func redactURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return fmt.Errorf("%s: %w", strings.ToLower(ue.Op), ue.Err)
	}
	return err
}
