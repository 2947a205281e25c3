package inference

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"

	"github.com/tributary-rag/tributary/pkg/llm"
	"github.com/tributary-rag/tributary/pkg/tokenizer"
)

// completionRequest is the body of POST /v1/completions and
// /v1/chat/completions: OpenAI's fields plus the sampling knobs of vLLM and
// llama.cpp's server. Unknown fields are ignored, as OpenAI does.
type completionRequest struct {
	Model               string          `json:"model"`
	Prompt              json.RawMessage `json:"prompt"`
	Messages            []chatMessage   `json:"messages"`
	MaxTokens           *int            `json:"max_tokens"`
	MaxCompletionTokens *int            `json:"max_completion_tokens"`
	Temperature         *float64        `json:"temperature"`
	TopP                *float64        `json:"top_p"`
	TopK                *int            `json:"top_k"`
	MinP                *float64        `json:"min_p"`
	RepetitionPenalty   *float64        `json:"repetition_penalty"`
	RepeatPenalty       *float64        `json:"repeat_penalty"`
	RepeatLastN         *int            `json:"repeat_last_n"`
	FrequencyPenalty    *float64        `json:"frequency_penalty"`
	PresencePenalty     *float64        `json:"presence_penalty"`
	Seed                *int64          `json:"seed"`
	Stop                json.RawMessage `json:"stop"`
	N                   *int            `json:"n"`
	Stream              bool            `json:"stream"`
	StreamOptions       *streamOptions  `json:"stream_options"`
	Echo                bool            `json:"echo"`
	Logprobs            json.RawMessage `json:"logprobs"`
	Tools               json.RawMessage `json:"tools"`
	Functions           json.RawMessage `json:"functions"`
	LogitBias           json.RawMessage `json:"logit_bias"`
	ResponseFormat      *struct {
		Type string `json:"type"`
	} `json:"response_format"`
}

// present reports whether a raw JSON field holds something other than
// null, false, 0 or an empty object or array.
func present(raw json.RawMessage) bool {
	switch string(bytes.TrimSpace(raw)) {
	case "", "null", "false", "0", "{}", "[]":
		return false
	}
	return true
}

type streamOptions struct {
	IncludeUsage bool `json:"include_usage"`
}

type chatMessage struct {
	Role    string          `json:"role"`
	Content json.RawMessage `json:"content"`
}

// apiError is an OpenAI-style error: the HTTP status and the body
// {"error":{"message","type","param","code"}}.
type apiError struct {
	Status  int     `json:"-"`
	Message string  `json:"message"`
	Type    string  `json:"type"`
	Param   *string `json:"param"`
	Code    *string `json:"code"`
}

func (e *apiError) Error() string { return e.Message }

func invalid(param, format string, args ...any) *apiError {
	e := &apiError{Status: 400, Type: "invalid_request_error", Message: fmt.Sprintf(format, args...)}
	if param != "" {
		e.Param = &param
	}
	return e
}

func withCode(e *apiError, code string) *apiError {
	e.Code = &code
	return e
}

// Limits on a request, beyond the engine's own.
const (
	maxStopSequences = 16
	maxStopLength    = 256
	maxMessages      = 4096
)

// job is a validated request, ready for the engine.
type job struct {
	chat         bool
	stream       bool
	includeUsage bool
	req          llm.Request
}

// parseSampling validates the sampling fields shared by both routes.
func (s *Server) parseSampling(r *completionRequest) (llm.Request, *apiError) {
	var req llm.Request
	if r.N != nil && *r.N != 1 {
		return req, invalid("n", "n must be 1: this server returns one choice per request")
	}
	if r.Echo {
		return req, invalid("echo", "echo is not supported")
	}
	for _, f := range []struct {
		name string
		raw  json.RawMessage
	}{{"logprobs", r.Logprobs}, {"tools", r.Tools}, {"functions", r.Functions}, {"logit_bias", r.LogitBias}} {
		if present(f.raw) {
			return req, invalid(f.name, "%s is not supported", f.name)
		}
	}
	if r.ResponseFormat != nil && r.ResponseFormat.Type != "" && r.ResponseFormat.Type != "text" {
		return req, invalid("response_format", "response_format %q is not supported (text only)", r.ResponseFormat.Type)
	}
	for name, v := range map[string]*float64{"frequency_penalty": r.FrequencyPenalty, "presence_penalty": r.PresencePenalty} {
		if v != nil && *v != 0 {
			return req, invalid(name, "%s is not supported; use repetition_penalty", name)
		}
	}
	maxTokens := s.defaultMaxTokens
	param := "max_tokens"
	mt := r.MaxTokens
	if mt == nil {
		mt, param = r.MaxCompletionTokens, "max_completion_tokens"
	}
	if mt != nil {
		if *mt < 1 || *mt > s.maxTokens {
			return req, invalid(param, "%s must be between 1 and %d, got %d", param, s.maxTokens, *mt)
		}
		maxTokens = *mt
	}
	req.MaxTokens = maxTokens

	temp := 1.0
	if r.Temperature != nil {
		temp = *r.Temperature
	}
	if !finite(temp) || temp < 0 || temp > 2 {
		return req, invalid("temperature", "temperature must be between 0 and 2")
	}
	req.Sampling.Temperature = float32(temp)
	if r.TopP != nil {
		if !finite(*r.TopP) || *r.TopP <= 0 || *r.TopP > 1 {
			return req, invalid("top_p", "top_p must be in (0, 1]")
		}
		req.Sampling.TopP = float32(*r.TopP)
	}
	if r.TopK != nil {
		if *r.TopK < 0 {
			return req, invalid("top_k", "top_k must not be negative")
		}
		req.Sampling.TopK = *r.TopK
	}
	if r.MinP != nil {
		if !finite(*r.MinP) || *r.MinP < 0 || *r.MinP > 1 {
			return req, invalid("min_p", "min_p must be between 0 and 1")
		}
		req.Sampling.MinP = float32(*r.MinP)
	}
	rp, rpName := r.RepetitionPenalty, "repetition_penalty"
	if rp == nil {
		rp, rpName = r.RepeatPenalty, "repeat_penalty"
	}
	if rp != nil {
		if !finite(*rp) || *rp <= 0 || *rp > 10 {
			return req, invalid(rpName, "%s must be in (0, 10]", rpName)
		}
		req.Sampling.RepeatPenalty = float32(*rp)
	}
	if r.RepeatLastN != nil {
		if *r.RepeatLastN < -1 {
			return req, invalid("repeat_last_n", "repeat_last_n must be -1 (whole context), 0 (default) or positive")
		}
		req.Sampling.RepeatLastN = *r.RepeatLastN
	}
	if r.Seed != nil {
		req.Sampling.Seed = uint64(*r.Seed)
	} else {
		req.Sampling.Seed = s.seed()
	}
	stop, err := parseStop(r.Stop)
	if err != nil {
		return req, err
	}
	req.Stop = stop
	return req, nil
}

func finite(f float64) bool { return !math.IsNaN(f) && !math.IsInf(f, 0) }

// parseStop accepts null, a string or an array of strings.
func parseStop(raw json.RawMessage) ([]string, *apiError) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return nil, nil
	}
	var one string
	if err := json.Unmarshal(raw, &one); err == nil {
		if one == "" {
			return nil, nil
		}
		return checkStop([]string{one})
	}
	var many []string
	if err := json.Unmarshal(raw, &many); err != nil {
		return nil, invalid("stop", "stop must be a string or an array of strings")
	}
	out := many[:0]
	for _, s := range many {
		if s != "" {
			out = append(out, s)
		}
	}
	return checkStop(out)
}

func checkStop(stop []string) ([]string, *apiError) {
	if len(stop) > maxStopSequences {
		return nil, invalid("stop", "at most %d stop sequences", maxStopSequences)
	}
	for _, s := range stop {
		if len(s) > maxStopLength {
			return nil, invalid("stop", "a stop sequence is at most %d bytes", maxStopLength)
		}
	}
	return stop, nil
}

// parsePrompt accepts a string, an array holding one string, or an array of
// token ids, and returns the prompt's token ids.
func (s *Server) parsePrompt(raw json.RawMessage) ([]int32, *apiError) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return nil, invalid("prompt", "prompt is required")
	}
	var text string
	if err := json.Unmarshal(raw, &text); err == nil {
		return s.tok.Encode(text, s.tok.AddBOS()), nil
	}
	var texts []string
	if err := json.Unmarshal(raw, &texts); err == nil {
		if len(texts) != 1 {
			return nil, invalid("prompt", "prompt must hold exactly one string: batch prompts are not supported")
		}
		return s.tok.Encode(texts[0], s.tok.AddBOS()), nil
	}
	var ids []int64
	if err := json.Unmarshal(raw, &ids); err == nil && len(ids) > 0 {
		out := make([]int32, len(ids))
		for i, id := range ids {
			if id < 0 || id >= int64(s.tok.VocabSize()) {
				return nil, invalid("prompt", "token id %d is outside the vocabulary of %d", id, s.tok.VocabSize())
			}
			out[i] = int32(id)
		}
		return out, nil
	}
	return nil, invalid("prompt", "prompt must be a string, an array of one string, or an array of token ids")
}

// parseMessages validates chat messages and renders them with the model's
// chat template.
func (s *Server) parseMessages(msgs []chatMessage) ([]int32, *apiError) {
	if len(msgs) == 0 {
		return nil, invalid("messages", "messages must not be empty")
	}
	if len(msgs) > maxMessages {
		return nil, invalid("messages", "at most %d messages", maxMessages)
	}
	out := make([]tokenizer.Message, 0, len(msgs))
	for i, m := range msgs {
		role := m.Role
		switch role {
		case "system", "user", "assistant":
		case "developer":
			role = "system"
		case "":
			return nil, invalid(fmt.Sprintf("messages[%d].role", i), "messages[%d].role is required", i)
		default:
			return nil, invalid(fmt.Sprintf("messages[%d].role", i), "messages[%d].role %q is not supported (system, user, assistant)", i, m.Role)
		}
		content, err := messageContent(m.Content)
		if err != nil {
			return nil, invalid(fmt.Sprintf("messages[%d].content", i), "messages[%d].content: %v", i, err)
		}
		out = append(out, tokenizer.Message{Role: role, Content: content})
	}
	return s.tok.EncodeChat(s.template, out, true), nil
}

// messageContent accepts a string or an array of {"type":"text","text":…}
// parts.
func messageContent(raw json.RawMessage) (string, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return "", errors.New("content is required")
	}
	var text string
	if err := json.Unmarshal(raw, &text); err == nil {
		return text, nil
	}
	var parts []struct {
		Type string `json:"type"`
		Text string `json:"text"`
	}
	if err := json.Unmarshal(raw, &parts); err != nil {
		return "", errors.New("content must be a string or an array of text parts")
	}
	var b strings.Builder
	for _, p := range parts {
		if p.Type != "text" {
			return "", fmt.Errorf("content part type %q is not supported (text only)", p.Type)
		}
		b.WriteString(p.Text)
	}
	return b.String(), nil
}

// Response shapes.

type usage struct {
	PromptTokens     int `json:"prompt_tokens"`
	CompletionTokens int `json:"completion_tokens"`
	TotalTokens      int `json:"total_tokens"`
}

type completionChoice struct {
	Text         string  `json:"text"`
	Index        int     `json:"index"`
	Logprobs     any     `json:"logprobs"`
	FinishReason *string `json:"finish_reason"`
}

type completionResponse struct {
	ID      string             `json:"id"`
	Object  string             `json:"object"`
	Created int64              `json:"created"`
	Model   string             `json:"model"`
	Choices []completionChoice `json:"choices"`
	Usage   *usage             `json:"usage,omitempty"`
}

// chatDelta is a streamed chunk's delta: fields appear only when set.
type chatDelta struct {
	Role    string `json:"role,omitempty"`
	Content string `json:"content,omitempty"`
}

type chatMessageOut struct {
	Role    string `json:"role"`
	Content string `json:"content"`
}

type chatChoice struct {
	Index        int             `json:"index"`
	Message      *chatMessageOut `json:"message,omitempty"`
	Delta        *chatDelta      `json:"delta,omitempty"`
	Logprobs     any             `json:"logprobs"`
	FinishReason *string         `json:"finish_reason"`
}

type chatResponse struct {
	ID      string       `json:"id"`
	Object  string       `json:"object"`
	Created int64        `json:"created"`
	Model   string       `json:"model"`
	Choices []chatChoice `json:"choices"`
	Usage   *usage       `json:"usage,omitempty"`
}

type modelList struct {
	Object string      `json:"object"`
	Data   []modelInfo `json:"data"`
}

type modelInfo struct {
	ID      string `json:"id"`
	Object  string `json:"object"`
	Created int64  `json:"created"`
	OwnedBy string `json:"owned_by"`
}
