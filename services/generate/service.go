// Package generate is the answer generation service of Tributary: it
// consumes retrieved queries, builds a prompt from a versioned template
// with numbered sources, and streams a cited answer from one of three
// backends (an OpenAI-compatible server, the native engine in process, or
// extractive answers without a model) as answer.delta events followed by
// one answer.completed event.
package generate

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"strings"
	"time"

	"github.com/tributary-rag/tributary/pkg/events"
)

// Domain errors.
var (
	// ErrInvalid reports a query that can never be answered (no request
	// id or tenant); the Kafka transport dead-letters it.
	ErrInvalid = errors.New("invalid query")
	// ErrPublish reports that answer events could not be published; the
	// query is retried (same event ids, so consumers drop duplicates).
	ErrPublish = errors.New("publish answer events")
)

// Question is a retrieved query to answer.
type Question struct {
	RequestID string
	TenantID  string
	Question  string
	Chunks    []events.RetrievedChunk
}

// Timings of one answer, in milliseconds.
type Timings struct {
	// FirstTokenMs is from the start of Answer to the first delta.
	FirstTokenMs float64 `json:"first_token_ms"`
	// GenerateMs is the time spent in the backend (0 for the no-context
	// refusal).
	GenerateMs float64 `json:"generate_ms"`
	// TotalMs is from the start of Answer to the completed event.
	TotalMs float64 `json:"total_ms"`
}

// Answer is what Answer produced and published.
type Answer struct {
	RequestID     string
	TenantID      string
	Text          string
	Deltas        int
	Citations     []events.Citation
	Mode          string
	Model         string
	FinishReason  string
	PromptVersion string
	Lang          string
	Usage         events.Usage
	Timings       Timings
	// Error says why the backend failed (FinishReason "error", or an
	// extractive fallback); empty otherwise. Never contains secrets.
	Error string
}

// Stream publishes one answer: deltas in seq order, then the completed
// event. Delta may buffer; Finish publishes everything still buffered and
// then, when a is not nil, the completed event, and returns the first
// publishing error. Finish must be called exactly once.
type Stream interface {
	Delta(seq int, text string) error
	Finish(ctx context.Context, a *Answer) error
}

// Emitter opens the Stream of one answer.
type Emitter interface {
	Open(ctx context.Context, q Question) Stream
}

// Service answers questions.
type Service interface {
	// Answer streams the answer to q through the service's Emitter and
	// returns it once the completed event is published. A backend failure
	// is reported in the answer (FinishReason "error"), not as an error;
	// errors are ErrInvalid, ErrPublish or the context's.
	Answer(ctx context.Context, q Question) (Answer, error)
}

// Config configures NewService. Zero values take the defaults in the
// field comments.
type Config struct {
	// Prompt bounds the prompt's sources and the relevance floor.
	Prompt PromptOptions
	// MaxTokens bounds an answer (default 512).
	MaxTokens int
	// Temperature is the sampling temperature (default 0: greedy, so a
	// redelivered query regenerates the same answer).
	Temperature float64
	// Timeout bounds one generation (default 2m); a generation that runs
	// over ends with finish reason "length".
	Timeout time.Duration
	// Fallback, when set, answers when the backend fails before its first
	// token (usually Extractive), so the asker still gets a cited answer.
	Fallback Generator
}

type service struct {
	gen  Generator
	emit Emitter
	cfg  Config
	now  func() time.Time
}

// NewService returns the Service answering with gen and publishing
// through emit.
func NewService(gen Generator, emit Emitter, cfg Config) Service {
	if cfg.MaxTokens <= 0 {
		cfg.MaxTokens = 512
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 2 * time.Minute
	}
	return &service{gen: gen, emit: emit, cfg: cfg, now: time.Now}
}

// seedFor derives the sampling seed from the request, so a redelivered
// query samples the same tokens on backends that honour seeds.
func seedFor(tenant, requestID string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(tenant))
	h.Write([]byte{0})
	h.Write([]byte(requestID))
	return h.Sum64()
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func (s *service) Answer(ctx context.Context, q Question) (Answer, error) {
	start := s.now()
	if strings.TrimSpace(q.RequestID) == "" || strings.TrimSpace(q.TenantID) == "" {
		return Answer{}, fmt.Errorf("%w: request id and tenant are required", ErrInvalid)
	}
	p := BuildPrompt(q.Question, q.Chunks, s.cfg.Prompt)
	a := Answer{RequestID: q.RequestID, TenantID: q.TenantID, PromptVersion: p.Version, Lang: p.Lang}
	stream := s.emit.Open(ctx, q)
	var text strings.Builder
	seq := 0
	onToken := func(piece string) error {
		if piece == "" {
			return nil
		}
		if seq == 0 {
			a.Timings.FirstTokenMs = ms(s.now().Sub(start))
		}
		text.WriteString(piece)
		err := stream.Delta(seq, piece)
		seq++
		if err != nil {
			return fmt.Errorf("%w: %w", ErrPublish, err)
		}
		return nil
	}

	if len(p.Sources) == 0 {
		// Nothing relevant: the fixed refusal, no model.
		a.Mode, a.Model, a.FinishReason = ModeNoContext, "", FinishStop
		for _, piece := range StreamPieces(Refusal(p.Lang)) {
			if err := onToken(piece); err != nil {
				return a, s.abort(ctx, stream, err)
			}
		}
		a.Usage.CompletionTokens = seq
	} else {
		req := Request{Prompt: p, MaxTokens: s.cfg.MaxTokens, Temperature: s.cfg.Temperature, Seed: seedFor(q.TenantID, q.RequestID)}
		genStart := s.now()
		gctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
		gen, err := s.gen.Generate(gctx, req, onToken)
		timedOut := gctx.Err() == context.DeadlineExceeded && ctx.Err() == nil
		cancel()
		a.Mode, a.Model, a.FinishReason = s.gen.Mode(), gen.Model, gen.FinishReason
		a.Usage = events.Usage{PromptTokens: gen.PromptTokens, CompletionTokens: gen.CompletionTokens}
		switch {
		case err == nil:
		case ctx.Err() != nil || errors.Is(err, ErrPublish):
			// Shutdown or a broker failure: nothing is committed, the query
			// is delivered again and answered under the same event ids.
			return a, s.abort(ctx, stream, err)
		case timedOut:
			a.FinishReason, a.Error = FinishLength, fmt.Sprintf("generation timed out after %s", s.cfg.Timeout)
		case seq == 0 && s.cfg.Fallback != nil:
			a.Error = fmt.Sprintf("%s backend failed, answered by %s: %v", s.gen.Mode(), s.cfg.Fallback.Mode(), err)
			fb, ferr := s.cfg.Fallback.Generate(ctx, req, onToken)
			a.Mode, a.Model, a.FinishReason = s.cfg.Fallback.Mode(), fb.Model, fb.FinishReason
			a.Usage = events.Usage{PromptTokens: fb.PromptTokens, CompletionTokens: fb.CompletionTokens}
			if ferr != nil {
				if ctx.Err() != nil || errors.Is(ferr, ErrPublish) {
					return a, s.abort(ctx, stream, ferr)
				}
				a.FinishReason, a.Error = FinishError, ferr.Error()
			}
		default:
			a.FinishReason, a.Error = FinishError, err.Error()
		}
		if a.FinishReason == "" {
			a.FinishReason = FinishStop
		}
		a.Timings.GenerateMs = ms(s.now().Sub(genStart))
	}
	a.Text = text.String()
	a.Deltas = seq
	a.Citations = Citations(a.Text, p.Sources)
	a.Timings.TotalMs = ms(s.now().Sub(start))
	if err := stream.Finish(ctx, &a); err != nil {
		return a, fmt.Errorf("%w: %w", ErrPublish, err)
	}
	return a, nil
}

// abort ends the stream without a completed event and returns err.
func (s *service) abort(ctx context.Context, stream Stream, err error) error {
	if ferr := stream.Finish(ctx, nil); ferr != nil && !errors.Is(err, ErrPublish) && ctx.Err() == nil {
		return fmt.Errorf("%w: %w", ErrPublish, ferr)
	}
	return err
}
