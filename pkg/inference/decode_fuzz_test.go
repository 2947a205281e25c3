package inference

import (
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tributary-rag/tributary/pkg/llm"
)

// FuzzDecodeJob feeds arbitrary bodies to the request decoder of both
// generation routes: it must never panic, and must either refuse with a
// 4xx OpenAI error or produce a request the engine can take.
func FuzzDecodeJob(f *testing.F) {
	m, err := llm.Load(filepath.Join("..", "..", "models", "stories260K.gguf"))
	if err != nil {
		f.Fatal(err)
	}
	defer m.Close()
	tok := m.Tokenizer()
	srv, err := New(llm.NewEngine(m), tok, WithMaxTokens(100), WithMaxBodyBytes(1<<16))
	if err != nil {
		f.Fatal(err)
	}
	for _, s := range []string{
		`{"prompt":"Once","max_tokens":5,"stop":["\n","x"],"seed":-1}`,
		`{"messages":[{"role":"user","content":[{"type":"text","text":"hi"}]}],"temperature":0.5,"top_p":1}`,
		`{"prompt":[1,2,3],"n":1,"stream":true,"stream_options":{"include_usage":true}}`,
		`{"messages":[{"role":"system","content":"s"},{"role":"assistant","content":"</s>"}],"max_completion_tokens":100}`,
		`{"prompt":["x"],"repeat_penalty":1.1,"repeat_last_n":-1,"min_p":0.1,"top_k":3}`,
		`[]`, `null`, `{"prompt":null}`, `{"stop":{}}`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body string) {
		for _, chat := range []bool{false, true} {
			r := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(body))
			j, aerr := srv.decodeJob(httptest.NewRecorder(), r, chat)
			if aerr != nil {
				if aerr.Status < 400 || aerr.Status > 499 || aerr.Message == "" || aerr.Type == "" {
					t.Fatalf("decodeJob(%q) error %+v", body, aerr)
				}
				continue
			}
			if len(j.req.Prompt) == 0 || j.req.MaxTokens < 1 || j.req.MaxTokens > 100 {
				t.Fatalf("decodeJob(%q) = %+v", body, j.req)
			}
			for _, id := range j.req.Prompt {
				if id < 0 || int(id) >= tok.VocabSize() {
					t.Fatalf("decodeJob(%q) prompt id %d", body, id)
				}
			}
			s := j.req.Sampling
			if s.Temperature < 0 || s.Temperature > 2 || s.TopP < 0 || s.TopP > 1 || s.MinP < 0 || s.MinP > 1 || s.TopK < 0 {
				t.Fatalf("decodeJob(%q) sampling %+v", body, s)
			}
		}
	})
}
