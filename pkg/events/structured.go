package events

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"mime"
	"sort"
	"strings"

	"github.com/segmentio/kafka-go"
)

// Attribute names of the CloudEvents JSON format that structured mode uses.
const (
	attrSpecVersion     = "specversion"
	attrID              = "id"
	attrSource          = "source"
	attrType            = "type"
	attrTime            = "time"
	attrDataContentType = "datacontenttype"
	attrData            = "data"
	attrDataBase64      = "data_base64"
	attrTraceParent     = "traceparent"
)

// ParseMessage reads the envelope and the data of msg in either content
// mode of the CloudEvents Kafka protocol binding, and validates the
// envelope (see Envelope.Validate).
//
//   - Binary mode (what Tributary writes): the attributes are headers and
//     the value is the data (see ParseHeaders).
//   - Structured mode (content-type application/cloudevents+json, which
//     the binding says every implementation must read): the value is the
//     whole event in the CloudEvents JSON format, extensions as top-level
//     members, the data as "data" (JSON) or "data_base64".
//
// Other structured formats (batches, Avro) are refused with
// ErrInvalidEnvelope.
func ParseMessage(msg kafka.Message) (Envelope, []byte, error) {
	ct, structured := structuredContentType(msg.Headers)
	if !structured {
		env, err := ParseHeaders(msg.Headers)
		return env, msg.Value, err
	}
	env, data, _, err := parseStructured(ct, msg)
	return env, data, err
}

// Binary returns msg in the binary content mode Tributary writes, so that
// consumers reading headers and value directly see every event alike: a
// structured-mode event becomes headers (its extensions with string,
// number or boolean values too, as ce_<name>) and its data as the value,
// and the legacy tenantid and correlationid headers become ce_tenantid and
// ce_correlationid. The key and other headers are kept. A message already
// in that form is returned as it is, without copying. An error (always
// ErrInvalidEnvelope) means a structured event that cannot be read.
func Binary(msg kafka.Message) (kafka.Message, error) {
	ct, structured := structuredContentType(msg.Headers)
	if structured {
		return structuredToBinary(ct, msg)
	}
	legacy := false
	for _, h := range msg.Headers {
		if h.Key == LegacyHeaderTenantID || h.Key == LegacyHeaderCorrelationID {
			legacy = true
			break
		}
	}
	if !legacy {
		return msg, nil
	}
	var tenant, correlation []byte
	hs := make([]kafka.Header, 0, len(msg.Headers)+2)
	for _, h := range msg.Headers {
		switch h.Key {
		case LegacyHeaderTenantID:
			tenant = h.Value
		case LegacyHeaderCorrelationID:
			correlation = h.Value
		default:
			hs = append(hs, h)
		}
	}
	// As in ParseHeaders, a non-empty ce_ header wins over the legacy one.
	for _, l := range []struct {
		key string
		v   []byte
	}{{HeaderTenantID, tenant}, {HeaderCorrelationID, correlation}} {
		if len(l.v) > 0 && len(lastHeaderValue(hs, l.key)) == 0 {
			hs = withoutHeader(hs, l.key)
			hs = append(hs, kafka.Header{Key: l.key, Value: l.v})
		}
	}
	msg.Headers = hs
	return msg, nil
}

// structuredContentType returns the media type of msg's last content-type
// header and whether it names a structured CloudEvents format.
func structuredContentType(hs []kafka.Header) (string, bool) {
	const prefix = "application/cloudevents"
	ct := bytes.TrimLeft(lastHeaderValue(hs, HeaderContentType), " \t")
	// Most messages are ours (application/json): decide without parsing.
	if len(ct) < len(prefix) || !strings.EqualFold(string(ct[:len(prefix)]), prefix) {
		return "", false
	}
	mt, _, err := mime.ParseMediaType(string(ct))
	if err != nil {
		mt = strings.ToLower(strings.TrimSpace(string(ct)))
	}
	return mt, strings.HasPrefix(mt, prefix)
}

// parseStructured reads a structured-mode event of media type mt from msg's
// value; the traceparent header counts when the event has none. It also
// returns the event's members for Binary.
func parseStructured(mt string, msg kafka.Message) (Envelope, []byte, map[string]json.RawMessage, error) {
	var e Envelope
	if mt != ContentTypeCloudEventsJSON {
		return e, nil, nil, fmt.Errorf("%w: structured format %q is not supported, want %s", ErrInvalidEnvelope, mt, ContentTypeCloudEventsJSON)
	}
	var members map[string]json.RawMessage
	if err := json.Unmarshal(msg.Value, &members); err != nil {
		return e, nil, nil, fmt.Errorf("%w: structured event: %v", ErrInvalidEnvelope, err)
	}
	var spec, ts string
	for _, a := range []struct {
		name string
		dst  *string
	}{
		{attrSpecVersion, &spec}, {attrID, &e.ID}, {attrSource, &e.Source}, {attrType, &e.Type},
		{attrTime, &ts}, {attrDataContentType, &e.ContentType}, {attrTraceParent, &e.TraceParent},
		{ExtensionTenantID, &e.TenantID}, {ExtensionCorrelationID, &e.CorrelationID},
	} {
		v, err := stringMember(members, a.name)
		if err != nil {
			return e, nil, nil, err
		}
		*a.dst = v
	}
	if e.TraceParent == "" {
		e.TraceParent = string(lastHeaderValue(msg.Headers, HeaderTraceParent))
	}
	data, err := structuredData(members)
	if err != nil {
		return e, nil, nil, err
	}
	if err := e.check(spec, ts); err != nil {
		return e, nil, nil, err
	}
	return e, data, members, nil
}

// stringMember returns the string value of member name; an absent or null
// member is "".
func stringMember(members map[string]json.RawMessage, name string) (string, error) {
	raw, ok := members[name]
	if !ok || string(raw) == "null" {
		return "", nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", fmt.Errorf("%w: attribute %s is not a string", ErrInvalidEnvelope, name)
	}
	return s, nil
}

// structuredData returns the event's data: the "data" member as JSON, or
// the decoded "data_base64"; never both.
func structuredData(members map[string]json.RawMessage) ([]byte, error) {
	data, hasData := members[attrData]
	b64, hasB64 := members[attrDataBase64]
	switch {
	case hasData && hasB64:
		return nil, fmt.Errorf("%w: both %s and %s", ErrInvalidEnvelope, attrData, attrDataBase64)
	case hasB64:
		var s string
		if err := json.Unmarshal(b64, &s); err != nil {
			return nil, fmt.Errorf("%w: %s is not a string", ErrInvalidEnvelope, attrDataBase64)
		}
		b, err := base64.StdEncoding.DecodeString(s)
		if err != nil {
			return nil, fmt.Errorf("%w: %s: %v", ErrInvalidEnvelope, attrDataBase64, err)
		}
		return b, nil
	}
	return data, nil
}

// structuredToBinary converts a structured-mode message of media type mt.
func structuredToBinary(mt string, msg kafka.Message) (kafka.Message, error) {
	env, data, members, err := parseStructured(mt, msg)
	if err != nil {
		return msg, err
	}
	hs := env.Headers()
	// Other extensions (and subject, dataschema) travel as ce_ headers, as
	// a binary-mode producer would have written them.
	var names []string
	for name := range members {
		switch name {
		case attrSpecVersion, attrID, attrSource, attrType, attrTime, attrDataContentType, attrData,
			attrDataBase64, attrTraceParent, ExtensionTenantID, ExtensionCorrelationID:
			continue
		}
		if validAttributeName(name) {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	for _, name := range names {
		if v, ok := scalarText(members[name]); ok {
			hs = append(hs, kafka.Header{Key: "ce_" + name, Value: []byte(v)})
		}
	}
	// Other headers stay; the envelope's replace these.
	for _, h := range msg.Headers {
		if h.Key != HeaderContentType && h.Key != HeaderTraceParent && !strings.HasPrefix(h.Key, "ce_") {
			hs = append(hs, h)
		}
	}
	msg.Headers = hs
	msg.Value = data
	return msg, nil
}

// validAttributeName reports whether name is a CloudEvents attribute name:
// lower-case ASCII letters and digits.
func validAttributeName(name string) bool {
	if name == "" || len(name) > 64 {
		return false
	}
	for i := 0; i < len(name); i++ {
		if c := name[i]; (c < 'a' || c > 'z') && (c < '0' || c > '9') {
			return false
		}
	}
	return true
}

// scalarText returns a JSON string's value, or a number's or boolean's
// text; other values have no header form.
func scalarText(raw json.RawMessage) (string, bool) {
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		return "", false
	}
	switch x := v.(type) {
	case string:
		return x, true
	case float64, bool:
		return string(raw), true
	}
	return "", false
}

// lastHeaderValue returns the value of the last header named key, or nil.
func lastHeaderValue(hs []kafka.Header, key string) []byte {
	var v []byte
	for _, h := range hs {
		if h.Key == key {
			v = h.Value
		}
	}
	return v
}

// withoutHeader returns hs without the headers named key.
func withoutHeader(hs []kafka.Header, key string) []kafka.Header {
	out := hs[:0]
	for _, h := range hs {
		if h.Key != key {
			out = append(out, h)
		}
	}
	return out
}
