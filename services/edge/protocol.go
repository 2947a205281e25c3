package edge

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/tributary-rag/tributary/pkg/events"
)

// Client message types (client → server).
const (
	TypeAsk    = "ask"
	TypeCancel = "cancel"
)

// Server message types (server → client).
const (
	TypeAccepted  = "accepted"
	TypeToken     = "token"
	TypeCitations = "citations"
	TypeDone      = "done"
	TypeError     = "error"
)

// Finish reasons of a done message. The contract's five plus "error", sent
// when the edge gives up on an answer (timeout) or the pipeline reports an
// error finish.
const (
	FinishStop      = "stop"
	FinishLength    = "length"
	FinishRefused   = "refused"
	FinishModerated = "moderated"
	FinishCancelled = "cancelled"
	FinishError     = "error"
)

// Error codes of error messages.
const (
	CodeBadMessage      = "bad_message"       // not a JSON object with a known type
	CodeInvalidRequest  = "invalid_request"   // a field is missing or out of range
	CodeDuplicateID     = "duplicate_id"      // the id is already in flight on this connection
	CodeUnknownID       = "unknown_id"        // cancel of an id not in flight
	CodeTooManyRequests = "too_many_requests" // the connection's in-flight limit is reached
	CodeRateLimited     = "rate_limited"      // the key's question rate is spent; retry_after_ms says when to retry
	CodeUnavailable     = "unavailable"       // the question could not be published
	CodeTimeout         = "timeout"           // no answer in time
)

// Limits on client messages.
const (
	// MaxIDBytes is the longest client id.
	MaxIDBytes = 128
	// MaxTopK is the largest top_k.
	MaxTopK = 100
	// MaxConversationIDBytes is the longest conversation id.
	MaxConversationIDBytes = 128
)

// ErrBadMessage reports a client message that is not a JSON object of a
// known type; ErrInvalidRequest one whose fields are wrong.
var (
	ErrBadMessage     = errors.New("bad message")
	ErrInvalidRequest = errors.New("invalid request")
)

// ClientMessage is a decoded client message: an ask or a cancel.
type ClientMessage struct {
	Type           string `json:"type"`
	ID             string `json:"id"`
	Question       string `json:"question,omitempty"`
	ConversationID string `json:"conversation_id,omitempty"`
	TopK           int    `json:"top_k,omitempty"`
}

// DecodeClientMessage parses and validates one client message. Errors wrap
// ErrBadMessage or ErrInvalidRequest; when the id could be read it is
// returned with the error, so the reply can name it. It never panics,
// whatever the bytes.
func DecodeClientMessage(data []byte, maxQuestionBytes int) (ClientMessage, error) {
	var m ClientMessage
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&m); err != nil {
		// Try to recover the id for the error reply.
		var probe struct {
			ID string `json:"id"`
		}
		_ = json.Unmarshal(data, &probe)
		return ClientMessage{ID: clipID(probe.ID)}, fmt.Errorf("%w: %v", ErrBadMessage, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return ClientMessage{ID: clipID(m.ID)}, fmt.Errorf("%w: trailing data after the JSON object", ErrBadMessage)
	}
	bad := func(format string, args ...any) (ClientMessage, error) {
		return ClientMessage{Type: m.Type, ID: clipID(m.ID)}, fmt.Errorf("%w: "+format, append([]any{ErrInvalidRequest}, args...)...)
	}
	switch m.Type {
	case TypeAsk, TypeCancel:
	case "":
		return bad("type is required")
	default:
		return ClientMessage{ID: clipID(m.ID)}, fmt.Errorf("%w: unknown type %q", ErrBadMessage, clip(m.Type, 32))
	}
	switch {
	case m.ID == "":
		return bad("id is required")
	case len(m.ID) > MaxIDBytes:
		return bad("id is longer than %d bytes", MaxIDBytes)
	case !utf8.ValidString(m.ID):
		return bad("id is not valid UTF-8")
	}
	if m.Type == TypeCancel {
		if m.Question != "" || m.ConversationID != "" || m.TopK != 0 {
			return bad("cancel takes only type and id")
		}
		return m, nil
	}
	switch {
	case len(bytes.TrimSpace([]byte(m.Question))) == 0:
		return bad("question is required")
	case maxQuestionBytes > 0 && len(m.Question) > maxQuestionBytes:
		return bad("question is longer than %d bytes", maxQuestionBytes)
	case !utf8.ValidString(m.Question):
		return bad("question is not valid UTF-8")
	case len(m.ConversationID) > MaxConversationIDBytes:
		return bad("conversation_id is longer than %d bytes", MaxConversationIDBytes)
	case !utf8.ValidString(m.ConversationID):
		return bad("conversation_id is not valid UTF-8")
	case m.TopK < 0 || m.TopK > MaxTopK:
		return bad("top_k must be between 0 and %d", MaxTopK)
	}
	return m, nil
}

func clipID(id string) string { return clip(id, MaxIDBytes) }

// clip shortens s to at most n bytes without splitting a character, and
// replaces invalid UTF-8, so it is safe to echo.
func clip(s string, n int) string {
	if !utf8.ValidString(s) {
		s = string(bytes.ToValidUTF8([]byte(s), []byte("\uFFFD")))
	}
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// Citation is a source of an answer as the client sees it. N is the
// number the answer text's [n] markers use for it; citations come in
// order of first use, so N need not follow their order. N is left out
// only for an answer whose producer did not number its citations.
type Citation struct {
	N          int     `json:"n,omitempty"`
	DocumentID string  `json:"document_id"`
	ChunkID    string  `json:"chunk_id"`
	Title      string  `json:"title"`
	Score      float32 `json:"score"`
	Snippet    string  `json:"snippet"`
	Page       int     `json:"page,omitempty"`
}

// CitationsOf converts event citations into client citations.
func CitationsOf(cs []events.Citation) []Citation {
	out := make([]Citation, len(cs))
	for i, c := range cs {
		out[i] = Citation{N: c.N, DocumentID: c.DocumentID, ChunkID: c.ChunkID, Title: c.Title, Score: c.Score, Snippet: c.Snippet, Page: c.Page}
	}
	return out
}

// Message is one server message. Which fields are sent depends on Type:
// accepted (id, request_id), token (+ seq, text), citations (+ citations,
// never null), done (+ finish_reason, and code and message for a refusal),
// error (+ code, message).
type Message struct {
	Type         string
	ID           string
	RequestID    string
	Seq          int
	Text         string
	Citations    []Citation
	FinishReason string
	Code         string
	Message      string
	// RetryAfter, on a rate_limited error, is when a retry will be
	// admitted (retry_after_ms).
	RetryAfter time.Duration
}

// MarshalJSON encodes the message in its wire shape.
func (m Message) MarshalJSON() ([]byte, error) {
	b := make([]byte, 0, 96+len(m.Text))
	b = append(b, `{"type":`...)
	b = appendString(b, m.Type)
	b = append(b, `,"id":`...)
	b = appendString(b, m.ID)
	b = append(b, `,"request_id":`...)
	b = appendString(b, m.RequestID)
	switch m.Type {
	case TypeToken:
		b = append(b, `,"seq":`...)
		b = strconv.AppendInt(b, int64(m.Seq), 10)
		b = append(b, `,"text":`...)
		b = appendString(b, m.Text)
	case TypeCitations:
		cs := m.Citations
		if cs == nil {
			cs = []Citation{}
		}
		v, err := json.Marshal(cs)
		if err != nil {
			return nil, fmt.Errorf("marshal citations: %w", err)
		}
		b = append(b, `,"citations":`...)
		b = append(b, v...)
	case TypeDone:
		b = append(b, `,"finish_reason":`...)
		b = appendString(b, m.FinishReason)
		if m.Code != "" {
			b = append(b, `,"code":`...)
			b = appendString(b, m.Code)
			b = append(b, `,"message":`...)
			b = appendString(b, m.Message)
		}
	case TypeError:
		b = append(b, `,"code":`...)
		b = appendString(b, m.Code)
		b = append(b, `,"message":`...)
		b = appendString(b, m.Message)
		if m.RetryAfter > 0 {
			b = append(b, `,"retry_after_ms":`...)
			b = strconv.AppendInt(b, max(1, m.RetryAfter.Milliseconds()), 10)
		}
	}
	return append(b, '}'), nil
}

// appendString appends s as a JSON string (with HTML-safe escaping, as
// encoding/json does).
func appendString(b []byte, s string) []byte {
	v, _ := json.Marshal(s) // a string always marshals
	return append(b, v...)
}
