package llm

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// Errors returned by Engine.Generate.
var (
	// ErrQueueFull means the engine already holds its maximum of waiting
	// requests; retry later (HTTP 429).
	ErrQueueFull = errors.New("llm: queue full")
	// ErrInvalidRequest is wrapped by errors about a request that can
	// never succeed (HTTP 400): empty or too long prompt, bad token ids.
	ErrInvalidRequest = errors.New("llm: invalid request")
	// ErrClosed means the engine's Run loop has ended.
	ErrClosed = errors.New("llm: engine stopped")
)

// Finish reasons of a Result.
const (
	FinishStop      = "stop"      // end-of-generation token or stop sequence
	FinishLength    = "length"    // MaxTokens or the context size reached
	FinishCancelled = "cancelled" // the caller's context ended or onToken failed
)

// Request is one generation request.
type Request struct {
	Prompt    []int32 // token ids, including BOS where the model wants one
	MaxTokens int     // ≤ 0: until the context is full
	Sampling  Sampling
	Stop      []string // stop sequences; the output ends before the first one
}

// Token is one generated token and the text it adds. Text holds only
// complete UTF-8 and is empty while a multi-byte character or a possible
// stop sequence is held back; held text arrives with a later token. When
// generation ends on an end-of-generation token with text still held back,
// a last Token carries that id and the text.
type Token struct {
	ID   int32
	Text string
}

// Result summarizes a finished generation.
type Result struct {
	PromptTokens, CompletionTokens int
	FinishReason                   string
	TimeToFirstToken, Duration     time.Duration
}

// Stats is a snapshot of the engine's load, for metrics.
type Stats struct {
	Queued, Active int    // requests waiting, requests in the running batch
	LastBatch      int    // sequences in the most recent step
	Steps          uint64 // forward steps run
	Tokens         uint64 // tokens processed (prompt and generated)
}

// EngineOption configures NewEngine.
type EngineOption func(*Engine)

// WithMaxBatch sets how many sequences share a forward step (default 8).
func WithMaxBatch(n int) EngineOption { return func(e *Engine) { e.maxBatch = n } }

// WithMaxQueue sets how many requests may wait for a batch slot before
// Generate returns ErrQueueFull (default 64).
func WithMaxQueue(n int) EngineOption { return func(e *Engine) { e.maxQueue = n } }

// WithContextSize sets the positions per sequence, prompt included
// (default: the model's trained context, at most 4096).
func WithContextSize(n int) EngineOption { return func(e *Engine) { e.ctxSize = n } }

// WithStepTokens bounds the tokens one forward step processes, so a long
// prompt is prefilled in chunks between the decode steps of other
// sequences (default 256).
func WithStepTokens(n int) EngineOption { return func(e *Engine) { e.stepTokens = n } }

// Engine schedules generation requests onto one model with continuous
// batching: every step runs one forward pass for all active sequences
// together (one read of the weights for all of them); new requests join
// between steps and cancelled ones leave. Generate is safe for concurrent
// use; Run must be running for requests to make progress.
type Engine struct {
	m          *Model
	maxBatch   int
	maxQueue   int
	ctxSize    int
	stepTokens int
	spaceStrip bool // strip the dummy-prefix space of a first piece after BOS

	mu     sync.Mutex
	queue  []*request
	closed bool
	wake   chan struct{}

	queued, active, lastBatch atomic.Int64
	steps, tokens             atomic.Uint64
}

// NewEngine returns an engine for m.
func NewEngine(m *Model, opts ...EngineOption) *Engine {
	e := &Engine{m: m, maxBatch: 8, maxQueue: 64, stepTokens: 256, wake: make(chan struct{}, 1)}
	e.ctxSize = min(m.cfg.ContextLength, 4096)
	for _, o := range opts {
		o(e)
	}
	e.maxBatch = max(1, e.maxBatch)
	e.maxQueue = max(0, e.maxQueue)
	e.stepTokens = max(1, e.stepTokens)
	if e.ctxSize <= 0 {
		e.ctxSize = min(m.cfg.ContextLength, 4096)
	}
	e.spaceStrip = m.vocab.model == "llama"
	return e
}

// Stats reports the engine's current load.
func (e *Engine) Stats() Stats {
	return Stats{
		Queued: int(e.queued.Load()), Active: int(e.active.Load()), LastBatch: int(e.lastBatch.Load()),
		Steps: e.steps.Load(), Tokens: e.tokens.Load(),
	}
}

// ContextSize is the number of positions per sequence.
func (e *Engine) ContextSize() int { return e.ctxSize }

type request struct {
	ctx       context.Context
	req       Request
	sampler   *sampler
	cache     *kvCache
	tokens    []int32 // prompt then completion
	nPrompt   int
	maxNew    int
	text      *textStream
	stripNext bool
	finished  bool // set by the scheduler when the request left the batch
	start     time.Time
	abandoned atomic.Bool

	mu     sync.Mutex
	events []Token
	done   bool
	result Result
	err    error
	notify chan struct{}
}

func (r *request) post(t Token) {
	r.mu.Lock()
	r.events = append(r.events, t)
	r.mu.Unlock()
	r.signal()
}

func (r *request) signal() {
	select {
	case r.notify <- struct{}{}:
	default:
	}
}

func (r *request) finish(reason string, err error) {
	r.finished = true
	r.mu.Lock()
	if !r.done {
		r.done = true
		r.result.PromptTokens = r.nPrompt
		r.result.CompletionTokens = len(r.tokens) - r.nPrompt
		r.result.FinishReason = reason
		r.result.Duration = time.Since(r.start)
		r.err = err
	}
	r.mu.Unlock()
	r.signal()
}

// Generate runs req to completion, calling onToken (from the caller's
// goroutine) for each generated token, and returns a summary. If ctx ends
// or onToken returns an error, generation stops, the sequence leaves the
// batch, and Generate returns FinishReason "cancelled" with that error.
func (e *Engine) Generate(ctx context.Context, req Request, onToken func(Token) error) (Result, error) {
	start := time.Now()
	if len(req.Prompt) == 0 {
		return Result{}, fmt.Errorf("%w: empty prompt", ErrInvalidRequest)
	}
	if len(req.Prompt) >= e.ctxSize {
		return Result{}, fmt.Errorf("%w: prompt of %d tokens does not fit the context of %d", ErrInvalidRequest, len(req.Prompt), e.ctxSize)
	}
	for _, id := range req.Prompt {
		if id < 0 || int(id) >= e.m.cfg.Vocab {
			return Result{}, fmt.Errorf("%w: token id %d out of range", ErrInvalidRequest, id)
		}
	}
	r := &request{
		ctx:     ctx,
		req:     req,
		sampler: newSampler(req.Sampling),
		tokens:  append(make([]int32, 0, len(req.Prompt)+16), req.Prompt...),
		nPrompt: len(req.Prompt),
		maxNew:  e.ctxSize - len(req.Prompt),
		text:    newTextStream(req.Stop),
		start:   start,
		notify:  make(chan struct{}, 1),
	}
	if req.MaxTokens > 0 {
		r.maxNew = min(r.maxNew, req.MaxTokens)
	}
	r.stripNext = e.spaceStrip && req.Prompt[len(req.Prompt)-1] == e.m.vocab.bos
	e.mu.Lock()
	switch {
	case e.closed:
		e.mu.Unlock()
		return Result{}, ErrClosed
	case len(e.queue) >= e.maxQueue:
		e.mu.Unlock()
		return Result{}, ErrQueueFull
	}
	e.queue = append(e.queue, r)
	e.queued.Store(int64(len(e.queue)))
	e.mu.Unlock()
	select {
	case e.wake <- struct{}{}:
	default:
	}

	var events []Token
	delivered := 0
	for {
		select {
		case <-ctx.Done():
			return e.abandon(r, delivered), ctx.Err()
		case <-r.notify:
		}
		r.mu.Lock()
		events = append(events[:0], r.events...)
		r.events = r.events[:0]
		done, res, err := r.done, r.result, r.err
		r.mu.Unlock()
		for _, t := range events {
			if cbErr := onToken(t); cbErr != nil {
				return e.abandon(r, delivered), cbErr
			}
			delivered++
		}
		if done {
			return res, err
		}
	}
}

// abandon gives up on r for its caller: a queued request leaves the queue
// at once, a running one leaves the batch at the scheduler's next step. It
// returns the Result so far, with delivered completion tokens.
func (e *Engine) abandon(r *request, delivered int) Result {
	r.abandoned.Store(true)
	e.mu.Lock()
	for i, q := range e.queue {
		if q == r {
			e.queue = append(e.queue[:i], e.queue[i+1:]...)
			e.queued.Store(int64(len(e.queue)))
			break
		}
	}
	e.mu.Unlock()
	r.mu.Lock()
	defer r.mu.Unlock()
	res := r.result
	res.PromptTokens = r.nPrompt
	res.CompletionTokens = delivered
	res.FinishReason = FinishCancelled
	res.Duration = time.Since(r.start)
	return res
}

// Run is the scheduler loop; call it once per Engine. It returns ctx.Err()
// when ctx ends, failing every pending request with ErrClosed; Generate
// calls after that return ErrClosed.
func (e *Engine) Run(ctx context.Context) error {
	var active []*request
	defer func() {
		e.mu.Lock()
		e.closed = true
		q := e.queue
		e.queue = nil
		e.mu.Unlock()
		for _, r := range append(active, q...) {
			r.finish(FinishCancelled, ErrClosed)
		}
		e.queued.Store(0)
		e.active.Store(0)
	}()
	var entries []batchEntry
	var owners []*request
	for {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		e.mu.Lock()
		for len(active) < e.maxBatch && len(e.queue) > 0 {
			r := e.queue[0]
			e.queue[0] = nil
			e.queue = e.queue[1:]
			active = append(active, r)
		}
		e.queued.Store(int64(len(e.queue)))
		e.mu.Unlock()
		kept := active[:0]
		for _, r := range active {
			if r.abandoned.Load() || r.ctx.Err() != nil {
				r.finish(FinishCancelled, r.ctx.Err())
				continue
			}
			kept = append(kept, r)
		}
		clear(active[len(kept):])
		active = kept
		e.active.Store(int64(len(active)))
		if len(active) == 0 {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-e.wake:
			}
			continue
		}

		// Decoding sequences first (one token each), then prompt chunks
		// in the remaining token budget; every sequence gets at least one.
		entries, owners = entries[:0], owners[:0]
		budget := e.stepTokens
		for pass := 0; pass < 2; pass++ {
			for _, r := range active {
				if r.cache == nil {
					r.cache = newKVCache(e.m.cfg.Layers)
				}
				pending := len(r.tokens) - r.cache.n
				if (pass == 0) != (pending == 1) {
					continue
				}
				take := min(pending, max(1, budget))
				budget -= take
				for i := 0; i < take; i++ {
					pos := r.cache.n + i
					entries = append(entries, batchEntry{cache: r.cache, token: r.tokens[pos], pos: pos, wantLogits: i == pending-1})
					owners = append(owners, r)
				}
			}
		}
		e.lastBatch.Store(int64(len(active)))
		logits, err := e.m.forward(entries)
		e.steps.Add(1)
		e.tokens.Add(uint64(len(entries)))
		if err != nil {
			for _, r := range active {
				r.finish(FinishCancelled, fmt.Errorf("forward: %w", err))
			}
			active = active[:0]
			continue
		}
		vocab := e.m.cfg.Vocab
		li := 0
		for i, en := range entries {
			if en.wantLogits {
				e.emit(owners[i], logits[li*vocab:(li+1)*vocab])
				li++
			}
		}
		// Finished requests leave; the rest (decoding or still
		// prefilling) stay for the next step.
		kept = active[:0]
		for _, r := range active {
			if !r.finished {
				kept = append(kept, r)
			}
		}
		clear(active[len(kept):])
		active = kept
	}
}

// emit samples r's next token from logits and streams its text; when r is
// done it finishes it.
func (e *Engine) emit(r *request, logits []float32) {
	if r.abandoned.Load() || r.ctx.Err() != nil {
		r.finish(FinishCancelled, r.ctx.Err())
		return
	}
	id := r.sampler.sample(logits, r.tokens)
	if len(r.tokens) == r.nPrompt {
		r.mu.Lock()
		r.result.TimeToFirstToken = time.Since(r.start)
		r.mu.Unlock()
	}
	if e.m.tok.IsEOG(id) || e.m.vocab.eog[id] {
		if rest := r.text.flush(); rest != "" {
			r.post(Token{ID: id, Text: rest})
		}
		r.finish(FinishStop, nil)
		return
	}
	r.tokens = append(r.tokens, id)
	piece := e.m.vocab.piece(id)
	if r.stripNext {
		r.stripNext = false
		if len(piece) > 0 && piece[0] == ' ' {
			piece = piece[1:]
		}
	}
	text, stopped := r.text.push(piece)
	if stopped {
		r.post(Token{ID: id, Text: text})
		r.finish(FinishStop, nil)
		return
	}
	if len(r.tokens)-r.nPrompt >= r.maxNew {
		r.post(Token{ID: id, Text: text + r.text.flush()})
		r.finish(FinishLength, nil)
		return
	}
	r.post(Token{ID: id, Text: text})
}
