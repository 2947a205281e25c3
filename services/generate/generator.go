package generate

import "context"

// Modes name how an answer was produced; they travel as "mode" in
// answer.completed.
const (
	ModeOpenAI     = "openai"
	ModeEngine     = "engine"
	ModeExtractive = "extractive"
	// ModeNoContext marks the fixed refusal sent without any backend
	// because nothing relevant was retrieved.
	ModeNoContext = "no_context"
)

// Finish reasons of a Generation and of answer.completed.
const (
	FinishStop      = "stop"
	FinishLength    = "length"
	FinishCancelled = "cancelled"
	FinishError     = "error"
)

// Request is one generation request to a Generator.
type Request struct {
	Prompt Prompt
	// MaxTokens bounds the answer's tokens (≤ 0: the backend's default).
	MaxTokens int
	// Temperature is the sampling temperature (0: greedy).
	Temperature float64
	// Seed makes sampling reproducible: the service derives it from the
	// request id, so a redelivered query regenerates the same answer on
	// backends that honour seeds.
	Seed uint64
}

// Generation summarizes a finished generation.
type Generation struct {
	FinishReason     string
	PromptTokens     int
	CompletionTokens int
	// Model is the model that answered (the server's id, the GGUF's name,
	// or "extractive").
	Model string
}

// Generator produces an answer for a prompt and streams it through
// onToken, one piece of text at a time, in order; concatenated, the pieces
// are the answer. If ctx ends or onToken returns an error, generation
// stops and that error is returned with FinishReason "cancelled".
// Implementations are safe for concurrent use.
type Generator interface {
	Generate(ctx context.Context, req Request, onToken func(text string) error) (Generation, error)
	// Mode names the backend (ModeOpenAI, ModeEngine, ModeExtractive).
	Mode() string
}
