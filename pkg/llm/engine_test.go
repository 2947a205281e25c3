package llm

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tributary-rag/tributary/pkg/eventually"
)

const storiesPath = "../../models/stories260K.gguf"

func loadStories(t *testing.T) *Model {
	t.Helper()
	m, err := Load(storiesPath, WithThreads(2))
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	t.Cleanup(func() { _ = m.Close() })
	return m
}

// startEngine runs e until the test ends.
func startEngine(t *testing.T, e *Engine) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Errorf("Run = %v, want context.Canceled", err)
		}
	})
}

type generated struct {
	ids  []int32
	text string
	res  Result
	err  error
}

func generate(ctx context.Context, e *Engine, req Request) generated {
	var g generated
	var b strings.Builder
	g.res, g.err = e.Generate(ctx, req, func(t Token) error {
		g.ids = append(g.ids, t.ID)
		b.WriteString(t.Text)
		return nil
	})
	g.text = b.String()
	return g
}

func TestEngineReference(t *testing.T) {
	m := loadStories(t)
	e := NewEngine(m)
	startEngine(t, e)
	g := generate(context.Background(), e, Request{Prompt: []int32{1}, MaxTokens: 200})
	if g.err != nil {
		t.Fatal(g.err)
	}
	if !strings.HasPrefix(g.text, "Once upon a time, there was a little girl named Lily.") || !strings.HasSuffix(g.text, "so she") {
		t.Errorf("greedy text = %q", g.text)
	}
	if g.res.FinishReason != FinishLength || g.res.CompletionTokens != 200 || g.res.PromptTokens != 1 {
		t.Errorf("result = %+v, want length after 200 tokens", g.res)
	}
	if g.res.TimeToFirstToken <= 0 || g.res.Duration < g.res.TimeToFirstToken {
		t.Errorf("timings = %+v", g.res)
	}
}

// TestEngineBatchingMatchesSequential runs several requests at once and
// checks each gets exactly the tokens it gets alone: batching changes
// throughput, never results.
func TestEngineBatchingMatchesSequential(t *testing.T) {
	m := loadStories(t)
	tok := m.Tokenizer()
	prompts := []string{"Once upon a time", "The cat", "Lily and Tom went to the", "One day, a big dog"}
	reqs := make([]Request, len(prompts))
	for i, p := range prompts {
		reqs[i] = Request{Prompt: tok.Encode(p, true), MaxTokens: 30 + 7*i}
	}
	reqs[3].Sampling = Sampling{Temperature: 0.9, TopK: 40, TopP: 0.95, Seed: 11}

	solo := NewEngine(m, WithMaxBatch(1))
	want := make([]generated, len(reqs))
	func() {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		done := make(chan error, 1)
		go func() { done <- solo.Run(ctx) }()
		for i, r := range reqs {
			want[i] = generate(ctx, solo, r)
		}
		cancel()
		<-done
	}()

	e := NewEngine(m, WithMaxBatch(4), WithStepTokens(8))
	startEngine(t, e)
	got := make([]generated, len(reqs))
	var wg sync.WaitGroup
	for i, r := range reqs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got[i] = generate(context.Background(), e, r)
		}()
	}
	wg.Wait()
	for i := range reqs {
		if got[i].err != nil || want[i].err != nil {
			t.Fatalf("request %d: errors %v / %v", i, got[i].err, want[i].err)
		}
		if got[i].text != want[i].text {
			t.Errorf("request %d batched text %q, alone %q", i, got[i].text, want[i].text)
		}
		if got[i].res.CompletionTokens != reqs[i].MaxTokens {
			t.Errorf("request %d: %d tokens, want %d", i, got[i].res.CompletionTokens, reqs[i].MaxTokens)
		}
	}
	if st := e.Stats(); st.Steps == 0 || st.Tokens == 0 {
		t.Errorf("stats = %+v", st)
	}
}

func TestEngineStopSequence(t *testing.T) {
	m := loadStories(t)
	e := NewEngine(m)
	startEngine(t, e)
	tests := []struct {
		stop []string
		want string
	}{
		{[]string{"Lily"}, "Once upon a time, there was a little girl named "},
		{[]string{"park.", "girl"}, "Once upon a time, there was a little "},
		{[]string{"\n"}, "Once upon a time, there was a little girl named Lily. She loved to play outside in the park. One day, she saw a big, red ball. She wanted to play with it, but it was too high."},
	}
	for _, tt := range tests {
		g := generate(context.Background(), e, Request{Prompt: []int32{1}, MaxTokens: 200, Stop: tt.stop})
		if g.err != nil {
			t.Fatal(g.err)
		}
		if g.text != tt.want || g.res.FinishReason != FinishStop {
			t.Errorf("Stop %q: text %q (%s), want %q (stop)", tt.stop, g.text, g.res.FinishReason, tt.want)
		}
	}
}

func TestEngineSeededSampling(t *testing.T) {
	m := loadStories(t)
	e := NewEngine(m, WithMaxBatch(4))
	startEngine(t, e)
	req := func(seed uint64) Request {
		return Request{Prompt: []int32{1}, MaxTokens: 50, Sampling: Sampling{Temperature: 1, TopP: 0.9, MinP: 0.01, RepeatPenalty: 1.1, Seed: seed}}
	}
	a := generate(context.Background(), e, req(42))
	b := generate(context.Background(), e, req(42))
	c := generate(context.Background(), e, req(43))
	if a.text != b.text {
		t.Errorf("seed 42 twice: %q vs %q", a.text, b.text)
	}
	if a.text == c.text {
		t.Errorf("seeds 42 and 43 both gave %q", a.text)
	}
}

func TestEngineCancel(t *testing.T) {
	m := loadStories(t)
	e := NewEngine(m, WithMaxBatch(2))
	startEngine(t, e)
	ctx, cancel := context.WithCancel(context.Background())
	n := 0
	res, err := e.Generate(ctx, Request{Prompt: []int32{1}}, func(Token) error {
		n++
		if n == 5 {
			cancel()
		}
		return nil
	})
	if !errors.Is(err, context.Canceled) || res.FinishReason != FinishCancelled || res.CompletionTokens != n {
		t.Errorf("cancelled Generate = %+v, %v after %d tokens; want cancelled, context.Canceled", res, err, n)
	}
	// A callback error cancels too.
	boom := errors.New("client gone")
	_, err = e.Generate(context.Background(), Request{Prompt: []int32{1}}, func(Token) error { return boom })
	if !errors.Is(err, boom) {
		t.Errorf("Generate with failing callback = %v, want %v", err, boom)
	}
	// The engine keeps serving and the cancelled sequences left the batch.
	g := generate(context.Background(), e, Request{Prompt: []int32{1}, MaxTokens: 3})
	if g.err != nil || g.res.CompletionTokens != 3 {
		t.Errorf("after cancel: %+v, %v", g.res, g.err)
	}
	eventually.NoError(t, "the cancelled sequences to leave the batch", 5*time.Second, func() error {
		if a := e.Stats().Active; a != 0 {
			return fmt.Errorf("%d sequences still active", a)
		}
		return nil
	})
}

func TestEngineQueueFullAndClose(t *testing.T) {
	m := loadStories(t)
	e := NewEngine(m, WithMaxBatch(1), WithMaxQueue(1))
	// Run is not started yet, so the first request waits in the queue.
	first := make(chan error, 1)
	go func() {
		_, err := e.Generate(context.Background(), Request{Prompt: []int32{1}, MaxTokens: 2}, func(Token) error { return nil })
		first <- err
	}()
	eventually.True(t, "the first request to queue", 5*time.Second, func() bool { return e.Stats().Queued == 1 })
	if _, err := e.Generate(context.Background(), Request{Prompt: []int32{1}}, func(Token) error { return nil }); !errors.Is(err, ErrQueueFull) {
		t.Errorf("second Generate = %v, want ErrQueueFull", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.Run(ctx) }()
	if err := <-first; err != nil {
		t.Errorf("queued request: %v", err)
	}
	cancel()
	<-done
	if _, err := e.Generate(context.Background(), Request{Prompt: []int32{1}}, func(Token) error { return nil }); !errors.Is(err, ErrClosed) {
		t.Errorf("Generate after Run ended = %v, want ErrClosed", err)
	}
}

func TestEngineInvalidRequests(t *testing.T) {
	m := loadStories(t)
	e := NewEngine(m, WithContextSize(16))
	tests := []struct {
		name string
		req  Request
	}{
		{"empty prompt", Request{}},
		{"token out of range", Request{Prompt: []int32{1, 512}}},
		{"negative token", Request{Prompt: []int32{-1}}},
		{"prompt longer than context", Request{Prompt: make([]int32, 16)}},
	}
	for _, tt := range tests {
		if _, err := e.Generate(context.Background(), tt.req, func(Token) error { return nil }); !errors.Is(err, ErrInvalidRequest) {
			t.Errorf("%s: Generate = %v, want ErrInvalidRequest", tt.name, err)
		}
	}
}

func TestEngineContextLimit(t *testing.T) {
	m := loadStories(t)
	e := NewEngine(m, WithContextSize(12))
	startEngine(t, e)
	g := generate(context.Background(), e, Request{Prompt: []int32{1, 403}, MaxTokens: 100})
	if g.err != nil || g.res.FinishReason != FinishLength || g.res.CompletionTokens != 10 {
		t.Errorf("generation at the context limit = %+v, %v; want length after 10 tokens", g.res, g.err)
	}
}

func TestLoadErrors(t *testing.T) {
	tests := []struct{ name, path string }{
		{"missing file", filepath.Join("testdata", "nope.gguf")},
		{"not gguf", filepath.Join("testdata", "llama_gqa_f32.golden.json")},
	}
	for _, tt := range tests {
		if _, err := Load(tt.path); err == nil {
			t.Errorf("%s: Load succeeded", tt.name)
		}
	}
}

func TestModelMetadata(t *testing.T) {
	m := loadStories(t)
	c := m.Config()
	if c.Arch != "llama" || c.Dim != 64 || c.Layers != 5 || c.Heads != 8 || c.KVHeads != 4 || c.Vocab != 512 || c.Hidden != 172 || c.RopeNeox || c.TiedOutput || c.NormEps != 1e-5 {
		t.Errorf("config = %+v", c)
	}
	if m.Name() == "" || m.Tokenizer() == nil {
		t.Errorf("Name %q, Tokenizer %v", m.Name(), m.Tokenizer())
	}
	q, _ := loadGolden(t, "qwen2_bias_f32")
	if qc := q.Config(); !qc.RopeNeox || !qc.QKVBias || !qc.TiedOutput || qc.KVHeads != 1 {
		t.Errorf("qwen2 config = %+v", qc)
	}
}

// TestEngineChurn has requests join, finish, cancel and bounce off the
// queue limit concurrently; every call must end with a consistent result
// and the engine must end idle.
func TestEngineChurn(t *testing.T) {
	m := loadStories(t)
	e := NewEngine(m, WithMaxBatch(3), WithMaxQueue(4), WithStepTokens(16))
	startEngine(t, e)
	var wg sync.WaitGroup
	var mu sync.Mutex
	reasons := map[string]int{}
	for i := 0; i < 24; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			if i%4 == 0 {
				go func() { time.Sleep(time.Duration(i) * time.Millisecond); cancel() }()
			}
			n := 0
			res, err := e.Generate(ctx, Request{Prompt: []int32{1, int32(300 + i)}, MaxTokens: 10 + i, Sampling: Sampling{Temperature: 0.7, Seed: uint64(i)}},
				func(Token) error { n++; return nil })
			mu.Lock()
			defer mu.Unlock()
			switch {
			case errors.Is(err, ErrQueueFull):
				reasons["queue full"]++
			case errors.Is(err, context.Canceled):
				reasons["cancelled"]++
				if res.FinishReason != FinishCancelled {
					t.Errorf("cancelled request finished with %q", res.FinishReason)
				}
			case err != nil:
				t.Errorf("Generate: %v", err)
			default:
				reasons[res.FinishReason]++
				if res.FinishReason == FinishLength && (res.CompletionTokens != 10+i || n != 10+i) {
					t.Errorf("request %d: %d tokens, %d callbacks, want %d", i, res.CompletionTokens, n, 10+i)
				}
			}
		}()
	}
	wg.Wait()
	if reasons["length"]+reasons["stop"] == 0 {
		t.Errorf("no request completed: %v", reasons)
	}
	eventually.NoError(t, "the engine to be idle after churn", 5*time.Second, func() error {
		if st := e.Stats(); st.Active != 0 || st.Queued != 0 {
			return fmt.Errorf("stats %+v", st)
		}
		return nil
	})
}

// TestEngineCancelQueued: a request cancelled while it waits for a batch
// slot frees its queue place at once.
func TestEngineCancelQueued(t *testing.T) {
	m := loadStories(t)
	e := NewEngine(m, WithMaxBatch(1), WithMaxQueue(1))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := e.Generate(ctx, Request{Prompt: []int32{1}}, func(Token) error { return nil })
		done <- err
	}()
	eventually.True(t, "the request to queue", 5*time.Second, func() bool { return e.Stats().Queued == 1 })
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled queued Generate = %v", err)
	}
	if q := e.Stats().Queued; q != 0 {
		t.Errorf("queue holds %d after cancel, want 0", q)
	}
	startEngine(t, e)
	g := generate(context.Background(), e, Request{Prompt: []int32{1}, MaxTokens: 2})
	if g.err != nil || g.res.CompletionTokens != 2 {
		t.Errorf("after cancelled queued request: %+v, %v", g.res, g.err)
	}
}
