package kafkatest

import (
	"context"

	"github.com/segmentio/kafka-go"

	"github.com/tributary-rag/tributary/pkg/events"
)

// FuzzMessage is what a Kafka decoder's fuzz target feeds it: value with a
// binary-mode envelope of typ for tenant, or, when structured, with only a
// structured-mode content type (the envelope is then whatever value holds).
func FuzzMessage(typ, tenant string, value []byte, structured bool) kafka.Message {
	if structured {
		return kafka.Message{Value: value, Headers: []kafka.Header{{Key: "content-type", Value: []byte("application/cloudevents+json")}}}
	}
	env := events.NewEnvelope(events.WithTenant(context.Background(), tenant), typ, "fuzz")
	return kafka.Message{Value: value, Headers: env.Headers()}
}
