package inference

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/tributary-rag/tributary/pkg/llm"
)

// The benchmarks compare one 16-token greedy completion on stories260K
// through the HTTP API (JSON and SSE) with the same call on the engine
// directly; the difference is the server's overhead per request.

const benchPrompt = "Once upon a time"

func BenchmarkGenerateDirect(b *testing.B) {
	env := newEnv(b, true, nil)
	tok := env.srv.tok
	req := llm.Request{Prompt: tok.Encode(benchPrompt, true), MaxTokens: 16}
	for b.Loop() {
		if _, err := env.engine.Generate(context.Background(), req, func(llm.Token) error { return nil }); err != nil {
			b.Fatal(err)
		}
	}
}

func benchHTTP(b *testing.B, stream bool) {
	env := newEnv(b, true, nil)
	body := `{"prompt":"` + benchPrompt + `","max_tokens":16,"temperature":0`
	if stream {
		body += `,"stream":true`
	}
	body += "}"
	for b.Loop() {
		resp, err := http.Post(env.http.URL+"/v1/completions", "application/json", strings.NewReader(body))
		if err != nil {
			b.Fatal(err)
		}
		_, err = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != 200 {
			b.Fatalf("status %d, err %v", resp.StatusCode, err)
		}
	}
}

func BenchmarkCompletionJSON(b *testing.B) { benchHTTP(b, false) }
func BenchmarkCompletionSSE(b *testing.B)  { benchHTTP(b, true) }
