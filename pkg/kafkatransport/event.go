package kafkatransport

import (
	"context"

	"github.com/segmentio/kafka-go"

	"github.com/tributary-rag/tributary/pkg/events"
)

// Event is the request DecodeEvent hands to an endpoint: the parsed
// envelope, the typed payload (a pointer such as *events.ChunkCreated) and
// the message (in binary mode, see binaryMode).
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
		env, data, err := events.ParseMessage(msg)
		if err != nil {
			return nil, Permanent(err)
		}
		if err := v.Validate(env.Type, data); err != nil {
			return nil, Permanent(err)
		}
		return DecodeEvent(ctx, msg)
	}
}

// binaryMode wraps a subscriber's decoder so that it sees every event in
// the binary content mode Tributary writes (events.Binary): structured-mode
// events and the legacy tenantid/correlationid headers are converted
// first, so decoders that read headers and value directly need not know
// either. The original message is what is dead-lettered, so a dead letter
// replays as it arrived. A structured event that cannot be read is a
// permanent failure.
func binaryMode(dec DecodeRequestFunc) DecodeRequestFunc {
	if dec == nil {
		return nil
	}
	return func(ctx context.Context, msg kafka.Message) (any, error) {
		bin, err := events.Binary(msg)
		if err != nil {
			return nil, Permanent(err)
		}
		return dec(ctx, bin)
	}
}
