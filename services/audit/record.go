package audit

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
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
	if p, err := canonicalJSON(msg.Value); err == nil && len(msg.Value) > 0 {
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
		r.Payload, _ = json.Marshal(base64.StdEncoding.EncodeToString(msg.Value))
		r.PayloadEncoding = "base64"
	}
	return r
}

// Marshal returns the record's canonical JSON: keys sorted, no
// insignificant whitespace, HTML characters not escaped, time in RFC 3339
// UTC with nanoseconds trimmed, the payload canonical too. Equal records
// give equal bytes.
func (r Record) Marshal() ([]byte, error) {
	r.Time = r.Time.UTC()
	if r.canonical && len(r.Payload) > 0 {
		return r.marshalSpliced()
	}
	p := r.Payload
	if len(p) == 0 {
		p = json.RawMessage("null")
	}
	cp, err := canonicalJSON(p)
	if err != nil {
		return nil, fmt.Errorf("record payload: %w", err)
	}
	r.Payload = cp
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(r); err != nil {
		return nil, fmt.Errorf("encode record: %w", err)
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// marshalSpliced encodes r with a one-byte placeholder payload and
// splices the (already canonical) payload in: encoding/json would
// otherwise validate and compact it a second time, a third of the cost of
// an append. Only numbers and escaped strings come before "payload", so
// its first occurrence is the key.
func (r Record) marshalSpliced() ([]byte, error) {
	p := r.Payload
	r.Payload = json.RawMessage("0")
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(r); err != nil {
		return nil, fmt.Errorf("encode record: %w", err)
	}
	b := bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
	const key = `"payload":`
	i := bytes.Index(b, []byte(key+"0"))
	if i < 0 {
		return nil, errors.New("encode record: payload placeholder not found")
	}
	out := make([]byte, 0, len(b)+len(p))
	out = append(out, b[:i+len(key)]...)
	out = append(out, p...)
	return append(out, b[i+len(key)+1:]...), nil
}

// ErrNotCanonical reports record bytes that decode but are not in
// canonical form.
var ErrNotCanonical = errors.New("record is not canonical json")

// UnmarshalRecord decodes canonical record bytes and checks that they are
// canonical: re-encoding must give the same bytes.
func UnmarshalRecord(b []byte) (Record, error) {
	var r Record
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&r); err != nil {
		return Record{}, fmt.Errorf("decode record: %w", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return Record{}, fmt.Errorf("decode record: trailing data")
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

// canonicalJSON re-encodes a JSON value with sorted object keys, no
// insignificant whitespace and numbers kept as written. Invalid UTF-8 is
// refused rather than silently replaced.
func canonicalJSON(b []byte) (json.RawMessage, error) {
	if !utf8.Valid(b) {
		return nil, errors.New("invalid utf-8")
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("trailing data after json value")
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
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
	rec := NewRecord(m)
	if !p.Deltas && rec.Type == events.TypeAnswerDelta {
		return rec, false
	}
	if !p.Texts && rec.PayloadEncoding == "" && rec.Type != events.TypeAnswerCompleted && mayHoldText(rec.Payload) {
		if red, ok := redactTexts(rec.Payload); ok {
			rec.Payload = red
		}
	}
	return rec, true
}

// mayHoldText is a cheap test that spares the parse of most payloads.
func mayHoldText(p []byte) bool {
	return bytes.Contains(p, []byte(`"text"`)) || bytes.Contains(p, []byte(`"content"`))
}

// redactTexts replaces every string field named "text" or "content", at
// any depth, by "[omitted: N bytes, sha256 HEX]"; the result is canonical.
func redactTexts(p json.RawMessage) (json.RawMessage, bool) {
	dec := json.NewDecoder(bytes.NewReader(p))
	dec.UseNumber()
	var v any
	if dec.Decode(&v) != nil {
		return nil, false
	}
	var walk func(v any)
	walk = func(v any) {
		switch x := v.(type) {
		case map[string]any:
			for k, e := range x {
				if s, ok := e.(string); ok && (k == "text" || k == "content") {
					sum := sha256.Sum256([]byte(s))
					x[k] = fmt.Sprintf("[omitted: %d bytes, sha256 %s]", len(s), hex.EncodeToString(sum[:]))
					continue
				}
				walk(e)
			}
		case []any:
			for _, e := range x {
				walk(e)
			}
		}
	}
	walk(v)
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if enc.Encode(v) != nil {
		return nil, false
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), true
}
