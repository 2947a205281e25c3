package audit

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"
	"unicode/utf8"

	"github.com/segmentio/kafka-go"

	"github.com/tributary-rag/tributary/pkg/events"
)

// Record is one audited Kafka message. Its canonical JSON encoding (see
// Marshal) is what a segment stores, encrypted, and what the export
// streams, one per line.
//
// The fields are declared in the order of their JSON names so that
// encoding/json writes the keys sorted.
type Record struct {
	// ID is the event's ce_id ("" when the message had none).
	ID string `json:"ce_id"`
	// Source is the event's ce_source.
	Source string `json:"ce_source,omitempty"`
	// Type is the event's ce_type ("" when the message had none).
	Type string `json:"ce_type"`
	// CorrelationID is the event's correlationid extension.
	CorrelationID string `json:"correlation_id,omitempty"`
	// Offset is the message's offset in its partition.
	Offset int64 `json:"offset"`
	// Partition is the message's partition.
	Partition int `json:"partition"`
	// Payload is the message value in canonical JSON, or, when the value
	// is not JSON, a JSON string holding its base64 (PayloadEncoding
	// "base64").
	Payload json.RawMessage `json:"payload"`
	// PayloadEncoding is "base64" when Payload is the value in base64, and
	// "omitted" when the value was too large to keep (MaxRecordSize) and
	// Payload holds only its size and SHA-256.
	PayloadEncoding string `json:"payload_encoding,omitempty"`
	// Seq numbers the records of an audit log from 1 without gaps.
	Seq uint64 `json:"seq"`
	// Tenant is the tenantid extension, or the payload's tenant_id when the
	// header is missing.
	Tenant string `json:"tenant"`
	// Time is the event's ce_time, or the message's broker time when ce_time
	// is missing, in UTC.
	Time time.Time `json:"time"`
	// Topic is the full topic name.
	Topic string `json:"topic"`
	// canonical says Payload is already canonical JSON (NewRecord made it
	// so), sparing Marshal a second parse.
	canonical bool
}

// NewRecord builds the record of msg (without Seq). It accepts any
// message: a malformed event is recorded as it arrived, since the audit
// log is the record of what was on the wire.
func NewRecord(msg kafka.Message) Record {
	r := recordHeaders(msg)
	r.setPayload(msg.Value, false)
	return r
}

// recordHeaders builds the record of msg without its payload.
func recordHeaders(msg kafka.Message) Record {
	r := Record{Topic: msg.Topic, Partition: msg.Partition, Offset: msg.Offset, Time: msg.Time.UTC()}
	// The events package knows the header names (and the unprefixed ones
	// older releases wrote); a malformed envelope is still recorded.
	env, _ := events.ParseHeaders(msg.Headers)
	r.ID, r.Source, r.Type, r.Tenant, r.CorrelationID = env.ID, env.Source, env.Type, env.TenantID, env.CorrelationID
	for _, h := range msg.Headers {
		// Parsed here too: ParseHeaders skips the time of an envelope
		// whose specversion is wrong.
		if h.Key == events.HeaderTime {
			if t, err := time.Parse(time.RFC3339Nano, string(h.Value)); err == nil {
				r.Time = t.UTC()
			}
		}
	}
	return r
}

// setPayload sets the record's payload from a message value: canonical
// JSON, with text and content strings replaced when redact is set (see
// canonicalize), or base64 when the value is not JSON.
func (r *Record) setPayload(value []byte, redact bool) {
	err := errors.New("invalid utf-8")
	var p []byte
	if utf8.Valid(value) {
		p, err = canonicalize(value, redact)
	}
	if err == nil && len(value) > 0 {
		r.Payload, r.canonical = p, true
		if r.Tenant == "" {
			var t struct {
				TenantID string `json:"tenant_id"`
			}
			if json.Unmarshal(p, &t) == nil {
				r.Tenant = t.TenantID
			}
		}
	} else {
		r.Payload, _ = json.Marshal(base64.StdEncoding.EncodeToString(value))
		r.PayloadEncoding = "base64"
	}
}

// Marshal returns the record's canonical JSON: keys sorted, no
// insignificant whitespace, HTML characters not escaped, time in RFC 3339
// UTC with nanoseconds trimmed, the payload canonical too. Equal records
// give equal bytes (canon.go says how the form is defined).
func (r Record) Marshal() ([]byte, error) {
	r.Time = r.Time.UTC()
	p := r.Payload
	if !r.canonical || len(p) == 0 {
		if len(p) == 0 {
			p = json.RawMessage("null")
		}
		cp, err := canonicalJSON(p)
		if err != nil {
			return nil, fmt.Errorf("record payload: %w", err)
		}
		p = cp
	}
	return appendRecord(make([]byte, 0, 256+len(p)), &r, p)
}

// ErrNotCanonical reports record bytes that decode but are not in
// canonical form.
var ErrNotCanonical = errors.New("record is not canonical json")

// UnmarshalRecord decodes canonical record bytes and checks that they are
// canonical: re-encoding must give the same bytes.
func UnmarshalRecord(b []byte) (Record, error) {
	r, err := decodeRecord(b)
	if err != nil {
		return Record{}, fmt.Errorf("decode record: %w", err)
	}
	again, err := r.Marshal()
	if err != nil {
		return Record{}, err
	}
	if !bytes.Equal(again, b) {
		return Record{}, ErrNotCanonical
	}
	return r, nil
}

// readLimited reads all of r, refusing more than limit bytes.
func readLimited(r io.Reader, limit int64) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("larger than %d bytes", limit)
	}
	return b, nil
}

// RecordPolicy says what the audit log keeps (data minimization). The
// zero value is the default: per-token answer.delta events are not
// recorded (the answer.completed event carries the whole answer), and
// chunk and document texts are replaced by their size and SHA-256 (the
// document is identified by its id, version and content hash).
type RecordPolicy struct {
	// Deltas records answer.delta events too.
	Deltas bool
	// Texts keeps the "text" and "content" fields of events other than
	// answer.completed.
	Texts bool
}

// apply returns the record of m and whether the policy keeps it.
func (p RecordPolicy) apply(m kafka.Message) (Record, bool) {
	rec := recordHeaders(m)
	if !p.Deltas && rec.Type == events.TypeAnswerDelta {
		return rec, false
	}
	rec.setPayload(m.Value, !p.Texts && rec.Type != events.TypeAnswerCompleted)
	return rec, true
}
