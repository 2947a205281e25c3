package inference

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/tributary-rag/tributary/pkg/llm"
	"github.com/tributary-rag/tributary/pkg/tokenizer"
)

// testEnv is a server over the real engine on models/stories260K.gguf.
type testEnv struct {
	srv    *Server
	engine *llm.Engine
	http   *httptest.Server
	run    func() // starts the engine's Run loop (once)
}

func newEnv(t testing.TB, startEngine bool, engineOpts []llm.EngineOption, opts ...Option) *testEnv {
	t.Helper()
	m, err := llm.Load(filepath.Join("..", "..", "models", "stories260K.gguf"))
	if err != nil {
		t.Fatalf("load stories260K: %v", err)
	}
	engine := llm.NewEngine(m, engineOpts...)
	tok := m.Tokenizer()
	opts = append([]Option{WithModelName("stories260K"), WithChatTemplate(tok.ChatTemplate(m.ChatTemplate(), m.Config().Arch))}, opts...)
	srv, err := New(engine, tok, opts...)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var once sync.Once
	env := &testEnv{srv: srv, engine: engine, http: httptest.NewServer(srv.Handler())}
	env.run = func() {
		once.Do(func() {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_ = engine.Run(ctx)
			}()
		})
	}
	t.Cleanup(func() {
		env.http.CloseClientConnections()
		env.http.Close()
		cancel()
		wg.Wait()
		if err := m.Close(); err != nil {
			t.Errorf("close model: %v", err)
		}
	})
	if startEngine {
		env.run()
	}
	return env
}

func (e *testEnv) post(t *testing.T, path, body string) (int, []byte) {
	t.Helper()
	resp, err := http.Post(e.http.URL+path, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatalf("POST %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read %s: %v", path, err)
	}
	return resp.StatusCode, b
}

func reference(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "stories260K_reference.txt"))
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSuffix(string(b), "\n")
}

type completionBody struct {
	Object  string `json:"object"`
	Model   string `json:"model"`
	Choices []struct {
		Text    string `json:"text"`
		Message *struct {
			Role    string `json:"role"`
			Content string `json:"content"`
		} `json:"message"`
		Delta *struct {
			Role    string `json:"role"`
			Content string `json:"content"`
		} `json:"delta"`
		FinishReason *string `json:"finish_reason"`
	} `json:"choices"`
	Usage *usage `json:"usage"`
}

func (c completionBody) text() string {
	var b strings.Builder
	for _, ch := range c.Choices {
		b.WriteString(ch.Text)
		if ch.Message != nil {
			b.WriteString(ch.Message.Content)
		}
		if ch.Delta != nil {
			b.WriteString(ch.Delta.Content)
		}
	}
	return b.String()
}

// TestCompletionReference asks the server for llama2.c's reference run:
// greedy from BOS for 200 steps: llama2.c forwards 200 positions (BOS
// first) and prints the token sampled at each, 200 in all.
func TestCompletionReference(t *testing.T) {
	env := newEnv(t, true, nil)
	code, body := env.post(t, "/v1/completions", `{"model":"stories260K","prompt":"","max_tokens":200,"temperature":0}`)
	if code != http.StatusOK {
		t.Fatalf("status %d: %s", code, body)
	}
	var got completionBody
	if err := json.Unmarshal(body, &got); err != nil {
		t.Fatalf("decode %s: %v", body, err)
	}
	if got.Object != "text_completion" || got.Model != "stories260K" || len(got.Choices) != 1 {
		t.Fatalf("response = %s", body)
	}
	if want := reference(t); got.Choices[0].Text != want {
		t.Errorf("text = %q, want %q", got.Choices[0].Text, want)
	}
	if r := got.Choices[0].FinishReason; r == nil || *r != "length" {
		t.Errorf("finish_reason = %v, want length", r)
	}
	if u := got.Usage; u == nil || *u != (usage{PromptTokens: 1, CompletionTokens: 200, TotalTokens: 201}) {
		t.Errorf("usage = %+v, want 1 + 200 = 201", u)
	}
}

// readSSE reads a server-sent event stream and returns its data payloads.
func readSSE(t *testing.T, r io.Reader) []string {
	t.Helper()
	var events []string
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" {
			continue
		}
		data, ok := strings.CutPrefix(line, "data: ")
		if !ok {
			t.Fatalf("stream line %q is not a data line", line)
		}
		events = append(events, data)
	}
	if err := sc.Err(); err != nil {
		t.Fatalf("read stream: %v", err)
	}
	return events
}

// TestStreamMatchesJSON checks that for greedy decoding the streamed deltas
// add up to the non-streamed text, on both routes, and that the stream
// ends with a finish chunk, a usage chunk and [DONE].
func TestStreamMatchesJSON(t *testing.T) {
	env := newEnv(t, true, nil)
	tests := []struct {
		name, path, body string
	}{
		{"completions", "/v1/completions", `{"prompt":"Once upon a time","max_tokens":60,"temperature":0,"stop":["\n"]`},
		{"chat", "/v1/chat/completions", `{"messages":[{"role":"system","content":"Tell stories."},{"role":"user","content":"Lily and the ball"}],"max_tokens":40,"temperature":0,"user":"u1","logprobs":null,"tools":[],"frequency_penalty":0,"response_format":{"type":"text"},"n":1`},
		{"chat parts", "/v1/chat/completions", `{"messages":[{"role":"user","content":[{"type":"text","text":"Tim "},{"type":"text","text":"ran"}]}],"max_tokens":30,"temperature":0.7,"seed":7,"top_k":40,"top_p":0.9,"min_p":0.05,"repetition_penalty":1.1`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, body := env.post(t, tt.path, tt.body+"}")
			if code != http.StatusOK {
				t.Fatalf("status %d: %s", code, body)
			}
			var whole completionBody
			if err := json.Unmarshal(body, &whole); err != nil {
				t.Fatal(err)
			}
			if whole.text() == "" || whole.Usage == nil || whole.Usage.CompletionTokens == 0 {
				t.Fatalf("empty completion: %s", body)
			}

			resp, err := http.Post(env.http.URL+tt.path, "application/json", strings.NewReader(tt.body+`,"stream":true,"stream_options":{"include_usage":true}}`))
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if ct := resp.Header.Get("Content-Type"); resp.StatusCode != http.StatusOK || ct != "text/event-stream" {
				t.Fatalf("stream status %d, content type %q", resp.StatusCode, ct)
			}
			events := readSSE(t, resp.Body)
			if len(events) < 4 || events[len(events)-1] != "[DONE]" {
				t.Fatalf("events = %q, want chunks ending with [DONE]", events)
			}
			var text strings.Builder
			var finish *string
			var u *usage
			for _, ev := range events[:len(events)-1] {
				var c completionBody
				if err := json.Unmarshal([]byte(ev), &c); err != nil {
					t.Fatalf("chunk %q: %v", ev, err)
				}
				wantObj := "text_completion"
				if strings.Contains(tt.path, "chat") {
					wantObj = "chat.completion.chunk"
				}
				if c.Object != wantObj {
					t.Errorf("chunk object %q, want %q", c.Object, wantObj)
				}
				text.WriteString(c.text())
				for _, ch := range c.Choices {
					if ch.FinishReason != nil {
						finish = ch.FinishReason
					}
				}
				if c.Usage != nil {
					u = c.Usage
				}
			}
			if text.String() != whole.text() {
				t.Errorf("streamed text = %q, want %q", text.String(), whole.text())
			}
			if finish == nil || *finish != *whole.Choices[0].FinishReason {
				t.Errorf("stream finish_reason = %v, want %q", finish, *whole.Choices[0].FinishReason)
			}
			if u == nil || *u != *whole.Usage {
				t.Errorf("stream usage = %+v, want %+v", u, whole.Usage)
			}
		})
	}
}

func TestStopSequence(t *testing.T) {
	env := newEnv(t, true, nil)
	full := reference(t)
	code, body := env.post(t, "/v1/completions", `{"prompt":"","max_tokens":200,"temperature":0,"stop":"park"}`)
	if code != http.StatusOK {
		t.Fatalf("status %d: %s", code, body)
	}
	var got completionBody
	if err := json.Unmarshal(body, &got); err != nil {
		t.Fatal(err)
	}
	want := full[:strings.Index(full, "park")]
	if got.text() != want || *got.Choices[0].FinishReason != "stop" {
		t.Errorf("text = %q (%s), want %q (stop)", got.text(), *got.Choices[0].FinishReason, want)
	}
}

func TestSeedReproducible(t *testing.T) {
	env := newEnv(t, true, nil)
	const req = `{"prompt":"Once upon a time","max_tokens":40,"temperature":1,"seed":1234}`
	_, a := env.post(t, "/v1/completions", req)
	_, b := env.post(t, "/v1/completions", req)
	var ca, cb completionBody
	if err := json.Unmarshal(a, &ca); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &cb); err != nil {
		t.Fatal(err)
	}
	if ca.text() == "" || ca.text() != cb.text() {
		t.Errorf("same seed gave %q and %q", ca.text(), cb.text())
	}
}

type errorBody struct {
	Error *struct {
		Message string  `json:"message"`
		Type    string  `json:"type"`
		Param   *string `json:"param"`
		Code    *string `json:"code"`
	} `json:"error"`
}

func TestInvalidRequests(t *testing.T) {
	env := newEnv(t, true, []llm.EngineOption{llm.WithContextSize(64)}, WithMaxBodyBytes(2048), WithMaxTokens(100))
	long := strings.Repeat("Once upon a time there was a dog. ", 20)
	tests := []struct {
		name, path, body string
		status           int
		param            string
	}{
		{"bad json", "/v1/completions", `{"prompt":`, 400, ""},
		{"wrong type", "/v1/completions", `{"prompt":"a","max_tokens":"ten"}`, 400, ""},
		{"no prompt", "/v1/completions", `{"max_tokens":5}`, 400, "prompt"},
		{"batch prompt", "/v1/completions", `{"prompt":["a","b"]}`, 400, "prompt"},
		{"bad token id", "/v1/completions", `{"prompt":[1,99999]}`, 400, "prompt"},
		{"max_tokens zero", "/v1/completions", `{"prompt":"a","max_tokens":0}`, 400, "max_tokens"},
		{"max_tokens too big", "/v1/completions", `{"prompt":"a","max_tokens":101}`, 400, "max_tokens"},
		{"max_completion_tokens", "/v1/chat/completions", `{"messages":[{"role":"user","content":"a"}],"max_completion_tokens":-1}`, 400, "max_completion_tokens"},
		{"temperature", "/v1/completions", `{"prompt":"a","temperature":2.5}`, 400, "temperature"},
		{"top_p", "/v1/completions", `{"prompt":"a","top_p":0}`, 400, "top_p"},
		{"min_p", "/v1/completions", `{"prompt":"a","min_p":1.5}`, 400, "min_p"},
		{"top_k", "/v1/completions", `{"prompt":"a","top_k":-1}`, 400, "top_k"},
		{"repetition_penalty", "/v1/completions", `{"prompt":"a","repetition_penalty":0}`, 400, "repetition_penalty"},
		{"n", "/v1/completions", `{"prompt":"a","n":2}`, 400, "n"},
		{"stop type", "/v1/completions", `{"prompt":"a","stop":5}`, 400, "stop"},
		{"frequency_penalty", "/v1/completions", `{"prompt":"a","frequency_penalty":0.5}`, 400, "frequency_penalty"},
		{"logprobs", "/v1/completions", `{"prompt":"a","logprobs":3}`, 400, "logprobs"},
		{"tools", "/v1/chat/completions", `{"messages":[{"role":"user","content":"a"}],"tools":[{"type":"function"}]}`, 400, "tools"},
		{"json mode", "/v1/chat/completions", `{"messages":[{"role":"user","content":"a"}],"response_format":{"type":"json_object"}}`, 400, "response_format"},
		{"no messages", "/v1/chat/completions", `{"messages":[]}`, 400, "messages"},
		{"bad role", "/v1/chat/completions", `{"messages":[{"role":"tool","content":"x"}]}`, 400, "messages[0].role"},
		{"image part", "/v1/chat/completions", `{"messages":[{"role":"user","content":[{"type":"image_url"}]}]}`, 400, "messages[0].content"},
		{"prompt beyond context", "/v1/completions", `{"prompt":"` + long + `"}`, 400, "prompt"},
		{"too large", "/v1/completions", `{"prompt":"` + strings.Repeat("x", 4096) + `"}`, 413, ""},
	}
	for _, tt := range tests {
		code, body := env.post(t, tt.path, tt.body)
		if code != tt.status {
			t.Errorf("%s: status %d, want %d (%s)", tt.name, code, tt.status, body)
			continue
		}
		var eb errorBody
		if err := json.Unmarshal(body, &eb); err != nil || eb.Error == nil || eb.Error.Message == "" || eb.Error.Type == "" {
			t.Errorf("%s: body %s is not an OpenAI error", tt.name, body)
			continue
		}
		if tt.param != "" && (eb.Error.Param == nil || *eb.Error.Param != tt.param) {
			t.Errorf("%s: param = %v, want %q", tt.name, eb.Error.Param, tt.param)
		}
	}
	for _, tt := range []struct {
		method, path string
		status       int
	}{
		{http.MethodGet, "/v1/completions", 405},
		{http.MethodPost, "/v1/models", 405},
		{http.MethodGet, "/v1/embeddings", 404},
		{http.MethodGet, "/v1/models/other", 404},
	} {
		req, _ := http.NewRequest(tt.method, env.http.URL+tt.path, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var eb errorBody
		derr := json.NewDecoder(resp.Body).Decode(&eb)
		resp.Body.Close()
		if resp.StatusCode != tt.status || derr != nil || eb.Error == nil {
			t.Errorf("%s %s: status %d (decode %v), want %d with an error body", tt.method, tt.path, resp.StatusCode, derr, tt.status)
		}
	}
}

// TestQueueFull holds the engine's scheduler so that one request waits in
// a queue of one: the next gets 429 until the scheduler runs.
func TestQueueFull(t *testing.T) {
	env := newEnv(t, false, []llm.EngineOption{llm.WithMaxBatch(1), llm.WithMaxQueue(1)})
	type result struct {
		code int
		body []byte
		err  error
	}
	first := make(chan result, 1)
	go func() {
		resp, err := http.Post(env.http.URL+"/v1/completions", "application/json", strings.NewReader(`{"prompt":"Once","max_tokens":5,"temperature":0}`))
		if err != nil {
			first <- result{err: err}
			return
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		first <- result{code: resp.StatusCode, body: b, err: err}
	}()
	waitFor(t, "the first request to queue", func() bool { return env.engine.Stats().Queued == 1 })

	for _, path := range []string{"/v1/completions", "/v1/chat/completions"} {
		body := `{"prompt":"Twice","max_tokens":5}`
		if strings.Contains(path, "chat") {
			body = `{"messages":[{"role":"user","content":"hi"}],"stream":true}`
		}
		resp, err := http.Post(env.http.URL+path, "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		var eb errorBody
		derr := json.NewDecoder(resp.Body).Decode(&eb)
		resp.Body.Close()
		if resp.StatusCode != http.StatusTooManyRequests || derr != nil || eb.Error == nil || eb.Error.Type != "rate_limit_error" {
			t.Errorf("%s with a full queue: status %d, error %+v (%v), want 429 rate_limit_error", path, resp.StatusCode, eb.Error, derr)
		}
		if resp.Header.Get("Retry-After") == "" {
			t.Errorf("%s: 429 without Retry-After", path)
		}
	}
	if got := testutil.ToFloat64(env.srv.metrics.generations.WithLabelValues("rejected_queue_full")); got != 2 {
		t.Errorf("rejected_queue_full = %v, want 2", got)
	}

	env.run()
	select {
	case r := <-first:
		if r.err != nil || r.code != http.StatusOK {
			t.Errorf("queued request: status %d, err %v, body %s", r.code, r.err, r.body)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("queued request did not finish after the scheduler started")
	}
}

// TestDisconnectCancels drops clients in the middle of their generation,
// streaming or not, and checks that the engine stops generating for them.
func TestDisconnectCancels(t *testing.T) {
	env := newEnv(t, true, nil)
	cancelled := env.srv.metrics.generations.WithLabelValues(llm.FinishCancelled)
	for i, stream := range []bool{true, false} {
		ctx, cancel := context.WithCancel(context.Background())
		// Greedy from BOS runs 2000 tokens without an end-of-sequence
		// token: seconds of work on this model.
		body := `{"prompt":"","max_tokens":2000,"temperature":0,"stream":` + map[bool]string{true: "true", false: "false"}[stream] + `}`
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, env.http.URL+"/v1/completions", strings.NewReader(body))
		respc := make(chan error, 1)
		go func() {
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				respc <- err
				return
			}
			defer resp.Body.Close()
			if stream {
				line, err := bufio.NewReader(resp.Body).ReadString('\n')
				if err == nil && !strings.HasPrefix(line, "data: {") {
					err = errors.New("first stream line " + line)
				}
				respc <- err
				<-ctx.Done()
				return
			}
			_, err = io.ReadAll(resp.Body)
			respc <- err
		}()
		if stream {
			if err := <-respc; err != nil {
				t.Fatalf("stream: %v", err)
			}
		}
		waitFor(t, "the generation to start", func() bool { return env.engine.Stats().Active == 1 })
		cancel()
		waitFor(t, "the generation to be cancelled", func() bool {
			return testutil.ToFloat64(cancelled) == float64(i+1) && env.engine.Stats().Active == 0
		})
		if !stream {
			if err := <-respc; err == nil {
				t.Errorf("non-streaming request: no error after cancel")
			}
		}
		if n := testutil.ToFloat64(env.srv.metrics.completionTokens); n >= float64(2000*(i+1)) {
			t.Errorf("stream=%v: completion tokens = %v, want fewer than 2000 per request after the disconnect", stream, n)
		}
	}
	if got := testutil.ToFloat64(env.srv.metrics.inFlight); got != 0 {
		t.Errorf("requests in flight = %v, want 0", got)
	}
}

// TestChatMLModel serves chat on the synthetic Qwen2 fixture of package
// llm (GPT-2 byte-level vocabulary, ChatML control tokens, random weights).
func TestChatMLModel(t *testing.T) {
	m, err := llm.Load(filepath.Join("..", "llm", "testdata", "qwen2_bias_f32.gguf"))
	if err != nil {
		t.Fatalf("load qwen2 fixture: %v", err)
	}
	defer m.Close()
	tok := m.Tokenizer()
	tmpl := tok.ChatTemplate(m.ChatTemplate(), m.Config().Arch)
	if tmpl.Format != tokenizer.FormatChatML || tmpl.DefaultSystem == "" {
		t.Fatalf("template = %+v, want ChatML with Qwen2's default system message", tmpl)
	}
	engine := llm.NewEngine(m)
	srv, err := New(engine, tok, WithChatTemplate(tmpl), WithModelName("qwen2"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = engine.Run(ctx)
	}()
	defer func() {
		cancel()
		<-done
	}()
	hs := httptest.NewServer(srv.Handler())
	defer hs.Close()
	resp, err := http.Post(hs.URL+"/v1/chat/completions", "application/json", strings.NewReader(`{"messages":[{"role":"user","content":"the hat"}],"max_tokens":5,"temperature":0}`))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var got completionBody
	if err := json.NewDecoder(resp.Body).Decode(&got); err != nil || resp.StatusCode != 200 {
		t.Fatalf("status %d, err %v", resp.StatusCode, err)
	}
	prompt := tmpl.Render([]tokenizer.Message{{Role: "user", Content: "the hat"}}, true)
	want := len(tok.Encode(prompt, false))
	if !strings.HasPrefix(prompt, "<|im_start|>system\n") || got.Usage == nil || got.Usage.PromptTokens != want {
		t.Errorf("usage = %+v, want %d prompt tokens for %q", got.Usage, want, prompt)
	}
}

func TestModelsHealthMetrics(t *testing.T) {
	env := newEnv(t, true, nil)
	if code, body := env.post(t, "/v1/completions", `{"prompt":"Once","max_tokens":8,"temperature":0}`); code != 200 {
		t.Fatalf("completion status %d: %s", code, body)
	}
	get := func(path string) (int, string) {
		resp, err := http.Get(env.http.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	code, body := get("/v1/models")
	var ml modelList
	if err := json.Unmarshal([]byte(body), &ml); code != 200 || err != nil || len(ml.Data) != 1 || ml.Data[0].ID != "stories260K" || ml.Object != "list" {
		t.Errorf("/v1/models = %d %s", code, body)
	}
	if code, body := get("/v1/models/stories260K"); code != 200 || !strings.Contains(body, `"id":"stories260K"`) {
		t.Errorf("/v1/models/stories260K = %d %s", code, body)
	}
	if code, body := get("/healthz"); code != 200 || !strings.Contains(body, "ok") {
		t.Errorf("/healthz = %d %s", code, body)
	}
	code, body = get("/metrics")
	if code != 200 {
		t.Fatalf("/metrics status %d", code)
	}
	for _, want := range []string{
		"tributary_inference_time_to_first_token_seconds_count 1",
		"tributary_inference_completion_tokens_total 8",
		"tributary_inference_prompt_tokens_total 2",
		`tributary_inference_generations_total{finish_reason="length"} 1`,
		"tributary_inference_queue_depth 0",
		"tributary_inference_batch_size 1",
		"tributary_inference_decode_tokens_per_second_count 1",
		`tributary_inference_http_requests_total{code="200",route="completions"} 1`,
		"tributary_inference_engine_steps_total",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}

// TestConcurrentStreams runs several greedy streams at once: each must
// equal the same request served alone, whatever the batch composition.
func TestConcurrentStreams(t *testing.T) {
	env := newEnv(t, true, []llm.EngineOption{llm.WithMaxBatch(4)})
	prompts := []string{"Once upon a time", "Lily saw a", "Tim and his dog", "The sun"}
	alone := make([]string, len(prompts))
	for i, p := range prompts {
		_, b := env.post(t, "/v1/completions", `{"prompt":"`+p+`","max_tokens":24,"temperature":0}`)
		var c completionBody
		if err := json.Unmarshal(b, &c); err != nil {
			t.Fatal(err)
		}
		alone[i] = c.text()
	}
	got := make([]string, len(prompts))
	errs := make([]error, len(prompts))
	var wg sync.WaitGroup
	for i, p := range prompts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := http.Post(env.http.URL+"/v1/completions", "application/json", strings.NewReader(`{"prompt":"`+p+`","max_tokens":24,"temperature":0,"stream":true}`))
			if err != nil {
				errs[i] = err
				return
			}
			defer resp.Body.Close()
			b, err := io.ReadAll(resp.Body)
			if err != nil {
				errs[i] = err
				return
			}
			var text strings.Builder
			for _, line := range bytes.Split(b, []byte("\n\n")) {
				data, ok := bytes.CutPrefix(line, []byte("data: "))
				if !ok || string(data) == "[DONE]" {
					continue
				}
				var c completionBody
				if err := json.Unmarshal(data, &c); err != nil {
					errs[i] = err
					return
				}
				text.WriteString(c.text())
			}
			got[i] = text.String()
		}()
	}
	wg.Wait()
	for i := range prompts {
		if errs[i] != nil {
			t.Errorf("stream %d: %v", i, errs[i])
		} else if got[i] != alone[i] {
			t.Errorf("stream %q = %q, alone %q", prompts[i], got[i], alone[i])
		}
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
