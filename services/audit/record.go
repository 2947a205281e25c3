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
	r := Record{Topic: msg.Topic, Partition: msg.Partition, Offset: msg.Offset, Time: msg.Time.UTC()}
	for _, h := range msg.Headers {
		v := string(h.Value)
		switch h.Key {
		case events.HeaderID:
			r.ID = v
		case events.HeaderSource:
			r.Source = v
		case events.HeaderType:
			r.Type = v
		case events.HeaderTenantID:
			r.Tenant = v
		case events.HeaderCorrelationID:
			r.CorrelationID = v
		case events.HeaderTime:
			if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
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
	if !r.canonical || len(r.Payload) == 0 {
		p := r.Payload
		if len(p) == 0 {
			p = json.RawMessage("null")
		}
		cp, err := canonicalJSON(p)
		if err != nil {
			return nil, fmt.Errorf("record payload: %w", err)
		}
		r.Payload = cp
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(r); err != nil {
		return nil, fmt.Errorf("encode record: %w", err)
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
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
