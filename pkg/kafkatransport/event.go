package kafkatransport

import (
	"context"

	"github.com/segmentio/kafka-go"

	"github.com/tributary-rag/tributary/pkg/events"
)

// Event is the request DecodeEvent hands to an endpoint: the parsed
// envelope, the typed payload (a pointer such as *events.ChunkCreated) and
// the original message.
type Event struct {
	Envelope events.Envelope
	Payload  events.Payload
	Message  kafka.Message
}

// DecodeEvent is a DecodeRequestFunc for Tributary events: it parses the
// CloudEvents envelope and the payload of the type ce_type names, and
// returns an Event. Any failure is permanent (the message is dead-lettered).
func DecodeEvent(_ context.Context, msg kafka.Message) (any, error) {
	env, p, err := events.Decode(msg)
	if err != nil {
		return nil, Permanent(err)
	}
	return Event{Envelope: env, Payload: p, Message: msg}, nil
}

// ValidatingDecodeEvent is DecodeEvent that also checks the payload against
// its JSON Schema with v.
func ValidatingDecodeEvent(v *events.Validator) DecodeRequestFunc {
	return func(ctx context.Context, msg kafka.Message) (any, error) {
		env, err := events.ParseHeaders(msg.Headers)
		if err != nil {
			return nil, Permanent(err)
		}
		if err := v.Validate(env.Type, msg.Value); err != nil {
			return nil, Permanent(err)
		}
		return DecodeEvent(ctx, msg)
	}
}
