// Package events defines Tributary's event contract: the CloudEvents 1.0
// envelope in Kafka binary mode, the typed payload of every event type, the
// topic names and the JSON Schema of every payload.
//
// An event travels as one Kafka message. The key is the payload's partition
// key (document_id for document and chunk events, request_id for query and
// answer events, the tenant for audit events), the headers carry the
// CloudEvents attributes (ce_specversion, ce_id, ce_source, ce_type, ce_time,
// content-type), the extension attributes ce_tenantid and ce_correlationid,
// and traceparent, and the value is the JSON payload. Any CloudEvents SDK
// with the Kafka protocol binding reads these messages and sees the tenantid
// and correlationid extensions.
//
// Consumers read more than producers write (see ParseMessage): structured
// mode (content-type application/cloudevents+json, the whole event as JSON
// in the value), events without the optional time, and, for a transition
// period, the unprefixed tenantid and correlationid headers of earlier
// releases.
//
// Producing:
//
//	ctx = events.WithTenant(ctx, "acme")
//	msg, err := events.Marshal(ctx, "tributary/ingest", events.ChunkCreated{...})
//	msg.Topic = events.NewTopics(prefix).Chunks
//
// Consuming:
//
//	env, payload, err := events.Decode(msg)
//	switch p := payload.(type) {
//	case *events.ChunkCreated:
//		...
//	}
//
// or, when the type is known, events.Unmarshal(msg, &chunk).
package events

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/tributary-rag/tributary/pkg/tracecontext"
)

// CloudEvents attribute values and Kafka header names (binary content mode).
const (
	SpecVersion     = "1.0"
	ContentTypeJSON = "application/json"
	// ContentTypeCloudEventsJSON marks a structured-mode message: the value
	// is the whole event in the CloudEvents JSON format.
	ContentTypeCloudEventsJSON = "application/cloudevents+json"

	HeaderSpecVersion   = "ce_specversion"
	HeaderID            = "ce_id"
	HeaderSource        = "ce_source"
	HeaderType          = "ce_type"
	HeaderTime          = "ce_time"
	HeaderContentType   = "content-type"
	HeaderTraceParent   = "traceparent"
	HeaderTenantID      = "ce_" + ExtensionTenantID
	HeaderCorrelationID = "ce_" + ExtensionCorrelationID

	// LegacyHeaderTenantID and LegacyHeaderCorrelationID are the
	// unprefixed headers that releases before the ce_ extensions wrote.
	// Consumers still read them when the ce_ header is absent; nothing
	// writes them.
	LegacyHeaderTenantID      = ExtensionTenantID
	LegacyHeaderCorrelationID = ExtensionCorrelationID
)

// CloudEvents extension attribute names, as an SDK sees them.
const (
	ExtensionTenantID      = "tenantid"
	ExtensionCorrelationID = "correlationid"
)

// Errors returned when a message is not a valid Tributary event. Consumers
// treat them as permanent: retrying cannot fix the message.
var (
	ErrInvalidEnvelope = errors.New("invalid cloudevents envelope")
	ErrUnknownType     = errors.New("unknown event type")
	ErrTypeMismatch    = errors.New("event type does not match payload")
	ErrInvalidPayload  = errors.New("invalid event payload")
)

// Payload is implemented by every event payload type.
type Payload interface {
	// EventType returns the CloudEvents type, e.g. "tributary.chunk.created".
	EventType() string
	// PartitionKey returns the Kafka message key that keeps this event in
	// order with the others of its document, request or tenant.
	PartitionKey() string
}

// Envelope holds the CloudEvents attributes of one event.
type Envelope struct {
	// ID is the event id and the consumers' idempotency key (ce_id).
	ID string
	// Source identifies the producer, e.g. "tributary/ingest" (ce_source).
	Source string
	// Type is the event type, e.g. "tributary.chunk.created" (ce_type).
	Type string
	// Time is when the event happened (ce_time, RFC 3339). Producers here
	// always set it; it is zero for a consumed event without the optional
	// time attribute.
	Time time.Time
	// ContentType is the payload's media type; always application/json.
	ContentType string
	// TraceParent is the W3C traceparent of the producing span; may be empty.
	TraceParent string
	// TenantID is the tenant the event belongs to (tenantid extension,
	// header ce_tenantid).
	TenantID string
	// CorrelationID ties the events of one request together (correlationid
	// extension, header ce_correlationid); may be empty.
	CorrelationID string
}

// NewEnvelope returns an envelope for an event of type typ from source with
// a fresh random id, the current time, and the traceparent (a child span),
// tenant and correlation id carried by ctx.
func NewEnvelope(ctx context.Context, typ, source string) Envelope {
	env := Envelope{
		ID:            NewID(),
		Source:        source,
		Type:          typ,
		Time:          time.Now().UTC(),
		ContentType:   ContentTypeJSON,
		TenantID:      Tenant(ctx),
		CorrelationID: CorrelationID(ctx),
	}
	if tp, ok := tracecontext.FromContext(ctx); ok {
		env.TraceParent = tp.Child().String()
	} else {
		env.TraceParent = tracecontext.New().String()
	}
	return env
}

// Validate checks what a consumer requires: id, source, type, tenant, a
// JSON content type, and a well-formed traceparent when one is present.
// Time is optional, as in CloudEvents; MarshalWith also requires it.
func (e Envelope) Validate() error {
	var missing []string
	if e.ID == "" {
		missing = append(missing, HeaderID)
	}
	if e.Source == "" {
		missing = append(missing, HeaderSource)
	}
	if e.Type == "" {
		missing = append(missing, HeaderType)
	}
	if e.TenantID == "" {
		missing = append(missing, HeaderTenantID)
	}
	if len(missing) > 0 {
		return fmt.Errorf("%w: missing %s", ErrInvalidEnvelope, strings.Join(missing, ", "))
	}
	if ct := e.ContentType; ct != "" && !strings.HasPrefix(ct, ContentTypeJSON) {
		return fmt.Errorf("%w: content-type %q is not %s", ErrInvalidEnvelope, ct, ContentTypeJSON)
	}
	if e.TraceParent != "" {
		if _, err := tracecontext.Parse(e.TraceParent); err != nil {
			return fmt.Errorf("%w: %v", ErrInvalidEnvelope, err)
		}
	}
	return nil
}

// Headers returns the envelope as Kafka headers in binary content mode.
// Empty optional attributes (and a zero time) are left out.
func (e Envelope) Headers() []kafka.Header {
	ct := e.ContentType
	if ct == "" {
		ct = ContentTypeJSON
	}
	hs := make([]kafka.Header, 0, 9)
	hs = append(hs,
		kafka.Header{Key: HeaderSpecVersion, Value: []byte(SpecVersion)},
		kafka.Header{Key: HeaderID, Value: []byte(e.ID)},
		kafka.Header{Key: HeaderSource, Value: []byte(e.Source)},
		kafka.Header{Key: HeaderType, Value: []byte(e.Type)},
	)
	if !e.Time.IsZero() {
		hs = append(hs, kafka.Header{Key: HeaderTime, Value: []byte(e.Time.UTC().Format(time.RFC3339Nano))})
	}
	hs = append(hs, kafka.Header{Key: HeaderContentType, Value: []byte(ct)})
	for _, h := range []struct{ k, v string }{
		{HeaderTraceParent, e.TraceParent},
		{HeaderTenantID, e.TenantID},
		{HeaderCorrelationID, e.CorrelationID},
	} {
		if h.v != "" {
			hs = append(hs, kafka.Header{Key: h.k, Value: []byte(h.v)})
		}
	}
	return hs
}

// ParseHeaders reads the envelope of a binary-mode message from its Kafka
// headers and validates it. The tenant and correlation id come from
// ce_tenantid and ce_correlationid, or from the legacy unprefixed headers
// when those are absent. An invalid traceparent is dropped rather than
// rejected: tracing is best effort and must not make an event poison.
// ParseMessage also reads structured mode.
func ParseHeaders(hs []kafka.Header) (Envelope, error) {
	var e Envelope
	var spec, ts, legacyTenant, legacyCorrelation string
	for _, h := range hs {
		v := string(h.Value)
		switch h.Key {
		case HeaderSpecVersion:
			spec = v
		case HeaderID:
			e.ID = v
		case HeaderSource:
			e.Source = v
		case HeaderType:
			e.Type = v
		case HeaderTime:
			ts = v
		case HeaderContentType:
			e.ContentType = v
		case HeaderTraceParent:
			e.TraceParent = v
		case HeaderTenantID:
			e.TenantID = v
		case HeaderCorrelationID:
			e.CorrelationID = v
		case LegacyHeaderTenantID:
			legacyTenant = v
		case LegacyHeaderCorrelationID:
			legacyCorrelation = v
		}
	}
	if e.TenantID == "" {
		e.TenantID = legacyTenant
	}
	if e.CorrelationID == "" {
		e.CorrelationID = legacyCorrelation
	}
	err := e.check(spec, ts)
	return e, err
}

// check parses the time ts, drops an invalid traceparent and validates e,
// whose spec version is spec.
func (e *Envelope) check(spec, ts string) error {
	if spec != SpecVersion {
		return fmt.Errorf("%w: specversion %q, want %q", ErrInvalidEnvelope, spec, SpecVersion)
	}
	if ts != "" {
		t, err := time.Parse(time.RFC3339Nano, ts)
		if err != nil {
			return fmt.Errorf("%w: time: %v", ErrInvalidEnvelope, err)
		}
		e.Time = t
	}
	if e.TraceParent != "" {
		if _, err := tracecontext.Parse(e.TraceParent); err != nil {
			e.TraceParent = ""
		}
	}
	return e.Validate()
}

// Context returns ctx carrying the envelope's tenant, correlation id and
// traceparent, so that events produced while handling this one continue its
// trace and keep its tenant and correlation id.
func (e Envelope) Context(ctx context.Context) context.Context {
	if e.TenantID != "" {
		ctx = WithTenant(ctx, e.TenantID)
	}
	if e.CorrelationID != "" {
		ctx = WithCorrelationID(ctx, e.CorrelationID)
	}
	if tp, err := tracecontext.Parse(e.TraceParent); err == nil {
		ctx = tracecontext.WithContext(ctx, tp)
	}
	return ctx
}

// Marshal builds the Kafka message for payload p: a new envelope from ctx
// (see NewEnvelope) with p's event type, the JSON value and p's partition
// key. The topic is left empty for the caller to set.
func Marshal(ctx context.Context, source string, p Payload) (kafka.Message, error) {
	return MarshalWith(NewEnvelope(ctx, p.EventType(), source), p)
}

// MarshalWith is Marshal with a caller-built envelope, e.g. one whose ID is
// deterministic so that replays carry the same idempotency key. The
// envelope's type must equal p.EventType().
//
// The envelope's tenant comes from ctx or, when ctx has none, from the
// payload's tenant_id; a payload whose tenant differs from the envelope's is
// refused, so an event never claims one tenant in its headers and carries
// another's data.
func MarshalWith(env Envelope, p Payload) (kafka.Message, error) {
	if env.Type == "" {
		env.Type = p.EventType()
	}
	if tp, ok := p.(interface{ Tenant() string }); ok && tp.Tenant() != "" {
		switch {
		case env.TenantID == "":
			env.TenantID = tp.Tenant()
		case env.TenantID != tp.Tenant():
			return kafka.Message{}, fmt.Errorf("%w: tenantid %q, payload tenant_id %q", ErrInvalidEnvelope, env.TenantID, tp.Tenant())
		}
	}
	if env.Type != p.EventType() {
		return kafka.Message{}, fmt.Errorf("%w: envelope %q, payload %q", ErrTypeMismatch, env.Type, p.EventType())
	}
	if env.Time.IsZero() {
		return kafka.Message{}, fmt.Errorf("%w: missing %s", ErrInvalidEnvelope, HeaderTime)
	}
	if err := env.Validate(); err != nil {
		return kafka.Message{}, err
	}
	v, err := json.Marshal(p)
	if err != nil {
		return kafka.Message{}, fmt.Errorf("marshal %s: %w", env.Type, err)
	}
	return kafka.Message{
		Key:     []byte(p.PartitionKey()),
		Value:   v,
		Headers: env.Headers(),
	}, nil
}

// Unmarshal parses msg's envelope (binary or structured mode, see
// ParseMessage) and decodes its JSON data into p, which must be a pointer
// to a payload type whose EventType matches the envelope.
func Unmarshal(msg kafka.Message, p Payload) (Envelope, error) {
	env, data, err := ParseMessage(msg)
	if err != nil {
		return env, err
	}
	if err := json.Unmarshal(data, p); err != nil {
		return env, fmt.Errorf("%w: %s: %v", ErrInvalidPayload, env.Type, err)
	}
	if p.EventType() != env.Type {
		return env, fmt.Errorf("%w: envelope %q, payload %q", ErrTypeMismatch, env.Type, p.EventType())
	}
	return env, nil
}

// Decode parses msg's envelope (binary or structured mode, see
// ParseMessage) and decodes its data into a new payload of the type its
// type attribute names. The payload is returned as a pointer, e.g.
// *ChunkCreated. Unknown types return ErrUnknownType.
func Decode(msg kafka.Message) (Envelope, Payload, error) {
	env, data, err := ParseMessage(msg)
	if err != nil {
		return env, nil, err
	}
	p, err := NewPayload(env.Type)
	if err != nil {
		return env, nil, err
	}
	if err := json.Unmarshal(data, p); err != nil {
		return env, nil, fmt.Errorf("%w: %s: %v", ErrInvalidPayload, env.Type, err)
	}
	if p.EventType() != env.Type {
		return env, nil, fmt.Errorf("%w: envelope %q, payload %q", ErrTypeMismatch, env.Type, p.EventType())
	}
	return env, p, nil
}

type tenantKey struct{}
type correlationKey struct{}

// WithTenant returns a copy of ctx carrying the tenant id that NewEnvelope
// puts in the tenantid extension (header ce_tenantid).
func WithTenant(ctx context.Context, tenant string) context.Context {
	return context.WithValue(ctx, tenantKey{}, tenant)
}

// Tenant returns the tenant id carried by ctx, or "".
func Tenant(ctx context.Context) string {
	s, _ := ctx.Value(tenantKey{}).(string)
	return s
}

// WithCorrelationID returns a copy of ctx carrying the correlation id that
// NewEnvelope puts in the correlationid extension (header ce_correlationid).
func WithCorrelationID(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, correlationKey{}, id)
}

// CorrelationID returns the correlation id carried by ctx, or "".
func CorrelationID(ctx context.Context) string {
	s, _ := ctx.Value(correlationKey{}).(string)
	return s
}
