package moderate

import (
	"encoding/json"
	"fmt"

	"github.com/tributary-rag/tributary/pkg/events"
)

// Completed is a tributary.answer.completed event kept field by field, so
// that fields this service does not know (a producer's "mode", "timings",
// "language", "error", …) pass through unchanged. The typed fields are
// read from it; Set replaces one.
type Completed struct {
	events.AnswerCompleted
	fields map[string]json.RawMessage
}

// ParseCompleted decodes a completed event's JSON value.
func ParseCompleted(b []byte) (*Completed, error) {
	c := &Completed{}
	if err := json.Unmarshal(b, &c.fields); err != nil {
		return nil, fmt.Errorf("answer.completed: %w", err)
	}
	if c.fields == nil {
		return nil, fmt.Errorf("answer.completed: not a JSON object")
	}
	if err := json.Unmarshal(b, &c.AnswerCompleted); err != nil {
		return nil, fmt.Errorf("answer.completed: %w", err)
	}
	return c, nil
}

// Set replaces (or adds) the field name with v's JSON encoding and keeps
// the typed view in step.
func (c *Completed) Set(name string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("answer.completed %s: %w", name, err)
	}
	if c.fields == nil {
		c.fields = map[string]json.RawMessage{}
	}
	c.fields[name] = b
	return json.Unmarshal(b, fieldPtr(&c.AnswerCompleted, name))
}

// fieldPtr points at the typed field of a completed event named name, or at
// a throwaway value.
func fieldPtr(a *events.AnswerCompleted, name string) any {
	switch name {
	case "request_id":
		return &a.RequestID
	case "tenant_id":
		return &a.TenantID
	case "text":
		return &a.Text
	case "deltas":
		return &a.Deltas
	case "finish_reason":
		return &a.FinishReason
	case "citations":
		return &a.Citations
	}
	var discard any
	return &discard
}

// MarshalJSON writes every field, known or not.
func (c *Completed) MarshalJSON() ([]byte, error) {
	if c.fields == nil {
		return json.Marshal(c.AnswerCompleted)
	}
	return json.Marshal(c.fields)
}

// EventType implements events.Payload.
func (c *Completed) EventType() string { return events.TypeAnswerCompleted }

// PartitionKey implements events.Payload.
func (c *Completed) PartitionKey() string { return c.RequestID }

// Tenant returns the payload's tenant id.
func (c *Completed) Tenant() string { return c.TenantID }
