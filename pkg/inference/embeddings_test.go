package inference

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"

	"github.com/tributary-rag/tributary/pkg/encoder"
)

// synthEncoder loads a tiny random BERT (2 layers, hidden 32, 64
// positions) written by encoder.Synthetic.
func synthEncoder(t testing.TB) *encoder.Encoder {
	t.Helper()
	dir := t.TempDir()
	s := encoder.Synthetic{
		Config: encoder.Config{Hidden: 32, Layers: 2, Heads: 4, Intermediate: 64, MaxPositions: 64},
		Vocab:  []string{"employees", "accrue", "days", "of", "paid", "leave", "per", "month", ".", "how", "much", "?"},
		Seed:   5,
	}
	if err := s.Write(dir); err != nil {
		t.Fatal(err)
	}
	enc, err := encoder.Load(dir, encoder.Options{Threads: 1, Normalize: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(enc.Close)
	return enc
}

// embedServer serves an embeddings-only Server over real HTTP.
func embedServer(t testing.TB, enc Embedder, opts ...Option) *httptest.Server {
	t.Helper()
	srv, err := New(nil, nil, append([]Option{WithEmbedder(enc, "synth-minilm", 0)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(ts.Close)
	return ts
}

// TestEmbeddingsOpenAIClient drives /v1/embeddings with the official
// OpenAI Go client, float and base64: both decode to the encoder's own
// vectors, in input order.
func TestEmbeddingsOpenAIClient(t *testing.T) {
	enc := synthEncoder(t)
	ts := embedServer(t, enc, WithAPIKeys("sk-test"))
	texts := []string{"how much paid leave ?", "employees accrue days of leave per month .", "month"}
	want, _, err := enc.Embed(context.Background(), texts)
	if err != nil {
		t.Fatal(err)
	}
	client := openai.NewClient(option.WithBaseURL(ts.URL+"/v1/"), option.WithAPIKey("sk-test"), option.WithMaxRetries(0))
	for _, format := range []openai.EmbeddingNewParamsEncodingFormat{openai.EmbeddingNewParamsEncodingFormatFloat, openai.EmbeddingNewParamsEncodingFormatBase64} {
		resp, err := client.Embeddings.New(context.Background(), openai.EmbeddingNewParams{
			Input:          openai.EmbeddingNewParamsInputUnion{OfArrayOfStrings: texts},
			Model:          "synth-minilm",
			EncodingFormat: format,
		})
		if err != nil {
			t.Fatalf("%s: %v", format, err)
		}
		if resp.Model != "synth-minilm" || len(resp.Data) != len(texts) || resp.Usage.PromptTokens <= 0 || resp.Usage.TotalTokens != resp.Usage.PromptTokens {
			t.Fatalf("%s: response model %q, %d vectors, usage %+v", format, resp.Model, len(resp.Data), resp.Usage)
		}
		for i, d := range resp.Data {
			if d.Index != int64(i) || len(d.Embedding) != enc.Dim() {
				t.Fatalf("%s: data[%d] index %d, %d dims, want %d", format, i, d.Index, len(d.Embedding), enc.Dim())
			}
			for j, x := range d.Embedding {
				if float32(x) != want[i][j] {
					t.Fatalf("%s: data[%d][%d] = %v, want %v", format, i, j, x, want[i][j])
				}
			}
		}
	}
	// One string, and the dimensions the model has.
	resp, err := client.Embeddings.New(context.Background(), openai.EmbeddingNewParams{
		Input: openai.EmbeddingNewParamsInputUnion{OfString: openai.String("month")},
		Model: "synth-minilm", Dimensions: openai.Int(int64(enc.Dim())),
	})
	if err != nil || len(resp.Data) != 1 || float32(resp.Data[0].Embedding[0]) != want[2][0] {
		t.Fatalf("single input: %v %+v", err, resp)
	}
	// A wrong key is refused with 401.
	bad := openai.NewClient(option.WithBaseURL(ts.URL+"/v1/"), option.WithAPIKey("sk-wrong"), option.WithMaxRetries(0))
	_, err = bad.Embeddings.New(context.Background(), openai.EmbeddingNewParams{Input: openai.EmbeddingNewParamsInputUnion{OfString: openai.String("x")}, Model: "synth-minilm"})
	var apiErr *openai.Error
	if !errors.As(err, &apiErr) || apiErr.StatusCode != http.StatusUnauthorized {
		t.Fatalf("wrong key: %v, want 401", err)
	}
}

func TestEmbeddingsErrors(t *testing.T) {
	enc := synthEncoder(t)
	ts := embedServer(t, enc, WithMaxBodyBytes(512))
	tests := []struct {
		name, body string
		status     int
		param      string
	}{
		{"not json", `{`, 400, ""},
		{"no input", `{"model":"m"}`, 400, "input"},
		{"empty string", `{"input":""}`, 400, "input"},
		{"empty array", `{"input":[]}`, 400, "input"},
		{"wrong type", `{"input":{"a":1}}`, 400, "input"},
		{"bad format", `{"input":"x","encoding_format":"int8"}`, 400, "encoding_format"},
		{"bad dimensions", `{"input":"x","dimensions":8}`, 400, "dimensions"},
		{"token out of vocabulary", `{"input":[[2,99999,3]]}`, 400, "input"},
		{"too many tokens", `{"input":[` + strings.Repeat("5,", 80) + `5]}`, 400, "input"},
		{"too large", `{"input":"` + strings.Repeat("a", 600) + `"}`, 413, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := http.Post(ts.URL+"/v1/embeddings", "application/json", strings.NewReader(tt.body))
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var e struct {
				Error apiError `json:"error"`
			}
			if err := json.NewDecoder(resp.Body).Decode(&e); err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != tt.status || e.Error.Message == "" {
				t.Fatalf("POST %s = %d %+v, want %d", tt.body, resp.StatusCode, e.Error, tt.status)
			}
			if tt.param != "" && (e.Error.Param == nil || *e.Error.Param != tt.param) {
				t.Fatalf("POST %s: param %v, want %q", tt.body, e.Error.Param, tt.param)
			}
		})
	}
	// Token ids embed as given; no generation routes without an engine.
	resp, err := http.Post(ts.URL+"/v1/embeddings", "application/json", strings.NewReader(`{"input":[2,5,6,3]}`))
	if err != nil {
		t.Fatal(err)
	}
	var out embeddingsResponse
	err = json.NewDecoder(resp.Body).Decode(&out)
	resp.Body.Close()
	if err != nil || resp.StatusCode != 200 || len(out.Data) != 1 || out.Usage.PromptTokens != 4 {
		t.Fatalf("token input: %d %v %+v", resp.StatusCode, err, out)
	}
	want, err := enc.EmbedIDs(context.Background(), [][]int32{{2, 5, 6, 3}})
	if err != nil {
		t.Fatal(err)
	}
	got := out.Data[0].Embedding.([]any)
	if math.Abs(got[0].(float64)-float64(want[0][0])) > 1e-6 {
		t.Fatalf("token input embeds to %v, want %v", got[0], want[0][0])
	}
	resp, err = http.Post(ts.URL+"/v1/completions", "application/json", strings.NewReader(`{"prompt":"x"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Fatalf("completions on an embeddings-only server = %d, want 404", resp.StatusCode)
	}
}

// blockingEmbedder holds every call until release closes.
type blockingEmbedder struct {
	Embedder
	entered chan struct{}
	release chan struct{}
}

func (b blockingEmbedder) Embed(ctx context.Context, texts []string) ([][]float32, encoder.Stats, error) {
	b.entered <- struct{}{}
	<-b.release
	return b.Embedder.Embed(ctx, texts)
}

// TestEmbeddingsQueueFull: with one slot taken, the next request gets 429
// with Retry-After.
func TestEmbeddingsQueueFull(t *testing.T) {
	b := blockingEmbedder{Embedder: synthEncoder(t), entered: make(chan struct{}, 1), release: make(chan struct{})}
	srv, err := New(nil, nil, WithEmbedder(b, "synth", 1))
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv.Handler())
	defer ts.Close()
	first := make(chan int, 1)
	go func() {
		resp, err := http.Post(ts.URL+"/v1/embeddings", "application/json", strings.NewReader(`{"input":"month"}`))
		if err != nil {
			first <- 0
			return
		}
		resp.Body.Close()
		first <- resp.StatusCode
	}()
	<-b.entered
	resp, err := http.Post(ts.URL+"/v1/embeddings", "application/json", strings.NewReader(`{"input":"month"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	close(b.release)
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("second request = %d (Retry-After %q), want 429", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	if code := <-first; code != http.StatusOK {
		t.Fatalf("first request = %d, want 200", code)
	}
}

func TestNewNeedsEngineOrEmbedder(t *testing.T) {
	if _, err := New(nil, nil); err == nil {
		t.Fatal("New(nil, nil) = nil error, want one")
	}
}

// FuzzEmbeddingsInput: no input shape makes the parser panic, and what it
// accepts is never empty nor over the limit.
func FuzzEmbeddingsInput(f *testing.F) {
	for _, s := range []string{`"x"`, `["a","b"]`, `[1,2,3]`, `[[1],[2,3]]`, `[]`, `[""]`, `[[]]`, `null`, `{"a":1}`, `[1,"a"]`, `[-1]`, `[[99999999999]]`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		in, aerr := parseEmbedInput(raw)
		if aerr != nil {
			if aerr.Status != http.StatusBadRequest || aerr.Message == "" {
				t.Fatalf("parseEmbedInput(%q) error %+v", raw, aerr)
			}
			return
		}
		if n := in.len(); n == 0 || n > maxEmbeddingInputs || (in.texts != nil) == (in.ids != nil) {
			t.Fatalf("parseEmbedInput(%q) = %d texts, %d id arrays", raw, len(in.texts), len(in.ids))
		}
	})
}
