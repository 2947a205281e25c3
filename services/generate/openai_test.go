package generate

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tributary-rag/tributary/pkg/events"
	"github.com/tributary-rag/tributary/pkg/eventually"
	"github.com/tributary-rag/tributary/pkg/inference"
	"github.com/tributary-rag/tributary/pkg/llm"
)

// modelPath is the toy model committed in the repository.
var modelPath = filepath.Join("..", "..", "models", "stories260K.gguf")

// realServer is pkg/inference over the native engine on stories260K, in
// httptest, with the engine's Run loop stopped at cleanup.
type realServer struct {
	url    string
	engine *llm.Engine
	model  *llm.Model
}

func startInference(t *testing.T, opts ...inference.Option) *realServer {
	t.Helper()
	m, err := llm.Load(modelPath)
	if err != nil {
		t.Fatalf("load %s: %v", modelPath, err)
	}
	engine := llm.NewEngine(m, llm.WithContextSize(1024))
	tok := m.Tokenizer()
	opts = append([]inference.Option{inference.WithModelName("stories260K"),
		inference.WithChatTemplate(tok.ChatTemplate(m.ChatTemplate(), m.Config().Arch))}, opts...)
	srv, err := inference.New(engine, tok, opts...)
	if err != nil {
		t.Fatalf("inference.New: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		_ = engine.Run(ctx)
	}()
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(func() {
		hs.CloseClientConnections()
		hs.Close()
		cancel()
		wg.Wait()
		_ = m.Close()
	})
	return &realServer{url: hs.URL, engine: engine, model: m}
}

func storyPrompt() Prompt {
	return BuildPrompt("Who is Lily?", []events.RetrievedChunk{
		chunk(0, "Story", "Lily is a little girl who loves to play in the park.", 1),
	}, PromptOptions{})
}

func TestOpenAIAgainstInferenceServer(t *testing.T) {
	srv := startInference(t)
	for _, base := range []string{srv.url, srv.url + "/", srv.url + "/v1/", srv.url + "/v1"} {
		g, err := NewOpenAI(OpenAIConfig{BaseURL: base})
		if err != nil {
			t.Fatalf("NewOpenAI(%q): %v", base, err)
		}
		if g.endpoint != srv.url+"/v1/chat/completions" {
			t.Errorf("NewOpenAI(%q).endpoint = %q", base, g.endpoint)
		}
	}
	g, err := NewOpenAI(OpenAIConfig{BaseURL: srv.url})
	if err != nil {
		t.Fatal(err)
	}
	req := Request{Prompt: storyPrompt(), MaxTokens: 24, Temperature: 0, Seed: 7}
	text, pieces, gen := collect(t, g, req)
	if len(pieces) == 0 || text == "" {
		t.Fatalf("no tokens streamed")
	}
	// The model id comes from the server's /v1/models.
	if gen.Model != "stories260K" || gen.CompletionTokens != 24 || gen.PromptTokens == 0 || gen.FinishReason != FinishLength {
		t.Errorf("generation = %+v, want model stories260K, 24 completion tokens, prompt tokens, finish length", gen)
	}
	// Greedy: the same request streams the same text again.
	if again, _, _ := collect(t, g, req); again != text {
		t.Errorf("greedy answers differ: %q vs %q", text, again)
	}
}

func TestOpenAICancel(t *testing.T) {
	srv := startInference(t)
	g, err := NewOpenAI(OpenAIConfig{BaseURL: srv.url, Model: "stories260K"})
	if err != nil {
		t.Fatal(err)
	}
	t.Run("context", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		n := 0
		gen, err := g.Generate(ctx, Request{Prompt: storyPrompt(), MaxTokens: 900}, func(string) error {
			n++
			if n == 3 {
				cancel()
			}
			return nil
		})
		if !errors.Is(err, context.Canceled) || gen.FinishReason != FinishCancelled {
			t.Errorf("Generate = %+v, %v; want cancelled and context.Canceled", gen, err)
		}
		if n >= 900 {
			t.Errorf("%d tokens after cancel, want generation to stop", n)
		}
	})
	t.Run("callback error", func(t *testing.T) {
		stop := errors.New("stop here")
		gen, err := g.Generate(context.Background(), Request{Prompt: storyPrompt(), MaxTokens: 900}, func(string) error { return stop })
		if !errors.Is(err, stop) || gen.FinishReason != FinishCancelled {
			t.Errorf("Generate = %+v, %v; want cancelled and the callback's error", gen, err)
		}
	})
	eventually.NoError(t, "the engine to drop the sequences of clients that went away", 10*time.Second, func() error {
		if n := srv.engine.Stats().Active; n != 0 {
			return fmt.Errorf("%d active sequences", n)
		}
		return nil
	})
}

func TestOpenAIErrorStatus(t *testing.T) {
	srv := startInference(t)
	tests := []struct {
		name        string
		base        string
		req         Request
		wantStatus  int
		wantType    string
		wantInMsg   string
		unavailable bool
	}{
		{
			name: "invalid temperature is a 400 with the server's message",
			base: srv.url, req: Request{Prompt: storyPrompt(), Temperature: 7, MaxTokens: 4},
			wantStatus: 400, wantType: "invalid_request_error", wantInMsg: "temperature",
		},
		{
			name: "max_tokens over the limit", base: srv.url,
			req:        Request{Prompt: storyPrompt(), MaxTokens: 1 << 20},
			wantStatus: 400, wantType: "invalid_request_error", wantInMsg: "max_tokens",
		},
		{
			name: "unknown path is a 404", base: srv.url + "/nope",
			req:        Request{Prompt: storyPrompt(), MaxTokens: 4},
			wantStatus: 404, wantType: "invalid_request_error", wantInMsg: "no route",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g, err := NewOpenAI(OpenAIConfig{BaseURL: tt.base, Model: "stories260K"})
			if err != nil {
				t.Fatal(err)
			}
			_, err = g.Generate(context.Background(), tt.req, func(string) error { return nil })
			var ae *APIError
			if !errors.As(err, &ae) {
				t.Fatalf("err = %v, want *APIError", err)
			}
			if ae.StatusCode != tt.wantStatus || ae.Type != tt.wantType || !strings.Contains(ae.Message, tt.wantInMsg) {
				t.Errorf("APIError = %+v, want status %d type %q message with %q", ae, tt.wantStatus, tt.wantType, tt.wantInMsg)
			}
			if errors.Is(err, ErrBackendUnavailable) != tt.unavailable {
				t.Errorf("errors.Is(err, ErrBackendUnavailable) = %v, want %v", !tt.unavailable, tt.unavailable)
			}
		})
	}
}

// TestOpenAIHostileServers drives the client against servers that
// misbehave in the ways real ones do.
func TestOpenAIHostileServers(t *testing.T) {
	tests := []struct {
		name    string
		handler http.HandlerFunc
		idle    time.Duration
		check   func(t *testing.T, text string, gen Generation, err error)
	}{
		{
			name: "503 with openai error body",
			handler: func(w http.ResponseWriter, _ *http.Request) {
				w.WriteHeader(503)
				_, _ = io.WriteString(w, `{"error":{"message":"engine stopping","type":"server_error","code":"unavailable"}}`)
			},
			check: func(t *testing.T, _ string, gen Generation, err error) {
				var ae *APIError
				if !errors.As(err, &ae) || ae.StatusCode != 503 || ae.Code != "unavailable" || !errors.Is(err, ErrBackendUnavailable) {
					t.Errorf("err = %v, want a 503 APIError matching ErrBackendUnavailable", err)
				}
				if gen.FinishReason != FinishError {
					t.Errorf("finish = %q, want error", gen.FinishReason)
				}
			},
		},
		{
			name: "429 with plain text body",
			handler: func(w http.ResponseWriter, _ *http.Request) {
				w.WriteHeader(429)
				_, _ = io.WriteString(w, "slow down\n")
			},
			check: func(t *testing.T, _ string, _ Generation, err error) {
				var ae *APIError
				if !errors.As(err, &ae) || ae.StatusCode != 429 || ae.Message != "slow down" || !errors.Is(err, ErrBackendUnavailable) {
					t.Errorf("err = %v, want a 429 APIError with the body as message", err)
				}
			},
		},
		{
			name: "stream cut before done",
			handler: func(w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("Content-Type", "text/event-stream")
				_, _ = io.WriteString(w, "data: {\"choices\":[{\"delta\":{\"content\":\"Hel\"}}]}\n\ndata: {\"choices\":[{\"delta\":{\"content\":\"lo\"}}]}\n\n")
			},
			check: func(t *testing.T, text string, _ Generation, err error) {
				if text != "Hello" || !errors.Is(err, ErrBackendUnavailable) {
					t.Errorf("text %q, err %v; want Hello and a stream-ended error", text, err)
				}
			},
		},
		{
			name: "crlf, comments, multi-line data, no done after finish",
			handler: func(w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("Content-Type", "text/event-stream")
				_, _ = io.WriteString(w, ": keep-alive\r\n\r\nevent: chunk\r\nid: 1\r\ndata: {\"model\":\"m2\",\"choices\":\r\ndata: [{\"delta\":{\"content\":\"A\"}}]}\r\n\r\n"+
					"data:{\"choices\":[{\"delta\":{\"content\":\"B\"},\"finish_reason\":\"length\"}],\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":2}}\r\n")
			},
			check: func(t *testing.T, text string, gen Generation, err error) {
				if err != nil || text != "AB" || gen.Model != "m2" || gen.FinishReason != FinishLength || gen.PromptTokens != 3 || gen.CompletionTokens != 2 {
					t.Errorf("text %q, gen %+v, err %v", text, gen, err)
				}
			},
		},
		{
			name: "error event mid-stream",
			handler: func(w http.ResponseWriter, _ *http.Request) {
				_, _ = io.WriteString(w, "data: {\"choices\":[{\"delta\":{\"content\":\"x\"}}]}\n\ndata: {\"error\":{\"message\":\"kv cache full\",\"type\":\"server_error\"}}\n\n")
			},
			check: func(t *testing.T, text string, gen Generation, err error) {
				var ae *APIError
				if text != "x" || !errors.As(err, &ae) || ae.Message != "kv cache full" || gen.FinishReason != FinishError {
					t.Errorf("text %q, gen %+v, err %v", text, gen, err)
				}
			},
		},
		{
			name: "garbage json",
			handler: func(w http.ResponseWriter, _ *http.Request) {
				_, _ = io.WriteString(w, "data: {not json\n\n")
			},
			check: func(t *testing.T, _ string, _ Generation, err error) {
				if err == nil || !strings.Contains(err.Error(), "invalid event") {
					t.Errorf("err = %v, want an invalid event error", err)
				}
			},
		},
		{
			name: "stalled server hits the idle timeout",
			idle: 200 * time.Millisecond,
			handler: func(w http.ResponseWriter, r *http.Request) {
				_, _ = io.WriteString(w, "data: {\"choices\":[{\"delta\":{\"content\":\"x\"}}]}\n\n")
				w.(http.Flusher).Flush()
				<-r.Context().Done()
			},
			check: func(t *testing.T, _ string, gen Generation, err error) {
				if !errors.Is(err, ErrBackendUnavailable) || !strings.Contains(err.Error(), "no stream event") || gen.FinishReason != FinishError {
					t.Errorf("gen %+v, err %v; want an idle timeout", gen, err)
				}
			},
		},
		{
			name: "huge line",
			handler: func(w http.ResponseWriter, _ *http.Request) {
				_, _ = io.WriteString(w, "data: "+strings.Repeat("x", maxSSELine+10)+"\n\n")
			},
			check: func(t *testing.T, _ string, _ Generation, err error) {
				if !errors.Is(err, errSSETooLong) {
					t.Errorf("err = %v, want errSSETooLong", err)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hs := httptest.NewServer(tt.handler)
			defer hs.Close()
			g, err := NewOpenAI(OpenAIConfig{BaseURL: hs.URL, Model: "m", IdleTimeout: tt.idle})
			if err != nil {
				t.Fatal(err)
			}
			var b strings.Builder
			gen, err := g.Generate(context.Background(), Request{Prompt: storyPrompt()}, func(s string) error {
				b.WriteString(s)
				return nil
			})
			tt.check(t, b.String(), gen, err)
		})
	}
}

func TestOpenAIUnreachable(t *testing.T) {
	hs := httptest.NewServer(http.NotFoundHandler())
	url := hs.URL
	hs.Close()
	g, err := NewOpenAI(OpenAIConfig{BaseURL: url, Model: "m", ConnectTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := g.Generate(context.Background(), Request{Prompt: storyPrompt()}, func(string) error { return nil }); !errors.Is(err, ErrBackendUnavailable) {
		t.Errorf("err = %v, want ErrBackendUnavailable", err)
	}
	g, err = NewOpenAI(OpenAIConfig{BaseURL: "http://user:s3cret@" + strings.TrimPrefix(url, "http://"), Model: "m"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := g.Generate(context.Background(), Request{Prompt: storyPrompt()}, func(string) error { return nil }); err == nil || strings.Contains(err.Error(), "s3cret") {
		t.Errorf("err = %v, want an error without the URL's password", err)
	}
	for _, bad := range []string{"", "ftp://x", "localhost:8080", "http://"} {
		if _, err := NewOpenAI(OpenAIConfig{BaseURL: bad}); err == nil {
			t.Errorf("NewOpenAI(%q): no error", bad)
		}
	}
}

// FuzzReadChatStream feeds arbitrary bytes to the stream parser: it must
// never panic, and the text it streams must be what it reports.
func FuzzReadChatStream(f *testing.F) {
	seeds, _ := filepath.Glob(filepath.Join("testdata", "sse", "*.txt"))
	for _, s := range seeds {
		b, err := os.ReadFile(s)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte("data: [DONE]\n\n"))
	f.Add([]byte("data: {\"choices\":[{\"delta\":{\"content\":\"hi\"},\"finish_reason\":\"stop\"}]}\r\r"))
	f.Fuzz(func(t *testing.T, data []byte) {
		var n int
		gen, err := readChatStream(strings.NewReader(string(data)), func() {}, func(s string) error {
			if s == "" {
				return fmt.Errorf("empty token")
			}
			n++
			return nil
		})
		if err == nil && gen.FinishReason == "" {
			t.Fatalf("no error and no finish reason for %q", data)
		}
		if gen.CompletionTokens < 0 || n < 0 {
			t.Fatalf("negative counts")
		}
	})
}
