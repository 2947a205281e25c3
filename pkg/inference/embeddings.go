package inference

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"io"
	"math"
	"net/http"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tributary-rag/tributary/pkg/encoder"
)

// Embedder turns texts (or token ids) into vectors; *encoder.Encoder
// implements it. Its methods must be safe for concurrent use.
type Embedder interface {
	Embed(ctx context.Context, texts []string) ([][]float32, encoder.Stats, error)
	EmbedIDs(ctx context.Context, ids [][]int32) ([][]float32, error)
	Dim() int
	MaxLength() int
}

// Limits of POST /v1/embeddings, OpenAI's own.
const (
	maxEmbeddingInputs = 2048
	// DefaultEmbedQueue is how many embedding requests may wait for the
	// encoder at once unless WithEmbedder says otherwise; more get 429.
	DefaultEmbedQueue = 64
)

// WithEmbedder serves POST /v1/embeddings with e under the model id name
// (listed by /v1/models beside the generation model). queue bounds the
// requests that run or wait for e at once; more get 429 (0:
// DefaultEmbedQueue).
func WithEmbedder(e Embedder, name string, queue int) Option {
	return func(s *Server) {
		if queue <= 0 {
			queue = DefaultEmbedQueue
		}
		s.embedder, s.embedModel, s.embedSlots = e, name, make(chan struct{}, queue)
	}
}

// embeddingsRequest is OpenAI's body. input is a string, an array of
// strings, an array of token ids or an array of such arrays.
type embeddingsRequest struct {
	Input          json.RawMessage `json:"input"`
	Model          string          `json:"model"`
	EncodingFormat string          `json:"encoding_format"`
	Dimensions     *int            `json:"dimensions"`
	User           string          `json:"user"`
}

type embeddingOut struct {
	Object    string `json:"object"`
	Index     int    `json:"index"`
	Embedding any    `json:"embedding"`
}

type embeddingsUsage struct {
	PromptTokens int `json:"prompt_tokens"`
	TotalTokens  int `json:"total_tokens"`
}

type embeddingsResponse struct {
	Object string          `json:"object"`
	Data   []embeddingOut  `json:"data"`
	Model  string          `json:"model"`
	Usage  embeddingsUsage `json:"usage"`
}

// embedMetrics are the /v1/embeddings series.
type embedMetrics struct {
	inputs, tokens, truncated prometheus.Counter
}

func newEmbedMetrics(reg prometheus.Registerer) (*embedMetrics, error) {
	const ns = "tributary_inference"
	m := &embedMetrics{
		inputs: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Name: "embedding_inputs_total",
			Help: "Texts and token arrays embedded by /v1/embeddings."}),
		tokens: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Name: "embedding_tokens_total",
			Help: "Tokens run through the encoder for /v1/embeddings."}),
		truncated: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Name: "embedding_truncated_total",
			Help: "Texts cut at the encoder's maximum length before embedding."}),
	}
	for _, c := range []prometheus.Collector{m.inputs, m.tokens, m.truncated} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// embedInput is a parsed input: texts, or token arrays.
type embedInput struct {
	texts []string
	ids   [][]int32
}

func (in embedInput) len() int { return len(in.texts) + len(in.ids) }

// parseEmbedInput reads OpenAI's four input shapes.
func parseEmbedInput(raw json.RawMessage) (embedInput, *apiError) {
	var in embedInput
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return in, invalid("input", "input is required")
	}
	var one string
	if json.Unmarshal(raw, &one) == nil {
		in.texts = []string{one}
	} else if json.Unmarshal(raw, &in.texts) == nil {
	} else {
		in.texts = nil
		var flat []int32
		if json.Unmarshal(raw, &flat) == nil {
			in.ids = [][]int32{flat}
		} else if json.Unmarshal(raw, &in.ids) != nil {
			return in, invalid("input", "input must be a string, an array of strings, an array of token ids or an array of token id arrays")
		}
	}
	if in.len() == 0 {
		return in, invalid("input", "input must not be an empty array")
	}
	if in.len() > maxEmbeddingInputs {
		return in, invalid("input", "input has %d items, at most %d are allowed", in.len(), maxEmbeddingInputs)
	}
	for i, t := range in.texts {
		if t == "" {
			return in, invalid("input", "input[%d] is an empty string", i)
		}
	}
	for i, ids := range in.ids {
		if len(ids) == 0 {
			return in, invalid("input", "input[%d] is an empty token array", i)
		}
	}
	return in, nil
}

func (s *Server) handleEmbeddings(w http.ResponseWriter, r *http.Request) {
	data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.maxBody))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			writeError(w, withCode(&apiError{Status: http.StatusRequestEntityTooLarge, Type: "invalid_request_error", Message: "request body is larger than " + strconv.FormatInt(s.maxBody, 10) + " bytes"}, "request_too_large"))
			return
		}
		writeError(w, invalid("", "read request body: %v", err))
		return
	}
	var body embeddingsRequest
	if err := json.Unmarshal(data, &body); err != nil {
		writeError(w, withCode(invalid("", "request body is not valid JSON for this route: %v", err), "invalid_json"))
		return
	}
	in, aerr := parseEmbedInput(body.Input)
	if aerr != nil {
		writeError(w, aerr)
		return
	}
	switch body.EncodingFormat {
	case "", "float", "base64":
	default:
		writeError(w, invalid("encoding_format", "encoding_format must be float or base64"))
		return
	}
	if d := body.Dimensions; d != nil && *d != s.embedder.Dim() {
		writeError(w, invalid("dimensions", "dimensions must be %d, this model's size (it does not shorten its vectors)", s.embedder.Dim()))
		return
	}
	for i, ids := range in.ids {
		if len(ids) > s.embedder.MaxLength() {
			writeError(w, invalid("input", "input[%d] has %d tokens, this model takes at most %d", i, len(ids), s.embedder.MaxLength()))
			return
		}
	}
	select {
	case s.embedSlots <- struct{}{}:
		defer func() { <-s.embedSlots }()
	default:
		w.Header().Set("Retry-After", "1")
		writeError(w, withCode(&apiError{Status: http.StatusTooManyRequests, Type: "rate_limit_error", Message: "the server is at capacity: too many embedding requests are waiting; retry later"}, "queue_full"))
		return
	}
	var vecs [][]float32
	var st encoder.Stats
	if in.texts != nil {
		vecs, st, err = s.embedder.Embed(r.Context(), in.texts)
	} else {
		vecs, err = s.embedder.EmbedIDs(r.Context(), in.ids)
		for _, ids := range in.ids {
			st.Tokens += len(ids)
		}
	}
	if err != nil {
		if r.Context().Err() != nil {
			return // the client is gone
		}
		if in.ids != nil {
			// EmbedIDs refuses only ids outside the vocabulary here.
			writeError(w, withCode(invalid("input", "%v", err), "invalid_tokens"))
			return
		}
		s.logger.Error("embedding failed", "path", r.URL.Path, "err", err)
		writeError(w, &apiError{Status: http.StatusInternalServerError, Type: "server_error", Message: "embedding failed"})
		return
	}
	s.embedMetrics.inputs.Add(float64(in.len()))
	s.embedMetrics.tokens.Add(float64(st.Tokens))
	s.embedMetrics.truncated.Add(float64(st.Truncated))
	out := embeddingsResponse{Object: "list", Model: s.embedModel, Data: make([]embeddingOut, len(vecs)),
		Usage: embeddingsUsage{PromptTokens: st.Tokens, TotalTokens: st.Tokens}}
	for i, v := range vecs {
		out.Data[i] = embeddingOut{Object: "embedding", Index: i, Embedding: v}
		if body.EncodingFormat == "base64" {
			out.Data[i].Embedding = base64Floats(v)
		}
	}
	writeJSON(w, http.StatusOK, out)
}

// base64Floats is OpenAI's base64 encoding: the float32 values, little
// endian, in standard base64.
func base64Floats(v []float32) string {
	b := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(x))
	}
	return base64.StdEncoding.EncodeToString(b)
}
